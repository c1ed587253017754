// `maelre-bench run`: argument parsing, SIGINT, and the summary table. The work is tasks/runner.c.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/status.h"
#include "results/table.h"
#include "tasks/dist.h"
#include "tasks/runner.h"
#include "tasks/task.h"

static void run_usage(FILE *f) {
    fprintf(f,
        "usage: maelre-bench run --task T [--method all|m1,m2] [--quick] [--steps N | --time-budget SEC]\n"
        "                        [--batch B] [--seed S | --seeds S1,S2,...] [--threads N] [--eval-every N]\n"
        "                        [--patience N] [--checkpoint-every SEC] [--train-limit N] [--test-limit N]\n"
        "                        [--val-limit N]\n"
        "                        [--config FILE] [--data-root DIR] [--out DIR] [--force] [--data-parallel]\n\n"
        "Trains and evaluates each method (`maelre-bench list` names them) once per seed on task T, each\n"
        "in its own process, selecting the weights on a validation split (the dataset's own, CIFAR-10's\n"
        "last 10%% of train, else a stratified 10%% (>= 1000 samples) or 20%% hold-out of train), and writes\n"
        "DIR/results.json, DIR/results.csv, DIR/<method>-seed<S>.ckpt (best-validation weights),\n"
        "DIR/curves/<method>-seed<S>.csv and DIR/predictions/<method>-seed<S>.csv. accuracy is the test\n"
        "accuracy of the best-validation weights, accuracy_last that of the last weights.\n"
        "  --task T          a task from `maelre-bench list` (or a task .json file)\n"
        "  --method LIST     comma-separated methods, or all (default)\n"
        "  --quick           the task's quick budget (small subsets, few steps) instead of the full one\n"
        "  --steps N         optimizer steps per method (overrides the budget)\n"
        "  --time-budget SEC train every method for the same time instead of the same steps; the\n"
        "                    learning-rate schedule follows the training clock (validation and saving\n"
        "                    pause it), so every method uses its whole budget\n"
        "  --batch B         samples per step (overrides the budget)\n"
        "  --seed S          seed for initialisation and batch order (default 1)\n"
        "  --seeds LIST      comma-separated seeds: every method runs once per seed\n"
        "  --eval-every N    validate every N steps (default: about ten times per run; with\n"
        "                    --time-budget at every tenth of the budget)\n"
        "  --patience N      stop after N validations without improvement (default: the task's\n"
        "                    budget, e.g. UCR/UEA full runs; 0 = off; never under --time-budget)\n"
        "  --checkpoint-every SEC  save the whole training state every SEC seconds (default 300);\n"
        "                    a killed run started again with the same --out continues from it\n"
        "  --train-limit N, --test-limit N  class-balanced subsets (0 = whole split; the test\n"
        "                    limit also caps the validation split)\n"
        "  --val-limit N     caps the validation split alone (default: the test limit), class-\n"
        "                    balanced; a held-out sample cut by it does not go back to train\n"
        "  --threads N       OpenMP/OpenBLAS threads (default 0 = all cores)\n"
        "  --config FILE     JSON merged over the task's definition (any field)\n"
        "  --data-root DIR   data folder (default $MAELRE_DATA, else ./data)\n"
        "  --out DIR         output folder (default out/<task>[-quick]); finished runs are skipped,\n"
        "                    unfinished ones continue from their saved state\n"
        "  --force           rerun (method, seed) runs that already finished or started in DIR\n"
        "  --data-parallel   under `mpirun -n K` (or srun): the K ranks train one method and seed together,\n"
        "                    each on its share of every batch (the same global batches as one process),\n"
        "                    gradients summed; evaluation split too; rank 0 writes. Runs in this process\n"
        "                    (no fork), so one method and one seed per call. Without a launcher: one rank.\n"
        "SIGINT and SIGTERM stop the run cleanly (state saved). Exit: 0 ok, 1 internal, 2 usage,\n"
        "3 bad/missing data (also a damaged saved state), 4 I/O, 5 memory, 130 interrupted.\n");
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

static int usage_err(const char *fmt, const char *a) {
    fprintf(stderr, "maelre-bench: run: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see `maelre-bench run --help`)\n");
    return MB_ERR_USAGE;
}

static void print_summary(const Table *t) {
    printf("\n%-17s %-13s %4s %7s %7s %7s %7s %6s %7s %6s %8s %9s %9s %10s %10s %9s %9s %8s %5s %5s\n", "task",
           "method", "seed", "acc", "+-", "last", "val", "best@", "major", "steps", "train_s", "train/s", "infer/s",
           "GFLOP/inf", "GFLOP/trn", "memtr_MB", "meminf_MB", "rss_MB", "soft", "eff");
    for (size_t r = 0; r < table_rows(t); r++) {
        enum { NV = 18 };
        double v[NV] = {0};
        const char *cols[NV] = {"seed", "accuracy", "accuracy_stderr", "accuracy_last", "val_accuracy", "best_step",
                                "majority_accuracy", "steps", "train_seconds", "train_samples_per_s",
                                "infer_samples_per_s", "flops_infer_per_sample", "flops_train_per_sample",
                                "peak_mem_train_bytes", "peak_mem_infer_bytes", "peak_rss_bytes",
                                "blocks_softmax", "blocks_efficient"};
        for (int i = 0; i < NV; i++) table_get_num(t, r, cols[i], &v[i]);
        const char *task = table_get_str(t, r, "task"), *m = table_get_str(t, r, "method");
        printf("%-17s %-13s %4.0f %7.4f %7.4f %7.4f %7.4f %6.0f %7.4f %6.0f %8.1f %9.2f %9.2f %10.4f %10.4f %9.1f "
               "%9.1f %8.1f %5.2f %5.2f\n", task ? task : "?", m ? m : "?", v[0], v[1], v[2], v[3], v[4], v[5], v[6],
               v[7], v[8], v[9], v[10], v[11] / 1e9, v[12] / 1e9, v[13] / 1048576.0, v[14] / 1048576.0,
               v[15] / 1048576.0, v[16], v[17]);
    }
    printf("acc = test accuracy of the best-validation weights (+- binomial stderr), last = of the last weights, "
           "val = best validation accuracy (at step best@), major = always the training split's most frequent "
           "class; train_s = training time only (validation excluded); GFLOP analytic per sample (train = "
           "fwd+bwd); mem = own allocator peak; soft/eff = mean blocks per sample using softmax/efficient attention\n");
}

// The command; *dp = 1 once MPI was started for --data-parallel.
static int run_cmd(int argc, char **argv, int *dp) {
    const char *task_name = NULL, *methods_arg = "all", *config = NULL, *root_flag = NULL, *out = NULL;
    int quick = 0, force = 0, have_steps = 0, have_time = 0, have_batch = 0, have_pat = 0, have_seed = 0;
    int have_trl = 0, have_tel = 0, have_val = 0, data_parallel = 0;
    unsigned long long steps = 0, batch = 0, seed = 1, threads = 0, eval_every = 0, patience = 0, trl = 0, tel = 0, vl = 0;
    double time_budget = 0, ckpt_every = 300;
    uint64_t seeds[64];
    size_t ns = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { run_usage(stdout); return MB_OK; }
        else if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--data-parallel")) data_parallel = 1;
        else if (!strcmp(a, "--task") || !strcmp(a, "--method") || !strcmp(a, "--config") ||
                 !strcmp(a, "--data-root") || !strcmp(a, "--out") || !strcmp(a, "--steps") ||
                 !strcmp(a, "--time-budget") || !strcmp(a, "--batch") || !strcmp(a, "--seed") ||
                 !strcmp(a, "--threads") || !strcmp(a, "--seeds") || !strcmp(a, "--eval-every") ||
                 !strcmp(a, "--patience") || !strcmp(a, "--checkpoint-every") || !strcmp(a, "--train-limit") ||
                 !strcmp(a, "--test-limit") || !strcmp(a, "--val-limit")) {
            if (!v) return usage_err("%s needs a value", a);
            i++;
            if (!strcmp(a, "--task")) task_name = v;
            else if (!strcmp(a, "--method")) methods_arg = v;
            else if (!strcmp(a, "--config")) config = v;
            else if (!strcmp(a, "--data-root")) root_flag = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--steps")) {
                if (parse_u64(v, &steps) || steps == 0) return usage_err("--steps needs a positive integer, not '%s'", v);
                have_steps = 1;
            } else if (!strcmp(a, "--batch")) {
                if (parse_u64(v, &batch) || batch == 0 || batch > 1000000) return usage_err("--batch needs a positive integer, not '%s'", v);
                have_batch = 1;
            } else if (!strcmp(a, "--seed")) {
                if (parse_u64(v, &seed) || seed > (1ULL << 53))   // recorded exactly in JSON
                    return usage_err("--seed needs an integer 0 to 2^53, not '%s'", v);
                have_seed = 1;
            } else if (!strcmp(a, "--seeds")) {
                char buf[1024];
                if (strlen(v) >= sizeof buf) return usage_err("%s", "--seeds list too long");
                strcpy(buf, v);
                ns = 0;
                for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                    unsigned long long x;
                    if (parse_u64(tok, &x) || x > (1ULL << 53))
                        return usage_err("--seeds needs integers 0 to 2^53, not '%s'", tok);
                    int dup = 0;
                    for (size_t k = 0; k < ns; k++) dup |= seeds[k] == x;
                    if (dup) continue;
                    if (ns == sizeof seeds / sizeof seeds[0]) return usage_err("%s", "--seeds: at most 64 seeds");
                    seeds[ns++] = x;
                }
                if (!ns) return usage_err("--seeds needs at least one seed, not '%s'", v);
            } else if (!strcmp(a, "--eval-every")) {
                if (parse_u64(v, &eval_every) || eval_every == 0) return usage_err("--eval-every needs a positive integer, not '%s'", v);
            } else if (!strcmp(a, "--patience")) {
                if (parse_u64(v, &patience) || patience > 1000000) return usage_err("--patience needs an integer >= 0, not '%s'", v);
                have_pat = 1;
            } else if (!strcmp(a, "--train-limit") || !strcmp(a, "--test-limit") || !strcmp(a, "--val-limit")) {
                unsigned long long x;
                if (parse_u64(v, &x)) return usage_err("%s needs an integer >= 0", a);
                if (!strcmp(a, "--train-limit")) { trl = x; have_trl = 1; }
                else if (!strcmp(a, "--test-limit")) { tel = x; have_tel = 1; }
                else { vl = x; have_val = 1; }
            } else if (!strcmp(a, "--checkpoint-every")) {
                char *e;
                errno = 0;
                ckpt_every = strtod(v, &e);
                if (errno || *e || !(ckpt_every > 0) || !isfinite(ckpt_every))
                    return usage_err("--checkpoint-every needs a positive number of seconds, not '%s'", v);
            } else if (!strcmp(a, "--threads")) {
                if (parse_u64(v, &threads) || threads > 1024) return usage_err("--threads needs an integer 0-1024, not '%s'", v);
            } else {
                char *e;
                errno = 0;
                time_budget = strtod(v, &e);
                if (errno || *e || !(time_budget > 0) || !isfinite(time_budget))
                    return usage_err("--time-budget needs a positive number of seconds, not '%s'", v);
                have_time = 1;
            }
        } else return usage_err("unknown option '%s'", a);
    }
    if (!task_name) return usage_err("%s", "--task is required");
    if (have_steps && have_time) return usage_err("%s", "--steps and --time-budget exclude each other");
    if (have_seed && ns) return usage_err("%s", "--seed and --seeds exclude each other");
    if (!ns) seeds[ns++] = seed;

    Method methods[METHOD_COUNT];
    size_t nm = 0;
    if (!strcmp(methods_arg, "all")) {
        for (int m = 0; m < METHOD_COUNT; m++) methods[nm++] = (Method)m;
    } else {
        char buf[256];
        if (strlen(methods_arg) >= sizeof buf) return usage_err("%s", "--method list too long");
        strcpy(buf, methods_arg);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            Method m;
            if (method_parse(tok, &m))
                return usage_err("unknown method '%s' (a method of `maelre-bench list`, or all)", tok);
            int dup = 0;
            for (size_t k = 0; k < nm; k++) dup |= methods[k] == m;
            if (!dup) methods[nm++] = m;
        }
        if (!nm) return usage_err("%s", "--method needs at least one method");
    }

    const char *ranks_env = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
    if (!data_parallel && ranks_env && atoi(ranks_env) > 1)
        return usage_err("%s", "started as one of several MPI ranks without --data-parallel: every rank would run "
                         "everything (use --data-parallel, or `sweep` for independent jobs)");
    if (data_parallel && (nm != 1 || ns != 1))
        return usage_err("%s", "--data-parallel runs one method and one seed per call (--method M --seed S)");
    char err[2048];
    int rc;
    if (data_parallel) {
        if ((rc = dist_init(&argc, &argv, err, sizeof err))) {
            fprintf(stderr, "maelre-bench: run: %s\n", err);
            return rc;
        }
        *dp = 1;
    }
    const int rank = dist_rank();
    const char *root = runner_data_root(root_flag);
    Task t;
    rc = task_load(&t, task_name, config, root, err, sizeof err);
    if (rc) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        task_free(&t);
        return rc;
    }
    RunSpec rs = {0};
    runspec_from_budget(&rs, quick ? &t.quick : &t.full, quick ? "quick" : "full");
    if (have_steps) { rs.steps = steps; rs.time_budget = 0; rs.epochs = 0; rs.patience = 0; }
    if (have_time) { rs.time_budget = time_budget; rs.steps = 0; rs.epochs = 0; rs.patience = 0; }
    if (have_batch) rs.batch = batch;
    if (have_pat) rs.patience = patience;
    if (have_trl) rs.train_limit = trl;
    if (have_tel) rs.test_limit = tel;
    if (have_val) rs.val_limit = vl;
    if (have_steps || have_time || have_batch || have_pat || have_trl || have_tel || have_val || eval_every)
        snprintf(rs.budget, sizeof rs.budget, "%s+custom", quick ? "quick" : "full");
    rs.seed = seeds[0];
    rs.eval_every = eval_every;
    rs.checkpoint_every = ckpt_every;
    rs.threads = (int)threads;
    rs.progress = rank == 0 ? stderr : NULL;
    rs.data_parallel = data_parallel;

    char outbuf[512];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "out/%s%s", t.name, quick ? "-quick" : "");
        out = outbuf;
    }
    if (rank == 0) rc = runner_ensure_data(&t, root, stderr, err, sizeof err);
    if (data_parallel) dist_barrier();   // rank 0 made the data (once), the others find it
    if (!rc && rank != 0) rc = runner_ensure_data(&t, root, NULL, err, sizeof err);
    if (rc) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        task_free(&t);
        return rc;
    }

    rs.stop = cli_stop_on_sigint(NULL);
    Table *tb = NULL;
    rc = runner_run(&t, root, &rs, methods, nm, seeds, ns, out, force, &tb, err, sizeof err);
    if (tb) {
        print_summary(tb);
        printf("results: %s/results.csv, %s/results.json\n", out, out);
        table_free(tb);
    }
    if (rc && (rank == 0 || rc != MB_ERR_INTERRUPTED)) fprintf(stderr, "maelre-bench: %s\n", err);
    task_free(&t);
    return rc;
}

int cmd_run(int argc, char **argv) {
    int dp = 0;
    int rc = run_cmd(argc, argv, &dp);
    if (dp && rc && rc != MB_ERR_INTERRUPTED && dist_size() > 1) {
        fflush(stdout);
        fflush(stderr);
        dist_abort(rc);   // other ranks may be waiting in a collective: end them all with this code
    }
    if (dp) dist_finalize();
    return rc;
}
