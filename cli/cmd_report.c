// `maelre-bench report INPUT... --out DIR [--no-plots]`: merges run outputs (results.json or
// results.csv, SPEC §8) and profile outputs (profile.json or profile.csv) into DIR/results.{csv,json},
// DIR/profile.{csv,json}, DIR/report.md and DIR/plots/*.png.
// - INPUT is a folder (its results.* and profile.* are read; JSON preferred when both formats are
//   there, because it also holds the full config) or one of those files.
// - Every input is read and checked before anything is written: bad input writes nothing.
// - Same run (task, method, seed) or profile point (method, seq_len, batch, threads) twice: the
//   input named later wins (also within one file: the later row); each replacement is noted on
//   stderr and counted in report.md. A `source` column records where each merged row came from.
// Exit codes: 0 ok (also when gnuplot is missing: a warning, no plots), 1 gnuplot failed (tables
// and report.md still written), 2 usage, 3 bad input (file and line named), 4 I/O, 5 memory.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "core/status.h"
#include "results/markdown.h"
#include "results/plot.h"
#include "results/table.h"

static const char *const run_columns[] = {
    "task", "method", "seed", "threads", "params", "max_len", "mean_tokens", "train_samples",
    "test_samples", "steps", "batch", "accuracy", "accuracy_stderr", "train_seconds",
    "train_samples_per_s", "infer_samples_per_s", "flops_infer_per_sample", "flops_train_per_sample",
    "macs_infer_per_sample", "peak_mem_train_bytes", "peak_mem_infer_bytes", "peak_rss_bytes",
    "blocks_softmax", "blocks_efficient",
};
static const char *const profile_columns[] = {
    "method", "seq_len", "batch", "threads", "params", "flops_infer_per_sample",
    "flops_train_per_sample", "macs_infer_per_sample", "peak_mem_infer_bytes",
    "peak_mem_train_bytes", "infer_ms_per_sample", "train_ms_per_sample", "gflops_infer",
    "gflops_train", "blocks_softmax", "blocks_efficient", "status",
};
#define NCOLS(a) (sizeof a / sizeof a[0])

typedef enum { KIND_RUNS, KIND_PROFILE } Kind;

typedef struct {
    Table *t;
    char *path;
    Kind kind;
} Input;

typedef struct {
    size_t input, row;   // which input table and row
} Entry;

static void usage(FILE *f) {
    fprintf(f,
            "usage: maelre-bench report INPUT... --out DIR [--no-plots]\n"
            "\n"
            "Merges `run` outputs (results.json/results.csv) and `profile` outputs\n"
            "(profile.json/profile.csv) into DIR: results.csv, results.json, profile.csv,\n"
            "profile.json, report.md (one table per task, one profile table per sequence\n"
            "length) and plots/*.png (gnuplot). INPUT is a folder or one of those files.\n"
            "The same (task, method, seed) or (method, seq_len, batch, threads) twice: the\n"
            "input named later wins.\n"
            "\n"
            "  --out DIR     output folder (created)\n"
            "  --no-plots    tables and report.md only\n"
            "  env MAELRE_GNUPLOT  gnuplot binary to use (default: gnuplot in PATH)\n"
            "\n"
            "exit: 0 ok (gnuplot missing: warning, no plots), 1 gnuplot failed, 2 usage,\n"
            "      3 bad input data, 4 I/O, 5 memory\n");
}

static int fail(int code, const char *msg) {
    fprintf(stderr, "maelre-bench: %s\n", msg);
    return code;
}

// The reason first (one line), then where to look.
static int usage_error(const char *msg) {
    fprintf(stderr, "maelre-bench: report: %s\n"
                    "usage: maelre-bench report INPUT... --out DIR [--no-plots]  (--help for more)\n", msg);
    return MB_ERR_USAGE;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

// "<file>:<line>" for a CSV row, "<file>: element <i>" for a JSON one.
static void where(char *buf, size_t n, const Input *in, size_t row) {
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

// The checks that make a merged table meaningful: key columns present, numbers are numbers.
static int validate(const Input *in, char *err, size_t errlen) {
    const Table *t = in->t;
    char at[4200];
    const char *const *cols = in->kind == KIND_RUNS ? run_columns : profile_columns;
    size_t ncols = in->kind == KIND_RUNS ? NCOLS(run_columns) : NCOLS(profile_columns);
    const char *need[2] = {in->kind == KIND_RUNS ? "task" : "method",
                           in->kind == KIND_RUNS ? "method" : "seq_len"};
    for (int i = 0; i < 2; i++)
        if (!has_column(t, need[i]))
            return mb_fail(err, errlen, MB_ERR_DATA, "%s: no '%s' column (is this a %s file?)",
                           in->path, need[i], in->kind == KIND_RUNS ? "`run` results" : "`profile`");
    for (size_t r = 0; r < table_rows(t); r++) {
        where(at, sizeof at, in, r);
        double v;
        if (in->kind == KIND_RUNS) {
            const char *task = table_get_str(t, r, "task"), *method = table_get_str(t, r, "method");
            if (!task || !*task) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty task", at);
            if (!method || !*method) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty method", at);
            if (table_get_num(t, r, "accuracy", &v) == MB_OK && !(v >= 0 && v <= 1))
                return mb_fail(err, errlen, MB_ERR_DATA,
                               "%s: accuracy %g is not a fraction in [0, 1]", at, v);
        } else {
            const char *method = table_get_str(t, r, "method");
            if (!method || !*method) return mb_fail(err, errlen, MB_ERR_DATA, "%s: empty method", at);
            if (table_get_num(t, r, "seq_len", &v) != MB_OK || !(v > 0))
                return mb_fail(err, errlen, MB_ERR_DATA, "%s: seq_len is missing or not positive", at);
        }
        for (size_t c = 0; c < ncols; c++) {
            if (!strcmp(cols[c], "task") || !strcmp(cols[c], "method") || !strcmp(cols[c], "status"))
                continue;
            const char *s = table_get_str(t, r, cols[c]);
            if (s)
                return mb_fail(err, errlen, MB_ERR_DATA, "%s: %s is '%.60s', not a number", at,
                               cols[c], s);
        }
    }
    return MB_OK;
}

// Reads INPUT (folder or file) into one or two Inputs.
static int load_input(const char *arg, Input *ins, size_t *n, char *err, size_t errlen) {
    struct stat st;
    if (stat(arg, &st) != 0)
        return mb_fail(err, errlen, errno == ENOENT ? MB_ERR_DATA : MB_ERR_IO, "%s: %s", arg,
                       strerror(errno));
    char path[4096];
    if (S_ISDIR(st.st_mode)) {
        static const char *const names[2][2] = {{"results.json", "results.csv"},
                                                {"profile.json", "profile.csv"}};
        size_t found = 0;
        for (int k = 0; k < 2; k++) {
            for (int f = 0; f < 2; f++) {
                snprintf(path, sizeof path, "%s%s%s", arg, ends_with(arg, "/") ? "" : "/", names[k][f]);
                if (!is_file(path)) continue;
                Input *in = &ins[*n];
                in->kind = k == 0 ? KIND_RUNS : KIND_PROFILE;
                in->path = strdup(path);
                if (!in->path) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
                int rc = read_table(path, &in->t, err, errlen);
                if (rc) { free(in->path); return rc; }
                (*n)++;
                found++;
                rc = validate(in, err, errlen);
                if (rc) return rc;
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
    Input *in = &ins[*n];
    in->path = strdup(arg);
    if (!in->path) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = read_table(arg, &in->t, err, errlen);
    if (rc) { free(in->path); return rc; }
    (*n)++;
    in->kind = has_column(in->t, "seq_len") && !has_column(in->t, "task") ? KIND_PROFILE : KIND_RUNS;
    return validate(in, err, errlen);
}

// Same merge key? runs: (task, method, seed); profile: (variant, seq_len, batch, threads).
static int same_num(const Table *a, size_t ra, const Table *b, size_t rb, const char *col) {
    double x, y;
    int hx = table_get_num(a, ra, col, &x) == MB_OK, hy = table_get_num(b, rb, col, &y) == MB_OK;
    return hx == hy && (!hx || x == y);
}

static int same_key(const Input *ia, size_t ra, const Input *ib, size_t rb) {
    const Table *a = ia->t, *b = ib->t;
    if (strcmp(table_get_str(a, ra, "method"), table_get_str(b, rb, "method"))) return 0;
    if (ia->kind == KIND_RUNS) {
        const char *ga = table_get_str(a, ra, "grid"), *gb = table_get_str(b, rb, "grid");   // sweep grid points
        return !strcmp(table_get_str(a, ra, "task"), table_get_str(b, rb, "task")) &&
               same_num(a, ra, b, rb, "seed") && !strcmp(ga ? ga : "", gb ? gb : "");
    }
    return !strcmp(report_profile_series(a, ra), report_profile_series(b, rb)) &&
           same_num(a, ra, b, rb, "seq_len") && same_num(a, ra, b, rb, "batch") &&
           same_num(a, ra, b, rb, "threads");
}

// Builds the merged table of one kind: known columns first, then others in order of appearance,
// then `source`. *replaced counts rows dropped for a later duplicate.
static int merge(Input *ins, size_t n, Kind kind, Table **out, size_t *replaced, char *err, size_t errlen) {
    *out = NULL;
    *replaced = 0;
    size_t total = 0, ncols = kind == KIND_RUNS ? NCOLS(run_columns) : NCOLS(profile_columns);
    for (size_t i = 0; i < n; i++)
        if (ins[i].kind == kind) total += table_rows(ins[i].t);
    if (!total) return MB_OK;
    const char **cols = malloc((ncols + 1) * sizeof *cols);
    Entry *e = malloc(total * sizeof *e);
    size_t ne = 0, nc = ncols, capc = ncols + 1;
    if (!cols || !e) { free(cols); free(e); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
    memcpy(cols, kind == KIND_RUNS ? run_columns : profile_columns, ncols * sizeof *cols);
    int rc = MB_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (ins[i].kind != kind) continue;
        for (size_t c = 0; c < table_columns(ins[i].t); c++) {
            const char *name = table_column(ins[i].t, c);
            if (table_column_is_json(ins[i].t, c) || !strcmp(name, "source")) continue;
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
        for (size_t r = 0; r < table_rows(ins[i].t) && !rc; r++) {
            size_t j = 0;
            while (j < ne && !same_key(&ins[e[j].input], e[j].row, &ins[i], r)) j++;
            if (j < ne) {
                char was[4200], now[4200];
                where(was, sizeof was, &ins[e[j].input], e[j].row);
                where(now, sizeof now, &ins[i], r);
                if (*replaced < 10)
                    fprintf(stderr, "maelre-bench: note: %s replaces %s (same %s)\n", now, was,
                            kind == KIND_RUNS ? "task, method and seed"
                                              : "variant, seq_len, batch and threads");
                else if (*replaced == 10)
                    fprintf(stderr, "maelre-bench: note: more rows replaced (count in report.md)\n");
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
        const Input *in = &ins[e[k].input];
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

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    int plots = 1;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    size_t nargs = 0;
    if (!args) return fail(MB_ERR_NOMEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); free(args); return MB_OK; }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { free(args); return usage_error("--out needs a folder"); }
            out = argv[++i];
        } else if (!strncmp(argv[i], "--out=", 6)) {
            out = argv[i] + 6;
        } else if (!strcmp(argv[i], "--no-plots")) {
            plots = 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option '%.200s'", argv[i]);
            free(args);
            return usage_error(msg);
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (!out || !*out || !nargs) {
        free(args);
        return usage_error(!nargs ? "no input folders" : "--out DIR is required");
    }
    for (size_t i = 0; i < nargs; i++) {
        if (same_dir(args[i], out)) {
            free(args);
            return fail(MB_ERR_USAGE, "report: --out must be a new folder, not one of the inputs "
                                      "(its results would be overwritten)");
        }
    }

    char err[4096] = "";
    Input *ins = calloc(2 * nargs, sizeof *ins);
    size_t nin = 0;
    Table *runs = NULL, *profiles = NULL;
    RunSummary *sum = NULL;
    size_t nsum = 0, runs_replaced = 0, profiles_replaced = 0;
    const char **run_src = NULL, **prof_src = NULL, **made = NULL;
    size_t n_run_src = 0, n_prof_src = 0, n_made = 0;
    char (*made_buf)[512] = NULL;
    char *md = NULL;
    const char *plot_note = NULL;
    char plot_note_buf[4200];
    int rc = ins ? MB_OK : mb_fail(err, sizeof err, MB_ERR_NOMEM, "out of memory");

    // 1. Read and check everything; nothing is written before this passes.
    for (size_t i = 0; i < nargs && !rc; i++) rc = load_input(args[i], ins, &nin, err, sizeof err);
    if (!rc) rc = merge(ins, nin, KIND_RUNS, &runs, &runs_replaced, err, sizeof err);
    if (!rc) rc = merge(ins, nin, KIND_PROFILE, &profiles, &profiles_replaced, err, sizeof err);
    if (!rc && !runs && !profiles)
        rc = mb_fail(err, sizeof err, MB_ERR_DATA, "the inputs hold no rows (header-only files?)");
    if (!rc && runs) rc = report_summarize(runs, &sum, &nsum, err, sizeof err);
    run_src = calloc(nin + 1, sizeof *run_src);
    prof_src = calloc(nin + 1, sizeof *prof_src);
    made = calloc(nsum + 3, sizeof *made);
    made_buf = calloc(nsum + 3, sizeof *made_buf);
    if (!rc && (!run_src || !prof_src || !made || !made_buf))
        rc = mb_fail(err, sizeof err, MB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nin && !rc; i++) {
        if (ins[i].kind == KIND_RUNS) run_src[n_run_src++] = ins[i].path;
        else prof_src[n_prof_src++] = ins[i].path;
    }

    // 2. Tables.
    char path[4400];
    if (!rc) rc = mkdirs(out, err, sizeof err);
    if (!rc && runs) {
        snprintf(path, sizeof path, "%s/results.csv", out);
        rc = table_write_csv(runs, path, err, sizeof err);
        snprintf(path, sizeof path, "%s/results.json", out);
        if (!rc) rc = table_write_json(runs, path, err, sizeof err);
    }
    if (!rc && profiles) {
        snprintf(path, sizeof path, "%s/profile.csv", out);
        rc = table_write_csv(profiles, path, err, sizeof err);
        snprintf(path, sizeof path, "%s/profile.json", out);
        if (!rc) rc = table_write_json(profiles, path, err, sizeof err);
    }

    // 3. Plots (a failure is remembered; the report is still written).
    int plot_rc = MB_OK;
    char gnuplot[4096];
    if (!rc && plots) {
        char perr[4096];
        if (plot_find_gnuplot(gnuplot, sizeof gnuplot, perr, sizeof perr) != MB_OK) {
            fprintf(stderr, "maelre-bench: warning: %s; tables and report.md written without plots\n", perr);
            snprintf(plot_note_buf, sizeof plot_note_buf, "%s.", perr);
            plot_note = plot_note_buf;
        } else {
            for (size_t i = 0; i < nsum && !plot_rc; i++) {
                if (i > 0 && !strcmp(sum[i].task, sum[i - 1].task)) continue;
                int ok = 0;
                plot_rc = plot_acc_vs_flops(gnuplot, out, sum[i].task, sum, nsum, &ok, perr, sizeof perr);
                if (ok) {
                    plot_acc_name(made_buf[n_made], sizeof made_buf[0], sum[i].task);
                    made[n_made] = made_buf[n_made];
                    n_made++;
                }
            }
            for (int mem = 0; mem < 2 && profiles && !plot_rc; mem++) {
                int ok = 0;
                plot_rc = plot_scaling(gnuplot, out, profiles, mem, &ok, perr, sizeof perr);
                if (ok) made[n_made++] = mem ? PLOT_MEMORY_PNG : PLOT_FLOPS_PNG;
            }
            if (plot_rc) {
                fprintf(stderr, "maelre-bench: %s\n", perr);
                snprintf(plot_note_buf, sizeof plot_note_buf, "%s.", perr);
                plot_note = plot_note_buf;
            }
        }
    } else if (!rc) {
        plot_note = "--no-plots was given.";
    }

    // 4. report.md
    if (!rc) {
        MdReportInfo info = {run_src, n_run_src, prof_src, n_prof_src, runs_replaced,
                             profiles_replaced, made, n_made, plot_note};
        rc = md_report(runs, profiles, &info, &md, err, sizeof err);
        snprintf(path, sizeof path, "%s/report.md", out);
        if (!rc) rc = write_file_atomic(path, md, strlen(md), err, sizeof err);
    }
    if (!rc) {
        size_t ntasks = 0;
        for (size_t i = 0; i < nsum; i++) ntasks += i == 0 || strcmp(sum[i].task, sum[i - 1].task);
        printf("report: %zu run row%s (%zu task%s), %zu profile row%s, %zu plot%s -> %s/report.md\n",
               runs ? table_rows(runs) : 0, runs && table_rows(runs) == 1 ? "" : "s", ntasks,
               ntasks == 1 ? "" : "s", profiles ? table_rows(profiles) : 0,
               profiles && table_rows(profiles) == 1 ? "" : "s", n_made, n_made == 1 ? "" : "s", out);
    }

    if (rc) fprintf(stderr, "maelre-bench: %s\n", err);
    else if (plot_rc) rc = MB_ERR_INTERNAL;
    free(md);
    free(sum);
    free(made);
    free(made_buf);
    free(run_src);
    free(prof_src);
    table_free(runs);
    table_free(profiles);
    for (size_t i = 0; i < nin; i++) {
        table_free(ins[i].t);
        free(ins[i].path);
    }
    free(ins);
    free(args);
    return rc;
}
