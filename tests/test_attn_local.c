// `local` sliding-window attention (core/attn_local.c): the blocked kernels against the plain
// masked reference on awkward shapes (N past one 64-row block, windows wider and narrower than
// the sequence, d = 3, 32, fused QKV stride), finite differences through the reference and the
// fast op (window mask included), the invariants of SPEC §9.4 (a window covering the sequence
// is `softmax`), the inference form, FLOPs against the hand formula, proportional attention,
// thread counts and the empty sample.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/attn_local.h"
#include "core/flops.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

static double max_rel(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (scale + 1e-30));
    return worst;
}

static float *sizes(size_t N) {
    float *ls = malloc((N ? N : 1) * sizeof(float));
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 5));
    return ls;
}

static void fast_vs_ref(size_t N, size_t D, size_t H, size_t w, int with_sizes) {
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *oi = malloc(N * D * sizeof(float)), *ref = malloc(N * D * sizeof(float));
    float *dout = malloc(N * D * sizeof(float)), *ls = sizes(N);
    float *save = malloc(attn_local_save_floats(N, D, H, w) * sizeof(float));
    float *work = malloc(attn_local_work_floats(N, D, H, w) * sizeof(float));
    float *iw = malloc(attn_local_infer_work_floats(N, D, H, w) * sizeof(float));
    float *g1 = calloc(N * ld, sizeof(float)), *g2 = calloc(N * ld, sizeof(float));
    uint64_t s = N * 31 + D + w;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    gc_fill(g1, N * ld, &s, 1.0f);  // backward accumulates: start both from the same values
    memcpy(g2, g1, N * ld * sizeof(float));
    const float *lsp = with_sizes ? ls : NULL;
    attn_local_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H, w);
    attn_local_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H, w);
    memset(oi, 0xFF, N * D * sizeof(float));  // NaNs: every element must be written
    attn_local_forward_infer(oi, iw, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H, w);
    double ef = max_rel(out, ref, N * D);
    attn_local_backward_ws(g1, g1 + D, g1 + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H, w, work);
    attn_local_backward_ref(g2, g2 + D, g2 + 2 * D, dout, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H, w);
    double eb = max_rel(g1, g2, N * ld);
    cr_expect(ef < 1e-5, "N=%zu D=%zu H=%zu w=%zu sizes=%d forward rel err %g", N, D, H, w, with_sizes, ef);
    cr_expect(eb < 1e-4, "N=%zu D=%zu H=%zu w=%zu sizes=%d backward rel err %g", N, D, H, w, with_sizes, eb);
    cr_expect(memcmp(out, oi, N * D * sizeof(float)) == 0, "N=%zu D=%zu H=%zu w=%zu: infer output differs", N, D,
              H, w);
    free(qkv); free(out); free(oi); free(ref); free(dout); free(ls); free(save); free(work); free(iw);
    free(g1); free(g2);
}

Test(attn_local, fast_matches_reference_awkward_shapes) {
    static const size_t Ns[] = {1, 7, 65, 300, 700}, ws[] = {8, 64, 512};
    static const size_t DH[][2] = {{6, 2}, {64, 2}, {32, 1}};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 3; c++)
                for (int sz = 0; sz < 2; sz++) {
                    if (Ns[a] == 700 && (DH[b][0] == 64 || sz != (int)(c % 2))) continue;  // keep it short
                    fast_vs_ref(Ns[a], DH[b][0], DH[b][1], ws[c], sz);
                }
    fast_vs_ref(130, 12, 3, 3, 1);  // odd w: w/2 rounds down
    fast_vs_ref(130, 12, 3, 2, 0);  // the smallest window: i itself and i + 1
}

typedef struct {
    size_t N, D, H, w, ld;
    float *save;
    const float *log_s;
    int fast;
} Ctx;

static void fwd(void *p, float *out) {
    Ctx *c = p;
    const float *x = c->save + attn_local_save_floats(c->N, c->D, c->H, c->w);  // qkv after save
    if (c->fast) attn_local_forward(out, c->save, x, x + c->D, x + 2 * c->D, c->ld, c->log_s, c->N, c->D, c->H, c->w);
    else attn_local_forward_ref(out, x, x + c->D, x + 2 * c->D, c->ld, c->log_s, c->N, c->D, c->H, c->w);
}

// Finite differences of the whole op (window mask included) in double: the reference's backward
// against the reference's forward, and the fast backward against the fast forward. N = 9 with
// w = 4 cuts every window somewhere; w = 5 rounds w/2 down.
static void gradcheck(size_t N, size_t D, size_t H, size_t w, int with_sizes, int fast) {
    size_t ld = 3 * D, ns = attn_local_save_floats(N, D, H, w);
    float *buf = malloc((ns + N * ld) * sizeof(float)), *qkv = buf + ns;
    float *out = malloc(N * D * sizeof(float)), *R = malloc(N * D * sizeof(float));
    float *g = calloc(N * ld, sizeof(float)), *work = malloc(attn_local_work_floats(N, D, H, w) * sizeof(float));
    float *ls = malloc(N * sizeof(float));
    uint64_t s = 99 + (uint64_t)with_sizes + D + w;
    gc_fill(qkv, N * ld, &s, 1.5f);
    gc_fill(R, N * D, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf((float)(1 + j % 4));
    Ctx c = {N, D, H, w, ld, buf, with_sizes ? ls : NULL, fast};
    fwd(&c, out);
    if (fast) attn_local_backward_ws(g, g + D, g + 2 * D, R, buf, qkv, qkv + D, qkv + 2 * D, ld, c.log_s, N, D, H, w, work);
    else attn_local_backward_ref(g, g + D, g + 2 * D, R, qkv, qkv + D, qkv + 2 * D, ld, c.log_s, N, D, H, w);
    size_t at;
    double e = gc_check(fwd, &c, qkv, N * ld, g, out, R, N * D, 1e-2f, &at);
    cr_expect(e < 1e-2, "%s: N=%zu D=%zu H=%zu w=%zu sizes=%d FD error %g at row %zu col %zu", fast ? "fast" : "ref",
              N, D, H, w, with_sizes, e, at / ld, at % ld);
    free(buf); free(out); free(R); free(g); free(work); free(ls);
}

Test(attn_local, finite_differences_reference) {
    gradcheck(9, 6, 2, 4, 0, 0);
    gradcheck(9, 6, 2, 4, 1, 0);
    gradcheck(8, 4, 1, 5, 1, 0);
}
Test(attn_local, finite_differences_fast) {
    gradcheck(9, 6, 2, 4, 0, 1);
    gradcheck(9, 6, 2, 4, 1, 1);
    gradcheck(8, 4, 1, 5, 1, 1);
    gradcheck(70, 4, 1, 6, 1, 1);  // two query blocks
}

// The mask is the formula i - w/2 < j <= i + w/2, so it is not the whole matrix unless
// w >= 2N - 1; attn_local_window gives the same band.
Test(attn_local, window_mask_formula) {
    size_t N = 9, w = 4;
    uint8_t m[81];
    attn_local_mask(m, N, w);
    // i = 0: j in {0, 1, 2}; i = 4: {3, 4, 5, 6}; i = 8: {7, 8}
    static const uint8_t r0[9] = {1, 1, 1, 0, 0, 0, 0, 0, 0}, r4[9] = {0, 0, 0, 1, 1, 1, 1, 0, 0},
                         r8[9] = {0, 0, 0, 0, 0, 0, 0, 1, 1};
    cr_expect(memcmp(m, r0, 9) == 0 && memcmp(m + 36, r4, 9) == 0 && memcmp(m + 72, r8, 9) == 0);
    // 3 + 6 x 4 + 3 + 2 pairs
    cr_expect_eq(attn_local_pairs(N, w), 32.0);
    for (size_t NN = 1; NN < 80; NN += 13)
        for (size_t ww = 2; ww < 40; ww += 7) {
            uint8_t *mm = malloc(NN * NN);
            attn_local_mask(mm, NN, ww);
            double n = 0;
            for (size_t i = 0; i < NN; i++) {
                size_t lo, hi;
                attn_local_window(i, NN, ww, &lo, &hi);
                for (size_t j = 0; j < NN; j++) {
                    cr_expect_eq(mm[i * NN + j], j >= lo && j < hi, "N=%zu w=%zu i=%zu j=%zu", NN, ww, i, j);
                    n += mm[i * NN + j];
                }
            }
            cr_expect_eq(attn_local_pairs(NN, ww), n);
            free(mm);
        }
}

// SPEC §9.4: with w >= 2N every window covers the sequence and `local` is `softmax`; one less
// than that (w = 2N - 2) cuts key 0 from the last query, and the outputs differ there.
Test(attn_local, full_window_equals_softmax) {
    static const size_t Ns[] = {1, 7, 65, 300};
    for (size_t a = 0; a < 4; a++)
        for (int sz = 0; sz < 2; sz++) {
            size_t N = Ns[a], D = 64, H = 2, ld = 3 * D, w = 2 * N;
            float *qkv = malloc(N * ld * sizeof(float)), *o = malloc(N * D * sizeof(float));
            float *ref = malloc(N * D * sizeof(float)), *ls = sizes(N);
            float *save = malloc(attn_local_save_floats(N, D, H, w) * sizeof(float));
            uint64_t s = 17 + N;
            gc_fill(qkv, N * ld, &s, 2.0f);
            attn_local_forward(o, save, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H, w);
            attn_softmax_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H);
            double e = max_rel(o, ref, N * D);
            cr_expect(e < 1e-5, "N=%zu sizes=%d: local(w=2N) vs softmax rel err %g", N, sz, e);
            if (N > 1) {
                free(save);
                save = malloc(attn_local_save_floats(N, D, H, 2 * N - 2) * sizeof(float));
                attn_local_forward(o, save, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H, 2 * N - 2);
                double last = max_rel(o + (N - 1) * D, ref + (N - 1) * D, D);
                cr_expect(last > 1e-4, "N=%zu: w = 2N - 2 should cut key 0 from the last query (diff %g)", N, last);
            }
            free(qkv); free(o); free(ref); free(ls); free(save);
        }
}

// FLOPs (core/flops.h): per head, pairs = sum_i |window_i|; forward 2 pairs d MACs + 2 (3 with
// log s) per pair; backward 4 pairs d MACs + 2 per pair. N = 9, w = 4: 32 pairs (above).
Test(attn_local, flop_count_formula) {
    size_t N = 9, D = 8, H = 2, d = 4, ld = 24, w = 4;
    float qkv[9 * 24] = {0}, out[72], g[9 * 24] = {0}, dout[72] = {0}, ls[9] = {0};
    float *save = malloc(attn_local_save_floats(N, D, H, w) * sizeof(float));
    float *work = malloc(attn_local_work_floats(N, D, H, w) * sizeof(float));
    float *iw = malloc(attn_local_infer_work_floats(N, D, H, w) * sizeof(float));
    double pairs = 32, macs = (double)H * 2 * pairs * d;
    for (int sz = 0; sz < 2; sz++)
        for (int infer = 0; infer < 2; infer++) {
            FlopCounter fc = {0};
            flops_install(&fc);
            if (infer) attn_local_forward_infer(out, iw, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H, w);
            else attn_local_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H, w);
            flops_install(NULL);
            cr_expect_float_eq(fc.macs, macs, 1e-9);
            cr_expect_float_eq(fc.flops, 2 * macs + H * (sz ? 3.0 : 2.0) * pairs, 1e-9, "sizes %d infer %d: %g", sz,
                               infer, fc.flops);
        }
    FlopCounter fc = {0};
    flops_install(&fc);
    attn_local_backward_ws(g, g + D, g + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, N, D, H, w, work);
    flops_install(NULL);
    cr_expect_float_eq(fc.macs, 2 * macs, 1e-9);
    cr_expect_float_eq(fc.flops, 4 * macs + H * 2.0 * pairs, 1e-9);
    // w = 512 at N = 4096: every query has 512 keys except within 256 of the ends
    // (the first 255 queries lose 255 - i keys on the left, the last 256 lose i' = 1..256 on the right)
    double p = 4096.0 * 512 - 255.0 * 256 / 2 - 256.0 * 257 / 2;
    cr_expect_eq(attn_local_pairs(4096, 512), p);
    free(save); free(work); free(iw);
}

// Proportional attention: a token of size 2 attends like two identical tokens of size 1, for
// every query whose window holds both copies. a: 10 tokens, the last of size 2; b: the same
// plus a copy of the last. w = 8: queries 6..9 see token 9 in a and tokens 9, 10 in b, with
// the same left edge; query 5 sees token 9 but not its copy 10 in b, so it differs.
Test(attn_local, proportional_attention_equals_duplicated_tokens) {
    size_t D = 6, H = 2, ld = 18, w = 8;
    float a[10 * 18], b[11 * 18], oa[60], ob[66], ls[10] = {0};
    float *sa = malloc(attn_local_save_floats(10, D, H, w) * sizeof(float));
    float *sb = malloc(attn_local_save_floats(11, D, H, w) * sizeof(float));
    uint64_t s = 5;
    ls[9] = logf(2.0f);
    gc_fill(a, 10 * ld, &s, 1.5f);
    memcpy(b, a, sizeof a);
    memcpy(b + 10 * ld, a + 9 * ld, ld * sizeof(float));
    attn_local_forward(oa, sa, a, a + D, a + 2 * D, ld, ls, 10, D, H, w);
    attn_local_forward(ob, sb, b, b + D, b + 2 * D, ld, NULL, 11, D, H, w);
    for (size_t i = 6 * D; i < 10 * D; i++) cr_expect(fabsf(oa[i] - ob[i]) < 1e-6f, "i=%zu %g vs %g", i, oa[i], ob[i]);
    cr_expect(max_rel(oa + 5 * D, ob + 5 * D, D) > 1e-4, "query 5 sees the copy only in b: should differ");
    free(sa); free(sb);
}

// 1 and 2 threads: forward spreads (head, block) items over threads, backward runs the heads on
// separate threads; both with single-threaded BLAS. Same numbers to rounding (OpenBLAS's
// threaded and single-threaded sgemm may round differently in the last bits).
Test(attn_local, one_and_two_threads_agree) {
    size_t N = 300, D = 64, H = 2, ld = 3 * D, w = 64;
    float *qkv = malloc(N * ld * sizeof(float)), *dout = malloc(N * D * sizeof(float)), *ls = sizes(N);
    float *o[2], *g[2], *sv[2];
    float *work = malloc(attn_local_work_floats(N, D, H, w) * sizeof(float));
    uint64_t s = 3;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    int before = threads_get();
    for (int t = 0; t < 2; t++) {
        o[t] = malloc(N * D * sizeof(float));
        g[t] = calloc(N * ld, sizeof(float));
        sv[t] = malloc(attn_local_save_floats(N, D, H, w) * sizeof(float));
        threads_set(t + 1);
        attn_local_forward(o[t], sv[t], qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H, w);
        attn_local_backward_ws(g[t], g[t] + D, g[t] + 2 * D, dout, sv[t], qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H,
                               w, work);
    }
    threads_set(before);
    cr_expect(max_rel(o[1], o[0], N * D) < 1e-6, "forward 1 vs 2 threads %g", max_rel(o[1], o[0], N * D));
    cr_expect(max_rel(g[1], g[0], N * ld) < 1e-6, "backward 1 vs 2 threads %g", max_rel(g[1], g[0], N * ld));
    for (int t = 0; t < 2; t++) { free(o[t]); free(g[t]); free(sv[t]); }
    free(qkv); free(dout); free(ls); free(work);
}

// N = 0: nothing read, nothing written, nothing counted.
Test(attn_local, empty_sample_is_a_no_op) {
    float out[4] = {1, 2, 3, 4}, g[4] = {5, 6, 7, 8};
    FlopCounter fc = {0};
    flops_install(&fc);
    attn_local_forward(out, NULL, NULL, NULL, NULL, 24, NULL, 0, 8, 2, 512);
    attn_local_forward_infer(out, NULL, NULL, NULL, NULL, 24, NULL, 0, 8, 2, 512);
    attn_local_backward_ws(g, g, g, NULL, NULL, NULL, NULL, NULL, 24, NULL, 0, 8, 2, 512, NULL);
    flops_install(NULL);
    cr_expect(out[0] == 1 && out[3] == 4 && g[0] == 5 && g[3] == 8);
    cr_expect(fc.flops == 0 && fc.macs == 0);
    cr_expect_eq(attn_local_save_floats(0, 8, 2, 512), 0);
}
