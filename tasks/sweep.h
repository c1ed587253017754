// Sweeps (SPEC §12, README "More than one machine"): every (task, method, seed[, grid point]) job,
// each run as its own process of this binary (`maelre-bench run ... --out DIR/jobs/<task>/<job>`),
// so a job's results are exactly those of the same `run` on one machine.
// - Under MPI (tasks/dist.h) rank 0 hands jobs out one at a time, longest expected first (an
//   analytic training-FLOP estimate from the task's shape, budget and sequence length), and runs
//   jobs itself between messages; the other ranks ask, run, ask again. With one rank the jobs run
//   one after another in that order.
// - A job is done when its run folder holds results.json (written atomically by `run` when the
//   job's row and checkpoint are there). Starting again with the same DIR runs only the jobs that
//   are not done; DIR/sweep.json holds the settings, and other settings are refused (exit 2).
//   Rank 0 holds DIR/sweep.lock (flock) while it runs: a second sweep on DIR is refused (exit 2).
// - A job that fails is recorded in DIR/failed/<task>-<job>.json (exit status or signal, the last
//   line of its log DIR/jobs/<task>/<job>/run.log) and the sweep goes on; the record goes when the
//   job later succeeds. A job stopped by SIGINT is not a failure (it runs again next time).
// - At the end rank 0 writes DIR/results.{csv,json} (every done job's row, plus `job`, `grid` and
//   one column per grid key) and runs `report DIR/results.json --out DIR/report`.
// Library code: no exit; progress lines go to the stream in the spec.      -- tasks/sweep.c
#ifndef MAELRE_SWEEP_H
#define MAELRE_SWEEP_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/model.h"
#include "tasks/task.h"

#define SWEEP_MAX_GRID 8

typedef struct {
    char key[128];        // a task-file field path ("model.dim", "optim.lr", "maelre.keep")
    char **values;        // as typed: numbers, true/false, else strings
    size_t n;
} SweepAxis;

typedef struct {
    char **tasks;
    size_t n_tasks;
    Method methods[METHOD_COUNT];
    size_t n_methods;
    uint64_t *seeds;
    size_t n_seeds;
    int quick;              // the tasks' quick budgets (else full)
    size_t steps;           // > 0: --steps for every job
    double time_budget;     // > 0: --time-budget for every job
    int threads;            // per job; 0 = cores of the node / ranks on it (at least 1)
    size_t batch, eval_every, train_limit, test_limit, val_limit;   // > 0: passed to every job's `run`
    long patience;          // >= 0: --patience for every job; < 0: the task's
    double checkpoint_every;   // > 0: --checkpoint-every for every job
    const char *config;     // --config FILE for every job (NULL = none); grid values merge over it
    const char *data_root;
    const char *out;
    SweepAxis grid[SWEEP_MAX_GRID];
    size_t n_grid;
    int no_report;          // skip the report at the end
    int dry_run;            // print the jobs in start order with their estimates to plan_out; run nothing
    FILE *plan_out;         // dry_run's list (rank 0)
    FILE *log;              // progress lines (rank 0 and job starts/ends on every rank); NULL = silent
    volatile sig_atomic_t *stop;   // SIGINT flag (may be NULL): no new jobs; running ones get SIGINT
} SweepSpec;

typedef struct {
    size_t jobs, done_before, ran, ok, failed;   // rank 0's view of the whole sweep
    int first_fail_code;                          // exit status of the first failed job (job order)
} SweepResult;

// Parses "key=v1,v2,..." into an axis (values malloc'ed; sweep_axis_free).
int sweep_axis_parse(SweepAxis *a, const char *arg, char *err, size_t errlen);
void sweep_axis_free(SweepAxis *a);

// Runs the sweep on every rank (call after dist_init). MB_OK when every job is done; the first
// failed job's exit status when one failed (all others still ran); MB_ERR_INTERRUPTED after
// SIGINT; MB_ERR_USAGE for bad tasks/grid keys/settings (before any job runs).
int sweep_run(const SweepSpec *s, SweepResult *res, char *err, size_t errlen);

// Estimated training + evaluation FLOPs of one job (the ordering key; 0 when unknown).
double sweep_job_cost(const Task *t, Method m, size_t steps, size_t batch, size_t test_limit,
                      size_t seq_len);

#endif
