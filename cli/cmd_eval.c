// `maelre-bench eval`: evaluate a saved checkpoint on a task's test split, print accuracy +- stderr.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/commands.h"
#include "core/model.h"
#include "core/status.h"
#include "core/threads.h"
#include "tasks/runner.h"
#include "tasks/task.h"

static void eval_usage(FILE *f) {
    fprintf(f,
        "usage: maelre-bench eval --checkpoint FILE --task T [--data-root DIR] [--quick | --test-limit N]\n"
        "                         [--batch B] [--threads N] [--config FILE]\n\n"
        "Evaluates a checkpoint written by `run` on the task's test split and prints accuracy +- its\n"
        "binomial standard error. --quick uses the quick budget's test subset (the one `run --quick`\n"
        "evaluated on), --test-limit N a class-balanced subset of N. A checkpoint whose input kind or\n"
        "class count does not fit the task is refused (exit 2).\n"
        "Exit: 0 ok, 1 internal, 2 usage, 3 bad/missing data, 4 I/O, 5 memory, 130 interrupted.\n");
}

static int eval_err(const char *fmt, const char *a) {
    fprintf(stderr, "maelre-bench: eval: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, " (see `maelre-bench eval --help`)\n");
    return MB_ERR_USAGE;
}

static int parse_size(const char *s, size_t *out) {
    if (!s || !*s || *s == '-') return -1;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e) return -1;
    *out = (size_t)v;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *task_name = NULL, *root_flag = NULL, *config = NULL;
    int quick = 0, have_limit = 0, have_batch = 0;
    size_t limit = 0, batch = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { eval_usage(stdout); return MB_OK; }
        else if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--checkpoint") || !strcmp(a, "--task") || !strcmp(a, "--data-root") ||
                 !strcmp(a, "--config") || !strcmp(a, "--test-limit") || !strcmp(a, "--batch") ||
                 !strcmp(a, "--threads")) {
            if (!v) return eval_err("%s needs a value", a);
            i++;
            if (!strcmp(a, "--checkpoint")) ckpt = v;
            else if (!strcmp(a, "--task")) task_name = v;
            else if (!strcmp(a, "--data-root")) root_flag = v;
            else if (!strcmp(a, "--config")) config = v;
            else if (!strcmp(a, "--test-limit")) {
                if (parse_size(v, &limit)) return eval_err("--test-limit needs a non-negative integer, not '%s'", v);
                have_limit = 1;
            } else if (!strcmp(a, "--batch")) {
                if (parse_size(v, &batch) || batch == 0) return eval_err("--batch needs a positive integer, not '%s'", v);
                have_batch = 1;
            } else if (parse_size(v, &threads) || threads > 1024)
                return eval_err("--threads needs an integer 0-1024, not '%s'", v);
        } else return eval_err("unknown option '%s'", a);
    }
    if (!ckpt) return eval_err("%s", "--checkpoint is required");
    if (!task_name) return eval_err("%s", "--task is required");
    if (quick && have_limit) return eval_err("%s", "--quick and --test-limit exclude each other");

    const char *root = runner_data_root(root_flag);
    char err[2048];
    Task t;
    int rc = task_load(&t, task_name, config, root, err, sizeof err);
    if (rc) { fprintf(stderr, "maelre-bench: %s\n", err); task_free(&t); return rc; }
    Model *m = NULL;
    SeqSet test = {0};
    if ((rc = model_load(&m, ckpt, err, sizeof err))) goto fail;
    model_set_softmax_impl(m, t.model.softmax_impl);   // the task's (or --config's) choice
    if ((rc = runner_ensure_data(&t, root, stderr, err, sizeof err))) goto fail;
    const ModelConfig *c = model_config(m);
    if (!have_limit) limit = quick ? t.quick.test_limit : t.full.test_limit;
    if (!have_batch) batch = quick ? t.quick.batch : t.full.batch;
    threads_set((int)threads);
    // Truncate to what the model was trained with (the checkpoint's max_len).
    if ((rc = runner_load_split(&t, root, SPLIT_TEST, limit, c->max_len, &test, err, sizeof err))) goto fail;
    char what[1200];
    snprintf(what, sizeof what, "%s does not fit task %s", ckpt, t.name);
    if ((rc = runner_check_fit(c, &test, what, err, sizeof err))) goto fail;
    volatile sig_atomic_t *stop = cli_stop_on_sigint(NULL);
    EvalResult ev;
    Progress pg;   // progress lines on stderr, like training's
    char label[200];
    snprintf(label, sizeof label, "%s/%s", t.name, method_name(c->method));
    progress_init(&pg, stderr, label, 0, 0);
    EvalOptions eo = {.progress = &pg, .what = "test", .warmup = 1};
    if ((rc = runner_evaluate_ex(m, &test, batch, stop, &eo, &ev, err, sizeof err))) goto fail;
    printf("task %s  method %s  test samples %zu\naccuracy %.4f +- %.4f  (%zu correct; %.1f samples/s, %.4g FLOPs/sample)\n",
           t.name, method_name(c->method), ev.n, ev.accuracy, ev.accuracy_stderr, ev.correct,
           ev.samples_per_s, ev.flops_per_sample);
    seqset_free(&test);
    model_destroy(m);
    task_free(&t);
    return MB_OK;
fail:
    fprintf(stderr, "maelre-bench: %s\n", err);
    seqset_free(&test);
    model_destroy(m);
    task_free(&t);
    return rc;
}
