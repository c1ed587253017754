// Nyströmformer attention (core/attn_nystrom.c): forward against the plain double reference
// (landmarks, three softmaxes, the pseudo-inverse iteration, the convolution skip) on awkward
// shapes, backward against central differences of that reference in double (q, k, v and the
// convolution kernel: every path, the iteration and the scale of Z_0 included), the N <= m
// branch against exact softmax attention, FLOP counts against the hand formula, accumulation.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/attn_nystrom.h"
#include "core/flops.h"
#include "core/rng.h"

typedef struct {
    size_t N, D, H, m, kc, ld;
    float *qkv, *ls, *conv, *out, *save, *work;
    const float *log_s;
} Case;

static Case case_new(size_t N, size_t D, size_t H, size_t m, size_t kc, int sizes, uint64_t seed) {
    Case c = {N, D, H, m, kc, 3 * D, 0, 0, 0, 0, 0, 0, 0};
    uint64_t rng = seed;
    c.qkv = malloc((N * c.ld + 1) * sizeof(float));
    c.ls = malloc((N + 1) * sizeof(float));
    c.conv = malloc((H * kc + 1) * sizeof(float));
    c.out = calloc(N * D + 1, sizeof(float));
    c.save = calloc(attn_nystrom_save_floats(N, D, H, m) + 1, sizeof(float));
    c.work = calloc(attn_nystrom_work_floats(N, D, H, m) + 1, sizeof(float));
    for (size_t i = 0; i < N * c.ld; i++) c.qkv[i] = rng_normal(&rng);
    for (size_t i = 0; i < N; i++) c.ls[i] = logf(1.0f + (float)rng_below(&rng, 4));
    for (size_t i = 0; i < H * kc; i++) c.conv[i] = 0.2f * rng_normal(&rng);
    c.log_s = sizes ? c.ls : NULL;
    return c;
}

static void case_free(Case *c) {
    free(c->qkv); free(c->ls); free(c->conv); free(c->out); free(c->save); free(c->work);
}

static void fwd(Case *c) {
    memset(c->out, 0, c->N * c->D * sizeof(float));
    attn_nystrom_forward(c->out, c->save, c->qkv, c->qkv + c->D, c->qkv + 2 * c->D, c->ld, c->log_s,
                         c->conv, c->kc, c->N, c->D, c->H, c->m);
}

// The reference on the case's inputs, in double.
static void ref(const Case *c, const double *qkv, const double *conv, double *out) {
    double ls[c->N + 1];
    for (size_t i = 0; i < c->N; i++) ls[i] = c->ls[i];
    attn_nystrom_forward_ref(out, qkv, qkv + c->D, qkv + 2 * c->D, c->ld, c->log_s ? ls : NULL,
                             conv, c->kc, c->N, c->D, c->H, c->m);
}

static double fwd_err(Case *c) {
    size_t n = c->N * c->ld;
    double *qkv = malloc((n + 1) * sizeof(double)), *conv = malloc((c->H * c->kc + 1) * sizeof(double));
    double *out = calloc(c->N * c->D + 1, sizeof(double));
    for (size_t i = 0; i < n; i++) qkv[i] = c->qkv[i];
    for (size_t i = 0; i < c->H * c->kc; i++) conv[i] = c->conv[i];
    ref(c, qkv, conv, out);
    fwd(c);
    double num = 0, den = 1e-6;
    for (size_t i = 0; i < c->N * c->D; i++) {
        num = fmax(num, fabs(c->out[i] - out[i]));
        den = fmax(den, fabs(out[i]));
    }
    free(qkv); free(conv); free(out);
    return num / den;
}

Test(attn_nystrom, forward_matches_reference_on_awkward_shapes) {
    size_t Ns[] = {1, 2, 7, 17, 65, 130, 300}, DH[][2] = {{6, 2}, {64, 2}, {32, 1}}, ms[] = {4, 16, 64};
    size_t kcs[] = {0, 5, 35};
    double worst = 0;
    for (size_t a = 0; a < 7; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t e = 0; e < 3; e++)
                for (int s = 0; s < 2; s++) {
                    Case c = case_new(Ns[a], DH[b][0], DH[b][1], ms[e], kcs[(a + e) % 3], s, 11 + a);
                    double err = fwd_err(&c);
                    cr_expect(err < 2e-4, "N=%zu D=%zu H=%zu m=%zu kc=%zu sizes=%d: %g", c.N, c.D,
                              c.H, c.m, c.kc, s, err);
                    worst = fmax(worst, err);
                    case_free(&c);
                }
    cr_log_info("nystromformer forward vs double reference: worst %.2e\n", worst);
}

// N <= m: exact softmax attention (plus the convolution, off here).
Test(attn_nystrom, as_many_landmarks_as_tokens_is_softmax) {
    size_t N = 40, D = 16, H = 2;
    Case c = case_new(N, D, H, N, 0, 1, 5);
    float *ref_out = calloc(N * D, sizeof(float));
    fwd(&c);
    attn_softmax_forward_ref(ref_out, c.qkv, c.qkv + D, c.qkv + 2 * D, c.ld, c.log_s, N, D, H);
    double worst = 0;
    for (size_t i = 0; i < N * D; i++) worst = fmax(worst, fabs(ref_out[i] - c.out[i]));
    cr_expect(worst < 1e-5, "m = N differs from softmax by %g", worst);
    free(ref_out);
    case_free(&c);
}

// With many landmarks the Nyström approximation is close to softmax even when N > m: one
// token per segment but one (N = m + 1) makes a landmark the mean of two.
Test(attn_nystrom, approximation_near_softmax_with_fine_segments) {
    size_t N = 33, D = 8, H = 1;
    Case c = case_new(N, D, H, 32, 0, 0, 9);
    for (size_t i = 0; i < N * c.ld; i++) c.qkv[i] *= 0.3f;   // a well-conditioned A
    float *ref_out = calloc(N * D, sizeof(float));
    fwd(&c);
    attn_softmax_forward_ref(ref_out, c.qkv, c.qkv + D, c.qkv + 2 * D, c.ld, NULL, N, D, H);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < N * D; i++) {
        worst = fmax(worst, fabs(ref_out[i] - c.out[i]));
        scale = fmax(scale, fabs(ref_out[i]));
    }
    cr_expect(worst / scale < 0.1, "N = m + 1: %g of the output's scale", worst / scale);
    free(ref_out);
    case_free(&c);
}

// Backward against central differences of the double reference: L = sum out * R.
static void grad_check(size_t N, size_t D, size_t H, size_t m, size_t kc, int sizes, uint64_t seed) {
    Case c = case_new(N, D, H, m, kc, sizes, seed);
    size_t n = N * c.ld, no = N * D;
    uint64_t rng = seed + 99;
    float *R = malloc(no * sizeof(float)), *g = calloc(n, sizeof(float)), *gc = calloc(H * kc + 1, sizeof(float));
    for (size_t i = 0; i < no; i++) R[i] = rng_normal(&rng);
    fwd(&c);
    attn_nystrom_backward_ws(g, g + D, g + 2 * D, gc, R, c.save, c.qkv, c.qkv + D, c.qkv + 2 * D,
                             c.ld, c.log_s, c.conv, kc, N, D, H, m, c.work);
    double *qkv = malloc(n * sizeof(double)), *conv = malloc((H * kc + 1) * sizeof(double));
    double *out = malloc(no * sizeof(double));
    for (size_t i = 0; i < n; i++) qkv[i] = c.qkv[i];
    for (size_t i = 0; i < H * kc; i++) conv[i] = c.conv[i];
    double rms = 0;
    for (size_t i = 0; i < n; i++) rms += (double)g[i] * g[i];
    rms = sqrt(rms / n) + 1e-12;
    double worst = 0, h = 1e-5;
    for (size_t i = 0; i < n + H * kc; i++) {
        double *x = i < n ? &qkv[i] : &conv[i - n];
        double a = i < n ? g[i] : gc[i - n], x0 = *x, lp = 0, lm = 0;
        *x = x0 + h;
        ref(&c, qkv, conv, out);
        for (size_t o = 0; o < no; o++) lp += out[o] * R[o];
        *x = x0 - h;
        ref(&c, qkv, conv, out);
        for (size_t o = 0; o < no; o++) lm += out[o] * R[o];
        *x = x0;
        double num = (lp - lm) / (2 * h);
        double err = fabs(a - num) / (fmax(fabs(a), fabs(num)) + rms);
        cr_expect(err < 2e-3, "N=%zu m=%zu kc=%zu sizes=%d: element %zu analytic %g numeric %g",
                  N, m, kc, sizes, i, a, num);
        worst = fmax(worst, err);
    }
    cr_log_info("nystromformer N=%zu m=%zu kc=%zu sizes=%d: worst gradient error %.2e\n", N, m, kc,
                sizes, worst);
    free(R); free(g); free(gc); free(qkv); free(conv); free(out);
    case_free(&c);
}

Test(attn_nystrom, gradients_match_finite_differences) {
    grad_check(13, 6, 2, 4, 5, 1, 3);     // landmarks over uneven segments, log s, convolution
    grad_check(20, 8, 1, 6, 0, 0, 4);     // no convolution, no sizes
    grad_check(9, 4, 2, 8, 3, 1, 6);      // N = m + 1
    grad_check(5, 4, 2, 8, 35, 1, 8);     // N <= m: exact softmax branch; kernel wider than N
}

Test(attn_nystrom, backward_accumulates) {
    size_t N = 50, D = 8, H = 2, m = 8, kc = 5;
    Case c = case_new(N, D, H, m, kc, 1, 21);
    size_t n = N * c.ld;
    float *R = malloc(N * D * sizeof(float)), *g1 = calloc(n, sizeof(float)), *g2 = calloc(n, sizeof(float));
    float *c1 = calloc(H * kc, sizeof(float)), *c2 = calloc(H * kc, sizeof(float));
    uint64_t rng = 1;
    for (size_t i = 0; i < N * D; i++) R[i] = rng_normal(&rng);
    fwd(&c);
    attn_nystrom_backward_ws(g1, g1 + D, g1 + 2 * D, c1, R, c.save, c.qkv, c.qkv + D, c.qkv + 2 * D,
                             c.ld, c.log_s, c.conv, kc, N, D, H, m, c.work);
    for (int r = 0; r < 2; r++)
        attn_nystrom_backward_ws(g2, g2 + D, g2 + 2 * D, c2, R, c.save, c.qkv, c.qkv + D,
                                 c.qkv + 2 * D, c.ld, c.log_s, c.conv, kc, N, D, H, m, c.work);
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(g2[i] - 2 * g1[i]) <= 1e-5f * (1 + fabsf(g1[i])), "element %zu", i);
    for (size_t i = 0; i < H * kc; i++) cr_assert(fabsf(c2[i] - 2 * c1[i]) <= 1e-4f * (1 + fabsf(c1[i])));
    free(R); free(g1); free(g2); free(c1); free(c2);
    case_free(&c);
}

// All sizes 1 (log s = 0) is the same function as no sizes.
Test(attn_nystrom, unit_sizes_equal_no_sizes) {
    Case c = case_new(100, 16, 2, 16, 7, 0, 2);
    fwd(&c);
    float *a = malloc(100 * 16 * sizeof(float));
    memcpy(a, c.out, 100 * 16 * sizeof(float));
    for (size_t i = 0; i < 100; i++) c.ls[i] = 0.0f;
    c.log_s = c.ls;
    fwd(&c);
    for (size_t i = 0; i < 100 * 16; i++) cr_assert(fabsf(a[i] - c.out[i]) < 1e-6f);
    free(a);
    case_free(&c);
}

// Forward FLOPs against the hand formula for one shape (N = 100, d = 8, H = 2, m = 10, kc = 5).
Test(attn_nystrom, forward_flops_match_hand_formula) {
    size_t N = 100, D = 16, H = 2, m = 10, kc = 5, d = 8;
    Case c = case_new(N, D, H, m, kc, 1, 3);
    FlopCounter fc = {0};
    flops_install(&fc);
    fwd(&c);
    flops_install(NULL);
    double macs = (double)N * m * d + (double)m * m * d + (double)m * N * d      // F, A, B
                  + NYSTROM_ITERS * 4.0 * m * m * m                               // iteration
                  + (double)m * d * N + (double)m * d * m + (double)N * d * m;    // BV, W, out
    double taps = 0;                                       // conv taps inside the sequence
    for (size_t i = 0; i < N; i++)
        for (size_t t = 0; t < kc; t++) taps += (i + t >= 2 && i + t - 2 < N);
    macs += taps * d;
    double elem = 2.0 * N * d + 2.0 * m * d + 2.0 * N * m + 2.0 * m * m + 3.0 * m * N + 3.0 * m * m
                  + NYSTROM_ITERS * 4.0 * m * m;
    cr_expect_eq(fc.macs, H * macs);
    cr_expect_eq(fc.flops, H * (2 * macs + elem));
    case_free(&c);
}

Test(attn_nystrom, empty_sample_is_a_no_op) {
    float x[1] = {3.0f};
    FlopCounter fc = {0};
    flops_install(&fc);
    attn_nystrom_forward(x, NULL, NULL, NULL, NULL, 6, NULL, NULL, 5, 0, 2, 1, 4);
    attn_nystrom_backward_ws(x, x, x, x, x, NULL, NULL, NULL, NULL, 6, NULL, NULL, 5, 0, 2, 1, 4, NULL);
    flops_install(NULL);
    cr_expect(x[0] == 3.0f && fc.flops == 0);
}
