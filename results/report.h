// What `maelre-bench report` computes, apart from printing it: reading run and profile outputs
// (one or more folders or files), checking and merging them, per-(task, method) summaries over
// seeds, the paired comparison of every method with `vanilla` on the same test samples (from the
// runs' predictions files), and the learning curves (curves files). SPEC §8, §11.
// Files beside a run's results (written by `run`, read here when they exist):
//   <run folder>/predictions/<method>-seed<S>.csv   index,label,pred_best,pred_last (test split
//                                                    in order; `accuracy` is pred_best's)
//   <run folder>/curves/<method>-seed<S>.csv        step,samples,wall_s,lr,train_loss,val_accuracy
// Older results without these files or without the newer columns (accuracy_last, best_step,
// val_accuracy, majority_accuracy) are accepted: those numbers are missing (NAN), never guessed.
// Library code: returns core/status.h codes with a reason; the only output is the optional
// `note` stream the caller passes in.  -- results/report.c, results/paired.c, results/curves.c
#ifndef MAELRE_REPORT_H
#define MAELRE_REPORT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/model.h"
#include "results/stats.h"
#include "results/table.h"

// ---------------------------------------------------------------------------------------------
// Method order

// Rank of a method in tables and legends, from one ordered table: vanilla, the other baselines
// (linformer, performer, nystromformer, linear, local, bigbird, tome), then maelre, maelre-exact,
// efficient. Method i has rank 2i, a profile variant "<method>-dense" 2i + 1 (right after its
// method); any other name REPORT_RANK_UNKNOWN (after all of them; ties sort by name).
int report_method_rank(const char *method);
#define REPORT_RANK_UNKNOWN 1000
// Position of a method in that table (0 = vanilla), -1 when unknown; *dense (may be NULL) is set
// for a "<method>-dense" variant.
int report_method_index(const char *method, int *dense);

// The series a profile row belongs to: its `variant` (method, or method-dense), or its
// `method` in profiles written before variants existed. NULL when it has neither.
const char *report_profile_series(const Table *profile, size_t row);

// ---------------------------------------------------------------------------------------------
// Reading and merging inputs

typedef enum { REPORT_RUNS, REPORT_PROFILE } ReportKind;

typedef struct {
    Table *t;
    char *path;        // the file read
    ReportKind kind;
} ReportInput;

typedef struct {
    ReportInput *in;
    size_t n, cap;
} ReportInputs;

// Reads one command-line INPUT: a folder (its results.json, else results.csv, and its
// profile.json, else profile.csv) or one such file (a .csv with seq_len and no task column is
// a profile). Each table is checked (key columns present, numbers are numbers, accuracy a
// fraction). MB_OK, MB_ERR_DATA (file and line named), MB_ERR_USAGE (not .csv/.json),
// MB_ERR_IO, MB_ERR_NOMEM. What was read before an error stays in *ins (free it).
int report_load_input(ReportInputs *ins, const char *arg, char *err, size_t errlen);
void report_inputs_free(ReportInputs *ins);

// The merged table of one kind (NULL when the inputs hold no rows of it): SPEC §8 columns first
// (runs: then accuracy_last, best_step, val_accuracy, majority_accuracy, empty for older rows),
// then other columns in order of appearance, then `source` (the file each row came from). The
// same run (task, method, seed) or profile point (variant, seq_len, batch, threads) twice: the
// input read later wins (also within one file); *replaced counts the rows dropped, and the
// first ten replacements are noted on `note` (may be NULL).
int report_merge(const ReportInputs *ins, ReportKind kind, FILE *note, Table **out,
                 size_t *replaced, char *err, size_t errlen);

// ---------------------------------------------------------------------------------------------
// Summaries

// One (task, method[, grid point]) over all its runs (one per seed after merging). Numbers are means over the
// runs that have them; NAN where none has. Strings point into the table the summary came from.
typedef struct {
    const char *task, *method;
    size_t runs;                   // rows aggregated: the number of seeds
    double acc, acc_err;           // fractions; acc_err: one run -> its binomial stderr
                                   // (accuracy_stderr); several -> std-dev over runs / sqrt(runs)
    double acc_std;                // sample standard deviation of accuracy over runs (NAN if < 2)
    double acc_last, acc_last_std; // test accuracy of the last weights (accuracy_last)
    double val_acc, best_step;     // best validation accuracy and its step (means)
    double majority;               // majority_accuracy: always predicting the training majority
    double steps, train_seconds, batch, threads, max_len, mean_tokens, test_samples;
    double flops_infer, flops_train, macs_infer;            // per sample
    double mem_infer, mem_train, rss;                       // bytes
    double train_sps, infer_sps;                            // samples per second
    double blocks[ATTN_KIND_COUNT];   // mean blocks per sample of each attention kind (NaN: not recorded)
    const char *grid;              // a sweep's grid point ("model.dim=32", `grid` column); NULL if none
} RunSummary;

// Groups `runs` by (task, method, grid point), sorted by task, then report_method_rank, then
// name, then grid point. *out is malloc'ed (free it); MB_OK or MB_ERR_NOMEM / MB_ERR_DATA (a row without task or method).
int report_summarize(const Table *runs, RunSummary **out, size_t *n, char *err, size_t errlen);

// Mean of majority_accuracy over the runs of one task; NAN when none has it.
double report_task_majority(const Table *runs, const char *task);

// ---------------------------------------------------------------------------------------------
// Paired comparison with vanilla (SPEC §11)

#define REPORT_BOOTSTRAP_SEED 20231101u   // resampling seed, fixed so reports are reproducible

// One comparison of `method` with vanilla on one task: per seed (the two runs of that seed,
// their pred_best predictions, paired on the test sample index), or pooled over seeds.
typedef struct {
    const char *task, *method;      // point into the runs table
    const char *grid;               // a sweep's grid point (NULL: none); paired with vanilla's
    double seed;                    // NAN for the pooled row
    int pooled;                     // 1: every seed with both predictions, pooled per test sample
    size_t seeds;                   // prediction sets in this row (1 per seed)
    size_t n;                       // test samples
    double acc, acc_vanilla;        // fractions (pooled: means over the seeds)
    size_t b, c;                    // b: only the method right; c: only vanilla right (pooled: sums)
    double p_mcnemar;               // exact two-sided p (NAN for pooled: pairs not independent)
    StatsInterval ci;               // 95% paired bootstrap interval of acc - acc_vanilla
} PairedRow;

typedef struct {
    PairedRow *rows;                // sorted by task, method rank, per-seed rows then pooled
    size_t n;
    char **notes;                   // why a run has no comparison (no predictions file, ...)
    size_t n_notes;
} PairedResults;

// For every non-vanilla run row whose task has a vanilla run of the same seed, reads both
// predictions files (from the folder of each row's `source`) and computes the comparison.
// Missing files or test splits that differ are notes, not errors. A malformed predictions file,
// or one that disagrees with its own results row (sample count, accuracy), is MB_ERR_DATA naming
// the file (and line). resamples: STATS_BOOTSTRAP_RESAMPLES normally.
int report_compare(const Table *runs, size_t resamples, PairedResults *out, char *err, size_t errlen);
void report_paired_free(PairedResults *p);

// ---------------------------------------------------------------------------------------------
// Learning curves

typedef struct {
    const char *task, *method;      // point into the runs table (method: into label when set)
    char *label;                    // a sweep's grid row: "method (grid point)", one line per point
    double seed;
    size_t n;                       // rows of the curves file
    double *step, *samples, *wall_s, *lr, *train_loss, *val_acc;   // NAN where empty
    char *path;
} Curve;

// The curves file of every run row that has one, sorted by task, method rank, seed. A malformed
// file is MB_ERR_DATA naming file and line. *out malloc'ed; free with report_curves_free.
int report_load_curves(const Table *runs, Curve **out, size_t *n, char *err, size_t errlen);
void report_curves_free(Curve *c, size_t n);

// ---------------------------------------------------------------------------------------------
// The whole report folder

typedef struct {
    const char *const *inputs;       // folders or files, in command-line order (later wins)
    size_t n_inputs;
    const char *out;                 // output folder (created; must not be an input)
    int plots;                       // 0: tables and report.md only
    size_t resamples;                // bootstrap resamples; 0 = STATS_BOOTSTRAP_RESAMPLES
    FILE *note;                      // replacements, warnings (gnuplot missing or failing); may be NULL
} ReportOptions;

typedef struct {
    size_t run_rows, profile_rows, tasks, plots, comparisons;
    int written;                     // report.md is there (also when a plot failed)
} ReportOutcome;

// Reads and checks every input (and the predictions and curves files beside run results) before
// writing anything, then writes out/results.{csv,json}, out/profile.{csv,json}, the plots
// (out/plots/, through gnuplot) and out/report.md. MB_OK (also when gnuplot is missing: a
// warning on `note`, report.md says why there are no plots); MB_ERR_INTERNAL when gnuplot
// failed (everything else written; err says what gnuplot said); MB_ERR_USAGE, MB_ERR_DATA,
// MB_ERR_IO, MB_ERR_NOMEM with nothing written for bad inputs.
int report_build(const ReportOptions *o, ReportOutcome *res, char *err, size_t errlen);

// "<folder of source>/<sub>/<method>-seed<S>.csv" for a run row ("predictions" or "curves");
// "<folder of source>/<run_dir>/<sub>/..." when the row has a `run_dir` (a sweep's merged rows:
// the job's folder, relative). 0 when the row has no source, method or seed, or a run_dir that is
// absolute or climbs out with "..").
int report_run_file(char *buf, size_t n, const Table *runs, size_t row, const char *sub);

#endif
