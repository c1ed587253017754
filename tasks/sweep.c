// Sweeps over tasks x methods x seeds (x grid points), one `run` process per job, spread over MPI
// ranks (tasks/sweep.h for the promises).
#include "tasks/sweep.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "core/status.h"
#include "results/table.h"
#include "tasks/dist.h"
#include "tasks/runner.h"

enum { TAG_REQ = 71, TAG_JOB = 72 };

typedef struct {
    size_t task;              // index into the spec's tasks
    Method method;
    uint64_t seed;
    size_t point;             // grid point index (0 when no grid)
    char name[256];           // <method>-seed<S>[-<grid label>]
    char dir[PATH_MAX];       // DIR/jobs/<task>/<name>
    char failed[PATH_MAX];    // DIR/failed/<task>-<name>.json
    double cost;
    int code;                 // -1 not run here, else the exit status (128 + signal when killed)
} Job;

typedef struct {
    const SweepSpec *s;
    Task *tasks;              // loaded with --config (the plain task, no grid)
    size_t n_points;          // product of the axis sizes (1 without grid)
    cJSON **point_over;       // per grid point: the override object (NULL without grid)
    char (*point_label)[256]; // "model.dim=32-optim.lr=0.001"
    cJSON *config;            // the --config JSON (NULL = none)
    Job *jobs;
    size_t n_jobs;
    int threads;              // per job
    char exe[PATH_MAX];
    int lock_fd;              // DIR/sweep.lock on rank 0 (-1: none)
} Sweep;

// ---------------------------------------------------------------- small helpers

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int mkdir_p(const char *dir, char *err, size_t errlen) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p || !*p)
        return mb_fail(err, errlen, MB_ERR_USAGE, "bad folder name '%s'", dir);
    for (char *q = p + 1;; q++) {
        int end = *q == 0;
        if (*q == '/' || end) {
            *q = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create: %s", p, strerror(errno));
            if (end) break;
            *q = '/';
        }
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return mb_fail(err, errlen, MB_ERR_IO, "%s: not a folder", dir);
    return MB_OK;
}

static int write_json(const char *path, const cJSON *j, char *err, size_t errlen) {
    char *txt = cJSON_Print(j);
    if (!txt) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory writing %s", path);
    size_t n = strlen(txt);
    int rc = write_file_atomic(path, txt, n, err, errlen);
    cJSON_free(txt);
    return rc;
}

// "1", "0.25", "true" -> JSON number/bool; anything else a string.
static cJSON *parse_value(const char *v) {
    if (!strcmp(v, "true")) return cJSON_CreateTrue();
    if (!strcmp(v, "false")) return cJSON_CreateFalse();
    char *e;
    errno = 0;
    double d = strtod(v, &e);
    if (*v && !*e && !errno && isfinite(d)) return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

// ---------------------------------------------------------------- grid

int sweep_axis_parse(SweepAxis *a, const char *arg, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return mb_fail(err, errlen, MB_ERR_USAGE, "--grid '%s': expected key=v1,v2,... (e.g. model.dim=32,64)", arg);
    size_t kl = (size_t)(eq - arg);
    if (kl >= sizeof a->key) return mb_fail(err, errlen, MB_ERR_USAGE, "--grid '%s': key too long", arg);
    memcpy(a->key, arg, kl);
    a->key[kl] = 0;
    for (const char *k = a->key; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '.'))
            return mb_fail(err, errlen, MB_ERR_USAGE, "--grid '%s': a key is field names joined by '.'", arg);
    char *vals = strdup(eq + 1);
    if (!vals) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    size_t cap = 1;
    for (const char *c = vals; *c; c++) cap += *c == ',';
    a->values = calloc(cap, sizeof *a->values);
    if (!a->values) { free(vals); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
    int rc = MB_OK;
    char *save = NULL;
    for (char *tok = strtok_r(vals, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strlen(tok) > 64) { rc = mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: value '%.64s...' too long", a->key, tok); break; }
        for (size_t i = 0; i < a->n; i++)
            if (!strcmp(a->values[i], tok)) { rc = mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: value '%s' twice", a->key, tok); break; }
        if (rc) break;
        if (!(a->values[a->n] = strdup(tok))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
        a->n++;
    }
    free(vals);
    if (!rc && !a->n) rc = mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: no values", a->key);
    if (rc) sweep_axis_free(a);
    return rc;
}

void sweep_axis_free(SweepAxis *a) {
    for (size_t i = 0; a->values && i < a->n; i++) free(a->values[i]);
    free(a->values);
    a->values = NULL;
    a->n = 0;
}

// Sets the field at segs[0..n) in `over` (an object), reading arrays' current contents from
// `base` (the task JSON at the same level): json_merge replaces arrays whole, so an array on the
// path is copied from base and the rest of the path is set in every element.
static int set_path(cJSON *over, const cJSON *base, char **segs, size_t n, const cJSON *val) {
    const cJSON *bchild = cJSON_IsObject(base) ? cJSON_GetObjectItemCaseSensitive(base, segs[0]) : NULL;
    cJSON *mine = cJSON_GetObjectItemCaseSensitive(over, segs[0]);
    if (n == 1) {
        cJSON *v = cJSON_Duplicate(val, 1);
        if (!v) return -1;
        if (mine) cJSON_ReplaceItemInObjectCaseSensitive(over, segs[0], v);
        else cJSON_AddItemToObject(over, segs[0], v);
        return 0;
    }
    if (cJSON_IsArray(bchild) || cJSON_IsArray(mine)) {
        if (!mine) {
            if (!(mine = cJSON_Duplicate(bchild, 1))) return -1;
            cJSON_AddItemToObject(over, segs[0], mine);
        }
        for (cJSON *e = mine->child; e; e = e->next) {
            if (!cJSON_IsObject(e)) return -2;
            if (set_path(e, e, segs + 1, n - 1, val)) return -1;
        }
        return 0;
    }
    if (!mine) {
        if (!(mine = cJSON_CreateObject())) return -1;
        cJSON_AddItemToObject(over, segs[0], mine);
    } else if (!cJSON_IsObject(mine)) {
        return -2;
    }
    return set_path(mine, bchild, segs + 1, n - 1, val);
}

// Adds key=value to the override. "maelre.keep" is shorthand for every stage's keep with the
// per-dataset keep rule off (model.maelre_stages.keep + model.maelre_keep_auto=false).
static int add_override(cJSON *over, const cJSON *task_json, const char *key, const char *value,
                        char *err, size_t errlen) {
    char path[160];
    int keep_alias = !strcmp(key, "maelre.keep");
    snprintf(path, sizeof path, "%s", keep_alias ? "model.maelre_stages.keep" : key);
    char *segs[16];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(path, ".", &save); t && n < 16; t = strtok_r(NULL, ".", &save)) segs[n++] = t;
    if (!n) return mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: empty key", key);
    cJSON *v = parse_value(value);
    if (!v) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int r = set_path(over, task_json, segs, n, v);
    cJSON_Delete(v);
    if (!r && keep_alias) {
        cJSON *f = cJSON_CreateFalse();
        char p2[] = "model.maelre_keep_auto";
        char *s2[2] = {p2, p2 + 6};
        p2[5] = 0;
        r = f ? set_path(over, task_json, s2, 2, f) : -1;
        cJSON_Delete(f);
    }
    if (r == -1) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    if (r) return mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: the path goes through a field that is not an object", key);
    return MB_OK;
}

static void label_append(char *buf, size_t n, const char *key, const char *value) {
    size_t l = strlen(buf);
    snprintf(buf + l, n - l, "%s%s=%s", l ? "-" : "", key, value);
    for (char *p = buf + l; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '=' || *p == '+' || *p == '-')) *p = '_';
}

// Value index of axis a for grid point p (the last axis varies fastest).
static size_t axis_value(const SweepSpec *s, size_t p, size_t a) {
    for (size_t b = s->n_grid; b-- > a + 1;) p /= s->grid[b].n;
    return p % s->grid[a].n;
}

// ---------------------------------------------------------------- cost estimate

// Forward FLOPs of one sample of n tokens (the dense parts and attention; embeddings, norms and
// the head are small beside them).
static double fwd_flops(const ModelConfig *c, double n) {
    double D = (double)c->dim, M = (double)c->mlp, f = 0;
    double dense_per_tok = 8 * D * D + 4 * D * M;
    switch (c->method) {
    case METHOD_VANILLA:
        for (size_t b = 0; b < c->blocks; b++) f += n * dense_per_tok + 4 * n * n * D;
        break;
    case METHOD_LINFORMER: {
        double k = fmin((double)c->linformer_k, n);
        for (size_t b = 0; b < c->blocks; b++) f += n * dense_per_tok + 8 * n * k * D;
        break;
    }
    case METHOD_TOME:
        for (size_t b = 0; b < c->blocks; b++) {
            f += n * dense_per_tok + 4 * n * n * D + n * n * D / 2;
            n -= floor((double)c->tome_r_frac * n);
        }
        break;
    default: {
        double thr = c->switch_threshold ? (double)c->switch_threshold : D;
        for (size_t st = 0; st < c->n_stages; st++) {
            for (size_t b = 0; b < c->stages[st].blocks; b++)
                f += n * dense_per_tok + (n > thr ? 4 * n * D * D : 4 * n * n * D);
            n = fmax(1.0, ceil(n * (double)c->stages[st].keep));
        }
        break;
    }
    }
    return f;
}

double sweep_job_cost(const Task *t, Method m, size_t steps, size_t batch, size_t test_limit,
                      size_t seq_len) {
    if (!seq_len) return 0;
    ModelConfig c = task_model_config(t, m, 16, 0, seq_len, t->classes ? t->classes : 2);
    double f = fwd_flops(&c, (double)seq_len);
    return 3 * f * (double)steps * (double)batch + f * (double)(test_limit ? test_limit : 1000);
}

// The task's sequence length: data.max_len, else a guess from the train file (bytes per line / 8,
// e.g. UCR series) read from its first MiB; 0 when there is nothing to read.
static size_t guess_len(const Task *t, const char *root) {
    if (t->data.max_len) return t->data.max_len;
    char dir[PATH_MAX + 600], path[PATH_MAX + 900] = "";
    task_data_path(t, root, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char up[256];
        snprintf(up, sizeof up, "%s", e->d_name);
        for (char *p = up; *p; p++) *p = (char)toupper((unsigned char)*p);
        if (strstr(up, "TRAIN")) { snprintf(path, sizeof path, "%s/%s", dir, e->d_name); break; }
    }
    closedir(d);
    FILE *f = path[0] ? fopen(path, "rb") : NULL;
    if (!f) return 0;
    size_t bytes = 0, lines = 0;
    char buf[65536];
    size_t got;
    while (bytes < ((size_t)1 << 20) && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++) lines += buf[i] == '\n';
        bytes += got;
    }
    fclose(f);
    size_t per = bytes / (lines ? lines : 1) / 8;
    return per ? per : 1;
}

// ---------------------------------------------------------------- planning (every rank)

static void sweep_free(Sweep *w) {
    for (size_t i = 0; w->tasks && i < w->s->n_tasks; i++) task_free(&w->tasks[i]);
    free(w->tasks);
    for (size_t p = 0; w->point_over && p < w->n_points; p++) cJSON_Delete(w->point_over[p]);
    free(w->point_over);
    free(w->point_label);
    cJSON_Delete(w->config);
    free(w->jobs);
    if (w->lock_fd >= 0) close(w->lock_fd);   // releases the lock
    w->lock_fd = -1;
}

static int cmp_cost(const void *a, const void *b) {
    const Job *x = *(Job *const *)a, *y = *(Job *const *)b;
    if (x->cost != y->cost) return x->cost > y->cost ? -1 : 1;
    return x < y ? -1 : x > y;   // stable: job order
}

static int default_threads(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    long t = online / dist_local_size();
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        long aff = CPU_COUNT(&set);
        if (aff >= 1 && t > aff) t = aff;   // a launcher bound this rank to fewer cores
    }
    return t < 1 ? 1 : (int)t;
}

static int plan(Sweep *w, char *err, size_t errlen) {
    const SweepSpec *s = w->s;
    int rc;
    if (s->config && (rc = json_read_file(&w->config, s->config, err, errlen))) return rc;
    if (!(w->tasks = calloc(s->n_tasks, sizeof *w->tasks))) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_tasks; i++) {
        if ((rc = task_load(&w->tasks[i], s->tasks[i], s->config, s->data_root, err, errlen))) return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(w->tasks[j].name, w->tasks[i].name))
                return mb_fail(err, errlen, MB_ERR_USAGE, "--task: '%s' is named twice", w->tasks[i].name);
    }
    w->n_points = 1;
    for (size_t a = 0; a < s->n_grid; a++) {
        if (w->n_points > 100000 / s->grid[a].n) return mb_fail(err, errlen, MB_ERR_USAGE, "--grid: more than 100000 points");
        w->n_points *= s->grid[a].n;
        for (size_t b = 0; b < a; b++)
            if (!strcmp(s->grid[a].key, s->grid[b].key))
                return mb_fail(err, errlen, MB_ERR_USAGE, "--grid %s: the key is given twice", s->grid[a].key);
    }
    // Per task and grid point: the override, checked by applying it to the task.
    w->point_over = calloc(w->n_points * s->n_tasks, sizeof *w->point_over);
    w->point_label = calloc(w->n_points, sizeof *w->point_label);
    if (!w->point_over || !w->point_label) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t p = 0; p < w->n_points; p++) {
        for (size_t a = 0; a < s->n_grid; a++)
            label_append(w->point_label[p], sizeof w->point_label[p], s->grid[a].key,
                         s->grid[a].values[axis_value(s, p, a)]);
    }
    if (s->n_grid) {
        for (size_t ti = 0; ti < s->n_tasks; ti++) {
            for (size_t p = 0; p < w->n_points; p++) {
                cJSON *over = cJSON_CreateObject();
                if (!over) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
                w->point_over[ti * w->n_points + p] = over;
                for (size_t a = 0; a < s->n_grid; a++)
                    if ((rc = add_override(over, w->tasks[ti].json, s->grid[a].key,
                                           s->grid[a].values[axis_value(s, p, a)], err, errlen))) return rc;
                Task t;
                char what[400];
                snprintf(what, sizeof what, "--grid %s", w->point_label[p]);
                rc = task_load(&t, s->tasks[ti], s->config, s->data_root, err, errlen);
                if (!rc) rc = task_apply_json(&t, over, what, err, errlen);
                if (!rc) {
                    snprintf(t.file, sizeof t.file, "%s", what);
                    rc = task_validate(&t, err, errlen);
                }
                task_free(&t);
                if (rc) return rc;
            }
        }
    }
    w->n_jobs = s->n_tasks * s->n_methods * s->n_seeds * w->n_points;
    if (!(w->jobs = calloc(w->n_jobs ? w->n_jobs : 1, sizeof *w->jobs))) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t ti = 0; ti < s->n_tasks; ti++) {
        const Task *t = &w->tasks[ti];
        const Budget *b = s->quick ? &t->quick : &t->full;
        size_t len = guess_len(t, s->data_root);
        for (size_t mi = 0; mi < s->n_methods; mi++)
            for (size_t p = 0; p < w->n_points; p++)
                for (size_t si = 0; si < s->n_seeds; si++) {
                    Job *j = &w->jobs[k++];
                    j->task = ti;
                    j->method = s->methods[mi];
                    j->seed = s->seeds[si];
                    j->point = p;
                    j->code = -1;
                    snprintf(j->name, sizeof j->name, "%s-seed%llu%s%s", method_name(j->method),
                             (unsigned long long)j->seed, s->n_grid ? "-" : "", w->point_label[p]);
                    snprintf(j->dir, sizeof j->dir, "%s/jobs/%s/%s", s->out, t->name, j->name);
                    snprintf(j->failed, sizeof j->failed, "%s/failed/%s-%s.json", s->out, t->name, j->name);
                    // The grid point's own model (e.g. model.dim) for the estimate.
                    Task tp;
                    const Task *tc = t;
                    char e2[256];
                    if (s->n_grid && !task_load(&tp, s->tasks[ti], s->config, s->data_root, e2, sizeof e2) &&
                        !task_apply_json(&tp, w->point_over[ti * w->n_points + p], "grid", e2, sizeof e2))
                        tc = &tp;
                    size_t steps = s->steps ? s->steps : b->steps;
                    if (s->time_budget > 0 || (!s->steps && b->time_budget > 0)) steps = 0;   // equal wall time: eval decides
                    j->cost = sweep_job_cost(tc, j->method, steps, s->batch ? s->batch : b->batch,
                                             s->test_limit ? s->test_limit : b->test_limit, len);
                    if (s->n_grid) task_free(&tp);
                }
    }
    w->threads = s->threads > 0 ? s->threads : default_threads();
    if (!realpath("/proc/self/exe", w->exe)) snprintf(w->exe, sizeof w->exe, "/proc/self/exe");
    return MB_OK;
}

// DIR/sweep.json: what must match for a restart to continue the same sweep.
static cJSON *settings_json(const Sweep *w) {
    const SweepSpec *s = w->s;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "budget", s->quick ? "quick" : "full");
    cJSON_AddNumberToObject(j, "steps", (double)s->steps);
    cJSON_AddNumberToObject(j, "time_budget", s->time_budget);
    cJSON_AddItemToObject(j, "config", w->config ? cJSON_Duplicate(w->config, 1) : cJSON_CreateNull());
    return j;
}

static int check_settings(const Sweep *w, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sweep.json", w->s->out);
    cJSON *mine = settings_json(w);
    if (!mine) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = MB_OK;
    if (is_file(path)) {
        cJSON *old = NULL;
        rc = json_read_file(&old, path, err, errlen);
        if (rc == MB_ERR_USAGE) rc = MB_ERR_DATA;
        if (!rc) {
            for (const cJSON *c = mine->child; c && !rc; c = c->next) {
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, c->string);
                if (!o || !cJSON_Compare(c, o, 1))
                    rc = mb_fail(err, errlen, MB_ERR_USAGE,
                                 "%s: this folder holds a sweep with other settings (%s differs); use another --out",
                                 path, c->string);
            }
        }
        cJSON_Delete(old);
    } else {
        rc = write_json(path, mine, err, errlen);
    }
    cJSON_Delete(mine);
    return rc;
}

// DIR/sweep.lock, held (flock) by rank 0 while it runs, so that a second sweep on the same DIR
// (e.g. resubmitted while the first still runs) is refused instead of running the same jobs.
// File systems without flock: a warning, no lock. The file holds "<pid> <host>" for the message.
static int lock_out(const Sweep *w, int *fd_out, char *err, size_t errlen) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/sweep.lock", w->s->out);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char who[128] = "";
            ssize_t n = pread(fd, who, sizeof who - 1, 0);
            who[n > 0 ? n : 0] = 0;
            who[strcspn(who, "\n")] = 0;
            close(fd);
            return mb_fail(err, errlen, MB_ERR_USAGE,
                           "%s: another sweep is running in this folder (pid and host: %s); wait for it to end or stop it",
                           w->s->out, who[0] ? who : "unknown");
        }
        if (w->s->log) fprintf(w->s->log, "sweep: warning: %s: no lock on this file system (%s)\n", path, strerror(e));
        close(fd);
        *fd_out = -1;
        return MB_OK;
    }
    char host[64] = "?", line[128];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n) { /* the lock holds without the note */ }
    *fd_out = fd;
    return MB_OK;
}

// ---------------------------------------------------------------- one job

static void job_args(const Sweep *w, const Job *j, const char *config, const char **argv, char bufs[11][64]) {
    const SweepSpec *s = w->s;
    size_t n = 0;
    argv[n++] = w->exe;
    argv[n++] = "run";
    argv[n++] = "--task";
    argv[n++] = s->tasks[j->task];
    argv[n++] = "--method";
    argv[n++] = method_name(j->method);
    argv[n++] = "--seed";
    snprintf(bufs[0], 64, "%llu", (unsigned long long)j->seed);
    argv[n++] = bufs[0];
    if (s->quick) argv[n++] = "--quick";
    if (s->steps) {
        argv[n++] = "--steps";
        snprintf(bufs[1], 64, "%zu", s->steps);
        argv[n++] = bufs[1];
    }
    if (s->time_budget > 0) {
        argv[n++] = "--time-budget";
        snprintf(bufs[2], 64, "%.17g", s->time_budget);
        argv[n++] = bufs[2];
    }
    argv[n++] = "--threads";
    snprintf(bufs[3], 64, "%d", w->threads);
    argv[n++] = bufs[3];
    // The run flags given to the sweep, as given.
    const struct { const char *flag; size_t v; } sz[] = {{"--batch", s->batch}, {"--eval-every", s->eval_every},
                                                         {"--train-limit", s->train_limit},
                                                         {"--test-limit", s->test_limit},
                                                         {"--val-limit", s->val_limit}};
    for (int k = 0; k < 5; k++)
        if (sz[k].v) {
            argv[n++] = sz[k].flag;
            int slot = k < 4 ? 4 + k : 10;   // 8 and 9 hold --patience and --checkpoint-every
            snprintf(bufs[slot], 64, "%zu", sz[k].v);
            argv[n++] = bufs[slot];
        }
    if (s->patience >= 0) {
        argv[n++] = "--patience";
        snprintf(bufs[8], 64, "%ld", s->patience);
        argv[n++] = bufs[8];
    }
    if (s->checkpoint_every > 0) {
        argv[n++] = "--checkpoint-every";
        snprintf(bufs[9], 64, "%.17g", s->checkpoint_every);
        argv[n++] = bufs[9];
    }
    argv[n++] = "--data-root";
    argv[n++] = s->data_root;
    if (config) {
        argv[n++] = "--config";
        argv[n++] = config;
    }
    argv[n++] = "--out";
    argv[n++] = j->dir;
    argv[n] = NULL;
}

// Starts the job's `run` process (stdout and stderr to <dir>/run.log). Returns its pid, or -1
// with the reason in err.
static pid_t job_start(const Sweep *w, const Job *j, char *err, size_t errlen) {
    const SweepSpec *s = w->s;
    if (mkdir_p(j->dir, err, errlen)) return -1;
    char cfg[PATH_MAX + 32], log[PATH_MAX + 32];
    const char *config = s->config;
    if (s->n_grid) {
        // The grid point over the --config JSON: the job's own config file.
        snprintf(cfg, sizeof cfg, "%s/grid-config.json", j->dir);
        cJSON *m = json_merge(w->config, w->point_over[j->task * w->n_points + j->point]);
        int rc = m ? write_json(cfg, m, err, errlen) : mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        cJSON_Delete(m);
        if (rc) return -1;
        config = cfg;
    }
    snprintf(log, sizeof log, "%s/run.log", j->dir);
    const char *argv[48];
    char bufs[11][64];
    job_args(w, j, config, argv, bufs);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create: %s", log, strerror(errno)); return -1; }
    for (int i = 0; argv[i]; i++) dprintf(fd, "%s%s", i ? " " : "# ", argv[i]);
    dprintf(fd, "\n");
    if (s->log) fflush(s->log);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        mb_fail(err, errlen, MB_ERR_INTERNAL, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        // The job dies with its rank (a killed mpirun must not leave jobs writing behind it).
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(128 + SIGTERM);
        dup2(fd, 1);
        dup2(fd, 2);
        dist_clear_launcher_env();   // a plain process, not a second copy of this rank
        execv(w->exe, (char *const *)argv);
        dprintf(2, "maelre-bench: sweep: cannot start %s: %s\n", w->exe, strerror(errno));
        _exit(127);
    }
    close(fd);
    return pid;
}

// The last non-empty line of the job's log (its error message when it failed).
static void last_line(const char *dir, char *buf, size_t n) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/run.log", dir);
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char tail[4096];
    long sz = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = sz > (long)sizeof tail - 1 ? sz - (long)sizeof tail + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[got] = 0;
    for (char *p = tail; *p; p++) if (*p == '\r') *p = '\n';
    size_t e = got;
    while (e > 0 && (tail[e - 1] == '\n' || tail[e - 1] == ' ')) tail[--e] = 0;
    char *nl = strrchr(tail, '\n');
    const char *l = nl ? nl + 1 : tail;
    size_t k = strlen(l) < n ? strlen(l) : n - 1;
    memcpy(buf, l, k);
    buf[k] = 0;
}

// After the job's process ended: done (results.json there) or a failure record. Returns the code.
static int job_finish(const Sweep *w, const Job *j, int status, double seconds, int rank) {
    const SweepSpec *s = w->s;
    char res[PATH_MAX + 32], err[512];
    snprintf(res, sizeof res, "%s/results.json", j->dir);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : MB_ERR_INTERNAL;
    if (code == 0 && !is_file(res)) code = MB_ERR_INTERNAL;
    if (code == 0) {
        unlink(j->failed);
        if (s->log) fprintf(s->log, "sweep: [rank %d] done   %s/%s (%.1f s)\n", rank, w->tasks[j->task].name, j->name, seconds);
        return 0;
    }
    char line[1024];
    last_line(j->dir, line, sizeof line);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        snprintf(line, sizeof line, "exit 0 but no results.json in the job folder");
    int interrupted = code == MB_ERR_INTERRUPTED || (WIFSIGNALED(status) && s->stop && *s->stop);
    if (s->log)
        fprintf(s->log, "sweep: [rank %d] %s %s/%s (%s %d): %s\n", rank, interrupted ? "STOPPED" : "FAILED ",
                w->tasks[j->task].name, j->name, WIFSIGNALED(status) ? "signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : code, line);
    if (interrupted) return MB_ERR_INTERRUPTED;   // not a failure of the job: it runs again next time
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/failed", s->out);
    if (mkdir_p(dir, err, sizeof err)) {
        if (s->log) fprintf(s->log, "sweep: %s\n", err);
        return code;
    }
    cJSON *r = cJSON_CreateObject();
    if (!r) return code;
    cJSON_AddStringToObject(r, "task", w->tasks[j->task].name);
    cJSON_AddStringToObject(r, "method", method_name(j->method));
    cJSON_AddNumberToObject(r, "seed", (double)j->seed);
    cJSON_AddStringToObject(r, "job", j->name);
    cJSON_AddStringToObject(r, "grid", w->point_label[j->point]);
    if (WIFSIGNALED(status)) {
        cJSON_AddNullToObject(r, "exit_status");
        cJSON_AddNumberToObject(r, "signal", WTERMSIG(status));
    } else {
        cJSON_AddNumberToObject(r, "exit_status", code);
        cJSON_AddNullToObject(r, "signal");
    }
    cJSON_AddStringToObject(r, "error", line);
    char log[PATH_MAX + 32];
    snprintf(log, sizeof log, "%s/run.log", j->dir);
    cJSON_AddStringToObject(r, "log", log);
    cJSON_AddNumberToObject(r, "rank", rank);
    cJSON_AddNumberToObject(r, "seconds", seconds);
    if (write_json(j->failed, r, err, sizeof err) && s->log) fprintf(s->log, "sweep: %s\n", err);
    cJSON_Delete(r);
    return code;
}

static int job_done(const Job *j) {
    char res[PATH_MAX + 32];
    snprintf(res, sizeof res, "%s/results.json", j->dir);
    return is_file(res);
}

static void job_log_start(const Sweep *w, const Job *j, int rank) {
    if (w->s->log)
        fprintf(w->s->log, "sweep: [rank %d] start  %s/%s (%d thread%s)\n", rank, w->tasks[j->task].name, j->name,
                w->threads, w->threads == 1 ? "" : "s");
}

// Runs one job to the end in this process (workers, and one rank alone).
static int job_run_blocking(const Sweep *w, Job *j, int rank) {
    char err[1024];
    job_log_start(w, j, rank);
    double t0 = now_s();
    pid_t pid = job_start(w, j, err, sizeof err);
    if (pid < 0) {
        if (w->s->log) fprintf(w->s->log, "sweep: [rank %d] FAILED %s/%s: %s\n", rank, w->tasks[j->task].name, j->name, err);
        return MB_ERR_INTERNAL;
    }
    int status = 0, forwarded = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) { status = MB_ERR_INTERNAL << 8; break; }
        if (w->s->stop && *w->s->stop && !forwarded) { kill(pid, SIGINT); forwarded = 1; }
    }
    return job_finish(w, j, status, now_s() - t0, rank);
}

// ---------------------------------------------------------------- the merged table and report

static int merge_results(const Sweep *w, size_t *rows, char *err, size_t errlen) {
    const SweepSpec *s = w->s;
    *rows = 0;
    size_t nc = RUN_N_COLUMNS + 3 + s->n_grid;
    const char **cols = calloc(nc, sizeof *cols);
    if (!cols) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t c = 0; c < RUN_N_COLUMNS; c++) cols[c] = RUN_COLUMNS[c];
    cols[RUN_N_COLUMNS] = "job";
    cols[RUN_N_COLUMNS + 1] = "grid";
    cols[RUN_N_COLUMNS + 2] = "run_dir";   // the job's run folder, relative to DIR (report finds its files there)
    for (size_t a = 0; a < s->n_grid; a++) cols[RUN_N_COLUMNS + 3 + a] = s->grid[a].key;
    Table *m = table_new(cols, nc);
    free(cols);
    if (!m) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = MB_OK;
    for (size_t k = 0; k < w->n_jobs && !rc; k++) {
        const Job *j = &w->jobs[k];
        if (!job_done(j)) continue;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/results.json", j->dir);
        Table *t = NULL;
        if ((rc = table_read_json(&t, path, err, errlen))) break;
        for (size_t r = 0; r < table_rows(t) && !rc; r++) {
            size_t row = table_add_row(m);
            if (row == (size_t)-1) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
            for (size_t c = 0; c < table_columns(t) && !rc; c++) {
                const char *name = table_column(t, c);
                double v;
                const char *str;
                const cJSON *js;
                if (table_column_is_json(t, c)) {
                    if ((js = table_get_json(t, r, name))) {
                        cJSON *d = cJSON_Duplicate(js, 1);
                        rc = d ? table_set_json(m, row, name, d) : MB_ERR_NOMEM;
                    }
                } else if (table_get_num(t, r, name, &v) == MB_OK) {
                    rc = table_set_num(m, row, name, v);
                    if (rc == MB_ERR_USAGE) rc = table_set_json(m, row, name, cJSON_CreateNumber(v));
                } else if ((str = table_get_str(t, r, name))) {
                    rc = table_set_str(m, row, name, str);
                    if (rc == MB_ERR_USAGE) rc = table_set_json(m, row, name, cJSON_CreateString(str));
                }
            }
            if (!rc) rc = table_set_str(m, row, "job", j->name);
            if (!rc) rc = table_set_str(m, row, "grid", w->point_label[j->point]);
            if (!rc) {
                char rel[PATH_MAX];
                snprintf(rel, sizeof rel, "jobs/%s/%s", w->tasks[j->task].name, j->name);
                rc = table_set_str(m, row, "run_dir", rel);
            }
            for (size_t a = 0; a < s->n_grid && !rc; a++) {
                cJSON *v = parse_value(s->grid[a].values[axis_value(s, j->point, a)]);
                if (cJSON_IsNumber(v)) rc = table_set_num(m, row, s->grid[a].key, v->valuedouble);
                else if (cJSON_IsString(v)) rc = table_set_str(m, row, s->grid[a].key, v->valuestring);
                else rc = table_set_str(m, row, s->grid[a].key, cJSON_IsTrue(v) ? "true" : "false");
                cJSON_Delete(v);
            }
            if (rc) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory merging %s", path);
            else (*rows)++;
        }
        table_free(t);
    }
    if (!rc && *rows) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/results.json", s->out);
        rc = table_write_json(m, path, err, errlen);
        snprintf(path, sizeof path, "%s/results.csv", s->out);
        if (!rc) rc = table_write_csv(m, path, err, errlen);
    }
    table_free(m);
    return rc;
}

static int run_report(const Sweep *w) {
    char in[PATH_MAX + 32], out[PATH_MAX + 32];
    snprintf(in, sizeof in, "%s/results.json", w->s->out);
    snprintf(out, sizeof out, "%s/report", w->s->out);
    const char *argv[] = {w->exe, "report", in, "--out", out, NULL};
    fflush(stdout);
    fflush(stderr);
    if (w->s->log) fflush(w->s->log);
    pid_t pid = fork();
    if (pid < 0) return MB_ERR_INTERNAL;
    if (pid == 0) {
        dist_clear_launcher_env();
        execv(w->exe, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : MB_ERR_INTERNAL;
}

// ---------------------------------------------------------------- scheduling

static void account(Sweep *w, SweepResult *res, size_t job, int code) {
    w->jobs[job].code = code;
    res->ran++;
    if (code == 0) res->ok++;
    else if (code != MB_ERR_INTERRUPTED) res->failed++;
}

// Rank 0: hands out jobs (queue = pending jobs, longest first) and runs jobs itself in between.
static int schedule_root(Sweep *w, Job **queue, size_t nq, SweepResult *res) {
    const SweepSpec *s = w->s;
    int size = dist_size();
    size_t next = 0;
    int workers = size - 1;
    pid_t mine = -1;
    Job *my_job = NULL;
    double my_t0 = 0;
    int forwarded = 0;
    char err[1024];
    for (;;) {
        int stopping = s->stop && *s->stop;
        int busy = 0;
        if (mine < 0 && !stopping && next < nq) {
            my_job = queue[next++];
            job_log_start(w, my_job, 0);
            my_t0 = now_s();
            forwarded = 0;
            mine = job_start(w, my_job, err, sizeof err);
            if (mine < 0) {
                if (s->log) fprintf(s->log, "sweep: [rank 0] FAILED %s/%s: %s\n", w->tasks[my_job->task].name, my_job->name, err);
                account(w, res, (size_t)(my_job - w->jobs), MB_ERR_INTERNAL);
                continue;
            }
            busy = 1;
        }
        if (workers > 0) {
            int from, f;
            while ((f = dist_probe(TAG_REQ, &from)) > 0) {
                int64_t msg[3];
                if (dist_recv_i64(from, TAG_REQ, msg, 3, NULL)) return MB_ERR_INTERNAL;
                if (msg[0] >= 0 && (size_t)msg[0] < w->n_jobs) account(w, res, (size_t)msg[0], (int)msg[1]);
                if (msg[2]) { workers--; continue; }   // the worker stops (its own SIGINT)
                int64_t j = (!stopping && next < nq) ? (int64_t)(queue[next++] - w->jobs) : -1;
                if (dist_send_i64(from, TAG_JOB, &j, 1)) return MB_ERR_INTERNAL;
                if (j < 0) workers--;
                busy = 1;
            }
            if (f < 0) return MB_ERR_INTERNAL;
        }
        if (mine > 0) {
            if (stopping && !forwarded) { kill(mine, SIGINT); forwarded = 1; }
            int status = 0;
            pid_t r = waitpid(mine, &status, size > 1 ? WNOHANG : 0);
            if (r == mine) {
                account(w, res, (size_t)(my_job - w->jobs), job_finish(w, my_job, status, now_s() - my_t0, 0));
                mine = -1;
                busy = 1;
            } else if (r < 0 && errno != EINTR) {
                account(w, res, (size_t)(my_job - w->jobs), MB_ERR_INTERNAL);
                mine = -1;
            }
        }
        if (mine < 0 && (next >= nq || stopping) && workers == 0) break;
        if (!busy && size > 1) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return MB_OK;
}

static int schedule_worker(Sweep *w) {
    int64_t msg[3] = {-1, 0, 0};
    for (;;) {
        msg[2] = w->s->stop && *w->s->stop;
        if (dist_send_i64(0, TAG_REQ, msg, 3)) return MB_ERR_INTERNAL;
        if (msg[2]) return MB_ERR_INTERRUPTED;
        int64_t j;
        if (dist_recv_i64(0, TAG_JOB, &j, 1, NULL)) return MB_ERR_INTERNAL;
        if (j < 0 || (size_t)j >= w->n_jobs) return MB_OK;
        msg[0] = j;
        msg[1] = job_run_blocking(w, &w->jobs[j], dist_rank());
    }
}

int sweep_run(const SweepSpec *s, SweepResult *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    Sweep w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.lock_fd = -1;
    int rank = dist_rank(), size = dist_size();
    int rc = plan(&w, err, errlen);
    if (!rc && !w.n_jobs) rc = mb_fail(err, errlen, MB_ERR_USAGE, "no jobs (empty task, method or seed list)");
    if (!rc && s->dry_run) {
        // The plan only: every job in the order it would start, nothing written.
        Job **order = calloc(w.n_jobs, sizeof *order);
        if (!order) { sweep_free(&w); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
        for (size_t k = 0; k < w.n_jobs; k++) order[k] = &w.jobs[k];
        qsort(order, w.n_jobs, sizeof *order, cmp_cost);
        if (rank == 0 && s->plan_out) {
            fprintf(s->plan_out, "%zu jobs, %d thread%s per job; in start order (done ones are skipped):\n", w.n_jobs,
                    w.threads, w.threads == 1 ? "" : "s");
            for (size_t k = 0; k < w.n_jobs; k++) {
                const Job *j = order[k];
                char c[32];
                if (j->cost > 0) snprintf(c, sizeof c, "%.3g", j->cost);
                else snprintf(c, sizeof c, "?");
                fprintf(s->plan_out, "%4zu  %-12s est. %9s FLOP  %s/%s\n", k + 1, job_done(j) ? "done" : "to run", c,
                        w.tasks[j->task].name, j->name);
            }
        }
        free(order);
        res->jobs = w.n_jobs;
        sweep_free(&w);
        return MB_OK;
    }
    // Rank 0 prepares DIR; the others wait for its word (1 = go) before running anything.
    int64_t go = 0;
    if (rank == 0) {
        char jd[PATH_MAX + 16];
        snprintf(jd, sizeof jd, "%s/jobs", s->out);
        if (!rc) rc = mkdir_p(jd, err, errlen);
        if (!rc) rc = lock_out(&w, &w.lock_fd, err, errlen);
        if (!rc) rc = check_settings(&w, err, errlen);
        if (!rc) {
            // Generate ListOps once here rather than in concurrent jobs (other missing data: the
            // jobs fail and are recorded).
            char e2[512];
            for (size_t i = 0; i < s->n_tasks; i++)
                if (!task_data_present(&w.tasks[i], s->data_root) && !strncmp(w.tasks[i].data.source, "listops", 7))
                    runner_ensure_data(&w.tasks[i], s->data_root, s->log, e2, sizeof e2);
        }
        go = rc ? 0 : 1;
        for (int r = 1; r < size; r++) dist_send_i64(r, TAG_JOB, &go, 1);
    } else if (!rc) {
        if (dist_recv_i64(0, TAG_JOB, &go, 1, NULL)) rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "MPI receive failed");
        else if (!go) rc = mb_fail(err, errlen, MB_ERR_USAGE, "rank 0 refused the sweep (see its message)");
    } else {
        // Rank 0 found the same error, or (different files here) it waits for this rank: leave.
        if (!dist_recv_i64(0, TAG_JOB, &go, 1, NULL) && go) {
            int64_t bye[3] = {-1, 0, 1};
            dist_send_i64(0, TAG_REQ, bye, 3);
        }
    }
    if (rc) { sweep_free(&w); return rc; }

    Job **queue = calloc(w.n_jobs, sizeof *queue);
    if (!queue) { sweep_free(&w); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
    size_t nq = 0;
    res->jobs = w.n_jobs;
    for (size_t k = 0; k < w.n_jobs; k++) {
        if (job_done(&w.jobs[k])) res->done_before++;
        else queue[nq++] = &w.jobs[k];
    }
    qsort(queue, nq, sizeof *queue, cmp_cost);
    if (rank == 0 && s->log) {
        fprintf(s->log, "sweep: %zu job%s (%zu task%s x %zu method%s x %zu seed%s x %zu grid point%s), %zu finished earlier, "
                        "%zu to run on %d rank%s (%s), %d thread%s per job\n",
                w.n_jobs, w.n_jobs == 1 ? "" : "s", s->n_tasks, s->n_tasks == 1 ? "" : "s", s->n_methods,
                s->n_methods == 1 ? "" : "s", s->n_seeds, s->n_seeds == 1 ? "" : "s", w.n_points,
                w.n_points == 1 ? "" : "s", res->done_before, nq, size, size == 1 ? "" : "s", dist_backend(),
                w.threads, w.threads == 1 ? "" : "s");
        fflush(s->log);
    }
    double t0 = now_s();
    if (rank == 0) rc = schedule_root(&w, queue, nq, res);
    else rc = schedule_worker(&w);
    free(queue);
    if (rc == MB_ERR_INTERNAL) {
        mb_fail(err, errlen, rc, "MPI messaging failed on rank %d", rank);
        sweep_free(&w);
        return rc;
    }
    if (rank != 0) { sweep_free(&w); return rc; }

    for (size_t k = 0; k < w.n_jobs; k++)
        if (w.jobs[k].code > 0 && w.jobs[k].code != MB_ERR_INTERRUPTED && !res->first_fail_code)
            res->first_fail_code = w.jobs[k].code;
    size_t rows = 0, done = 0;
    for (size_t k = 0; k < w.n_jobs; k++) done += job_done(&w.jobs[k]);
    int mrc = merge_results(&w, &rows, err, errlen);
    if (s->log)
        fprintf(s->log, "sweep: %zu of %zu jobs done (%zu ran now: %zu ok, %zu failed) in %.1f s; %s\n", done, w.n_jobs,
                res->ran, res->ok, res->failed, now_s() - t0,
                mrc ? err : rows ? "merged rows in <out>/results.{csv,json}" : "no finished rows to merge");
    if (mrc) { sweep_free(&w); return mrc; }
    if (rows && !s->no_report && !(s->stop && *s->stop)) {
        int r = run_report(&w);
        if (r && s->log) fprintf(s->log, "sweep: warning: the report exited %d (tables in %s/results.*)\n", r, s->out);
    }
    sweep_free(&w);
    if (s->stop && *s->stop) return mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted; finished jobs are kept in %s", s->out);
    if (done < w.n_jobs) {
        int code = res->first_fail_code ? res->first_fail_code : MB_ERR_INTERNAL;
        return mb_fail(err, errlen, code, "%zu job%s failed (records in %s/failed/)", w.n_jobs - done,
                       w.n_jobs - done == 1 ? "" : "s", s->out);
    }
    return MB_OK;
}
