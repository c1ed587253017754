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
#include "core/kernels.h"
#include "core/mem.h"
#include "core/optim.h"
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
        RunPaths paths = {.ckpt = ck};
        int rc = runner_train_eval(&t, g_dir, (Method)mi, &rs, &paths, &r, err, sizeof err);
        cr_assert_eq(rc, MB_OK, "%s: %s", method_name((Method)mi), err);
        cr_assert_eq(r.method, (Method)mi);
        cr_assert_str_eq(r.task, "toy");
        cr_assert_eq(r.steps, 8);
        cr_assert_eq(r.batch, 8);
        // 64 loaded, 32 per class: a stratified 20% hold-out (round(6.4) = 6 per class) for validation.
        cr_assert_eq(r.train_samples, 52);
        cr_assert_eq(r.val_samples, 12);
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
        if (mi == METHOD_PERFORMER) cr_assert_float_eq(r.blocks[ATTN_PERFORMER], 2.0, 1e-9);
        if (mi == METHOD_NYSTROMFORMER) cr_assert_float_eq(r.blocks[ATTN_NYSTROM], 2.0, 1e-9);
        if (mi == METHOD_LINEAR) cr_assert_float_eq(r.blocks[ATTN_LINEAR], 2.0, 1e-9);
        if (mi == METHOD_EFFICIENT) cr_assert_float_eq(r.blocks[ATTN_EFFICIENT], 2.0, 1e-9);
        if (mi == METHOD_MAELRE_EXACT) cr_assert_float_eq(r.blocks[ATTN_SOFTMAX], 2.0, 1e-9);
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
        const cJSON *kern = cJSON_GetObjectItemCaseSensitive(j, "kernels");   // the kernel set that ran
        cr_assert(cJSON_IsString(kern) && !strcmp(kern->valuestring, kernels_name(kernels_active())));
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
    RunPaths paths = {.ckpt = ck};
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, &paths, &a, err, sizeof err), MB_OK, "%s", err);
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
    RunPaths paths = {.ckpt = ck};
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_VANILLA, &rs, &paths, &r, err, sizeof err), MB_ERR_INTERRUPTED);
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

// ---------------------------------------------------------------- protocol (SPEC §11)

static double *read_curve_col(const char *path, int col, size_t *n, int *header_ok) {
    char *s = slurp(path);
    cr_assert(s, "%s missing", path);
    *header_ok = !strncmp(s, "step,samples,wall_s,lr,train_loss,val_accuracy\n", 47);
    double *v = malloc(100000 * sizeof *v);
    size_t k = 0;
    for (char *line = strchr(s, '\n'); line && line[1] && k < 100000; line = strchr(line + 1, '\n')) {
        const char *f = line + 1;
        for (int c = 0; c < col; c++) f = strchr(f, ',') + 1;
        v[k++] = (*f == '\n' || *f == 0) ? NAN : strtod(f, NULL);
    }
    free(s);
    *n = k;
    return v;
}

Test(protocol, time_budget_schedule_follows_the_training_clock, .init = make_toy, .fini = rm_toy, .timeout = 60) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 1);
    rs.steps = 0;
    rs.time_budget = 0.6;
    char err[1024] = "", curves[400];
    snprintf(curves, sizeof curves, "%s/c.csv", g_dir);
    RunPaths paths = {.curves = curves};
    RunRow r;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_VANILLA, &rs, &paths, &r, err, sizeof err), MB_OK, "%s", err);
    size_t n, n2;
    int ok;
    double *lr = read_curve_col(curves, 3, &n, &ok), *wall = read_curve_col(curves, 2, &n2, &ok);
    cr_assert(ok, "curves header");
    cr_assert_eq(n, r.steps);
    cr_assert(n > 20, "%zu steps in 0.6 s", n);
    // The budget is used: the clock (training steps only) reaches it, and no applied step ends past it.
    cr_assert(r.train_seconds >= 0.6, "train_seconds %g", r.train_seconds);
    cr_assert(wall[n - 1] <= 0.6 + 1e-9, "last update applied at %g s", wall[n - 1]);
    double peak = t.optim.lr;
    // Every step's lr is the schedule at the training clock of its update (wall_s, printed to 1 us).
    for (size_t i = 0; i < n; i++) {
        double want = adamw_lr_at_frac(&t.optim, t.warmup_frac, wall[i] / 0.6);
        cr_assert(fabs(lr[i] - want) <= 1e-5 * peak / 0.6 * 20, "step %zu: lr %g, schedule at %g s: %g", i + 1, lr[i],
                  wall[i], want);
    }
    for (size_t i = 0; i < n; i++) cr_assert(lr[i] > 0, "lr %g at step %zu", lr[i], i + 1);
    // ... and the schedule ends there: the last steps have lr > 0 but near 0 (cosine at the budget's end).
    cr_assert(lr[n - 1] < 0.05 * peak, "last lr %g of peak %g: the schedule did not reach the budget's end", lr[n - 1], peak);
    // The decay is monotone after warm-up (warm-up: the first 10% of the budget).
    size_t top = 0;
    for (size_t i = 0; i < n; i++) if (lr[i] > lr[top]) top = i;
    cr_assert(wall[top] <= 0.6 * 0.1 + 0.05, "peak lr at %g s", wall[top]);
    for (size_t i = top + 1; i < n; i++) cr_assert(lr[i] <= lr[i - 1], "lr rises at step %zu", i + 1);
    // The schedule itself: warm-up as a fraction, > 0 everywhere before the end, 0 at the end.
    AdamWConfig c = t.optim;
    cr_assert_float_eq(adamw_lr_at_frac(&c, 0.1, 0.05), 0.5f * c.lr, 1e-9);
    cr_assert_float_eq(adamw_lr_at_frac(&c, 0.1, 0.1), c.lr, 1e-9);
    cr_assert_float_eq(adamw_lr_at_frac(&c, 0.1, 0.55), 0.5f * c.lr, 1e-7);
    cr_assert(adamw_lr_at_frac(&c, 0.1, 0.9999) > 0);
    cr_assert_eq(adamw_lr_at_frac(&c, 0.1, 1.0), 0.0f);
    free(lr);
    free(wall);
    task_free(&t);
}

Test(protocol, holdout_is_stratified_seeded_and_disjoint, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    SeqSet a, b, va, vb;
    char err[1024] = "";
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TRAIN, 0, 0, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TRAIN, 0, 0, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n, 160);
    cr_assert_float_eq(runner_holdout_fraction(160), 0.2, 0);
    cr_assert_float_eq(runner_holdout_fraction(1000), 0.1, 0);
    cr_assert_eq(runner_holdout(&a, &va, 0.2, 7, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(runner_holdout(&b, &vb, 0.2, 7, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n + va.n, 160);
    size_t per[2] = {0, 0};
    for (size_t i = 0; i < va.n; i++) per[va.items[i].label]++;
    cr_assert(per[0] == 16 && per[1] == 16, "20%% of each class of 80: %zu %zu", per[0], per[1]);
    cr_assert_eq(va.n, vb.n);
    for (size_t i = 0; i < va.n; i++)   // same seed, same hold-out
        cr_assert(va.items[i].len == vb.items[i].len && va.items[i].id_bytes == vb.items[i].id_bytes &&
                  !memcmp(va.items[i].ids, vb.items[i].ids, va.items[i].len * va.items[i].id_bytes));
    cr_assert_eq(va.n_classes, 2);
    cr_assert_eq(runner_majority_class(&a), 0, "a tie goes to the smallest class");
    seqset_free(&a); seqset_free(&b); seqset_free(&va); seqset_free(&vb);
    // A class with one sample keeps it in train; two samples: one each.
    cr_assert_eq(runner_load_split(&t, g_dir, SPLIT_TRAIN, 3, 0, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(runner_holdout(&a, &va, 0.2, 7, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(va.n, 1, "one of the class with two samples");
    cr_assert_eq(a.n, 2);
    cr_assert_neq(a.items[0].label, a.items[1].label, "every class still in train");
    seqset_free(&a); seqset_free(&va);
    task_free(&t);
}

// The validation cap: a held-out split of 32 (20% of 160) capped at 10 keeps 5 of each class,
// and the cut samples do not go back to train (128 either way); 0 keeps the whole hold-out.
Test(protocol, val_limit_caps_a_holdout_without_changing_train, .init = make_toy, .fini = rm_toy) {
    Task t;
    load_toy(&t);
    char err[1024] = "";
    size_t caps[2] = {0, 10}, want_val[2] = {32, 10};
    for (int k = 0; k < 2; k++) {
        SeqSet tr, va, te;
        cr_assert_eq(runner_load_splits(&t, g_dir, 0, 0, caps[k], &tr, &va, &te, NULL, 0, err, sizeof err), MB_OK,
                     "%s", err);
        cr_assert_eq(tr.n, 128, "cap %zu: train %zu", caps[k], tr.n);
        cr_assert_eq(va.n, want_val[k], "cap %zu: val %zu", caps[k], va.n);
        size_t per[2] = {0, 0};
        for (size_t i = 0; i < va.n; i++) per[va.items[i].label]++;
        cr_assert_eq(per[0], per[1], "class-balanced: %zu %zu", per[0], per[1]);
        cr_assert_eq(te.n, 80);
        seqset_free(&tr); seqset_free(&va); seqset_free(&te);
    }
    RunSpec rs = {.test_limit = 40};
    cr_assert_eq(runspec_val_limit(&rs), 40, "no val limit: the test limit's");
    rs.val_limit = 7;
    cr_assert_eq(runspec_val_limit(&rs), 7);
    task_free(&t);
}

// The test split decides nothing: flipping every test label changes the test accuracies to
// 1 - accuracy and nothing else (same best step, same validation accuracy).
Test(protocol, test_labels_do_not_influence_selection, .init = make_toy, .fini = rm_toy, .timeout = 60) {
    Task t;
    load_toy(&t);
    RunSpec rs = spec(&t, 0);
    rs.steps = 30;
    rs.eval_every = 3;
    RunRow a, b;
    char err[1024] = "", p[512];
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, NULL, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.evaluations, 10);
    cr_assert(a.best_step >= 3 && a.best_step <= 30 && a.best_step % 3 == 0, "best step %zu", a.best_step);
    snprintf(p, sizeof p, "%s/toy/test.tsv", g_dir);
    char *s = slurp(p);
    for (char *q = strchr(s, '\n'); q && q[1]; q = strchr(q + 1, '\n')) q[1] = q[1] == '0' ? '1' : '0';
    spit(p, s);
    free(s);
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_TOME, &rs, NULL, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.best_step, b.best_step);
    cr_assert_eq(a.val_accuracy, b.val_accuracy);
    cr_assert_eq(a.final_loss, b.final_loss);
    cr_assert_float_eq(b.accuracy, 1 - a.accuracy, 1e-12);
    cr_assert_float_eq(b.accuracy_last, 1 - a.accuracy_last, 1e-12);
    cr_assert_float_eq(b.majority_accuracy, 1 - a.majority_accuracy, 1e-12);
    cr_assert_float_eq(a.majority_accuracy, 0.5, 1e-12, "balanced toy test split");
    task_free(&t);
}

// Early stopping: the run ends exactly `patience` evaluations after its best one.
Test(protocol, early_stopping_rule, .init = make_toy, .fini = rm_toy, .timeout = 60) {
    Task t;
    load_toy(&t);
    // Labels independent of the text: validation stops improving (the model can only overfit).
    char p[512];
    snprintf(p, sizeof p, "%s/noise", g_dir);
    cr_assert_eq(mkdir(p, 0777), 0);
    const char *names[2] = {"train", "test"};
    uint64_t r0 = 99;
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/toy/%s.tsv", g_dir, names[k]);
        char *s = slurp(p);
        for (char *q = strchr(s, '\n'); q && q[1]; q = strchr(q + 1, '\n')) q[1] = (char)('0' + rng_below(&r0, 2));
        snprintf(p, sizeof p, "%s/noise/%s.tsv", g_dir, names[k]);
        spit(p, s);
        free(s);
    }
    snprintf(t.data.path, sizeof t.data.path, "noise");
    RunSpec rs = spec(&t, 0);
    rs.steps = 400;
    rs.eval_every = 2;
    rs.patience = 3;
    RunRow r;
    char err[1024] = "";
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_MAELRE, &rs, NULL, &r, err, sizeof err), MB_OK, "%s", err);
    cr_assert(r.early_stopped, "no early stop in %zu steps (best %zu)", r.steps, r.best_step);
    cr_assert_eq(r.steps, r.best_step + rs.patience * rs.eval_every, "steps %zu best %zu", r.steps, r.best_step);
    cr_assert_eq(r.evaluations, r.steps / rs.eval_every);
    // Epochs: steps = ceil(epochs * train / batch); an epochs budget validates once per epoch.
    rs.steps = 0;
    rs.epochs = 2;
    rs.patience = 0;
    rs.eval_every = 0;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_MAELRE, &rs, NULL, &r, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(r.steps, (2 * r.train_samples + 7) / 8, "%zu", r.steps);
    cr_assert_eq(r.evaluations, 2);
    task_free(&t);
}

// A progress stream that sets the stop flag when it sees a given text (a mid-run interruption).
typedef struct { const char *needle; volatile sig_atomic_t *stop; } Trip;
static ssize_t trip_write(void *c, const char *buf, size_t n) {
    Trip *t = c;
    if (memmem(buf, n, t->needle, strlen(t->needle))) *t->stop = 1;
    return (ssize_t)n;
}

// A run stopped mid-way saves its state; started again it ends with the same bits as a run that
// was never stopped. A damaged state is refused (MB_ERR_DATA naming it), another seed's too.
Test(protocol, saved_state_resumes_bit_identically_and_damage_is_refused, .init = make_toy, .fini = rm_toy, .timeout = 60) {
    Task t;
    load_toy(&t);
    t.model.dropout = 0.2f;   // masks follow (seed, step): a resumed run draws the ones it would have
    RunSpec rs = spec(&t, 1);
    rs.steps = 20;
    rs.eval_every = 2;
    rs.checkpoint_every = 1e-9;   // after every step
    char err[1024] = "", st[400], ck1[400], ck2[400];
    snprintf(st, sizeof st, "%s/s.state", g_dir);
    snprintf(ck1, sizeof ck1, "%s/a.ckpt", g_dir);
    snprintf(ck2, sizeof ck2, "%s/b.ckpt", g_dir);
    RunRow a, b;
    RunPaths pa = {.ckpt = ck1};
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, &pa, &a, err, sizeof err), MB_OK, "%s", err);
    volatile sig_atomic_t stop = 0;
    rs.stop = &stop;
    // Interrupted right after the validation at step 8 (of evaluations every 2 steps).
    Trip trip = {"step 8: validation", &stop};
    FILE *pf = fopencookie(&trip, "w", (cookie_io_functions_t){.write = trip_write});
    setvbuf(pf, NULL, _IONBF, 0);
    rs.progress = pf;
    RunPaths pb = {.ckpt = ck2, .state = st};
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, &pb, &b, err, sizeof err), MB_ERR_INTERRUPTED);
    cr_assert_eq(access(st, R_OK), 0, "state saved when interrupted");
    rs.progress = NULL;
    fclose(pf);
    // Damaged: one byte flipped.
    char *s = slurp(st);
    struct stat sb;
    cr_assert_eq(stat(st, &sb), 0);
    FILE *f = fopen(st, "r+b");
    fseek(f, sb.st_size / 2, SEEK_SET);
    fputc(s[sb.st_size / 2] ^ 0x10, f);
    fclose(f);
    stop = 0;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, &pb, &b, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, st) && strstr(err, "crc32"), "%s", err);
    f = fopen(st, "wb");
    fwrite(s, 1, (size_t)sb.st_size, f);
    fclose(f);
    // Other settings (seed): refused.
    rs.seed = 4;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, &pb, &b, err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "--force"), "%s", err);
    rs.seed = 3;
    // Resumed (saving after every step on the way): the same bits.
    FILE *log = tmpfile();
    rs.progress = log;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, &pb, &b, err, sizeof err), MB_OK, "%s", err);
    rewind(log);
    char text[8192] = "";
    text[fread(text, 1, sizeof text - 1, log)] = 0;
    fclose(log);
    cr_assert(strstr(text, "resuming from") && strstr(text, "at step 8 "), "%s", text);
    cr_assert(!strstr(text, "step 8: validation"), "step 8 was validated before the interruption: %s", text);
    cr_assert_eq(a.accuracy, b.accuracy);
    cr_assert_eq(a.accuracy_last, b.accuracy_last);
    cr_assert_eq(a.final_loss, b.final_loss);
    cr_assert_eq(a.best_step, b.best_step);
    cr_assert_eq(a.flops_train_per_sample, b.flops_train_per_sample);
    char *x = slurp(ck1), *y = slurp(ck2);
    struct stat s1, s2;
    stat(ck1, &s1);
    stat(ck2, &s2);
    cr_assert_eq(s1.st_size, s2.st_size);
    cr_assert(!memcmp(x, y, (size_t)s1.st_size), "checkpoints differ");
    // and the dropout was real: without it the same run trains to another loss
    t.model.dropout = 0.0f;
    rs.progress = NULL;
    rs.stop = NULL;
    RunRow c;
    cr_assert_eq(runner_train_eval(&t, g_dir, METHOD_LINFORMER, &rs, NULL, &c, err, sizeof err), MB_OK, "%s", err);
    cr_assert_neq(c.final_loss, a.final_loss, "dropout 0.2 changed nothing in training");
    free(x); free(y); free(s);
    task_free(&t);
}

Test(progress, evaluation_lines) {
    FILE *f = tmpfile();
    cr_assert(f);
    Progress p;
    progress_init(&p, f, "t/m", 0, 0);
    double t0 = clock_seconds() - 2.0;   // 2 s ago: 5 of 10 done -> 2.5 samples/s, 2 s left
    progress_eval(&p, "test", 5, 10, t0, 0);   // within the interval: nothing
    progress_eval(&p, "test", 5, 10, t0, 1);
    rewind(f);
    char all[256] = "";
    all[fread(all, 1, sizeof all - 1, f)] = 0;
    fclose(f);
    cr_assert(!strncmp(all, "t/m: evaluating test 5/10 (2.5 samples/s) ETA 0:02\n", 52), "%s", all);
}
