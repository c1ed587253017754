// The runner in-process on a toy text task it generates (seconds): every method trains and is
// measured, a small model really learns, same seed -> same numbers, the checkpoint evaluates to
// the run's accuracy, misfits are refused, SIGINT's flag stops training.
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "tasks/progress.h"
#include "tasks/runner.h"
#include "tasks/task.h"
#include "tests/file_util.h"

static char g_dir[256], g_task[320];

static void make_toy(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/maelre-test-runner-XXXXXX");
    cr_assert(mkdtemp(g_dir));
    char p[512];
    snprintf(p, sizeof p, "%s/toy", g_dir);
    cr_assert_eq(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/toy/train.tsv", g_dir);
    write_split(p, 160, 11);
    snprintf(p, sizeof p, "%s/toy/test.tsv", g_dir);
    write_split(p, 80, 12);
    snprintf(g_task, sizeof g_task, "%s/toy.json", g_dir);
    FILE *f = fopen(g_task, "w");
    cr_assert(f);
    fputs("{\"name\": \"toy\", \"modality\": \"text\", \"description\": \"two byte alphabets\",\n"
          " \"download\": \"written by tests/test_runner.c\", \"classes\": 2,\n"
          " \"data\": {\"source\": \"imdb\", \"path\": \"toy\", \"max_len\": 64},\n"
          " \"model\": {\"dim\": 16, \"heads\": 2, \"mlp\": 32, \"blocks\": 2, \"linformer_k\": 16,\n"
          "           \"maelre_stages\": [{\"blocks\": 1, \"keep\": 0.25}, {\"blocks\": 1, \"keep\": 0.5}]},\n"
          " \"optim\": {\"lr\": 0.003, \"warmup_frac\": 0.1},\n"
          " \"budgets\": {\"quick\": {\"steps\": 8, \"batch\": 8, \"train_limit\": 64, \"test_limit\": 40},\n"
          "             \"full\": {\"steps\": 60, \"batch\": 8}}}\n", f);
    fclose(f);
}

static void rm_toy(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

static void load_toy(Task *t) {
    char err[1024] = "";
    cr_assert_eq(task_load(t, g_task, NULL, g_dir, err, sizeof err), MB_OK, "%s", err);
}

static RunSpec spec(const Task *t, int quick) {
    RunSpec rs = {0};
    runspec_from_budget(&rs, quick ? &t->quick : &t->full, quick ? "quick" : "full");
    rs.seed = 3;
    rs.threads = 1;
    return rs;
}

Test(runner, every_method_trains_and_is_measured, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 1);
    for (int mi = 0; mi < METHOD_COUNT; mi++) {
        RunRow r;
        char err[1024] = "", ck[400];
        snprintf(ck, sizeof ck, "%s/%s.ckpt", g_dir, method_name((Method)mi));
        int rc = runner_train_eval(&t, g_dir, (Method)mi, &rs, ck, &r, err, sizeof err);
        cr_assert_eq(rc, MB_OK, "%s: %s", method_name((Method)mi), err);
        cr_assert_eq(r.method, (Method)mi);
        cr_assert_str_eq(r.task, "toy");
        cr_assert_eq(r.steps, 8);
        cr_assert_eq(r.batch, 8);
        cr_assert_eq(r.train_samples, 64);
        cr_assert_eq(r.test_samples, 40);
        cr_assert_eq(r.max_len, 64);
        cr_assert(r.mean_tokens >= 20 && r.mean_tokens <= 60, "%g", r.mean_tokens);
        cr_assert(r.params > 1000);
        cr_assert(r.accuracy >= 0 && r.accuracy <= 1);
        cr_assert_float_eq(r.accuracy_stderr, sqrt(r.accuracy * (1 - r.accuracy) / 40.0), 1e-12);
        cr_assert(r.flops_infer_per_sample > 0 && r.macs_infer_per_sample > 0);
        cr_assert(r.flops_infer_per_sample >= 2 * r.macs_infer_per_sample, "1 MAC = 2 FLOPs plus element-wise");
        // Training counts forward + backward: more than twice the forward alone.
        cr_assert(r.flops_train_per_sample > 2 * r.flops_infer_per_sample, "%g vs %g",
                  r.flops_train_per_sample, r.flops_infer_per_sample);
        cr_assert(r.peak_mem_train_bytes > r.peak_mem_infer_bytes && r.peak_mem_infer_bytes > 0);
        cr_assert(r.train_seconds > 0 && r.train_samples_per_s > 0 && r.infer_samples_per_s > 0);
        double blocks = 0;
        for (int k = 0; k < ATTN_KIND_COUNT; k++) blocks += r.blocks[k];
        cr_assert_float_eq(blocks, 2.0, 1e-9, "every block used one kind: %g", blocks);
        if (mi == METHOD_LOCAL) cr_assert_float_eq(r.blocks[ATTN_LOCAL], 2.0, 1e-9);
        if (mi == METHOD_BIGBIRD) cr_assert_float_eq(r.blocks[ATTN_BIGBIRD], 2.0, 1e-9);
        if (mi == METHOD_VANILLA || mi == METHOD_TOME) cr_assert_float_eq(r.blocks[ATTN_SOFTMAX], 2.0, 1e-9);
        if (mi == METHOD_LINFORMER) cr_assert_float_eq(r.blocks[ATTN_LINFORMER], 2.0, 1e-9);
        if (mi == METHOD_MAELRE) {
            // 20-60 tokens > D = 16: efficient first; keep 1/4 -> 5-15 <= D: softmax second.
            cr_assert_float_eq(r.blocks[ATTN_EFFICIENT], 1.0, 1e-9);
            cr_assert_float_eq(r.blocks[ATTN_SOFTMAX], 1.0, 1e-9);
        }
        cr_assert_eq(access(ck, R_OK), 0, "checkpoint written");
        // The JSON row has every column and the config.
        cJSON *j = run_row_to_json(&r, &t, &rs);
        for (size_t c = 0; c < RUN_N_COLUMNS; c++)
            cr_assert(cJSON_GetObjectItemCaseSensitive(j, RUN_COLUMNS[c]), "column %s", RUN_COLUMNS[c]);
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
        cr_assert(cJSON_GetObjectItemCaseSensitive(cfg, "task") && cJSON_GetObjectItemCaseSensitive(cfg, "model") &&
                  cJSON_GetObjectItemCaseSensitive(cfg, "optim") && cJSON_GetObjectItemCaseSensitive(cfg, "run"));
        cJSON_Delete(j);
    }
    task_free(&t);
}

Test(runner, merging_methods_cost_fewer_flops, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 1);
    rs.steps = 2;
    double f[METHOD_COUNT];
    for (int mi = 0; mi < METHOD_COUNT; mi++) {
        RunRow r;
        char err[1024] = "";
        cr_assert_eq(runner_train_eval(&t, g_dir, (Method)mi, &rs, NULL, &r, err, sizeof err), MB_OK, "%s", err);
        f[mi] = r.flops_infer_per_sample;
    }
    cr_assert(f[METHOD_TOME] < f[METHOD_VANILLA], "tome %g vanilla %g", f[METHOD_TOME], f[METHOD_VANILLA]);
    cr_assert(f[METHOD_MAELRE] < f[METHOD_VANILLA], "maelre %g vanilla %g", f[METHOD_MAELRE], f[METHOD_VANILLA]);
    task_free(&t);
}

Test(runner, learns_the_toy_task, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 0);   // full: 60 steps on all 160 samples
    RunRow r;
    char err[1024] = "";
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_MAELRE, &rs, NULL, &r, err, sizeof err), MB_OK, "%s", err);
    cr_assert(r.accuracy >= 0.9, "accuracy %g after %zu steps (loss %g)", r.accuracy, r.steps, r.final_loss);
    cr_assert(r.final_loss < 0.5, "final loss %g", r.final_loss);
    task_free(&t);
}

Test(runner, same_seed_same_numbers_and_checkpoint_reproduces, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 1);
    RunRow a, b, c;
    char err[1024] = "", ck[400];
    snprintf(ck, sizeof ck, "%s/m.ckpt", g_dir);
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, ck, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, NULL, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.accuracy, b.accuracy);
    cr_assert_eq(a.final_loss, b.final_loss, "%.9g vs %.9g", a.final_loss, b.final_loss);
    cr_assert_eq(a.flops_train_per_sample, b.flops_train_per_sample);
    rs.seed = 4;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, NULL, &c, err, sizeof err), MB_OK, "%s", err);
    cr_assert_neq(a.final_loss, c.final_loss, "another seed, other numbers");

    // The checkpoint, evaluated on the same test subset, gives the run's accuracy (batch-independent).
    Model *m = NULL;
    cr_assert_eq(model_load(&m, ck, err, sizeof err), MB_OK, "%s", err);
    SeqSet test;
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TEST, t.quick.test_limit, model_config(m)->max_len, &test,
                                   err, sizeof err), MB_OK, "%s", err);
    EvalResult ev;
    cr_assert_eq(runner_evaluate(m, &test, 3, NULL, &ev, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(ev.n, 40);
    cr_assert_eq(ev.accuracy, a.accuracy, "eval %g vs run %g", ev.accuracy, a.accuracy);
    cr_assert_float_eq(ev.flops_per_sample, a.flops_infer_per_sample, 1e-6 * a.flops_infer_per_sample);
    seqset_free(&test);
    model_destroy(m);
    task_free(&t);
}

Test(runner, refuses_a_model_that_does_not_fit, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    SeqSet test;
    char err[1024] = "";
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TEST, 0, 0, &test, err, sizeof err), MB_OK, "%s", err);
    ModelConfig c = task_model_config(&t, METHOD_VANILLA, test.vocab, 0, 64, 2);
    cr_assert_eq(runner_check_fit(&c, &test, "x", err, sizeof err), MB_OK);
    c.classes = 3;
    cr_assert_eq(runner_check_fit(&c, &test, "x", err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "3 classes"), "%s", err);
    c = task_model_config(&t, METHOD_VANILLA, 0, 4, 64, 2);
    cr_assert_eq(runner_check_fit(&c, &test, "x", err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "patches"), "%s", err);
    // A task that expects another class count refuses the data itself.
    t.classes = 5;
    SeqSet bad;
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TEST, 0, 0, &bad, err, sizeof err), MB_ERR_DATA);
    seqset_free(&test);
    task_free(&t);
}

Test(runner, stop_flag_interrupts_and_missing_data_is_explained, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 1);
    volatile sig_atomic_t stop = 1;
    rs.stop = &stop;
    RunRow r;
    char err[1024] = "", ck[400];
    snprintf(ck, sizeof ck, "%s/never.ckpt", g_dir);
    size_t before = mem_current();
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_VANILLA, &rs, ck, &r, err, sizeof err), MB_ERR_INTERRUPTED);
    cr_assert_neq(access(ck, F_OK), 0, "no checkpoint from an interrupted run");
    cr_assert_eq(mem_current(), before, "everything freed");
    // Missing data: exit code 3 and where to get it.
    char other[400];
    snprintf(other, sizeof other, "%s/empty", g_dir);
    cr_assert_eq(mkdir(other, 0777), 0);
    cr_assert_eq(runner_ensure_data(&t, other, NULL, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "written by tests/test_runner.c") && strstr(err, "empty/toy"), "%s", err);
    cr_assert_eq(runner_ensure_data(&t, g_dir, NULL, err, sizeof err), MB_OK);
    task_free(&t);
}

Test(progress, log_lines_and_durations) {
    char buf[32];
    format_duration(buf, sizeof buf, 65.4);
    cr_assert_str_eq(buf, "1:05");
    format_duration(buf, sizeof buf, 3725);
    cr_assert_str_eq(buf, "1:02:05");
    format_duration(buf, sizeof buf, NAN);
    cr_assert_str_eq(buf, "?");
    FILE *f = tmpfile();
    cr_assert(f);
    Progress p;
    progress_init(&p, f, "t/m", 10, 0);
    cr_assert_eq(p.tty, 0, "a file is not a terminal: plain log lines");
    progress_step(&p, 1, 2.5, 3.0, 0);     // within the interval: nothing
    progress_step(&p, 10, 1.25, 4.0, 1);   // forced
    progress_step(&p, 10, 1.25, 4.0, 1);   // same step again: not repeated
    progress_note(&p, "accuracy %.2f", 0.5);
    rewind(f);
    char all[512] = "";
    size_t n = fread(all, 1, sizeof all - 1, f);
    all[n] = 0;
    fclose(f);
    cr_assert_str_eq(all, "t/m: step 10/10 loss 1.2500 4.0 samples/s ETA 0:00\nt/m: accuracy 0.50\n", "%s", all);
}
