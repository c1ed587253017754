// The report: summaries and Markdown from synthetic rows, gnuplot plots (when gnuplot is there),
// and `maelre-bench report` end to end on run/profile folders this test writes, including its
// error paths and exit codes. CLI tests need MAELRE_BIN (set by `make test`); without it they skip.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/status.h"
#include "results/markdown.h"
#include "results/plot.h"
#include "results/table.h"
#include "tests/file_util.h"

static char dir[256];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/maelre-test-report-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void rm_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", dir);
}

TestSuite(report, .init = make_dir, .fini = rm_dir);

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int is_png(const char *path) {
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(b, 1, 8, f);
    fclose(f);
    return got == 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
}

static int have_gnuplot(void) {
    char p[4096], e[256];
    return plot_find_gnuplot(p, sizeof p, e, sizeof e) == MB_OK;
}

// A run row: (task, method, seed, accuracy, stderr, flops, mem).
static void add_run(Table *t, const char *task, const char *method, double seed, double acc,
                    double se, double flops, double mem) {
    size_t r = table_add_row(t);
    cr_assert_eq(table_set_str(t, r, "task", task), MB_OK);
    cr_assert_eq(table_set_str(t, r, "method", method), MB_OK);
    cr_assert_eq(table_set_num(t, r, "seed", seed), MB_OK);
    cr_assert_eq(table_set_num(t, r, "accuracy", acc), MB_OK);
    cr_assert_eq(table_set_num(t, r, "accuracy_stderr", se), MB_OK);
    cr_assert_eq(table_set_num(t, r, "flops_infer_per_sample", flops), MB_OK);
    cr_assert_eq(table_set_num(t, r, "peak_mem_infer_bytes", mem), MB_OK);
    cr_assert_eq(table_set_num(t, r, "infer_samples_per_s", 1000.0 / (flops / 1e9)), MB_OK);
    cr_assert_eq(table_set_num(t, r, "max_len", 4096), MB_OK);
    cr_assert_eq(table_set_num(t, r, "threads", 2), MB_OK);
}

Test(report, formatting) {
    char b[64];
    md_fmt_si(b, sizeof b, 1.234e9, "FLOP");
    cr_assert_str_eq(b, "1.23 GFLOP");
    md_fmt_si(b, sizeof b, 815000, "FLOP");
    cr_assert_str_eq(b, "815 kFLOP");
    md_fmt_si(b, sizeof b, 999.7, "FLOP");
    cr_assert_str_eq(b, "1.00 kFLOP");
    md_fmt_si(b, sizeof b, 12, "FLOP");
    cr_assert_str_eq(b, "12 FLOP");
    md_fmt_bytes(b, sizeof b, 12.3 * 1024 * 1024);
    cr_assert_str_eq(b, "12.3 MiB");
    md_fmt_bytes(b, sizeof b, 512);
    cr_assert_str_eq(b, "512 B");
    md_fmt_bytes(b, sizeof b, NAN);
    cr_assert_str_eq(b, "\xE2\x80\x94");
}

Test(report, summaries_group_and_order_methods) {
    Table *t = table_new(NULL, 0);
    add_run(t, "lra-text", "maelre", 1, 0.60, 0.01, 1e8, 1 << 20);
    add_run(t, "lra-image", "vanilla", 1, 0.40, 0.02, 4e9, 8 << 20);
    add_run(t, "lra-text", "vanilla", 1, 0.50, 0.011, 4e9, 8 << 20);
    add_run(t, "lra-text", "tome", 1, 0.52, 0.01, 2e9, 4 << 20);
    add_run(t, "lra-text", "tome", 2, 0.56, 0.01, 2e9, 4 << 20);
    RunSummary *s;
    size_t n;
    char err[256];
    cr_assert_eq(report_summarize(t, &s, &n, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(s[0].task, "lra-image");
    cr_assert_str_eq(s[1].method, "vanilla");
    cr_assert_str_eq(s[2].method, "tome");
    cr_assert_str_eq(s[3].method, "maelre");
    cr_assert_eq(s[2].runs, 2);
    cr_assert_float_eq(s[2].acc, 0.54, 1e-12);
    // two seeds: sample std-dev over runs / sqrt(runs) = (0.04/sqrt 2)/sqrt 2 = 0.02
    cr_assert_float_eq(s[2].acc_err, 0.02, 1e-12);
    cr_assert_float_eq(s[3].acc_err, 0.01, 1e-15);
    cr_assert(isnan(s[3].train_sps), "missing column -> NAN");
    free(s);
    table_free(t);
}

Test(report, markdown_tables) {
    Table *t = table_new(NULL, 0);
    add_run(t, "lra-text", "maelre", 1, 0.614, 0.0109, 1e9, 2 << 20);
    add_run(t, "lra-text", "vanilla", 1, 0.537, 0.0111, 4e9, 8 << 20);
    add_run(t, "ts-x|y", "tome", 1, 0.9, 0.03, 5e6, 1 << 20);
    Table *p = table_new(NULL, 0);
    const char *ms[] = {"vanilla", "maelre"};
    for (int i = 0; i < 2; i++) {
        for (double len = 256; len <= 512; len *= 2) {
            size_t r = table_add_row(p);
            table_set_str(p, r, "method", ms[i]);
            table_set_num(p, r, "seq_len", len);
            table_set_num(p, r, "batch", 4);
            table_set_num(p, r, "threads", 1);
            table_set_num(p, r, "flops_infer_per_sample", (i ? 1e6 : 2e6) * len);
            table_set_num(p, r, "peak_mem_infer_bytes", (i ? 1 : 4) * len * 1024);
            table_set_str(p, r, "status", "ok");
        }
    }
    size_t r = table_add_row(p);
    table_set_str(p, r, "method", "vanilla");
    table_set_num(p, r, "seq_len", 1 << 20);
    table_set_num(p, r, "peak_mem_infer_bytes", 1e12);
    table_set_str(p, r, "status", "skipped");
    const char *plots[] = {"plots/acc_vs_flops_lra-text.png"};
    MdReportInfo info = {0};
    info.plots = plots;
    info.n_plots = 1;
    info.runs_replaced = 2;
    char *md, err[256];
    cr_assert_eq(md_report(t, p, &info, &md, err, sizeof err), MB_OK, "%s", err);
    cr_assert(strstr(md, "## Task `lra-text`"), "%s", md);
    cr_assert(strstr(md, "| vanilla | 1 | 53.70 \xC2\xB1 1.11 | \xE2\x80\x94 | \xE2\x80\x94 | 4.00 GFLOP | 100% "
                         "| 8.00 MiB | 100% |"), "%s", md);
    cr_assert(strstr(md, "| maelre | 1 | 61.40 \xC2\xB1 1.09 | \xE2\x80\x94 | \xE2\x80\x94 | 1.00 GFLOP | 25.0% "
                         "| 2.00 MiB | 25.0% |"), "%s", md);
    // vanilla comes first although the input listed maelre first
    cr_assert(strstr(md, "| vanilla | 1 |") < strstr(md, "| maelre | 1 |"));
    cr_assert(strstr(md, "![Accuracy against inference FLOPs per sample, lra-text](plots/acc_vs_flops_lra-text.png)"));
    cr_assert(strstr(md, "## Task `ts-x|y`"));
    cr_assert(strstr(md, "No `vanilla` run for this task"));
    cr_assert(!strstr(md, "acc_vs_flops_ts"), "plots not made are not linked");
    cr_assert(strstr(md, "2 run rows and 0 profile rows replaced"));
    cr_assert(strstr(md, "### Sequence length 256"));
    cr_assert(strstr(md, "### Sequence length 512"));
    cr_assert(strstr(md, "| maelre | 4 | 1 | 512 MFLOP | 50.0% |"), "%s", md);
    cr_assert(strstr(md, "| vanilla | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 "
                         "| 931 GiB (need) |"), "%s", md);
    free(md);
    table_free(t);
    table_free(p);
}

// Profile variants: vanilla-dense (profile --softmax-impl tiled,dense) is its own row right after
// vanilla, not a duplicate of it, and adds a "memory vs vanilla-dense" column at that length only.
Test(report, markdown_dense_variant_column) {
    Table *p = table_new(NULL, 0);
    const char *var[] = {"maelre", "vanilla-dense", "vanilla"};
    const char *met[] = {"maelre", "vanilla", "vanilla"};
    double mem[] = {1 << 20, 32 << 20, 2 << 20};
    for (int i = 0; i < 3; i++) {
        size_t r = table_add_row(p);
        table_set_str(p, r, "method", met[i]);
        table_set_str(p, r, "variant", var[i]);
        table_set_num(p, r, "seq_len", 4096);
        table_set_num(p, r, "batch", 1);
        table_set_num(p, r, "threads", 2);
        table_set_num(p, r, "flops_infer_per_sample", 1e9);
        table_set_num(p, r, "peak_mem_infer_bytes", mem[i]);
        table_set_str(p, r, "status", "ok");
    }
    size_t r = table_add_row(p);   // another length without a dense row: no extra column there
    table_set_str(p, r, "method", "vanilla");
    table_set_num(p, r, "seq_len", 1024);
    table_set_num(p, r, "peak_mem_infer_bytes", 1 << 20);
    table_set_str(p, r, "status", "ok");
    char *md, err[256];
    cr_assert_eq(md_report(NULL, p, NULL, &md, err, sizeof err), MB_OK, "%s", err);
    const char *l4096 = strstr(md, "### Sequence length 4096"), *l1024 = strstr(md, "### Sequence length 1024");
    cr_assert(l4096 && l1024 && l1024 < l4096, "%s", md);
    cr_assert(!strstr(l1024, "vanilla-dense") || strstr(l1024, "vanilla-dense") > l4096, "%s", md);
    cr_assert(strstr(l4096, "| memory vs vanilla | memory vs vanilla-dense |"), "%s", md);
    cr_assert(strstr(md, "| maelre | 1 | 2 | 1.00 GFLOP | 100% | \xE2\x80\x94 | 1.00 MiB | 50.0% | 3.12% |"), "%s", md);
    cr_assert(strstr(md, "| vanilla-dense | 1 | 2 |"), "%s", md);
    cr_assert(strstr(md, "| vanilla | 1 | 2 |") < strstr(md, "| vanilla-dense | 1 | 2 |"), "vanilla first: %s", md);
    cr_assert(strstr(md, "| vanilla-dense | 1 | 2 |") < strstr(md, "| maelre | 1 | 2 |"), "%s", md);
    free(md);
    table_free(p);
}

Test(report, plots_are_pngs_when_gnuplot_is_there) {
    if (!have_gnuplot()) { cr_log_warn("gnuplot not installed: plot test skipped"); return; }
    char gp[4096], err[1024];
    cr_assert_eq(plot_find_gnuplot(gp, sizeof gp, err, sizeof err), MB_OK);
    RunSummary s[2] = {{.task = "lra-text", .method = "vanilla", .acc = 0.5, .acc_err = 0.01, .flops_infer = 4e9},
                       {.task = "lra-text", .method = "maelre", .acc = 0.6, .acc_err = NAN, .flops_infer = 1e9}};
    int made = 0;
    cr_assert_eq(plot_acc_vs_flops(gp, dir, "lra-text", s, 2, &made, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(made, 1);
    char p[512];
    snprintf(p, sizeof p, "%s/plots/acc_vs_flops_lra-text.png", dir);
    cr_assert(is_png(p));
    snprintf(p, sizeof p, "%s/plots/acc_vs_flops_lra-text.gp", dir);
    cr_assert(exists(p), "the script is kept for re-styling");
    made = 1;
    cr_assert_eq(plot_acc_vs_flops(gp, dir, "other", s, 2, &made, err, sizeof err), MB_OK);
    cr_assert_eq(made, 0, "no rows for that task: no plot");
    // Scaling: the skipped row must not be drawn.
    Table *t = table_new(NULL, 0);
    for (int i = 0; i < 3; i++) {
        size_t r = table_add_row(t);
        table_set_str(t, r, "method", "vanilla");
        table_set_num(t, r, "seq_len", 256 << i);
        table_set_num(t, r, "batch", 1);
        table_set_num(t, r, "flops_infer_per_sample", 1e6 * (1 << (2 * i)));
        table_set_num(t, r, "peak_mem_infer_bytes", 1e6 * (1 << (2 * i)));
        table_set_str(t, r, "status", i == 2 ? "skipped" : "ok");
    }
    cr_assert_eq(plot_scaling(gp, dir, t, 1, &made, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(made, 1);
    snprintf(p, sizeof p, "%s/plots/memory_vs_seq_len.png", dir);
    cr_assert(is_png(p));
    snprintf(p, sizeof p, "%s/plots/memory_vs_seq_len.dat", dir);
    char *dat = slurp(p);
    cr_assert(strstr(dat, "\n512 ") && !strstr(dat, "\n1024 "), "%s", dat);
    free(dat);
    table_free(t);
    // No temporary files left in the plots folder.
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s/plots' | grep -q tmp", dir);
    cr_assert_neq(system(cmd), 0, "a temporary file was left behind");
}

// ---------------------------------------------------------------------------------------------
// CLI end to end

static const char *bin(void) {
    const char *b = getenv("MAELRE_BIN");
    if (!b || !*b) return NULL;
    static char abs[4096];
    if (b[0] == '/') return b;
    if (!getcwd(abs, sizeof abs)) return NULL;
    size_t n = strlen(abs);
    snprintf(abs + n, sizeof abs - n, "/%s", b);
    return abs;
}

#define NEED_BIN()                                                                     \
    do {                                                                               \
        if (!bin()) {                                                                  \
            cr_skip_test("MAELRE_BIN not set (run through `make test`): CLI test skipped"); \
        }                                                                              \
    } while (0)

// Runs `env maelre-bench report <args>` in dir; returns the exit code, stderr in *errtext (free).
static int report(const char *env, const char *args, char **errtext) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' report %s >stdout.txt 2>stderr.txt", dir,
             env ? env : "", bin(), args);
    int st = system(cmd);
    cr_assert(WIFEXITED(st));
    char p[512];
    snprintf(p, sizeof p, "%s/stderr.txt", dir);
    *errtext = slurp(p);
    return WEXITSTATUS(st);
}

static void in_dir(char *out, size_t n, const char *rel) { snprintf(out, n, "%s/%s", dir, rel); }

// Writes text to <dir>/<sub>/<name>, making the folder <sub> first.
static void put(const char *sub, const char *name, const char *text) {
    char p[512];
    in_dir(p, sizeof p, sub);
    mkdir(p, 0777);
    snprintf(p + strlen(p), sizeof p - strlen(p), "/%s", name);
    spit(p, text);
}

static const char run_header[] =
    "task,method,seed,threads,params,max_len,mean_tokens,train_samples,test_samples,steps,batch,"
    "accuracy,accuracy_stderr,train_seconds,train_samples_per_s,infer_samples_per_s,"
    "flops_infer_per_sample,flops_train_per_sample,macs_infer_per_sample,peak_mem_train_bytes,"
    "peak_mem_infer_bytes,peak_rss_bytes,blocks_softmax,blocks_efficient\n";

// Folder a: CSV with vanilla and maelre (seed 1); folder b: JSON with maelre seed 1 again
// (replaces a's) and linformer, plus a config; folder p: a profile CSV.
static void write_inputs(void) {
    char text[4096];
    snprintf(text, sizeof text, "%s"
             "lra-text,vanilla,1,2,200000,4096,1500,1000,2000,156,16,0.537,0.01116,360,6.9,80,"
             "4000000000,12000000000,2000000000,900000000,300000000,1200000000,4,0\n"
             "lra-text,maelre,1,2,210000,4096,1500,1000,2000,1551,16,0.5,0.0112,360,69,800,"
             "400000000,1200000000,200000000,90000000,30000000,500000000,2,2\n", run_header);
    put("a", "results.csv", text);
    put("b", "results.json", "[{\"task\":\"lra-text\",\"method\":\"maelre\",\"seed\":1,\"accuracy\":0.614,"
            "\"accuracy_stderr\":0.0109,\"flops_infer_per_sample\":400000000,"
            "\"peak_mem_infer_bytes\":30000000,\"config\":{\"lr\":0.0005}},\n"
            " {\"task\":\"lra-text\",\"method\":\"linformer\",\"seed\":1,\"accuracy\":0.521,"
            "\"accuracy_stderr\":0.0112,\"flops_infer_per_sample\":900000000,"
            "\"peak_mem_infer_bytes\":60000000,\"blocks_linformer\":4,\"config\":{\"k\":128}}]\n");
    put("p", "profile.csv", "method,seq_len,batch,threads,params,flops_infer_per_sample,flops_train_per_sample,"
            "macs_infer_per_sample,peak_mem_infer_bytes,peak_mem_train_bytes,infer_ms_per_sample,"
            "train_ms_per_sample,gflops_infer,gflops_train,blocks_softmax,blocks_efficient,status\n"
            "vanilla,1024,4,2,1,4e9,1.2e10,2e9,3e8,9e8,40,120,100,100,4,0,ok\n"
            "vanilla,4096,4,2,1,6e10,1.8e11,3e10,4e9,1.2e10,600,1800,100,100,4,0,ok\n"
            "maelre,1024,4,2,1,4e8,1.2e9,2e8,3e7,9e7,4,12,100,100,2,2,ok\n"
            "maelre,4096,4,2,1,1.6e9,4.8e9,8e8,1.2e8,3.6e8,16,48,100,100,2,2,ok\n");
}

Test(report, cli_merges_runs_and_profiles) {
    NEED_BIN();
    write_inputs();
    char *err;
    int rc = report(NULL, "a b p --out out", &err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "b/results.json: element 0 replaces a/results.csv:3"), "%s", err);
    free(err);
    char p[512];
    in_dir(p, sizeof p, "out/results.csv");
    Table *t = NULL;
    char e[512];
    cr_assert_eq(table_read_csv(&t, p, e, sizeof e), MB_OK, "%s", e);
    cr_assert_eq(table_rows(t), 3, "vanilla, maelre (from b), linformer");
    double v;
    cr_assert_str_eq(table_get_str(t, 1, "method"), "maelre");
    cr_assert_eq(table_get_num(t, 1, "accuracy", &v), MB_OK);
    cr_assert_eq(v, 0.614, "the later input wins");
    cr_assert_str_eq(table_get_str(t, 1, "source"), "b/results.json");
    cr_assert_str_eq(table_get_str(t, 0, "source"), "a/results.csv");
    cr_assert_str_eq(table_column(t, 0), "task", "SPEC column order first");
    table_free(t);
    in_dir(p, sizeof p, "out/results.json");
    cr_assert_eq(table_read_json(&t, p, e, sizeof e), MB_OK, "%s", e);
    cr_assert(table_get_json(t, 2, "config"), "the JSON config is carried through");
    table_free(t);
    in_dir(p, sizeof p, "out/profile.csv");
    cr_assert_eq(table_read_csv(&t, p, e, sizeof e), MB_OK, "%s", e);
    cr_assert_eq(table_rows(t), 4);
    table_free(t);
    in_dir(p, sizeof p, "out/report.md");
    char *md = slurp(p);
    cr_assert(md);
    cr_assert(strstr(md, "| vanilla | 1 | 53.70 \xC2\xB1 1.12 | 156 | 360 s | 4.00 GFLOP | 100% |"), "%s", md);
    cr_assert(strstr(md, "| linformer | 1 | 52.10 \xC2\xB1 1.12 |"), "%s", md);
    cr_assert(strstr(md, "| attention blocks per sample |"), "%s", md);
    cr_assert(strstr(md, "| linformer 4 |\n"), "%s", md);
    cr_assert(strstr(md, "| softmax 4 |\n"), "%s", md);
    cr_assert(strstr(md, "| maelre | 1 | 61.40 \xC2\xB1 1.09 |"), "%s", md);
    cr_assert(strstr(md, "| 400 MFLOP | 10.0% | 28.6 MiB | 10.0% |"), "%s", md);
    cr_assert(strstr(md, "### Sequence length 4096"), "%s", md);
    cr_assert(strstr(md, "| maelre | 4 | 2 | 1.60 GFLOP | 2.67% |"), "%s", md);
    cr_assert(strstr(md, "1 run row and 0 profile rows replaced"), "%s", md);
    if (have_gnuplot()) {
        const char *pngs[] = {"out/plots/acc_vs_flops_lra-text.png", "out/plots/flops_vs_seq_len.png",
                              "out/plots/memory_vs_seq_len.png"};
        for (int i = 0; i < 3; i++) {
            in_dir(p, sizeof p, pngs[i]);
            cr_assert(is_png(p), "%s missing or not a PNG", pngs[i]);
            cr_assert(strstr(md, pngs[i] + 4), "report.md does not link %s", pngs[i]);
        }
    } else {
        cr_log_warn("gnuplot not installed: PNGs not checked");
    }
    free(md);
}

// Profile rows merge on (variant, seq_len, batch, threads): a vanilla-dense row is kept beside
// vanilla, and a row from an older profile without the column counts as its method.
Test(report, cli_profile_variants_merge_apart) {
    NEED_BIN();
    char p[512];
    put("q1", "profile.csv", "method,seq_len,batch,threads,peak_mem_infer_bytes,status\nvanilla,1024,1,2,3e6,ok\n");
    put("q2", "profile.csv", "method,seq_len,batch,threads,peak_mem_infer_bytes,status,variant,softmax_impl\n"
            "vanilla,1024,1,2,4e6,ok,vanilla,tiled\nvanilla,1024,1,2,1.1e7,ok,vanilla-dense,dense\n");
    char *err;
    int rc = report(NULL, "q1 q2 --out outv --no-plots", &err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "q2/profile.csv:2 replaces q1/profile.csv:2"), "%s", err);
    free(err);
    in_dir(p, sizeof p, "outv/profile.csv");
    Table *t = NULL;
    char e[512];
    cr_assert_eq(table_read_csv(&t, p, e, sizeof e), MB_OK, "%s", e);
    cr_assert_eq(table_rows(t), 2, "vanilla (from q2) and vanilla-dense");
    cr_assert_str_eq(table_get_str(t, 0, "variant"), "vanilla");
    cr_assert_str_eq(table_get_str(t, 1, "variant"), "vanilla-dense");
    table_free(t);
}

Test(report, cli_without_gnuplot_still_writes_tables) {
    NEED_BIN();
    write_inputs();
    char *err, p[512];
    int rc = report("MAELRE_GNUPLOT=/nonexistent/gnuplot", "a --out out", &err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "warning: gnuplot not found"), "%s", err);
    free(err);
    in_dir(p, sizeof p, "out/report.md");
    char *md = slurp(p);
    cr_assert(md && strstr(md, "Plots were not made"), "%s", md ? md : "(no report.md)");
    free(md);
    in_dir(p, sizeof p, "out/results.csv");
    cr_assert(exists(p));
    in_dir(p, sizeof p, "out/plots/acc_vs_flops_lra-text.png");
    cr_assert(!exists(p));
}

Test(report, cli_gnuplot_failure_is_exit_1) {
    NEED_BIN();
    write_inputs();
    char *err, p[512];
    int rc = report("MAELRE_GNUPLOT=/bin/false", "a --out out", &err);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "gnuplot failed"), "%s", err);
    free(err);
    in_dir(p, sizeof p, "out/report.md");
    cr_assert(exists(p), "report.md is still written");
    in_dir(p, sizeof p, "out/plots/acc_vs_flops_lra-text.png");
    cr_assert(!exists(p));
}

// Bad input: exit code, message, and no output folder at all.
static void expect_fail(const char *args, int code, const char *msg) {
    char *err, p[512];
    int rc = report(NULL, args, &err);
    cr_assert_eq(rc, code, "'%s': exit %d, want %d: %s", args, rc, code, err);
    cr_assert(strstr(err, msg), "'%s': stderr '%s' lacks '%s'", args, err, msg);
    cr_assert(!strncmp(err, "maelre-bench: ", 14), "%s", err);
    free(err);
    in_dir(p, sizeof p, "bad-out");
    cr_assert(!exists(p), "'%s' created an output folder", args);
}

Test(report, cli_bad_input_exit_codes) {
    NEED_BIN();
    write_inputs();
    char p[512], text[4096];
    in_dir(p, sizeof p, "empty");
    mkdir(p, 0777);
    expect_fail("a empty --out bad-out", 3, "empty: no results.json, results.csv");
    expect_fail("a missing --out bad-out", 3, "missing: No such file");
    snprintf(text, sizeof text, "%slra-text,vanilla,1\n", run_header);
    put("short", "results.csv", text);
    expect_fail("a short --out bad-out", 3, "short/results.csv:2: 3 fields, but the header has 24");
    put("word", "results.csv", "task,method,accuracy\nlra-text,vanilla,0.5\nlra-text,tome,high\n");
    expect_fail("a word --out bad-out", 3, "word/results.csv:3: accuracy is 'high', not a number");
    put("pct", "results.csv", "task,method,accuracy\nlra-text,vanilla,53.7\n");
    expect_fail("pct --out bad-out", 3, "pct/results.csv:2: accuracy 53.7 is not a fraction");
    put("bj", "results.json", "[{\"task\": \"x\",\n \"method\": }]\n");
    expect_fail("bj --out bad-out", 3, "bj/results.json:2: malformed JSON");
    put("nt", "results.csv", "method,accuracy\nvanilla,0.5\n");
    expect_fail("nt --out bad-out", 3, "nt/results.csv: no 'task' column");
    expect_fail("a", 2, "--out DIR is required");
    expect_fail("--out bad-out", 2, "no input folders");
    expect_fail("a --out bad-out --frobnicate", 2, "unknown option '--frobnicate'");
    expect_fail("a --out a", 2, "--out must be a new folder");
}

Test(report, cli_unwritable_output_is_exit_4) {
    NEED_BIN();
    write_inputs();
    char p[512], *err;
    in_dir(p, sizeof p, "plainfile");
    spit(p, "x");
    int rc = report(NULL, "a --out plainfile/sub", &err);
    cr_assert_eq(rc, 4, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "plainfile"), "%s", err);
    free(err);
}

Test(report, cli_takes_files_and_odd_names) {
    NEED_BIN();
    write_inputs();
    char p[512], *err;
    // A task name with a newline, a backtick and a quote must not break the Markdown or the plot.
    in_dir(p, sizeof p, "odd.csv");
    spit(p, "task,method,seed,accuracy,accuracy_stderr,flops_infer_per_sample\n"
            "\"we`ird\n'task\",vanilla,1,0.5,0.1,1e6\n\"we`ird\n'task\",\"m'2\",1,0.6,0.1,5e5\n");
    int rc = report(NULL, "a/results.csv odd.csv p/profile.csv --out out", &err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    free(err);
    in_dir(p, sizeof p, "out/report.md");
    char *md = slurp(p);
    cr_assert(strstr(md, "## Task `we ird 'task`\n"), "%s", md);
    cr_assert(strstr(md, "- `odd.csv`"), "%s", md);
    cr_assert(strstr(md, "### Sequence length 1024"), "the profile file was taken as a profile");
    free(md);
    if (have_gnuplot()) {
        in_dir(p, sizeof p, "out/plots/acc_vs_flops_we_ird__task.png");
        cr_assert(is_png(p), "odd task name: no PNG");
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds, the paired comparison with vanilla, learning curves (SPEC §11)

Test(report, method_order_is_one_table) {
    const char *order[] = {"vanilla", "vanilla-dense", "linformer", "performer", "nystromformer",
                           "linear", "local", "bigbird", "tome", "maelre", "maelre-dense",
                           "maelre-exact", "efficient", "zzz-unknown"};
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++)
        cr_assert_lt(report_method_rank(order[i - 1]), report_method_rank(order[i]), "%s before %s",
                     order[i - 1], order[i]);
    cr_assert_eq(report_method_rank("aaa"), report_method_rank("zzz"), "unknown names tie (then by name)");
    int dense = 0;
    cr_assert_eq(report_method_index("maelre-exact", &dense), report_method_index("maelre", NULL) + 1);
    cr_assert_eq(dense, 0, "maelre-exact is a method, not a variant of maelre");
    cr_assert_eq(report_method_index("tome-dense", &dense), report_method_index("tome", NULL));
    cr_assert_eq(dense, 1);
    cr_assert_eq(report_method_index("-dense", NULL), -1);
}

// Rows with the SPEC §11 columns: several seeds, last weights, validation, majority class.
static void add_seed_run(Table *t, const char *task, const char *method, double seed, double acc,
                         double last, double val, double best, double majority) {
    add_run(t, task, method, seed, acc, 0.01, 1e9, 1 << 20);
    size_t r = table_rows(t) - 1;
    cr_assert_eq(table_set_num(t, r, "accuracy_last", last), MB_OK);
    cr_assert_eq(table_set_num(t, r, "val_accuracy", val), MB_OK);
    cr_assert_eq(table_set_num(t, r, "best_step", best), MB_OK);
    cr_assert_eq(table_set_num(t, r, "majority_accuracy", majority), MB_OK);
}

Test(report, summaries_over_seeds) {
    Table *t = table_new(NULL, 0);
    add_seed_run(t, "lra-listops", "efficient", 1, 0.30, 0.28, 0.31, 400, 0.17);
    add_seed_run(t, "lra-listops", "maelre", 1, 0.36, 0.30, 0.37, 900, 0.17);
    add_seed_run(t, "lra-listops", "maelre", 2, 0.38, 0.36, 0.39, 1100, 0.17);
    add_seed_run(t, "lra-listops", "maelre", 3, 0.40, 0.33, 0.41, 1000, 0.17);
    add_seed_run(t, "lra-listops", "maelre-exact", 1, 0.35, 0.35, 0.36, 1000, 0.17);
    add_run(t, "lra-listops", "vanilla", 1, 0.20, 0.01, 4e9, 8 << 20);   // an older row: no §11 columns
    RunSummary *s;
    size_t n;
    char err[256];
    cr_assert_eq(report_summarize(t, &s, &n, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(s[0].method, "vanilla");
    cr_assert_str_eq(s[1].method, "maelre");
    cr_assert_str_eq(s[2].method, "maelre-exact");
    cr_assert_str_eq(s[3].method, "efficient");
    cr_assert_eq(s[1].runs, 3);
    cr_assert_float_eq(s[1].acc, 0.38, 1e-12);
    cr_assert_float_eq(s[1].acc_std, 0.02, 1e-12, "sample std of 0.36, 0.38, 0.40");
    cr_assert_float_eq(s[1].acc_err, 0.02 / sqrt(3.0), 1e-12);
    cr_assert_float_eq(s[1].acc_last, 0.33, 1e-12);
    cr_assert_float_eq(s[1].acc_last_std, 0.03, 1e-12);
    cr_assert_float_eq(s[1].best_step, 1000, 1e-9);
    cr_assert_float_eq(s[1].majority, 0.17, 1e-12);
    cr_assert(isnan(s[0].acc_last) && isnan(s[0].majority) && isnan(s[0].acc_std), "older row: missing");
    cr_assert(isnan(s[2].acc_std), "one seed: no std");
    cr_assert_float_eq(report_task_majority(t, "lra-listops"), 0.17, 1e-12);
    cr_assert(isnan(report_task_majority(t, "other")));

    char *md;
    cr_assert_eq(md_report(t, NULL, NULL, &md, err, sizeof err), MB_OK, "%s", err);
    cr_assert(strstr(md, "| method | seeds | accuracy (%) |"), "%s", md);
    cr_assert(strstr(md, "| majority class | \xE2\x80\x94 | 17.00 | \xE2\x80\x94 |"), "%s", md);
    cr_assert(strstr(md, "| majority class |") < strstr(md, "| vanilla | 1 |"), "chance comes first");
    cr_assert(strstr(md, "| maelre | 3 | 38.00 \xC2\xB1 2.00 |"), "mean +- sample std: %s", md);
    cr_assert(strstr(md, "| vanilla | 1 | 20.00 \xC2\xB1 1.00 |"), "one seed: binomial stderr: %s", md);
    cr_assert(strstr(md, "| maelre | 3 | 38.00 \xC2\xB1 2.00 | 33.00 \xC2\xB1 3.00 | 39.00 | 1000 | "
                         "1: 36.00, 2: 38.00, 3: 40.00 |"), "seeds table: %s", md);
    cr_assert(strstr(md, "| vanilla | 1 | 20.00 | \xE2\x80\x94 | \xE2\x80\x94 | \xE2\x80\x94 | 1: 20.00 |"), "%s", md);
    cr_assert(strstr(md, "| maelre-exact | 1 |") < strstr(md, "| efficient | 1 |"), "%s", md);
    cr_assert(!strstr(md, "McNemar"), "no comparisons computed: no paired section");
    free(md);
    free(s);
    table_free(t);
}

Test(report, markdown_paired_section) {
    Table *t = table_new(NULL, 0);
    add_run(t, "lra-text", "vanilla", 1, 0.5, 0.01, 4e9, 8 << 20);
    add_run(t, "lra-text", "maelre", 1, 0.7, 0.01, 1e9, 2 << 20);
    PairedRow rows[2] = {
        {.task = "lra-text", .method = "maelre", .seed = 1, .seeds = 1, .n = 40, .acc = 0.7,
         .acc_vanilla = 0.5, .b = 10, .c = 2, .p_mcnemar = stats_mcnemar_exact(10, 2),
         .ci = {.diff = 0.2, .lo = 0.075, .hi = 0.325, .resamples = 10000}},
        {.task = "lra-text", .method = "maelre", .seed = NAN, .pooled = 1, .seeds = 3, .n = 40,
         .acc = 0.7, .acc_vanilla = 0.5, .b = 30, .c = 6, .p_mcnemar = NAN,
         .ci = {.diff = 0.2, .lo = 0.1, .hi = 0.3, .resamples = 10000}}};
    char *note = "`lra-text` `tome` seed 1: no predictions file";
    PairedResults p = {rows, 2, &note, 1};
    MdReportInfo info = {0};
    info.paired = &p;
    char *md, err[256];
    cr_assert_eq(md_report(t, NULL, &info, &md, err, sizeof err), MB_OK, "%s", err);
    cr_assert(strstr(md, "| maelre | 1 | 40 | 70.00 | 50.00 | +20.00 | [+7.50, +32.50] | 10 | 2 | 0.0386 |"), "%s", md);
    cr_assert(strstr(md, "| maelre | all (3 seeds) | 40 | 70.00 | 50.00 | +20.00 | [+10.00, +30.00] | 30 | 6 | "
                         "\xE2\x80\x94 |"), "%s", md);
    cr_assert(strstr(md, "**McNemar p**") && strstr(md, "10000 resamples of the test samples"), "%s", md);
    cr_assert(strstr(md, "identical test samples"), "the paragraph says why the pairs are paired: %s", md);
    cr_assert(strstr(md, "## Runs without a paired comparison\n\n- `lra-text` `tome` seed 1: no predictions file\n"), "%s", md);
    free(md);
    table_free(t);
}

// ----- run folders with predictions and curves, written here

// Predictions of n samples: label i % 3; pred_best = label on samples [lo, hi), else label + 1.
static void put_preds(const char *run, const char *method, int seed, int n, int lo, int hi) {
    char sub[256], name[128];
    snprintf(sub, sizeof sub, "%s/predictions", run);
    snprintf(name, sizeof name, "%s-seed%d.csv", method, seed);
    size_t cap = 64 + (size_t)n * 24;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "index,label,pred_best,pred_last\n");
    for (int i = 0; i < n; i++) {
        int label = i % 3, pred = i >= lo && i < hi ? label : (label + 1) % 3;
        len += (size_t)snprintf(text + len, cap - len, "%d,%d,%d,%d\n", i, label, pred, (label + 2) % 3);
    }
    put(sub, name, text);
    free(text);
}

// A curve of `steps` rows: loss 2.3 -> 1.3, validation every 50 steps rising from 20% to 20% + gain.
static void put_curve(const char *run, const char *method, int seed, int steps, double sec_per_step,
                      double gain) {
    char sub[256], name[128];
    snprintf(sub, sizeof sub, "%s/curves", run);
    snprintf(name, sizeof name, "%s-seed%d.csv", method, seed);
    size_t cap = 128 + (size_t)steps * 96;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "step,samples,wall_s,lr,train_loss,val_accuracy\n");
    for (int s = 1; s <= steps; s++) {
        len += (size_t)snprintf(text + len, cap - len, "%d,%d,%.3f,0.0005,%.4f,", s, 16 * s,
                                s * sec_per_step, 2.3 - (double)s / steps + 0.01 * (s % 7));
        if (s % 50 == 0) len += (size_t)snprintf(text + len, cap - len, "%.4f", 0.2 + gain * s / steps);
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    put(sub, name, text);
    free(text);
}

static const char new_header[] =
    "task,method,seed,test_samples,accuracy,accuracy_stderr,accuracy_last,best_step,val_accuracy,"
    "majority_accuracy,flops_infer_per_sample\n";

// Run folder "run" (task lra-listops, 40 test samples, label i % 3, so the majority class is 0
// with 14 of 40 = 35%):
//   seed 1: vanilla right on [0, 20), maelre on [2, 30): b = 10, c = 2, McNemar p = 158/4096
//   seed 2: vanilla right on [0, 22), maelre on [0, 24): b = 2, c = 0, p = 0.5
//   maelre-exact seed 1 has no predictions file; efficient seed 3 has no vanilla to pair with.
static void write_seed_run(void) {
    char text[4096];
    snprintf(text, sizeof text, "%s"
             "lra-listops,vanilla,1,40,0.5,0.079,0.45,300,0.52,0.35,4e9\n"
             "lra-listops,maelre,1,40,0.7,0.072,0.6,250,0.69,0.35,1e9\n"
             "lra-listops,vanilla,2,40,0.55,0.079,0.5,300,0.56,0.35,4e9\n"
             "lra-listops,maelre,2,40,0.6,0.077,0.6,300,0.61,0.35,1e9\n"
             "lra-listops,maelre-exact,1,40,0.6,0.077,0.6,300,0.61,0.35,2e9\n"
             "lra-listops,efficient,3,40,0.45,0.079,0.45,300,0.4,0.35,5e8\n", new_header);
    put("run", "results.csv", text);
    put_preds("run", "vanilla", 1, 40, 0, 20);
    put_preds("run", "maelre", 1, 40, 2, 30);
    put_preds("run", "vanilla", 2, 40, 0, 22);
    put_preds("run", "maelre", 2, 40, 0, 24);
    put_preds("run", "efficient", 3, 40, 0, 18);
    put_curve("run", "vanilla", 1, 300, 1.0, 0.3);
    put_curve("run", "vanilla", 2, 300, 1.0, 0.35);
    put_curve("run", "maelre", 1, 1000, 0.3, 0.5);
}

static Table *read_run_table(const char *sub) {
    char p[512], e[512];
    in_dir(p, sizeof p, sub);
    Table *t = NULL;
    cr_assert_eq(table_read_csv(&t, p, e, sizeof e), MB_OK, "%s", e);
    // report_compare finds the predictions beside the row's source
    for (size_t r = 0; r < table_rows(t); r++) table_set_str(t, r, "source", p);
    return t;
}

Test(report, paired_comparison_from_predictions) {
    write_seed_run();
    Table *t = read_run_table("run/results.csv");
    PairedResults p;
    char err[1024];
    cr_assert_eq(report_compare(t, 2000, &p, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(p.n, 3, "maelre seeds 1 and 2, and maelre pooled");
    const PairedRow *s1 = &p.rows[0], *s2 = &p.rows[1], *all = &p.rows[2];
    cr_assert_str_eq(s1->method, "maelre");
    cr_assert(s1->seed == 1 && s2->seed == 2 && all->pooled && !s1->pooled);
    cr_assert_eq(s1->n, 40);
    cr_assert_eq(s1->b, 10);
    cr_assert_eq(s1->c, 2);
    cr_assert_float_eq(s1->p_mcnemar, 158.0 / 4096.0, 1e-15);
    cr_assert_float_eq(s1->acc, 0.7, 1e-15);
    cr_assert_float_eq(s1->acc_vanilla, 0.5, 1e-15);
    cr_assert_float_eq(s1->ci.diff, 0.2, 1e-15);
    cr_assert(s1->ci.lo < 0.2 && 0.2 < s1->ci.hi && s1->ci.lo > 0, "[%g, %g]", s1->ci.lo, s1->ci.hi);
    cr_assert(s2->b == 2 && s2->c == 0);
    cr_assert_float_eq(s2->p_mcnemar, 0.5, 1e-15);
    cr_assert_eq(all->seeds, 2);
    cr_assert(all->b == 12 && all->c == 2 && isnan(all->p_mcnemar));
    cr_assert_float_eq(all->ci.diff, 10.0 / 80.0, 1e-15);
    cr_assert_float_eq(all->acc, 0.65, 1e-15);
    cr_assert_eq(p.n_notes, 2, "maelre-exact (no predictions), efficient (no vanilla seed 3)");
    int saw_exact = 0, saw_eff = 0;
    for (size_t i = 0; i < p.n_notes; i++) {
        saw_exact |= strstr(p.notes[i], "`maelre-exact` seed 1: no predictions file for maelre-exact") != NULL;
        saw_eff |= strstr(p.notes[i], "`efficient` seed 3: no vanilla run with this seed") != NULL;
    }
    cr_assert(saw_exact && saw_eff, "%s | %s", p.notes[0], p.notes[1]);
    // Deterministic: the same files give the same interval, bit for bit.
    PairedResults q;
    cr_assert_eq(report_compare(t, 2000, &q, err, sizeof err), MB_OK, "%s", err);
    cr_assert(q.rows[0].ci.lo == s1->ci.lo && q.rows[0].ci.hi == s1->ci.hi && q.rows[2].ci.lo == all->ci.lo);
    report_paired_free(&q);
    report_paired_free(&p);
    table_free(t);
}

Test(report, paired_comparison_refuses_bad_predictions) {
    write_seed_run();
    Table *t = read_run_table("run/results.csv");
    PairedResults p;
    char err[1024];
    // A predictions file out of order: malformed, named with its line.
    put("run/predictions", "maelre-seed2.csv", "index,label,pred_best,pred_last\n0,0,0,0\n2,2,2,2\n");
    cr_assert_eq(report_compare(t, 100, &p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "predictions/maelre-seed2.csv:3: index should be 1"), "%s", err);
    // Right count, wrong accuracy: not this run's predictions.
    put_preds("run", "maelre", 2, 40, 0, 30);
    cr_assert_eq(report_compare(t, 100, &p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "maelre-seed2.csv: pred_best gives accuracy 0.750000, but its results row says 0.600000"),
              "%s", err);
    // Another test split (labels differ): a note, no comparison for that seed, no pooled row.
    char text[4096];
    size_t len = (size_t)snprintf(text, sizeof text, "index,label,pred_best,pred_last\n");
    for (int i = 0; i < 40; i++)   // 24 right of 40 as its row says, but labels (i + 1) % 3
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,%d,0\n", i, (i + 1) % 3,
                                i < 24 ? (i + 1) % 3 : i % 3);
    put("run/predictions", "maelre-seed2.csv", text);
    cr_assert_eq(report_compare(t, 100, &p, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(p.n, 1, "seed 1 only");
    int saw = 0;
    for (size_t i = 0; i < p.n_notes; i++) saw |= strstr(p.notes[i], "seed 2: not paired, the test splits differ (labels of sample 0 differ)") != NULL;
    cr_assert(saw);
    report_paired_free(&p);
    table_free(t);
}

Test(report, curves_load_and_plot) {
    write_seed_run();
    Table *t = read_run_table("run/results.csv");
    Curve *c;
    size_t n;
    char err[1024];
    cr_assert_eq(report_load_curves(t, &c, &n, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(c[0].method, "vanilla");
    cr_assert(c[0].seed == 1 && c[1].seed == 2);
    cr_assert_str_eq(c[2].method, "maelre");
    cr_assert_eq(c[2].n, 1000);
    cr_assert_float_eq(c[2].wall_s[9], 3.0, 1e-12);
    cr_assert(isnan(c[2].val_acc[0]) && isfinite(c[2].val_acc[49]), "val only at evaluation steps");
    if (have_gnuplot()) {
        char gp[4096], p[1024];
        cr_assert_eq(plot_find_gnuplot(gp, sizeof gp, err, sizeof err), MB_OK);
        for (int val = 0; val < 2; val++) {
            int made = 0;
            cr_assert_eq(plot_curves(gp, dir, "lra-listops", c, n, 0.35, val, &made, err, sizeof err), MB_OK, "%s", err);
            cr_assert_eq(made, 1);
            char rel[512];
            plot_curve_name(rel, sizeof rel, "lra-listops", val);
            snprintf(p, sizeof p, "%s/%s", dir, rel);
            cr_assert(is_png(p), "%s", p);
        }
        // Loss: maelre's 1000 rows become 200 window means; validation: evaluation rows only.
        snprintf(p, sizeof p, "%s/plots/loss_vs_step_lra-listops.dat", dir);
        char *dat = slurp(p), *blk = strstr(dat, "# maelre seed 1\n");
        cr_assert(blk, "%s", dat);
        size_t lines = 0;
        for (char *q = blk + 16; *q && !(q[0] == '\n' && q[1] == '\n'); q++) lines += *q == '\n';
        cr_assert_eq(lines + 1, 200, "%zu points", lines + 1);
        // first window: steps 1-5, mean step 3, mean loss 2.3 - 0.003 + 0.01 * mean(1..5) = 2.327
        cr_assert(strstr(blk, "\n3 2.327"), "%.80s", blk);
        free(dat);
        snprintf(p, sizeof p, "%s/plots/val_acc_vs_time_lra-listops.dat", dir);
        dat = slurp(p);
        cr_assert(strstr(dat, "# vanilla seed 1\n50 25\n100 30\n"), "%s", dat);
        cr_assert(strstr(dat, "# majority class on the test split: 35"), "%s", dat);
        free(dat);
        snprintf(p, sizeof p, "%s/plots/val_acc_vs_time_lra-listops.gp", dir);
        char *gps = slurp(p);
        cr_assert(strstr(gps, "title 'vanilla' . ' (2 seeds)'") && strstr(gps, "title 'majority class (test split)'"), "%s", gps);
        free(gps);
        int made = 1;
        cr_assert_eq(plot_curves(gp, dir, "other-task", c, n, NAN, 0, &made, err, sizeof err), MB_OK);
        cr_assert_eq(made, 0, "no curves of that task: no plot");
    }
    report_curves_free(c, n);
    // A malformed curves file is refused with file and line.
    put("run/curves", "maelre-seed2.csv", "step,samples,wall_s,lr,train_loss,val_accuracy\n1,16,0.5,0.001,2.3,\n2,32,x,0.001,2.2,\n");
    cr_assert_eq(report_load_curves(t, &c, &n, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "curves/maelre-seed2.csv:3: wall_s is 'x', not a number"), "%s", err);
    table_free(t);
}

// End to end: an older folder (no §11 columns, no predictions) beside a seeded one.
Test(report, cli_seeds_pairs_and_curves) {
    NEED_BIN();
    write_inputs();
    write_seed_run();
    char *err, p[512];
    int rc = report(NULL, "a run --out out", &err);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    free(err);
    in_dir(p, sizeof p, "stdout.txt");
    char *so = slurp(p);
    cr_assert(strstr(so, "8 run rows (2 tasks, 3 paired comparisons)"), "%s", so);
    free(so);
    in_dir(p, sizeof p, "out/report.md");
    char *md = slurp(p);
    cr_assert(md);
    const char *listops = strstr(md, "## Task `lra-listops`"), *text = strstr(md, "## Task `lra-text`");
    cr_assert(listops && text, "%s", md);
    cr_assert(strstr(listops, "| majority class | \xE2\x80\x94 | 35.00 |"), "%s", md);
    cr_assert(!strstr(text, "| majority class |") || strstr(text, "| majority class |") > strstr(text, "## Runs without"),
              "the older task has no majority row: %s", md);
    cr_assert(strstr(listops, "| maelre | 2 | 65.00 \xC2\xB1 7.07 |"), "%s", md);
    cr_assert(strstr(listops, "| vanilla | 2 | 52.50 \xC2\xB1 3.54 |"), "%s", md);
    cr_assert(strstr(listops, "| maelre | 1 | 40 | 70.00 | 50.00 | +20.00 | ["), "%s", md);
    cr_assert(strstr(listops, "| 10 | 2 | 0.0386 |"), "%s", md);
    cr_assert(strstr(listops, "| maelre | all (2 seeds) | 40 | 65.00 | 52.50 | +12.50 |"), "%s", md);
    cr_assert(strstr(md, "- `lra-text` `maelre` seed 1: no predictions file for maelre"), "%s", md);
    cr_assert(strstr(md, "- `lra-listops` `efficient` seed 3: no vanilla run with this seed"), "%s", md);
    cr_assert(strstr(md, "| maelre-exact | 1 |") > strstr(listops, "| maelre | 2 |"), "%s", md);
    cr_assert(strstr(md, "| efficient | 1 |") > strstr(md, "| maelre-exact | 1 |"), "%s", md);
    if (have_gnuplot()) {
        const char *pngs[] = {"out/plots/loss_vs_step_lra-listops.png", "out/plots/val_acc_vs_time_lra-listops.png",
                              "out/plots/acc_vs_flops_lra-listops.png"};
        for (int i = 0; i < 3; i++) {
            in_dir(p, sizeof p, pngs[i]);
            cr_assert(is_png(p), "%s missing or not a PNG", pngs[i]);
            cr_assert(strstr(md, pngs[i] + 4), "report.md does not link %s", pngs[i]);
        }
        in_dir(p, sizeof p, "out/plots/loss_vs_step_lra-text.png");
        cr_assert(!exists(p), "no curves for the older task: no curve plot");
        in_dir(p, sizeof p, "out/plots/acc_vs_flops_lra-listops.gp");
        char *gps = slurp(p);
        cr_assert(strstr(gps, "35 with lines dt 3") && strstr(gps, "title 'majority class'"), "%s", gps);
        free(gps);
    }
    free(md);
    // The merged results keep the new columns; the older rows have them empty.
    in_dir(p, sizeof p, "out/results.csv");
    Table *t = NULL;
    char e[512];
    cr_assert_eq(table_read_csv(&t, p, e, sizeof e), MB_OK, "%s", e);
    cr_assert_str_eq(table_column(t, 23), "blocks_efficient");
    cr_assert_str_eq(table_column(t, 24), "accuracy_last", "the SPEC §11 columns follow SPEC §8's");
    cr_assert_str_eq(table_column(t, 27), "majority_accuracy");
    double v;
    int saw_new = 0, saw_old = 0;
    for (size_t r = 0; r < table_rows(t); r++) {
        int has = table_get_num(t, r, "majority_accuracy", &v) == MB_OK;
        saw_new |= has && v == 0.35;
        saw_old |= !has && !strcmp(table_get_str(t, r, "task"), "lra-text");
    }
    cr_assert(saw_new && saw_old);
    table_free(t);
    // A broken predictions file: exit 3, file named, nothing written.
    put("run/predictions", "vanilla-seed2.csv", "index,label\n0,1\n");
    expect_fail("a run --out bad-out", 3, "predictions/vanilla-seed2.csv:1: no 'pred_best' column");
    put_preds("run", "vanilla", 2, 40, 0, 22);
    put("run", "results.csv", "task,method,seed,accuracy,majority_accuracy\nlra-listops,vanilla,1,0.5,1.35\n");
    expect_fail("run --out bad-out", 3, "run/results.csv:2: majority_accuracy 1.35 is not a fraction");
}
