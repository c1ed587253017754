// Report plots via a gnuplot child process (results/plot.h).
#include "results/plot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/status.h"

// ---------------------------------------------------------------------------------------------
// Text buffer (scripts and data files)

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} Txt;

__attribute__((format(printf, 2, 3))) static void tx(Txt *t, const char *fmt, ...) {
    if (t->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) { t->oom = 1; return; }
    if (t->n + (size_t)need + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->n + (size_t)need + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) { t->oom = 1; return; }
        t->p = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)need;
}

// A gnuplot single-quoted string: only ' needs doubling.
static void tx_quoted(Txt *t, const char *s) {
    tx(t, "'");
    for (const char *q = s; *q; q++) tx(t, *q == '\'' ? "''" : "%c", (unsigned char)*q < ' ' ? ' ' : *q);
    tx(t, "'");
}

// Text for a '#' comment line: control characters (a newline would end the comment) become spaces.
static void tx_comment(Txt *t, const char *s) {
    for (const char *q = s; *q; q++) tx(t, "%c", (unsigned char)*q < ' ' ? ' ' : *q);
}

// ---------------------------------------------------------------------------------------------
// Names, finding gnuplot

static void safe_name(char *out, size_t n, const char *s) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        out[k++] = ok ? c : '_';
    }
    out[k] = 0;
    if (k == 0 || out[0] == '.') {   // never an empty or hidden name
        if (n > 1) { out[0] = '_'; out[k ? k : 1] = 0; }
    }
}

void plot_acc_name(char *buf, size_t n, const char *task) {
    char safe[256];
    safe_name(safe, sizeof safe, task);
    snprintf(buf, n, PLOT_DIR "/acc_vs_flops_%s.png", safe);
}

void plot_curve_name(char *buf, size_t n, const char *task, int val) {
    char safe[256];
    safe_name(safe, sizeof safe, task);
    snprintf(buf, n, PLOT_DIR "/%s_%s.png", val ? "val_acc_vs_time" : "loss_vs_step", safe);
}

static int executable(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int plot_find_gnuplot(char *path, size_t n, char *err, size_t errlen) {
    const char *want = getenv("MAELRE_GNUPLOT");
    const char *what = want && *want ? want : "gnuplot";
    if (strchr(what, '/')) {
        if (executable(what)) { snprintf(path, n, "%s", what); return MB_OK; }
        return mb_fail(err, errlen, MB_ERR_IO, "gnuplot not found at %s (MAELRE_GNUPLOT)", what);
    }
    const char *env = getenv("PATH");
    const char *dirs = env && *env ? env : "/usr/local/bin:/usr/bin:/bin";
    while (*dirs) {
        const char *colon = strchr(dirs, ':');
        size_t len = colon ? (size_t)(colon - dirs) : strlen(dirs);
        snprintf(path, n, "%.*s/%s", (int)(len ? len : 1), len ? dirs : ".", what);
        if (executable(path)) return MB_OK;
        dirs += len + (colon ? 1 : 0);
    }
    path[0] = 0;
    return mb_fail(err, errlen, MB_ERR_IO, "%s not found in PATH (Debian: apt-get install gnuplot-nox)",
                   what);
}

// ---------------------------------------------------------------------------------------------
// Running gnuplot

static int make_plot_dir(const char *outdir, char *dir, size_t n, char *err, size_t errlen) {
    snprintf(dir, n, "%s/" PLOT_DIR, outdir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    return MB_OK;
}

static int has_png_signature(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(buf, 1, 8, f);
    fclose(f);
    return got == 8 && !memcmp(buf, sig, 8);
}

// Writes <dir>/<base>.dat and <base>.gp, runs gnuplot in <dir>, renames its output onto
// <base>.png when it is a whole PNG.
static int render(const char *gnuplot, const char *dir, const char *base, const Txt *data,
                  const Txt *script, char *err, size_t errlen) {
    char path[4096], tmp[4096], png[4096];
    if (data->oom || script->oom) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory building a plot");
    snprintf(path, sizeof path, "%s/%s.dat", dir, base);
    int rc = write_file_atomic(path, data->p, data->n, err, errlen);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s.gp", dir, base);
    rc = write_file_atomic(path, script->p, script->n, err, errlen);
    if (rc) return rc;
    char tmpname[600], outfile[700], gpname[600];
    snprintf(tmpname, sizeof tmpname, ".%s.png.tmp-%ld", base, (long)getpid());
    snprintf(tmp, sizeof tmp, "%s/%s", dir, tmpname);
    snprintf(png, sizeof png, "%s/%s.png", dir, base);
    snprintf(outfile, sizeof outfile, "outfile='%s'", tmpname);   // base is [A-Za-z0-9._-]
    snprintf(gpname, sizeof gpname, "%s.gp", base);
    int pfd[2];
    if (pipe(pfd) != 0) return mb_fail(err, errlen, MB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        if (chdir(dir) != 0) _exit(126);
        execl(gnuplot, "gnuplot", "-e", outfile, gpname, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    // Keep the last part of what gnuplot said, for the error message.
    char said[2048] = "";
    size_t nsaid = 0;
    char chunk[512];
    ssize_t got;
    while ((got = read(pfd[0], chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (nsaid + 1 >= sizeof said) {
                memmove(said, said + sizeof said / 2, nsaid - sizeof said / 2);
                nsaid -= sizeof said / 2;
            }
            said[nsaid++] = chunk[i];
        }
    }
    said[nsaid] = 0;
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok || !has_png_signature(tmp)) {
        unlink(tmp);
        for (char *q = said; *q; q++)
            if (*q == '\n') *q = ' ';
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot run %s", path, gnuplot);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "%s: gnuplot failed (%s%d)%s%s", path,
                       WIFEXITED(status) ? "exit " : "signal ",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                       nsaid ? ": " : ", no PNG written", said);
    }
    if (rename(tmp, png) != 0) {
        int e = errno;
        unlink(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write: %s", png, strerror(e));
    }
    return MB_OK;
}

// Common head of every script: terminal (pngcairo if available), fonts, grid.
static void script_head(Txt *s, const char *base, const char *what) {
    tx(s, "# %s\n# Made by `maelre-bench report`. Re-make from this folder: gnuplot %s.gp\n", what, base);
    tx(s, "if (!exists(\"outfile\")) outfile = '%s.png'\n", base);
    tx(s, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
          "    set terminal pngcairo size 1200,800 enhanced font 'DejaVu Sans,15' linewidth 1.6\n"
          "} else {\n"
          "    set terminal png size 1200,800 enhanced font 'DejaVu Sans,15' linewidth 2\n"
          "}\n"
          "set output outfile\n"
          "set encoding utf8\n"
          "set border lw 1.2\n"
          "set grid xtics ytics mxtics mytics lc rgb '#d0d0d0' lw 0.8, lc rgb '#ececec' lw 0.5\n"
          "set tics out nomirror\n");
}

// One colour and marker per method of report_method_index's table (vanilla, linformer,
// performer, nystromformer, linear, local, bigbird, tome, maelre, maelre-exact, efficient); the
// first four and tome keep the Okabe-Ito colours they had. "-dense" variants and unknown names
// take the extra palette.
static const char *const known_color[] = {"#0072B2", "#E69F00", "#56B4E9", "#8C564B", "#BCBD22",
                                          "#7F7F7F", "#9467BD", "#009E73", "#D55E00", "#A50F15",
                                          "#E377C2"};
static const int known_point[] = {7, 5, 11, 15, 3, 1, 2, 9, 13, 12, 6};
static const char *const other_color[] = {"#CC79A7", "#000000", "#17BECF", "#999999", "#6B6ECF"};
static const int other_point[] = {11, 15, 3, 1, 2};

static const char *method_color(const char *m, size_t i) {
    int dense, k = report_method_index(m, &dense);
    if (k >= 0 && (size_t)k < sizeof known_color / sizeof known_color[0])
        return dense ? other_color[(size_t)k % 5] : known_color[k];
    return other_color[i % 5];
}

static int method_point(const char *m, size_t i) {
    int k = report_method_index(m, NULL);   // a -dense variant keeps its method's marker
    if (k >= 0 && (size_t)k < sizeof known_point / sizeof known_point[0]) return known_point[k];
    return other_point[i % 5];
}

// The open variant of a filled point type (training series), the type itself otherwise.
static int open_point(int pt) { return pt == 5 || pt == 7 || pt == 9 || pt == 11 || pt == 13 || pt == 15 ? pt - 1 : pt; }

// ---------------------------------------------------------------------------------------------
// Accuracy against FLOPs

int plot_acc_vs_flops(const char *gnuplot, const char *outdir, const char *task,
                      const RunSummary *s, size_t n, int *made, char *err, size_t errlen) {
    *made = 0;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].task, task) || !isfinite(s[i].acc) || !(s[i].flops_infer > 0)) continue;
        double e = isfinite(s[i].acc_err) ? s[i].acc_err : 0;
        xmin = fmin(xmin, s[i].flops_infer);
        xmax = fmax(xmax, s[i].flops_infer);
        ymin = fmin(ymin, 100 * (s[i].acc - e));
        ymax = fmax(ymax, 100 * (s[i].acc + e));
        k++;
    }
    if (!k) return MB_OK;
    double maj_sum = 0;   // the majority class of the task: mean over its summaries that have it
    size_t maj_n = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].task, task) && isfinite(s[i].majority)) { maj_sum += s[i].majority; maj_n++; }
    double majority = maj_n ? 100 * maj_sum / (double)maj_n : NAN;
    if (isfinite(majority)) {
        ymin = fmin(ymin, majority);
        ymax = fmax(ymax, majority);
    }
    char dir[4096], rel[512], base[512];
    int rc = make_plot_dir(outdir, dir, sizeof dir, err, errlen);
    if (rc) return rc;
    plot_acc_name(rel, sizeof rel, task);
    snprintf(base, sizeof base, "%s", rel + strlen(PLOT_DIR "/"));
    base[strlen(base) - 4] = 0;   // drop ".png"
    Txt data = {0}, sc = {0};
    tx(&data, "# task ");
    tx_comment(&data, task);
    tx(&data, ": one block per method\n# inference_flops_per_sample accuracy_pct stderr_pct\n");
    // Ranges with margins: a decade-aligned x range around the points, y padded by 10% of span.
    double lx0 = floor(log10(xmin) - 0.15), lx1 = ceil(log10(xmax) + 0.15);
    double pad = fmax(2.0, 0.12 * (ymax - ymin));
    double y0 = fmax(0.0, floor(ymin - pad)), y1 = fmin(100.0, ceil(ymax + pad));
    if (y1 <= y0) y1 = y0 + 1;
    script_head(&sc, base, "Test accuracy against inference FLOPs per sample");
    tx(&sc, "set title ");
    tx_quoted(&sc, task);
    tx(&sc, " . ': test accuracy against inference cost' noenhanced\n"
            "set xlabel 'Inference FLOPs per sample (log scale)'\n"
            "set ylabel 'Test accuracy (%%) \xC2\xB1 standard error'\n"
            "set logscale x 10\n"
            "set format x '%%.0s%%c'\n"
            "set xrange [%g:%g]\n"
            "set yrange [%g:%g]\n"
            "set key outside right center box opaque spacing 1.3 title 'method'\n"
            "set bars small\n"
            "plot \\\n",
       pow(10, lx0), pow(10, lx1), y0, y1);
    size_t idx = 0;
    int frontier = 0;   // sweep grid points: each method's points joined by a line, in FLOP order
    for (size_t i = 0; i < n; i++) frontier |= !strcmp(s[i].task, task) && s[i].grid != NULL;
    size_t blocks = 0;   // data blocks (= plot entries)
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].task, task) || !isfinite(s[i].acc) || !(s[i].flops_infer > 0)) continue;
        int first = 1;
        for (size_t q = 0; frontier && q < i && first; q++)
            first = !(!strcmp(s[q].task, task) && !strcmp(s[q].method, s[i].method) && isfinite(s[q].acc) &&
                      s[q].flops_infer > 0);
        blocks += first;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].task, task) || !isfinite(s[i].acc) || !(s[i].flops_infer > 0)) continue;
        int seen = 0;
        for (size_t q = 0; frontier && q < i && !seen; q++)
            seen = !strcmp(s[q].task, task) && !strcmp(s[q].method, s[i].method) && isfinite(s[q].acc) &&
                   s[q].flops_infer > 0;
        if (seen) continue;   // drawn with the method's first point
        double e = isfinite(s[i].acc_err) ? s[i].acc_err : 0;
        tx(&data, "# ");
        tx_comment(&data, s[i].method);
        if (!frontier) {
            tx(&data, "\n%.17g %.17g %.17g\n\n\n", s[i].flops_infer, 100 * s[i].acc, 100 * e);
        } else {
            tx(&data, ": one row per grid point (its label after #), in FLOP order\n");
            // The method's entries are adjacent (sorted by task, method, grid): write them by FLOPs.
            size_t j = i;
            while (j < n && !strcmp(s[j].task, task) && !strcmp(s[j].method, s[i].method)) j++;
            unsigned char *used = calloc(j - i, 1);
            if (!used) { free(data.p); free(sc.p); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
            for (;;) {
                size_t best = j;
                for (size_t q = i; q < j; q++)
                    if (!used[q - i] && isfinite(s[q].acc) && s[q].flops_infer > 0 &&
                        (best == j || s[q].flops_infer < s[best].flops_infer)) best = q;
                if (best == j) break;
                used[best - i] = 1;
                double eb = isfinite(s[best].acc_err) ? s[best].acc_err : 0;
                tx(&data, "%.17g %.17g %.17g # ", s[best].flops_infer, 100 * s[best].acc, 100 * eb);
                tx_comment(&data, s[best].grid ? s[best].grid : "");
                tx(&data, "\n");
            }
            free(used);
            tx(&data, "\n\n");
        }
        tx(&sc, "    '%s.dat' index %zu using 1:2:3 with %s pt %d ps 2.2 lw 2 lc rgb '%s' title ",
           base, idx, frontier ? "yerrorlines" : "yerrorbars", method_point(s[i].method, i),
           method_color(s[i].method, i));
        tx_quoted(&sc, s[i].method);
        tx(&sc, " noenhanced%s\n", ++idx < blocks || isfinite(majority) ? ", \\" : "");
    }
    if (isfinite(majority)) {
        tx(&data, "# majority class (always the most frequent training class): %.17g %%\n", majority);
        tx(&sc, "    %.17g with lines dt 3 lw 2.5 lc rgb '#000000' title 'majority class'\n", majority);
    }
    rc = render(gnuplot, dir, base, &data, &sc, err, errlen);
    free(data.p);
    free(sc.p);
    if (!rc) *made = 1;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Learning curves

#define CURVE_POINTS 200   // training-loss lines longer than this are averaged over windows

// Points of curve c for the plot: (step, loss) or (wall_s, validation %). Loss curves with more
// than CURVE_POINTS rows are averaged over consecutive windows of w rows (x and y both the window
// mean) so that per-step noise does not hide the trend; *w receives the window (1: raw rows).
static size_t curve_window(const Curve *c, int val) {
    size_t have = 0;
    for (size_t r = 0; r < c->n; r++) have += isfinite(val ? c->val_acc[r] : c->train_loss[r]);
    return !val && have > CURVE_POINTS ? (have + CURVE_POINTS - 1) / CURVE_POINTS : 1;
}

static size_t curve_points(const Curve *c, int val, Txt *data, size_t *w) {
    size_t pts = 0;
    *w = curve_window(c, val);
    double sx = 0, sy = 0;
    size_t in = 0;
    for (size_t r = 0; r < c->n; r++) {
        double x = val ? c->wall_s[r] : c->step[r], y = val ? 100 * c->val_acc[r] : c->train_loss[r];
        if (!isfinite(x) || !isfinite(y)) continue;
        sx += x;
        sy += y;
        if (++in == *w) {
            tx(data, "%.17g %.17g\n", sx / (double)in, sy / (double)in);
            pts++;
            sx = sy = 0;
            in = 0;
        }
    }
    if (in) {
        tx(data, "%.17g %.17g\n", sx / (double)in, sy / (double)in);
        pts++;
    }
    return pts;
}

int plot_curves(const char *gnuplot, const char *outdir, const char *task, const Curve *c,
                size_t n, double majority, int val, int *made, char *err, size_t errlen) {
    *made = 0;
    Txt data = {0}, sc = {0};
    char rel[512], base[512];
    plot_curve_name(rel, sizeof rel, task, val);
    snprintf(base, sizeof base, "%s", rel + strlen(PLOT_DIR "/"));
    base[strlen(base) - 4] = 0;   // drop ".png"
    const char *what = val ? "Validation accuracy against training wall time"
                           : "Training loss against step";
    tx(&data, "# task ");
    tx_comment(&data, task);
    tx(&data, val ? ": one block per (method, seed): wall_seconds validation_accuracy_pct\n"
                  : ": one block per (method, seed): step training_loss\n");
    size_t maxw = 1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(c[i].task, task) && curve_window(&c[i], val) > maxw) maxw = curve_window(&c[i], val);
    script_head(&sc, base, what);
    tx(&sc, "set title ");
    tx_quoted(&sc, task);
    tx(&sc, val ? " . ': validation accuracy against training time' noenhanced\n"
                  "set xlabel 'Training wall time (s)'\n"
                  "set ylabel 'Validation accuracy (%%)'\n"
                : " . ': training loss against step' noenhanced\n"
                  "set xlabel 'Training step'\n");
    if (!val && maxw > 1)   // long runs: each line is a mean over windows of logged steps
        tx(&sc, "set ylabel 'Training loss (cross-entropy, mean over windows of up to %zu logged steps)'\n", maxw);
    else if (!val)
        tx(&sc, "set ylabel 'Training loss (cross-entropy)'\n");
    tx(&sc, "set xrange [0:*]\n"
            "set key outside right top box opaque spacing 1.2\n"
            "plot \\\n");
    size_t block = 0;
    const char *last_method = NULL;
    size_t seed_no = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(c[i].task, task)) continue;
        Txt pts = {0};
        size_t w, np = curve_points(&c[i], val, &pts, &w);
        if (!np || pts.oom) { free(pts.p); data.oom |= pts.oom; continue; }
        int same = last_method && !strcmp(last_method, c[i].method);
        seed_no = same ? seed_no + 1 : 0;
        size_t seeds = 1;   // curves of this method drawn (for its legend entry)
        for (size_t j = i + 1; !same && j < n; j++)
            seeds += !strcmp(c[j].task, task) && !strcmp(c[j].method, c[i].method);
        last_method = c[i].method;
        tx(&data, "# ");
        tx_comment(&data, c[i].method);
        tx(&data, " seed %.0f\n", c[i].seed);
        tx(&data, "%s\n\n", pts.p);
        free(pts.p);
        tx(&sc, "%s    '%s.dat' index %zu using 1:2 with %s lw %s dt %zu lc rgb '%s'", block ? ", \\\n" : "",
           base, block, val ? "linespoints pt 7 ps 0.9" : "lines", val ? "2" : "1.6", seed_no % 5 + 1,
           method_color(c[i].method, i));
        if (same) {
            tx(&sc, " notitle");
        } else {
            tx(&sc, " title ");
            tx_quoted(&sc, c[i].method);
            if (seeds > 1) tx(&sc, " . ' (%zu seeds)'", seeds);
            tx(&sc, " noenhanced");
        }
        block++;
    }
    if (!block) { free(data.p); free(sc.p); return MB_OK; }
    if (val && isfinite(majority)) {
        tx(&data, "# majority class on the test split: %.17g %%\n", 100 * majority);
        tx(&sc, ", \\\n    %.17g with lines dt 3 lw 2.5 lc rgb '#000000' title 'majority class (test split)'",
           100 * majority);
    }
    tx(&sc, "\n");
    char dir[4096];
    int rc = make_plot_dir(outdir, dir, sizeof dir, err, errlen);
    if (!rc) rc = render(gnuplot, dir, base, &data, &sc, err, errlen);
    free(data.p);
    free(sc.p);
    if (!rc) *made = 1;
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Scaling against sequence length

typedef struct {
    const char *method;
    double len, infer, train, batch;
} Pt;

static int cmp_pt(const void *a, const void *b) {
    const Pt *x = a, *y = b;
    int rx = report_method_rank(x->method), ry = report_method_rank(y->method);
    if (rx != ry) return rx < ry ? -1 : 1;
    int c = strcmp(x->method, y->method);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double num(const Table *t, size_t r, const char *c) {
    double v;
    return table_get_num(t, r, c, &v) == MB_OK ? v : NAN;
}

int plot_scaling(const char *gnuplot, const char *outdir, const Table *p, int memory, int *made,
                 char *err, size_t errlen) {
    *made = 0;
    size_t rows = table_rows(p);
    Pt *pt = calloc(rows ? rows : 1, sizeof *pt);
    if (!pt) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory building a plot");
    const char *ci = memory ? "peak_mem_infer_bytes" : "flops_infer_per_sample";
    const char *ct = memory ? "peak_mem_train_bytes" : "flops_train_per_sample";
    double scale = memory ? 1.0 / (1024.0 * 1024.0) : 1.0;
    // Smallest batch per method first.
    size_t k = 0;
    for (size_t r = 0; r < rows; r++) {
        const char *m = report_profile_series(p, r), *st = table_get_str(p, r, "status");
        double len = num(p, r, "seq_len");
        if (!m || !(len > 0)) continue;
        int infer_ok = !st || !strcmp(st, "ok") || !strcmp(st, "train-skipped");
        int train_ok = !st || !strcmp(st, "ok");
        double vi = infer_ok ? num(p, r, ci) * scale : NAN, vt = train_ok ? num(p, r, ct) * scale : NAN;
        if (!(vi > 0)) vi = NAN;
        if (!(vt > 0)) vt = NAN;
        if (isnan(vi) && isnan(vt)) continue;
        pt[k++] = (Pt){m, len, vi, vt, num(p, r, "batch")};
    }
    size_t kept = 0;
    for (size_t i = 0; i < k; i++) {
        double minb = INFINITY;
        for (size_t j = 0; j < k; j++)
            if (!strcmp(pt[j].method, pt[i].method) && pt[j].batch < minb) minb = pt[j].batch;
        if (isfinite(minb) && pt[i].batch != minb) continue;
        int dup = 0;   // same (method, len) already kept (e.g. another thread count)
        for (size_t j = 0; j < kept; j++)
            if (!strcmp(pt[j].method, pt[i].method) && pt[j].len == pt[i].len) dup = 1;
        if (!dup) pt[kept++] = pt[i];
    }
    k = kept;
    if (!k) { free(pt); return MB_OK; }
    qsort(pt, k, sizeof *pt, cmp_pt);
    int any_train = 0;
    double common_batch = pt[0].batch;
    for (size_t i = 0; i < k; i++) {
        any_train |= !isnan(pt[i].train);
        if (pt[i].batch != common_batch) common_batch = NAN;
    }
    char dir[4096];
    int rc = make_plot_dir(outdir, dir, sizeof dir, err, errlen);
    if (rc) { free(pt); return rc; }
    const char *base = memory ? "memory_vs_seq_len" : "flops_vs_seq_len";
    Txt data = {0}, sc = {0};
    tx(&data, "# one block per method: seq_len %s_inference %s_training (nan: not measured)\n",
       memory ? "peak_MiB" : "flops_per_sample", memory ? "peak_MiB" : "flops_per_sample");
    script_head(&sc, base, memory ? "Peak memory against sequence length"
                                  : "FLOPs per sample against sequence length");
    char batch_note[64] = "";
    if (memory && isfinite(common_batch)) snprintf(batch_note, sizeof batch_note, ", batch of %.0f", common_batch);
    tx(&sc, "set title '%s'\n", memory ? "Peak memory against sequence length"
                                       : "FLOPs per sample against sequence length");
    tx(&sc, "set xlabel 'Sequence length (tokens, log scale)'\n");
    if (memory) tx(&sc, "set ylabel 'Peak allocator memory (MiB%s, log scale)'\n", batch_note);
    else tx(&sc, "set ylabel 'FLOPs per sample (log scale)'\n");
    // x: a little room either side; ticks at the measured lengths when there are few of them.
    double lmin = INFINITY, lmax = 0, lens[12];
    size_t nl = 0;
    for (size_t i = 0; i < k; i++) {
        lmin = fmin(lmin, pt[i].len);
        lmax = fmax(lmax, pt[i].len);
        size_t j = 0;
        while (j < nl && j < 12 && lens[j] != pt[i].len) j++;
        if (j == nl && nl <= 12) { if (nl < 12) lens[nl] = pt[i].len; nl++; }
    }
    tx(&sc, "set xrange [%g:%g]\n", lmin / 1.35, lmax * 1.35);
    if (nl <= 12) {
        qsort(lens, nl, sizeof *lens, cmp_dbl);
        tx(&sc, "set xtics (");
        for (size_t j = 0; j < nl; j++) tx(&sc, "%s%g", j ? ", " : "", lens[j]);
        tx(&sc, ")\n");
    }
    tx(&sc, "set logscale xy\n"
            "set format x '%%g'\n"
            "set format y '%s'\n"
            "set key outside right top box opaque spacing 1.2\n"
            "set datafile missing 'nan'\n"
            "plot \\\n",
       memory ? "%g" : "%.0s%c");
    size_t block = 0, first_series = 1;
    for (size_t i = 0; i < k;) {
        size_t j = i;
        while (j < k && !strcmp(pt[j].method, pt[i].method)) j++;
        tx(&data, "# ");
        tx_comment(&data, pt[i].method);
        tx(&data, "\n");
        int has_i = 0, has_t = 0;
        for (size_t q = i; q < j; q++) {
            tx(&data, "%.17g %.17g %.17g\n", pt[q].len, pt[q].infer, pt[q].train);
            has_i |= !isnan(pt[q].infer);
            has_t |= !isnan(pt[q].train);
        }
        tx(&data, "\n\n");
        char title[256];
        const char *color = method_color(pt[i].method, i);
        int ptype = method_point(pt[i].method, i);
        char bnote[64] = "";
        if (memory && !isfinite(common_batch) && isfinite(pt[i].batch))
            snprintf(bnote, sizeof bnote, ", batch %.0f", pt[i].batch);
        if (has_i) {
            snprintf(title, sizeof title, "%s%s%s", pt[i].method, any_train ? ", inference" : "", bnote);
            tx(&sc, "%s    '%s.dat' index %zu using 1:2 with linespoints lw 2.2 pt %d ps 1.6 lc rgb '%s' title ",
               first_series ? "" : ", \\\n", base, block, ptype, color);
            tx_quoted(&sc, title);
            tx(&sc, " noenhanced");
            first_series = 0;
        }
        if (has_t) {
            snprintf(title, sizeof title, "%s, training%s", pt[i].method, bnote);
            tx(&sc, "%s    '%s.dat' index %zu using 1:3 with linespoints lw 2.2 dt 2 pt %d ps 1.6 lc rgb '%s' title ",
               first_series ? "" : ", \\\n", base, block, open_point(ptype), color);
            tx_quoted(&sc, title);
            tx(&sc, " noenhanced");
            first_series = 0;
        }
        block++;
        i = j;
    }
    tx(&sc, "\n");
    free(pt);
    rc = render(gnuplot, dir, base, &data, &sc, err, errlen);
    free(data.p);
    free(sc.p);
    if (!rc) *made = 1;
    return rc;
}
