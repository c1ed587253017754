// The runner: trains and evaluates one method on one task and measures it (SPEC §6, §8), and
// runs a list of methods each in its own forked process so that peak_rss_bytes is that
// (task, method)'s own. Results go to <out>/.<method>.json (one finished row, written
// atomically by the child), <out>/<method>.ckpt, and <out>/results.{json,csv}. A finished
// row whose settings match is reused (resume) unless force. Library code: no exit, and the
// only output is the progress stream the caller passes in.               -- tasks/runner.c
//
// Conventions (also in the README): FLOPs are analytic, 1 multiply-add = 2 FLOPs = 1 MAC,
// 1 FLOP per element-wise op; inference FLOPs are the mean over the test set of the eval
// forward passes; training FLOPs per sample are forward + backward over all training steps
// divided by the samples trained. Throughput excludes warm-up (inference: one extra batch
// first; training: the first steps, or the time-budget calibration steps). Peak memory is
// bytes held through core/mem.h above what was held before (data excluded), for training
// and inference (a fresh model loaded from the checkpoint) separately.
#ifndef MAELRE_RUNNER_H
#define MAELRE_RUNNER_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include "core/model.h"
#include "results/table.h"
#include "tasks/task.h"

typedef struct {
    uint64_t seed;
    int threads;             // 0 = all cores
    size_t steps;            // used when time_budget == 0
    double time_budget;      // seconds of training per method
    size_t batch;
    size_t train_limit, test_limit;   // 0 = the whole split
    char budget[16];         // "quick", "full" or "custom" (recorded)
    FILE *progress;          // NULL = silent
    volatile sig_atomic_t *stop;      // set by the caller's SIGINT handler (may be NULL)
} RunSpec;

// Fills a RunSpec from a task budget (steps, time, batch, limits).
void runspec_from_budget(RunSpec *rs, const Budget *b, const char *name);

typedef struct {
    char task[64];
    Method method;
    uint64_t seed;
    int threads;
    size_t params, max_len;
    double mean_tokens;                 // mean input tokens per test sample
    size_t train_samples, test_samples, steps, batch;
    double accuracy, accuracy_stderr;
    double train_seconds, train_samples_per_s, infer_samples_per_s;
    double flops_infer_per_sample, flops_train_per_sample, macs_infer_per_sample, macs_train_per_sample;
    size_t peak_mem_train_bytes, peak_mem_infer_bytes, peak_rss_bytes;
    double blocks[ATTN_KIND_COUNT];     // mean blocks per test sample using each attention kind
    double final_loss;                  // mean training loss over the last 10% of steps
    ModelConfig model;
    AdamWConfig optim;
} RunRow;

extern const char *const RUN_COLUMNS[];   // SPEC §8 order: the CSV columns
extern const size_t RUN_N_COLUMNS;

typedef struct {
    size_t n, correct;
    double accuracy, accuracy_stderr;
    double seconds, samples_per_s;       // timed pass, warm-up batch excluded
    double flops_per_sample, macs_per_sample, mean_tokens;
    double blocks[ATTN_KIND_COUNT];
} EvalResult;

// Loads one split with the task's DataSpec and the given limit (0 = all); max_len overrides the
// task's truncation when > 0. Checks the class count against the task.
int runner_load_split(const Task *t, const char *data_root, Split split, size_t limit, size_t max_len,
                      SeqSet *out, char *err, size_t errlen);
// Refuses a model whose input kind, vocabulary, patch width or classes do not fit the data.
int runner_check_fit(const ModelConfig *c, const SeqSet *s, const char *what, char *err, size_t errlen);
// Evaluates in order, batches of `batch`; counts FLOPs and attention usage; times it.
// MB_ERR_INTERRUPTED when *stop (may be NULL) becomes set.
int runner_evaluate(Model *m, const SeqSet *test, size_t batch, volatile sig_atomic_t *stop, EvalResult *r,
                    char *err, size_t errlen);
// Trains one method in this process and evaluates it; saves the checkpoint at ckpt_path (atomically)
// when it is not NULL. MB_ERR_INTERRUPTED when *rs->stop was set.
int runner_train_eval(const Task *t, const char *data_root, Method method, const RunSpec *rs,
                      const char *ckpt_path, RunRow *row, char *err, size_t errlen);

// The row as JSON: every RUN_COLUMNS column plus "config" (task JSON, run settings, model, optimizer,
// conventions) and "run_key" (what must match for a resume).
cJSON *run_row_to_json(const RunRow *r, const Task *t, const RunSpec *rs);
cJSON *run_key_json(const Task *t, const RunSpec *rs);

// Makes sure the task's data is under data_root: present -> MB_OK; ListOps missing -> generated
// there with the LRA grammar (96k/2k/2k, fixed seed), announced on `note` first; anything else
// missing -> MB_ERR_DATA saying where to download it and where to put it.
int runner_ensure_data(const Task *t, const char *data_root, FILE *note, char *err, size_t errlen);
// --data-root, else $MAELRE_DATA, else "data".
const char *runner_data_root(const char *flag);

// Runs each method in a forked child (resume/force as described above), then writes
// <out>/results.{json,csv} with every finished row of this run's settings. *results (optional)
// receives the table. Returns MB_OK, the first failing method's code, or MB_ERR_INTERRUPTED.
int runner_run(const Task *t, const char *data_root, const RunSpec *rs, const Method *methods,
               size_t n_methods, const char *out_dir, int force, Table **results, char *err, size_t errlen);

#endif
