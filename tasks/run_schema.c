// The results schema: ONE list of columns (name, where in RunRow, kind, CSV or JSON-only) from
// which the CSV header, the JSON rows and the tables built back from JSON rows all come.
#include "tasks/run_schema.h"
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "tasks/dist.h"

typedef enum { K_STR, K_METHOD, K_U64, K_INT, K_SIZE, K_DBL, K_DBL_FINITE } Kind;
typedef struct {
    const char *name;
    Kind kind;
    int csv;        // 1: a CSV column (in this order); 0: JSON only
    size_t off;     // offsetof(RunRow, ...)
} Column;

#define C(name, kind, field) {name, kind, 1, offsetof(RunRow, field)}
#define J(name, kind, field) {name, kind, 0, offsetof(RunRow, field)}
static const Column COLS[] = {
    C("task", K_STR, task), C("method", K_METHOD, method), C("seed", K_U64, seed),
    C("threads", K_INT, threads), C("params", K_SIZE, params), C("max_len", K_SIZE, max_len),
    C("mean_tokens", K_DBL, mean_tokens), C("train_samples", K_SIZE, train_samples),
    C("test_samples", K_SIZE, test_samples), C("steps", K_SIZE, steps), C("batch", K_SIZE, batch),
    C("accuracy", K_DBL, accuracy), C("accuracy_stderr", K_DBL, accuracy_stderr),
    C("train_seconds", K_DBL, train_seconds), C("train_samples_per_s", K_DBL, train_samples_per_s),
    C("infer_samples_per_s", K_DBL, infer_samples_per_s),
    C("flops_infer_per_sample", K_DBL, flops_infer_per_sample),
    C("flops_train_per_sample", K_DBL, flops_train_per_sample),
    C("macs_infer_per_sample", K_DBL, macs_infer_per_sample),
    C("peak_mem_train_bytes", K_SIZE, peak_mem_train_bytes),
    C("peak_mem_infer_bytes", K_SIZE, peak_mem_infer_bytes), C("peak_rss_bytes", K_SIZE, peak_rss_bytes),
    C("blocks_softmax", K_DBL, blocks[ATTN_SOFTMAX]), C("blocks_efficient", K_DBL, blocks[ATTN_EFFICIENT]),
    // the protocol (SPEC §11)
    C("accuracy_last", K_DBL, accuracy_last), C("best_step", K_SIZE, best_step),
    C("val_accuracy", K_DBL, val_accuracy), C("majority_accuracy", K_DBL, majority_accuracy),
    C("val_samples", K_SIZE, val_samples),
    // JSON only
    J("blocks_linformer", K_DBL, blocks[ATTN_LINFORMER]),
    J("blocks_linear", K_DBL, blocks[ATTN_LINEAR]), J("blocks_performer", K_DBL, blocks[ATTN_PERFORMER]),
    J("blocks_nystromformer", K_DBL, blocks[ATTN_NYSTROM]), J("blocks_local", K_DBL, blocks[ATTN_LOCAL]),
    J("blocks_bigbird", K_DBL, blocks[ATTN_BIGBIRD]),
    J("macs_train_per_sample", K_DBL, macs_train_per_sample),
    J("final_train_loss", K_DBL_FINITE, final_loss),
    J("evaluations", K_SIZE, evaluations), J("early_stopped", K_INT, early_stopped),
    J("kernels", K_STR, kernels),
};
#undef C
#undef J
#define N_COLS (sizeof COLS / sizeof COLS[0])

static const char *g_names[N_COLS];
static size_t g_n;

const char *const *run_columns(size_t *n) {
    if (!g_n) {   // filled once, from the list (the same values every time)
        size_t k = 0;
        for (size_t i = 0; i < N_COLS; i++)
            if (COLS[i].csv) g_names[k++] = COLS[i].name;
        g_n = k;
    }
    if (n) *n = g_n;
    return g_names;
}

size_t run_n_columns(void) {
    size_t n;
    run_columns(&n);
    return n;
}

size_t runspec_val_limit(const RunSpec *rs) { return rs->val_limit ? rs->val_limit : rs->test_limit; }

void runspec_from_budget(RunSpec *rs, const Budget *b, const char *name) {
    rs->steps = b->steps;
    rs->epochs = b->epochs;
    rs->time_budget = b->time_budget;
    rs->batch = b->batch;
    rs->train_limit = b->train_limit;
    rs->test_limit = b->test_limit;
    rs->patience = b->patience;
    snprintf(rs->budget, sizeof rs->budget, "%s", name);
}

static const char *sched_name(Schedule s) {
    return s == SCHED_COSINE ? "cosine" : s == SCHED_LINEAR ? "linear" : "constant";
}

static cJSON *model_json(const ModelConfig *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", method_name(c->method));
    cJSON_AddNumberToObject(j, "vocab", (double)c->vocab);
    cJSON_AddNumberToObject(j, "feat_dim", (double)c->feat_dim);
    cJSON_AddNumberToObject(j, "max_len", (double)c->max_len);
    cJSON_AddNumberToObject(j, "dim", (double)c->dim);
    cJSON_AddNumberToObject(j, "heads", (double)c->heads);
    cJSON_AddNumberToObject(j, "mlp", (double)c->mlp);
    cJSON_AddNumberToObject(j, "blocks", (double)c->blocks);
    cJSON_AddNumberToObject(j, "classes", (double)c->classes);
    cJSON_AddNumberToObject(j, "ln_eps", c->ln_eps);
    cJSON_AddNumberToObject(j, "dropout", c->dropout);
    if (c->pairs) cJSON_AddBoolToObject(j, "pairs", 1);   // two-tower (SPEC §10.2): samples are pairs
    if (method_has_softmax(c->method)) cJSON_AddStringToObject(j, "softmax_impl", softmax_impl_name(c->softmax_impl));
    if (c->method == METHOD_LINFORMER) {
        cJSON_AddNumberToObject(j, "linformer_k", (double)c->linformer_k);
        cJSON_AddBoolToObject(j, "linformer_share_ef", c->linformer_share_ef);
    }
    if (c->method == METHOD_TOME) cJSON_AddNumberToObject(j, "tome_r_frac", c->tome_r_frac);
    // the SPEC §9 kinds' own settings, for the methods that use them
    int performer = c->method == METHOD_PERFORMER || (c->method == METHOD_MAELRE && c->maelre_coarse == ATTN_PERFORMER);
    if (performer) cJSON_AddNumberToObject(j, "performer_features", (double)c->performer_features);
    if (c->method == METHOD_NYSTROMFORMER) {
        cJSON_AddNumberToObject(j, "nystrom_landmarks", (double)c->nystrom_landmarks);
        cJSON_AddNumberToObject(j, "nystrom_conv", (double)c->nystrom_conv);
    }
    if (c->method == METHOD_LOCAL) cJSON_AddNumberToObject(j, "local_attn_window", (double)c->local_attn_window);
    if (c->method == METHOD_BIGBIRD) {
        cJSON_AddNumberToObject(j, "bigbird_block", (double)c->bigbird_block);
        cJSON_AddNumberToObject(j, "bigbird_random", (double)c->bigbird_random);
    }
    if (c->method == METHOD_MAELRE) cJSON_AddStringToObject(j, "maelre_coarse", attn_kind_name(c->maelre_coarse));
    if (c->method == METHOD_MAELRE || c->method == METHOD_MAELRE_EXACT) {
        cJSON *st = cJSON_AddArrayToObject(j, "maelre_stages");
        for (size_t i = 0; i < c->n_stages; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "blocks", (double)c->stages[i].blocks);
            cJSON_AddNumberToObject(s, "keep", c->stages[i].keep);
            cJSON_AddItemToArray(st, s);
        }
        cJSON_AddNumberToObject(j, "switch_threshold", (double)(c->switch_threshold ? c->switch_threshold : c->dim));
        cJSON_AddNumberToObject(j, "local_window", (double)c->local_window);
        cJSON_AddNumberToObject(j, "merge_threshold", c->merge_threshold);
    }
    return j;
}

static cJSON *optim_json(const AdamWConfig *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", "adamw");
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "clip_norm", o->clip_norm);
    cJSON_AddNumberToObject(j, "warmup_steps", (double)o->warmup_steps);
    cJSON_AddNumberToObject(j, "total_steps", (double)o->total_steps);
    cJSON_AddStringToObject(j, "schedule", sched_name(o->schedule));
    return j;
}

cJSON *run_key_json(const Task *t, const RunSpec *rs) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "task", t->name);
    cJSON_AddNumberToObject(j, "seed", (double)rs->seed);
    cJSON_AddNumberToObject(j, "threads", rs->threads);
    cJSON_AddNumberToObject(j, "steps", rs->time_budget > 0 || rs->epochs > 0 ? 0 : (double)rs->steps);
    cJSON_AddNumberToObject(j, "epochs", rs->time_budget > 0 ? 0 : rs->epochs);
    cJSON_AddNumberToObject(j, "time_budget", rs->time_budget);
    cJSON_AddNumberToObject(j, "batch", (double)rs->batch);
    cJSON_AddNumberToObject(j, "train_limit", (double)rs->train_limit);
    cJSON_AddNumberToObject(j, "test_limit", (double)rs->test_limit);
    if (rs->val_limit) cJSON_AddNumberToObject(j, "val_limit", (double)rs->val_limit);   // absent: old keys still match
    cJSON_AddNumberToObject(j, "eval_every", (double)rs->eval_every);
    cJSON_AddNumberToObject(j, "patience", (double)rs->patience);
    // Only what changes the numbers: data, model and optimizer (not names, notes or budgets,
    // whose effective values are the fields above). --checkpoint-every does not change them.
    cJSON *tc = cJSON_AddObjectToObject(j, "task_config");
    const char *keys[] = {"classes", "data", "model", "optim"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = t->json ? cJSON_GetObjectItemCaseSensitive(t->json, keys[i]) : NULL;
        if (v) cJSON_AddItemToObject(tc, keys[i], cJSON_Duplicate(v, 1));
    }
    return j;
}

static void add_column(cJSON *j, const Column *c, const RunRow *r) {
    const char *p = (const char *)r + c->off;
    switch (c->kind) {
    case K_STR: cJSON_AddStringToObject(j, c->name, p); break;
    case K_METHOD: cJSON_AddStringToObject(j, c->name, method_name(*(const Method *)p)); break;
    case K_U64: cJSON_AddNumberToObject(j, c->name, (double)*(const uint64_t *)p); break;
    case K_INT: cJSON_AddNumberToObject(j, c->name, *(const int *)p); break;
    case K_SIZE: cJSON_AddNumberToObject(j, c->name, (double)*(const size_t *)p); break;
    case K_DBL: cJSON_AddNumberToObject(j, c->name, *(const double *)p); break;
    case K_DBL_FINITE:
        if (isfinite(*(const double *)p)) cJSON_AddNumberToObject(j, c->name, *(const double *)p);
        break;
    }
}

cJSON *run_row_to_json(const RunRow *r, const Task *t, const RunSpec *rs) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    for (size_t i = 0; i < N_COLS; i++) add_column(j, &COLS[i], r);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddItemToObject(cfg, "task", t->json ? cJSON_Duplicate(t->json, 1) : cJSON_CreateNull());
    cJSON *run = cJSON_AddObjectToObject(cfg, "run");
    cJSON_AddStringToObject(run, "budget", rs->budget);
    cJSON_AddNumberToObject(run, "steps", rs->time_budget > 0 || rs->epochs > 0 ? 0 : (double)rs->steps);
    cJSON_AddNumberToObject(run, "epochs", rs->time_budget > 0 ? 0 : rs->epochs);
    cJSON_AddNumberToObject(run, "time_budget", rs->time_budget);
    cJSON_AddNumberToObject(run, "batch", (double)rs->batch);
    cJSON_AddNumberToObject(run, "train_limit", (double)rs->train_limit);
    cJSON_AddNumberToObject(run, "test_limit", (double)rs->test_limit);
    cJSON_AddNumberToObject(run, "val_limit", (double)runspec_val_limit(rs));
    cJSON_AddNumberToObject(run, "eval_every", (double)rs->eval_every);
    cJSON_AddNumberToObject(run, "patience", (double)rs->patience);
    cJSON_AddNumberToObject(run, "checkpoint_every", rs->checkpoint_every);
    cJSON_AddNumberToObject(run, "seed", (double)rs->seed);
    cJSON_AddNumberToObject(run, "threads_requested", rs->threads);
    cJSON_AddNumberToObject(run, "data_parallel_ranks", rs->data_parallel ? dist_size() : 1);
    cJSON_AddItemToObject(cfg, "model", model_json(&r->model));
    cJSON_AddItemToObject(cfg, "optim", optim_json(&r->optim));
    cJSON_AddStringToObject(cfg, "conventions",
        "FLOPs analytic from actual shapes: 1 multiply-add = 2 FLOPs = 1 MAC, 1 FLOP per element-wise op; "
        "inference FLOPs/MACs = mean over the test set; training FLOPs = forward+backward over all steps / samples trained; "
        "throughput on a monotonic clock, warm-up excluded; train_seconds = time in training steps only "
        "(validation and state saving excluded, also from a time budget); peak_mem = core/mem.h high-water mark "
        "above the data, training and inference separately; peak_rss = ru_maxrss of the process that ran only this "
        "(task, method, seed); blocks_* = mean blocks per test sample using that attention kind; accuracy = test "
        "accuracy of the best-validation weights (best_step, val_accuracy), accuracy_last = of the last weights; "
        "majority_accuracy = test accuracy of always predicting the training split's most frequent class");
    cJSON_AddItemToObject(j, "config", cfg);
    cJSON_AddItemToObject(j, "run_key", run_key_json(t, rs));
    return j;
}

Table *run_table_new(void) {
    size_t n;
    const char *const *names = run_columns(&n);
    return table_new(names, n);
}

int run_table_add(Table *tb, const cJSON *row) {
    size_t r = table_add_row(tb);
    for (size_t i = 0; i < N_COLS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, COLS[i].name);
        if (!v) continue;
        if (!COLS[i].csv) { table_set_json(tb, r, COLS[i].name, cJSON_Duplicate(v, 1)); continue; }
        if (cJSON_IsString(v)) table_set_str(tb, r, COLS[i].name, v->valuestring);
        else if (cJSON_IsNumber(v)) table_set_num(tb, r, COLS[i].name, v->valuedouble);
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(row, "config");
    if (cfg) table_set_json(tb, r, "config", cJSON_Duplicate(cfg, 1));
    return 0;
}
