// The report's Markdown (report.md) and the per-(task, method) summaries it and the plots are
// built from. Input: merged run rows (SPEC §8 columns) and profile rows (`maelre-bench profile`
// columns) as results/table.h tables. Promises: one table per task with methods as rows
// (accuracy +- stderr, inference FLOPs and peak memory also as % of the task's vanilla row,
// samples/s), one profile table per sequence length, the metric conventions written out, and
// numbers formatted from the data only (a missing value prints as an em dash, never a guess).
// Library code: returns core/status.h codes with a reason, never prints.
#ifndef MAELRE_MARKDOWN_H
#define MAELRE_MARKDOWN_H
#include <stddef.h>
#include "results/table.h"

// One (task, method) over all its runs (seeds). Numbers are means over the runs that have them;
// NAN where none has. Strings point into the table the summary was made from.
typedef struct {
    const char *task, *method;
    size_t runs;                   // rows aggregated (normally one per seed)
    double acc, acc_err;           // fractions; acc_err: one run -> its binomial stderr
                                   // (accuracy_stderr); several -> std-dev over runs / sqrt(runs)
    double steps, train_seconds, batch, threads, max_len, mean_tokens, test_samples;
    double flops_infer, flops_train, macs_infer;            // per sample
    double mem_infer, mem_train, rss;                       // bytes
    double train_sps, infer_sps;                            // samples per second
    double blocks_softmax, blocks_efficient, blocks_linformer;   // mean blocks per sample
    const char *grid;              // a sweep's grid point ("model.dim=32", `grid` column); NULL if none
} RunSummary;

// Groups `runs` by (task, method, grid point): sorted by task, then vanilla, linformer, tome,
// maelre, others by name, then grid point. *out is malloc'ed (free it); MB_OK or MB_ERR_NOMEM / MB_ERR_DATA (a row without task or
// method).
int report_summarize(const Table *runs, RunSummary **out, size_t *n, char *err, size_t errlen);

// Rank of a method in tables and legends (vanilla 0, linformer 2, tome 4, maelre 6, each
// "<method>-dense" profile variant one after its method, others 8).
int report_method_rank(const char *method);

// The series a profile row belongs to: its `variant` (method, or method-dense), or its
// `method` in profiles written before variants existed. NULL when it has neither.
const char *report_profile_series(const Table *profile, size_t row);

typedef struct {
    const char *const *run_sources;      // files the run rows came from, in command-line order
    size_t n_run_sources;
    const char *const *profile_sources;
    size_t n_profile_sources;
    size_t runs_replaced, profiles_replaced;   // rows dropped because a later file had the same key
    const char *const *plots;            // plot files that exist, relative to report.md's folder
    size_t n_plots;
    const char *plot_note;               // why plots are missing (NULL when none are)
} MdReportInfo;

// report.md as a malloc'ed, NUL-terminated string (free it). runs and/or profiles may be NULL.
// Plots named in info->plots are linked where they belong (plot.h names them).
int md_report(const Table *runs, const Table *profiles, const MdReportInfo *info, char **out,
              char *err, size_t errlen);

// Human formatting used by the tables (exposed for tests and plots): 3 significant digits.
void md_fmt_si(char *buf, size_t n, double v, const char *unit);   // 1.23 GFLOP, 815 kFLOP
void md_fmt_bytes(char *buf, size_t n, double bytes);              // 12.3 MiB (binary prefixes)

#endif
