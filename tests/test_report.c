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
    cr_assert(strstr(md, "| attention blocks: softmax / efficient / linformer |"), "%s", md);
    cr_assert(strstr(md, "| \xE2\x80\x94 / \xE2\x80\x94 / 4 |\n"), "%s", md);
    cr_assert(strstr(md, "| 4 / 0 / \xE2\x80\x94 |\n"), "%s", md);
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
