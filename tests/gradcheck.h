// Finite-difference gradient checking shared by the op tests (header-only, tests only).
// The op runs in float; the probe loss L = sum_i out_i * R_i is accumulated in double and
// differentiated by central differences, dividing by the step actually taken in float.
// Error is scale-aware: |analytic - numeric| / (max(|analytic|, |numeric|) + rms(analytic)),
// so tiny gradients are judged against the tensor's typical magnitude, not against zero.
#ifndef MAELRE_TEST_GRADCHECK_H
#define MAELRE_TEST_GRADCHECK_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*GcForward)(void *ctx, float *out);

static inline double gc_loss(GcForward f, void *ctx, float *out, const float *R, size_t nout) {
    f(ctx, out);
    double s = 0.0;
    for (size_t i = 0; i < nout; i++) s += (double)out[i] * R[i];
    return s;
}

// rms of the analytic gradient (+ a floor), the scale of the error measure.
static inline double gc_rms(const float *analytic, size_t nx) {
    double rms = 0.0;
    for (size_t i = 0; i < nx; i++) rms += (double)analytic[i] * analytic[i];
    return sqrt(rms / (double)(nx ? nx : 1)) + 1e-12;
}

// One element's central difference at step `step`, against its analytic gradient `a`:
// |a - num| / (max(|a|, |num|) + rms), the scale-aware error both checks below use.
static inline double gc_probe(GcForward f, void *ctx, float *x, size_t i, double a, float *out,
                              const float *R, size_t nout, float step, double rms) {
    float save = x[i];
    float xp = save + step, xm = save - step;
    x[i] = xp;
    double lp = gc_loss(f, ctx, out, R, nout);
    x[i] = xm;
    double lm = gc_loss(f, ctx, out, R, nout);
    x[i] = save;
    double num = (lp - lm) / ((double)xp - (double)xm);
    return fabs(a - num) / (fmax(fabs(a), fabs(num)) + rms);
}

// Checks analytic (nx) against central differences of x; returns the max error and where.
static inline double gc_check(GcForward f, void *ctx, float *x, size_t nx, const float *analytic,
                              float *out, const float *R, size_t nout, float eps, size_t *where) {
    double rms = gc_rms(analytic, nx);
    double worst = 0.0;
    if (where) *where = 0;
    for (size_t i = 0; i < nx; i++) {
        double err = gc_probe(f, ctx, x, i, analytic[i], out, R, nout, eps, rms);
        if (err > worst) { worst = err; if (where) *where = i; }
    }
    f(ctx, out);
    return worst;
}

// For piecewise-smooth functions (token merging: the matching is a constant of the gradient
// but flips somewhere nearby): an element whose error exceeds tol at step eps is re-probed at
// eps/4 and eps/16 and keeps its smallest error. A wrong gradient is wrong at every step; a
// step that straddles a flip is not. *retried counts the elements that needed it.
static inline double gc_check_piecewise(GcForward f, void *ctx, float *x, size_t nx,
                                        const float *analytic, float *out, const float *R,
                                        size_t nout, float eps, double tol, size_t *where,
                                        size_t *retried) {
    double rms = gc_rms(analytic, nx);
    double worst = 0.0;
    if (where) *where = 0;
    if (retried) *retried = 0;
    for (size_t i = 0; i < nx; i++) {
        double best = INFINITY;
        float step = eps;
        for (int k = 0; k < 3 && best > tol; k++, step /= 4.0f) {
            if (k == 1 && retried) (*retried)++;
            best = fmin(best, gc_probe(f, ctx, x, i, analytic[i], out, R, nout, step, rms));
        }
        if (best > worst) { worst = best; if (where) *where = i; }
    }
    f(ctx, out);
    return worst;
}

// One parameter tensor x (nx values) of a whole model: the probe step follows the tensor's own
// scale, 0.05 x its RMS within [floor, eps] (embeddings are ~0.02, LayerNorm gains ~1); with
// piecewise, gc_check_piecewise at tolerance tol (for models that merge tokens), else gc_check
// (*retried = 0). Returns the max error and where.
static inline double gc_check_tensor(GcForward f, void *ctx, float *x, size_t nx, const float *analytic,
                                     float *out, const float *R, size_t nout, float eps, float floor,
                                     int piecewise, double tol, size_t *where, size_t *retried) {
    double rms = 0;
    for (size_t i = 0; i < nx; i++) rms += (double)x[i] * x[i];
    rms = sqrt(rms / (double)nx);
    float step = (float)fmin(eps, fmax(floor, 0.05 * rms));
    if (!piecewise) {
        *retried = 0;
        return gc_check(f, ctx, x, nx, analytic, out, R, nout, step, where);
    }
    return gc_check_piecewise(f, ctx, x, nx, analytic, out, R, nout, step, tol, where, retried);
}

static inline void gc_fill(float *x, size_t n, uint64_t *s, float scale) {
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = scale * ((float)((*s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f);
    }
}

#endif
