// Training one method with validation and model selection, and evaluation (SPEC §6, §8, §11).
//                                                                          -- tasks/train.c
// Protocol:
//  - Validation (tasks/run_data.h says which split) every rs->eval_every steps, by default about
//    ten times per run: every ceil(steps / 10) steps; with a time budget at every tenth of the
//    budget; with an epochs budget every epoch (at most 100 evaluations). Always after the last
//    step too. A better evaluation (higher validation accuracy, or equal accuracy and lower
//    validation loss) keeps a copy of the weights; `accuracy` is the test accuracy of that copy,
//    `accuracy_last` that of the last weights. The test split decides nothing.
//  - Early stopping (rs->patience > 0, not under a time budget): training stops after `patience`
//    evaluations in a row without improvement.
//  - Time budget: the clock counts training steps only (forward, backward, update); validation,
//    state saving and curve writing pause it, so they never eat a method's budget. The learning
//    rate follows that clock (adamw_lr_at_frac: warm-up and decay as fractions of the budget);
//    a step whose forward and backward end past the budget is not applied, so every applied
//    update has lr > 0 and the schedule ends at the budget.
//  - Fault tolerance: every rs->checkpoint_every seconds (wall clock) and when interrupted the
//    (and once training ends) the whole training state (weights, AdamW moments and step,
//    sampler order/position/RNG, best weights and their evaluation, curves, training clock,
//    FLOP counters) is saved atomically with a zlib crc32 to paths->state. A run started again with that file continues from it; with
//    steps (not a time budget) and fixed threads it ends with the same bits as an uninterrupted
//    run. A damaged state file is MB_ERR_DATA naming it; one saved with other settings is
//    MB_ERR_USAGE (the orchestrator removes it on --force).
#ifndef MAELRE_TRAIN_H
#define MAELRE_TRAIN_H
#include <signal.h>
#include <stdint.h>
#include "core/model.h"
#include "tasks/progress.h"
#include "tasks/run_data.h"
#include "tasks/run_schema.h"

typedef struct {
    size_t n, correct;
    double accuracy, accuracy_stderr;
    double loss;                         // mean cross-entropy
    double seconds, samples_per_s;       // timed pass (warm-up batch excluded when asked for)
    double flops_per_sample, macs_per_sample, mean_tokens;
    double blocks[ATTN_KIND_COUNT];
} EvalResult;

typedef struct {
    Progress *progress;   // NULL: silent; else progress_eval lines
    const char *what;     // "test", "validation" (progress lines)
    int32_t *pred;        // NULL, or n predicted classes (argmax; ties: the smallest class)
    int warmup;           // 1: run the first batch once untimed first (throughput)
} EvalOptions;

// Evaluates in order, batches of `batch`; counts FLOPs and attention usage; times it (after one
// untimed warm-up batch). MB_ERR_INTERRUPTED when *stop (may be NULL) becomes set.
int runner_evaluate(Model *m, const SeqSet *test, size_t batch, volatile sig_atomic_t *stop, EvalResult *r,
                    char *err, size_t errlen);
int runner_evaluate_ex(Model *m, const SeqSet *s, size_t batch, volatile sig_atomic_t *stop, const EvalOptions *o,
                       EvalResult *r, char *err, size_t errlen);

// Where one (method, seed) writes; any may be NULL (not written).
typedef struct {
    const char *ckpt;         // best-validation weights (model_save), atomically
    const char *state;        // the training state (saved, and resumed from when present)
    const char *curves;       // CSV step,samples,wall_s,lr,train_loss,val_accuracy
    const char *predictions;  // CSV index,label,pred_best,pred_last (test split, in order)
} RunPaths;

// Trains one method in this process and evaluates it. MB_ERR_INTERRUPTED when *rs->stop was
// set (the state is saved first when paths->state is set).
int runner_train_eval(const Task *t, const char *data_root, Method method, const RunSpec *rs,
                      const RunPaths *paths, RunRow *row, char *err, size_t errlen);

#endif
