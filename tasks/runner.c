// Many (method, seed) runs, one process each: fork, resume, collect the rows.
#include "tasks/runner.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/status.h"
#include "tasks/dist.h"

static int write_json_atomic(const char *path, const cJSON *j, char *err, size_t errlen) {
    char *s = cJSON_Print(j);
    if (!s) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory printing %s", path);
    size_t n = strlen(s);
    s[n] = '\n';   // cJSON_Print's buffer has room for the terminator we overwrite and rewrite
    int rc = write_file_atomic(path, s, n + 1, err, errlen);
    free(s);
    return rc;
}

static int read_row(cJSON **out, const char *path, char *err, size_t errlen) {
    int rc = json_read_file(out, path, err, errlen);
    if (rc == MB_ERR_USAGE) rc = MB_ERR_DATA;   // a damaged results file is bad data, not bad usage
    return rc;
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static void key_diff(const cJSON *a, const cJSON *b, char *buf, size_t n) {
    snprintf(buf, n, "settings");
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) return;
    for (const cJSON *c = a->child; c; c = c->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, c->string);
        if (!o || !cJSON_Compare(c, o, 1)) { snprintf(buf, n, "%s", c->string); return; }
    }
    for (const cJSON *c = b->child; c; c = c->next)
        if (!cJSON_GetObjectItemCaseSensitive(a, c->string)) { snprintf(buf, n, "%s", c->string); return; }
}

// Same settings apart from the seed?
static int same_but_seed(const cJSON *a, const cJSON *b) {
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    if (!x || !y) { cJSON_Delete(x); cJSON_Delete(y); return 0; }
    cJSON_DeleteItemFromObjectCaseSensitive(x, "seed");
    cJSON_DeleteItemFromObjectCaseSensitive(y, "seed");
    int same = cJSON_Compare(x, y, 1);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

typedef enum { P_ROW, P_STATE, P_CKPT, P_CURVES, P_PRED } PathKind;

static int run_path(char *buf, size_t n, const char *out, PathKind k, Method me, uint64_t seed) {
    const char *m = method_name(me);
    unsigned long long s = (unsigned long long)seed;
    int w = k == P_ROW ? snprintf(buf, n, "%s/.%s-seed%llu.json", out, m, s)
          : k == P_STATE ? snprintf(buf, n, "%s/.%s-seed%llu.state", out, m, s)
          : k == P_CKPT ? snprintf(buf, n, "%s/%s-seed%llu.ckpt", out, m, s)
          : k == P_CURVES ? snprintf(buf, n, "%s/curves/%s-seed%llu.csv", out, m, s)
          : snprintf(buf, n, "%s/predictions/%s-seed%llu.csv", out, m, s);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

// Child side of one (method, seed): train+eval, write the row, report a failure through the pipe.
static void child_main(const Task *t, const char *root, Method me, const RunSpec *rs, const char *out_dir, int fd) {
    char err[1024] = "", ckpt[PATH_MAX], rowp[PATH_MAX], state[PATH_MAX], curves[PATH_MAX], pred[PATH_MAX];
    run_path(ckpt, sizeof ckpt, out_dir, P_CKPT, me, rs->seed);
    run_path(rowp, sizeof rowp, out_dir, P_ROW, me, rs->seed);
    run_path(state, sizeof state, out_dir, P_STATE, me, rs->seed);
    run_path(curves, sizeof curves, out_dir, P_CURVES, me, rs->seed);
    run_path(pred, sizeof pred, out_dir, P_PRED, me, rs->seed);
    RunPaths paths = {ckpt, state, curves, pred};
    RunRow row;
    int rc = runner_train_eval(t, root, me, rs, &paths, &row, err, sizeof err);
    if (rc == MB_OK) {
        cJSON *j = run_row_to_json(&row, t, rs);
        rc = j ? write_json_atomic(rowp, j, err, sizeof err) : mb_fail(err, sizeof err, MB_ERR_NOMEM, "out of memory");
        cJSON_Delete(j);
        if (rc) unlink(ckpt);
        else unlink(state);   // finished: the row replaces the state
    }
    if (rc) {
        size_t n = strlen(err);
        ssize_t w = write(fd, err, n);
        (void)w;
    }
    close(fd);
    _exit(rc == MB_ERR_INTERRUPTED ? 130 : rc);
}

// One (method, seed) in this process, data-parallel over the MPI ranks (rs->data_parallel): no
// fork, so the training runs where MPI was initialised. Rank 0 writes the row; peak_rss_bytes is
// this process's high-water mark (runner_run runs only one (method, seed) this way).
static int run_here(const Task *t, const char *root, Method me, const RunSpec *rs, const char *out_dir,
                    const char *rowp, char *err, size_t errlen) {
    char ckpt[PATH_MAX], state[PATH_MAX], curves[PATH_MAX], pred[PATH_MAX];
    run_path(ckpt, sizeof ckpt, out_dir, P_CKPT, me, rs->seed);
    run_path(state, sizeof state, out_dir, P_STATE, me, rs->seed);
    run_path(curves, sizeof curves, out_dir, P_CURVES, me, rs->seed);
    run_path(pred, sizeof pred, out_dir, P_PRED, me, rs->seed);
    RunPaths paths = {ckpt, state, curves, pred};
    RunRow row;
    int rc = runner_train_eval(t, root, me, rs, &paths, &row, err, errlen);
    if (rc == MB_ERR_INTERRUPTED)
        return mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted during %s seed %llu; finished runs and the saved "
                       "state are kept in %s (run again to continue)", method_name(me), (unsigned long long)rs->seed,
                       out_dir);
    if (rc || dist_rank() != 0) return rc;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    row.peak_rss_bytes = (size_t)ru.ru_maxrss * 1024;
    cJSON *j = run_row_to_json(&row, t, rs);
    rc = j ? write_json_atomic(rowp, j, err, errlen) : mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    cJSON_Delete(j);
    if (rc) unlink(ckpt);
    else unlink(state);   // finished: the row replaces the state
    return rc;
}

static int mkdir_p(const char *dir, int *created, char *err, size_t errlen) {
    // Parents first; only the leaf is reported as created (removed again when nothing was written).
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p || !*p)
        return mb_fail(err, errlen, MB_ERR_USAGE, "bad output folder '%s'", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0777); *s = '/'; }
    if (mkdir(dir, 0777) == 0) { if (created) *created = 1; }
    else if (errno != EEXIST)
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return mb_fail(err, errlen, MB_ERR_IO, "%s: not a folder", dir);
    return MB_OK;
}

// One (method, seed) in a child process. MB_OK when its row is written.
static int run_one(const Task *t, const char *root, const RunSpec *rs, Method me, const char *out_dir,
                   const char *rowp, char *err, size_t errlen) {
    int fds[2];
    if (pipe(fds)) return mb_fail(err, errlen, MB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    if (rs->progress) fflush(rs->progress);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]); close(fds[1]);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        // Never outlive the parent: killed with it, also if it died before this line.
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(MB_ERR_INTERNAL);
        child_main(t, root, me, rs, out_dir, fds[1]);
    }
    close(fds[1]);
    int status = 0, forwarded = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    // Poll rather than block: a SIGINT/SIGTERM may be delivered to any thread of this process (an
    // idle OpenMP or OpenBLAS worker, say), and then no blocking wait4 returns EINTR to notice the
    // flag; the child would train on. Polling every 20 ms forwards it whatever thread caught it.
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) { status = -1; break; }
        if (rs->stop && *rs->stop && !forwarded) { kill(pid, SIGINT); forwarded = 1; }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char cerr[1024];
    ssize_t got = read(fds[0], cerr, sizeof cerr - 1);
    close(fds[0]);
    cerr[got > 0 ? got : 0] = 0;
    int code = status == -1 ? MB_ERR_INTERNAL
             : WIFEXITED(status) ? WEXITSTATUS(status)
             : WIFSIGNALED(status) && WTERMSIG(status) == SIGINT ? MB_ERR_INTERRUPTED
             : MB_ERR_INTERNAL;
    const char *label = method_name(me);
    if (code == MB_OK) {
        cJSON *row = NULL;
        int rc = read_row(&row, rowp, err, errlen);
        if (rc) return rc;
        cJSON *rss = cJSON_CreateNumber((double)ru.ru_maxrss * 1024.0);
        cJSON_ReplaceItemInObjectCaseSensitive(row, "peak_rss_bytes", rss);
        rc = write_json_atomic(rowp, row, err, errlen);
        cJSON_Delete(row);
        return rc;
    }
    if (code == MB_ERR_INTERRUPTED || (rs->stop && *rs->stop))
        return mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted during %s seed %llu; finished runs and the saved "
                       "state are kept in %s (run again to continue)", label, (unsigned long long)rs->seed, out_dir);
    if (cerr[0]) return mb_fail(err, errlen, code, "%s", cerr);
    if (WIFSIGNALED(status))
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "%s/%s: the worker process died (signal %d)%s", t->name, label,
                       WTERMSIG(status), WTERMSIG(status) == SIGKILL ? "; out of memory?" : "");
    return mb_fail(err, errlen, code ? code : MB_ERR_INTERNAL, "%s/%s: the worker process failed (exit %d)", t->name,
                   label, code);
}

// Parses ".<method>-seed<S>.json"; 0 on success.
static int parse_row_name(const char *name, Method *me, unsigned long long *seed) {
    if (name[0] != '.') return -1;
    const char *dash = strstr(name, "-seed");
    if (!dash) return -1;
    char m[32];
    size_t ml = (size_t)(dash - name - 1);
    if (ml == 0 || ml >= sizeof m) return -1;
    memcpy(m, name + 1, ml);
    m[ml] = 0;
    if (method_parse(m, me)) return -1;
    char *end;
    errno = 0;
    *seed = strtoull(dash + 5, &end, 10);
    if (errno || end == dash + 5 || strcmp(end, ".json")) return -1;
    return 0;
}

typedef struct { Method me; unsigned long long seed; char name[300]; } Found;
static int cmp_found(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->me != y->me) return x->me < y->me ? -1 : 1;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

// Every finished row in out_dir whose settings match `key` apart from the seed, in (method,
// seed) order.
static int collect(const char *out_dir, const cJSON *key, Table **out, char *err, size_t errlen) {
    *out = NULL;
    Table *tb = run_table_new();
    if (!tb) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    DIR *d = opendir(out_dir);
    if (!d) { table_free(tb); return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot list: %s", out_dir, strerror(errno)); }
    Found *f = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        Found x;
        if (parse_row_name(e->d_name, &x.me, &x.seed)) continue;
        snprintf(x.name, sizeof x.name, "%.290s", e->d_name);
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            Found *nf = realloc(f, cap * sizeof *nf);
            if (!nf) { free(f); closedir(d); table_free(tb); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
            f = nf;
        }
        f[n++] = x;
    }
    closedir(d);
    if (n) qsort(f, n, sizeof *f, cmp_found);
    char path[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, f[i].name);
        cJSON *row = NULL;
        char e2[512];
        if (read_row(&row, path, e2, sizeof e2)) continue;
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(row, "run_key");
        if (k && same_but_seed(k, key)) run_table_add(tb, row);
        cJSON_Delete(row);
    }
    free(f);
    *out = tb;
    return MB_OK;
}

int runner_run(const Task *t, const char *root, const RunSpec *rs0, const Method *methods,
               size_t n_methods, const uint64_t *seeds, size_t n_seeds, const char *out_dir, int force,
               Table **results, char *err, size_t errlen) {
    if (results) *results = NULL;
    if (!n_seeds) return mb_fail(err, errlen, MB_ERR_USAGE, "no seeds");
    if (rs0->data_parallel && n_methods * n_seeds != 1)
        return mb_fail(err, errlen, MB_ERR_USAGE, "data-parallel runs one method and one seed per call (in this "
                       "process, so peak_rss_bytes is that run's); start one per (method, seed)");
    const int writer = !rs0->data_parallel || dist_rank() == 0;   // data parallel: rank 0 writes
    int created = 0, rc;
    if ((rc = mkdir_p(out_dir, &created, err, errlen))) return rc;
    RunSpec rs = *rs0;
    cJSON *key = NULL;
    char path[PATH_MAX], sub[PATH_MAX];
    static const char *const subs[] = {"curves", "predictions"};

    // Settings check for finished rows first, so a mismatch fails before any work.
    for (size_t i = 0; i < n_methods && !force; i++)
        for (size_t s = 0; s < n_seeds; s++) {
            rs.seed = seeds[s];
            run_path(path, sizeof path, out_dir, P_ROW, methods[i], seeds[s]);
            if (!file_exists(path)) continue;
            cJSON *row = NULL, *k1 = run_key_json(t, &rs);
            if ((rc = read_row(&row, path, err, errlen))) { cJSON_Delete(k1); goto out; }
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(row, "run_key");
            if (!k || !cJSON_Compare(k, k1, 1)) {
                char d[64];
                key_diff(k, k1, d, sizeof d);
                cJSON_Delete(row);
                cJSON_Delete(k1);
                rc = mb_fail(err, errlen, MB_ERR_USAGE,
                             "%s: finished earlier with different settings (%s differs); use --force to rerun, or another --out",
                             path, d);
                goto out;
            }
            cJSON_Delete(row);
            cJSON_Delete(k1);
        }
    for (size_t i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", out_dir, subs[i]);
        if ((rc = mkdir_p(sub, NULL, err, errlen))) goto out;
    }

    for (size_t i = 0; i < n_methods && !rc; i++)
        for (size_t s = 0; s < n_seeds; s++) {
            Method me = methods[i];
            rs.seed = seeds[s];
            if (rs.stop && *rs.stop) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); break; }
            run_path(path, sizeof path, out_dir, P_ROW, me, rs.seed);
            if (rs.data_parallel) dist_barrier();   // every rank has seen the folder as it was
            if (file_exists(path)) {
                if (!force) {
                    if (rs.progress) fprintf(rs.progress, "%s/%s/seed%llu: finished earlier in %s, skipping (--force reruns)\n",
                                             t->name, method_name(me), (unsigned long long)rs.seed, out_dir);
                    continue;
                }
                if (writer) unlink(path);   // a forced rerun must not leave the old row behind if it fails
            }
            if (force && writer) {   // start over: no saved state
                run_path(sub, sizeof sub, out_dir, P_STATE, me, rs.seed);
                unlink(sub);
            }
            if (rs.data_parallel) {
                dist_barrier();   // rank 0 has removed what --force removes
                rc = run_here(t, root, me, &rs, out_dir, path, err, errlen);
            } else {
                rc = run_one(t, root, &rs, me, out_dir, path, err, errlen);
            }
            if (rc) break;
        }

    // Collect every finished row of these settings (any seed) and write the tables.
    if (!writer) return rc;
    rs.seed = seeds[0];
    key = run_key_json(t, &rs);
    if (!key) { if (!rc) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto out; }
    {
        Table *tb = NULL;
        char e2[512];
        int c = collect(out_dir, key, &tb, e2, sizeof e2);
        if (c) { if (!rc) { rc = c; snprintf(err, errlen, "%s", e2); } goto out; }
        if (table_rows(tb) > 0) {
            int w;
            snprintf(path, sizeof path, "%s/results.json", out_dir);
            w = table_write_json(tb, path, e2, sizeof e2);
            if (!w) {
                snprintf(path, sizeof path, "%s/results.csv", out_dir);
                w = table_write_csv(tb, path, e2, sizeof e2);
            }
            if (w && !rc) { rc = w; snprintf(err, errlen, "%s", e2); }
            if (results && (!rc || rc == MB_ERR_INTERRUPTED)) { *results = tb; tb = NULL; }
        }
        table_free(tb);
    }
out:
    cJSON_Delete(key);
    for (size_t i = 0; i < 2; i++) {   // only succeed when nothing was written
        snprintf(sub, sizeof sub, "%s/%s", out_dir, subs[i]);
        rmdir(sub);
    }
    if (created) rmdir(out_dir);
    return rc;
}
