// Linformer attention (core/attn_linformer.c): forward against a direct double evaluation of
// softmax(Q (E_N K)^T / sqrt(d)) (F_N V), gradients for q, k, v, E and F against finite
// differences (also with E = F shared), the BLAS backward against the plain one, and the slicing
// contract: with N < n_max only the first N columns of E and F matter.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/rng.h"

// Plain (loop) backward kernel, exported by core/attn_linformer.c beside the BLAS one.
void attn_linformer_backward_plain(float *dq, float *dk, float *dv, float *dE, float *dF,
                                   const float *dout, const float *save, const float *q,
                                   const float *k, const float *v, size_t ld, const float *E,
                                   const float *F, size_t n_max, size_t kp, size_t N, size_t D,
                                   size_t H);

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

// Direct evaluation in double. qkv (N, 3D) fused, E, F (kp, n_max), out (N, D). kp, d <= 32.
static void ref_forward(double *out, const double *qkv, const double *E, const double *F,
                        size_t n_max, size_t kp, size_t N, size_t D, size_t H) {
    size_t d = D / H, ld = 3 * D;
    double KP[32][32], VP[32][32];   // (kp, D)
    for (size_t r = 0; r < kp; r++)
        for (size_t x = 0; x < D; x++) {
            double a = 0, b = 0;
            for (size_t j = 0; j < N; j++) {
                a += E[r * n_max + j] * qkv[j * ld + D + x];
                b += F[r * n_max + j] * qkv[j * ld + 2 * D + x];
            }
            KP[r][x] = a;
            VP[r][x] = b;
        }
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < N; i++) {
            double s[32], mx = -INFINITY, sum = 0;
            for (size_t r = 0; r < kp; r++) {
                double a = 0;
                for (size_t c = 0; c < d; c++) a += qkv[i * ld + h * d + c] * KP[r][h * d + c];
                s[r] = a / sqrt((double)d);
                mx = fmax(mx, s[r]);
            }
            for (size_t r = 0; r < kp; r++) sum += s[r] = exp(s[r] - mx);
            for (size_t c = 0; c < d; c++) {
                double o = 0;
                for (size_t r = 0; r < kp; r++) o += s[r] / sum * VP[r][h * d + c];
                out[i * D + h * d + c] = o;
            }
        }
}

static void to_double(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

Test(attn_linformer, forward_matches_direct_formula) {
    size_t shapes[][5] = {{7, 6, 2, 4, 10}, {1, 4, 1, 3, 5}, {13, 9, 3, 5, 13}, {20, 8, 2, 16, 24}};
    for (size_t s = 0; s < 4; s++) {
        size_t N = shapes[s][0], D = shapes[s][1], H = shapes[s][2], kp = shapes[s][3];
        size_t n_max = shapes[s][4], ld = 3 * D;
        uint64_t rng = 10 + s;
        float *qkv = malloc(N * ld * sizeof(float)), *E = malloc(kp * n_max * sizeof(float));
        float *F = malloc(kp * n_max * sizeof(float)), *out = malloc(N * D * sizeof(float));
        float *save = malloc(attn_linformer_save_floats(N, D, H, kp) * sizeof(float));
        double *qkvd = malloc(N * ld * sizeof(double)), *Ed = malloc(kp * n_max * sizeof(double));
        double *Fd = malloc(kp * n_max * sizeof(double)), *outd = malloc(N * D * sizeof(double));
        fill(qkv, N * ld, 1.0f, &rng);
        fill(E, kp * n_max, 0.5f, &rng);
        fill(F, kp * n_max, 0.5f, &rng);
        attn_linformer_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
        to_double(qkvd, qkv, N * ld);
        to_double(Ed, E, kp * n_max);
        to_double(Fd, F, kp * n_max);
        ref_forward(outd, qkvd, Ed, Fd, n_max, kp, N, D, H);
        double num = 0, den = 1e-6;
        for (size_t i = 0; i < N * D; i++) {
            num = fmax(num, fabs(out[i] - outd[i]));
            den = fmax(den, fabs(outd[i]));
        }
        cr_assert_lt(num / den, 2e-6, "shape %zu: rel err %g", s, num / den);
        free(qkv); free(E); free(F); free(out); free(save); free(qkvd); free(Ed); free(Fd);
        free(outd);
    }
}

// Central differences of the double reference for every input (q, k, v, E, F) against backward.
// shared: E and F are one matrix (same pointers for E/F and dE/dF).
static void check_grad(size_t N, size_t D, size_t H, size_t kp, size_t n_max, int shared,
                       uint64_t seed) {
    uint64_t rng = seed;
    size_t ld = 3 * D, nq = N * ld, ne = kp * n_max;
    float *qkv = malloc(nq * sizeof(float)), *dqkv = calloc(nq, sizeof(float));
    float *E = malloc(ne * sizeof(float)), *F = shared ? E : malloc(ne * sizeof(float));
    float *dE = calloc(ne, sizeof(float)), *dF = shared ? dE : calloc(ne, sizeof(float));
    float *out = malloc(N * D * sizeof(float)), *G = malloc(N * D * sizeof(float));
    float *save = malloc(attn_linformer_save_floats(N, D, H, kp) * sizeof(float));
    fill(qkv, nq, 1.0f, &rng);
    fill(E, ne, 0.5f, &rng);
    if (!shared) fill(F, ne, 0.5f, &rng);
    fill(G, N * D, 1.0f, &rng);
    attn_linformer_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
    attn_linformer_backward(dqkv, dqkv + D, dqkv + 2 * D, dE, dF, G, save, qkv, qkv + D,
                            qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
    // one flat parameter vector: qkv | E | F (F aliases E when shared)
    size_t np = nq + ne + (shared ? 0 : ne);
    double *p = malloc(np * sizeof(double)), *num = malloc(np * sizeof(double));
    double *outd = malloc(N * D * sizeof(double));
    to_double(p, qkv, nq);
    to_double(p + nq, E, ne);
    if (!shared) to_double(p + nq + ne, F, ne);
    const double *Fd = shared ? p + nq : p + nq + ne;
    const double eps = 1e-5;
    for (size_t x = 0; x < np; x++) {
        double keep = p[x], lp = 0, lm = 0;
        p[x] = keep + eps;
        ref_forward(outd, p, p + nq, Fd, n_max, kp, N, D, H);
        for (size_t i = 0; i < N * D; i++) lp += G[i] * outd[i];
        p[x] = keep - eps;
        ref_forward(outd, p, p + nq, Fd, n_max, kp, N, D, H);
        for (size_t i = 0; i < N * D; i++) lm += G[i] * outd[i];
        p[x] = keep;
        num[x] = (lp - lm) / (2 * eps);
    }
    // compare per tensor: dq, dk, dv (their columns of the fused buffer), dE, dF
    struct { const char *name; const float *a; size_t off, rows, cols, stride; } parts[5] = {
        {"dq", dqkv, 0, N, D, ld},          {"dk", dqkv + D, D, N, D, ld},
        {"dv", dqkv + 2 * D, 2 * D, N, D, ld}, {"dE", dE, nq, kp, n_max, n_max},
        {"dF", dF, nq + ne, kp, n_max, n_max}};
    for (int t = 0; t < (shared ? 4 : 5); t++) {
        double n2 = 0, d2 = 1e-6;
        for (size_t i = 0; i < parts[t].rows; i++)
            for (size_t c = 0; c < parts[t].cols; c++) {
                double a = parts[t].a[i * parts[t].stride + c];
                double f = num[parts[t].off + i * parts[t].stride + c];
                n2 = fmax(n2, fabs(a - f));
                d2 = fmax(d2, fabs(f));
            }
        cr_assert_lt(n2 / d2, 1e-4, "%s N=%zu D=%zu H=%zu kp=%zu shared=%d: rel err %g",
                     parts[t].name, N, D, H, kp, shared, n2 / d2);
        cr_assert_gt(d2, 1e-3, "%s: gradient vanishes, the check would prove nothing",
                     parts[t].name);
    }
    // columns >= N of E and F receive nothing
    for (size_t r = 0; r < kp; r++)
        for (size_t j = N; j < n_max; j++) {
            cr_assert_eq(dE[r * n_max + j], 0.0f);
            cr_assert_eq(dF[r * n_max + j], 0.0f);
        }
    free(qkv); free(dqkv); free(E); free(dE); free(out); free(G); free(save);
    if (!shared) { free(F); free(dF); }
    free(p); free(num); free(outd);
}

Test(attn_linformer, gradients_match_finite_differences) {
    check_grad(5, 4, 1, 3, 8, 0, 21);
    check_grad(6, 6, 2, 4, 6, 0, 22);
    check_grad(7, 6, 3, 5, 11, 0, 23);
    check_grad(6, 6, 2, 4, 9, 1, 24);   // E = F shared
}

// Changing E and F beyond column N changes neither the output nor the gradients.
Test(attn_linformer, uses_only_first_n_columns) {
    size_t N = 9, D = 8, H = 2, kp = 4, n_max = 16, ld = 3 * D;
    uint64_t rng = 31;
    float qkv[9 * 24], G[9 * 8], E[4 * 16], F[4 * 16], E2[4 * 16], F2[4 * 16];
    float o1[9 * 8], o2[9 * 8], s1[512], s2[512];
    float g1[9 * 24] = {0}, g2[9 * 24] = {0}, dE1[64] = {0}, dF1[64] = {0}, dE2[64] = {0},
          dF2[64] = {0};
    cr_assert_leq(attn_linformer_save_floats(N, D, H, kp), 512);
    fill(qkv, N * ld, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill(E, kp * n_max, 0.5f, &rng);
    fill(F, kp * n_max, 0.5f, &rng);
    memcpy(E2, E, sizeof E);
    memcpy(F2, F, sizeof F);
    for (size_t r = 0; r < kp; r++)
        for (size_t j = N; j < n_max; j++) {
            E2[r * n_max + j] = 100.0f + (float)j;
            F2[r * n_max + j] = -50.0f * (float)r;
        }
    attn_linformer_forward(o1, s1, qkv, qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
    attn_linformer_forward(o2, s2, qkv, qkv + D, qkv + 2 * D, ld, E2, F2, n_max, kp, N, D, H);
    cr_assert_eq(memcmp(o1, o2, sizeof o1), 0, "output depends on columns >= N");
    attn_linformer_backward(g1, g1 + D, g1 + 2 * D, dE1, dF1, G, s1, qkv, qkv + D, qkv + 2 * D, ld,
                            E, F, n_max, kp, N, D, H);
    attn_linformer_backward(g2, g2 + D, g2 + 2 * D, dE2, dF2, G, s2, qkv, qkv + D, qkv + 2 * D,
                            ld, E2, F2, n_max, kp, N, D, H);
    cr_assert_eq(memcmp(g1, g2, sizeof g1), 0, "dq/dk/dv depend on columns >= N");
    cr_assert_eq(memcmp(dE1, dE2, sizeof dE1), 0);
    cr_assert_eq(memcmp(dF1, dF2, sizeof dF1), 0);
    // and the first N columns do matter (the test above is not vacuous)
    E2[0] += 1.0f;
    attn_linformer_forward(o2, s2, qkv, qkv + D, qkv + 2 * D, ld, E2, F2, n_max, kp, N, D, H);
    cr_assert_neq(memcmp(o1, o2, sizeof o1), 0);
}

// BLAS backward equals the plain backward on awkward shapes, and both accumulate.
Test(attn_linformer, blas_backward_matches_plain_and_accumulates) {
    size_t shapes[][5] = {{37, 12, 3, 7, 40}, {1, 5, 1, 3, 4}, {70, 10, 2, 9, 70}, {300, 8, 2, 5, 301}};
    for (size_t s = 0; s < 4; s++) {
        size_t N = shapes[s][0], D = shapes[s][1], H = shapes[s][2], kp = shapes[s][3];
        size_t n_max = shapes[s][4], ld = 3 * D, nq = N * ld, ne = kp * n_max;
        uint64_t rng = 40 + s;
        float *qkv = malloc(nq * sizeof(float)), *G = malloc(N * D * sizeof(float));
        float *E = malloc(ne * sizeof(float)), *F = malloc(ne * sizeof(float));
        float *out = malloc(N * D * sizeof(float));
        float *save = malloc(attn_linformer_save_floats(N, D, H, kp) * sizeof(float));
        // one gradient buffer per path: qkv | dE | dF, with a non-zero start
        size_t ng = nq + 2 * ne;
        float *g0 = malloc(ng * sizeof(float)), *g1 = malloc(ng * sizeof(float));
        float *g2 = malloc(ng * sizeof(float));
        fill(qkv, nq, 1.0f, &rng);
        fill(G, N * D, 1.0f, &rng);
        fill(E, ne, 0.3f, &rng);
        fill(F, ne, 0.3f, &rng);
        fill(g0, ng, 1.0f, &rng);
        memcpy(g1, g0, ng * sizeof(float));
        memcpy(g2, g0, ng * sizeof(float));
        attn_linformer_forward(out, save, qkv, qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
        attn_linformer_backward(g1, g1 + D, g1 + 2 * D, g1 + nq, g1 + nq + ne, G, save, qkv,
                                qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
        attn_linformer_backward_plain(g2, g2 + D, g2 + 2 * D, g2 + nq, g2 + nq + ne, G, save, qkv,
                                      qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
        double num = 0, den = 1e-6;
        for (size_t x = 0; x < ng; x++) {
            num = fmax(num, fabs(g1[x] - g2[x]));
            den = fmax(den, fabs(g1[x] - g0[x]));
        }
        cr_assert_lt(num / den, 1e-5, "shape %zu: blas vs plain rel err %g", s, num / den);
        attn_linformer_backward(g1, g1 + D, g1 + 2 * D, g1 + nq, g1 + nq + ne, G, save, qkv,
                                qkv + D, qkv + 2 * D, ld, E, F, n_max, kp, N, D, H);
        for (size_t x = 0; x < ng; x++)
            cr_assert_float_eq(g1[x] - g0[x], 2.0f * (g2[x] - g0[x]), 1e-4f * (float)den,
                               "accumulation at %zu", x);
        free(qkv); free(G); free(E); free(F); free(out); free(save); free(g0); free(g1); free(g2);
    }
}
