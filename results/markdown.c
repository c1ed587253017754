// report.md: per-task tables, profile tables per sequence length, conventions (results/markdown.h).
#include "results/markdown.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "results/plot.h"

// ---------------------------------------------------------------------------------------------
// Text buffer

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} Md;

__attribute__((format(printf, 2, 3))) static void md_printf(Md *m, const char *fmt, ...) {
    if (m->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) { m->oom = 1; return; }
    if (m->n + (size_t)need + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 8192;
        while (cap < m->n + (size_t)need + 1) cap *= 2;
        char *p = realloc(m->p, cap);
        if (!p) { m->oom = 1; return; }
        m->p = p;
        m->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(m->p + m->n, m->cap - m->n, fmt, ap);
    va_end(ap);
    m->n += (size_t)need;
}

// One table cell: '|' escaped, newlines flattened, so a cell cannot break the table.
static void md_cell(Md *m, const char *s) {
    md_printf(m, " ");
    for (const char *q = s; *q; q++) {
        if (*q == '|') md_printf(m, "\\|");
        else if (*q == '\n' || *q == '\r') md_printf(m, " ");
        else md_printf(m, "%c", *q);
    }
    md_printf(m, " |");
}

static void md_header(Md *m, const char *const *cols, size_t n) {
    md_printf(m, "|");
    for (size_t i = 0; i < n; i++) md_cell(m, cols[i]);
    md_printf(m, "\n|");
    for (size_t i = 0; i < n; i++) md_printf(m, i == 0 ? " :--- |" : " ---: |");
    md_printf(m, "\n");
}

// ---------------------------------------------------------------------------------------------
// Number formatting

static const char dash[] = "\xE2\x80\x94";  // em dash: no value

void md_fmt_si(char *buf, size_t n, double v, const char *unit) {
    if (!isfinite(v)) { snprintf(buf, n, "%s", dash); return; }
    static const char *pre[] = {"", "k", "M", "G", "T", "P", "E"};
    double a = fabs(v);
    int k = 0;
    while (a >= 999.5 && k < 6) { a /= 1000; v /= 1000; k++; }
    snprintf(buf, n, "%.*f %s%s", a >= 99.95 || (k == 0 && a == floor(a)) ? 0 : a >= 9.995 ? 1 : 2, v,
             pre[k], unit);
}

void md_fmt_bytes(char *buf, size_t n, double bytes) {
    if (!isfinite(bytes)) { snprintf(buf, n, "%s", dash); return; }
    static const char *pre[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double a = bytes;
    int k = 0;
    while (fabs(a) >= 1023.5 && k < 5) { a /= 1024; k++; }
    snprintf(buf, n, "%.*f %s", k == 0 || fabs(a) >= 99.95 ? 0 : fabs(a) >= 9.995 ? 1 : 2, a, pre[k]);
}

static void fmt_num3(char *buf, size_t n, double v) {
    if (!isfinite(v)) { snprintf(buf, n, "%s", dash); return; }
    double a = fabs(v);
    if (a >= 1000 || (v == floor(v) && a < 1e15)) snprintf(buf, n, "%.0f", v);   // counts stay counts
    else snprintf(buf, n, "%.*f", a >= 99.95 ? 0 : a >= 9.995 ? 1 : a >= 0.9995 ? 2 : 3, v);
}

static void fmt_pct_of(char *buf, size_t n, double v, double base) {
    if (!isfinite(v) || !isfinite(base) || base <= 0) { snprintf(buf, n, "%s", dash); return; }
    double p = 100.0 * v / base;
    snprintf(buf, n, "%.*f%%", p >= 99.95 ? 0 : p >= 9.995 ? 1 : 2, p);
}

static void fmt_acc(char *buf, size_t n, double acc, double err) {
    if (!isfinite(acc)) { snprintf(buf, n, "%s", dash); return; }
    if (isfinite(err)) snprintf(buf, n, "%.2f \xC2\xB1 %.2f", 100 * acc, 100 * err);
    else snprintf(buf, n, "%.2f", 100 * acc);
}

static double get(const Table *t, size_t r, const char *col) {
    double v;
    return table_get_num(t, r, col, &v) == MB_OK ? v : NAN;
}

// ---------------------------------------------------------------------------------------------
// Report

static int has_plot(const MdReportInfo *info, const char *rel) {
    for (size_t i = 0; info && i < info->n_plots; i++)
        if (!strcmp(info->plots[i], rel)) return 1;
    return 0;
}

// "4096" or "1000 / 2000" when the methods of a task differ.
static void distinct_values(char *buf, size_t n, const RunSummary *s, size_t k, size_t off) {
    double seen[16];
    size_t ns = 0;
    buf[0] = 0;
    for (size_t i = 0; i < k; i++) {
        double v = *(const double *)((const char *)&s[i] + off);
        if (!isfinite(v)) continue;
        size_t j = 0;
        while (j < ns && seen[j] != v) j++;
        if (j < ns || ns == 16) continue;
        seen[ns++] = v;
        char one[64];
        fmt_num3(one, sizeof one, v);
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%s", ns > 1 ? " / " : "", one);
    }
    if (!ns) snprintf(buf, n, "%s", dash);
}

// Accuracy over seeds: one run -> "acc ± binomial stderr"; several -> "mean ± sample std".
static void fmt_acc_seeds(char *buf, size_t n, const RunSummary *x) {
    fmt_acc(buf, n, x->acc, x->runs > 1 ? x->acc_std : x->acc_err);
}

static void fmt_pct(char *buf, size_t n, double v) {
    if (!isfinite(v)) snprintf(buf, n, "%s", dash);
    else snprintf(buf, n, "%.2f", 100 * v);
}

static void fmt_pvalue(char *buf, size_t n, double p) {
    if (!isfinite(p)) snprintf(buf, n, "%s", dash);
    else if (p < 1e-4) snprintf(buf, n, "< 0.0001");
    else snprintf(buf, n, "%.3g", p);
}

// A difference of fractions in percentage points, signed: "+7.70", "-0.35".
static void fmt_points(char *buf, size_t n, double d) {
    if (!isfinite(d)) snprintf(buf, n, "%s", dash);
    else snprintf(buf, n, "%+.2f", 100 * d == 0 ? 0.0 : 100 * d);
}

// Row r is a run of (task, method, grid point); grid NULL: rows without a sweep grid point.
static int row_of(const Table *t, size_t r, const char *task, const char *method, const char *grid) {
    const char *ta = table_get_str(t, r, "task"), *me = table_get_str(t, r, "method");
    const char *g = table_get_str(t, r, "grid");
    return ta && me && !strcmp(ta, task) && !strcmp(me, method) &&
           !strcmp(g ? g : "", grid ? grid : "");
}

// "1: 61.40, 2: 63.00" over the runs of (task, method, grid point) in table order.
static void per_seed(char *buf, size_t n, const Table *runs, const char *task, const char *method,
                     const char *grid) {
    buf[0] = 0;
    size_t used = 0, k = 0;
    for (size_t r = 0; runs && r < table_rows(runs); r++) {
        if (!row_of(runs, r, task, method, grid)) continue;
        double seed = get(runs, r, "seed"), acc = get(runs, r, "accuracy");
        char sd[32], ac[32];
        if (isfinite(seed)) snprintf(sd, sizeof sd, "%.0f", seed);
        else snprintf(sd, sizeof sd, "?");
        fmt_pct(ac, sizeof ac, acc);
        int w = snprintf(buf + used, n - used, "%s%s: %s", k ? ", " : "", sd, ac);
        if (w < 0 || (size_t)w >= n - used) {   // too many seeds for one cell: end with "..."
            if (n > 4) snprintf(buf + (used < n - 4 ? used : n - 4), 4, "...");
            return;
        }
        used += (size_t)w;
        k++;
    }
    if (!k) snprintf(buf, n, "%s", dash);
}

static void md_task_name(Md *m, const char *task) {
    for (const char *q = task; *q; q++)   // one line, no stray backtick closing the code span
        md_printf(m, "%c", *q == '`' || (unsigned char)*q < ' ' ? ' ' : *q);
}

static void paired_section(Md *m, const char *task, const PairedResults *p) {
    size_t first = 0, k = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        if (strcmp(p->rows[i].task, task)) continue;
        if (!k) first = i;
        k++;
    }
    if (!k) return;
    md_printf(m, "Paired comparison with `vanilla` on the same test samples (see Conventions): "
              "b = samples only the method gets right, c = samples only vanilla gets right.\n\n");
    static const char *cols[] = {"method", "seed", "test samples", "accuracy (%)", "vanilla (%)",
                                 "difference (points)", "95% bootstrap interval (points)",
                                 "b: only method right", "c: only vanilla right", "McNemar p"};
    md_header(m, cols, sizeof cols / sizeof cols[0]);
    for (size_t i = first; i < first + k; i++) {
        const PairedRow *r = &p->rows[i];
        char cell[10][96];
        snprintf(cell[0], 96, r->grid ? "%s (%.80s)" : "%s", r->method, r->grid);
        if (r->pooled) snprintf(cell[1], 96, "all (%zu seeds)", r->seeds);
        else snprintf(cell[1], 96, "%.0f", r->seed);
        snprintf(cell[2], 96, "%zu", r->n);
        fmt_pct(cell[3], 96, r->acc);
        fmt_pct(cell[4], 96, r->acc_vanilla);
        fmt_points(cell[5], 96, r->ci.diff);
        char lo[40], hi[40];
        fmt_points(lo, sizeof lo, r->ci.lo);
        fmt_points(hi, sizeof hi, r->ci.hi);
        snprintf(cell[6], 96, "[%s, %s]", lo, hi);
        snprintf(cell[7], 96, "%zu", r->b);
        snprintf(cell[8], 96, "%zu", r->c);
        fmt_pvalue(cell[9], 96, r->p_mcnemar);
        md_printf(m, "|");
        for (int j = 0; j < 10; j++) md_cell(m, cell[j]);
        md_printf(m, "\n");
    }
    md_printf(m, "\n");
}

static void task_section(Md *m, const RunSummary *s, size_t k, const Table *runs,
                         const MdReportInfo *info) {
    const char *task = s[0].task;
    md_printf(m, "## Task `");
    md_task_name(m, task);
    md_printf(m, "`\n\n");
    char a[64], b[64], c[64], d[64], e[64];
    distinct_values(a, sizeof a, s, k, offsetof(RunSummary, max_len));
    distinct_values(b, sizeof b, s, k, offsetof(RunSummary, mean_tokens));
    distinct_values(c, sizeof c, s, k, offsetof(RunSummary, test_samples));
    distinct_values(d, sizeof d, s, k, offsetof(RunSummary, batch));
    distinct_values(e, sizeof e, s, k, offsetof(RunSummary, threads));
    md_printf(m, "max length %s tokens; mean tokens per sample %s; test samples %s; batch %s; "
              "threads %s.\n\n", a, b, c, d, e);
    const RunSummary *van = NULL;
    for (size_t i = 0; i < k; i++)
        if (!strcmp(s[i].method, "vanilla") && !van) van = &s[i];   // with grid points: the first
    const char *cols[] = {"method", "seeds", "accuracy (%)", "steps", "train time",
                          "inference FLOPs / sample", "FLOPs vs vanilla",
                          "peak memory (inference)", "memory vs vanilla",
                          "train samples/s", "inference samples/s", "attention blocks per sample"};
    md_header(m, cols, sizeof cols / sizeof cols[0]);
    // Chance first: the majority class (same test split for every method of the task).
    double majority = runs ? report_task_majority(runs, task) : NAN;
    if (isfinite(majority)) {
        md_printf(m, "| majority class | %s |", dash);
        char cell[32];
        fmt_pct(cell, sizeof cell, majority);
        md_cell(m, cell);
        for (int j = 3; j < 12; j++) md_cell(m, dash);
        md_printf(m, "\n");
    }
    for (size_t i = 0; i < k; i++) {
        const RunSummary *x = &s[i];
        char cell[12][96];
        snprintf(cell[0], 96, x->grid ? "%s (%.80s)" : "%s", x->method, x->grid);
        snprintf(cell[1], 96, "%zu", x->runs);
        fmt_acc_seeds(cell[2], 96, x);
        fmt_num3(cell[3], 96, x->steps);
        fmt_num3(cell[4], 64, x->train_seconds);
        if (isfinite(x->train_seconds)) strcat(cell[4], " s");
        md_fmt_si(cell[5], 96, x->flops_infer, "FLOP");
        fmt_pct_of(cell[6], 96, x->flops_infer, van ? van->flops_infer : NAN);
        md_fmt_bytes(cell[7], 96, x->mem_infer);
        fmt_pct_of(cell[8], 96, x->mem_infer, van ? van->mem_infer : NAN);
        fmt_num3(cell[9], 96, x->train_sps);
        fmt_num3(cell[10], 96, x->infer_sps);
        // the kinds that ran, with their mean blocks per sample ("softmax 1.57, efficient 2.43")
        cell[11][0] = 0;
        for (int kd = 0; kd < ATTN_KIND_COUNT; kd++) {
            if (!isfinite(x->blocks[kd]) || x->blocks[kd] == 0) continue;
            char num[28];
            fmt_num3(num, sizeof num, x->blocks[kd]);
            size_t used = strlen(cell[11]);
            snprintf(cell[11] + used, 96 - used, "%s%s %s", used ? ", " : "", attn_kind_name((AttnKind)kd), num);
        }
        if (!cell[11][0]) snprintf(cell[11], 96, "%s", dash);
        md_printf(m, "|");
        for (int j = 0; j < 12; j++) md_cell(m, cell[j]);
        md_printf(m, "\n");
    }
    md_printf(m, "\n");
    if (!van) md_printf(m, "No `vanilla` run for this task, so there are no ratios against it.\n\n");
    char rel[512];
    plot_acc_name(rel, sizeof rel, task);
    if (has_plot(info, rel))
        md_printf(m, "![Accuracy against inference FLOPs per sample, %s](%s)\n\n", task, rel);

    // Seeds and model selection: when there are several seeds or the SPEC §11 columns.
    int sel = 0;
    for (size_t i = 0; i < k; i++)
        sel |= s[i].runs > 1 || isfinite(s[i].acc_last) || isfinite(s[i].val_acc) || isfinite(s[i].best_step);
    if (sel) {
        md_printf(m, "Seeds and model selection: test accuracy of the best-validation weights (the "
                  "`accuracy` above) and of the last weights, mean \xC2\xB1 sample standard "
                  "deviation over seeds; best validation accuracy and its step, means over seeds.\n\n");
        static const char *scols[] = {"method", "seeds", "test accuracy, best-validation weights (%)",
                                      "test accuracy, last weights (%)", "validation accuracy (%)",
                                      "best step", "accuracy per seed (seed: %)"};
        md_header(m, scols, sizeof scols / sizeof scols[0]);
        for (size_t i = 0; i < k; i++) {
            const RunSummary *x = &s[i];
            char cell[7][256];
            snprintf(cell[0], 256, x->grid ? "%s (%.200s)" : "%s", x->method, x->grid);
            snprintf(cell[1], 256, "%zu", x->runs);
            fmt_acc(cell[2], 256, x->acc, x->acc_std);
            fmt_acc(cell[3], 256, x->acc_last, x->acc_last_std);
            fmt_pct(cell[4], 256, x->val_acc);
            fmt_num3(cell[5], 256, x->best_step);
            per_seed(cell[6], 256, runs, task, x->method, x->grid);
            md_printf(m, "|");
            for (int j = 0; j < 7; j++) md_cell(m, cell[j]);
            md_printf(m, "\n");
        }
        md_printf(m, "\n");
    }
    paired_section(m, task, info ? info->paired : NULL);
    for (int val = 0; val < 2; val++) {
        plot_curve_name(rel, sizeof rel, task, val);
        if (has_plot(info, rel))
            md_printf(m, "![%s, %s](%s)\n\n",
                      val ? "Validation accuracy against training wall time" : "Training loss against step",
                      task, rel);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t row;
    const char *method;
    double batch, threads;
} ProfRow;

static int cmp_profrow(const void *a, const void *b) {
    const ProfRow *x = a, *y = b;
    int rx = report_method_rank(x->method), ry = report_method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    int c = strcmp(x->method, y->method);
    if (c) return c;
    if (x->batch != y->batch) return x->batch < y->batch ? -1 : 1;
    if (x->threads != y->threads) return x->threads < y->threads ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int profile_section(Md *m, const Table *p, const MdReportInfo *info) {
    size_t rows = table_rows(p);
    double *lens = malloc((rows ? rows : 1) * sizeof *lens);
    ProfRow *pr = malloc((rows ? rows : 1) * sizeof *pr);
    if (!lens || !pr) { free(lens); free(pr); return MB_ERR_NOMEM; }
    size_t nl = 0;
    for (size_t r = 0; r < rows; r++) {
        double v = get(p, r, "seq_len");
        size_t j = 0;
        while (j < nl && lens[j] != v) j++;
        if (j == nl && isfinite(v)) lens[nl++] = v;
    }
    qsort(lens, nl, sizeof *lens, cmp_double);
    md_printf(m, "## Profile: cost against sequence length\n\n"
              "Random tokens, SPEC \xC2\xA7" "5 default model per method. FLOPs are per sample; "
              "peak memory covers one batch of the listed size (model, optimizer state when "
              "training, activations, workspace). Rows whose status is not `ok` did not run "
              "in full: `skipped` rows show the computed memory need, not a measurement.\n\n");
    if (has_plot(info, PLOT_FLOPS_PNG))
        md_printf(m, "![FLOPs per sample against sequence length](%s)\n\n", PLOT_FLOPS_PNG);
    if (has_plot(info, PLOT_MEMORY_PNG))
        md_printf(m, "![Peak memory against sequence length](%s)\n\n", PLOT_MEMORY_PNG);
    static const char *cols[] = {"method", "batch", "threads", "inference FLOPs / sample",
                                 "FLOPs vs vanilla", "training FLOPs / sample",
                                 "peak memory (inference)", "memory vs vanilla",
                                 "peak memory (training)", "inference ms / sample",
                                 "training ms / sample", "GFLOP/s (inference)", "status"};
    // with dense rows (profile --softmax-impl tiled,dense) a second memory ratio, against the
    // textbook vanilla, follows "memory vs vanilla"
    static const char *cols_dense[] = {"method", "batch", "threads", "inference FLOPs / sample",
                                       "FLOPs vs vanilla", "training FLOPs / sample",
                                       "peak memory (inference)", "memory vs vanilla",
                                       "memory vs vanilla-dense", "peak memory (training)",
                                       "inference ms / sample", "training ms / sample",
                                       "GFLOP/s (inference)", "status"};
    for (size_t li = 0; li < nl; li++) {
        size_t k = 0;
        int has_dense = 0;
        for (size_t r = 0; r < rows; r++) {
            if (get(p, r, "seq_len") != lens[li]) continue;
            const char *me = report_profile_series(p, r);
            pr[k++] = (ProfRow){r, me ? me : "?", get(p, r, "batch"), get(p, r, "threads")};
            has_dense |= me && !strcmp(me, "vanilla-dense");
        }
        qsort(pr, k, sizeof *pr, cmp_profrow);
        md_printf(m, "### Sequence length %.0f\n\n", lens[li]);
        if (has_dense) md_header(m, cols_dense, sizeof cols_dense / sizeof cols_dense[0]);
        else md_header(m, cols, sizeof cols / sizeof cols[0]);
        for (size_t i = 0; i < k; i++) {
            size_t r = pr[i].row;
            // vanilla (and vanilla-dense) at the same length and batch are the baselines
            double vf = NAN, vm = NAN, dm = NAN;
            for (size_t j = 0; j < k; j++) {
                int is_v = !strcmp(pr[j].method, "vanilla"), is_d = !strcmp(pr[j].method, "vanilla-dense");
                if ((!is_v && !is_d) || pr[j].batch != pr[i].batch) continue;
                const char *st = table_get_str(p, pr[j].row, "status");
                double mem = st && strcmp(st, "ok") && strcmp(st, "train-skipped")
                                 ? NAN : get(p, pr[j].row, "peak_mem_infer_bytes");
                if (is_d) { dm = mem; continue; }
                vf = get(p, pr[j].row, "flops_infer_per_sample");
                vm = mem;
            }
            const char *st = table_get_str(p, r, "status");
            int measured = !st || !strcmp(st, "ok") || !strcmp(st, "train-skipped");
            char cell[14][96];
            snprintf(cell[0], 96, "%s", pr[i].method);
            fmt_num3(cell[1], 96, pr[i].batch);
            fmt_num3(cell[2], 96, pr[i].threads);
            double fi = get(p, r, "flops_infer_per_sample");
            md_fmt_si(cell[3], 96, fi, "FLOP");
            fmt_pct_of(cell[4], 96, fi, vf);
            md_fmt_si(cell[5], 96, get(p, r, "flops_train_per_sample"), "FLOP");
            double mi = get(p, r, "peak_mem_infer_bytes"), mt = get(p, r, "peak_mem_train_bytes");
            md_fmt_bytes(cell[6], 96, mi);
            md_fmt_bytes(cell[8], 96, mt);
            if (!measured && isfinite(mi)) {
                size_t l = strlen(cell[6]);
                snprintf(cell[6] + l, 96 - l, " (need)");
            }
            if (!measured && isfinite(mt)) {
                size_t l = strlen(cell[8]);
                snprintf(cell[8] + l, 96 - l, " (need)");
            }
            fmt_pct_of(cell[7], 96, measured ? mi : NAN, vm);
            fmt_num3(cell[9], 96, get(p, r, "infer_ms_per_sample"));
            fmt_num3(cell[10], 96, get(p, r, "train_ms_per_sample"));
            fmt_num3(cell[11], 96, get(p, r, "gflops_infer"));
            snprintf(cell[12], 96, "%s", st ? st : dash);
            fmt_pct_of(cell[13], 96, measured ? mi : NAN, dm);
            md_printf(m, "|");
            for (int j = 0; j < 13; j++) {
                md_cell(m, cell[j]);
                if (j == 7 && has_dense) md_cell(m, cell[13]);
            }
            md_printf(m, "\n");
        }
        md_printf(m, "\n");
    }
    free(lens);
    free(pr);
    return MB_OK;
}

static void list_sources(Md *m, const char *what, const char *const *src, size_t n) {
    if (!n) return;
    md_printf(m, "%s, in command-line order:\n\n", what);
    for (size_t i = 0; i < n; i++) md_printf(m, "- `%s`\n", src[i]);
    md_printf(m, "\n");
}

int md_report(const Table *runs, const Table *profiles, const MdReportInfo *info, char **out,
              char *err, size_t errlen) {
    *out = NULL;
    Md m = {0};
    md_printf(&m, "# maelre-bench report\n\n");
    if (info) {
        list_sources(&m, "Run results merged from", info->run_sources, info->n_run_sources);
        list_sources(&m, "Profiles merged from", info->profile_sources, info->n_profile_sources);
        md_printf(&m, "When two inputs hold the same run (task, method, seed) or profile point "
                  "(method, sequence length, batch, threads), the one named later on the command "
                  "line wins (%zu run row%s and %zu profile row%s replaced). The merged rows are in "
                  "`results.csv`/`results.json` and `profile.csv`/`profile.json`, with a `source` "
                  "column naming the file each row came from.\n\n",
                  info->runs_replaced, info->runs_replaced == 1 ? "" : "s", info->profiles_replaced,
                  info->profiles_replaced == 1 ? "" : "s");
    }
    md_printf(&m, "## Conventions\n\n"
              "- **Accuracy** on the task's test split. Runs that record `accuracy_last` chose their "
              "weights on the validation split: `accuracy` is the test accuracy of the "
              "best-validation weights, `accuracy_last` that of the last weights (older runs: the "
              "last weights). One seed: \xC2\xB1 its binomial standard error sqrt(p(1-p)/n). Several "
              "seeds (the **seeds** column): their mean \xC2\xB1 the sample standard deviation over "
              "seeds (divisor n - 1), which shows how much training randomness (initialisation, "
              "data order, dropout) moves the result; plots draw mean \xC2\xB1 standard deviation / "
              "sqrt(seeds).\n"
              "- **Majority class**: the test accuracy of always predicting the class most frequent "
              "in the training split. A method near it has learned nothing the class balance does "
              "not give away.\n"
              "- **FLOPs** are analytic, counted from the actual shapes of each sample: one "
              "multiply-add = 2 FLOPs in every matrix product, 1 FLOP per element for element-wise "
              "work; per sample (MACs and training FLOPs are in the CSV).\n"
              "- **Peak memory** is the high-water mark of the bytes held through the project's own "
              "allocator (parameters, gradients, optimizer state, activations, workspace); "
              "binary prefixes (1 MiB = 2^20 bytes).\n"
              "- **vs vanilla** is the ratio to the `vanilla` row of the same table.\n"
              "- **Samples/s** exclude warm-up, on a monotonic clock, with the thread count shown.\n"
              "- Several runs of one method: every other number is their mean. "
              "\xE2\x80\x94 marks a value the inputs do not have.\n");
    size_t resamples = 0;
    for (size_t i = 0; info && info->paired && i < info->paired->n; i++)
        resamples = info->paired->rows[i].ci.resamples;
    if (resamples)
        md_printf(&m,
                  "- **Paired comparison with vanilla.** Every method is tested on the identical test "
                  "samples, so its predictions (`predictions/<method>-seed<S>.csv`, best-validation "
                  "weights) pair with vanilla's of the same seed, sample by sample. Samples both get "
                  "right or both get wrong say nothing about which is better; b counts those only the "
                  "method gets right, c those only vanilla gets right. **McNemar p** (exact, "
                  "two-sided): if the two were equally accurate, each of the b + c discordant samples "
                  "would be equally likely to fall either way; p is the probability of a split at "
                  "least as uneven as the one seen. A small p (say below 0.05) says the difference is "
                  "unlikely to be an accident of which test samples were drawn; it says nothing about "
                  "how large the difference is, nor whether another training seed would repeat it "
                  "(that is what the seeds and their standard deviation show). The **95%% interval** "
                  "of the accuracy difference (method - vanilla, percentage points) is a paired "
                  "bootstrap: %zu resamples of the test samples with replacement, each sample keeping "
                  "its pair, resampling seed %u; the 2.5%% and 97.5%% quantiles of the resampled "
                  "differences. It is the range of differences compatible with this test set. The two "
                  "usually agree (an interval that excludes 0 with a small p); with few discordant "
                  "samples the exact test is the more cautious of the two (b = 5, c = 0 gives p = "
                  "0.0625 while the interval can already exclude 0). Rows `all (n seeds)` pool the seeds: the "
                  "difference is the mean over seeds, and each resample draws test samples and keeps "
                  "their pairs from every seed together (so one sample never counts as n independent "
                  "ones); it has no McNemar p, because those pairs are not independent.\n",
                  resamples, (unsigned)REPORT_BOOTSTRAP_SEED);
    md_printf(&m, "\n");
    if (info && info->plot_note) md_printf(&m, "> Plots were not made: %s\n\n", info->plot_note);
    if (runs && table_rows(runs)) {
        RunSummary *s;
        size_t k;
        int rc = report_summarize(runs, &s, &k, err, errlen);
        if (rc) { free(m.p); return rc; }
        for (size_t i = 0; i < k;) {
            size_t j = i;
            while (j < k && !strcmp(s[j].task, s[i].task)) j++;
            task_section(&m, s + i, j - i, runs, info);
            i = j;
        }
        free(s);
    }
    if (info && info->paired && info->paired->n_notes) {
        md_printf(&m, "## Runs without a paired comparison\n\n");
        for (size_t i = 0; i < info->paired->n_notes; i++) {
            md_printf(&m, "- ");
            for (const char *q = info->paired->notes[i]; *q; q++)   // one list item, one line
                md_printf(&m, "%c", (unsigned char)*q < ' ' ? ' ' : *q);
            md_printf(&m, "\n");
        }
        md_printf(&m, "\n");
    }
    if (profiles && table_rows(profiles)) {
        if (profile_section(&m, profiles, info)) m.oom = 1;
    }
    if (m.oom) {
        free(m.p);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory writing the report");
    }
    *out = m.p;
    return MB_OK;
}
