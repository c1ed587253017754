// What a run is (RunSpec) and what it records (RunRow), and the results schema in one place:
// one column list (tasks/run_schema.c) gives the CSV columns in order, the JSON row (every
// column, plus JSON-only ones, "config" and "run_key"), and the table row built back from a
// JSON row (the hidden per-(method, seed) files).                         -- tasks/run_schema.c
#ifndef MAELRE_RUN_SCHEMA_H
#define MAELRE_RUN_SCHEMA_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "core/model.h"
#include "core/optim.h"
#include "results/table.h"
#include "tasks/task.h"

typedef struct {
    uint64_t seed;
    int threads;             // 0 = all cores
    size_t steps;            // used when time_budget == 0 (and epochs == 0)
    double epochs;           // > 0: steps = ceil(epochs * train samples / batch) (small data sets)
    double time_budget;      // seconds of training per method
    size_t batch;
    size_t train_limit, test_limit;   // 0 = the whole split
    size_t val_limit;                 // caps the validation split; 0 = test_limit's value
    size_t eval_every;       // validation every N steps; 0 = about ten per run (a tenth of the budget)
    size_t patience;         // early stopping: stop after this many evaluations without improvement (0 = off)
    double checkpoint_every; // seconds between saved training states (<= 0: only when interrupted)
    char budget[16];         // "quick", "full" or "custom" (recorded)
    FILE *progress;          // NULL = silent
    volatile sig_atomic_t *stop;      // set by the caller's SIGINT/SIGTERM handler (may be NULL)
    int data_parallel;       // 1: split every batch and evaluation over the MPI ranks (tasks/dist.h);
                             // the run happens in the calling process, rank 0 writes (tasks/train.h)
} RunSpec;

// Fills a RunSpec from a task budget (steps or epochs, time, batch, limits, patience).
void runspec_from_budget(RunSpec *rs, const Budget *b, const char *name);
// The validation cap in effect: val_limit, else test_limit (0 = the whole split).
size_t runspec_val_limit(const RunSpec *rs);

typedef struct {
    char task[64];
    char kernels[16];                   // the kernel set that ran (core/kernels.h: avx512, avx2, plain)
    Method method;
    uint64_t seed;
    int threads;
    size_t params, max_len;
    double mean_tokens;                 // mean input tokens per test sample
    size_t train_samples, val_samples, test_samples, steps, batch;
    double accuracy, accuracy_stderr;   // test accuracy of the best-validation weights
    double accuracy_last;               // test accuracy of the last weights
    double val_accuracy;                // validation accuracy of the best weights
    size_t best_step;                   // step whose weights are the best on validation
    double majority_accuracy;           // test accuracy of always predicting train's most frequent class
    double train_seconds, train_samples_per_s, infer_samples_per_s;
    double flops_infer_per_sample, flops_train_per_sample, macs_infer_per_sample, macs_train_per_sample;
    size_t peak_mem_train_bytes, peak_mem_infer_bytes, peak_rss_bytes;
    double blocks[ATTN_KIND_COUNT];     // mean blocks per test sample using each attention kind
    double final_loss;                  // mean training loss over the last 10% of steps
    size_t evaluations;                 // validation passes made
    int early_stopped;                  // 1 when patience ran out before the budget
    ModelConfig model;
    AdamWConfig optim;
} RunRow;

// The CSV columns in order (SPEC §8 first, then the protocol's: accuracy_last, best_step,
// val_accuracy, majority_accuracy, val_samples). Built from the one column list.
const char *const *run_columns(size_t *n);
#define RUN_COLUMNS (run_columns(NULL))
#define RUN_N_COLUMNS (run_n_columns())
size_t run_n_columns(void);

// The row as JSON: every column (CSV and JSON-only) plus "config" (task JSON, run settings,
// model, optimizer, conventions) and "run_key" (what must match for a resume).
cJSON *run_row_to_json(const RunRow *r, const Task *t, const RunSpec *rs);
// What must match for a finished row or a saved training state to be reused. The seed is in it.
cJSON *run_key_json(const Task *t, const RunSpec *rs);
// Adds one table row from a JSON row (as run_row_to_json wrote it): the CSV columns as values,
// the JSON-only ones (and "config") as JSON. A table for these: run_table_new().
Table *run_table_new(void);
int run_table_add(Table *tb, const cJSON *row);

#endif
