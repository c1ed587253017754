// Learning curves from the runs' curves files (results/report.h).
#include "results/report.h"

#include <math.h>
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


static void curve_free(Curve *c) {
    free(c->step);
    free(c->samples);
    free(c->wall_s);
    free(c->lr);
    free(c->train_loss);
    free(c->val_acc);
    free(c->path);
    free(c->label);
}

void report_curves_free(Curve *c, size_t n) {
    for (size_t i = 0; c && i < n; i++) curve_free(&c[i]);
    free(c);
}

static int cmp_curve(const void *a, const void *b) {
    const Curve *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    if (c) return c;
    int rx = report_method_rank(x->method), ry = report_method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    if ((c = strcmp(x->method, y->method))) return c;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

// Reads one curves file into c (columns step, wall_s, train_loss, val_accuracy required;
// samples and lr optional). Empty cells are NAN; text is an error.
static int read_curve(const char *path, Curve *c, char *err, size_t errlen) {
    Table *t = NULL;
    int rc = table_read_csv(&t, path, err, errlen);
    if (rc) return rc;
    static const char *const need[] = {"step", "wall_s", "train_loss", "val_accuracy"};
    for (size_t k = 0; k < NCOLS(need); k++) {
        if (!has_column(t, need[k])) {
            table_free(t);
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:1: no '%s' column (expected step,samples,wall_s,lr,train_loss,val_accuracy)",
                           path, need[k]);
        }
    }
    size_t n = table_rows(t), m = n ? n : 1;
    c->n = n;
    double **cols[] = {&c->step, &c->samples, &c->wall_s, &c->lr, &c->train_loss, &c->val_acc};
    static const char *const names[] = {"step", "samples", "wall_s", "lr", "train_loss", "val_accuracy"};
    for (size_t k = 0; k < 6; k++) {
        *cols[k] = malloc(m * sizeof **cols[k]);
        if (!*cols[k]) { table_free(t); return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); }
    }
    for (size_t r = 0; r < n; r++) {
        for (size_t k = 0; k < 6; k++) {
            const char *s = table_get_str(t, r, names[k]);
            if (s) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: %s is '%.60s', not a number", path,
                             table_row_line(t, r), names[k], s);
                table_free(t);
                return rc;
            }
            (*cols[k])[r] = get(t, r, names[k]);
        }
        if (!isfinite(c->step[r]) || !isfinite(c->wall_s[r])) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: step and wall_s are required", path,
                         table_row_line(t, r));
            table_free(t);
            return rc;
        }
        if (isfinite(c->val_acc[r]) && !(c->val_acc[r] >= 0 && c->val_acc[r] <= 1)) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: val_accuracy %g is not a fraction in [0, 1]",
                         path, table_row_line(t, r), c->val_acc[r]);
            table_free(t);
            return rc;
        }
    }
    table_free(t);
    return MB_OK;
}

int report_load_curves(const Table *runs, Curve **out, size_t *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    size_t rows = table_rows(runs), k = 0;
    Curve *c = calloc(rows ? rows : 1, sizeof *c);
    if (!c) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    char path[4200];
    for (size_t r = 0; r < rows; r++) {
        if (!report_run_file(path, sizeof path, runs, r, "curves") || !is_file(path)) continue;
        Curve *x = &c[k++];
        x->task = table_get_str(runs, r, "task");
        x->method = table_get_str(runs, r, "method");
        x->seed = get(runs, r, "seed");
        x->path = strdup(path);
        const char *grid = table_get_str(runs, r, "grid");   // a sweep's grid point: its own line
        int ok = x->path != NULL;
        if (ok && grid && *grid) {
            if (asprintf(&x->label, "%s (%s)", x->method, grid) < 0) { x->label = NULL; ok = 0; }
            else x->method = x->label;
        }
        int rc = ok ? read_curve(path, x, err, errlen)
                         : mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        if (rc) { report_curves_free(c, k); return rc; }
    }
    if (k) qsort(c, k, sizeof *c, cmp_curve);
    *out = c;
    *n = k;
    return MB_OK;
}
