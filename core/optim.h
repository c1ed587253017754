// AdamW with decoupled weight decay (masked by model_decay_mask), linear warm-up then
// cosine or linear decay, and global gradient-norm clipping. Moments share the model's
// parameter layout, so a step is one flat loop.
#ifndef MAELRE_OPTIM_H
#define MAELRE_OPTIM_H
#include <stddef.h>
#include "core/model.h"

typedef enum { SCHED_COSINE = 0, SCHED_LINEAR, SCHED_CONSTANT } Schedule;

typedef struct {
    float lr;            // peak learning rate (5e-4)
    float beta1, beta2;  // 0.9, 0.999
    float eps;           // 1e-8
    float weight_decay;  // 0.01
    float clip_norm;     // 1.0; <= 0 disables
    size_t warmup_steps;
    size_t total_steps;  // schedule length
    Schedule schedule;
} AdamWConfig;

typedef struct Optimizer Optimizer;

void adamw_config_default(AdamWConfig *c, size_t total_steps);
float adamw_lr_at(const AdamWConfig *c, size_t step);   // step counts from 0
int optimizer_create(Optimizer **out, Model *m, const AdamWConfig *c, char *err, size_t errlen);
void optimizer_destroy(Optimizer *o);
// Clips, applies one AdamW step to the model's params from its grads; returns the pre-clip grad norm.
float optimizer_step(Optimizer *o, Model *m);
size_t optimizer_steps_done(const Optimizer *o);
// The same schedule over a fraction of a run (a time budget, tasks/train.c): warm-up over the
// first warmup_frac, then decay to 0 at frac = 1; lr at frac is what adamw_lr_at gives at step
// frac * total. > 0 for every frac < 1 (warm-up too when frac > 0).
float adamw_lr_at_frac(const AdamWConfig *c, double warmup_frac, double frac);
// optimizer_step with the learning rate given (instead of the step schedule's).
float optimizer_step_lr(Optimizer *o, Model *m, float lr);
// The whole optimizer state, for saving and restoring a training run: 2 * n floats of moments
// (first, then second) in the model's parameter layout, and the step count.
float *optimizer_moments(Optimizer *o, size_t *n_floats);
void optimizer_set_steps(Optimizer *o, size_t steps);

#endif
