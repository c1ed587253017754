// Linear attention (core/attn_linear.c): the reference against the direct (quadratic) formula in
// double, the fast kernels against the reference on awkward shapes, gradients against finite
// differences of the direct formula, the inference form against the forward, FLOP counts against
// hand formulas, and the size semantics of log s.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attn_linear.h"
#include "core/flops.h"
#include "core/rng.h"

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

static void fill_sizes(float *ls, size_t n, uint64_t *rng) {
    for (size_t j = 0; j < n; j++) ls[j] = logf(1.0f + (float)rng_below(rng, 5));
}

static double phi_d(double x) { return x > 0 ? x + 1 : exp(x); }

// The direct formula, written out in double without the d x d context (the other association):
//   out_i = sum_j s_j (phi(q_i) . phi(k_j)) v_j / (sum_j s_j phi(q_i) . phi(k_j) + 1e-6).
// qkv (N, 3D) fused, log_s (N) or NULL, out (N, D).
static void direct(double *out, const double *qkv, const double *log_s, size_t N, size_t D,
                   size_t H) {
    size_t d = D / H, ld = 3 * D;
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < N; i++) {
            double num[64] = {0}, den = 1e-6;
            for (size_t j = 0; j < N; j++) {
                double kij = 0;
                for (size_t c = 0; c < d; c++)
                    kij += phi_d(qkv[i * ld + h * d + c]) * phi_d(qkv[j * ld + D + h * d + c]);
                kij *= log_s ? exp(log_s[j]) : 1.0;
                den += kij;
                for (size_t e = 0; e < d; e++) num[e] += kij * qkv[j * ld + 2 * D + h * d + e];
            }
            for (size_t e = 0; e < d; e++) out[i * D + h * d + e] = num[e] / den;
        }
}

// max |a - b| / max(max |b|, 1e-6)
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

// The plain reference against the direct formula.
Test(attn_linear, reference_matches_direct_formula) {
    const size_t shapes[][3] = {{1, 4, 1}, {7, 6, 2}, {33, 15, 3}, {65, 64, 2}};
    for (size_t s = 0; s < 4; s++)
        for (int sz = 0; sz < 2; sz++) {
            size_t N = shapes[s][0], D = shapes[s][1], H = shapes[s][2], ld = 3 * D;
            uint64_t rng = 10 + s;
            float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
            float *out = malloc(N * D * sizeof(float)), *want = malloc(N * D * sizeof(float));
            double *qd = malloc(N * ld * sizeof(double)), *lsd = malloc(N * sizeof(double));
            double *od = malloc(N * D * sizeof(double));
            fill(qkv, N * ld, 1.5f, &rng);
            fill_sizes(ls, N, &rng);
            for (size_t x = 0; x < N * ld; x++) qd[x] = qkv[x];
            for (size_t j = 0; j < N; j++) lsd[j] = ls[j];
            attn_linear_forward_ref(out, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, N, D, H);
            direct(od, qd, sz ? lsd : NULL, N, D, H);
            for (size_t x = 0; x < N * D; x++) want[x] = (float)od[x];
            double err = rel_err(out, want, N * D);
            cr_assert_lt(err, 1e-6, "N=%zu D=%zu H=%zu sizes=%d: ref vs direct %g", N, D, H, sz, err);
            free(qkv); free(ls); free(out); free(want); free(qd); free(lsd); free(od);
        }
}

// Fast forward, inference form and backward against the reference on one shape; ld = 3D.
// Backward starts from non-zero gradients (it must add) and runs on NaN-filled work.
static void check_fast(size_t N, size_t D, size_t H, int with_sizes, uint64_t seed, double *worst) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    float *o3 = malloc(N * D * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *save = malloc(attn_linear_save_floats(N, D, H) * sizeof(float));
    size_t nw = attn_linear_work_floats(N, D, H), niw = attn_linear_infer_work_floats(N, D, H);
    float *work = malloc(nw * sizeof(float)), *iwork = malloc(niw * sizeof(float));
    float *g0 = malloc(N * ld * sizeof(float)), *g1 = malloc(N * ld * sizeof(float));
    float *g2 = malloc(N * ld * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill(g0, N * ld, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (size_t x = 0; x < nw; x++) work[x] = NAN;
    for (size_t x = 0; x < niw; x++) iwork[x] = NAN;
    const float *lsp = with_sizes ? ls : NULL;
    const float *q = qkv, *k = qkv + D, *v = qkv + 2 * D;
    attn_linear_forward(o1, save, q, k, v, ld, lsp, N, D, H);
    attn_linear_forward_ref(o2, q, k, v, ld, lsp, N, D, H);
    attn_linear_forward_infer(o3, iwork, q, k, v, ld, lsp, N, D, H);
    double e_fwd = rel_err(o1, o2, N * D), e_inf = rel_err(o3, o1, N * D);
    cr_assert_lt(e_fwd, 2e-6, "N=%zu D=%zu H=%zu sizes=%d: forward vs ref %g", N, D, H, with_sizes, e_fwd);
    cr_assert_lt(e_inf, 2e-6, "N=%zu D=%zu H=%zu sizes=%d: infer vs forward %g", N, D, H, with_sizes, e_inf);
    memcpy(g1, g0, N * ld * sizeof(float));
    memcpy(g2, g0, N * ld * sizeof(float));
    attn_linear_backward_ws(g1, g1 + D, g1 + 2 * D, G, save, q, k, v, ld, lsp, N, D, H, work);
    attn_linear_backward_ref(g2, g2 + D, g2 + 2 * D, G, q, k, v, ld, lsp, N, D, H);
    // Per-part scale, floored at 1e-2 of the whole gradient's: with N = 1 the output is v up to
    // 1e-6, so dq, dk are ~1e-6 and cancel in float (r T - a r^2 z): only absolute error counts.
    const char *names[3] = {"dq", "dk", "dv"};
    double e_bwd = 0, all = 0;
    for (size_t x = 0; x < N * ld; x++) all = fmax(all, fabs((double)g2[x] - g0[x]));
    for (size_t part = 0; part < 3; part++) {
        double num = 0, den = 1e-2 * all;
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < D; c++) {
                size_t x = i * ld + part * D + c;
                num = fmax(num, fabs((double)g1[x] - g2[x]));
                den = fmax(den, fabs((double)g2[x] - g0[x]));
            }
        cr_assert_lt(num / den, 2e-5, "N=%zu D=%zu H=%zu sizes=%d: %s fast vs ref %g", N, D, H,
                     with_sizes, names[part], num / den);
        e_bwd = fmax(e_bwd, num / den);
    }
    worst[0] = fmax(worst[0], e_fwd);
    worst[1] = fmax(worst[1], e_inf);
    worst[2] = fmax(worst[2], e_bwd);
    free(qkv); free(ls); free(o1); free(o2); free(o3); free(G); free(save); free(work);
    free(iwork); free(g0); free(g1); free(g2);
}

Test(attn_linear, fast_matches_reference_awkward_shapes) {
    const size_t Ns[] = {1, 2, 7, 65, 300};
    const size_t DH[][2] = {{6, 2}, {64, 2}, {32, 1}};
    double worst[3] = {0};
    uint64_t seed = 100;
    for (size_t s = 0; s < 3; s++)
        for (size_t n = 0; n < 5; n++)
            for (int sz = 0; sz < 2; sz++) check_fast(Ns[n], DH[s][0], DH[s][1], sz, seed++, worst);
    // around the 256-row chunk of the inference form
    const size_t Nc[] = {255, 256, 257, 600};
    for (size_t n = 0; n < 4; n++) check_fast(Nc[n], 64, 2, 1, seed++, worst);
    cr_log_info("linear: worst rel err forward vs ref %.3g, infer vs forward %.3g, backward vs ref %.3g",
                worst[0], worst[1], worst[2]);
}

// Loss = sum(G * out): backward (fast and reference) against central differences of the direct
// formula in double, for q, k and v of a fused buffer. Values of both signs reach both branches
// of elu.
static void check_grad(size_t N, size_t D, size_t H, int with_sizes, uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *ls = malloc(N * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *save = malloc(attn_linear_save_floats(N, D, H) * sizeof(float));
    float *work = malloc(attn_linear_work_floats(N, D, H) * sizeof(float));
    float *ga = calloc(N * ld, sizeof(float)), *gr = calloc(N * ld, sizeof(float));
    double *qd = malloc(N * ld * sizeof(double)), *od = malloc(N * D * sizeof(double));
    double *lsd = malloc(N * sizeof(double)), *num = malloc(N * ld * sizeof(double));
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    const float *lsp = with_sizes ? ls : NULL;
    attn_linear_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    attn_linear_backward_ws(ga, ga + D, ga + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D, ld, lsp,
                            N, D, H, work);
    attn_linear_backward_ref(gr, gr + D, gr + 2 * D, G, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
    for (size_t x = 0; x < N * ld; x++) qd[x] = qkv[x];
    for (size_t j = 0; j < N; j++) lsd[j] = ls[j];
    const double eps = 1e-5;
    for (size_t x = 0; x < N * ld; x++) {
        double keep = qd[x], lp = 0, lm = 0;
        qd[x] = keep + eps;
        direct(od, qd, with_sizes ? lsd : NULL, N, D, H);
        for (size_t i = 0; i < N * D; i++) lp += G[i] * od[i];
        qd[x] = keep - eps;
        direct(od, qd, with_sizes ? lsd : NULL, N, D, H);
        for (size_t i = 0; i < N * D; i++) lm += G[i] * od[i];
        qd[x] = keep;
        num[x] = (lp - lm) / (2 * eps);
    }
    const char *names[3] = {"dq", "dk", "dv"};
    for (size_t part = 0; part < 3; part++) {
        double ea = 0, er = 0, den = 1e-6;
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < D; c++) {
                size_t x = i * ld + part * D + c;
                ea = fmax(ea, fabs(ga[x] - num[x]));
                er = fmax(er, fabs(gr[x] - num[x]));
                den = fmax(den, fabs(num[x]));
            }
        cr_assert_gt(den, 1e-3, "%s: gradient vanishes, the check would prove nothing", names[part]);
        cr_assert_lt(ea / den, 1e-4, "N=%zu D=%zu H=%zu sizes=%d: fast %s vs FD %g", N, D, H,
                     with_sizes, names[part], ea / den);
        cr_assert_lt(er / den, 1e-4, "N=%zu D=%zu H=%zu sizes=%d: ref %s vs FD %g", N, D, H,
                     with_sizes, names[part], er / den);
    }
    free(qkv); free(G); free(ls); free(out); free(save); free(work); free(ga); free(gr);
    free(qd); free(od); free(lsd); free(num);
}

Test(attn_linear, gradients_match_finite_differences) {
    check_grad(2, 4, 1, 1, 11);
    check_grad(5, 4, 1, 0, 12);
    check_grad(6, 6, 2, 1, 13);
    check_grad(9, 9, 3, 1, 14);
}

// FLOP and MAC counts against the hand formula for N = 10, D = 8, H = 2 (d = 4). Per head:
//   forward  products 2 d^2 N (C) + 2 N d^2 (phi(Q) C) + 2 N d (the N dots phi(q_i) . z);
//            element-wise 4 N d (two elu+1) + N d (z) + 2 N + N d (eps, 1/den, scaling)
//            = N (4 d^2 + 8 d + 2) = 980; sizes add N (d + 1) = 50 (exp, s_j phi(k_j)).
//   backward products 4 x 2 N d^2 + 2 x 2 N d; element-wise 2 N + 3 N d + 2 N d + N d + N d
//            + 2 N d = N (8 d^2 + 13 d + 2) = 1820; sizes add N (exp of log s) = 10.
// MACs: forward N (2 d^2 + d) = 360 per head, backward N (4 d^2 + 2 d) = 720 per head.
Test(attn_linear, flops_match_hand_formula) {
    size_t N = 10, D = 8, H = 2, ld = 3 * D;
    uint64_t rng = 3;
    float qkv[10 * 24], ls[10], out[10 * 8], G[10 * 8], dqkv[10 * 24] = {0};
    float *save = malloc(attn_linear_save_floats(N, D, H) * sizeof(float));
    float *work = malloc(attn_linear_work_floats(N, D, H) * sizeof(float));
    float *iwork = malloc(attn_linear_infer_work_floats(N, D, H) * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (int sz = 0; sz < 2; sz++) {
        const float *lsp = sz ? ls : NULL;
        FlopCounter f = {0}, b = {0}, fi = {0};
        flops_install(&f);
        attn_linear_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
        flops_install(&b);
        attn_linear_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D,
                                ld, lsp, N, D, H, work);
        flops_install(&fi);
        attn_linear_forward_infer(out, iwork, qkv, qkv + D, qkv + 2 * D, ld, lsp, N, D, H);
        flops_install(NULL);
        cr_assert_eq(f.flops, 2.0 * (980 + (sz ? 50 : 0)), "sizes=%d forward %.0f", sz, f.flops);
        cr_assert_eq(f.macs, 2.0 * 360, "forward MACs %.0f", f.macs);
        cr_assert_eq(b.flops, 2.0 * (1820 + (sz ? 10 : 0)), "sizes=%d backward %.0f", sz, b.flops);
        cr_assert_eq(b.macs, 2.0 * 720, "backward MACs %.0f", b.macs);
        cr_assert_eq(fi.flops, f.flops, "infer %.0f vs forward %.0f", fi.flops, f.flops);
        cr_assert_eq(fi.macs, f.macs);
    }
    free(save); free(work); free(iwork);
}

// Inference workspace: bounded in N (the same from one 256-row chunk up), far below the save.
Test(attn_linear, infer_work_bounded_in_n) {
    const size_t DH[][2] = {{64, 2}, {32, 1}, {6, 2}};
    for (size_t s = 0; s < 3; s++) {
        size_t D = DH[s][0], H = DH[s][1], d = D / H;
        size_t w = attn_linear_infer_work_floats(4096, D, H);
        cr_assert_eq(attn_linear_infer_work_floats(1u << 24, D, H), w);
        cr_assert_leq(attn_linear_infer_work_floats(7, D, H), w);
        cr_assert_leq(w, d * d + d + 256 * d);
        cr_assert_lt(20 * w, attn_linear_save_floats(4096, D, H));
    }
}

// log s all zero (every size 1) equals log s NULL bit for bit; a token of size 2 acts like two
// copies of itself ([x, y, x] vs [x (size 2), y]); without log s it would not.
Test(attn_linear, size_semantics) {
    size_t N = 40, D = 12, H = 3, ld = 3 * D;
    uint64_t rng = 21;
    float qkv[40 * 36], zero[40] = {0}, o1[40 * 12], o2[40 * 12];
    float *save = malloc(attn_linear_save_floats(N, D, H) * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    attn_linear_forward(o1, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, N, D, H);
    attn_linear_forward(o2, save, qkv, qkv + D, qkv + 2 * D, ld, zero, N, D, H);
    cr_assert(memcmp(o1, o2, sizeof o1) == 0, "log s = 0 differs from log s NULL");
    free(save);

    D = 8, H = 2, ld = 3 * D;
    float three[3 * 24], two[2 * 24], o3[3 * 8], ot[2 * 8], s3[256], s2[256];
    fill(three, 2 * ld, 1.0f, &rng);
    memcpy(three + 2 * ld, three, ld * sizeof(float));   // row 2 = row 0
    memcpy(two, three, 2 * ld * sizeof(float));
    float ls2[2] = {logf(2.0f), 0.0f};
    cr_assert_leq(attn_linear_save_floats(3, D, H), 256);
    attn_linear_forward(o3, s3, three, three + D, three + 2 * D, ld, NULL, 3, D, H);
    attn_linear_forward(ot, s2, two, two + D, two + 2 * D, ld, ls2, 2, D, H);
    for (size_t c = 0; c < 2 * D; c++) cr_assert_float_eq(o3[c], ot[c], 1e-5f, "col %zu", c);
    attn_linear_forward(ot, s2, two, two + D, two + 2 * D, ld, NULL, 2, D, H);
    double diff = 0;
    for (size_t c = 0; c < 2 * D; c++) diff = fmax(diff, fabs(o3[c] - ot[c]));
    cr_assert_gt(diff, 1e-4, "the size-2 weight must matter");
}

// Per-sample by construction: a sample's output depends on its own N rows only. The same sample
// at the head of a longer buffer whose further rows are NaN gives the same bits (forward,
// inference form and backward).
Test(attn_linear, reads_only_its_sample) {
    size_t N = 30, D = 8, H = 2, ld = 3 * D;
    uint64_t rng = 31;
    float a[30 * 24], b[60 * 24], ls[60], o1[30 * 8], o2[30 * 8], G[30 * 8];
    float g1[30 * 24] = {0}, g2[60 * 24] = {0};
    float s1[2048], s2[2048], w1[2048], w2[2048];
    cr_assert_leq(attn_linear_save_floats(N, D, H), 2048);
    cr_assert_leq(attn_linear_work_floats(N, D, H), 2048);
    fill(a, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (size_t x = 0; x < 60 * ld; x++) b[x] = NAN;
    for (size_t j = N; j < 60; j++) ls[j] = NAN;
    memcpy(b, a, sizeof a);
    attn_linear_forward(o1, s1, a, a + D, a + 2 * D, ld, ls, N, D, H);
    attn_linear_forward(o2, s2, b, b + D, b + 2 * D, ld, ls, N, D, H);
    cr_assert(memcmp(o1, o2, sizeof o1) == 0);
    attn_linear_backward_ws(g1, g1 + D, g1 + 2 * D, G, s1, a, a + D, a + 2 * D, ld, ls, N, D, H, w1);
    attn_linear_backward_ws(g2, g2 + D, g2 + 2 * D, G, s2, b, b + D, b + 2 * D, ld, ls, N, D, H, w2);
    cr_assert(memcmp(g1, g2, sizeof g1) == 0);
    attn_linear_forward_infer(o2, w2, b, b + D, b + 2 * D, ld, ls, N, D, H);
    cr_assert_lt(rel_err(o2, o1, N * D), 2e-6);
}
