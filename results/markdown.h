// The report's Markdown (report.md). Input: merged run rows (SPEC §8, §11 columns) and profile
// rows (`maelre-bench profile` columns) as results/table.h tables, and the paired comparisons
// of results/report.h. Promises: one table per task with methods as rows (accuracy: one seed
// +- its binomial stderr, several seeds mean +- sample std over seeds; inference FLOPs and peak
// memory also as % of the task's vanilla row; samples/s) and a majority-class row; per task a
// seeds/model-selection table when the runs have several seeds or the §11 columns, and the
// paired comparison with vanilla (McNemar p, bootstrap interval) explained in words; one
// profile table per sequence length; the metric conventions written out; numbers formatted from
// the data only (a missing value prints as an em dash, never a guess). The summaries themselves
// (RunSummary, report_summarize) live in results/report.h.
// Library code: returns core/status.h codes with a reason, never prints.
#ifndef MAELRE_MARKDOWN_H
#define MAELRE_MARKDOWN_H
#include <stddef.h>
#include "results/report.h"
#include "results/table.h"

typedef struct {
    const char *const *run_sources;      // files the run rows came from, in command-line order
    size_t n_run_sources;
    const char *const *profile_sources;
    size_t n_profile_sources;
    size_t runs_replaced, profiles_replaced;   // rows dropped because a later file had the same key
    const char *const *plots;            // plot files that exist, relative to report.md's folder
    size_t n_plots;
    const char *plot_note;               // why plots are missing (NULL when none are)
    const PairedResults *paired;         // comparisons with vanilla (NULL: none computed)
} MdReportInfo;

// report.md as a malloc'ed, NUL-terminated string (free it). runs and/or profiles may be NULL.
// Plots named in info->plots are linked where they belong (plot.h names them).
int md_report(const Table *runs, const Table *profiles, const MdReportInfo *info, char **out,
              char *err, size_t errlen);

// Human formatting used by the tables (exposed for tests and plots): 3 significant digits.
void md_fmt_si(char *buf, size_t n, double v, const char *unit);   // 1.23 GFLOP, 815 kFLOP
void md_fmt_bytes(char *buf, size_t n, double bytes);              // 12.3 MiB (binary prefixes)

#endif
