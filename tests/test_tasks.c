// Task files: every shipped task parses and validates, strict errors name file and field,
// --config merges over the task, ts-<name> resolves its folder, per-dataset model rules.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/status.h"
#include "tasks/task.h"

static char g_dir[256];

static void make_tmp(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/maelre-test-tasks-XXXXXX");
    cr_assert(mkdtemp(g_dir), "mkdtemp");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void rm_tree(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    cr_assert_eq(system(cmd), 0);
}

// Tokens left after each MAELRE stage for a sequence of n tokens (keep applied per stage).
static double tokens_before_last_stage(const ModelConfig *c, double n) {
    for (size_t s = 0; s + 1 < c->n_stages; s++) n = floor(n * c->stages[s].keep);
    return n;
}

Test(tasks, shipped_tasks_parse_and_validate) {
    const char *names[] = {"lra-listops", "lra-text", "lra-image", "audio-fsdd"};
    const size_t classes[] = {10, 2, 10, 10};
    const size_t max_len[] = {2000, 4096, 1024, 2000};
    for (size_t i = 0; i < 4; i++) {
        Task t;
        char err[1024] = "";
        int rc = task_load(&t, names[i], NULL, "/nonexistent", err, sizeof err);
        cr_assert_eq(rc, MB_OK, "%s: %s", names[i], err);
        cr_assert_str_eq(t.name, names[i]);
        cr_assert_eq(t.classes, classes[i], "%s classes", names[i]);
        cr_assert_eq(t.data.max_len, max_len[i], "%s max_len", names[i]);
        // SPEC §5 default model, same for every method.
        cr_assert_eq(t.model.dim, 64);
        cr_assert_eq(t.model.heads, 2);
        cr_assert_eq(t.model.mlp, 128);
        cr_assert_eq(t.model.blocks, 4);
        cr_assert_float_eq(t.optim.lr, 5e-4f, 1e-9);
        cr_assert(t.quick.steps > 0 && t.quick.batch > 0 && t.quick.train_limit > 0 && t.quick.test_limit > 0,
                  "%s: quick budget must be a small subset", names[i]);
        cr_assert(t.full.steps > t.quick.steps, "%s: full budget bigger than quick", names[i]);
        cr_assert(strlen(t.download) > 10, "%s: says where to get the data", names[i]);
        // MAELRE stages bring the longest sample below D before the last stage (both kinds run).
        size_t sum = 0;
        for (size_t s = 0; s < t.model.n_stages; s++) sum += t.model.stages[s].blocks;
        cr_assert_eq(sum, t.model.blocks);
        double left = tokens_before_last_stage(&t.model, (double)t.data.max_len);
        cr_assert(left <= (double)t.model.dim, "%s: %g tokens reach the last stage", names[i], left);
        cr_assert(t.data.max_len > t.model.dim, "%s: efficient attention runs at the first stage", names[i]);
        cr_assert(t.json && cJSON_GetObjectItemCaseSensitive(t.json, "budgets"));
        task_free(&t);
    }
}

Test(tasks, ts_template_resolves_folder_case_insensitively) {
    make_tmp();
    char p[512];
    snprintf(p, sizeof p, "%s/ucr", g_dir);
    cr_assert_eq(mkdir(p, 0777), 0);
    snprintf(p, sizeof p, "%s/ucr/GunPoint", g_dir);
    cr_assert_eq(mkdir(p, 0777), 0);
    Task t;
    char err[1024] = "";
    cr_assert_eq(task_load(&t, "ts-gunpoint", NULL, g_dir, err, sizeof err), MB_OK, "%s", err);
    cr_assert_str_eq(t.name, "ts-gunpoint");
    cr_assert_str_eq(t.data.path, "ucr/GunPoint");
    cr_assert_str_eq(t.data.source, "ucr");
    cr_assert(task_data_present(&t, g_dir));
    cr_assert_eq(t.data.max_len, 0, "max length = the series length, from the data");
    cJSON *d = cJSON_GetObjectItemCaseSensitive(t.json, "data");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(d, "path")->valuestring, "ucr/GunPoint");
    task_free(&t);
    // A dataset that is not there resolves to its own name and reports missing data.
    cr_assert_eq(task_load(&t, "ts-nosuch", NULL, g_dir, err, sizeof err), MB_OK, "%s", err);
    cr_assert_str_eq(t.data.path, "ucr/nosuch");
    cr_assert(!task_data_present(&t, g_dir));
    task_free(&t);
    char **names;
    size_t n;
    cr_assert_eq(task_names(&names, &n, g_dir, err, sizeof err), MB_OK, "%s", err);
    int saw_ts = 0, saw_listops = 0, saw_template = 0;
    for (size_t i = 0; i < n; i++) {
        saw_ts |= !strcmp(names[i], "ts-gunpoint");
        saw_listops |= !strcmp(names[i], "lra-listops");
        saw_template |= !strcmp(names[i], "ts");
    }
    cr_assert(saw_ts && saw_listops && !saw_template);
    task_names_free(names, n);
    rm_tree();
}

Test(tasks, keep_auto_and_linformer_cap_follow_the_data) {
    Task t;
    char err[1024] = "";
    cr_assert_eq(task_load(&t, "ts-acsf1", NULL, "/nonexistent", err, sizeof err), MB_OK, "%s", err);
    cr_assert(t.maelre_keep_auto);
    // ACSF1: 1460 steps -> the longest sample has < D tokens at the last stage.
    ModelConfig c = task_model_config(&t, METHOD_MAELRE, 0, 1, 1460, 10);
    cr_assert(tokens_before_last_stage(&c, 1460) < 64.0, "%g", tokens_before_last_stage(&c, 1460));
    cr_assert(c.stages[0].keep >= 0.25f && c.stages[0].keep < 0.5f);
    // GunPoint: 150 steps keeps more per stage, still below D before the last.
    c = task_model_config(&t, METHOD_MAELRE, 0, 1, 150, 2);
    cr_assert(c.stages[0].keep > 0.5f, "%g", c.stages[0].keep);
    cr_assert(tokens_before_last_stage(&c, 150) < 64.0);
    // JapaneseVowels: 29 steps, already below D: no merging needed.
    c = task_model_config(&t, METHOD_MAELRE, 0, 12, 29, 9);
    cr_assert_float_eq(c.stages[0].keep, 1.0f, 1e-6);
    c = task_model_config(&t, METHOD_LINFORMER, 0, 12, 29, 9);
    cr_assert_eq(c.linformer_k, 29, "k capped at the max length");
    cr_assert_eq(c.method, METHOD_LINFORMER);
    cr_assert_eq(c.feat_dim, 12);
    cr_assert_eq(c.classes, 9);
    task_free(&t);
}

static int load_with_config(const char *config_text, Task *t, char *err, size_t errlen, char *cfg_path) {
    snprintf(cfg_path, 512, "%s/cfg.json", g_dir);
    write_text(cfg_path, config_text);
    return task_load(t, "lra-listops", cfg_path, "/nonexistent", err, errlen);
}

Test(tasks, config_overrides_fields_and_merges_json) {
    make_tmp();
    Task t;
    char err[1024] = "", cfg[512];
    int rc = load_with_config("{\"model\": {\"dim\": 32, \"local_attn_window\": 64, \"bigbird_block\": 32, \"bigbird_random\": 2, \"softmax_impl\": \"dense\", \"maelre_coarse\": \"efficient\", \"maelre_stages\": [{\"blocks\": 2, \"keep\": 0.5},"
                              "{\"blocks\": 2, \"keep\": 0.5}]}, \"budgets\": {\"quick\": {\"steps\": 3}},"
                              "\"optim\": {\"schedule\": \"linear\"}}", &t, err, sizeof err, cfg);
    cr_assert_eq(rc, MB_OK, "%s", err);
    cr_assert_eq(t.model.dim, 32);
    cr_assert_eq(t.model.heads, 2, "untouched fields keep the task's value");
    cr_assert_eq(t.model.softmax_impl, SOFTMAX_DENSE);
    cr_assert_eq(t.model.local_attn_window, 64);
    cr_assert_eq(t.model.bigbird_block, 32);
    cr_assert_eq(t.model.bigbird_random, 2);
    cr_assert_eq(t.model.maelre_coarse, ATTN_EFFICIENT);
    cr_assert_eq(t.model.performer_features, 128, "SPEC §9 defaults");
    cr_assert_eq(t.model.nystrom_landmarks, 64);
    cr_assert_eq(t.model.nystrom_conv, 35);
    cr_assert_eq(t.model.n_stages, 2);
    cr_assert_eq(t.model.stages[1].blocks, 2);
    cr_assert_float_eq(t.model.stages[1].keep, 0.5f, 1e-6);
    cr_assert_eq(t.quick.steps, 3);
    cr_assert_eq(t.optim.schedule, SCHED_LINEAR);
    cr_assert(strstr(t.file, "cfg.json"), "the source names both files: %s", t.file);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(t.json, "model");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(m, "dim")->valuedouble, 32);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(m, "heads")->valuedouble, 2);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(t.json, "budgets"), "quick");
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(q, "steps")->valuedouble, 3);
    cr_assert(cJSON_GetObjectItemCaseSensitive(q, "test_limit"), "merged, not replaced");
    task_free(&t);
    rm_tree();
}

// The SPEC §9 settings: users set them in a task's (or --config's) model object.
Test(tasks, spec9_model_fields) {
    make_tmp();
    Task t;
    char err[1024] = "", cfg[512];
    int rc = load_with_config("{\"model\": {\"maelre_coarse\": \"performer\", \"performer_features\": 32, "
                              "\"nystrom_landmarks\": 16, \"nystrom_conv\": 0}}", &t, err, sizeof err, cfg);
    cr_assert_eq(rc, MB_OK, "%s", err);
    cr_expect_eq(t.model.maelre_coarse, ATTN_PERFORMER);
    cr_expect_eq(t.model.performer_features, 32);
    cr_expect_eq(t.model.nystrom_landmarks, 16);
    cr_expect_eq(t.model.nystrom_conv, 0);
    task_free(&t);
    rc = load_with_config("{\"model\": {\"maelre_coarse\": \"linear\"}}", &t, err, sizeof err, cfg);
    cr_assert_eq(rc, MB_OK, "%s", err);
    cr_expect_eq(t.model.maelre_coarse, ATTN_LINEAR);
    task_free(&t);
    rm_tree();
}

// Each bad document must fail with MB_ERR_USAGE and a message naming the file and the field.
Test(tasks, strict_errors_name_file_and_field) {
    make_tmp();
    struct { const char *json, *field; } cases[] = {
        {"{\"modle\": {}}", "modle"},
        {"{\"model\": {\"dimm\": 64}}", "model.dimm"},
        {"{\"model\": {\"dim\": \"64\"}}", "model.dim"},
        {"{\"model\": {\"dim\": 0}}", "model.dim"},
        {"{\"model\": {\"dim\": 6.5}}", "model.dim"},
        {"{\"model\": {\"linformer_share_ef\": 1}}", "model.linformer_share_ef"},
        {"{\"model\": {\"softmax_impl\": \"sparse\"}}", "model.softmax_impl"},
        {"{\"model\": {\"softmax_impl\": 1}}", "model.softmax_impl"},
        {"{\"model\": {\"maelre_coarse\": \"fast\"}}", "model.maelre_coarse"},
        {"{\"model\": {\"maelre_coarse\": \"softmax\"}}", "maelre_coarse"},   // exact: not a coarse kind
        {"{\"model\": {\"maelre_coarse\": \"nystromformer\"}}", "maelre_coarse"},   // not a SPEC §9.6 coarse kind
        {"{\"model\": {\"performer_features\": 0}}", "model.performer_features"},
        {"{\"model\": {\"performer_features\": \"128\"}}", "model.performer_features"},
        {"{\"model\": {\"nystrom_landmarks\": 0}}", "model.nystrom_landmarks"},
        {"{\"model\": {\"nystrom_conv\": -1}}", "model.nystrom_conv"},
        {"{\"model\": {\"nystrom_conv\": 4096}}", "nystrom_conv"},          // above 1024 taps
        {"{\"model\": {\"maelre_stages\": [{\"blocks\": 1, \"keep\": 1.5}]}}", "model.maelre_stages[0].keep"},
        {"{\"model\": {\"maelre_stages\": [{\"blocks\": 1, \"kept\": 0.5}]}}", "model.maelre_stages[0].kept"},
        {"{\"model\": {\"maelre_stages\": 3}}", "model.maelre_stages"},
        {"{\"data\": {\"max_len\": -1}}", "data.max_len"},
        {"{\"data\": {\"source\": 7}}", "data.source"},
        {"{\"optim\": {\"lr\": \"fast\"}}", "optim.lr"},
        {"{\"optim\": {\"schedule\": \"step\"}}", "optim.schedule"},
        {"{\"budgets\": {\"quick\": {\"steps\": 3, \"epoch\": 1}}}", "budgets.quick.epoch"},
        {"{\"budgets\": {\"fast\": {}}}", "budgets.fast"},
        {"{\"data\": {\"source\": \"floppy\"}}", "data.source"},
        {"{\"data\": {\"path\": \"../etc\"}}", "data.path"},
        {"{\"model\": {\"dropout\": 1}}", "model.dropout"},
        {"{\"model\": {\"dropout\": -0.1}}", "model.dropout"},
        {"{\"model\": {\"dropout\": \"0.1\"}}", "model.dropout"},
        {"{\"model\": {\"dim\": 65}}", "model"},                       // H does not divide D
        {"{\"budgets\": {\"quick\": {\"steps\": 0}}}", "budgets.quick"}, // no steps, no time
        {"{\"model\": {\"local_attn_window\": 1}}", "local_attn_window"},   // w/2 = 0: i < j <= i is empty
        {"{\"model\": {\"bigbird_block\": 0}}", "model.bigbird_block"},
        {"{\"model\": {\"bigbird_random\": -2}}", "model.bigbird_random"},
        {"{\"model\": {\"maelre_coarse\": \"local\"}}", "maelre_coarse"},  // exact sparse: not a coarse kind
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Task t;
        char err[1024] = "", cfg[512];
        int rc = load_with_config(cases[i].json, &t, err, sizeof err, cfg);
        cr_assert_eq(rc, MB_ERR_USAGE, "case %zu (%s): rc %d, %s", i, cases[i].json, rc, err);
        cr_assert(strstr(err, "cfg.json"), "case %zu: file not named: %s", i, err);
        cr_assert(strstr(err, cases[i].field), "case %zu: field %s not named: %s", i, cases[i].field, err);
        task_free(&t);
    }
    rm_tree();
}

Test(tasks, invalid_json_gives_line) {
    make_tmp();
    Task t;
    char err[1024] = "", cfg[512];
    int rc = load_with_config("{\n  \"model\": {\n    \"dim\": 32,\n  }\n}\n", &t, err, sizeof err, cfg);
    cr_assert_eq(rc, MB_ERR_USAGE);
    cr_assert(strstr(err, "cfg.json:4:"), "%s", err);
    task_free(&t);
    rc = load_with_config("[1, 2]", &t, err, sizeof err, cfg);
    cr_assert_eq(rc, MB_ERR_USAGE);
    task_free(&t);
    rm_tree();
}

Test(tasks, unknown_task_and_missing_config_file) {
    Task t;
    char err[1024] = "";
    cr_assert_eq(task_load(&t, "lra-nosuch", NULL, "/nonexistent", err, sizeof err), MB_ERR_USAGE);
    cr_assert(strstr(err, "lra-nosuch"), "%s", err);
    task_free(&t);
    cr_assert_eq(task_load(&t, "../etc/passwd", NULL, "/nonexistent", err, sizeof err), MB_ERR_USAGE);
    task_free(&t);
    cr_assert_eq(task_load(&t, "lra-text", "/nonexistent/cfg.json", "/nonexistent", err, sizeof err), MB_ERR_IO);
    cr_assert(strstr(err, "/nonexistent/cfg.json"), "%s", err);
    task_free(&t);
}

Test(tasks, json_merge_is_deep) {
    cJSON *a = cJSON_Parse("{\"x\": {\"y\": 1, \"z\": 2}, \"k\": [1, 2], \"s\": \"a\"}");
    cJSON *b = cJSON_Parse("{\"x\": {\"z\": 3, \"w\": 4}, \"k\": [5]}");
    cJSON *m = json_merge(a, b);
    cJSON *want = cJSON_Parse("{\"x\": {\"y\": 1, \"z\": 3, \"w\": 4}, \"k\": [5], \"s\": \"a\"}");
    cr_assert(cJSON_Compare(m, want, 1), "%s", cJSON_PrintUnformatted(m));
    cJSON_Delete(a); cJSON_Delete(b); cJSON_Delete(m); cJSON_Delete(want);
}
