// Report plots through gnuplot (Debian gnuplot-nox), run as a child process: for each plot we
// write a data file and a .gp script (kept beside the PNG so a figure can be restyled and
// re-made with `gnuplot <name>.gp` from the plots folder), then gnuplot renders into a temporary
// file that is renamed onto <name>.png only if it finished and starts with the PNG signature:
// a PNG is there whole or not at all. The script picks pngcairo when the gnuplot has it, else png.
// Plots: accuracy against inference FLOPs per task (log x, stderr bars, one mark per method, the
// majority class as a dotted horizontal line), learning curves per task (training loss against
// step; validation accuracy against training wall seconds, the equal-time view; one line per
// (method, seed), a colour per method, majority class dotted), and inference/training FLOPs and
// peak memory against sequence length (log-log, a line per method) from profile rows whose
// status says the measurement ran. Methods keep one colour and marker across all plots.
// Library code: returns core/status.h codes with a reason, never prints.
#ifndef MAELRE_PLOT_H
#define MAELRE_PLOT_H
#include <stddef.h>
#include "results/markdown.h"
#include "results/report.h"
#include "results/table.h"

#define PLOT_DIR "plots"                               // under the report's output folder
#define PLOT_FLOPS_PNG PLOT_DIR "/flops_vs_seq_len.png"
#define PLOT_MEMORY_PNG PLOT_DIR "/memory_vs_seq_len.png"

// "plots/acc_vs_flops_<task>.png" (task reduced to [A-Za-z0-9._-]).
void plot_acc_name(char *buf, size_t n, const char *task);

// "plots/loss_vs_step_<task>.png" (val = 0) or "plots/val_acc_vs_time_<task>.png" (val = 1).
void plot_curve_name(char *buf, size_t n, const char *task, int val);

// The gnuplot to run: $MAELRE_GNUPLOT if set (a path, or a name looked up in PATH), else
// "gnuplot" in PATH. MB_OK and its path, or MB_ERR_IO with "not found" in the reason.
int plot_find_gnuplot(char *path, size_t n, char *err, size_t errlen);

// Accuracy (%) against inference FLOPs per sample for one task, from the summaries of that task
// (entries of other tasks are ignored). *made = 0 when no method has both numbers (no file then).
// outdir is the report folder; plots go to outdir/plots (created).
int plot_acc_vs_flops(const char *gnuplot, const char *outdir, const char *task,
                      const RunSummary *s, size_t n, int *made, char *err, size_t errlen);

// Learning curves of one task from the curves of that task (others ignored). val = 0: training
// loss against step; val = 1: validation accuracy (%) against wall seconds of training, with the
// majority class (a fraction; NAN: none) as a dotted line. *made = 0 when no curve has a point
// to draw (no file then).
int plot_curves(const char *gnuplot, const char *outdir, const char *task, const Curve *c,
                size_t n, double majority, int val, int *made, char *err, size_t errlen);

// memory = 0: FLOPs per sample; 1: peak memory (MiB), against seq_len, one line per method
// (inference solid, training dashed). Rows with several batch sizes: the smallest batch is drawn.
int plot_scaling(const char *gnuplot, const char *outdir, const Table *profiles, int memory,
                 int *made, char *err, size_t errlen);

#endif
