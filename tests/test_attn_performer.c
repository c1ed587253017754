// Performer / FAVOR+ attention (core/attn_performer.c): the random features (orthogonal blocks,
// chi-distributed norms, determinism), the feature map and its backward against a double
// evaluation and finite differences, the reference against the direct (quadratic) formula, the
// fast kernels against the reference on awkward shapes, gradients against finite differences,
// the inference form, FLOP counts against hand formulas, the size semantics of log s, and the
// approximation error against exact softmax attention falling as the feature count m grows.
// Gradients are those of out(q, k, v; c) with the stabilisers c held at their forward values
// (core/attn_performer.h), so the finite differences below hold c fixed too.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/attn_performer.h"
#include "core/flops.h"
#include "core/rng.h"

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

static void fill_sizes(float *ls, size_t n, uint64_t *rng) {
    for (size_t j = 0; j < n; j++) ls[j] = logf(1.0f + (float)rng_below(rng, 5));
}

static float *draw(size_t m, size_t d, uint64_t seed) {
    float *W = malloc(m * d * sizeof(float));
    uint64_t rng = seed;
    cr_assert_eq(attn_performer_draw_features(W, m, d, &rng), 0);
    return W;
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

// ---------------------------------------------------------------- the random features

Test(attn_performer, features_orthogonal_blocks_chi_norms_deterministic) {
    const size_t md[][2] = {{1024, 16}, {40, 16}, {128, 32}, {7, 3}};
    for (size_t s = 0; s < 4; s++) {
        size_t m = md[s][0], d = md[s][1];
        float *W = draw(m, d, 42 + s), *W2 = draw(m, d, 42 + s), *W3 = draw(m, d, 43 + s);
        cr_assert(memcmp(W, W2, m * d * sizeof(float)) == 0, "same seed, different W");
        cr_assert(memcmp(W, W3, m * d * sizeof(float)) != 0, "different seeds, same W");
        double worst_in = 0, best_across = 0, mean = 0, var = 0;
        for (size_t a = 0; a < m; a++) {
            double na = 0;
            for (size_t c = 0; c < d; c++) na += (double)W[a * d + c] * W[a * d + c];
            mean += sqrt(na);
            var += na;
            for (size_t b = a + 1; b < m; b++) {
                double dot = 0, nb = 0;
                for (size_t c = 0; c < d; c++) {
                    dot += (double)W[a * d + c] * W[b * d + c];
                    nb += (double)W[b * d + c] * W[b * d + c];
                }
                double cosab = fabs(dot) / sqrt(na * nb);
                if (a / d == b / d) worst_in = fmax(worst_in, cosab);   // same block
                else best_across = fmax(best_across, cosab);
            }
        }
        cr_assert_lt(worst_in, 1e-5, "m=%zu d=%zu: rows of one block not orthogonal (cos %g)", m, d, worst_in);
        if (m > d) cr_assert_gt(best_across, 0.05, "m=%zu d=%zu: blocks not independent", m, d);
        if (m == 1024) {
            // mean of chi_d = sqrt(2) Gamma((d+1)/2) / Gamma(d/2); E |w|^2 = d
            mean /= (double)m;
            var /= (double)m;
            double chi = sqrt(2.0) * exp(lgamma((d + 1) / 2.0) - lgamma(d / 2.0));
            cr_log_info("W m=%zu d=%zu: mean row norm %.4f (chi mean %.4f, sqrt d %.4f), mean |w|^2 %.3f",
                        m, d, mean, chi, sqrt((double)d), var);
            cr_assert_lt(fabs(mean - chi), 0.05 * chi, "mean norm %g vs chi mean %g", mean, chi);
            cr_assert_lt(fabs(var - (double)d), 0.1 * (double)d, "mean |w|^2 %g vs d", var);
        }
        free(W); free(W2); free(W3);
    }
}

// ---------------------------------------------------------------- double evaluations

// F (N, m) = m^(-1/2) (exp(w_l . x' - |x'|^2/2 - c) + 1e-4) in double for N rows x (stride ldx),
// unweighted. per_row: c per row, else one c. fix = 0 computes c into c[] (N or 1 values);
// fix = 1 uses the given c (the gradient convention).
static void feat(double *F, const double *x, size_t ldx, const float *W, size_t m, size_t N,
                 size_t d, int per_row, double *c, int fix) {
    double xs = pow((double)d, -0.25), cg = -INFINITY;
    for (size_t i = 0; i < N; i++)
        for (size_t l = 0; l < m; l++) {
            double a = 0;
            for (size_t e = 0; e < d; e++) a += W[l * d + e] * x[i * ldx + e] * xs;
            F[i * m + l] = a;
            cg = fmax(cg, a);
        }
    if (!per_row && !fix) c[0] = cg;
    for (size_t i = 0; i < N; i++) {
        double hn = 0, ci = per_row ? -INFINITY : c[0];
        for (size_t e = 0; e < d; e++) hn += x[i * ldx + e] * x[i * ldx + e];
        hn *= 0.5 / sqrt((double)d);
        if (per_row) {
            if (fix) ci = c[i];
            else {
                for (size_t l = 0; l < m; l++) ci = fmax(ci, F[i * m + l]);
                c[i] = ci;
            }
        }
        for (size_t l = 0; l < m; l++)
            F[i * m + l] = (exp(F[i * m + l] - hn - ci) + 1e-4) / sqrt((double)m);
    }
}

// The direct formula in double, quadratic (no m x d context):
//   out_i = sum_j s_j (phi(q_i) . phi(k_j)) v_j / sum_j s_j phi(q_i) . phi(k_j).
// qkv (N, 3D) fused; cq (H N), ck (H): computed (fix = 0) or held (fix = 1).
static void direct(double *out, const double *qkv, const double *log_s, const float *W, size_t m,
                   size_t N, size_t D, size_t H, double *cq, double *ck, int fix) {
    size_t d = D / H, ld = 3 * D;
    double *Fq = malloc(N * m * sizeof(double)), *Fk = malloc(N * m * sizeof(double));
    for (size_t h = 0; h < H; h++) {
        feat(Fq, qkv + h * d, ld, W, m, N, d, 1, cq + h * N, fix);
        feat(Fk, qkv + D + h * d, ld, W, m, N, d, 0, ck + h, fix);
        for (size_t i = 0; i < N; i++) {
            double num[64] = {0}, den = 0;
            for (size_t j = 0; j < N; j++) {
                double kij = 0;
                for (size_t l = 0; l < m; l++) kij += Fq[i * m + l] * Fk[j * m + l];
                kij *= log_s ? exp(log_s[j]) : 1.0;
                den += kij;
                for (size_t e = 0; e < d; e++) num[e] += kij * qkv[j * ld + 2 * D + h * d + e];
            }
            for (size_t e = 0; e < d; e++) out[i * D + h * d + e] = num[e] / den;
        }
    }
    free(Fq); free(Fk);
}

// ---------------------------------------------------------------- the feature map

// attn_performer_phi against feat (scaled by s_i), and attn_performer_phi_backward against
// central differences of L = sum R * s_i feat(x) with c held, for queries (per row) and keys.
static void check_phi(size_t N, size_t d, size_t m, int per_row, int with_sizes, uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = d + 3;   // a stride that is not the width
    float *x = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *F = malloc(N * m * sizeof(float)), *R = malloc(N * m * sizeof(float));
    float *dx = calloc(N * ld, sizeof(float)), *W = draw(m, d, seed + 1);
    double *xd = malloc(N * ld * sizeof(double)), *Fd = malloc(N * m * sizeof(double));
    double c[64];
    fill(x, N * ld, 1.0f, &rng);
    fill(R, N * m, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    const float *lsp = with_sizes ? ls : NULL;
    for (size_t i = 0; i < N * ld; i++) xd[i] = x[i];
    attn_performer_phi(F, x, ld, lsp, W, m, N, d, per_row);
    feat(Fd, xd, ld, W, m, N, d, per_row, c, 0);
    double num = 0, den = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t l = 0; l < m; l++) {
            double want = Fd[i * m + l] * (lsp ? exp((double)ls[i]) : 1.0);
            num = fmax(num, fabs(F[i * m + l] - want));
            den = fmax(den, fabs(want));
        }
    cr_assert_lt(num / den, 2e-6, "phi N=%zu d=%zu m=%zu row=%d sizes=%d: %g", N, d, m, per_row,
                 with_sizes, num / den);
    float *dF = malloc(N * m * sizeof(float));
    memcpy(dF, R, N * m * sizeof(float));
    attn_performer_phi_backward(dx, dF, F, x, ld, lsp, W, m, N, d);
    const double eps = 1e-5;
    double ew = 0, gs = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t e = 0; e < d; e++) {
            double keep = xd[i * ld + e], lp = 0, lm = 0;
            for (int sgn = 0; sgn < 2; sgn++) {
                xd[i * ld + e] = keep + (sgn ? -eps : eps);
                feat(Fd, xd, ld, W, m, N, d, per_row, c, 1);
                double L = 0;
                for (size_t r = 0; r < N; r++)
                    for (size_t l = 0; l < m; l++)
                        L += R[r * m + l] * Fd[r * m + l] * (lsp ? exp((double)ls[r]) : 1.0);
                if (sgn) lm = L; else lp = L;
            }
            xd[i * ld + e] = keep;
            double g = (lp - lm) / (2 * eps);
            ew = fmax(ew, fabs(dx[i * ld + e] - g));
            gs = fmax(gs, fabs(g));
        }
    cr_assert_gt(gs, 1e-3, "phi gradient vanishes");
    cr_assert_lt(ew / gs, 1e-4, "phi backward N=%zu d=%zu m=%zu row=%d sizes=%d: %g", N, d, m,
                 per_row, with_sizes, ew / gs);
    for (size_t i = 0; i < N; i++)   // the padding columns of the stride stay untouched
        for (size_t e = d; e < ld; e++) cr_assert_eq(dx[i * ld + e], 0.0f);
    free(x); free(ls); free(F); free(R); free(dx); free(W); free(xd); free(Fd); free(dF);
}

Test(attn_performer, feature_map_matches_double_and_finite_differences) {
    for (int row = 0; row < 2; row++)
        for (int sz = 0; sz < 2; sz++) {
            check_phi(5, 4, 6, row, sz, 1 + row * 2 + sz);
            check_phi(9, 8, 20, row, sz, 11 + row * 2 + sz);
        }
}

// ---------------------------------------------------------------- the whole op

Test(attn_performer, reference_matches_direct_formula) {
    const size_t shapes[][4] = {{1, 4, 1, 8}, {7, 6, 2, 5}, {33, 16, 2, 24}, {65, 64, 2, 128}};
    for (size_t s = 0; s < 4; s++)
        for (int sz = 0; sz < 2; sz++) {
            size_t N = shapes[s][0], D = shapes[s][1], H = shapes[s][2], m = shapes[s][3];
            size_t ld = 3 * D;
            uint64_t rng = 10 + s;
            float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
            float *out = malloc(N * D * sizeof(float)), *want = malloc(N * D * sizeof(float));
            float *W = draw(m, D / H, 70 + s);
            double *qd = malloc(N * ld * sizeof(double)), *lsd = malloc(N * sizeof(double));
            double *od = malloc(N * D * sizeof(double)), *cq = malloc(N * H * sizeof(double));
            double ck[4];
            fill(qkv, N * ld, 1.0f, &rng);
            fill_sizes(ls, N, &rng);
            for (size_t x = 0; x < N * ld; x++) qd[x] = qkv[x];
            for (size_t j = 0; j < N; j++) lsd[j] = ls[j];
            attn_performer_forward_ref(out, qkv, qkv + D, qkv + 2 * D, ld, sz ? ls : NULL, W, m, N, D, H);
            direct(od, qd, sz ? lsd : NULL, W, m, N, D, H, cq, ck, 0);
            for (size_t x = 0; x < N * D; x++) want[x] = (float)od[x];
            double err = rel_err(out, want, N * D);
            cr_assert_lt(err, 1e-6, "N=%zu D=%zu H=%zu m=%zu sizes=%d: ref vs direct %g", N, D, H, m,
                         sz, err);
            free(qkv); free(ls); free(out); free(want); free(W); free(qd); free(lsd); free(od);
            free(cq);
        }
}

// Fast forward, inference form and backward against the reference on one shape; ld = 3D.
// Backward starts from non-zero gradients (it must add) and runs on NaN-filled work.
static void check_fast(size_t N, size_t D, size_t H, size_t m, int with_sizes, uint64_t seed,
                       double *worst) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o1 = malloc(N * D * sizeof(float)), *o2 = malloc(N * D * sizeof(float));
    float *o3 = malloc(N * D * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *save = malloc(attn_performer_save_floats(N, D, H, m) * sizeof(float));
    size_t nw = attn_performer_work_floats(N, D, H, m), niw = attn_performer_infer_work_floats(N, D, H, m);
    float *work = malloc(nw * sizeof(float)), *iwork = malloc(niw * sizeof(float));
    float *g0 = malloc(N * ld * sizeof(float)), *g1 = malloc(N * ld * sizeof(float));
    float *g2 = malloc(N * ld * sizeof(float)), *W = draw(m, D / H, seed + 7);
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill(g0, N * ld, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (size_t x = 0; x < nw; x++) work[x] = NAN;
    for (size_t x = 0; x < niw; x++) iwork[x] = NAN;
    const float *lsp = with_sizes ? ls : NULL;
    const float *q = qkv, *k = qkv + D, *v = qkv + 2 * D;
    attn_performer_forward(o1, save, q, k, v, ld, lsp, W, m, N, D, H);
    attn_performer_forward_ref(o2, q, k, v, ld, lsp, W, m, N, D, H);
    attn_performer_forward_infer(o3, iwork, q, k, v, ld, lsp, W, m, N, D, H);
    double e_fwd = rel_err(o1, o2, N * D), e_inf = rel_err(o3, o1, N * D);
    cr_assert_lt(e_fwd, 1e-5, "N=%zu D=%zu H=%zu m=%zu sizes=%d: forward vs ref %g", N, D, H, m,
                 with_sizes, e_fwd);
    cr_assert_lt(e_inf, 1e-5, "N=%zu D=%zu H=%zu m=%zu sizes=%d: infer vs forward %g", N, D, H, m,
                 with_sizes, e_inf);
    memcpy(g1, g0, N * ld * sizeof(float));
    memcpy(g2, g0, N * ld * sizeof(float));
    attn_performer_backward_ws(g1, g1 + D, g1 + 2 * D, G, save, q, k, v, ld, lsp, W, m, N, D, H, work);
    attn_performer_backward_ref(g2, g2 + D, g2 + 2 * D, G, q, k, v, ld, lsp, W, m, N, D, H);
    // Per-part scale floored at 1e-2 of the whole gradient's; with N = 1, out = v exactly, so dq
    // and dk are 0 and what both kernels return is rounding: judged against the whole gradient.
    const char *names[3] = {"dq", "dk", "dv"};
    double e_bwd = 0, all = 0;
    for (size_t x = 0; x < N * ld; x++) all = fmax(all, fabs((double)g2[x] - g0[x]));
    for (size_t part = 0; part < 3; part++) {
        double num = 0, den = (N == 1 ? 1.0 : 1e-2) * all;
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < D; c++) {
                size_t x = i * ld + part * D + c;
                num = fmax(num, fabs((double)g1[x] - g2[x]));
                den = fmax(den, fabs((double)g2[x] - g0[x]));
            }
        cr_assert_lt(num / den, 2e-5, "N=%zu D=%zu H=%zu m=%zu sizes=%d: %s fast vs ref %g", N, D,
                     H, m, with_sizes, names[part], num / den);
        e_bwd = fmax(e_bwd, num / den);
    }
    worst[0] = fmax(worst[0], e_fwd);
    worst[1] = fmax(worst[1], e_inf);
    worst[2] = fmax(worst[2], e_bwd);
    free(qkv); free(ls); free(o1); free(o2); free(o3); free(G); free(save); free(work);
    free(iwork); free(g0); free(g1); free(g2); free(W);
}

Test(attn_performer, fast_matches_reference_awkward_shapes) {
    const size_t Ns[] = {1, 2, 7, 65, 300};
    const size_t DH[][2] = {{6, 2}, {64, 2}, {32, 1}};
    double worst[3] = {0};
    uint64_t seed = 100;
    for (size_t s = 0; s < 3; s++)
        for (size_t n = 0; n < 5; n++)
            for (int sz = 0; sz < 2; sz++)   // m = 20: a partial block for d = 32, 6 + 2/3 for d = 3
                check_fast(Ns[n], DH[s][0], DH[s][1], 20, sz, seed++, worst);
    // the default m, and lengths around the 256-row chunk of the inference form
    const size_t Nc[] = {255, 256, 257, 600};
    for (size_t n = 0; n < 4; n++)
        check_fast(Nc[n], 64, 2, ATTN_PERFORMER_DEFAULT_M, 1, seed++, worst);
    cr_log_info("performer: worst rel err forward vs ref %.3g, infer vs forward %.3g, backward vs ref %.3g",
                worst[0], worst[1], worst[2]);
}

// Loss = sum(G * out): backward (fast and reference) against central differences of the direct
// formula in double with c held at its value at the unperturbed point.
static void check_grad(size_t N, size_t D, size_t H, size_t m, int with_sizes, uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = 3 * D;
    float *qkv = malloc(N * ld * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *ls = malloc(N * sizeof(float)), *out = malloc(N * D * sizeof(float));
    float *save = malloc(attn_performer_save_floats(N, D, H, m) * sizeof(float));
    float *work = malloc(attn_performer_work_floats(N, D, H, m) * sizeof(float));
    float *ga = calloc(N * ld, sizeof(float)), *gr = calloc(N * ld, sizeof(float));
    float *W = draw(m, D / H, seed + 3);
    double *qd = malloc(N * ld * sizeof(double)), *od = malloc(N * D * sizeof(double));
    double *lsd = malloc(N * sizeof(double)), *num = malloc(N * ld * sizeof(double));
    double *cq = malloc(N * H * sizeof(double)), ck[8];
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    const float *lsp = with_sizes ? ls : NULL;
    attn_performer_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, W, m, N, D, H);
    attn_performer_backward_ws(ga, ga + D, ga + 2 * D, G, save, qkv, qkv + D, qkv + 2 * D, ld, lsp,
                               W, m, N, D, H, work);
    attn_performer_backward_ref(gr, gr + D, gr + 2 * D, G, qkv, qkv + D, qkv + 2 * D, ld, lsp, W,
                                m, N, D, H);
    for (size_t x = 0; x < N * ld; x++) qd[x] = qkv[x];
    for (size_t j = 0; j < N; j++) lsd[j] = ls[j];
    direct(od, qd, with_sizes ? lsd : NULL, W, m, N, D, H, cq, ck, 0);   // c at the base point
    const double eps = 1e-5;
    for (size_t x = 0; x < N * ld; x++) {
        double keep = qd[x], lp = 0, lm = 0;
        qd[x] = keep + eps;
        direct(od, qd, with_sizes ? lsd : NULL, W, m, N, D, H, cq, ck, 1);
        for (size_t i = 0; i < N * D; i++) lp += G[i] * od[i];
        qd[x] = keep - eps;
        direct(od, qd, with_sizes ? lsd : NULL, W, m, N, D, H, cq, ck, 1);
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
        cr_assert_lt(ea / den, 2e-4, "N=%zu D=%zu H=%zu m=%zu sizes=%d: fast %s vs FD %g", N, D, H,
                     m, with_sizes, names[part], ea / den);
        cr_assert_lt(er / den, 1e-5, "N=%zu D=%zu H=%zu m=%zu sizes=%d: ref %s vs FD %g", N, D, H,
                     m, with_sizes, names[part], er / den);
    }
    free(qkv); free(G); free(ls); free(out); free(save); free(work); free(ga); free(gr); free(W);
    free(qd); free(od); free(lsd); free(num); free(cq);
}

Test(attn_performer, gradients_match_finite_differences) {
    check_grad(2, 4, 1, 6, 1, 11);
    check_grad(5, 4, 1, 9, 0, 12);
    check_grad(6, 6, 2, 8, 1, 13);
    check_grad(9, 8, 2, 16, 1, 14);
}

// FLOP and MAC counts against hand formulas for N = 10, D = 8, H = 2 (d = 4), m = 6. Per head:
//  forward: two feature maps, each 2 N m d (x W^T) + 2 N d (|x|^2) + 5 N m (max, subtract, exp,
//    + eps, scale) + 2 N (|x|^2/2, offset); C = Ks^T V 2 m d N; z N m; Fq C 2 N d m; Fq_i . z
//    2 N m; 1/den and scaling N + N d:  8 N m d + 13 N m + 5 N d + 5 N = 2950; sizes add 2 N = 20
//    (exp of log s, s m^(-1/2)). MACs 4 N m d + 2 N d + N m = 1100.
//  backward: six N m d products (T, dC, dV, dKs and the two dA W) 12 N m d; a_i and dz 4 N m;
//    b 2 N; dFq 3 N m, U N m, dKs += dz N m; per feature-map backward 3 N m + N + 2 N d:
//    12 N m d + 15 N m + 4 N d + 4 N = 3980; sizes add 2 N = 20. MACs 6 N m d + 2 N m = 1560.
//  inference (one chunk): key side 2 N m d + 2 N d + N + N m + (m d + m + 1) + N + 2 N m + N m
//    + N d + N + 2 m d N + d + 1 + 2 m d + 2 m = 1446, sizes add 2 N + N m + N d = 120; query
//    side as the forward's 880 + 480 + 120 + 50 = 1530.
Test(attn_performer, flops_match_hand_formula) {
    size_t N = 10, D = 8, H = 2, m = 6, ld = 3 * D;
    uint64_t rng = 3;
    float qkv[10 * 24], ls[10], out[10 * 8], G[10 * 8], dqkv[10 * 24] = {0};
    float *W = draw(m, D / H, 5);
    float *save = malloc(attn_performer_save_floats(N, D, H, m) * sizeof(float));
    float *work = malloc(attn_performer_work_floats(N, D, H, m) * sizeof(float));
    float *iwork = malloc(attn_performer_infer_work_floats(N, D, H, m) * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (int sz = 0; sz < 2; sz++) {
        const float *lsp = sz ? ls : NULL;
        FlopCounter f = {0}, b = {0}, fi = {0};
        flops_install(&f);
        attn_performer_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, lsp, W, m, N, D, H);
        flops_install(&b);
        attn_performer_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, G, save, qkv, qkv + D,
                                   qkv + 2 * D, ld, lsp, W, m, N, D, H, work);
        flops_install(&fi);
        attn_performer_forward_infer(out, iwork, qkv, qkv + D, qkv + 2 * D, ld, lsp, W, m, N, D, H);
        flops_install(NULL);
        cr_assert_eq(f.flops, 2.0 * (2950 + (sz ? 20 : 0)), "sizes=%d forward %.0f", sz, f.flops);
        cr_assert_eq(f.macs, 2.0 * 1100, "forward MACs %.0f", f.macs);
        cr_assert_eq(b.flops, 2.0 * (3980 + (sz ? 20 : 0)), "sizes=%d backward %.0f", sz, b.flops);
        cr_assert_eq(b.macs, 2.0 * 1560, "backward MACs %.0f", b.macs);
        cr_assert_eq(fi.flops, 2.0 * (1446 + 1530 + (sz ? 120 : 0)), "sizes=%d infer %.0f", sz, fi.flops);
        cr_assert_eq(fi.macs, f.macs, "infer MACs %.0f vs %.0f", fi.macs, f.macs);
    }
    free(W); free(save); free(work); free(iwork);
}

// Inference workspace: bounded in N (the same from one 256-row chunk up), far below the save.
Test(attn_performer, infer_work_bounded_in_n) {
    const size_t DH[][2] = {{64, 2}, {32, 1}, {6, 2}};
    size_t m = ATTN_PERFORMER_DEFAULT_M;
    for (size_t s = 0; s < 3; s++) {
        size_t D = DH[s][0], H = DH[s][1], d = D / H;
        size_t w = attn_performer_infer_work_floats(4096, D, H, m);
        cr_assert_eq(attn_performer_infer_work_floats(1u << 24, D, H, m), w);
        cr_assert_leq(attn_performer_infer_work_floats(7, D, H, m), w);
        cr_assert_leq(w, m * d + m + 256 * m);
        cr_assert_lt(10 * w, attn_performer_save_floats(4096, D, H, m));
    }
}

// log s all zero equals log s NULL bit for bit; a token of size 2 acts like two copies of itself
// ([x, y, x] vs [x (size 2), y]); without log s it would not. The key stabiliser is the same in
// both (a max over the same rows), so the agreement is to rounding.
Test(attn_performer, size_semantics) {
    size_t N = 40, D = 12, H = 3, ld = 3 * D, m = 16;
    uint64_t rng = 21;
    float qkv[40 * 36], zero[40] = {0}, o1[40 * 12], o2[40 * 12];
    float *W = draw(m, D / H, 8);
    float *save = malloc(attn_performer_save_floats(N, D, H, m) * sizeof(float));
    fill(qkv, N * ld, 1.0f, &rng);
    attn_performer_forward(o1, save, qkv, qkv + D, qkv + 2 * D, ld, NULL, W, m, N, D, H);
    attn_performer_forward(o2, save, qkv, qkv + D, qkv + 2 * D, ld, zero, W, m, N, D, H);
    cr_assert(memcmp(o1, o2, sizeof o1) == 0, "log s = 0 differs from log s NULL");
    free(save); free(W);

    D = 8, H = 2, ld = 3 * D;
    W = draw(m, D / H, 9);
    float three[3 * 24], two[2 * 24], o3[3 * 8], ot[2 * 8], s3[1024], s2[1024];
    fill(three, 2 * ld, 1.0f, &rng);
    memcpy(three + 2 * ld, three, ld * sizeof(float));   // row 2 = row 0
    memcpy(two, three, 2 * ld * sizeof(float));
    float ls2[2] = {logf(2.0f), 0.0f};
    cr_assert_leq(attn_performer_save_floats(3, D, H, m), 1024);
    attn_performer_forward(o3, s3, three, three + D, three + 2 * D, ld, NULL, W, m, 3, D, H);
    attn_performer_forward(ot, s2, two, two + D, two + 2 * D, ld, ls2, W, m, 2, D, H);
    for (size_t c = 0; c < 2 * D; c++) cr_assert_float_eq(o3[c], ot[c], 1e-5f, "col %zu", c);
    attn_performer_forward(ot, s2, two, two + D, two + 2 * D, ld, NULL, W, m, 2, D, H);
    double diff = 0;
    for (size_t c = 0; c < 2 * D; c++) diff = fmax(diff, fabs(o3[c] - ot[c]));
    cr_assert_gt(diff, 1e-4, "the size-2 weight must matter");
    free(W);
}

// Per-sample by construction: the same sample at the head of a longer buffer whose further rows
// are NaN gives the same bits (forward, inference form, backward).
Test(attn_performer, reads_only_its_sample) {
    size_t N = 30, D = 8, H = 2, ld = 3 * D, m = 12;
    uint64_t rng = 31;
    float a[30 * 24], b[60 * 24], ls[60], o1[30 * 8], o2[30 * 8], G[30 * 8];
    float g1[30 * 24] = {0}, g2[60 * 24] = {0};
    float s1[2048], s2[2048], w1[2048], w2[2048];
    float *W = draw(m, D / H, 4);
    cr_assert_leq(attn_performer_save_floats(N, D, H, m), 2048);
    cr_assert_leq(attn_performer_work_floats(N, D, H, m), 2048);
    fill(a, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill_sizes(ls, N, &rng);
    for (size_t x = 0; x < 60 * ld; x++) b[x] = NAN;
    for (size_t j = N; j < 60; j++) ls[j] = NAN;
    memcpy(b, a, sizeof a);
    attn_performer_forward(o1, s1, a, a + D, a + 2 * D, ld, ls, W, m, N, D, H);
    attn_performer_forward(o2, s2, b, b + D, b + 2 * D, ld, ls, W, m, N, D, H);
    cr_assert(memcmp(o1, o2, sizeof o1) == 0);
    attn_performer_backward_ws(g1, g1 + D, g1 + 2 * D, G, s1, a, a + D, a + 2 * D, ld, ls, W, m, N, D, H, w1);
    attn_performer_backward_ws(g2, g2 + D, g2 + 2 * D, G, s2, b, b + D, b + 2 * D, ld, ls, W, m, N, D, H, w2);
    cr_assert(memcmp(g1, g2, sizeof g1) == 0);
    attn_performer_forward_infer(o2, w2, b, b + D, b + 2 * D, ld, ls, W, m, N, D, H);
    cr_assert_lt(rel_err(o2, o1, N * D), 1e-5);
    free(W);
}

// ---------------------------------------------------------------- approximation quality
// Mean relative error ||out_performer - out_softmax||_F / ||out_softmax||_F against exact
// softmax attention (attn_softmax_forward_ref, with the same log s) for m = 16, 64, 256, 1024,
// averaged over 8 seeds (each its own W and inputs). N = 64, D = 32, H = 2 (d = 16); q, k ~
// N(0, 0.5^2) entries, v ~ N(0, 1), sizes 1..5. FAVOR+ is an unbiased estimator of the softmax
// kernel up to the + 1e-4 floor, so the error must fall with m (variance ~ 1/m).
Test(attn_performer, error_against_softmax_falls_with_m) {
    const size_t ms[] = {16, 64, 256, 1024};
    size_t N = 64, D = 32, H = 2, ld = 3 * D, seeds = 8;
    double err[4];
    float *qkv = malloc(N * ld * sizeof(float)), *ls = malloc(N * sizeof(float));
    float *o = malloc(N * D * sizeof(float)), *want = malloc(N * D * sizeof(float));
    for (size_t t = 0; t < 4; t++) {
        size_t m = ms[t];
        float *save = malloc(attn_performer_save_floats(N, D, H, m) * sizeof(float));
        err[t] = 0;
        for (size_t s = 0; s < seeds; s++) {
            uint64_t rng = 1000 + s;
            fill(qkv, N * ld, 1.0f, &rng);
            for (size_t i = 0; i < N; i++)
                for (size_t c = 0; c < 2 * D; c++) qkv[i * ld + c] *= 0.5f;
            fill_sizes(ls, N, &rng);
            float *W = draw(m, D / H, rng_derive(77, s * 16 + t));
            attn_performer_forward(o, save, qkv, qkv + D, qkv + 2 * D, ld, ls, W, m, N, D, H);
            attn_softmax_forward_ref(want, qkv, qkv + D, qkv + 2 * D, ld, ls, N, D, H);
            double num = 0, den = 0;
            for (size_t x = 0; x < N * D; x++) {
                num += ((double)o[x] - want[x]) * ((double)o[x] - want[x]);
                den += (double)want[x] * want[x];
            }
            err[t] += sqrt(num / den) / (double)seeds;
            free(W);
        }
        free(save);
    }
    cr_log_info("performer vs softmax mean rel err: m=16 %.4f, m=64 %.4f, m=256 %.4f, m=1024 %.4f",
                err[0], err[1], err[2], err[3]);
    for (size_t t = 1; t < 4; t++)
        cr_assert_lt(err[t], err[t - 1], "error did not fall from m=%zu (%g) to m=%zu (%g)",
                     ms[t - 1], err[t - 1], ms[t], err[t]);
    cr_assert_lt(err[3], 0.35 * err[0], "m=1024 error %g not well below m=16's %g", err[3], err[0]);
    free(qkv); free(ls); free(o); free(want);
}
