// AdamW (Loshchilov & Hutter) matching torch.optim.AdamW: decoupled decay p *= 1 - lr*wd
// (only where model_decay_mask is 1), then the bias-corrected Adam update. Clipping matches
// torch.nn.utils.clip_grad_norm_: scale grads by clip / (norm + 1e-6) when that is < 1.
// The moments m and v are one allocation in the model's parameter layout: [m | v].
#include "core/optim.h"
#include <math.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"

struct Optimizer {
    AdamWConfig cfg;
    size_t n, steps;
    float *mv;  // 2 * n floats: first moments, then second moments
};

void adamw_config_default(AdamWConfig *c, size_t total_steps) {
    c->lr = 5e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.01f;
    c->clip_norm = 1.0f;
    c->total_steps = total_steps;
    c->warmup_steps = total_steps / 20;
    c->schedule = SCHED_COSINE;
}

// step counts from 0. Warm-up: lr * (step + 1) / warmup for step < warmup. Then decay over
// the remaining steps to 0 at total_steps (cosine or linear); constant stays at lr.
float adamw_lr_at(const AdamWConfig *c, size_t step) {
    if (step < c->warmup_steps) return c->lr * (float)(step + 1) / (float)c->warmup_steps;
    if (c->schedule == SCHED_CONSTANT) return c->lr;
    size_t span = c->total_steps > c->warmup_steps ? c->total_steps - c->warmup_steps : 1;
    double prog = (double)(step - c->warmup_steps) / (double)span;
    if (prog > 1.0) prog = 1.0;
    if (c->schedule == SCHED_LINEAR) return (float)(c->lr * (1.0 - prog));
    return (float)(c->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * prog)));
}

int optimizer_create(Optimizer **out, Model *m, const AdamWConfig *c, char *err, size_t errlen) {
    *out = NULL;
    if (!(c->lr >= 0.0f) || !(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f) ||
        !(c->eps > 0.0f) || !(c->weight_decay >= 0.0f))
        return mb_fail(err, errlen, MB_ERR_USAGE, "optimizer config: need lr >= 0, betas in [0, 1), eps > 0, weight_decay >= 0");
    Optimizer *o = mem_alloc(sizeof *o);
    if (!o) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for the optimizer");
    o->cfg = *c;
    o->n = model_num_params(m);
    o->mv = mem_alloc(2 * o->n * sizeof(float));
    if (!o->mv) { mem_free(o); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for AdamW moments (%zu floats)", 2 * o->n); }
    *out = o;
    return MB_OK;
}

void optimizer_destroy(Optimizer *o) {
    if (!o) return;
    mem_free(o->mv);
    mem_free(o);
}

size_t optimizer_steps_done(const Optimizer *o) { return o->steps; }

float adamw_lr_at_frac(const AdamWConfig *c, double wf, double frac) {
    if (frac < 0) frac = 0;
    if (wf > 0 && frac < wf) return (float)(c->lr * frac / wf);
    if (c->schedule == SCHED_CONSTANT) return c->lr;
    double prog = wf < 1 ? (frac - wf) / (1 - wf) : 1.0;
    if (prog > 1.0) prog = 1.0;
    if (c->schedule == SCHED_LINEAR) return (float)(c->lr * (1.0 - prog));
    return (float)(c->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * prog)));
}

float *optimizer_moments(Optimizer *o, size_t *n_floats) {
    if (n_floats) *n_floats = 2 * o->n;
    return o->mv;
}

void optimizer_set_steps(Optimizer *o, size_t steps) { o->steps = steps; }

float optimizer_step(Optimizer *o, Model *m) { return optimizer_step_lr(o, m, adamw_lr_at(&o->cfg, o->steps)); }

// Parameters are independent, so the update runs in parallel above this many (bitwise the same
// whatever the thread count).
#define PAR_MIN 65536
#define NORM_PARTS 64   // fixed, so the norm's summation order does not depend on the threads

// Sum of squares in double in a fixed order: NORM_PARTS contiguous parts (in parallel), each with
// 8 interleaved accumulators (a chain of dependent double adds would cost ~4 cycles a parameter),
// added in part order.
static double sum_squares(const float *g, size_t n) {
    double part[NORM_PARTS];
    size_t len = (n + NORM_PARTS - 1) / NORM_PARTS;
    #pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t q = 0; q < NORM_PARTS; q++) {
        size_t i0 = q * len < n ? q * len : n, i1 = n - i0 < len ? n : i0 + len, i = i0;
        double acc[8] = {0};
        for (; i + 8 <= i1; i += 8)
            for (size_t k = 0; k < 8; k++) acc[k] += (double)g[i + k] * g[i + k];
        for (; i < i1; i++) acc[0] += (double)g[i] * g[i];
        part[q] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double sq = 0.0;
    for (size_t q = 0; q < NORM_PARTS; q++) sq += part[q];
    return sq;
}

float optimizer_step_lr(Optimizer *o, Model *m, float lr) {
    const AdamWConfig *c = &o->cfg;
    float *p = model_params(m), *g = model_grads(m);
    const uint8_t *decay = model_decay_mask(m);
    size_t n = o->n;
    float norm = (float)sqrt(sum_squares(g, n));
    float gscale = 1.0f;
    if (c->clip_norm > 0.0f) {
        float coef = c->clip_norm / (norm + 1e-6f);
        if (coef < 1.0f) gscale = coef;
    }
    o->steps++;
    float b1 = c->beta1, b2 = c->beta2;
    float bc1 = 1.0f - powf(b1, (float)o->steps), bc2 = 1.0f - powf(b2, (float)o->steps);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    float wdl = lr * c->weight_decay;
    float *mm = o->mv, *vv = o->mv + n;
    #pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        if (decay[i]) p[i] *= 1.0f - wdl;
        mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
        vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(vv[i]) / bc2_sqrt + c->eps;
        p[i] -= step_size * mm[i] / denom;
    }
    return norm;
}
