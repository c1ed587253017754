// The binary end to end (MAELRE_BIN, set by `make test`): exit codes for bad arguments, bad
// configs and missing data; a tiny run writing results.{csv,json} with every column and a
// checkpoint per method; resume, --force, changed settings; eval reproducing the run's accuracy
// and refusing a misfit or a corrupted checkpoint (exit 3); SIGINT keeping finished methods (exit 130).
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/model.h"
#include "core/rng.h"
#include "core/status.h"
#include "tasks/runner.h"
#include "tests/file_util.h"

static char g_dir[256], g_task[320], g_out[320], g_err[320], g_root[320];
static const char *g_bin;

static void need_bin(void) { g_bin = test_cli_bin(); }

static pid_t spawn(const char *const *args) {
    const char *argv[40];
    size_t n = 0;
    argv[n++] = g_bin;
    for (; args[n - 1] && n < 39; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(g_out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        setenv("OMP_NUM_THREADS", "1", 1);
        execv(g_bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int wait_code(pid_t pid) {
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the binary died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

// Runs the binary; returns its exit code; stdout/stderr are in g_out/g_err.
static int run(const char *const *args) { return wait_code(spawn(args)); }

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(s, f);
    fclose(f);
}

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/maelre-test-cli-XXXXXX");
    cr_assert(mkdtemp(g_dir));
    snprintf(g_out, sizeof g_out, "%s/stdout", g_dir);
    snprintf(g_err, sizeof g_err, "%s/stderr", g_dir);
    snprintf(g_root, sizeof g_root, "%s/data", g_dir);
    char p[512];
    cr_assert_eq(mkdir(g_root, 0777), 0);
    snprintf(p, sizeof p, "%s/toy", g_root);
    cr_assert_eq(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/toy/train.tsv", g_root);
    write_split(p, 96, 21);
    snprintf(p, sizeof p, "%s/toy/test.tsv", g_root);
    write_split(p, 40, 22);
    snprintf(g_task, sizeof g_task, "%s/toy.json", g_dir);
    write_text(g_task,
        "{\"name\": \"toy\", \"modality\": \"text\", \"description\": \"two byte alphabets\",\n"
        " \"download\": \"written by tests/test_run_cli.c\", \"classes\": 2,\n"
        " \"data\": {\"source\": \"imdb\", \"path\": \"toy\", \"max_len\": 64},\n"
        " \"model\": {\"dim\": 16, \"heads\": 2, \"mlp\": 32, \"blocks\": 2, \"linformer_k\": 16,\n"
        "           \"maelre_stages\": [{\"blocks\": 1, \"keep\": 0.25}, {\"blocks\": 1, \"keep\": 0.5}]},\n"
        " \"optim\": {\"lr\": 0.003},\n"
        " \"budgets\": {\"quick\": {\"steps\": 6, \"batch\": 8, \"train_limit\": 48, \"test_limit\": 30},\n"
        "             \"full\": {\"steps\": 30, \"batch\": 8}}}\n");
    // A tiny univariate UCR series set (continuous input) for ts-<name> and the misfit check.
    snprintf(p, sizeof p, "%s/ucr", g_root);
    cr_assert_eq(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/ucr/Wiggle", g_root);
    cr_assert_eq(mkdir(p, 0777), 0);
    const char *ts = "# toy\n@problemName Wiggle\n@timeStamps false\n@univariate true\n@classLabel true up down\n@data\n"
                     "1,2,3,4,5,6,7,8:up\n8,7,6,5,4,3,2,1:down\n1,2,3,4,5,6,7,9:up\n9,7,6,5,4,3,2,1:down\n";
    snprintf(p, sizeof p, "%s/ucr/Wiggle/Wiggle_TRAIN.ts", g_root);
    write_text(p, ts);
    snprintf(p, sizeof p, "%s/ucr/Wiggle/Wiggle_TEST.ts", g_root);
    write_text(p, ts);
}

static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0]) cr_assert_eq(system(cmd), 0);
}

static void expect_usage(const char *const *args, const char *needle) {
    int rc = run(args);
    char *e = slurp(g_err);
    cr_assert_eq(rc, 2, "%s %s: exit %d, stderr: %s", args[0], args[1] ? args[1] : "", rc, e);
    cr_assert(strstr(e, "maelre-bench: "), "%s", e);
    if (needle) cr_assert(strstr(e, needle), "'%s' not in: %s", needle, e);
    free(e);
}

Test(cli, bad_arguments_exit_2, .init = setup, .fini = teardown) {
    need_bin();
    expect_usage((const char *[]){"run", NULL}, "--task");
    expect_usage((const char *[]){"run", "--task", g_task, "--bogus", NULL}, "--bogus");
    expect_usage((const char *[]){"run", "--task", g_task, "--steps", "0", NULL}, "--steps");
    expect_usage((const char *[]){"run", "--task", g_task, "--steps", "x5", NULL}, "--steps");
    expect_usage((const char *[]){"run", "--task", g_task, "--steps", "5", "--time-budget", "3", NULL}, "exclude");
    expect_usage((const char *[]){"run", "--task", g_task, "--method", "vanilla,flash", NULL}, "flash");
    expect_usage((const char *[]){"run", "--task", "lra-nosuch", NULL}, "lra-nosuch");
    expect_usage((const char *[]){"run", "--task", g_task, "--batch", NULL}, "--batch");
    expect_usage((const char *[]){"eval", "--task", g_task, NULL}, "--checkpoint");
    expect_usage((const char *[]){"list", "--bogus", NULL}, "--bogus");
    // --help is not an error
    cr_assert_eq(run((const char *[]){"run", "--help", NULL}), 0);
    char *o = slurp(g_out);
    cr_assert(strstr(o, "--time-budget"));
    free(o);
}

Test(cli, bad_config_names_file_and_field, .init = setup, .fini = teardown) {
    need_bin();
    char cfg[400], out[400];
    snprintf(cfg, sizeof cfg, "%s/bad.json", g_dir);
    snprintf(out, sizeof out, "%s/o", g_dir);
    write_text(cfg, "{\"model\": {\"dimm\": 32}}");
    expect_usage((const char *[]){"run", "--task", g_task, "--config", cfg, "--data-root", g_root, "--out", out, NULL},
                 "model.dimm");
    char *e = slurp(g_err);
    cr_assert(strstr(e, "bad.json"), "%s", e);
    free(e);
    write_text(cfg, "{\"optim\": {\"lr\": \"high\"}}");
    expect_usage((const char *[]){"run", "--task", g_task, "--config", cfg, "--data-root", g_root, "--out", out, NULL},
                 "optim.lr");
    cr_assert_neq(access(out, F_OK), 0, "no output folder for a refused run");
}

Test(cli, missing_data_exit_3_with_where_to_get_it, .init = setup, .fini = teardown) {
    need_bin();
    char empty[400], out[400];
    snprintf(empty, sizeof empty, "%s/empty", g_dir);
    snprintf(out, sizeof out, "%s/o", g_dir);
    cr_assert_eq(mkdir(empty, 0777), 0);
    int rc = run((const char *[]){"run", "--task", "lra-text", "--quick", "--data-root", empty, "--out", out, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    cr_assert(strstr(e, "aclImdb") && strstr(e, "empty/imdb"), "says where to download and where to put it: %s", e);
    free(e);
    cr_assert_neq(access(out, F_OK), 0, "no output folder when the data is missing");
    rc = run((const char *[]){"run", "--task", "ts-nosuch", "--data-root", empty, "--out", out, NULL});
    cr_assert_eq(rc, 3);
    e = slurp(g_err);
    cr_assert(strstr(e, "timeseriesclassification.com") && strstr(e, "ucr/nosuch"), "%s", e);
    free(e);
    rc = run((const char *[]){"eval", "--checkpoint", "/nonexistent.ckpt", "--task", g_task, "--data-root", empty, NULL});
    cr_assert(rc == 3 || rc == 4, "missing checkpoint: %d", rc);
}

// A checkpoint with one changed byte: eval refuses it with exit 3, naming the file (issue 13).
Test(cli, eval_refuses_a_corrupted_checkpoint, .init = setup, .fini = teardown) {
    need_bin();
    ModelConfig c;
    model_config_default(&c, METHOD_VANILLA, 257, 0, 64, 2);
    c.dim = 16; c.heads = 2; c.mlp = 32; c.blocks = 2;
    Model *m;
    char err[256], ck[400];
    cr_assert_eq(model_create(&m, &c, 1, err, sizeof err), MB_OK, "%s", err);
    snprintf(ck, sizeof ck, "%s/bad.ckpt", g_dir);
    cr_assert_eq(model_save(m, ck, err, sizeof err), MB_OK, "%s", err);
    model_destroy(m);
    int fd = open(ck, O_RDWR);
    cr_assert(fd >= 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, 1000), 1);
    b ^= 0x04;
    cr_assert_eq(pwrite(fd, &b, 1, 1000), 1);
    close(fd);
    int rc = run((const char *[]){"eval", "--checkpoint", ck, "--task", g_task, "--data-root", g_root, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 3, "exit %d: %s", rc, e);
    cr_assert(strstr(e, ck) && strstr(e, "checksum"), "%s", e);
    free(e);
}

static cJSON *read_json(const char *path) {
    char *s = slurp(path);
    cr_assert(s, "%s missing", path);
    cJSON *j = cJSON_Parse(s);
    free(s);
    cr_assert(j, "%s is not JSON", path);
    return j;
}

static double row_num(const cJSON *arr, const char *method, const char *col) {
    for (const cJSON *r = arr->child; r; r = r->next) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "method");
        if (m && !strcmp(m->valuestring, method)) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, col);
            cr_assert(cJSON_IsNumber(v), "%s.%s", method, col);
            return v->valuedouble;
        }
    }
    cr_assert_fail("no row for %s", method);
    return 0;
}

static size_t count(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

Test(cli, run_writes_tables_resumes_forces_and_eval_reproduces, .init = setup, .fini = teardown, .timeout = 120) {
    need_bin();
    char out[400], p[512];
    snprintf(out, sizeof out, "%s/runs/toy", g_dir);
    const char *args[] = {"run", "--task", g_task, "--quick", "--threads", "1", "--data-root", g_root, "--out", out, NULL};
    int rc = run(args);
    char *e = slurp(g_err), *o = slurp(g_out);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    for (int m = 0; m < METHOD_COUNT; m++) cr_assert(strstr(o, method_name((Method)m)), "summary lists %s:\n%s", method_name((Method)m), o);
    free(e); free(o);

    // CSV: SPEC §8 columns in order, one row per method.
    snprintf(p, sizeof p, "%s/results.csv", out);
    char *csv = slurp(p);
    cr_assert(csv);
    char header[2048] = "";
    for (size_t c = 0; c < RUN_N_COLUMNS; c++) {
        strcat(header, RUN_COLUMNS[c]);
        strcat(header, c + 1 < RUN_N_COLUMNS ? "," : "\n");
    }
    cr_assert(!strncmp(csv, header, strlen(header)), "header:\n%.*s", (int)strlen(header), csv);
    cr_assert_eq(count(csv, "\n"), 1 + METHOD_COUNT, "%s", csv);
    cr_assert(strstr(csv, "\ntoy,vanilla,1,1,") && strstr(csv, "\ntoy,maelre,1,1,"), "%s", csv);
    free(csv);
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *arr = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(arr), METHOD_COUNT);
    for (const cJSON *r = arr->child; r; r = r->next) {
        for (size_t c = 0; c < RUN_N_COLUMNS; c++)
            cr_assert(cJSON_GetObjectItemCaseSensitive(r, RUN_COLUMNS[c]), "json column %s", RUN_COLUMNS[c]);
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r, "config");
        cr_assert(cJSON_GetObjectItemCaseSensitive(cfg, "task") && cJSON_GetObjectItemCaseSensitive(cfg, "model"));
        cr_assert(cJSON_GetObjectItemCaseSensitive(r, "peak_rss_bytes")->valuedouble > 1e6, "rss from wait4");
        cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "steps")->valuedouble, 6);
        cr_assert_eq(cJSON_GetObjectItemCaseSensitive(r, "test_samples")->valuedouble, 30);
    }
    for (int m = 0; m < METHOD_COUNT; m++) {
        snprintf(p, sizeof p, "%s/%s-seed1.ckpt", out, method_name((Method)m));
        cr_assert_eq(access(p, R_OK), 0, "%s", p);
    }
    double acc = row_num(arr, "maelre", "accuracy");

    // eval on the same (quick) test subset prints the same accuracy.
    snprintf(p, sizeof p, "%s/maelre-seed1.ckpt", out);
    rc = run((const char *[]){"eval", "--checkpoint", p, "--task", g_task, "--quick", "--data-root", g_root, NULL});
    o = slurp(g_out);
    cr_assert_eq(rc, 0, "%s", o);
    char want[64];
    snprintf(want, sizeof want, "accuracy %.4f +- ", acc);
    cr_assert(strstr(o, want), "want '%s' in: %s", want, o);
    free(o);
    // ...and refuses it for a task with continuous input.
    rc = run((const char *[]){"eval", "--checkpoint", p, "--task", "ts-wiggle", "--data-root", g_root, NULL});
    e = slurp(g_err);
    cr_assert_eq(rc, 2, "%s", e);
    cr_assert(strstr(e, "does not fit"), "%s", e);
    free(e);

    // Resume: same settings -> everything skipped, rows untouched.
    snprintf(p, sizeof p, "%s/.tome-seed1.json", out);
    char *before = slurp(p);
    rc = run(args);
    e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    cr_assert_eq(count(e, "skipping"), METHOD_COUNT, "%s", e);
    char *after = slurp(p);
    cr_assert_str_eq(before, after);
    free(e); free(after);
    // --force reruns (only the named method here); the others stay.
    const char *fargs[] = {"run", "--task", g_task, "--quick", "--threads", "1", "--data-root", g_root,
                           "--out", out, "--method", "tome", "--force", NULL};
    rc = run(fargs);
    e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    cr_assert(!strstr(e, "skipping") && strstr(e, "toy/tome/seed1: accuracy"), "%s", e);
    free(e);
    after = slurp(p);
    cr_assert(strcmp(before, after), "tome's row was rewritten");
    free(before); free(after);
    cJSON_Delete(arr);
    snprintf(p, sizeof p, "%s/results.json", out);
    arr = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(arr), METHOD_COUNT, "results still hold every finished method");
    cJSON_Delete(arr);
    // Other settings in the same folder: refused, not mixed.
    const char *sargs[] = {"run", "--task", g_task, "--quick", "--steps", "7", "--threads", "1", "--data-root",
                           g_root, "--out", out, NULL};
    expect_usage(sargs, "steps");
}

Test(cli, ts_task_and_list, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    int rc = run((const char *[]){"list", "--data-root", g_root, NULL});
    char *o = slurp(g_out);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(o, "ts-wiggle") && strstr(o, "lra-listops") && strstr(o, "maelre"), "%s", o);
    free(o);
    char out[400];
    snprintf(out, sizeof out, "%s/w", g_dir);
    rc = run((const char *[]){"run", "--task", "ts-WIGGLE", "--steps", "2", "--batch", "2", "--threads", "1",
                              "--method", "maelre,vanilla", "--data-root", g_root, "--out", out, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    free(e);
    char p[512];
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *arr = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(arr), 2);
    cr_assert_eq(row_num(arr, "vanilla", "max_len"), 8, "max length = the series length");
    cJSON_Delete(arr);
}

// SIGTERM (a scheduler's time limit) is handled like Ctrl-C.
Test(cli, sigterm_keeps_finished_methods_and_saves_state, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char out[400], p[512];
    snprintf(out, sizeof out, "%s/int", g_dir);
    pid_t pid = spawn((const char *[]){"run", "--task", g_task, "--time-budget", "2", "--threads", "1",
                                       "--method", "vanilla,maelre", "--data-root", g_root, "--out", out, NULL});
    // Wait until maelre (the second method) has started training, then interrupt the parent.
    int seen = 0;
    for (int i = 0; i < 400 && !seen; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        char *e = slurp(g_err);
        seen = e && strstr(e, "toy/maelre/seed1: ") && strstr(e, "params;");
        free(e);
    }
    cr_assert(seen, "maelre never started");
    kill(pid, SIGTERM);
    int rc = wait_code(pid);
    char *e = slurp(g_err);
    cr_assert_eq(rc, 130, "%s", e);
    cr_assert(strstr(e, "interrupted"), "%s", e);
    free(e);
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *arr = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(arr), 1, "vanilla finished and is kept");
    row_num(arr, "vanilla", "accuracy");
    cJSON_Delete(arr);
    snprintf(p, sizeof p, "%s/maelre-seed1.ckpt", out);
    cr_assert_neq(access(p, F_OK), 0, "no checkpoint for the interrupted method");
    snprintf(p, sizeof p, "%s/.maelre-seed1.state", out);
    cr_assert_eq(access(p, F_OK), 0, "the interrupted method saved its state");
}

// ---------------------------------------------------------------- seeds, faults (SPEC §11)

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// /proc/<pid>/stat (proc files report size 0, so no slurp); NULL when the process is gone.
static char *proc_stat(const char *pid) {
    char p[300];
    snprintf(p, sizeof p, "/proc/%s/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    char *s = calloc(1, 4096);
    size_t n = fread(s, 1, 4095, f);
    s[n] = 0;
    fclose(f);
    return s;
}

// The pid of a child of `parent` (from /proc/<pid>/stat's ppid field), or 0.
static pid_t child_of(pid_t parent) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    pid_t found = 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char *s = proc_stat(e->d_name);
        const char *rp = s ? strrchr(s, ')') : NULL;
        int ppid = 0;
        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == (int)parent) found = (pid_t)atoi(e->d_name);
        free(s);
    }
    closedir(d);
    return found;
}

// Gone, or a zombie nobody reaped (a container's init may not reap).
static int gone(pid_t pid) {
    char p[64];
    snprintf(p, sizeof p, "%d", (int)pid);
    char *s = proc_stat(p);
    if (!s) return 1;
    const char *rp = strrchr(s, ')');
    int z = rp && (rp[2] == 'Z' || rp[2] == 'X');
    free(s);
    return z;
}

static int same_file(const char *a, const char *b) {
    char *x = slurp(a), *y = slurp(b);
    int same = x && y && !strcmp(x, y);   // text files (CSV); checkpoints are compared below
    free(x); free(y);
    return same;
}

static int same_bytes(const char *a, const char *b) {
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g;
    while (same) {
        int c = fgetc(f), d = fgetc(g);
        if (c != d) same = 0;
        if (c == EOF || d == EOF) break;
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

// The curves without the wall_s column (the only column a resumed run may differ in).
static char *curves_sans_wall(const char *path) {
    char *s = slurp(path);
    cr_assert(s, "%s", path);
    char *o = malloc(strlen(s) + 1), *w = o;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        int col = 0;
        for (size_t i = 0; i < len; i++) {
            if (line[i] == ',') col++;
            if (col == 2 && line[i] != ',') continue;   // drop wall_s's value
            *w++ = line[i];
        }
        line += len;
    }
    *w = 0;
    free(s);
    return o;
}

Test(cli, seeds_write_rows_curves_and_predictions, .init = setup, .fini = teardown, .timeout = 120) {
    need_bin();
    char out[400], p[512];
    snprintf(out, sizeof out, "%s/seeds", g_dir);
    int rc = run((const char *[]){"run", "--task", g_task, "--quick", "--threads", "1", "--method", "vanilla,maelre",
                                  "--seeds", "1,2", "--data-root", g_root, "--out", out, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    free(e);
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *arr = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(arr), 4);
    const char *want_cols[] = {"accuracy_last", "best_step", "val_accuracy", "majority_accuracy", "seed", "val_samples"};
    for (const cJSON *r = arr->child; r; r = r->next)
        for (size_t c = 0; c < sizeof want_cols / sizeof want_cols[0]; c++)
            cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, want_cols[c])), "%s", want_cols[c]);
    cJSON_Delete(arr);
    const char *ms[] = {"vanilla", "maelre"};
    for (int m = 0; m < 2; m++)
        for (int s = 1; s <= 2; s++) {
            snprintf(p, sizeof p, "%s/predictions/%s-seed%d.csv", out, ms[m], s);
            char *x = slurp(p);
            cr_assert(x, "%s", p);
            cr_assert(!strncmp(x, "index,label,pred_best,pred_last\n0,", 34), "%s", x);
            cr_assert_eq(count(x, "\n"), 31, "header + 30 test samples");
            free(x);
            snprintf(p, sizeof p, "%s/curves/%s-seed%d.csv", out, ms[m], s);
            x = slurp(p);
            cr_assert(x, "%s", p);
            cr_assert(!strncmp(x, "step,samples,wall_s,lr,train_loss,val_accuracy\n1,8,", 51), "%s", x);
            cr_assert_eq(count(x, "\n"), 7, "header + 6 steps");
            free(x);
            snprintf(p, sizeof p, "%s/%s-seed%d.ckpt", out, ms[m], s);
            cr_assert_eq(access(p, R_OK), 0, "%s", p);
        }
    // Seeds differ; another seed later joins the same results.
    snprintf(p, sizeof p, "%s/predictions/vanilla-seed1.csv", out);
    char q[512];
    snprintf(q, sizeof q, "%s/curves/vanilla-seed2.csv", out);
    snprintf(p, sizeof p, "%s/curves/vanilla-seed1.csv", out);
    cr_assert(!same_file(p, q), "seed 2 trained differently");
    rc = run((const char *[]){"run", "--task", g_task, "--quick", "--threads", "1", "--method", "vanilla",
                              "--seed", "3", "--data-root", g_root, "--out", out, NULL});
    cr_assert_eq(rc, 0);
    snprintf(p, sizeof p, "%s/results.csv", out);
    char *csv = slurp(p);
    cr_assert_eq(count(csv, "\n"), 1 + 5, "%s", csv);
    cr_assert(strstr(csv, "\ntoy,vanilla,3,"), "%s", csv);
    free(csv);
    expect_usage((const char *[]){"run", "--task", g_task, "--seeds", "1,x", NULL}, "--seeds");
    expect_usage((const char *[]){"run", "--task", g_task, "--seeds", "1", "--seed", "2", NULL}, "exclude");
}

// Killed with SIGKILL at a random moment after the first saved state, started again: the same
// bits as a run never killed (checkpoint, predictions, curves but for wall time, row numbers).
// The method process dies with the parent. A damaged state is refused with exit 3 naming it.
Test(cli, sigkill_and_resume_end_with_the_same_bits, .init = setup, .fini = teardown, .timeout = 240) {
    need_bin();
    char a[400], b[400], p[512], q[512], st[512];
    snprintf(a, sizeof a, "%s/whole", g_dir);
    snprintf(b, sizeof b, "%s/killed", g_dir);
    #define ARGS(o) (const char *[]){"run", "--task", g_task, "--steps", "2000", "--threads", "1", "--method", "tome", \
                                     "--eval-every", "100", "--checkpoint-every", "0.2", "--data-root", g_root, "--out", o, NULL}
    int rc = run(ARGS(a));
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    free(e);
    snprintf(st, sizeof st, "%s/.tome-seed1.state", b);
    uint64_t r = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    pid_t pid = spawn(ARGS(b));
    int saved = 0;
    for (int i = 0; i < 600 && !saved; i++) { sleep_ms(10); saved = access(st, F_OK) == 0; }
    cr_assert(saved, "no state saved");
    pid_t child = child_of(pid);
    cr_assert(child > 0, "no method process");
    long wait = (long)rng_below(&r, 400);
    sleep_ms(wait);
    kill(pid, SIGKILL);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    int dead = 0;
    for (int i = 0; i < 300 && !dead; i++) { dead = gone(child); if (!dead) sleep_ms(10); }
    cr_assert(dead, "the method process %d outlived its parent", (int)child);
    snprintf(p, sizeof p, "%s/.tome-seed1.json", b);
    cr_assert_neq(access(p, F_OK), 0, "killed after %ld ms but already finished: make the run longer", wait);

    // A damaged state: exit 3 naming the file, nothing evaluated.
    char *good = slurp(st);
    struct stat sb;
    cr_assert_eq(stat(st, &sb), 0);
    FILE *f = fopen(st, "r+b");
    long at = 24 + (long)rng_below(&r, (size_t)sb.st_size - 24);
    fseek(f, at, SEEK_SET);
    fputc(good[at] ^ 0x01, f);
    fclose(f);
    rc = run(ARGS(b));
    e = slurp(g_err);
    cr_assert_eq(rc, 3, "byte %ld flipped: exit %d: %s", at, rc, e);
    cr_assert(strstr(e, st), "names the file: %s", e);
    free(e);
    f = fopen(st, "wb");
    fwrite(good, 1, (size_t)sb.st_size, f);
    fclose(f);
    free(good);

    rc = run(ARGS(b));
    e = slurp(g_err);
    cr_assert_eq(rc, 0, "%s", e);
    cr_assert(strstr(e, "resuming from"), "%s", e);
    free(e);
    cr_assert_neq(access(st, F_OK), 0, "the state goes when the row is written");
    snprintf(p, sizeof p, "%s/tome-seed1.ckpt", a);
    snprintf(q, sizeof q, "%s/tome-seed1.ckpt", b);
    cr_assert(same_bytes(p, q), "checkpoints differ (killed after %ld ms)", wait);
    snprintf(p, sizeof p, "%s/predictions/tome-seed1.csv", a);
    snprintf(q, sizeof q, "%s/predictions/tome-seed1.csv", b);
    cr_assert(same_file(p, q), "predictions differ");
    snprintf(p, sizeof p, "%s/curves/tome-seed1.csv", a);
    snprintf(q, sizeof q, "%s/curves/tome-seed1.csv", b);
    char *ca = curves_sans_wall(p), *cb = curves_sans_wall(q);
    cr_assert_str_eq(ca, cb);
    free(ca); free(cb);
    snprintf(p, sizeof p, "%s/results.json", a);
    snprintf(q, sizeof q, "%s/results.json", b);
    cJSON *ja = read_json(p), *jb = read_json(q);
    const char *cols[] = {"accuracy", "accuracy_last", "best_step", "val_accuracy", "steps", "flops_train_per_sample",
                          "final_train_loss", "majority_accuracy"};
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
        cr_assert_eq(row_num(ja, "tome", cols[c]), row_num(jb, "tome", cols[c]), "%s", cols[c]);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    #undef ARGS
}
