// `maelre-bench sweep` end to end (MAELRE_BIN, set by `make test`) on tiny data written here (a
// two-class byte-text task and a tiny UCR series set): merged rows, grid columns and the report;
// the same rows under `mpirun --oversubscribe -n 2` as in one process; a sweep killed with
// SIGKILL (the process, and mpirun) and started again runs only what is missing and rewrites
// nothing finished; a job on bad data is recorded in failed/ while the others finish; a second
// sweep on a running folder is refused; usage errors; grid parsing and the cost estimate.
// The mpirun tests are skipped with a message when mpirun is not installed.
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
#include "core/status.h"
#include "tasks/sweep.h"
#include "tests/file_util.h"
#include "tests/mpi_util.h"

static char g_dir[256], g_out[320], g_err[320], g_root[320], g_toy[320], g_bad[320];
static const char *g_bin;

static void need_bin(void) { g_bin = test_cli_bin(); }

static const char *g_mpirun;

// The shared spawn/wait of tests/mpi_util.h with this file's binary and output files.
static pid_t spawn(int ranks, const char *const *args) {
    MpiCli c = {g_bin, g_mpirun, g_out, g_err, 0};
    return mpi_spawn(&c, ranks, args);
}
static int wait_code(pid_t pid) { return mpi_wait(pid); }
static int run(int ranks, const char *const *args) { return wait_code(spawn(ranks, args)); }
static int have_mpirun(void) {
    MpiCli c = {g_bin, NULL, g_out, g_err, 0};
    int ok = mpi_find_mpirun(&c);
    g_mpirun = c.mpirun;
    return ok;
}

static void write_ts(const char *path, int n) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "# toy\n@problemName Wiggle\n@timeStamps false\n@univariate true\n@classLabel true up down\n@data\n");
    for (int i = 0; i < n; i++) {
        int up = i % 2;
        for (int k = 0; k < 12; k++) fprintf(f, "%s%d", k ? "," : "", up ? k + i % 3 : 12 - k + i % 3);
        fprintf(f, ":%s\n", up ? "up" : "down");
    }
    fclose(f);
}

static void write_task(const char *path, const char *name, const char *data) {
    char buf[2048];
    snprintf(buf, sizeof buf,
        "{\"name\": \"%s\", \"modality\": \"text\", \"description\": \"two byte alphabets\",\n"
        " \"download\": \"written by tests/test_sweep.c\", \"classes\": 2,\n"
        " \"data\": {\"source\": \"imdb\", \"path\": \"%s\", \"max_len\": 64},\n"
        " \"model\": {\"dim\": 16, \"heads\": 2, \"mlp\": 32, \"blocks\": 2, \"linformer_k\": 16,\n"
        "           \"maelre_stages\": [{\"blocks\": 1, \"keep\": 0.25}, {\"blocks\": 1, \"keep\": 0.5}]},\n"
        " \"optim\": {\"lr\": 0.003},\n"
        " \"budgets\": {\"quick\": {\"steps\": 6, \"batch\": 8, \"train_limit\": 48, \"test_limit\": 30},\n"
        "             \"full\": {\"steps\": 30, \"batch\": 8}}}\n", name, data);
    spit(path, buf);
}

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/maelre-test-sweep-XXXXXX");
    cr_assert(mkdtemp(g_dir));
    snprintf(g_out, sizeof g_out, "%s/stdout", g_dir);
    snprintf(g_err, sizeof g_err, "%s/stderr", g_dir);
    snprintf(g_root, sizeof g_root, "%s/data", g_dir);
    char p[512];
    const char *dirs[] = {"", "/toy", "/bad", "/ucr", "/ucr/Wiggle"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s%s", g_root, dirs[i]);
        cr_assert_eq(mkdir(p, 0777), 0);
    }
    snprintf(p, sizeof p, "%s/toy/train.tsv", g_root);
    write_split(p, 96, 21);
    snprintf(p, sizeof p, "%s/toy/test.tsv", g_root);
    write_split(p, 40, 22);
    snprintf(p, sizeof p, "%s/bad/train.tsv", g_root);
    spit(p, "label\ttext\n0\tabcd\n1\tabwx\nseven\tabab\n");   // line 4: a label that is not a number
    snprintf(p, sizeof p, "%s/bad/test.tsv", g_root);
    write_split(p, 10, 23);
    snprintf(p, sizeof p, "%s/ucr/Wiggle/Wiggle_TRAIN.ts", g_root);
    write_ts(p, 16);
    snprintf(p, sizeof p, "%s/ucr/Wiggle/Wiggle_TEST.ts", g_root);
    write_ts(p, 10);
    snprintf(g_toy, sizeof g_toy, "%s/toy.json", g_dir);
    write_task(g_toy, "toy", "toy");
    snprintf(g_bad, sizeof g_bad, "%s/bad.json", g_dir);
    write_task(g_bad, "bad", "bad");
}

static void teardown(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0]) cr_assert_eq(system(cmd), 0);
}

static cJSON *read_json(const char *path) {
    char *t = slurp(path);
    cr_assert(t, "cannot read %s", path);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cr_assert(j, "%s: not JSON", path);
    return j;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsNumber(v), "no number '%s'", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert(cJSON_IsString(v), "no string '%s'", k);
    return v->valuestring;
}

static int file_there(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// mtime (ns) of <out>/jobs/<task>/<job>/<file>; 0 when missing.
static long long mtime_ns(const char *out, const char *task, const char *job, const char *file) {
    char p[1024];
    snprintf(p, sizeof p, "%s/jobs/%s/%s/%s", out, task, job, file);
    struct stat st;
    if (stat(p, &st)) return 0;
    return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

static const char *const TASKS4[2] = {"toy", "ts-wiggle"};
static const char *const METHODS4[2] = {"vanilla", "maelre"};

static size_t count_done(const char *out) {
    size_t n = 0;
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++)
            for (int s = 1; s <= 2; s++) {
                char job[64];
                snprintf(job, sizeof job, "%s-seed%d", METHODS4[m], s);
                n += mtime_ns(out, TASKS4[t], job, "results.json") != 0;
            }
    return n;
}

// The 2 tasks x 2 methods x 2 seeds sweep into <g_dir>/<name>.
static pid_t start_sweep4(int ranks, const char *name, const char *steps) {
    static char out[400], tasks[400];
    snprintf(out, sizeof out, "%s/%s", g_dir, name);
    snprintf(tasks, sizeof tasks, "%s,ts-wiggle", g_toy);
    return spawn(ranks, (const char *[]){"sweep", "--task", tasks, "--method", "vanilla,maelre", "--seeds", "1,2",
                                          "--steps", steps, "--threads", "1", "--eval-every", "4", "--data-root", g_root, "--out", out, NULL});
}

// Every (task, method, seed) row of two merged results.json: the same numbers that do not
// depend on timing.
static void same_rows(const char *a, const char *b) {
    cJSON *x = read_json(a), *y = read_json(b);
    cr_assert_eq(cJSON_GetArraySize(x), 8);
    cr_assert_eq(cJSON_GetArraySize(y), 8);
    const char *cols[] = {"accuracy", "accuracy_stderr", "flops_train_per_sample", "flops_infer_per_sample",
                          "final_train_loss", "params", "steps", "train_samples", "test_samples"};
    const cJSON *r;
    cJSON_ArrayForEach(r, x) {
        const cJSON *q = NULL, *c;
        cJSON_ArrayForEach(c, y) {
            if (!strcmp(str(c, "task"), str(r, "task")) && !strcmp(str(c, "method"), str(r, "method")) &&
                num(c, "seed") == num(r, "seed")) q = c;
        }
        cr_assert(q, "%s/%s seed %g missing in %s", str(r, "task"), str(r, "method"), num(r, "seed"), b);
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            cr_assert_eq(num(r, cols[k]), num(q, cols[k]), "%s/%s seed %g: %s %.17g vs %.17g", str(r, "task"),
                         str(r, "method"), num(r, "seed"), cols[k], num(r, cols[k]), num(q, cols[k]));
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
}

Test(sweep, one_process_merged_rows_and_report, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    int rc = wait_code(start_sweep4(0, "one", "8"));
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    cr_assert(strstr(e, "8 jobs"), "%s", e);
    free(e);
    char p[512];
    snprintf(p, sizeof p, "%s/one/results.csv", g_dir);
    char *csv = slurp(p);
    cr_assert(csv);
    size_t lines = 0;
    for (char *c = csv; *c; c++) lines += *c == '\n';
    cr_assert_eq(lines, 9, "header + 8 rows: %s", csv);
    cr_assert(strstr(csv, ",job,grid"), "%s", csv);
    free(csv);
    snprintf(p, sizeof p, "%s/one/report/report.md", g_dir);
    cr_assert(file_there(p), "no %s", p);
    // The job folder is a `run` folder: per-seed checkpoint, curves and predictions.
    snprintf(p, sizeof p, "%s/one/jobs/toy/maelre-seed2/maelre-seed2.ckpt", g_dir);
    cr_assert(file_there(p), "no %s", p);
    snprintf(p, sizeof p, "%s/one/jobs/toy/maelre-seed2/curves/maelre-seed2.csv", g_dir);
    cr_assert(file_there(p), "no %s", p);
    snprintf(p, sizeof p, "%s/one/jobs/toy/maelre-seed2/predictions/maelre-seed2.csv", g_dir);
    cr_assert(file_there(p), "no %s", p);
    // run flags given to the sweep reach every job's `run` (its log's first line is the command).
    snprintf(p, sizeof p, "%s/one/jobs/toy/maelre-seed2/run.log", g_dir);
    char *log = slurp(p);
    cr_assert(log && strstr(log, " --eval-every 4 "), "%s", log ? log : "(no run.log)");
    free(log);
    snprintf(p, sizeof p, "%s/one/failed", g_dir);
    cr_assert(!file_there(p), "nothing failed, yet %s exists", p);
    // Every row is the job's own `run` row: the job folder's results.json holds the same numbers.
    snprintf(p, sizeof p, "%s/one/results.json", g_dir);
    cJSON *all = read_json(p);
    const cJSON *r;
    cJSON_ArrayForEach(r, all) {
        char q[600];
        snprintf(q, sizeof q, "%s/one/jobs/%s/%s/results.json", g_dir, str(r, "task"), str(r, "job"));
        cJSON *own = read_json(q);
        cr_assert_eq(num(cJSON_GetArrayItem(own, 0), "accuracy"), num(r, "accuracy"));
        cr_assert_eq(num(cJSON_GetArrayItem(own, 0), "final_train_loss"), num(r, "final_train_loss"));
        cJSON_Delete(own);
    }
    cJSON_Delete(all);
}

Test(sweep, mpirun_two_ranks_same_rows_as_one_process, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    if (!have_mpirun()) cr_skip_test("mpirun not found (Debian openmpi-bin) or a `make MPI=0` binary: MPI sweep not tested");
    int rc = wait_code(start_sweep4(0, "one", "8"));
    cr_assert_eq(rc, 0);
    rc = wait_code(start_sweep4(2, "two", "8"));
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    cr_assert(strstr(e, "on 2 ranks"), "%s", e);
    cr_assert(strstr(e, "[rank 1] done"), "rank 1 ran no job: %s", e);
    cr_assert(strstr(e, "[rank 0] done"), "rank 0 ran no job: %s", e);
    free(e);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/one/results.json", g_dir);
    snprintf(b, sizeof b, "%s/two/results.json", g_dir);
    same_rows(a, b);
}

// True while a process's command line names `needle` (an orphaned job of a killed sweep).
static int process_with(const char *needle) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300], buf[4096];
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
        buf[n] = 0;
        found = strstr(buf, needle) != NULL;
    }
    closedir(d);
    return found;
}

static void kill_and_restart(int ranks) {
    char out[400];
    snprintf(out, sizeof out, "%s/k", g_dir);
    pid_t pid = start_sweep4(ranks, "k", "80");
    // Kill it once two jobs are finished.
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 6000 && count_done(out) < 2; i++) nanosleep(&ts, NULL);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    size_t done = count_done(out);
    cr_assert(done >= 2 && done < 8, "killed with %zu of 8 jobs done: not mid-way", done);
    // A job running at the kill may finish in the background: wait for it to go.
    for (int i = 0; i < 3000 && process_with(out); i++) nanosleep(&ts, NULL);
    cr_assert(!process_with(out), "processes of the killed sweep are still running after 15 s");
    long long before[2][2][2], logs[2][2][2];
    done = 0;
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++)
            for (int s = 0; s < 2; s++) {
                char job[64];
                snprintf(job, sizeof job, "%s-seed%d", METHODS4[m], s + 1);
                before[t][m][s] = mtime_ns(out, TASKS4[t], job, "results.json");
                logs[t][m][s] = mtime_ns(out, TASKS4[t], job, "run.log");
                done += before[t][m][s] != 0;
            }
    int rc = wait_code(start_sweep4(ranks, "k", "80"));
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "restart: exit %d: %s", rc, e);
    char want[64];
    snprintf(want, sizeof want, "%zu finished earlier, %zu to run", done, 8 - done);
    cr_assert(strstr(e, want), "'%s' not in: %s", want, e);
    free(e);
    cr_assert_eq(count_done(out), 8);
    for (int t = 0; t < 2; t++)
        for (int m = 0; m < 2; m++)
            for (int s = 0; s < 2; s++) {
                if (!before[t][m][s]) continue;
                char job[64];
                snprintf(job, sizeof job, "%s-seed%d", METHODS4[m], s + 1);
                cr_assert_eq(mtime_ns(out, TASKS4[t], job, "results.json"), before[t][m][s], "%s/%s rewritten", TASKS4[t], job);
                cr_assert_eq(mtime_ns(out, TASKS4[t], job, "run.log"), logs[t][m][s], "%s/%s rerun", TASKS4[t], job);
            }
    char p[512];
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *all = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(all), 8);
    cJSON_Delete(all);
}

Test(sweep, killed_process_restart_runs_only_missing, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    kill_and_restart(0);
}

Test(sweep, killed_mpirun_restart_runs_only_missing, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    if (!have_mpirun()) cr_skip_test("mpirun not found (Debian openmpi-bin) or a `make MPI=0` binary: MPI restart not tested");
    kill_and_restart(2);
}

Test(sweep, failed_job_recorded_others_finish, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char tasks[700], out[400], p[600];
    snprintf(tasks, sizeof tasks, "%s,%s", g_bad, g_toy);
    snprintf(out, sizeof out, "%s/f", g_dir);
    const char *args[] = {"sweep", "--task", tasks, "--method", "vanilla,maelre", "--steps", "4", "--threads", "1",
                          "--data-root", g_root, "--out", out, NULL};
    int rc = run(0, args);
    char *e = slurp(g_err);
    cr_assert_eq(rc, 3, "bad data: exit %d: %s", rc, e);
    cr_assert(strstr(e, "2 jobs failed"), "%s", e);
    free(e);
    for (int m = 0; m < 2; m++) {
        snprintf(p, sizeof p, "%s/failed/bad-%s-seed1.json", out, METHODS4[m]);
        cJSON *f = read_json(p);
        cr_assert_eq(num(f, "exit_status"), 3);
        cr_assert(strstr(str(f, "error"), "train.tsv"), "error: %s", str(f, "error"));
        cr_assert(strstr(str(f, "error"), ":4"), "the line is named: %s", str(f, "error"));
        cJSON_Delete(f);
        char job[64];
        snprintf(job, sizeof job, "%s-seed1", METHODS4[m]);
        cr_assert(mtime_ns(out, "toy", job, "results.json"), "toy/%s did not finish", job);
    }
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *all = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(all), 2, "only the toy rows are merged");
    cJSON_Delete(all);
    long long t0 = mtime_ns(out, "toy", "vanilla-seed1", "results.json");
    // Fixed data: the failed jobs run, the records go, the finished ones are not rerun.
    snprintf(p, sizeof p, "%s/bad/train.tsv", g_root);
    write_split(p, 40, 24);
    rc = run(0, args);
    e = slurp(g_err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    cr_assert(strstr(e, "2 finished earlier, 2 to run"), "%s", e);
    free(e);
    snprintf(p, sizeof p, "%s/failed/bad-vanilla-seed1.json", out);
    cr_assert(!file_there(p), "%s kept after the job succeeded", p);
    cr_assert_eq(mtime_ns(out, "toy", "vanilla-seed1", "results.json"), t0);
}

Test(sweep, grid_points_are_jobs_with_columns, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char out[400], p[600];
    snprintf(out, sizeof out, "%s/g", g_dir);
    int rc = run(0, (const char *[]){"sweep", "--task", g_toy, "--method", "maelre,vanilla", "--steps", "3",
                                     "--grid", "model.dim=8,16", "--grid", "maelre.keep=0.5", "--threads", "1",
                                     "--data-root", g_root, "--out", out, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, e);
    cr_assert(strstr(e, "4 jobs"), "%s", e);
    free(e);
    snprintf(p, sizeof p, "%s/jobs/toy/maelre-seed1-model.dim=16-maelre.keep=0.5/grid-config.json", out);
    cJSON *cfg = read_json(p);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(cfg, "model");
    cr_assert_eq(num(model, "dim"), 16);
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(model, "maelre_keep_auto")));
    const cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(model, "maelre_stages")) cr_assert_eq(num(st, "keep"), 0.5);
    cJSON_Delete(cfg);
    snprintf(p, sizeof p, "%s/results.json", out);
    cJSON *all = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(all), 4);
    const cJSON *r;
    int dims[2] = {0, 0};
    cJSON_ArrayForEach(r, all) {
        double d = num(r, "model.dim");
        cr_assert(d == 8 || d == 16);
        dims[d == 16]++;
        cr_assert_eq(num(r, "maelre.keep"), 0.5);
        // the value really reached the model: its parameter count grows with the width
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "config"), "model");
        cr_assert_eq(num(c, "dim"), d);
    }
    cr_assert_eq(dims[0], 2);
    cr_assert_eq(dims[1], 2);
    cJSON_Delete(all);
    // The report keeps every grid point (no two rows merged as the same run).
    snprintf(p, sizeof p, "%s/report/results.json", out);
    all = read_json(p);
    cr_assert_eq(cJSON_GetArraySize(all), 4);
    cJSON_Delete(all);
    // report.md: a table row per (method, grid point), and maelre paired with vanilla at the
    // same grid point (one comparison per point, never across points).
    snprintf(p, sizeof p, "%s/report/report.md", out);
    char *md = slurp(p);
    cr_assert(md, "no %s", p);
    const char *pts[2] = {"| maelre (model.dim=8-maelre.keep=0.5) |", "| maelre (model.dim=16-maelre.keep=0.5) |"};
    for (int k = 0; k < 2; k++) {
        size_t hits = 0;
        for (const char *q = md; (q = strstr(q, pts[k])); q++) hits++;
        cr_assert_eq(hits, 3, "'%s' %zu times (accuracy table, seeds table, paired comparison): %s", pts[k], hits, md);
    }
    free(md);
    // Learning curves (when gnuplot made the plots): one line per grid point, named by it.
    snprintf(p, sizeof p, "%s/report/plots/loss_vs_step_toy.dat", out);
    char *dat = slurp(p);
    if (dat) {
        cr_assert(strstr(dat, "# maelre (model.dim=8-maelre.keep=0.5) seed 1\n"), "%s", dat);
        cr_assert(strstr(dat, "# maelre (model.dim=16-maelre.keep=0.5) seed 1\n"), "%s", dat);
        free(dat);
    }
}

Test(sweep, second_sweep_on_a_running_folder_is_refused, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char out[400], lock[500];
    snprintf(out, sizeof out, "%s/k", g_dir);
    snprintf(lock, sizeof lock, "%s/k/sweep.lock", g_dir);
    char jobs[500];
    snprintf(jobs, sizeof jobs, "%s/jobs/", out);
    pid_t first = start_sweep4(0, "k", "60");
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 4000 && !process_with(jobs); i++) nanosleep(&ts, NULL);   // a job runs
    cr_assert(process_with(jobs), "no job of the first sweep started");
    cr_assert(file_there(lock));
    char tasks[400];
    snprintf(tasks, sizeof tasks, "%s,ts-wiggle", g_toy);
    int rc = run(0, (const char *[]){"sweep", "--task", tasks, "--method", "vanilla,maelre", "--seeds", "1,2", "--steps",
                                     "60", "--threads", "1", "--data-root", g_root, "--out", out, NULL});
    char *e = slurp(g_err);
    cr_assert_eq(rc, 2, "second sweep: exit %d: %s", rc, e);
    cr_assert(strstr(e, "another sweep is running"), "%s", e);
    free(e);
    cr_assert_eq(kill(first, SIGINT), 0);
    int st;
    cr_assert_eq(waitpid(first, &st, 0), first);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "SIGINT: status %d", st);
}

// --dry-run: every job in start order, longest expected first (vanilla's quadratic attention at
// 64 tokens before MAELRE's merged sequence), nothing written.
Test(sweep, dry_run_lists_longest_first, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char out[400];
    snprintf(out, sizeof out, "%s/d", g_dir);
    int rc = run(0, (const char *[]){"sweep", "--task", g_toy, "--method", "maelre,vanilla", "--seeds", "1,2", "--steps",
                                     "5", "--data-root", g_root, "--out", out, "--dry-run", NULL});
    cr_assert_eq(rc, 0);
    char *o = slurp(g_out);
    cr_assert(strstr(o, "4 jobs"), "%s", o);
    const char *v1 = strstr(o, "toy/vanilla-seed1"), *v2 = strstr(o, "toy/vanilla-seed2");
    const char *m1 = strstr(o, "toy/maelre-seed1"), *m2 = strstr(o, "toy/maelre-seed2");
    cr_assert(v1 && v2 && m1 && m2, "%s", o);
    cr_assert(v1 < v2 && v2 < m1 && m1 < m2, "not longest first, then job order: %s", o);
    free(o);
    cr_assert(!file_there(out), "--dry-run created %s", out);
}

Test(sweep, usage_errors_exit_2, .init = setup, .fini = teardown, .timeout = 60) {
    need_bin();
    char out[400];
    snprintf(out, sizeof out, "%s/u", g_dir);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, NULL}), 2);
    char *e = slurp(g_err);
    cr_assert(strstr(e, "--out"), "%s", e);
    free(e);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--grid", "model.nosuch=1", "--out", out, NULL}), 2);
    e = slurp(g_err);
    cr_assert(strstr(e, "model.nosuch"), "%s", e);
    free(e);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--grid", "model.dim", "--out", out, NULL}), 2);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--seeds", "1,x", "--out", out, NULL}), 2);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--method", "nosuch", "--out", out, NULL}), 2);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--steps", "3", "--time-budget", "1", "--out", out, NULL}), 2);
    cr_assert(!file_there(out), "a refused sweep created %s", out);
    // Other settings in the same folder are refused before anything runs.
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--method", "vanilla", "--steps", "2", "--threads", "1",
                                         "--data-root", g_root, "--out", out, NULL}), 0);
    cr_assert_eq(run(0, (const char *[]){"sweep", "--task", g_toy, "--method", "vanilla", "--steps", "3", "--threads", "1",
                                         "--data-root", g_root, "--out", out, NULL}), 2);
    e = slurp(g_err);
    cr_assert(strstr(e, "steps differs"), "%s", e);
    free(e);
}

// ---------------------------------------------------------------- the library parts

Test(sweep_lib, grid_axis_parse) {
    char err[256];
    SweepAxis a;
    cr_assert_eq(sweep_axis_parse(&a, "model.dim=32,64", err, sizeof err), MB_OK, "%s", err);
    cr_assert_str_eq(a.key, "model.dim");
    cr_assert_eq(a.n, 2);
    cr_assert_str_eq(a.values[0], "32");
    cr_assert_str_eq(a.values[1], "64");
    sweep_axis_free(&a);
    const char *bad[] = {"model.dim", "=1", "model.dim=", "model.dim=1,1", "model dim=1", "optim.lr=,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sweep_axis_parse(&a, bad[i], err, sizeof err), MB_ERR_USAGE, "'%s' accepted", bad[i]);
}

// The ordering key: the hand formula for vanilla, and the methods' order at a long length.
Test(sweep_lib, job_cost_estimate) {
    Task t;
    task_defaults(&t);
    t.classes = 2;
    // vanilla, D 64, M 128, 4 blocks, N 1000: per block N(8D^2 + 4DM) + 4N^2 D FLOPs forward;
    // 10 steps x batch 2 trained (x3 for forward + backward), 5 test samples.
    double per_block = 1000.0 * (8 * 64 * 64 + 4 * 64 * 128) + 4 * 1000.0 * 1000 * 64;
    double f = 4 * per_block;
    cr_assert_float_eq(sweep_job_cost(&t, METHOD_VANILLA, 10, 2, 5, 1000), 3 * f * 20 + 5 * f, 1e-3 * f);
    double v = sweep_job_cost(&t, METHOD_VANILLA, 100, 8, 100, 4096);
    double l = sweep_job_cost(&t, METHOD_LINFORMER, 100, 8, 100, 4096);
    double to = sweep_job_cost(&t, METHOD_TOME, 100, 8, 100, 4096);
    double m = sweep_job_cost(&t, METHOD_MAELRE, 100, 8, 100, 4096);
    cr_assert(v > to && to > m && v > l && l > m, "vanilla %g tome %g linformer %g maelre %g", v, to, l, m);
    cr_assert_eq(sweep_job_cost(&t, METHOD_VANILLA, 100, 8, 100, 0), 0, "unknown length: 0");
    task_free(&t);
}
