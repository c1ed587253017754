// `maelre-bench profile`: argument parsing and printing around tasks/profile.h, which does the
// measuring. Writes DIR/profile.csv and DIR/profile.json (atomically, after every finished
// row, so an interrupted run keeps what it finished) and a readable table on stdout; progress
// on stderr. Exit codes: 0 ok (skipped rows included), 2 usage, 4 I/O, 5 a row ran out of
// memory (the files are still written), 130 interrupted.
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/commands.h"
#include "core/kernels.h"
#include "core/model.h"
#include "core/status.h"
#include "core/threads.h"
#include "results/table.h"
#include "tasks/profile.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: maelre-bench profile --out DIR [options]\n"
        "  FLOPs, peak memory and speed of one inference pass (and with --train one training step:\n"
        "  forward + backward + AdamW) per (method, sequence length), on random tokens (vocab 257)\n"
        "  with the default model (D=64, H=2, M=128, 4 blocks, 2 classes, max_len = the length).\n"
        "options:\n"
        "  --method LIST      comma-separated methods of `maelre-bench list`, or all (default all)\n"
        "  --seq-len LIST     sequence lengths, e.g. 1024,2048,4096 (default 1024,2048,4096)\n"
        "  --batch N          samples per pass (default 8)\n"
        "  --train            also measure a training step\n"
        "  --softmax-impl L   tiled, dense or tiled,dense (default tiled): how exact softmax\n"
        "                     attention is computed. dense materialises the N x N scores of every\n"
        "                     head (the textbook form); its rows are named <method>-dense\n"
        "  --threads N        OpenMP/OpenBLAS threads (default 0 = all cores)\n"
        "  --mem-limit L      BYTES (suffixes K, M, G, T = powers of 1024), P%% of physical RAM,\n"
        "                     or 0 for none (default 80%%). Rows whose computed need\n"
        "                     (model_bytes_needed x batch) exceeds it are not run: status skipped.\n"
        "  --seed S           model and token seed (default 1)\n"
        "  --min-time S       seconds of timed repetitions per measurement (default 1)\n"
        "  --min-reps N       at least N timed repetitions (default 3); one warm-up is excluded\n"
        "  --out DIR          writes DIR/profile.csv and DIR/profile.json\n");
}

static int bad(const char *fmt, const char *arg) {
    fprintf(stderr, "maelre-bench: profile: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see `maelre-bench profile --help`)\n");
    return MB_ERR_USAGE;
}

// Whole-string unsigned integer; 0 on success.
static int parse_size(const char *s, size_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_mem_limit(const char *s, size_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return -1;
    if (!strcmp(end, "%")) {
        size_t phys = profile_physical_memory();
        if (!(v > 0 && v <= 100) || !phys) return -1;
        *out = (size_t)((double)phys * v / 100.0);
        return 0;
    }
    double mult = 1;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, end[0] >= 'a' ? end[0] - 32 : end[0]);
        if (!u || !end[0]) return -1;
        for (const char *p = units; p <= u; p++) mult *= 1024;
        const char *rest = end + 1;
        if (*rest && strcmp(rest, "iB") && strcmp(rest, "B")) return -1;
    }
    double bytes = v * mult;
    if (bytes >= 18446744073709551615.0) return -1;
    *out = (size_t)bytes;
    return 0;
}

// Comma-separated list of positive sizes (at most cap).
static int parse_size_list(const char *s, size_t *out, size_t cap, size_t *n) {
    *n = 0;
    char buf[1024];
    if (!s || strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        size_t v;
        if (*n == cap || parse_size(tok, &v) || v == 0) return -1;
        out[(*n)++] = v;
    }
    return *n ? 0 : -1;
}

static int parse_methods(const char *s, Method *out, size_t *n) {
    *n = 0;
    char buf[256];
    if (!s || strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "all")) {
            for (int m = 0; m < METHOD_COUNT; m++) out[m] = (Method)m;
            *n = METHOD_COUNT;
            continue;
        }
        Method m;
        if (method_parse(tok, &m)) return -1;
        int dup = 0;
        for (size_t i = 0; i < *n; i++) dup |= out[i] == m;
        if (!dup) {
            if (*n == METHOD_COUNT) return -1;
            out[(*n)++] = m;
        }
    }
    return *n ? 0 : -1;
}

static int mkdir_p(const char *dir) {
    char buf[PATH_MAX];
    if (strlen(dir) >= sizeof buf) return -1;
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    struct stat st;
    return stat(buf, &st) || !S_ISDIR(st.st_mode) ? -1 : 0;
}

static void print_progress(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "profile: %s\n", msg);
}

static const char *mib(char *buf, size_t bytes) {
    snprintf(buf, 32, "%.1f", (double)bytes / (1024.0 * 1024.0));
    return buf;
}

// Comma-separated softmax implementations, without repeats.
static int parse_impls(const char *s, SoftmaxImpl *out, size_t *n) {
    *n = 0;
    char buf[64];
    if (!s || strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        SoftmaxImpl v;
        if (softmax_impl_parse(tok, &v)) return -1;
        int dup = 0;
        for (size_t i = 0; i < *n; i++) dup |= out[i] == v;
        if (!dup) out[(*n)++] = v;
    }
    return *n ? 0 : -1;
}

static void print_header(void) {
    printf("%-13s %8s %5s %8s %10s %10s %11s %11s %10s %10s %8s %8s %4s %4s  %s\n", "method", "N", "batch",
           "params", "GF_inf/s", "GF_trn/s", "peak_inf", "peak_trn", "inf_ms/s", "trn_ms/s", "GF/s_inf",
           "GF/s_trn", "soft", "eff", "status");
    printf("%-13s %8s %5s %8s %10s %10s %11s %11s %10s %10s %8s %8s %4s %4s\n", "", "", "", "", "(GFLOP)",
           "(GFLOP)", "(MiB)", "(MiB)", "", "", "", "", "blk", "blk");
}

static void print_row(const ProfileResult *r) {
    char a[32], b[32];
    int ran = r->status != PROFILE_SKIPPED && r->infer_reps;
    char name[32];
    printf("%-13s %8zu %5zu %8zu ", profile_variant(r, name, sizeof name), r->seq_len, r->batch, ran ? r->params : 0);
    if (ran) printf("%10.4g ", r->flops_infer / 1e9); else printf("%10s ", "-");
    if (r->trained) printf("%10.4g ", r->flops_train / 1e9); else printf("%10s ", "-");
    printf("%11s ", r->peak_mem_infer ? mib(a, r->peak_mem_infer) : "-");
    printf("%11s ", r->peak_mem_train ? mib(b, r->peak_mem_train) : "-");
    if (ran) printf("%10.4g ", r->infer_ms); else printf("%10s ", "-");
    if (r->trained) printf("%10.4g ", r->train_ms); else printf("%10s ", "-");
    if (ran) printf("%8.1f ", r->gflops_infer); else printf("%8s ", "-");
    if (r->trained) printf("%8.1f ", r->gflops_train); else printf("%8s ", "-");
    if (ran) printf("%4.3g %4.3g  ", r->blocks_softmax, r->blocks_efficient); else printf("%4s %4s  ", "-", "-");
    printf("%s%s\n", profile_status_name(r->status),
           r->status == PROFILE_SKIPPED || r->status == PROFILE_TRAIN_SKIPPED ? " (peak = computed need)" : "");
    fflush(stdout);
}

static int write_tables(const Table *t, const char *dir) {
    char path[PATH_MAX], err[512];
    int rc;
    snprintf(path, sizeof path, "%s/profile.csv", dir);
    if ((rc = table_write_csv(t, path, err, sizeof err))) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        return rc;
    }
    snprintf(path, sizeof path, "%s/profile.json", dir);
    if ((rc = table_write_json(t, path, err, sizeof err))) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        return rc;
    }
    return MB_OK;
}

// Measures one (method, N) row, prints it and rewrites the tables with it.
static int profile_row(const ProfileOptions *o, Method method, size_t n, Table *t, const char *out_dir,
                       int *nomem) {
    ProfileResult r;
    char err[512] = "";
    int rc = profile_measure(o, method, n, &r, err, sizeof err);
    if (rc) {
        if (rc != MB_ERR_INTERRUPTED) fprintf(stderr, "maelre-bench: %s N=%zu: %s\n", method_name(method), n, err);
        return rc;
    }
    if (r.status == PROFILE_NOMEM) {
        *nomem = 1;
        fprintf(stderr, "maelre-bench: %s N=%zu: out of memory (computed need %zu bytes)\n", method_name(method), n,
                o->train ? r.need_train : r.need_infer);
    }
    print_row(&r);
    if (profile_table_add(t, &r, o->mem_limit)) {
        fprintf(stderr, "maelre-bench: out of memory for the result table\n");
        return MB_ERR_NOMEM;
    }
    return write_tables(t, out_dir);
}

int cmd_profile(int argc, char **argv) {
    ProfileOptions o;
    profile_options_default(&o);
    Method methods[METHOD_COUNT];
    size_t n_methods = 0, seq[64], n_seq = 0, threads = 0, n_impls = 1;
    SoftmaxImpl impls[SOFTMAX_IMPL_COUNT] = {SOFTMAX_TILED};
    const char *out_dir = NULL;
    int have_limit = 0;
    parse_methods("all", methods, &n_methods);
    parse_size_list("1024,2048,4096", seq, 64, &n_seq);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return MB_OK; }
        if (!strcmp(a, "--train")) { o.train = 1; continue; }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(a, "--", 2)) return bad("unexpected argument '%s'", a);
        if (!v) return bad("%s needs a value", a);
        i++;
        if (!strcmp(a, "--method")) {
            if (parse_methods(v, methods, &n_methods))
                return bad("--method: '%s' is not a list of methods of `maelre-bench list`, or all", v);
        } else if (!strcmp(a, "--seq-len")) {
            if (parse_size_list(v, seq, 64, &n_seq))
                return bad("--seq-len: '%s' is not a comma-separated list of positive integers (at most 64)", v);
        } else if (!strcmp(a, "--softmax-impl")) {
            if (parse_impls(v, impls, &n_impls)) return bad("--softmax-impl: '%s' is not tiled, dense or tiled,dense", v);
        } else if (!strcmp(a, "--batch")) {
            if (parse_size(v, &o.batch) || o.batch == 0 || o.batch > 1000000)
                return bad("--batch: '%s' is not a positive integer", v);
        } else if (!strcmp(a, "--threads")) {
            if (parse_size(v, &threads) || threads > 4096) return bad("--threads: '%s' is not a thread count", v);
        } else if (!strcmp(a, "--mem-limit")) {
            if (parse_mem_limit(v, &o.mem_limit))
                return bad("--mem-limit: '%s' is not BYTES (K/M/G/T suffixes), P%% (0 < P <= 100) or 0", v);
            have_limit = 1;
        } else if (!strcmp(a, "--seed")) {
            size_t s;
            if (parse_size(v, &s)) return bad("--seed: '%s' is not a non-negative integer", v);
            o.seed = (uint64_t)s;
        } else if (!strcmp(a, "--min-time")) {
            char *end;
            errno = 0;
            o.min_time = strtod(v, &end);
            if (errno || end == v || *end || !(o.min_time >= 0 && o.min_time <= 3600))
                return bad("--min-time: '%s' is not a number of seconds in [0, 3600]", v);
        } else if (!strcmp(a, "--min-reps")) {
            if (parse_size(v, &o.min_reps) || o.min_reps == 0 || o.min_reps > 100000)
                return bad("--min-reps: '%s' is not a positive integer", v);
        } else if (!strcmp(a, "--out")) {
            out_dir = v;
        } else {
            return bad("unknown option '%s'", a);
        }
    }
    if (!out_dir || !*out_dir) return bad("%s", "--out DIR is required");
    if (!have_limit) {
        size_t phys = profile_physical_memory();
        o.mem_limit = phys ? (size_t)((double)phys * 0.8) : 0;
    }
    if (mkdir_p(out_dir)) {
        fprintf(stderr, "maelre-bench: profile: cannot create output folder '%s': %s\n", out_dir, strerror(errno));
        return MB_ERR_IO;
    }
    o.threads = threads_set((int)threads);
    o.progress = print_progress;
    struct sigaction old;
    o.stop = cli_stop_on_sigint(&old);

    fprintf(stderr, "profile: %zu method(s) x %zu length(s), batch %zu, %d thread(s), mem limit %.2f GiB%s, kernels %s\n",
            n_methods, n_seq, o.batch, o.threads, (double)o.mem_limit / (1024.0 * 1024.0 * 1024.0),
            o.mem_limit ? "" : " (none)", kernels_name(kernels_active()));
    Table *t = profile_table_new();
    if (!t) { fprintf(stderr, "maelre-bench: out of memory\n"); return MB_ERR_NOMEM; }
    int rc = MB_OK, nomem = 0;
    print_header();
    for (size_t mi = 0; mi < n_methods && !rc; mi++) {
        size_t ni = method_has_softmax(methods[mi]) ? n_impls : 1;  // e.g. linformer has no softmax block
        for (size_t ii = 0; ii < ni && !rc; ii++) {
            o.softmax_impl = impls[ii];
            for (size_t si = 0; si < n_seq && !rc; si++) rc = profile_row(&o, methods[mi], seq[si], t, out_dir, &nomem);
        }
    }
    sigaction(SIGINT, &old, NULL);
    size_t rows = table_rows(t);
    table_free(t);
    if (rc == MB_ERR_INTERRUPTED && rows)
        fprintf(stderr, "maelre-bench: interrupted; %zu finished row(s) kept in %s/profile.{csv,json}\n", rows,
                out_dir);
    else if (rc == MB_ERR_INTERRUPTED)
        fprintf(stderr, "maelre-bench: interrupted before the first row finished; nothing written\n");
    else if (!rc)
        fprintf(stderr, "profile: wrote %s/profile.csv and %s/profile.json (%zu rows)\n", out_dir, out_dir, rows);
    if (!rc && nomem) rc = MB_ERR_NOMEM;
    return rc;
}
