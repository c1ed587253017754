// Loading, merging and summarising run outputs, and writing the report folder
// (results/report.h). The paired comparison is in results/paired.c, curves in results/curves.c.
#include "results/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "results/markdown.h"
#include "results/plot.h"

// ---------------------------------------------------------------------------------------------
// Method order

static const char *const method_order[] = {
    "vanilla", "linformer", "performer", "nystromformer", "linear", "local", "bigbird", "tome",
    "maelre",  "maelre-exact", "efficient",
};
#define N_ORDER (sizeof method_order / sizeof method_order[0])

int report_method_index(const char *m, int *dense) {
    if (dense) *dense = 0;
    if (!m) return -1;
    for (size_t i = 0; i < N_ORDER; i++)
        if (!strcmp(m, method_order[i])) return (int)i;
    size_t len = strlen(m);
    if (len > 6 && !strcmp(m + len - 6, "-dense")) {
        for (size_t i = 0; i < N_ORDER; i++) {
            if (strlen(method_order[i]) == len - 6 && !strncmp(m, method_order[i], len - 6)) {
                if (dense) *dense = 1;
                return (int)i;
            }
        }
    }
    return -1;
}

int report_method_rank(const char *m) {
    int dense, i = report_method_index(m, &dense);
    return i < 0 ? REPORT_RANK_UNKNOWN : 2 * i + dense;
}

const char *report_profile_series(const Table *p, size_t r) {
    const char *v = table_get_str(p, r, "variant");
    return v ? v : table_get_str(p, r, "method");
}

// ---------------------------------------------------------------------------------------------
// Reading inputs

static const char *const run_columns[] = {
    "task", "method", "seed", "threads", "params", "max_len", "mean_tokens", "train_samples",
    "test_samples", "steps", "batch", "accuracy", "accuracy_stderr", "train_seconds",
    "train_samples_per_s", "infer_samples_per_s", "flops_infer_per_sample", "flops_train_per_sample",
    "macs_infer_per_sample", "peak_mem_train_bytes", "peak_mem_infer_bytes", "peak_rss_bytes",
    "blocks_softmax", "blocks_efficient",
};
// Newer numeric run columns (SPEC §11), checked when present, never required.
static const char *const run_columns_new[] = {"accuracy_last", "best_step", "val_accuracy",
                                              "majority_accuracy"};
static const char *const profile_columns[] = {
    "method", "seq_len", "batch", "threads", "params", "flops_infer_per_sample",
    "flops_train_per_sample", "macs_infer_per_sample", "peak_mem_infer_bytes",
    "peak_mem_train_bytes", "infer_ms_per_sample", "train_ms_per_sample", "gflops_infer",
    "gflops_train", "blocks_softmax", "blocks_efficient", "status",
};
#define NCOLS(a) (sizeof a / sizeof a[0])

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

// "<file>:<line>" for a CSV row, "<file>: element <i>" for a JSON one.
static void where(char *buf, size_t n, const ReportInput *in, size_t row) {
    size_t line = table_row_line(in->t, row);
    if (line) snprintf(buf, n, "%s:%zu", in->path, line);
    else snprintf(buf, n, "%s: element %zu", in->path, row);
}

static int read_table(const char *path, Table **t, char *err, size_t errlen) {
    return ends_with(path, ".json") ? table_read_json(t, path, err, errlen)
                                    : table_read_csv(t, path, err, errlen);
}

static int has_column(const Table *t, const char *name) {
    for (size_t i = 0; i < table_columns(t); i++)
        if (!strcmp(table_column(t, i), name)) return 1;
    return 0;
}

static int check_fraction(const Table *t, size_t r, const char *col, const char *at, char *err,
                          size_t errlen) {
    double v;
    if (table_get_num(t, r, col, &v) == MB_OK && !(v >= 0 && v <= 1))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: %s %g is not a fraction in [0, 1]", at, col, v);
    return MB_OK;
}

// The checks that make a merged table meaningful: key columns present, numbers are numbers.
static int validate(const ReportInput *in, char *err, size_t errlen) {
    const Table *t = in->t;
    char at[4200];
    int runs = in->kind == REPORT_RUNS;
    const char *need[2] = {runs ? "task" : "method", runs ? "method" : "seq_len"};
    for (int i = 0; i < 2; i++)
        if (!has_column(t, need[i]))
            return mb_fail(err, errlen, MB_ERR_DATA, "%s: no '%s' column (is this a %s file?)",
                           in->path, need[i], runs ? "`run` results" : "`profile`");
    for (size_t r = 0; r < table_rows(t); r++) {
        where(at, sizeof at, in, r);
        double v;
        if (runs) {
            const char *task = table_get_str(t, r, "task"), *method = table_get_str(t, r, "method");
            if (!task || !*task) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty task", at);
            if (!method || !*method) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty method", at);
            static const char *const fractions[] = {"accuracy", "accuracy_last", "val_accuracy",
                                                    "majority_accuracy"};
            for (size_t k = 0; k < NCOLS(fractions); k++) {
                int rc = check_fraction(t, r, fractions[k], at, err, errlen);
                if (rc) return rc;
            }
        } else {
            const char *method = table_get_str(t, r, "method");
            if (!method || !*method) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty method", at);
            if (table_get_num(t, r, "seq_len", &v) != MB_OK || !(v > 0))
                return mb_fail(err, errlen, MB_ERR_DATA, "%s: seq_len is missing or not positive", at);
        }
        const char *const *cols = runs ? run_columns : profile_columns;
        size_t ncols = runs ? NCOLS(run_columns) : NCOLS(profile_columns);
        for (size_t c = 0; c < ncols + (runs ? NCOLS(run_columns_new) : 0); c++) {
            const char *col = c < ncols ? cols[c] : run_columns_new[c - ncols];
            if (!strcmp(col, "task") || !strcmp(col, "method") || !strcmp(col, "status")) continue;
            const char *s = table_get_str(t, r, col);
            if (s)
                return mb_fail(err, errlen, MB_ERR_DATA, "%s: %s is '%.60s', not a number", at, col, s);
        }
    }
    return MB_OK;
}

static ReportInput *next_input(ReportInputs *ins) {
    if (ins->n == ins->cap) {
        size_t cap = ins->cap ? 2 * ins->cap : 8;
        ReportInput *g = realloc(ins->in, cap * sizeof *g);
        if (!g) return NULL;
        ins->in = g;
        ins->cap = cap;
    }
    ReportInput *in = &ins->in[ins->n];
    memset(in, 0, sizeof *in);
    return in;
}

// Reads path into a new input of the given kind and checks it.
static int add_input(ReportInputs *ins, const char *path, int kind_known, ReportKind kind,
                     char *err, size_t errlen) {
    ReportInput *in = next_input(ins);
    if (!in || !(in->path = strdup(path))) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = read_table(path, &in->t, err, errlen);
    if (rc) { free(in->path); return rc; }
    ins->n++;
    in->kind = kind_known ? kind
               : has_column(in->t, "seq_len") && !has_column(in->t, "task") ? REPORT_PROFILE
                                                                               : REPORT_RUNS;
    return validate(in, err, errlen);
}

int report_load_input(ReportInputs *ins, const char *arg, char *err, size_t errlen) {
    struct stat st;
    if (stat(arg, &st) != 0)
        return mb_fail(err, errlen, errno == ENOENT ? MB_ERR_DATA : MB_ERR_IO, "%s: %s", arg,
                       strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        static const char *const names[2][2] = {{"results.json", "results.csv"},
                                                {"profile.json", "profile.csv"}};
        char path[4096];
        size_t found = 0;
        for (int k = 0; k < 2; k++) {
            for (int f = 0; f < 2; f++) {
                snprintf(path, sizeof path, "%s%s%s", arg, ends_with(arg, "/") ? "" : "/", names[k][f]);
                if (!is_file(path)) continue;
                int rc = add_input(ins, path, 1, k == 0 ? REPORT_RUNS : REPORT_PROFILE, err, errlen);
                if (rc) return rc;
                found++;
                break;   // JSON found: the CSV beside it is the same rows
            }
        }
        if (!found)
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s: no results.json, results.csv, profile.json or profile.csv "
                           "(is this an output folder of `run` or `profile`?)", arg);
        return MB_OK;
    }
    if (!ends_with(arg, ".csv") && !ends_with(arg, ".json"))
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: expected a folder, a .csv or a .json file", arg);
    return add_input(ins, arg, 0, REPORT_RUNS, err, errlen);
}

void report_inputs_free(ReportInputs *ins) {
    for (size_t i = 0; i < ins->n; i++) {
        table_free(ins->in[i].t);
        free(ins->in[i].path);
    }
    free(ins->in);
    memset(ins, 0, sizeof *ins);
}

// ---------------------------------------------------------------------------------------------
// Merging

typedef struct {
    size_t input, row;   // which input table and row
} Entry;

// Same merge key? runs: (task, method, seed); profile: (variant, seq_len, batch, threads).
static int same_num(const Table *a, size_t ra, const Table *b, size_t rb, const char *col) {
    double x, y;
    int hx = table_get_num(a, ra, col, &x) == MB_OK, hy = table_get_num(b, rb, col, &y) == MB_OK;
    return hx == hy && (!hx || x == y);
}

static int same_key(const ReportInput *ia, size_t ra, const ReportInput *ib, size_t rb) {
    const Table *a = ia->t, *b = ib->t;
    if (strcmp(table_get_str(a, ra, "method"), table_get_str(b, rb, "method"))) return 0;
    if (ia->kind == REPORT_RUNS) {
        const char *ga = table_get_str(a, ra, "grid"), *gb = table_get_str(b, rb, "grid");   // sweep grid points
        return !strcmp(table_get_str(a, ra, "task"), table_get_str(b, rb, "task")) &&
               same_num(a, ra, b, rb, "seed") && !strcmp(ga ? ga : "", gb ? gb : "");
    }
    return !strcmp(report_profile_series(a, ra), report_profile_series(b, rb)) &&
           same_num(a, ra, b, rb, "seq_len") && same_num(a, ra, b, rb, "batch") &&
           same_num(a, ra, b, rb, "threads");
}

int report_merge(const ReportInputs *ins, ReportKind kind, FILE *note, Table **out,
                 size_t *replaced, char *err, size_t errlen) {
    *out = NULL;
    *replaced = 0;
    // Known columns first: SPEC §8's, then (runs) the §11 ones, so every merged file has them.
    size_t total = 0, ncols = kind == REPORT_RUNS ? NCOLS(run_columns) + NCOLS(run_columns_new)
                                                  : NCOLS(profile_columns);
    size_t n = ins->n;
    const ReportInput *in_all = ins->in;
    for (size_t i = 0; i < n; i++)
        if (in_all[i].kind == kind) total += table_rows(in_all[i].t);
    if (!total) return MB_OK;
    const char **cols = malloc((ncols + 1) * sizeof *cols);
    Entry *e = malloc(total * sizeof *e);
    size_t ne = 0, nc = ncols, capc = ncols + 1;
    if (!cols || !e) { free(cols); free(e); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
    if (kind == REPORT_RUNS) {
        memcpy(cols, run_columns, sizeof run_columns);
        memcpy(cols + NCOLS(run_columns), run_columns_new, sizeof run_columns_new);
    } else {
        memcpy(cols, profile_columns, sizeof profile_columns);
    }
    int rc = MB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (in_all[i].kind != kind) continue;
        const Table *t = in_all[i].t;
        for (size_t c = 0; c < table_columns(t); c++) {
            const char *name = table_column(t, c);
            if (table_column_is_json(t, c) || !strcmp(name, "source")) continue;
            size_t j = 0;
            while (j < nc && strcmp(cols[j], name)) j++;
            if (j < nc) continue;
            if (nc + 1 >= capc) {
                const char **g = realloc(cols, 2 * capc * sizeof *cols);
                if (!g) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
                cols = g;
                capc *= 2;
            }
            cols[nc++] = name;
        }
        for (size_t r = 0; r < table_rows(t) && !rc; r++) {
            size_t j = 0;
            while (j < ne && !same_key(&in_all[e[j].input], e[j].row, &in_all[i], r)) j++;
            if (j < ne) {
                char was[4200], now[4200];
                where(was, sizeof was, &in_all[e[j].input], e[j].row);
                where(now, sizeof now, &in_all[i], r);
                if (note && *replaced < 10)
                    fprintf(note, "maelre-bench: note: %s replaces %s (same %s)\n", now, was,
                            kind == REPORT_RUNS ? "task, method and seed"
                                                : "variant, seq_len, batch and threads");
                else if (note && *replaced == 10)
                    fprintf(note, "maelre-bench: note: more rows replaced (count in report.md)\n");
                (*replaced)++;
                e[j] = (Entry){i, r};
            } else {
                e[ne++] = (Entry){i, r};
            }
        }
    }
    if (!rc) cols[nc++] = "source";
    Table *m = rc ? NULL : table_new(cols, nc);
    if (!rc && !m) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < ne && !rc; k++) {
        const ReportInput *in = &in_all[e[k].input];
        size_t r = e[k].row, row = table_add_row(m);
        if (row == (size_t)-1) { rc = MB_ERR_NOMEM; break; }
        for (size_t c = 0; c < table_columns(in->t) && !rc; c++) {
            const char *name = table_column(in->t, c);
            if (!strcmp(name, "source")) continue;
            double v;
            const char *s;
            const cJSON *j;
            if (table_column_is_json(in->t, c)) {
                if ((j = table_get_json(in->t, r, name))) {
                    cJSON *d = cJSON_Duplicate(j, 1);
                    rc = d ? table_set_json(m, row, name, d) : MB_ERR_NOMEM;
                    if (rc == MB_ERR_USAGE) {   // a CSV column elsewhere: keep its text
                        char *txt = cJSON_PrintUnformatted(j);
                        rc = txt ? table_set_str(m, row, name, txt) : MB_ERR_NOMEM;
                        cJSON_free(txt);
                    }
                }
            } else if (table_get_num(in->t, r, name, &v) == MB_OK) {
                rc = table_set_num(m, row, name, v);
                if (rc == MB_ERR_USAGE) rc = table_set_json(m, row, name, cJSON_CreateNumber(v));
            } else if ((s = table_get_str(in->t, r, name))) {
                rc = table_set_str(m, row, name, s);
                if (rc == MB_ERR_USAGE) rc = table_set_json(m, row, name, cJSON_CreateString(s));
            }
        }
        if (!rc) rc = table_set_str(m, row, "source", in->path);
        if (rc) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory merging %s", in->path);
    }
    free(cols);
    free(e);
    if (rc) { table_free(m); return rc; }
    *out = m;
    return MB_OK;
}

// ---------------------------------------------------------------------------------------------
// Summaries

static int cmp_summary(const void *a, const void *b) {
    const RunSummary *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    if (c) return c;
    int rx = report_method_rank(x->method), ry = report_method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    c = strcmp(x->method, y->method);
    return c ? c : strcmp(x->grid ? x->grid : "", y->grid ? y->grid : "");
}

// A row's grid point (a sweep's `grid` column); NULL when it has none.
static const char *row_grid(const Table *t, size_t r) {
    const char *g = table_get_str(t, r, "grid");
    return g && *g ? g : NULL;
}

static int same_grid(const char *a, const char *b) { return !strcmp(a ? a : "", b ? b : ""); }

static double get(const Table *t, size_t r, const char *col) {
    double v;
    return table_get_num(t, r, col, &v) == MB_OK ? v : NAN;
}

// method NULL: any method (and any grid point); otherwise the grid point must match too.
static int row_is(const Table *t, size_t r, const char *task, const char *method, const char *grid) {
    const char *ta = table_get_str(t, r, "task"), *me = table_get_str(t, r, "method");
    return ta && me && !strcmp(ta, task) &&
           (!method || (!strcmp(me, method) && same_grid(row_grid(t, r), grid)));
}

// The present values of `col` over rows of (task, method, grid) into v (capacity: table rows).
static size_t values_of(const Table *t, const char *task, const char *method, const char *grid,
                        const char *col, double *v) {
    size_t k = 0;
    for (size_t r = 0; r < table_rows(t); r++) {
        if (!row_is(t, r, task, method, grid)) continue;
        double x = get(t, r, col);
        if (isfinite(x)) v[k++] = x;
    }
    return k;
}

static double mean_of(const Table *t, const char *task, const char *method, const char *grid,
                      const char *col, double *scratch) {
    return stats_mean(scratch, values_of(t, task, method, grid, col, scratch));
}

static double std_of(const Table *t, const char *task, const char *method, const char *grid,
                     const char *col, double *scratch) {
    return stats_sample_std(scratch, values_of(t, task, method, grid, col, scratch));
}

double report_task_majority(const Table *runs, const char *task) {
    double *v = malloc((table_rows(runs) ? table_rows(runs) : 1) * sizeof *v);
    if (!v) return NAN;
    double m = mean_of(runs, task, NULL, NULL, "majority_accuracy", v);
    free(v);
    return m;
}

int report_summarize(const Table *runs, RunSummary **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    size_t rows = table_rows(runs);
    RunSummary *s = calloc(rows ? rows : 1, sizeof *s);
    double *v = malloc((rows ? rows : 1) * sizeof *v);
    if (!s || !v) {
        free(s);
        free(v);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory summarising runs");
    }
    size_t k = 0;
    for (size_t r = 0; r < rows; r++) {
        const char *task = table_get_str(runs, r, "task"), *method = table_get_str(runs, r, "method");
        if (!task || !method) {
            free(s);
            free(v);
            return mb_fail(err, errlen, MB_ERR_DATA, "run row %zu has no task or method", r + 1);
        }
        size_t i = 0;
        const char *grid = row_grid(runs, r);
        while (i < k && (strcmp(s[i].task, task) || strcmp(s[i].method, method) ||
                         !same_grid(s[i].grid, grid)))
            i++;
        if (i == k) { s[k].task = task; s[k].method = method; s[k].grid = grid; k++; }
        s[i].runs++;
    }
    for (size_t i = 0; i < k; i++) {
        RunSummary *x = &s[i];
        const char *ta = x->task, *me = x->method, *gr = x->grid;
        x->acc = mean_of(runs, ta, me, gr, "accuracy", v);
        x->acc_std = std_of(runs, ta, me, gr, "accuracy", v);
        if (x->runs == 1) {
            x->acc_err = mean_of(runs, ta, me, gr, "accuracy_stderr", v);
        } else {
            // Spread over seeds: sample standard deviation / sqrt(count).
            size_t c = values_of(runs, ta, me, gr, "accuracy", v);
            x->acc_err = c > 1 ? stats_sample_std(v, c) / sqrt((double)c) : NAN;
        }
        x->acc_last = mean_of(runs, ta, me, gr, "accuracy_last", v);
        x->acc_last_std = std_of(runs, ta, me, gr, "accuracy_last", v);
        x->val_acc = mean_of(runs, ta, me, gr, "val_accuracy", v);
        x->best_step = mean_of(runs, ta, me, gr, "best_step", v);
        x->majority = mean_of(runs, ta, me, gr, "majority_accuracy", v);
        x->steps = mean_of(runs, ta, me, gr, "steps", v);
        x->train_seconds = mean_of(runs, ta, me, gr, "train_seconds", v);
        x->batch = mean_of(runs, ta, me, gr, "batch", v);
        x->threads = mean_of(runs, ta, me, gr, "threads", v);
        x->max_len = mean_of(runs, ta, me, gr, "max_len", v);
        x->mean_tokens = mean_of(runs, ta, me, gr, "mean_tokens", v);
        x->test_samples = mean_of(runs, ta, me, gr, "test_samples", v);
        x->flops_infer = mean_of(runs, ta, me, gr, "flops_infer_per_sample", v);
        x->flops_train = mean_of(runs, ta, me, gr, "flops_train_per_sample", v);
        x->macs_infer = mean_of(runs, ta, me, gr, "macs_infer_per_sample", v);
        x->mem_infer = mean_of(runs, ta, me, gr, "peak_mem_infer_bytes", v);
        x->mem_train = mean_of(runs, ta, me, gr, "peak_mem_train_bytes", v);
        x->rss = mean_of(runs, ta, me, gr, "peak_rss_bytes", v);
        x->train_sps = mean_of(runs, ta, me, gr, "train_samples_per_s", v);
        x->infer_sps = mean_of(runs, ta, me, gr, "infer_samples_per_s", v);
        for (int kd = 0; kd < ATTN_KIND_COUNT; kd++) {   // the run tables' blocks_<kind> columns
            char col[48];
            snprintf(col, sizeof col, "blocks_%s", attn_kind_name((AttnKind)kd));
            x->blocks[kd] = mean_of(runs, ta, me, gr, col, v);
        }
    }
    free(v);
    qsort(s, k, sizeof *s, cmp_summary);
    *out = s;
    *n = k;
    return MB_OK;
}

// ---------------------------------------------------------------------------------------------
// Files beside a run's results

int report_run_file(char *buf, size_t n, const Table *runs, size_t row, const char *sub) {
    const char *src = table_get_str(runs, row, "source"), *method = table_get_str(runs, row, "method");
    double seed;
    if (!src || !method || table_get_num(runs, row, "seed", &seed) != MB_OK) return 0;
    if (!(seed >= 0 && seed < 1.8446744073709552e19 && seed == floor(seed))) return 0;
    for (const char *q = method; *q; q++)   // a method name is a file name part, never a path
        if (*q == '/') return 0;
    const char *slash = strrchr(src, '/');
    int dirlen = slash ? (int)(slash - src) : 1;
    // A sweep's merged rows name each job's run folder, relative to the merged file.
    const char *rd = table_get_str(runs, row, "run_dir");
    if (rd && (!*rd || rd[0] == '/' || strstr(rd, ".."))) return 0;
    int w = snprintf(buf, n, "%.*s/%s%s%s/%s-seed%.0f.csv", dirlen, slash ? src : ".", rd ? rd : "", rd ? "/" : "",
                     sub, method, seed);
    return w > 0 && (size_t)w < n;
}

// ---------------------------------------------------------------------------------------------
// The whole report folder

static int mkdirs(const char *dir, char *err, size_t errlen) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *q = p + 1; ; q++) {
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
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mb_fail(err, errlen, MB_ERR_IO, "%s: not a folder", dir);
    return MB_OK;
}

static int same_dir(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

typedef struct {
    const char **names;
    char (*buf)[512];
    size_t n, cap;
} Made;

static int made_add(Made *m, const char *rel) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 16;
        const char **g = realloc(m->names, cap * sizeof *g);
        if (!g) return 0;
        m->names = g;
        char (*b)[512] = realloc(m->buf, cap * sizeof *b);
        if (!b) return 0;
        m->buf = b;
        m->cap = cap;
    }
    snprintf(m->buf[m->n], sizeof m->buf[0], "%s", rel);
    m->n++;
    for (size_t i = 0; i < m->n; i++) m->names[i] = m->buf[i];   // buf may have moved
    return 1;
}

// Every plot; the first gnuplot failure stops the plotting and is returned (report.md is still
// written by the caller). *note_out receives why plots are missing, when they are.
static int make_plots(const ReportOptions *o, const Table *runs, const Table *profiles,
                      const RunSummary *sum, size_t nsum, const Curve *cur, size_t ncur, Made *made,
                      char *note_buf, size_t note_len, const char **plot_note, char *err, size_t errlen) {
    char gnuplot[4096], perr[4096];
    if (plot_find_gnuplot(gnuplot, sizeof gnuplot, perr, sizeof perr) != MB_OK) {
        if (o->note)
            fprintf(o->note, "maelre-bench: warning: %s; tables and report.md written without plots\n", perr);
        snprintf(note_buf, note_len, "%s.", perr);
        *plot_note = note_buf;
        return MB_OK;
    }
    int rc = MB_OK;
    char rel[512];
    for (size_t i = 0; i < nsum && !rc; i++) {
        if (i > 0 && !strcmp(sum[i].task, sum[i - 1].task)) continue;
        int ok = 0;
        rc = plot_acc_vs_flops(gnuplot, o->out, sum[i].task, sum, nsum, &ok, perr, sizeof perr);
        plot_acc_name(rel, sizeof rel, sum[i].task);
        if (ok && !made_add(made, rel)) rc = MB_ERR_NOMEM;
        double majority = report_task_majority(runs, sum[i].task);
        for (int val = 0; val < 2 && !rc; val++) {
            ok = 0;
            rc = plot_curves(gnuplot, o->out, sum[i].task, cur, ncur, majority, val, &ok, perr, sizeof perr);
            plot_curve_name(rel, sizeof rel, sum[i].task, val);
            if (ok && !made_add(made, rel)) rc = MB_ERR_NOMEM;
        }
    }
    for (int mem = 0; mem < 2 && profiles && !rc; mem++) {
        int ok = 0;
        rc = plot_scaling(gnuplot, o->out, profiles, mem, &ok, perr, sizeof perr);
        if (ok && !made_add(made, mem ? PLOT_MEMORY_PNG : PLOT_FLOPS_PNG)) rc = MB_ERR_NOMEM;
    }
    if (rc == MB_ERR_NOMEM) snprintf(perr, sizeof perr, "out of memory making plots");
    if (rc) {
        snprintf(note_buf, note_len, "%s.", perr);
        *plot_note = note_buf;
        mb_fail(err, errlen, rc, "%s", perr);   // the caller reports it, after report.md
    }
    return rc;
}

int report_build(const ReportOptions *o, ReportOutcome *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < o->n_inputs; i++)
        if (same_dir(o->inputs[i], o->out))
            return mb_fail(err, errlen, MB_ERR_USAGE, "report: --out must be a new folder, not one of "
                                                      "the inputs (its results would be overwritten)");
    ReportInputs ins = {0};
    Table *runs = NULL, *profiles = NULL;
    RunSummary *sum = NULL;
    Curve *cur = NULL;
    PairedResults paired = {0};
    size_t nsum = 0, ncur = 0, runs_replaced = 0, profiles_replaced = 0;
    const char **run_src = NULL, **prof_src = NULL;
    size_t n_run_src = 0, n_prof_src = 0;
    Made made = {0};
    char *md = NULL;
    const char *plot_note = NULL;
    char plot_note_buf[4200];
    int rc = MB_OK;

    // 1. Read and check everything; nothing is written before this passes.
    for (size_t i = 0; i < o->n_inputs && !rc; i++) rc = report_load_input(&ins, o->inputs[i], err, errlen);
    if (!rc) rc = report_merge(&ins, REPORT_RUNS, o->note, &runs, &runs_replaced, err, errlen);
    if (!rc) rc = report_merge(&ins, REPORT_PROFILE, o->note, &profiles, &profiles_replaced, err, errlen);
    if (!rc && !runs && !profiles)
        rc = mb_fail(err, errlen, MB_ERR_DATA, "the inputs hold no rows (header-only files?)");
    if (!rc && runs) rc = report_summarize(runs, &sum, &nsum, err, errlen);
    if (!rc && runs)
        rc = report_compare(runs, o->resamples ? o->resamples : STATS_BOOTSTRAP_RESAMPLES, &paired, err, errlen);
    if (!rc && runs) rc = report_load_curves(runs, &cur, &ncur, err, errlen);
    run_src = calloc(ins.n + 1, sizeof *run_src);
    prof_src = calloc(ins.n + 1, sizeof *prof_src);
    if (!rc && (!run_src || !prof_src)) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ins.n && !rc; i++) {
        if (ins.in[i].kind == REPORT_RUNS) run_src[n_run_src++] = ins.in[i].path;
        else prof_src[n_prof_src++] = ins.in[i].path;
    }

    // 2. Tables.
    char path[4400];
    if (!rc) rc = mkdirs(o->out, err, errlen);
    if (!rc && runs) {
        snprintf(path, sizeof path, "%s/results.csv", o->out);
        rc = table_write_csv(runs, path, err, errlen);
        snprintf(path, sizeof path, "%s/results.json", o->out);
        if (!rc) rc = table_write_json(runs, path, err, errlen);
    }
    if (!rc && profiles) {
        snprintf(path, sizeof path, "%s/profile.csv", o->out);
        rc = table_write_csv(profiles, path, err, errlen);
        snprintf(path, sizeof path, "%s/profile.json", o->out);
        if (!rc) rc = table_write_json(profiles, path, err, errlen);
    }

    // 3. Plots (a failure is remembered; the report is still written).
    int plot_rc = MB_OK;
    char plot_err[4096] = "";
    if (!rc && o->plots)
        plot_rc = make_plots(o, runs, profiles, sum, nsum, cur, ncur, &made, plot_note_buf,
                             sizeof plot_note_buf, &plot_note, plot_err, sizeof plot_err);
    else if (!rc)
        plot_note = "--no-plots was given.";

    // 4. report.md
    if (!rc) {
        MdReportInfo info = {run_src, n_run_src, prof_src, n_prof_src, runs_replaced, profiles_replaced,
                             made.names, made.n, plot_note, runs ? &paired : NULL};
        rc = md_report(runs, profiles, &info, &md, err, errlen);
        snprintf(path, sizeof path, "%s/report.md", o->out);
        if (!rc) rc = write_file_atomic(path, md, strlen(md), err, errlen);
    }
    if (!rc) {
        res->written = 1;
        res->run_rows = runs ? table_rows(runs) : 0;
        res->profile_rows = profiles ? table_rows(profiles) : 0;
        for (size_t i = 0; i < nsum; i++) res->tasks += i == 0 || strcmp(sum[i].task, sum[i - 1].task);
        res->plots = made.n;
        res->comparisons = paired.n;
        if (plot_rc) {
            rc = MB_ERR_INTERNAL;
            snprintf(err, errlen, "%s", plot_err);
        }
    }
    free(md);
    free(made.names);
    free(made.buf);
    free(run_src);
    free(prof_src);
    report_paired_free(&paired);
    report_curves_free(cur, ncur);
    free(sum);
    table_free(runs);
    table_free(profiles);
    report_inputs_free(&ins);
    return rc;
}
