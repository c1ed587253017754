// `maelre-bench profile` end to end through the CLI (MAELRE_BIN, set by `make test`; skipped when
// unset): a tiny run writes profile.csv and profile.json with every column and sane values, a
// --mem-limit forces `skipped` / `train-skipped` rows carrying the computed need, and bad
// arguments exit 2 (an unwritable --out exits 4). Times are not checked: they belong in bench/.
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/attention.h"
#include "core/model.h"
#include "results/table.h"

static const char *const k_required[] = {
    "method", "seq_len", "batch", "threads", "params", "flops_infer_per_sample", "flops_train_per_sample",
    "macs_infer_per_sample", "peak_mem_infer_bytes", "peak_mem_train_bytes", "infer_ms_per_sample",
    "train_ms_per_sample", "gflops_infer", "gflops_train", "blocks_softmax", "blocks_efficient", "status",
};
#define N_REQUIRED (sizeof k_required / sizeof k_required[0])

static const char *bin(void) {
    const char *b = getenv("MAELRE_BIN");
    if (!b || !*b) cr_skip_test("MAELRE_BIN is not set (run through `make test`)");
    return b;
}

// Runs the CLI with args (NULL-terminated), output to /dev/null; returns the exit status.
static int run_cli(const char *const *args) {
    const char *b = bin();
    const char *argv[64];
    size_t n = 0;
    argv[n++] = b;
    for (size_t i = 0; args[i]; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(b, (char *const *)argv);
        _exit(127);
    }
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *tmpdir(void) {
    char *d = strdup("/tmp/maelre-test-profile-XXXXXX");
    cr_assert(mkdtemp(d));
    return d;
}

static void rm_dir(const char *d) {
    char p[512];
    snprintf(p, sizeof p, "%s/profile.csv", d); unlink(p);
    snprintf(p, sizeof p, "%s/profile.json", d); unlink(p);
    rmdir(d);
}

static Table *read_csv(const char *dir) {
    char p[512], err[512] = "";
    snprintf(p, sizeof p, "%s/profile.csv", dir);
    Table *t = NULL;
    cr_assert_eq(table_read_csv(&t, p, err, sizeof err), 0, "%s", err);
    for (size_t c = 0; c < N_REQUIRED; c++) {
        int found = 0;
        for (size_t i = 0; i < table_columns(t); i++) found |= !strcmp(table_column(t, i), k_required[c]);
        cr_assert(found, "profile.csv lacks column %s", k_required[c]);
    }
    return t;
}

static double num(const Table *t, size_t row, const char *col) {
    double v = NAN;
    cr_assert_eq(table_get_num(t, row, col, &v), 0, "row %zu: %s is not a number", row, col);
    return v;
}

static int is_unset(const Table *t, size_t row, const char *col) {
    double v;
    return table_get_num(t, row, col, &v) != 0 && table_get_str(t, row, col) == NULL;
}

static size_t find_row(const Table *t, const char *method, double n) {
    for (size_t r = 0; r < table_rows(t); r++) {
        const char *m = table_get_str(t, r, "method");
        double v;
        if (m && !strcmp(m, method) && !table_get_num(t, r, "seq_len", &v) && v == n) return r;
    }
    cr_assert_fail("no row for %s N=%g", method, n);
    return 0;
}

// Matrix-product FLOPs of one vanilla forward per sample (SPEC §6: 2 per multiply-add).
static double vanilla_matmul_flops(double N, double D, double M, double blocks, double classes) {
    double per_block = 2 * N * D * 3 * D + 2 * N * D * D + 2 * 2 * N * N * D + 2 * 2 * N * D * M;
    return blocks * per_block + 2 * D * classes;
}

Test(profile, small_run_writes_both_files_with_sane_values, .timeout = 60) {
    char *dir = tmpdir();
    const char *args[] = {"profile", "--method", "all", "--seq-len", "40,100", "--batch", "2", "--train",
                          "--threads", "1", "--min-time", "0", "--min-reps", "2", "--seed", "3",
                          "--out", dir, NULL};
    cr_assert_eq(run_cli(args), 0);
    Table *t = read_csv(dir);
    cr_assert_eq(table_rows(t), 2 * METHOD_COUNT);   // every method of the table, two lengths
    const char *methods[] = {"vanilla", "linformer", "tome", "maelre"};
    for (size_t mi = 0; mi < 4; mi++) {
        for (int k = 0; k < 2; k++) {
            double n = k ? 100 : 40;
            size_t r = find_row(t, methods[mi], n);
            cr_assert_str_eq(table_get_str(t, r, "status"), "ok");
            cr_assert_eq(num(t, r, "batch"), 2);
            cr_assert_eq(num(t, r, "threads"), 1);
            cr_assert_gt(num(t, r, "params"), 0);
            double fi = num(t, r, "flops_infer_per_sample"), ft = num(t, r, "flops_train_per_sample");
            double mi_ = num(t, r, "macs_infer_per_sample");
            cr_assert_gt(fi, 0);
            cr_assert_gt(ft, 1.5 * fi, "%s N=%g: training %g vs inference %g FLOPs", methods[mi], n, ft, fi);
            cr_assert(2 * mi_ <= fi && 2 * mi_ > 0.5 * fi, "%s: MACs %g vs FLOPs %g", methods[mi], mi_, fi);
            double pi = num(t, r, "peak_mem_infer_bytes"), pt = num(t, r, "peak_mem_train_bytes");
            // at least the parameters (4 bytes each); training also holds grads and two moments
            cr_assert_geq(pi, 4 * num(t, r, "params"));
            cr_assert_geq(pt, 16 * num(t, r, "params"), "%s: train peak %g for %g params", methods[mi], pt,
                          num(t, r, "params"));
            cr_assert_gt(pt, pi);
            cr_assert_gt(num(t, r, "infer_ms_per_sample"), 0);
            cr_assert_gt(num(t, r, "train_ms_per_sample"), 0);
            cr_assert_gt(num(t, r, "gflops_infer"), 0);
            cr_assert_gt(num(t, r, "gflops_train"), 0);
            cr_assert_geq(num(t, r, "infer_reps"), 2);
            double soft = num(t, r, "blocks_softmax"), eff = num(t, r, "blocks_efficient");
            double lin = num(t, r, "blocks_linformer");
            double rest = num(t, r, "blocks_linear") + num(t, r, "blocks_performer") + num(t, r, "blocks_nystromformer") +
                          num(t, r, "blocks_local") + num(t, r, "blocks_bigbird");
            cr_assert_eq(rest, 0.0, "%s N=%g: SPEC §9 kinds used", methods[mi], n);
            cr_assert_float_eq(soft + eff + lin, 4.0, 1e-9, "%s N=%g: %g+%g+%g blocks", methods[mi], n, soft, eff,
                               lin);
            if (mi == 0 || mi == 2) cr_assert_eq(soft, 4);
            if (mi == 1) cr_assert_eq(lin, 4);
        }
    }
    // SPEC §9 methods: their kind in every block, and the other rows
    const char *news[] = {"performer", "nystromformer", "linear", "efficient", "maelre-exact", "local", "bigbird"};
    const char *cols[] = {"blocks_performer", "blocks_nystromformer", "blocks_linear", "blocks_efficient", "blocks_softmax",
                          "blocks_local", "blocks_bigbird"};
    for (size_t mi = 0; mi < 7; mi++)
        for (int k = 0; k < 2; k++) {
            size_t r = find_row(t, news[mi], k ? 100 : 40);
            cr_assert_str_eq(table_get_str(t, r, "status"), "ok");
            cr_assert_eq(num(t, r, cols[mi]), 4, "%s: %s", news[mi], cols[mi]);
            cr_assert_gt(num(t, r, "flops_train_per_sample"), 1.5 * num(t, r, "flops_infer_per_sample"));
        }
    // MAELRE: N=40 <= D is exact softmax throughout; N=100 > D starts with efficient attention
    // (100 -> 25 tokens after the first stage, then softmax).
    cr_assert_eq(num(t, find_row(t, "maelre", 40), "blocks_softmax"), 4);
    cr_assert_eq(num(t, find_row(t, "maelre", 100), "blocks_efficient"), 1);
    cr_assert_eq(num(t, find_row(t, "maelre", 100), "blocks_softmax"), 3);
    // Vanilla inference FLOPs: the analytic matrix products plus a little element-wise work.
    for (int k = 0; k < 2; k++) {
        double n = k ? 100 : 40;
        size_t r = find_row(t, "vanilla", n);
        double mm = vanilla_matmul_flops(n, 64, 128, 4, 2);
        double fi = num(t, r, "flops_infer_per_sample"), macs = num(t, r, "macs_infer_per_sample");
        cr_assert(fi >= mm && fi <= 1.5 * mm, "vanilla N=%g: %g FLOPs vs %g in matrix products", n, fi, mm);
        cr_assert(2 * macs >= 0.99 * mm && 2 * macs <= 1.05 * mm, "vanilla N=%g: %g MACs vs %g", n, macs, mm / 2);
    }
    // local (w = 512) and bigbird (b = 64, r = 3) are dense at N <= 256: vanilla's FLOPs exactly.
    for (int k = 0; k < 2; k++) {
        double n = k ? 100 : 40, fv = num(t, find_row(t, "vanilla", n), "flops_train_per_sample");
        for (int s = 0; s < 2; s++) {
            size_t r = find_row(t, s ? "bigbird" : "local", n);
            cr_assert_str_eq(table_get_str(t, r, "status"), "ok");
            cr_assert_eq(num(t, r, "flops_train_per_sample"), fv, "%s N=%g", s ? "bigbird" : "local", n);
        }
    }
    // Quadratic attention: vanilla FLOPs grow faster than linearly from 40 to 100 tokens.
    cr_assert_gt(num(t, find_row(t, "vanilla", 100), "flops_infer_per_sample"),
                 2.5 * num(t, find_row(t, "vanilla", 40), "flops_infer_per_sample"));
    table_free(t);

    // The JSON: an array of 2 x METHOD_COUNT objects, each with every column.
    char p[512];
    snprintf(p, sizeof p, "%s/profile.json", dir);
    FILE *f = fopen(p, "rb");
    cr_assert(f);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *arr = cJSON_Parse(buf);
    cr_assert(cJSON_IsArray(arr));
    cr_assert_eq(cJSON_GetArraySize(arr), 2 * METHOD_COUNT);
    cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        for (size_t c = 0; c < N_REQUIRED; c++)
            cr_assert(cJSON_GetObjectItemCaseSensitive(o, k_required[c]), "profile.json lacks %s", k_required[c]);
        cr_assert(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "status")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "flops_train_per_sample")));
    }
    cJSON_Delete(arr);
    rm_dir(dir);
    free(dir);
}

Test(profile, mem_limit_skips_with_computed_bytes, .timeout = 60) {
    ModelConfig cfg;
    model_config_default(&cfg, METHOD_VANILLA, 257, 0, 200, 2);
    size_t need_i = model_bytes_needed(&cfg, 200, 0) * 3, need_t = model_bytes_needed(&cfg, 200, 1) * 3;
    cr_assert_gt(need_t, need_i);
    char *dir = tmpdir();
    char limit[64];
    // Below both: nothing runs, the peak columns carry the computed need.
    snprintf(limit, sizeof limit, "%zu", need_i - 1);
    const char *a1[] = {"profile", "--method", "vanilla", "--seq-len", "200", "--batch", "3", "--train",
                        "--threads", "1", "--min-time", "0", "--min-reps", "1", "--mem-limit", limit,
                        "--out", dir, NULL};
    cr_assert_eq(run_cli(a1), 0);
    Table *t = read_csv(dir);
    cr_assert_eq(table_rows(t), 1);
    cr_assert_str_eq(table_get_str(t, 0, "status"), "skipped");
    cr_assert_eq(num(t, 0, "peak_mem_infer_bytes"), (double)need_i);
    cr_assert_eq(num(t, 0, "peak_mem_train_bytes"), (double)need_t);
    cr_assert(is_unset(t, 0, "infer_ms_per_sample"));
    cr_assert(is_unset(t, 0, "flops_infer_per_sample"));
    table_free(t);
    // Between the two: inference runs (measured peak), training is skipped (computed need).
    snprintf(limit, sizeof limit, "%zu", need_i + (need_t - need_i) / 2);
    cr_assert_eq(run_cli(a1), 0);
    t = read_csv(dir);
    cr_assert_str_eq(table_get_str(t, 0, "status"), "train-skipped");
    cr_assert_gt(num(t, 0, "infer_ms_per_sample"), 0);
    cr_assert_gt(num(t, 0, "flops_infer_per_sample"), 0);
    cr_assert_eq(num(t, 0, "peak_mem_train_bytes"), (double)need_t);
    double measured = num(t, 0, "peak_mem_infer_bytes");
    cr_assert(measured > 0 && measured <= (double)need_i,
              "measured inference peak %g above the computed need %zu", measured, need_i);
    cr_assert(is_unset(t, 0, "train_ms_per_sample"));
    table_free(t);
    rm_dir(dir);
    free(dir);
}

// --softmax-impl tiled,dense: softmax-using methods get a second row named <method>-dense with
// the same FLOPs and at least the H N^2 floats of saved P more inference memory; linformer,
// which has no softmax block, runs once.
Test(profile, dense_softmax_rows, .timeout = 60) {
    char *dir = tmpdir();
    const char *args[] = {"profile", "--method", "vanilla,linformer,maelre", "--softmax-impl", "tiled,dense",
                          "--seq-len", "256", "--batch", "1", "--threads", "1", "--min-time", "0",
                          "--min-reps", "1", "--out", dir, NULL};
    cr_assert_eq(run_cli(args), 0);
    Table *t = read_csv(dir);
    cr_assert_eq(table_rows(t), 5);
    size_t rv = 0, rd = 0, nl = 0;
    for (size_t r = 0; r < table_rows(t); r++) {
        const char *v = table_get_str(t, r, "variant"), *im = table_get_str(t, r, "softmax_impl");
        cr_assert(v, "row %zu has no variant", r);
        if (!strcmp(v, "vanilla")) { rv = r; cr_assert_str_eq(im, "tiled"); }
        if (!strcmp(v, "vanilla-dense")) { rd = r; cr_assert_str_eq(im, "dense"); }
        if (!strcmp(v, "linformer")) { nl++; cr_assert(is_unset(t, r, "softmax_impl")); }
    }
    cr_assert_eq(nl, 1);
    cr_assert_str_eq(table_get_str(t, rd, "method"), "vanilla");
    cr_assert_eq(num(t, rv, "flops_infer_per_sample"), num(t, rd, "flops_infer_per_sample"));
    double extra = num(t, rd, "peak_mem_infer_bytes") - num(t, rv, "peak_mem_infer_bytes");
    // per block the dense kernel saves P (H N^2 floats) where the tiled one keeps statistics,
    // one block of scores and packed K, V: the difference of the two save sizes, at least
    double diff = 4.0 * ((double)attn_softmax_dense_save_floats(256, 64, 2) - (double)attn_softmax_save_floats(256, 64, 2));
    cr_assert_gt(diff, 0);
    cr_assert_geq(extra, diff, "dense holds %g more bytes, its save alone is %g bytes bigger", extra, diff);
    table_free(t);
    rm_dir(dir);
    free(dir);
}

Test(profile, bad_arguments_exit_2) {
    const char *cases[][8] = {
        {"profile", "--seq-len", "64", NULL},                                    // no --out
        {"profile", "--method", "transformer", "--out", "/tmp/x", NULL},
        {"profile", "--method", "", "--out", "/tmp/x", NULL},
        {"profile", "--seq-len", "0", "--out", "/tmp/x", NULL},
        {"profile", "--seq-len", "64,abc", "--out", "/tmp/x", NULL},
        {"profile", "--seq-len", "-5", "--out", "/tmp/x", NULL},
        {"profile", "--batch", "0", "--out", "/tmp/x", NULL},
        {"profile", "--batch", "8x", "--out", "/tmp/x", NULL},
        {"profile", "--mem-limit", "150%", "--out", "/tmp/x", NULL},
        {"profile", "--mem-limit", "12Q", "--out", "/tmp/x", NULL},
        {"profile", "--threads", "two", "--out", "/tmp/x", NULL},
        {"profile", "--softmax-impl", "sparse", "--out", "/tmp/x", NULL},
        {"profile", "--frobnicate", "--out", "/tmp/x", NULL},
        {"profile", "--out", NULL},                                              // value missing
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(run_cli(cases[i]), 2, "case %zu (%s %s) did not exit 2", i, cases[i][1], cases[i][2]);
}

Test(profile, unwritable_out_exits_4) {
    char *dir = tmpdir();
    char file[512], sub[600];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fclose(f);
    snprintf(sub, sizeof sub, "%s/out", file);   // a folder under a regular file
    const char *args[] = {"profile", "--method", "vanilla", "--seq-len", "8", "--batch", "1", "--min-time", "0",
                          "--min-reps", "1", "--out", sub, NULL};
    cr_assert_eq(run_cli(args), 4);
    unlink(file);
    rmdir(dir);
    free(dir);
}
