// `maelre-bench sweep`: argument parsing, MPI start/stop and the closing line. The work is
// tasks/sweep.c; the ranks are tasks/dist.c.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/status.h"
#include "tasks/dist.h"
#include "tasks/runner.h"
#include "tasks/sweep.h"

static void sweep_usage(FILE *f) {
    fprintf(f,
        "usage: maelre-bench sweep --task T1,T2 [--method all|m1,m2] [--seeds 1,2,3] [--quick | --steps N |\n"
        "                          --time-budget SEC] [--grid key=v1,v2,...]... [--threads N] [--config FILE]\n"
        "                          [--data-root DIR] --out DIR [--no-report] [--dry-run]\n"
        "                          [--batch B] [--eval-every N] [--patience N] [--checkpoint-every SEC]\n"
        "                          [--train-limit N] [--test-limit N] [--val-limit N]\n\n"
        "Runs every (task, method, seed[, grid point]) job as its own `maelre-bench run` process, writing\n"
        "DIR/jobs/<task>/<method>-seed<S>[-<grid>]/ per job, then DIR/results.{csv,json} (all rows, grid values\n"
        "as columns) and DIR/report/. Under `mpirun -n K` or `srun`, rank 0 hands jobs out (longest expected\n"
        "first) and every rank runs them; without a launcher they run one after another. Starting again with\n"
        "the same DIR runs only the jobs that did not finish; a failed job is recorded in DIR/failed/<job>.json.\n"
        "  --task LIST       comma-separated tasks (as for run)\n"
        "  --method LIST     comma-separated methods, or all (default)\n"
        "  --seeds LIST      comma-separated seeds (default 1)\n"
        "  --quick, --steps N, --time-budget SEC   the budget of every job (as for run)\n"
        "  --grid KEY=V1,V2  vary a task-file field (e.g. model.dim=32,64, optim.lr=1e-3,5e-4); several\n"
        "                    --grid give their product. maelre.keep=X sets every MAELRE stage's keep (and\n"
        "                    turns the per-dataset keep rule of ts-* off)\n"
        "  --threads N       threads per job (default: the node's cores / the ranks on the node)\n"
        "  --config FILE     JSON merged over every task (grid values merge over it)\n"
        "  --data-root DIR   data folder on every node (default $MAELRE_DATA, else ./data)\n"
        "  --out DIR         sweep folder (shared by all ranks)\n"
        "  --batch, --eval-every, --patience, --checkpoint-every, --train-limit, --test-limit,\n"
        "  --val-limit       passed to every job's `run` (see `maelre-bench run --help`)\n"
        "  --no-report       skip `report` at the end\n"
        "  --dry-run         print the jobs in start order (longest expected first) with their estimated\n"
        "                    training+test FLOPs and whether they are done; run and write nothing\n"
        "Exit: 0 every job done, 2 usage, 130 interrupted; otherwise the exit status of the first failed job\n"
        "(in task, method, grid, seed order) after all others ran.\n"
        "This binary: %s.\n",
        dist_built_with_mpi() ? "built with MPI" : "built without MPI (make MPI=0): one process, no mpirun");
}

static int usage_err(const char *fmt, const char *a) {
    if (dist_rank() == 0) {
        fprintf(stderr, "maelre-bench: sweep: ");
        fprintf(stderr, fmt, a);
        fprintf(stderr, " (see `maelre-bench sweep --help`)\n");
    }
    return MB_ERR_USAGE;
}

static int parse_u64(const char *s, unsigned long long *out) {
    if (!s || !*s || *s == '-') return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e) return -1;
    *out = v;
    return 0;
}

// Splits a comma list into malloc'ed strings (empty items refused).
static int split(const char *arg, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *c = arg; *c; c++) cap += *c == ',';
    char **v = calloc(cap, sizeof *v);
    char *buf = strdup(arg);
    if (!v || !buf) { free(v); free(buf); return -1; }
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) v[(*n)++] = strdup(t);
    free(buf);
    *out = v;
    return 0;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

int cmd_sweep(int argc, char **argv) {
    char err[2048] = "";
    int rc = dist_init(&argc, &argv, err, sizeof err);
    if (rc) { fprintf(stderr, "maelre-bench: sweep: %s\n", err); return rc; }
    SweepSpec s;
    memset(&s, 0, sizeof s);
    s.patience = -1;
    const char *tasks_arg = NULL, *methods_arg = "all", *seeds_arg = "1", *root_flag = NULL;
    int have_steps = 0, have_time = 0;
    char **seed_strs = NULL;
    size_t n_seed_strs = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (dist_rank() == 0) sweep_usage(stdout);
            goto done;
        } else if (!strcmp(a, "--quick")) s.quick = 1;
        else if (!strcmp(a, "--no-report")) s.no_report = 1;
        else if (!strcmp(a, "--dry-run")) s.dry_run = 1;
        else if (!strcmp(a, "--task") || !strcmp(a, "--method") || !strcmp(a, "--seeds") || !strcmp(a, "--steps") ||
                 !strcmp(a, "--time-budget") || !strcmp(a, "--grid") || !strcmp(a, "--threads") ||
                 !strcmp(a, "--config") || !strcmp(a, "--data-root") || !strcmp(a, "--out") ||
                 !strcmp(a, "--batch") || !strcmp(a, "--eval-every") || !strcmp(a, "--patience") ||
                 !strcmp(a, "--checkpoint-every") || !strcmp(a, "--train-limit") || !strcmp(a, "--test-limit") ||
                 !strcmp(a, "--val-limit")) {
            if (!v) { rc = usage_err("%s needs a value", a); break; }
            i++;
            unsigned long long u;
            if (!strcmp(a, "--task")) tasks_arg = v;
            else if (!strcmp(a, "--method")) methods_arg = v;
            else if (!strcmp(a, "--seeds")) seeds_arg = v;
            else if (!strcmp(a, "--config")) s.config = v;
            else if (!strcmp(a, "--data-root")) root_flag = v;
            else if (!strcmp(a, "--out")) s.out = v;
            else if (!strcmp(a, "--steps")) {
                if (parse_u64(v, &u) || u == 0) rc = usage_err("--steps needs a positive integer, not '%s'", v);
                s.steps = (size_t)u;
                have_steps = 1;
            } else if (!strcmp(a, "--batch")) {
                if (parse_u64(v, &u) || u == 0 || u > 1000000) rc = usage_err("--batch needs a positive integer, not '%s'", v);
                s.batch = (size_t)u;
            } else if (!strcmp(a, "--eval-every")) {
                if (parse_u64(v, &u) || u == 0) rc = usage_err("--eval-every needs a positive integer, not '%s'", v);
                s.eval_every = (size_t)u;
            } else if (!strcmp(a, "--patience")) {
                if (parse_u64(v, &u) || u > 1000000) rc = usage_err("--patience needs an integer >= 0, not '%s'", v);
                s.patience = (long)u;
            } else if (!strcmp(a, "--train-limit") || !strcmp(a, "--test-limit") || !strcmp(a, "--val-limit")) {
                if (parse_u64(v, &u) || u == 0) rc = usage_err("%s needs a positive integer", a);
                if (!strcmp(a, "--train-limit")) s.train_limit = (size_t)u;
                else if (!strcmp(a, "--test-limit")) s.test_limit = (size_t)u;
                else s.val_limit = (size_t)u;
            } else if (!strcmp(a, "--checkpoint-every")) {
                char *e;
                errno = 0;
                s.checkpoint_every = strtod(v, &e);
                if (errno || *e || !(s.checkpoint_every > 0) || !isfinite(s.checkpoint_every))
                    rc = usage_err("--checkpoint-every needs a positive number of seconds, not '%s'", v);
            } else if (!strcmp(a, "--threads")) {
                if (parse_u64(v, &u) || u > 1024) rc = usage_err("--threads needs an integer 0-1024, not '%s'", v);
                s.threads = (int)u;
            } else if (!strcmp(a, "--time-budget")) {
                char *e;
                errno = 0;
                s.time_budget = strtod(v, &e);
                if (errno || *e || !(s.time_budget > 0) || !isfinite(s.time_budget))
                    rc = usage_err("--time-budget needs a positive number of seconds, not '%s'", v);
                have_time = 1;
            } else {
                if (s.n_grid == SWEEP_MAX_GRID) { rc = usage_err("at most %s --grid options", "8"); break; }
                if ((rc = sweep_axis_parse(&s.grid[s.n_grid], v, err, sizeof err))) {
                    if (dist_rank() == 0) fprintf(stderr, "maelre-bench: sweep: %s\n", err);
                    break;
                }
                s.n_grid++;
            }
        } else rc = usage_err("unknown option '%s'", a);
    }
    if (!rc && !tasks_arg) rc = usage_err("%s", "--task is required");
    if (!rc && !s.out) rc = usage_err("%s", "--out is required (the sweep folder, shared by all ranks)");
    if (!rc && have_steps && have_time) rc = usage_err("%s", "--steps and --time-budget exclude each other");
    if (!rc && split(tasks_arg, &s.tasks, &s.n_tasks)) rc = MB_ERR_NOMEM;
    if (!rc && !s.n_tasks) rc = usage_err("%s", "--task needs at least one task");
    if (!rc) {
        if (!strcmp(methods_arg, "all")) {
            for (int m = 0; m < METHOD_COUNT; m++) s.methods[s.n_methods++] = (Method)m;
        } else {
            char **ms;
            size_t nm;
            if (split(methods_arg, &ms, &nm)) rc = MB_ERR_NOMEM;
            for (size_t k = 0; k < nm && !rc; k++) {
                Method m;
                if (method_parse(ms[k], &m)) { rc = usage_err("unknown method '%s' (vanilla, linformer, tome, maelre or all)", ms[k]); break; }
                int dup = 0;
                for (size_t q = 0; q < s.n_methods; q++) dup |= s.methods[q] == m;
                if (!dup) s.methods[s.n_methods++] = m;
            }
            free_list(ms, nm);
            if (!rc && !s.n_methods) rc = usage_err("%s", "--method needs at least one method");
        }
    }
    if (!rc && split(seeds_arg, &seed_strs, &n_seed_strs)) rc = MB_ERR_NOMEM;
    if (!rc) {
        s.seeds = calloc(n_seed_strs ? n_seed_strs : 1, sizeof *s.seeds);
        if (!s.seeds) rc = MB_ERR_NOMEM;
        for (size_t k = 0; k < n_seed_strs && !rc; k++) {
            unsigned long long u;
            if (parse_u64(seed_strs[k], &u) || u > (1ULL << 53)) { rc = usage_err("--seeds: '%s' is not an integer 0 to 2^53", seed_strs[k]); break; }
            int dup = 0;
            for (size_t q = 0; q < s.n_seeds; q++) dup |= s.seeds[q] == u;
            if (!dup) s.seeds[s.n_seeds++] = u;
        }
        if (!rc && !s.n_seeds) rc = usage_err("%s", "--seeds needs at least one seed");
    }
    if (rc == MB_ERR_NOMEM) fprintf(stderr, "maelre-bench: sweep: out of memory\n");
    if (!rc) {
        s.data_root = runner_data_root(root_flag);
        s.log = stderr;
        s.plan_out = stdout;
        s.stop = cli_stop_on_sigint(NULL);
        SweepResult res;
        rc = sweep_run(&s, &res, err, sizeof err);
        if (rc && (dist_rank() == 0 || rc == MB_ERR_INTERNAL)) fprintf(stderr, "maelre-bench: sweep: %s\n", err);
        if (!rc && dist_rank() == 0 && !s.dry_run)
            printf("sweep: %zu jobs done -> %s/results.csv, %s/results.json%s%s%s\n", res.jobs, s.out, s.out,
                   s.no_report ? "" : ", ", s.no_report ? "" : s.out, s.no_report ? "" : "/report/");
    }
done:
    free_list(s.tasks, s.n_tasks);
    free_list(seed_strs, n_seed_strs);
    free(s.seeds);
    for (size_t a = 0; a < s.n_grid; a++) sweep_axis_free(&s.grid[a]);
    fflush(stdout);
    fflush(stderr);
    dist_finalize();
    return rc;
}
