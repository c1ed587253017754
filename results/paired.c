// The paired comparison of every method with vanilla from the runs' predictions files
// (results/report.h, SPEC §11). Decisions the header leaves open, made here:
// - Comparisons are per seed (the two runs with the same seed), plus one pooled row per
//   (task, method) when two or more seeds pair: the bootstrap then resamples test samples and
//   keeps each drawn sample's pairs from every seed together. McNemar's test is per seed only
//   (the pooled pairs of one sample are not independent).
// - Predictions pair on the test sample index; their labels must agree, else the pair is noted
//   and skipped (different test splits, e.g. another --test-limit). A file that disagrees with
//   its own results row (count, accuracy) is bad input: it belongs to another run.
#include "results/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"

#define NCOLS(a) (sizeof a / sizeof a[0])

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_column(const Table *t, const char *name) {
    for (size_t i = 0; i < table_columns(t); i++)
        if (!strcmp(table_column(t, i), name)) return 1;
    return 0;
}

static double get(const Table *t, size_t r, const char *col) {
    double v;
    return table_get_num(t, r, col, &v) == MB_OK ? v : NAN;
}

static const char *row_grid(const Table *t, size_t r) {
    const char *g = table_get_str(t, r, "grid");
    return g && *g ? g : NULL;
}

// Row r is a run of (task, method) at a sweep's grid point (NULL: none).
static int row_is(const Table *t, size_t r, const char *task, const char *method, const char *grid) {
    const char *ta = table_get_str(t, r, "task"), *me = table_get_str(t, r, "method");
    const char *g = row_grid(t, r);
    return ta && me && !strcmp(ta, task) && (!method || !strcmp(me, method)) &&
           !strcmp(g ? g : "", grid ? grid : "");
}

static int same_num(const Table *a, size_t ra, const Table *b, size_t rb, const char *col) {
    double x, y;
    int hx = table_get_num(a, ra, col, &x) == MB_OK, hy = table_get_num(b, rb, col, &y) == MB_OK;
    return hx == hy && (!hx || x == y);
}


typedef struct {
    size_t n;
    int *label, *pred;       // pred_best
    char path[4200];
} Preds;

static void preds_free(Preds *p) {
    free(p->label);
    free(p->pred);
    p->label = p->pred = NULL;
}

// An integer-valued number cell at (r, col) -> 1 and *out.
static int int_cell(const Table *t, size_t r, const char *col, int *out) {
    double v;
    if (table_get_num(t, r, col, &v) != MB_OK || v != floor(v) || fabs(v) > 1e9) return 0;
    *out = (int)v;
    return 1;
}

// Reads a predictions file and checks it against its results row (sample count, accuracy).
// MB_OK; MB_ERR_DATA (malformed or inconsistent: file and line named); *present = 0 when the
// file does not exist (not an error).
static int read_preds(const Table *runs, size_t row, Preds *p, int *present, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    *present = 0;
    if (!report_run_file(p->path, sizeof p->path, runs, row, "predictions") || !is_file(p->path))
        return MB_OK;
    *present = 1;
    Table *t = NULL;
    int rc = table_read_csv(&t, p->path, err, errlen);
    if (rc) return rc;
    static const char *const need[] = {"index", "label", "pred_best"};
    for (size_t k = 0; k < NCOLS(need); k++) {
        if (!has_column(t, need[k])) {
            table_free(t);
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:1: no '%s' column (expected index,label,pred_best,pred_last)",
                           p->path, need[k]);
        }
    }
    p->n = table_rows(t);
    p->label = malloc((p->n ? p->n : 1) * sizeof *p->label);
    p->pred = malloc((p->n ? p->n : 1) * sizeof *p->pred);
    if (!p->label || !p->pred) {
        table_free(t);
        preds_free(p);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", p->path);
    }
    size_t correct = 0;
    for (size_t i = 0; i < p->n; i++) {
        int idx;
        size_t line = table_row_line(t, i);
        if (!int_cell(t, i, "index", &idx) || idx < 0 || (size_t)idx != i) {
            table_free(t);
            preds_free(p);
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: index should be %zu (the test split in order)", p->path, line, i);
        }
        if (!int_cell(t, i, "label", &p->label[i]) || !int_cell(t, i, "pred_best", &p->pred[i]) ||
            p->label[i] < 0 || p->pred[i] < 0) {
            table_free(t);
            preds_free(p);
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: label and pred_best must be class numbers (integers >= 0)",
                           p->path, line);
        }
        correct += p->label[i] == p->pred[i];
    }
    table_free(t);
    double n_row, acc_row;
    if (table_get_num(runs, row, "test_samples", &n_row) == MB_OK && n_row != (double)p->n) {
        preds_free(p);
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s: %zu predictions, but its results row has test_samples %.0f "
                       "(a predictions file from another run?)", p->path, p->n, n_row);
    }
    if (!p->n) {
        preds_free(p);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: no predictions (header only)", p->path);
    }
    double acc = (double)correct / (double)p->n;
    if (table_get_num(runs, row, "accuracy", &acc_row) == MB_OK && fabs(acc - acc_row) > 0.5 / (double)p->n) {
        preds_free(p);
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s: pred_best gives accuracy %.6f, but its results row says %.6f "
                       "(a predictions file from another run?)", p->path, acc, acc_row);
    }
    return MB_OK;
}

typedef struct {
    char **s;
    size_t n, cap;
    int oom;
} Notes;

__attribute__((format(printf, 2, 3))) static void note_add(Notes *nt, const char *fmt, ...) {
    if (nt->oom) return;
    if (nt->n == nt->cap) {
        size_t cap = nt->cap ? 2 * nt->cap : 8;
        char **g = realloc(nt->s, cap * sizeof *g);
        if (!g) { nt->oom = 1; return; }
        nt->s = g;
        nt->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) { nt->oom = 1; s = NULL; }
    va_end(ap);
    if (s) nt->s[nt->n++] = s;
}

static int cmp_paired(const void *a, const void *b) {
    const PairedRow *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    if (c) return c;
    int rx = report_method_rank(x->method), ry = report_method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    if ((c = strcmp(x->method, y->method))) return c;
    if ((c = strcmp(x->grid ? x->grid : "", y->grid ? y->grid : ""))) return c;
    if (x->pooled != y->pooled) return x->pooled - y->pooled;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

static int push_row(PairedResults *out, size_t *cap, const PairedRow *r) {
    if (out->n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        PairedRow *g = realloc(out->rows, c * sizeof *g);
        if (!g) return 0;
        out->rows = g;
        *cap = c;
    }
    out->rows[out->n++] = *r;
    return 1;
}

// The comparisons of one (task, method) with vanilla: rows[] are the run rows of the method,
// van[] the vanilla rows of the same seed (SIZE_MAX when none).
static int compare_method(const Table *runs, const size_t *rows, const size_t *van, size_t k,
                          size_t resamples, PairedResults *out, size_t *cap, Notes *nt, char *err,
                          size_t errlen) {
    unsigned char *pa = NULL, *pv = NULL;     // pooled correctness, seed-major
    int *labels0 = NULL;
    size_t pooled = 0, n0 = 0;
    double sum_acc = 0, sum_van = 0;
    size_t sum_b = 0, sum_c = 0;
    int poolable = 1, rc = MB_OK;
    const char *task = table_get_str(runs, rows[0], "task"), *method = table_get_str(runs, rows[0], "method");
    const char *grid = row_grid(runs, rows[0]);
    for (size_t s = 0; s < k && !rc; s++) {
        double seed = get(runs, rows[s], "seed");
        if (van[s] == (size_t)-1) {
            note_add(nt, "`%s` `%s` seed %.0f: no vanilla run with this seed to pair with", task,
                     method, seed);
            continue;
        }
        Preds a, v;
        int ha, hv;
        if ((rc = read_preds(runs, rows[s], &a, &ha, err, errlen))) break;
        if ((rc = read_preds(runs, van[s], &v, &hv, err, errlen))) { preds_free(&a); break; }
        if (!ha || !hv) {
            const char *miss = !ha ? a.path : v.path;
            note_add(nt, "`%s` `%s` seed %.0f: no predictions file for %s (%s%s)", task, method,
                     seed, !ha ? method : "vanilla", *miss ? miss : "the row has no seed or run folder",
                     *miss ? "; runs before predictions were saved have none" : "");
            preds_free(&a);
            preds_free(&v);
            continue;
        }
        size_t mismatch = (size_t)-1;
        if (a.n == v.n)
            for (size_t i = 0; i < a.n && mismatch == (size_t)-1; i++)
                if (a.label[i] != v.label[i]) mismatch = i;
        if (a.n != v.n || mismatch != (size_t)-1) {
            if (a.n != v.n)
                note_add(nt, "`%s` `%s` seed %.0f: not paired, the test splits differ (%zu vs %zu "
                         "samples)", task, method, seed, a.n, v.n);
            else
                note_add(nt, "`%s` `%s` seed %.0f: not paired, the test splits differ (labels of "
                         "sample %zu differ)", task, method, seed, mismatch);
            preds_free(&a);
            preds_free(&v);
            continue;
        }
        size_t n = a.n, b = 0, c = 0, ca = 0, cv = 0;
        unsigned char *ok_a = malloc(n), *ok_v = malloc(n);
        if (!ok_a || !ok_v) {
            free(ok_a);
            free(ok_v);
            preds_free(&a);
            preds_free(&v);
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory comparing predictions");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            ok_a[i] = a.pred[i] == a.label[i];
            ok_v[i] = v.pred[i] == v.label[i];
            ca += ok_a[i];
            cv += ok_v[i];
            b += ok_a[i] && !ok_v[i];
            c += !ok_a[i] && ok_v[i];
        }
        PairedRow pr = {.task = task, .method = method, .grid = grid, .seed = seed, .pooled = 0, .seeds = 1,
                        .n = n, .acc = (double)ca / (double)n, .acc_vanilla = (double)cv / (double)n,
                        .b = b, .c = c, .p_mcnemar = stats_mcnemar_exact(b, c)};
        rc = stats_paired_bootstrap(ok_a, ok_v, n, 1, resamples, REPORT_BOOTSTRAP_SEED, 0.95, &pr.ci,
                                    err, errlen);
        if (!rc && !push_row(out, cap, &pr)) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        // Pool: only seeds on the same test split as the first paired one (count and labels).
        if (!rc && poolable && pooled && (n != n0 || memcmp(labels0, a.label, n * sizeof *labels0)))
            poolable = 0;
        if (!rc && poolable) {
            if (!pooled && (labels0 = malloc(n * sizeof *labels0))) {
                n0 = n;
                memcpy(labels0, a.label, n * sizeof *labels0);
            }
            unsigned char *ga = labels0 ? realloc(pa, (pooled + 1) * n) : NULL;
            if (ga) pa = ga;
            unsigned char *gv = ga ? realloc(pv, (pooled + 1) * n) : NULL;
            if (gv) pv = gv;
            if (!gv) {
                rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory comparing predictions");
            } else {
                memcpy(pa + pooled * n, ok_a, n);
                memcpy(pv + pooled * n, ok_v, n);
                pooled++;
                sum_acc += pr.acc;
                sum_van += pr.acc_vanilla;
                sum_b += b;
                sum_c += c;
            }
        }
        free(ok_a);
        free(ok_v);
        preds_free(&a);
        preds_free(&v);
    }
    if (!rc && !poolable)
        note_add(nt, "`%s` `%s`: seeds not pooled, their test splits differ", task, method);
    if (!rc && pooled >= 2 && poolable) {
        PairedRow pr = {.task = task, .method = method, .grid = grid, .seed = NAN, .pooled = 1, .seeds = pooled,
                        .n = n0, .acc = sum_acc / (double)pooled, .acc_vanilla = sum_van / (double)pooled,
                        .b = sum_b, .c = sum_c, .p_mcnemar = NAN};
        rc = stats_paired_bootstrap(pa, pv, n0, pooled, resamples, REPORT_BOOTSTRAP_SEED, 0.95,
                                    &pr.ci, err, errlen);
        if (!rc && !push_row(out, cap, &pr)) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    }
    free(pa);
    free(pv);
    free(labels0);
    return rc;
}

int report_compare(const Table *runs, size_t resamples, PairedResults *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t rows = table_rows(runs), cap = 0;
    size_t *mine = malloc((rows ? rows : 1) * sizeof *mine), *van = malloc((rows ? rows : 1) * sizeof *van);
    unsigned char *done = calloc(rows ? rows : 1, 1);
    Notes nt = {0};
    int rc = mine && van && done ? MB_OK : mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t r = 0; r < rows && !rc; r++) {
        const char *task = table_get_str(runs, r, "task"), *method = table_get_str(runs, r, "method");
        if (done[r] || !task || !method || !strcmp(method, "vanilla")) continue;
        size_t k = 0;
        const char *grid = row_grid(runs, r);   // grid points pair with vanilla at the same point
        for (size_t q = r; q < rows; q++) {
            if (done[q] || !row_is(runs, q, task, method, grid)) continue;
            done[q] = 1;
            mine[k] = q;
            van[k] = (size_t)-1;
            for (size_t w = 0; w < rows; w++)
                if (row_is(runs, w, task, "vanilla", grid) && same_num(runs, w, runs, q, "seed")) van[k] = w;
            k++;
        }
        int any_van = 0;
        for (size_t w = 0; w < rows; w++) any_van |= row_is(runs, w, task, "vanilla", grid);
        if (!any_van) continue;   // no vanilla on this task: nothing to compare with (the table says so)
        rc = compare_method(runs, mine, van, k, resamples, out, &cap, &nt, err, errlen);
    }
    if (!rc && nt.oom) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    free(mine);
    free(van);
    free(done);
    out->notes = nt.s;
    out->n_notes = nt.n;
    if (rc) { report_paired_free(out); return rc; }
    if (out->n) qsort(out->rows, out->n, sizeof *out->rows, cmp_paired);
    return MB_OK;
}

void report_paired_free(PairedResults *p) {
    for (size_t i = 0; i < p->n_notes; i++) free(p->notes[i]);
    free(p->notes);
    free(p->rows);
    memset(p, 0, sizeof *p);
}
