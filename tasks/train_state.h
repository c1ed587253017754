// What one training run carries from step to step and to disk (tasks/train.c): its counters,
// its learning curve, and the saved training state (SPEC §11: a run killed and started again
// continues from it).                                                    -- tasks/train_state.c
// State file: "MBSTATE1", crc32 (zlib) of the payload, 4 reserved bytes, payload length (u64),
// then the payload: the run key (JSON text; must equal the resuming run's), the counters, the
// weights, the AdamW step and moments, the best weights, the sampler (n, position, RNG, order),
// the curve rows. Host byte order: a state is for resuming on the machine that wrote it.
#ifndef MAELRE_TRAIN_STATE_H
#define MAELRE_TRAIN_STATE_H
#include <stddef.h>
#include "core/model.h"
#include "core/optim.h"
#include "tasks/run_data.h"

typedef struct {
    size_t step, samples;
    double wall_s, lr, loss, val;   // wall_s: the training clock when the update was applied (its lr's
                                    // time); val: NAN except at evaluations
} CurveRow;

typedef struct {
    CurveRow *rows;   // one per applied step (malloc)
    size_t n, cap;
} Curves;

int curves_push(Curves *c, CurveRow r);   // MB_OK or MB_ERR_NOMEM
// CSV step,samples,wall_s,lr,train_loss,val_accuracy (val_accuracy empty except at evaluations), atomically.
int write_curves(const char *path, const Curves *c, char *err, size_t errlen);

// A growing text/byte buffer (malloc).
typedef struct { char *p; size_t n, cap; } Buf;
int buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Everything a resumed run needs besides the data and the config (which the key pins).
typedef struct {
    size_t step, best_step, evaluations, since_best, timed_samples, next_eval, warmup_steps_seen;
    double train_elapsed, timed_seconds, flops, macs, best_acc, best_loss, run_loss, next_eval_t;
    int early_stopped, pending_eval;
} TrainCounters;

int state_save(const char *path, const char *key, Model *m, Optimizer *opt, const Sampler *sm,
               const float *best, const Curves *cv, const TrainCounters *tc, char *err, size_t errlen);
// Restores into the freshly created model/optimizer/sampler/best/curves: MB_OK, MB_ERR_DATA when
// the file is damaged (crc32, length, or a payload that does not fit this model and data),
// MB_ERR_USAGE when it was saved with other settings; the reason names the file.
int state_load(const char *path, const char *key, Model *m, Optimizer *opt, Sampler *sm, float *best,
               Curves *cv, TrainCounters *tc, char *err, size_t errlen);

#endif
