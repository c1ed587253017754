// `bigbird` block-sparse attention (core/attn_bigbird.c): the random block table and the
// per-sample block lists against their definitions (SPEC §9.5 and core/attn_bigbird.h), the
// blocked kernels against the plain reference with an explicit N x N mask on awkward shapes
// (short last block, samples shorter than the table, b = 64 and small b to make short
// sequences sparse), finite differences through the reference and the fast op (block mask
// included), the softmax invariants, the inference form, FLOPs against a hand count,
// proportional attention, thread counts and the empty sample.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/attn_bigbird.h"
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

// Tables for H heads of M blocks, r picks, from one seed (as a layer would draw them).
static int32_t *tables(size_t H, size_t M, size_t r, uint64_t seed) {
    int32_t *t = malloc((H * M * r + 1) * sizeof(int32_t));
    for (size_t h = 0; h < H; h++) attn_bigbird_draw_table(t + h * M * r, &seed, M, r);
    return t;
}

Test(attn_bigbird, draw_table_definition) {
    size_t M = 40, r = 3;
    uint64_t s1 = 7, s2 = 7, s3 = 8;
    int32_t *a = malloc(M * r * sizeof(int32_t)), *b = malloc(M * r * sizeof(int32_t)), *c = malloc(M * r * sizeof(int32_t));
    attn_bigbird_draw_table(a, &s1, M, r);
    attn_bigbird_draw_table(b, &s2, M, r);
    attn_bigbird_draw_table(c, &s3, M, r);
    cr_expect(memcmp(a, b, M * r * sizeof(int32_t)) == 0, "same seed, same table");
    cr_expect(memcmp(a, c, M * r * sizeof(int32_t)) != 0, "another seed, another table");
    size_t hits[40] = {0};
    for (size_t i = 0; i < M; i++)
        for (size_t t = 0; t < r; t++) {
            int32_t p = a[i * r + t];
            if (i == 0 || i == M - 1) { cr_expect_eq(p, -1, "global row %zu", i); continue; }
            cr_expect(p > 0 && p < (int32_t)M - 1, "row %zu pick %d", i, p);
            cr_expect(p < (int32_t)i - 1 || p > (int32_t)i + 1, "row %zu pick %d in the window", i, p);
            if (t) cr_expect(p > a[i * r + t - 1], "row %zu: picks ascending and distinct", i);
            hits[p]++;
        }
    size_t used = 0;
    for (size_t j = 0; j < M; j++) used += hits[j] > 0;
    cr_expect(used > M / 2, "picks spread over the blocks (%zu of %zu used)", used, M);
    // fewer candidates than r: all of them, then -1
    int32_t t5[5 * 3];
    uint64_t s = 1;
    attn_bigbird_draw_table(t5, &s, 5, 3);  // row 2: window 1..3, globals 0, 4: no candidate
    for (size_t t = 0; t < 3; t++) cr_expect_eq(t5[2 * 3 + t], -1);
    int32_t t6[6 * 3];
    attn_bigbird_draw_table(t6, &s, 6, 3);  // row 1: candidates {3, 4}
    cr_expect(t6[3] == 3 && t6[4] == 4 && t6[5] == -1, "row 1: %d %d %d", t6[3], t6[4], t6[5]);
    free(a); free(b); free(c);
}

// The block list of a query block, against core/attn_bigbird.h's mapping worked by hand.
Test(attn_bigbird, row_blocks_mapping) {
    size_t bl[64], n;
    // full rows: the first and last query block, and every row of a sample of <= 5 + r blocks
    int32_t row[3] = {5, 9, 20};
    n = attn_bigbird_row_blocks(bl, row, 3, 0, 12);
    cr_expect_eq(n, 12);
    n = attn_bigbird_row_blocks(bl, row, 3, 11, 12);
    cr_expect_eq(n, 12);
    n = attn_bigbird_row_blocks(bl, row, 3, 3, 8);
    cr_expect_eq(n, 8);
    // sparse, every pick valid: used as drawn. i = 3 of 12: {0, 2, 3, 4, 11} + {5, 9}; 20 is not
    // in the sample: candidates {1, 5, 6, 7, 8, 9, 10} (c = 7), 20 mod 7 = 6 -> 10
    n = attn_bigbird_row_blocks(bl, row, 3, 3, 12);
    size_t want[] = {0, 2, 3, 4, 5, 9, 10, 11};
    cr_expect_eq(n, 8);
    cr_expect(memcmp(bl, want, sizeof want) == 0, "got %zu %zu %zu %zu %zu %zu %zu %zu", bl[0], bl[1], bl[2], bl[3],
              bl[4], bl[5], bl[6], bl[7]);
    // the sample's last block (11) is global already and 13 does not exist: candidates for
    // i = 5 of 12 {1, 2, 3, 7, 8, 9, 10}; 11 mod 7 = 4 -> 8; 13 mod 7 = 6 -> 10; 2 kept
    int32_t row2[3] = {2, 11, 13};
    n = attn_bigbird_row_blocks(bl, row2, 3, 5, 12);
    size_t want2[] = {0, 2, 4, 5, 6, 8, 10, 11};
    cr_expect(n == 8 && memcmp(bl, want2, sizeof want2) == 0);
    // a collision moves on to the next free candidate. i = 5: candidates {1, 2, 3, 7, 8, 9, 10};
    // 3 kept; 14 mod 7 = 0 -> 1; 21 mod 7 = 0 -> 1, taken -> 2
    int32_t row3[3] = {14, 3, 21};
    n = attn_bigbird_row_blocks(bl, row3, 3, 5, 12);
    size_t want3[] = {0, 1, 2, 3, 4, 5, 6, 11};
    cr_expect(n == 8 && memcmp(bl, want3, sizeof want3) == 0, "got %zu %zu %zu %zu %zu %zu %zu %zu", bl[0], bl[1],
              bl[2], bl[3], bl[4], bl[5], bl[6], bl[7]);
    // i = 1: window {0, 1, 2} overlaps the global 0: 4 fixed blocks + 3 random
    int32_t row4[3] = {4, 6, 8};
    n = attn_bigbird_row_blocks(bl, row4, 3, 1, 12);
    size_t want4[] = {0, 1, 2, 4, 6, 8, 11};
    cr_expect(n == 7 && memcmp(bl, want4, sizeof want4) == 0);
    // every drawn row of a table for M blocks, used at nblk = M and at shorter nblk: 5 fixed
    // (fewer where the window meets a global block) plus r distinct others
    size_t M = 30, r = 3;
    uint64_t s = 11;
    int32_t tb[30 * 3];
    attn_bigbird_draw_table(tb, &s, M, r);
    for (size_t nblk = 9; nblk <= M; nblk++)
        for (size_t i = 1; i + 1 < nblk; i++) {
            n = attn_bigbird_row_blocks(bl, tb + i * r, r, i, nblk);
            size_t fixed = 3 + (i - 1 != 0) + (i + 1 != nblk - 1);
            cr_expect_eq(n, fixed + r, "nblk=%zu i=%zu: %zu blocks", nblk, i, n);
            for (size_t t = 1; t < n; t++) cr_expect(bl[t] > bl[t - 1]);
            cr_expect(bl[n - 1] == nblk - 1 && bl[0] == 0);
            if (nblk == M)  // the drawn picks, as drawn
                for (size_t t = 0; t < r; t++) {
                    int found = 0;
                    for (size_t u = 0; u < n; u++) found |= bl[u] == (size_t)tb[i * r + t];
                    cr_expect(found, "row %zu pick %d missing", i, tb[i * r + t]);
                }
        }
}

static void fast_vs_ref(size_t N, size_t D, size_t H, size_t b, size_t r, size_t M, int with_sizes) {
    size_t ld = 3 * D;
    int32_t *tb = tables(H, M, r, 1000 + N + M);
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *oi = malloc(N * D * sizeof(float)), *ref = malloc(N * D * sizeof(float));
    float *dout = malloc(N * D * sizeof(float)), *ls = sizes(N);
    float *save = malloc(attn_bigbird_save_floats(N, D, H, b) * sizeof(float));
    float *work = malloc(attn_bigbird_work_floats(N, D, H, b) * sizeof(float));
    float *iw = malloc(attn_bigbird_infer_work_floats(N, D, H, b) * sizeof(float));
    float *g1 = calloc(N * ld, sizeof(float)), *g2 = calloc(N * ld, sizeof(float));
    uint64_t s = N * 31 + D + b;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    gc_fill(g1, N * ld, &s, 1.0f);  // backward accumulates
    memcpy(g2, g1, N * ld * sizeof(float));
    const float *lsp = with_sizes ? ls : NULL;
    attn_bigbird_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, tb, M, N, D, H, b, r);
    attn_bigbird_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, lsp, tb, M, N, D, H, b, r);
    memset(oi, 0xFF, N * D * sizeof(float));
    attn_bigbird_forward_infer(oi, iw, qkv, qkv + D, qkv + 2 * D, ld, lsp, tb, M, N, D, H, b, r);
    attn_bigbird_backward_ws(g1, g1 + D, g1 + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, tb, M, N, D, H, b,
                             r, work);
    attn_bigbird_backward_ref(g2, g2 + D, g2 + 2 * D, dout, qkv, qkv + D, qkv + 2 * D, ld, lsp, tb, M, N, D, H, b, r);
    double ef = max_rel(out, ref, N * D), eb = max_rel(g1, g2, N * ld);
    cr_expect(ef < 1e-5, "N=%zu D=%zu H=%zu b=%zu M=%zu sizes=%d forward rel err %g", N, D, H, b, M, with_sizes, ef);
    cr_expect(eb < 1e-4, "N=%zu D=%zu H=%zu b=%zu M=%zu sizes=%d backward rel err %g", N, D, H, b, M, with_sizes, eb);
    cr_expect(memcmp(out, oi, N * D * sizeof(float)) == 0, "N=%zu D=%zu b=%zu: infer output differs", N, D, b);
    free(tb); free(qkv); free(out); free(oi); free(ref); free(dout); free(ls); free(save); free(work); free(iw);
    free(g1); free(g2);
}

Test(attn_bigbird, fast_matches_reference_awkward_shapes) {
    static const size_t Ns[] = {1, 7, 65, 300, 700};
    static const size_t DH[][2] = {{6, 2}, {64, 2}, {32, 1}};
    // b = 64, r = 3 as SPEC §9.5: dense up to N = 512, sparse at N = 700 (11 blocks, the last of
    // 60 rows); the table is drawn for 16 blocks (max_len 1024), so short samples remap picks
    for (size_t a = 0; a < 5; a++)
        for (size_t c = 0; c < 3; c++)
            for (int sz = 0; sz < 2; sz++) {
                if (Ns[a] == 700 && DH[c][0] == 64) continue;  // keep it short
                fast_vs_ref(Ns[a], DH[c][0], DH[c][1], 64, 3, 16, sz);
            }
    // small blocks make the short sequences sparse: b = 4 (17 blocks, last of 1 row), b = 8
    for (int sz = 0; sz < 2; sz++) {
        fast_vs_ref(65, 6, 2, 4, 3, 17, sz);   // table exactly as long as the sample
        fast_vs_ref(65, 64, 2, 4, 3, 40, sz);  // table longer than the sample
        fast_vs_ref(300, 32, 1, 8, 3, 38, sz);
        fast_vs_ref(300, 6, 2, 7, 2, 60, sz);  // b = 7, r = 2
    }
}

typedef struct {
    size_t N, D, H, b, r, M, ld, ns;
    const int32_t *tb;
    float *save;
    const float *log_s;
    int fast;
} Ctx;

static void fwd(void *p, float *out) {
    Ctx *c = p;
    const float *x = c->save + c->ns;
    if (c->fast)
        attn_bigbird_forward(out, c->save, x, x + c->D, x + 2 * c->D, c->ld, c->log_s, c->tb, c->M, c->N, c->D, c->H,
                             c->b, c->r);
    else
        attn_bigbird_forward_ref(out, x, x + c->D, x + 2 * c->D, c->ld, c->log_s, c->tb, c->M, c->N, c->D, c->H, c->b,
                                 c->r);
}

// Finite differences of the whole op in double (block mask included): N = 29, b = 3: 10 blocks
// (the last of 2 rows), sparse with r = 1 (10 > 5 + 1); the table drawn for 12 blocks.
static void gradcheck(int with_sizes, int fast) {
    size_t N = 29, D = 6, H = 2, b = 3, r = 1, M = 12, ld = 3 * D, ns = attn_bigbird_save_floats(N, D, H, b);
    int32_t *tb = tables(H, M, r, 5);
    float *buf = malloc((ns + N * ld) * sizeof(float)), *qkv = buf + ns;
    float *out = malloc(N * D * sizeof(float)), *R = malloc(N * D * sizeof(float));
    float *g = calloc(N * ld, sizeof(float)), *work = malloc(attn_bigbird_work_floats(N, D, H, b) * sizeof(float));
    float *ls = malloc(N * sizeof(float));
    uint64_t s = 99 + (uint64_t)with_sizes;
    gc_fill(qkv, N * ld, &s, 1.5f);
    gc_fill(R, N * D, &s, 1.0f);
    for (size_t j = 0; j < N; j++) ls[j] = logf((float)(1 + j % 4));
    Ctx c = {N, D, H, b, r, M, ld, ns, tb, buf, with_sizes ? ls : NULL, fast};
    fwd(&c, out);
    // the pattern really is sparse: some query block misses some key block
    uint8_t *m = malloc(N * N);
    attn_bigbird_mask(m, tb, M, N, b, r);
    size_t zeros = 0;
    for (size_t i = 0; i < N * N; i++) zeros += !m[i];
    cr_assert(zeros > N * N / 4, "mask has only %zu zeros", zeros);
    free(m);
    if (fast)
        attn_bigbird_backward_ws(g, g + D, g + 2 * D, R, buf, qkv, qkv + D, qkv + 2 * D, ld, c.log_s, tb, M, N, D, H, b,
                                 r, work);
    else attn_bigbird_backward_ref(g, g + D, g + 2 * D, R, qkv, qkv + D, qkv + 2 * D, ld, c.log_s, tb, M, N, D, H, b, r);
    size_t at;
    double e = gc_check(fwd, &c, qkv, N * ld, g, out, R, N * D, 1e-2f, &at);
    cr_expect(e < 1e-2, "%s sizes=%d: FD error %g at row %zu col %zu", fast ? "fast" : "ref", with_sizes, e, at / ld,
              at % ld);
    free(tb); free(buf); free(out); free(R); free(g); free(work); free(ls);
}

Test(attn_bigbird, finite_differences_reference) { gradcheck(0, 0); gradcheck(1, 0); }
Test(attn_bigbird, finite_differences_fast) { gradcheck(0, 1); gradcheck(1, 1); }

static double vs_softmax(size_t N, size_t D, size_t H, size_t b, size_t r, size_t M, int with_sizes) {
    size_t ld = 3 * D;
    int32_t *tb = tables(H, M, r, 77);
    float *qkv = malloc(N * ld * sizeof(float)), *o = malloc(N * D * sizeof(float));
    float *ref = malloc(N * D * sizeof(float)), *ls = sizes(N);
    float *save = malloc(attn_bigbird_save_floats(N, D, H, b) * sizeof(float));
    uint64_t s = 17 + N;
    gc_fill(qkv, N * ld, &s, 2.0f);
    attn_bigbird_forward(o, save, qkv, qkv + D, qkv + 2 * D, ld, with_sizes ? ls : NULL, tb, M, N, D, H, b, r);
    attn_softmax_forward_ref(ref, qkv, qkv + D, qkv + 2 * D, ld, with_sizes ? ls : NULL, N, D, H);
    double e = max_rel(o, ref, N * D);
    free(tb); free(qkv); free(o); free(ref); free(ls); free(save);
    return e;
}

// SPEC §9.5: N <= (5 + r) b is `softmax` (b = 64: N = 512 is, N = 513 is not); so is a pattern
// in which every other block is random (r >= number of blocks).
Test(attn_bigbird, softmax_invariants) {
    for (int sz = 0; sz < 2; sz++) {
        double e = vs_softmax(512, 64, 2, 64, 3, 16, sz);
        cr_expect(e < 1e-5, "N = 512 = (5 + r) b: rel err %g against softmax", e);
        e = vs_softmax(40, 6, 2, 5, 3, 8, sz);  // 8 blocks of 5
        cr_expect(e < 1e-5, "N = 40, b = 5: rel err %g", e);
        e = vs_softmax(70, 6, 2, 5, 14, 14, sz);  // 14 blocks, 14 random: every block
        cr_expect(e < 1e-5, "r >= blocks: rel err %g", e);
        e = vs_softmax(45, 6, 2, 5, 3, 9, sz);  // 9 blocks of 5: sparse
        cr_expect(e > 1e-4, "N = 45, b = 5 is sparse, yet equals softmax (%g)", e);
    }
    double e = vs_softmax(513, 32, 1, 64, 3, 16, 0);
    cr_expect(e > 1e-4, "N = 513 is sparse, yet equals softmax (%g)", e);
}

// FLOPs: N = 38, b = 4, r = 1: 10 blocks, the last of 2 tokens. Query blocks 0 (4 rows) and 9
// (2 rows) see all 38 keys; blocks 1 and 8 see 3 full blocks + the last (2) + 1 random (4) = 18
// keys; blocks 2..7 see 4 full + 2 + 4 = 22 keys. pairs = 6 x 38 + 2 x 4 x 18 + 6 x 4 x 22 = 900.
Test(attn_bigbird, flop_count_formula) {
    size_t N = 38, D = 8, H = 2, d = 4, ld = 24, b = 4, r = 1, M = 10;
    int32_t *tb = tables(H, M, r, 3);
    float *qkv = calloc(N * ld, sizeof(float)), *out = malloc(N * D * sizeof(float)), *g = calloc(N * ld, sizeof(float));
    float *dout = calloc(N * D, sizeof(float)), *ls = calloc(N, sizeof(float));
    float *save = malloc(attn_bigbird_save_floats(N, D, H, b) * sizeof(float));
    float *work = malloc(attn_bigbird_work_floats(N, D, H, b) * sizeof(float));
    float *iw = malloc(attn_bigbird_infer_work_floats(N, D, H, b) * sizeof(float));
    double pairs = 900, macs = (double)H * 2 * pairs * d;
    cr_expect_eq(attn_bigbird_pairs(tb, M, N, b, r), pairs);
    cr_expect_eq(attn_bigbird_pairs(tb + M * r, M, N, b, r), pairs);
    for (int sz = 0; sz < 2; sz++)
        for (int infer = 0; infer < 2; infer++) {
            FlopCounter fc = {0};
            flops_install(&fc);
            if (infer)
                attn_bigbird_forward_infer(out, iw, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, tb, M, N, D, H, b, r);
            else attn_bigbird_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, tb, M, N, D, H, b, r);
            flops_install(NULL);
            cr_expect_float_eq(fc.macs, macs, 1e-9);
            cr_expect_float_eq(fc.flops, 2 * macs + H * (sz ? 3.0 : 2.0) * pairs, 1e-9);
        }
    FlopCounter fc = {0};
    flops_install(&fc);
    attn_bigbird_backward_ws(g, g + D, g + 2 * D, dout, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, tb, M, N, D, H, b, r,
                             work);
    flops_install(NULL);
    cr_expect_float_eq(fc.macs, 2 * macs, 1e-9);
    cr_expect_float_eq(fc.flops, 4 * macs + H * 2.0 * pairs, 1e-9);
    // dense: every pair, as softmax counts N^2
    cr_expect_eq(attn_bigbird_pairs(tb, M, 37, 8, r), 37.0 * 37);
    free(tb); free(qkv); free(out); free(g); free(dout); free(ls); free(save); free(work); free(iw);
}

// Proportional attention: a token of size 2 attends like two identical tokens of size 1 where
// the pattern keeps both copies together. The size-2 token is the last of a sparse sample
// (N = 38, b = 4: block 9 holds 36, 37); its copy appended (N = 39) stays in block 9, which is
// global, so every query sees both copies and every block list is unchanged.
Test(attn_bigbird, proportional_attention_equals_duplicated_tokens) {
    size_t D = 6, H = 2, ld = 18, b = 4, r = 1, M = 10;
    int32_t *tb = tables(H, M, r, 9);
    float a[38 * 18], c[39 * 18], oa[38 * 6], oc[39 * 6], ls[38] = {0};
    float *sa = malloc(attn_bigbird_save_floats(38, D, H, b) * sizeof(float));
    float *sc = malloc(attn_bigbird_save_floats(39, D, H, b) * sizeof(float));
    uint64_t s = 5;
    ls[37] = logf(2.0f);
    gc_fill(a, 38 * ld, &s, 1.5f);
    memcpy(c, a, sizeof a);
    memcpy(c + 38 * ld, a + 37 * ld, ld * sizeof(float));
    attn_bigbird_forward(oa, sa, a, a + D, a + 2 * D, ld, ls, tb, M, 38, D, H, b, r);
    attn_bigbird_forward(oc, sc, c, c + D, c + 2 * D, ld, NULL, tb, M, 39, D, H, b, r);
    double e = max_rel(oa, oc, 38 * D);
    cr_expect(e < 1e-6, "rel diff %g", e);
    // without log s the size-2 token counts once: different
    attn_bigbird_forward(oa, sa, a, a + D, a + 2 * D, ld, NULL, tb, M, 38, D, H, b, r);
    cr_expect(max_rel(oa, oc, 38 * D) > 1e-4);
    free(tb); free(sa); free(sc);
}

Test(attn_bigbird, one_and_two_threads_agree) {
    size_t N = 700, D = 64, H = 2, ld = 3 * D, b = 64, r = 3, M = 16;
    int32_t *tb = tables(H, M, r, 21);
    float *qkv = malloc(N * ld * sizeof(float)), *dout = malloc(N * D * sizeof(float)), *ls = sizes(N);
    float *o[2], *g[2], *sv[2];
    float *work = malloc(attn_bigbird_work_floats(N, D, H, b) * sizeof(float));
    uint64_t s = 3;
    gc_fill(qkv, N * ld, &s, 2.0f);
    gc_fill(dout, N * D, &s, 1.0f);
    int before = threads_get();
    for (int t = 0; t < 2; t++) {
        o[t] = malloc(N * D * sizeof(float));
        g[t] = calloc(N * ld, sizeof(float));
        sv[t] = malloc(attn_bigbird_save_floats(N, D, H, b) * sizeof(float));
        threads_set(t + 1);
        attn_bigbird_forward(o[t], sv[t], qkv, qkv + D, qkv + 2 * D, ld, ls, tb, M, N, D, H, b, r);
        attn_bigbird_backward_ws(g[t], g[t] + D, g[t] + 2 * D, dout, sv[t], qkv, qkv + D, qkv + 2 * D, ld, ls, tb, M,
                                 N, D, H, b, r, work);
    }
    threads_set(before);
    cr_expect(max_rel(o[1], o[0], N * D) < 1e-6, "forward 1 vs 2 threads %g", max_rel(o[1], o[0], N * D));
    cr_expect(max_rel(g[1], g[0], N * ld) < 1e-6, "backward 1 vs 2 threads %g", max_rel(g[1], g[0], N * ld));
    for (int t = 0; t < 2; t++) { free(o[t]); free(g[t]); free(sv[t]); }
    free(tb); free(qkv); free(dout); free(ls); free(work);
}

Test(attn_bigbird, empty_sample_is_a_no_op) {
    float out[4] = {1, 2, 3, 4}, g[4] = {5, 6, 7, 8};
    int32_t tb[3] = {-1, -1, -1};
    FlopCounter fc = {0};
    flops_install(&fc);
    attn_bigbird_forward(out, NULL, NULL, NULL, NULL, 24, NULL, tb, 1, 0, 8, 2, 64, 3);
    attn_bigbird_forward_infer(out, NULL, NULL, NULL, NULL, 24, NULL, tb, 1, 0, 8, 2, 64, 3);
    attn_bigbird_backward_ws(g, g, g, NULL, NULL, NULL, NULL, NULL, 24, NULL, tb, 1, 0, 8, 2, 64, 3, NULL);
    flops_install(NULL);
    cr_expect(out[0] == 1 && out[3] == 4 && g[0] == 5 && g[3] == 8);
    cr_expect(fc.flops == 0 && fc.macs == 0);
    cr_expect_eq(attn_bigbird_save_floats(0, 8, 2, 64), 0);
}
