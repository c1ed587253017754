// Efficient attention (core/attn_efficient.c): forward against a direct double evaluation of
// rho_q(Q) (rho_k(K + log s)^T V), backward against finite differences of that evaluation, the
// BLAS backward against the plain one, accumulation, strides, and the size semantics of log s.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/flops.h"
#include "core/mem.h"
#include "core/rng.h"

// Plain (loop) backward kernel, exported by core/attn_efficient.c beside the BLAS one.
void attn_efficient_backward_plain(float *dq, float *dk, float *dv, const float *dout,
                                   const float *save, const float *q, const float *k,
                                   const float *v, size_t ld, const float *log_s, size_t N,
                                   size_t D, size_t H);

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

// Direct evaluation in double. qkv (N, 3D) fused (q | k | v), log_s (N) or NULL, out (N, D).
static void ref_forward(double *out, const double *qkv, const double *log_s, size_t N, size_t D,
                        size_t H) {
    size_t d = D / H, ld = 3 * D;
    for (size_t h = 0; h < H; h++) {
        for (size_t i = 0; i < N; i++) {
            // rho_q of row i
            double mx = -INFINITY, pq[64], sum = 0;
            for (size_t c = 0; c < d; c++) mx = fmax(mx, qkv[i * ld + h * d + c]);
            for (size_t c = 0; c < d; c++) sum += pq[c] = exp(qkv[i * ld + h * d + c] - mx);
            for (size_t c = 0; c < d; c++) pq[c] /= sum;
            for (size_t e = 0; e < d; e++) {
                double o = 0;
                for (size_t c = 0; c < d; c++) {
                    // (rho_k(K)^T V)[c][e] = sum_j softmax_j(K[j][c] + log s_j) V[j][e]
                    double kmx = -INFINITY, ks = 0, ctx = 0;
                    for (size_t j = 0; j < N; j++)
                        kmx = fmax(kmx, qkv[j * ld + D + h * d + c] + (log_s ? log_s[j] : 0));
                    for (size_t j = 0; j < N; j++) {
                        double w = exp(qkv[j * ld + D + h * d + c] + (log_s ? log_s[j] : 0) - kmx);
                        ks += w;
                        ctx += w * qkv[j * ld + 2 * D + h * d + e];
                    }
                    o += pq[c] * ctx / ks;
                }
                out[i * D + h * d + e] = o;
            }
        }
    }
}

// Scale-aware error: max |a - b| / max(max |b|, 1e-6).
static double rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static void to_double(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

// The forward (infer = 0) or the inference form (infer = 1) against the double formula.
static void check_forward(size_t N, size_t D, size_t H, int with_sizes, uint64_t seed, int infer) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *ls = malloc(N * sizeof(float));
    size_t nsave = infer ? attn_efficient_infer_work_floats(N, D, H) : attn_efficient_save_floats(N, D, H);
    float *save = malloc(nsave * sizeof(float));
    double *qkvd = malloc(N * ld * sizeof(double)), *outd = malloc(N * D * sizeof(double));
    double *lsd = malloc(N * sizeof(double));
    fill(qkv, N * ld, 1.5f, &rng);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)rng_below(&rng, 5));
    if (infer) attn_efficient_forward_infer(out, save, qkv, qkv + D, qkv + 2 * D, ld, with_sizes ? ls : NULL, N, D, H);
    else attn_efficient_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, with_sizes ? ls : NULL, N, D, H);
    to_double(qkvd, qkv, N * ld);
    to_double(lsd, ls, N);
    ref_forward(outd, qkvd, with_sizes ? lsd : NULL, N, D, H);
    double err = rel_err(out, outd, N * D);
    cr_assert_lt(err, 2e-6, "%s N=%zu D=%zu H=%zu sizes=%d: rel err %g", infer ? "infer" : "forward", N, D, H,
                 with_sizes, err);
    free(qkv); free(out); free(ls); free(save); free(qkvd); free(outd); free(lsd);
}

Test(attn_efficient, forward_matches_direct_formula) {
    check_forward(1, 4, 1, 0, 1, 0);
    check_forward(7, 6, 2, 0, 2, 0);
    check_forward(7, 6, 2, 1, 3, 0);
    check_forward(33, 15, 3, 1, 4, 0);
    check_forward(50, 8, 1, 1, 5, 0);
    check_forward(300, 8, 2, 1, 6, 0);   // above the threading threshold of the row loops
}

// Loss = sum(G * out). Analytic grads from backward(dout = G) vs central differences of the double
// reference, for q, k and v of a fused buffer (so strides and the untouched columns matter).
static void check_grad(size_t N, size_t D, size_t H, int with_sizes, uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *dqkv = calloc(N * ld, sizeof(float));
    float *out = malloc(N * D * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *ls = malloc(N * sizeof(float));
    float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
    double *qkvd = malloc(N * ld * sizeof(double)), *outd = malloc(N * D * sizeof(double));
    double *lsd = malloc(N * sizeof(double)), *num = malloc(N * ld * sizeof(double));
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)rng_below(&rng, 4));
    const float *lsp = with_sizes ? ls : NULL;
    attn_efficient_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_efficient_backward(dqkv, dqkv + D, dqkv + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D, ld,
                            lsp, N, D, H);
    to_double(qkvd, qkv, N * ld);
    to_double(lsd, ls, N);
    const double eps = 1e-5;
    for (size_t x = 0; x < N * ld; x++) {
        double keep = qkvd[x], lp = 0, lm = 0;
        qkvd[x] = keep + eps;
        ref_forward(outd, qkvd, with_sizes ? lsd : NULL, N, D, H);
        for (size_t i = 0; i < N * D; i++) lp += G[i] * outd[i];
        qkvd[x] = keep - eps;
        ref_forward(outd, qkvd, with_sizes ? lsd : NULL, N, D, H);
        for (size_t i = 0; i < N * D; i++) lm += G[i] * outd[i];
        qkvd[x] = keep;
        num[x] = (lp - lm) / (2 * eps);
    }
    const char *names[3] = {"dq", "dk", "dv"};
    for (int part = 0; part < 3; part++) {
        double n2 = 0, d2 = 1e-6;
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < D; c++) {
                size_t x = i * ld + part * D + c;
                n2 = fmax(n2, fabs(dqkv[x] - num[x]));
                d2 = fmax(d2, fabs(num[x]));
            }
        cr_assert_lt(n2 / d2, 1e-4, "%s N=%zu D=%zu H=%zu sizes=%d: rel err %g", names[part], N, D,
                     H, with_sizes, n2 / d2);
        cr_assert_gt(d2, 1e-3, "%s: gradient vanishes, the check would prove nothing", names[part]);
    }
    free(qkv); free(dqkv); free(out); free(G); free(ls); free(save);
    free(qkvd); free(outd); free(lsd); free(num);
}

Test(attn_efficient, gradients_match_finite_differences) {
    check_grad(5, 4, 1, 0, 11);
    check_grad(6, 6, 2, 1, 12);
    check_grad(9, 9, 3, 1, 13);
}

// The BLAS backward and the plain backward agree on awkward shapes, and both accumulate (+=).
Test(attn_efficient, blas_backward_matches_plain_and_accumulates) {
    size_t shapes[][3] = {{37, 12, 3}, {1, 5, 1}, {130, 20, 2}, {300, 8, 2}};
    for (size_t s = 0; s < 4; s++) {
        size_t N = shapes[s][0], D = shapes[s][1], H = shapes[s][2], ld = 3 * D;
        uint64_t rng = 100 + s;
        float *qkv = malloc(N * ld * sizeof(float)), *G = malloc(N * D * sizeof(float));
        float *out = malloc(N * D * sizeof(float)), *ls = malloc(N * sizeof(float));
        float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
        float *g1 = malloc(N * ld * sizeof(float)), *g2 = malloc(N * ld * sizeof(float));
        float *g0 = malloc(N * ld * sizeof(float));
        fill(qkv, N * ld, 1.0f, &rng);
        fill(G, N * D, 1.0f, &rng);
        fill(g0, N * ld, 1.0f, &rng);   // non-zero start: backward must add, not overwrite
        for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)rng_below(&rng, 6));
        memcpy(g1, g0, N * ld * sizeof(float));
        memcpy(g2, g0, N * ld * sizeof(float));
        attn_efficient_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
        attn_efficient_backward(g1, g1 + D, g1 + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D, ld,
                                ls, N, D, H);
        attn_efficient_backward_plain(g2, g2 + D, g2 + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D,
                                      ld, ls, N, D, H);
        double num = 0, den = 1e-6;
        for (size_t x = 0; x < N * ld; x++) {
            num = fmax(num, fabs(g1[x] - g2[x]));
            den = fmax(den, fabs(g1[x] - g0[x]));
        }
        cr_assert_lt(num / den, 1e-5, "shape %zu: blas vs plain rel err %g", s, num / den);
        // a second BLAS call adds the same increment again
        attn_efficient_backward(g1, g1 + D, g1 + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D, ld,
                                ls, N, D, H);
        for (size_t x = 0; x < N * ld; x++)
            cr_assert_float_eq(g1[x] - g0[x], 2.0f * (g2[x] - g0[x]), 1e-4f * (float)den,
                               "accumulation at %zu", x);
        free(qkv); free(G); free(out); free(ls); free(save); free(g0); free(g1); free(g2);
    }
}

// Proportional weighting: a token of size 2 acts on the keys exactly like two copies of itself.
// Sequence [x, y, x] with sizes 1 vs [x (size 2), y]: every query row's output must agree.
Test(attn_efficient, size_two_token_equals_two_copies) {
    size_t D = 8, H = 2, ld = 3 * D;
    uint64_t rng = 77;
    float three[3 * 24], two[2 * 24], o3[3 * 8], o2[2 * 8];
    float s3[128], s2[128];
    fill(three, 2 * ld, 1.0f, &rng);
    memcpy(three + 2 * ld, three, ld * sizeof(float));   // row 2 = row 0
    memcpy(two, three, ld * sizeof(float));
    memcpy(two + ld, three + ld, ld * sizeof(float));
    float ls2[2] = {logf(2.0f), 0.0f};
    cr_assert_leq(attn_efficient_save_floats(3, D, H), sizeof s3 / sizeof *s3);
    cr_assert_leq(attn_efficient_save_floats(2, D, H), sizeof s2 / sizeof *s2);
    attn_efficient_forward(o3, s3, three, three + D, three + 2 * D, ld, NULL, 3, D, H);
    attn_efficient_forward(o2, s2, two, two + D, two + 2 * D, ld, ls2, 2, D, H);
    for (size_t c = 0; c < 2 * D; c++) cr_assert_float_eq(o3[c], o2[c], 1e-5f, "col %zu", c);
    // and without log s the size-2 token would be under-weighted: outputs differ
    attn_efficient_forward(o2, s2, two, two + D, two + 2 * D, ld, NULL, 2, D, H);
    double diff = 0;
    for (size_t c = 0; c < 2 * D; c++) diff = fmax(diff, fabs(o3[c] - o2[c]));
    cr_assert_gt(diff, 1e-4);
}

// Linear cost and memory in N: FLOPs exactly affine in N, and backward's workspace (measured
// by the project allocator) is O(N d + d^2), far below one N x N matrix.
Test(attn_efficient, linear_flops_and_no_quadratic_memory) {
    size_t D = 8, H = 1;
    double f[3];
    for (int t = 0; t < 3; t++) {
        size_t N = 100 * (size_t)(t + 1);
        float *qkv = calloc(N * 3 * D, sizeof(float)), *out = malloc(N * D * sizeof(float));
        float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
        FlopCounter fc = {0};
        flops_install(&fc);
        attn_efficient_forward(out, save, qkv, qkv + D, qkv + 2 * D, 3 * D, NULL, N, D, H);
        flops_install(NULL);
        f[t] = fc.flops;
        free(qkv); free(out); free(save);
    }
    cr_assert_float_eq(f[2] - f[1], f[1] - f[0], 1e-6);
    cr_assert_gt(f[1] - f[0], 0.0);
    // per-token forward cost: 4 d^2 (two products) + 4 d (two softmaxes, 2 per element)
    cr_assert_float_eq((f[1] - f[0]) / 100.0, 4.0 * D * D + 4.0 * D, 1e-9);

    size_t N = 2000, ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *dqkv = calloc(N * ld, sizeof(float));
    float *out = malloc(N * D * sizeof(float));
    float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
    uint64_t rng = 5;
    fill(qkv, N * ld, 1.0f, &rng);
    attn_efficient_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, N, D, H);
    size_t base = mem_current();
    mem_reset_peak();
    attn_efficient_backward(dqkv, dqkv + D, dqkv + 2 * D, out, save, qkv, qkv + D, qkv + 2 * D,
                            ld, NULL, N, D, H);
    size_t extra = mem_peak() - base;
    cr_assert_gt(extra, 0, "backward workspace should go through mem_alloc");
    cr_assert_leq(extra, (N * D + D * D + D) * sizeof(float) + 64);
    cr_assert_eq(mem_current(), base, "workspace freed");
    free(qkv); free(dqkv); free(out); free(save);
}

// ---------------------------------------------------------------- inference form

// Max |a - b| / max(max |b|, 1e-6) between two float outputs.
static double rel_err_f(const float *a, const float *b, size_t n) {
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

// attn_efficient_forward_infer vs attn_efficient_forward on one shape: outputs within 4e-6
// relative (the two sum C in different orders; the worst seen: 1.1e-6 with OpenBLAS's products,
// 2.0e-6 with the avx512 set's own, at N = 1000), FLOPs and MACs equal. work is malloc'ed at exactly the advertised size (ASan sees
// any overrun) and filled with NaN (stale contents must not leak into the output). Returns the
// error.
static double check_infer(size_t N, size_t D, size_t H, int with_sizes, uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    float *save = malloc(attn_efficient_save_floats(N, D, H) * sizeof(float));
    size_t nw = attn_efficient_infer_work_floats(N, D, H);
    float *work = malloc(nw * sizeof(float));
    fill(qkv, N * ld, 1.5f, &rng);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)rng_below(&rng, 5));
    for (size_t x = 0; x < N * D; x++) o2[x] = NAN;
    for (size_t x = 0; x < nw; x++) work[x] = NAN;
    const float *lsp = with_sizes ? ls : NULL;
    FlopCounter f1 = {0}, f2 = {0};
    flops_install(&f1);
    attn_efficient_forward(o1, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    flops_install(&f2);
    attn_efficient_forward_infer(o2, work, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    flops_install(NULL);
    for (size_t x = 0; x < N * D; x++)
        cr_assert(isfinite(o2[x]), "N=%zu D=%zu H=%zu sizes=%d: out[%zu] = %g", N, D, H,
                  with_sizes, x, o2[x]);
    double err = rel_err_f(o2, o1, N * D);
    cr_assert_lt(err, 4e-6, "N=%zu D=%zu H=%zu sizes=%d: infer vs forward rel err %g", N, D, H,
                 with_sizes, err);
    cr_assert_gt(f1.flops, 0.0);
    cr_assert_eq(f2.flops, f1.flops, "N=%zu D=%zu H=%zu: FLOPs %.0f vs %.0f", N, D, H, f2.flops,
                 f1.flops);
    cr_assert_eq(f2.macs, f1.macs, "N=%zu D=%zu H=%zu: MACs %.0f vs %.0f", N, D, H, f2.macs,
                 f1.macs);
    free(qkv); free(ls); free(o1); free(o2); free(save); free(work);
    return err;
}

// Awkward lengths around the 256-row chunk (1, 2, 7, 255, 256, 257, 600, 1000), with and
// without sizes, on three head shapes; ld = 3 D throughout.
Test(attn_efficient, infer_matches_forward_flops_equal) {
    const size_t Ns[] = {1, 2, 7, 255, 256, 257, 600, 1000};
    const size_t DH[][2] = {{6, 2}, {64, 2}, {32, 1}};
    double worst = 0;
    uint64_t seed = 500;
    for (size_t s = 0; s < 3; s++)
        for (size_t n = 0; n < sizeof Ns / sizeof *Ns; n++)
            for (int sz = 0; sz < 2; sz++)
                worst = fmax(worst, check_infer(Ns[n], DH[s][0], DH[s][1], sz, seed++));
    cr_log_info("infer vs forward: worst max rel err %.3g", worst);
}

// The inference form also against the direct double evaluation (not only against forward),
// on a length with a partial last chunk.
Test(attn_efficient, infer_matches_direct_formula) { check_forward(300, 8, 2, 1, 42, 1); }

// Workspace: bounded in N (the same for every N from one chunk up), far below forward's save.
Test(attn_efficient, infer_work_bounded_in_n) {
    const size_t DH[][2] = {{64, 2}, {32, 1}, {6, 2}};
    for (size_t s = 0; s < 3; s++) {
        size_t D = DH[s][0], H = DH[s][1], d = D / H;
        size_t w4k = attn_efficient_infer_work_floats(4096, D, H);
        cr_assert_eq(attn_efficient_infer_work_floats(65536, D, H), w4k);
        cr_assert_eq(attn_efficient_infer_work_floats(1u << 24, D, H), w4k);
        cr_assert_leq(attn_efficient_infer_work_floats(7, D, H), w4k);
        // one head's context and at most 256 rows of one head
        cr_assert_leq(w4k, d * d + 256 * d);
        cr_assert_lt(20 * w4k, attn_efficient_save_floats(4096, D, H), "D=%zu H=%zu: %zu vs %zu",
                     D, H, w4k, attn_efficient_save_floats(4096, D, H));
    }
}

// Stale workspace contents do not matter: NaN-filled and garbage-filled work give the same
// output bit for bit (and a second call on the same work repeats it).
Test(attn_efficient, infer_ignores_work_contents) {
    size_t N = 700, D = 64, H = 2, ld = 3 * D;
    uint64_t rng = 9;
    float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    size_t nw = attn_efficient_infer_work_floats(N, D, H);
    float *work = malloc(nw * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    for (size_t j = 0; j < N; j++) ls[j] = logf(1.0f + (float)rng_below(&rng, 3));
    for (size_t x = 0; x < nw; x++) work[x] = NAN;
    attn_efficient_forward_infer(o1, work, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
    fill(work, nw, 1e30f, &rng);
    attn_efficient_forward_infer(o2, work, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
    cr_assert(memcmp(o1, o2, N * D * sizeof(float)) == 0, "output depends on work's contents");
    for (size_t x = 0; x < N * D; x++) cr_assert(isfinite(o1[x]), "out[%zu] = %g", x, o1[x]);
    free(qkv); free(ls); free(o1); free(o2); free(work);
}
