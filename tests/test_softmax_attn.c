// Exact softmax attention: the fast kernels against the plain reference on awkward shapes
// (N not a multiple of anything, fused QKV stride), finite differences, proportional
// attention (log s), and FLOP counts against the formula. Head width d = 32 takes the fused
// kernels of the active set (avx512 or avx2; the widest the CPU has, or MAELRE_KERNELS), every
// other d the sgemm path: both are covered. tests/test_kernels.c runs every set.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/flops.h"
#include "core/kernels.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

typedef struct {
    size_t N, D, H, ld;
    float *qkv, *save;
    const float *log_s;
} AttnCtx;

static void fwd_attn(void *p, float *out) {
    AttnCtx *c = p;
    attn_softmax_forward(out, c->save, c->qkv, c->qkv + c->D, c->qkv + 2 * c->D, c->ld, c->log_s, c->N, c->D, c->H);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (scale + 1e-30));
    return worst;
}

static void fast_vs_ref(size_t N, size_t D, size_t H, int with_sizes) {
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *ref = malloc(N * D * sizeof(float)), *dout = malloc(N * D * sizeof(float));
    float *save = malloc(attn_softmax_save_floats(N, D, H) * sizeof(float));
    float *g1 = calloc(N * ld, sizeof(float)), *g2 = calloc(N * ld, sizeof(float));
    float *ls = malloc(N * sizeof(float));
    uint64_t s = N * 31 + D;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 5));
    const float *lsp = with_sizes ? ls : NULL;
    attn_softmax_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    double ef = max_rel(out, ref, N * D);
    attn_softmax_backward(g1, g1 + D, g1 + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_backward_ref(g2, g2 + D, g2 + 2 * D, dout, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    // the output columns [3D, ...) do not exist; compare the q, k, v columns as a whole
    double eb = max_rel(g1, g2, N * ld);
    cr_expect(ef < 1e-5, "N=%zu D=%zu H=%zu forward rel err %g", N, D, H, ef);
    cr_expect(eb < 1e-4, "N=%zu D=%zu H=%zu backward rel err %g", N, D, H, eb);
    free(qkv); free(out); free(ref); free(dout); free(save); free(g1); free(g2); free(ls);
}

Test(attn_softmax, fast_matches_reference_awkward_shapes) {
    fast_vs_ref(1, 4, 1, 0);
    fast_vs_ref(37, 12, 3, 0);
    fast_vs_ref(37, 12, 3, 1);
    fast_vs_ref(130, 10, 2, 1);
}

// d = 32: N = 1, below one 16-lane vector, one past a 64-row block / 64-column chunk, several
// blocks with a ragged tail; 1, 2 and 3 heads; with and without log s.
Test(attn_softmax, fused_d32_matches_reference_awkward_shapes) {
    fast_vs_ref(1, 32, 1, 0);
    fast_vs_ref(1, 64, 2, 1);
    fast_vs_ref(7, 32, 1, 1);
    fast_vs_ref(65, 64, 2, 0);
    fast_vs_ref(65, 64, 2, 1);
    fast_vs_ref(200, 96, 3, 1);
    fast_vs_ref(333, 64, 2, 0);
}

static void gradcheck(size_t N, size_t D, size_t H, int with_sizes) {
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *R = malloc(N * D * sizeof(float)), *g = calloc(N * ld, sizeof(float));
    float *save = malloc(attn_softmax_save_floats(N, D, H) * sizeof(float)), *ls = malloc(N * sizeof(float));
    uint64_t s = 99 + (uint64_t)with_sizes + D;
    gc_fill(qkv, N * ld, &s, 1.5f);
    gc_fill(R, N * D, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf((float)(1 + j));
    AttnCtx c = {N, D, H, ld, qkv, save, with_sizes ? ls : NULL};
    fwd_attn(&c, out);
    attn_softmax_backward(g, g + D, g + 2 * D, R, save, qkv, qkv + D, qkv + 2 * D, ld, c.log_s, N, D, H);
    size_t at;
    double e = gc_check(fwd_attn, &c, qkv, N * ld, g, out, R, N * D, 1e-2f, &at);
    cr_expect(e < 1e-2, "softmax attention D=%zu H=%zu (sizes %d) FD error %g at row %zu col %zu", D, H,
              with_sizes, e, at / ld, at % ld);
    free(qkv); free(out); free(R); free(g); free(save); free(ls);
}

Test(attn_softmax, finite_differences) { gradcheck(6, 6, 2, 0); }
Test(attn_softmax, finite_differences_with_sizes) { gradcheck(6, 6, 2, 1); }
Test(attn_softmax, finite_differences_d32) { gradcheck(5, 64, 2, 0); gradcheck(5, 32, 1, 1); }

Test(attn_softmax, proportional_attention_equals_duplicated_tokens) {
    // A token of size 2 attends like two identical tokens of size 1 (ToMe's log s term).
    size_t D = 4, H = 1, ld = 3 * D;
    float a[3 * 12], b[4 * 12], oa[3 * 4], ob[4 * 4], sa[256], sb[256], ls[3] = {0, logf(2.0f), 0};
    uint64_t s = 5;
    cr_assert(attn_softmax_save_floats(4, D, H) <= 256);
    gc_fill(a, 36, &s, 1.0f);
    memcpy(b, a, 36 * sizeof(float));
    memcpy(b + 36, a + 12, 12 * sizeof(float));  // duplicate token 1
    attn_softmax_forward(oa, sa, a, a + D, a + 2 * D, ld, ls, 3, D, H);
    attn_softmax_forward(ob, sb, b, b + D, b + 2 * D, ld, NULL, 4, D, H);
    for (size_t i = 0; i < 12; i++) cr_expect(fabsf(oa[i] - ob[i]) < 1e-6f, "i=%zu %g vs %g", i, oa[i], ob[i]);
}

Test(attn_softmax, flop_count_formula) {
    size_t N = 9, D = 8, H = 2, d = 4, ld = 24;
    float qkv[9 * 24] = {0}, out[72], save[512], g[9 * 24] = {0}, dout[72] = {0};
    FlopCounter fc = {0};
    cr_assert(attn_softmax_save_floats(N, D, H) <= 512);
    flops_install(&fc);
    attn_softmax_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, N, D, H);
    flops_install(NULL);
    // per head: QK^T N*N*d MACs + PV N*d*N MACs; exp + normalise: 2 N^2
    double macs = (double)H * 2 * N * N * d;
    cr_expect_float_eq(fc.macs, macs, 1e-9);
    cr_expect_float_eq(fc.flops, 2 * macs + H * 2.0 * N * N, 1e-9);
    memset(&fc, 0, sizeof fc);
    flops_install(&fc);
    attn_softmax_backward(g, g + D, g + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, N, D, H);
    flops_install(NULL);
    cr_expect_float_eq(fc.macs, 2 * macs, 1e-9);
    cr_expect_float_eq(fc.flops, 4 * macs + H * 2.0 * N * N, 1e-9);
}

// With several threads and no enclosing parallel region, forward spreads (head, row block) items
// over threads with single-threaded BLAS: same numbers as one thread, bit for bit, also for a
// last block shorter than the others (N = 200 = 3 x 64 + 8), and still matching the reference.
static void spread_bitwise(size_t N, size_t D, size_t H) {
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    float *ref = malloc(N * D * sizeof(float));
    float *s1 = malloc(attn_softmax_save_floats(N, D, H) * sizeof(float)), *s2 = malloc(attn_softmax_save_floats(N, D, H) * sizeof(float));
    float *ls = malloc(N * sizeof(float));
    uint64_t s = 99;
    gc_fill(qkv, N * ld, &s, 2.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 3));
    int before = threads_get();
    threads_set(1);
    attn_softmax_forward(o1, s1, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
    threads_set(2);
    attn_softmax_forward(o2, s2, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
    threads_set(before);
    cr_assert(memcmp(o1, o2, N * D * sizeof(float)) == 0, "D=%zu: outputs differ between 1 and 2 threads", D);
    // the saved statistics (row max, inverse sum: 2 H N floats); the rest of save is scratch
    cr_assert(memcmp(s1, s2, 2 * H * N * sizeof(float)) == 0, "D=%zu: saved softmax statistics differ", D);
    attn_softmax_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
    double e = max_rel(o2, ref, N * D);
    cr_assert(e < 1e-5, "D=%zu: spread forward rel err %g", D, e);
    free(qkv); free(o1); free(o2); free(ref); free(s1); free(s2); free(ls);
}

Test(attn_softmax, forward_spread_over_threads_is_bitwise_equal) {
    spread_bitwise(200, 16, 2);  // sgemm path
    spread_bitwise(200, 64, 2);  // fused d = 32 path
}

// Forward only (attn_softmax_forward_infer): the same kernels in the same order as
// attn_softmax_forward, so the output and the saved statistics are bitwise equal, on the fused
// path (d = 32) and the sgemm path, with and without log s, on 1 and 2 threads (2 spreads the
// row blocks over threads). Each save is malloc'd at exactly its *_save_floats size, so a
// write past the smaller infer save is caught under SANITIZE=address.
static void infer_bitwise(size_t N, size_t D, size_t H, int with_sizes, int nthr) {
    size_t ld = 3 * D, nt = attn_softmax_save_floats(N, D, H), ni = attn_softmax_infer_save_floats(N, D, H);
    float *qkv = malloc(N * ld * sizeof(float)), *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    float *st = malloc(nt * sizeof(float)), *si = malloc(ni * sizeof(float)), *ls = malloc(N * sizeof(float));
    uint64_t s = 7 * N + D + (uint64_t)with_sizes;
    gc_fill(qkv, N * ld, &s, 2.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 4));
    const float *lsp = with_sizes ? ls : NULL;
    memset(o2, 0xFF, N * D * sizeof(float));  // NaNs: every output element must be written
    int before = threads_get();
    threads_set(nthr);
    attn_softmax_forward(o1, st, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_softmax_forward_infer(o2, si, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    threads_set(before);
    cr_assert(ni <= nt, "infer save %zu floats > training save %zu", ni, nt);
    cr_assert(memcmp(o1, o2, N * D * sizeof(float)) == 0,
              "N=%zu D=%zu H=%zu sizes=%d threads=%d: infer output differs from forward", N, D, H, with_sizes, nthr);
    cr_assert(memcmp(st, si, 2 * H * N * sizeof(float)) == 0,
              "N=%zu D=%zu H=%zu sizes=%d threads=%d: saved (m, 1/l) differ", N, D, H, with_sizes, nthr);
    free(qkv); free(o1); free(o2); free(st); free(si); free(ls);
}

Test(attn_softmax, infer_forward_bitwise_equal_to_forward) {
    static const size_t Ns[] = {1, 7, 64, 65, 300};
    // (D, H): d = 32 fused (1 and 2 heads); d = 8 and d = 4 take the sgemm path
    static const size_t DH[][2] = {{32, 1}, {64, 2}, {16, 2}, {12, 3}};
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t b = 0; b < sizeof DH / sizeof *DH; b++)
            for (int sz = 0; sz < 2; sz++)
                for (int t = 1; t <= 2; t++) infer_bitwise(Ns[a], DH[b][0], DH[b][1], sz, t);
}

// The infer save is smaller by exactly the two packed copies backward alone reads (V^T and
// K_h: 2 D pad_n(N) floats) where the fused d = 32 kernels are built in, and equal elsewhere;
// the FLOP count is the same call for call.
static size_t pad64(size_t N) { return (N + 63) / 64 * 64; }

// FLOPs and MACs counted by one forward call (infer or training form).
static FlopCounter forward_flops(int infer, size_t N, size_t D, size_t H, int with_sizes) {
    size_t ld = 3 * D, ns = infer ? attn_softmax_infer_save_floats(N, D, H) : attn_softmax_save_floats(N, D, H);
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *save = malloc(ns * sizeof(float)), *ls = malloc(N * sizeof(float));
    uint64_t s = 3;
    gc_fill(qkv, N * ld, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)(j % 2));
    FlopCounter fc = {0};
    flops_install(&fc);
    (infer ? attn_softmax_forward_infer : attn_softmax_forward)(out, save, qkv, qkv + D, qkv + 2 * D, ld,
                                                                with_sizes ? ls : NULL, N, D, H);
    flops_install(NULL);
    free(qkv); free(out); free(save); free(ls);
    return fc;
}

Test(attn_softmax, infer_save_smaller_same_flops) {
    int fused = kernels_active() != KERNELS_PLAIN;  // plain set: neither forward packs anything
    size_t N = 4096, D = 64, H = 2;  // d = 32
    size_t st = attn_softmax_save_floats(N, D, H), si = attn_softmax_infer_save_floats(N, D, H);
    cr_assert_eq(st - si, fused ? 2 * D * pad64(N) : 0, "d = 32, N = %zu: training save %zu, infer save %zu floats",
                 N, st, si);
    if (fused) cr_assert_lt(si, st);
    // N not a multiple of the 64-column chunk: the gap is over the padded width
    cr_assert_eq(attn_softmax_save_floats(65, 32, 1) - attn_softmax_infer_save_floats(65, 32, 1),
                 fused ? 2 * 32 * pad64(65) : 0);
    // sgemm path (d = 8): nothing packed, the same size
    cr_assert_eq(attn_softmax_infer_save_floats(N, 16, 2), attn_softmax_save_floats(N, 16, 2));
    // FLOPs (counted from the shapes; N = 1024 rather than 4096 keeps the sanitizer run short):
    // d = 32 over 16 row blocks, and both paths with log s on a ragged N
    FlopCounter a = forward_flops(0, 1024, D, H, 0), b = forward_flops(1, 1024, D, H, 0);
    cr_assert(a.macs > 0 && a.flops == b.flops && a.macs == b.macs, "N=1024: forward %g/%g, infer %g/%g FLOPs/MACs",
              a.flops, a.macs, b.flops, b.macs);
    static const size_t DH[][2] = {{32, 1}, {16, 2}};  // d = 32 (fused), d = 8 (sgemm)
    for (size_t i = 0; i < 2; i++) {
        a = forward_flops(0, 300, DH[i][0], DH[i][1], 1);
        b = forward_flops(1, 300, DH[i][0], DH[i][1], 1);
        cr_assert(a.macs > 0 && a.flops == b.flops && a.macs == b.macs, "D=%zu H=%zu: forward %g/%g, infer %g/%g",
                  DH[i][0], DH[i][1], a.flops, a.macs, b.flops, b.macs);
    }
}
