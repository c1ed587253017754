// Task files: strict JSON -> Task. See tasks/task.h for the promises.
#include "tasks/task.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/status.h"
#include "loaders/aan.h"
#include "loaders/pathfinder.h"

// ---------------------------------------------------------------- files and JSON

int json_read_file(cJSON **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(f); return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > ((size_t)64 << 20)) {
                free(buf); fclose(f);
                return mb_fail(err, errlen, MB_ERR_USAGE, "%s: larger than 64 MiB, not a task config", path);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(f); return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb; cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) { free(buf); return mb_fail(err, errlen, MB_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(buf, &end, 1);
    if (!j) {
        size_t off = end ? (size_t)(end - buf) : 0, line = 1;
        for (size_t i = 0; i < off && i < n; i++) line += buf[i] == '\n';
        free(buf);
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s:%zu: invalid JSON (near byte %zu)", path, line, off);
    }
    free(buf);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s:1: expected a JSON object at the top level", path);
    }
    *out = j;
    return MB_OK;
}

cJSON *json_merge(const cJSON *base, const cJSON *over) {
    if (!base) return over ? cJSON_Duplicate(over, 1) : NULL;
    if (!over) return cJSON_Duplicate(base, 1);
    if (!cJSON_IsObject(base) || !cJSON_IsObject(over)) return cJSON_Duplicate(over, 1);
    cJSON *out = cJSON_Duplicate(base, 1);
    if (!out) return NULL;
    for (const cJSON *c = over->child; c; c = c->next) {
        cJSON *mine = cJSON_GetObjectItemCaseSensitive(out, c->string);
        cJSON *merged = json_merge(mine, c);
        if (!merged) { cJSON_Delete(out); return NULL; }
        if (mine) cJSON_ReplaceItemInObjectCaseSensitive(out, c->string, merged);
        else cJSON_AddItemToObject(out, c->string, merged);
    }
    return out;
}

// ---------------------------------------------------------------- strict field parsing

typedef enum { F_SIZE, F_POS, F_FLOAT, F_BOOL, F_STR, F_SPECIAL } FieldKind;
typedef struct {
    const char *key;
    FieldKind kind;
    void *dst;      // size_t*, float*, double*(F_FLOAT with dbl), int*, char*
    size_t cap;     // F_STR capacity; F_FLOAT: 1 = double, 0 = float
} Field;

static int bad(char *err, size_t errlen, const char *file, const char *where, const char *key,
               const char *what) {
    return mb_fail(err, errlen, MB_ERR_USAGE, "%s: %s%s%s: %s", file, where, *where ? "." : "", key, what);
}

static int as_size(const cJSON *v, size_t *out, int positive) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= (positive ? 1.0 : 0.0)) || d > 9007199254740992.0 || d != floor(d)) return -1;
    *out = (size_t)d;
    return 0;
}

// Applies obj's members to the fields; members whose Field is F_SPECIAL are left to the caller.
static int parse_fields(const cJSON *obj, const char *file, const char *where, const Field *f,
                        size_t nf, char *err, size_t errlen) {
    if (!cJSON_IsObject(obj)) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: %s: expected an object", file, where);
    for (const cJSON *c = obj->child; c; c = c->next) {
        const Field *fd = NULL;
        for (size_t i = 0; i < nf; i++) if (!strcmp(f[i].key, c->string)) { fd = &f[i]; break; }
        if (!fd) return bad(err, errlen, file, where, c->string, "unknown field");
        switch (fd->kind) {
        case F_SIZE:
        case F_POS:
            if (as_size(c, fd->dst, fd->kind == F_POS))
                return bad(err, errlen, file, where, c->string,
                           fd->kind == F_POS ? "expected a positive integer" : "expected a non-negative integer");
            break;
        case F_FLOAT:
            if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0)
                return bad(err, errlen, file, where, c->string, "expected a non-negative number");
            if (fd->cap) *(double *)fd->dst = c->valuedouble;
            else *(float *)fd->dst = (float)c->valuedouble;
            break;
        case F_BOOL:
            if (!cJSON_IsBool(c)) return bad(err, errlen, file, where, c->string, "expected true or false");
            *(int *)fd->dst = cJSON_IsTrue(c);
            break;
        case F_STR:
            if (!cJSON_IsString(c)) return bad(err, errlen, file, where, c->string, "expected a string");
            if (strlen(c->valuestring) >= fd->cap) return bad(err, errlen, file, where, c->string, "string too long");
            memcpy(fd->dst, c->valuestring, strlen(c->valuestring) + 1);
            break;
        case F_SPECIAL:
            break;
        }
    }
    return MB_OK;
}

static int parse_budget(Budget *b, const cJSON *obj, const char *file, const char *where,
                        char *err, size_t errlen) {
    const Field f[] = {
        {"steps", F_SIZE, &b->steps, 0}, {"time_budget", F_FLOAT, &b->time_budget, 1},
        {"epochs", F_FLOAT, &b->epochs, 1}, {"patience", F_SIZE, &b->patience, 0},
        {"batch", F_POS, &b->batch, 0}, {"train_limit", F_SIZE, &b->train_limit, 0},
        {"test_limit", F_SIZE, &b->test_limit, 0}, {"note", F_STR, b->note, sizeof b->note},
    };
    return parse_fields(obj, file, where, f, sizeof f / sizeof f[0], err, errlen);
}

static int parse_stages(ModelConfig *m, const cJSON *arr, const char *file, char *err, size_t errlen) {
    if (!cJSON_IsArray(arr)) return bad(err, errlen, file, "model", "maelre_stages", "expected an array of {blocks, keep}");
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n == 0 || n > MODEL_MAX_STAGES)
        return bad(err, errlen, file, "model", "maelre_stages", "expected 1 to 16 stages");
    size_t i = 0;
    for (const cJSON *c = arr->child; c; c = c->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "model.maelre_stages[%zu]", i);
        MaelreStage s = {1, 1.0f};
        const Field f[] = {{"blocks", F_POS, &s.blocks, 0}, {"keep", F_FLOAT, &s.keep, 0}};
        int rc = parse_fields(c, file, where, f, 2, err, errlen);
        if (rc) return rc;
        if (!(s.keep > 0.0f && s.keep <= 1.0f)) return bad(err, errlen, file, where, "keep", "expected a number in (0, 1]");
        m->stages[i] = s;
    }
    m->n_stages = n;
    return MB_OK;
}

int task_apply_json(Task *t, const cJSON *json, const char *file, char *err, size_t errlen) {
    int rc;
    const Field top[] = {
        {"name", F_STR, t->name, sizeof t->name}, {"modality", F_STR, t->modality, sizeof t->modality},
        {"description", F_STR, t->description, sizeof t->description},
        {"download", F_STR, t->download, sizeof t->download}, {"classes", F_SIZE, &t->classes, 0},
        {"data", F_SPECIAL, NULL, 0}, {"model", F_SPECIAL, NULL, 0}, {"optim", F_SPECIAL, NULL, 0},
        {"budgets", F_SPECIAL, NULL, 0},
    };
    if ((rc = parse_fields(json, file, "", top, sizeof top / sizeof top[0], err, errlen))) return rc;

    const cJSON *d = cJSON_GetObjectItemCaseSensitive(json, "data");
    if (d) {
        DataSpec *s = &t->data;
        size_t sr = (size_t)(s->sample_rate > 0 ? s->sample_rate : 0);
        const Field f[] = {
            {"source", F_STR, s->source, sizeof s->source}, {"path", F_STR, s->path, sizeof s->path},
            {"max_len", F_SIZE, &s->max_len, 0}, {"frame", F_POS, &s->frame, 0},
            {"grayscale", F_BOOL, &s->grayscale, 0}, {"sample_rate", F_POS, &sr, 0},
            {"limit", F_SIZE, &s->limit, 0},
        };
        if ((rc = parse_fields(d, file, "data", f, sizeof f / sizeof f[0], err, errlen))) return rc;
        if (sr > INT_MAX) return bad(err, errlen, file, "data", "sample_rate", "too large");
        s->sample_rate = (int)sr;
    }

    const cJSON *m = cJSON_GetObjectItemCaseSensitive(json, "model");
    if (m) {
        ModelConfig *c = &t->model;
        char impl[16] = "", coarse[32] = "";
        const Field f[] = {
            {"dim", F_POS, &c->dim, 0}, {"heads", F_POS, &c->heads, 0}, {"mlp", F_POS, &c->mlp, 0},
            {"blocks", F_POS, &c->blocks, 0}, {"ln_eps", F_FLOAT, &c->ln_eps, 0},
            {"linformer_k", F_POS, &c->linformer_k, 0},
            {"linformer_share_ef", F_BOOL, &c->linformer_share_ef, 0},
            {"tome_r_frac", F_FLOAT, &c->tome_r_frac, 0},
            {"maelre_stages", F_SPECIAL, NULL, 0}, {"maelre_keep_auto", F_BOOL, &t->maelre_keep_auto, 0},
            {"switch_threshold", F_SIZE, &c->switch_threshold, 0},
            {"local_window", F_POS, &c->local_window, 0},
            {"merge_threshold", F_FLOAT, &c->merge_threshold, 0},
            {"local_attn_window", F_POS, &c->local_attn_window, 0},
            {"bigbird_block", F_POS, &c->bigbird_block, 0}, {"bigbird_random", F_POS, &c->bigbird_random, 0},
            {"softmax_impl", F_STR, impl, sizeof impl},
            {"maelre_coarse", F_STR, coarse, sizeof coarse},
            {"pairs", F_BOOL, &c->pairs, 0},
            {"performer_features", F_POS, &c->performer_features, 0},
            {"nystrom_landmarks", F_POS, &c->nystrom_landmarks, 0},
            {"nystrom_conv", F_SIZE, &c->nystrom_conv, 0},
            {"dropout", F_FLOAT, &c->dropout, 0},
        };
        if ((rc = parse_fields(m, file, "model", f, sizeof f / sizeof f[0], err, errlen))) return rc;
        if (impl[0] && softmax_impl_parse(impl, &c->softmax_impl))
            return bad(err, errlen, file, "model", "softmax_impl", "expected \"tiled\" or \"dense\"");
        if (coarse[0] && attn_kind_parse(coarse, &c->maelre_coarse))
            return bad(err, errlen, file, "model", "maelre_coarse", "expected \"efficient\", \"linear\" or \"performer\"");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "maelre_stages");
        if (st && (rc = parse_stages(c, st, file, err, errlen))) return rc;
    }

    const cJSON *o = cJSON_GetObjectItemCaseSensitive(json, "optim");
    if (o) {
        AdamWConfig *a = &t->optim;
        char sched[16] = "";
        const Field f[] = {
            {"lr", F_FLOAT, &a->lr, 0}, {"beta1", F_FLOAT, &a->beta1, 0}, {"beta2", F_FLOAT, &a->beta2, 0},
            {"eps", F_FLOAT, &a->eps, 0}, {"weight_decay", F_FLOAT, &a->weight_decay, 0},
            {"clip_norm", F_FLOAT, &a->clip_norm, 0}, {"warmup_frac", F_FLOAT, &t->warmup_frac, 0},
            {"schedule", F_STR, sched, sizeof sched},
        };
        if ((rc = parse_fields(o, file, "optim", f, sizeof f / sizeof f[0], err, errlen))) return rc;
        if (sched[0]) {
            if (!strcmp(sched, "cosine")) a->schedule = SCHED_COSINE;
            else if (!strcmp(sched, "linear")) a->schedule = SCHED_LINEAR;
            else if (!strcmp(sched, "constant")) a->schedule = SCHED_CONSTANT;
            else return bad(err, errlen, file, "optim", "schedule", "expected \"cosine\", \"linear\" or \"constant\"");
        }
    }

    const cJSON *b = cJSON_GetObjectItemCaseSensitive(json, "budgets");
    if (b) {
        const Field f[] = {{"quick", F_SPECIAL, NULL, 0}, {"full", F_SPECIAL, NULL, 0}};
        if ((rc = parse_fields(b, file, "budgets", f, 2, err, errlen))) return rc;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, "quick");
        if (q && (rc = parse_budget(&t->quick, q, file, "budgets.quick", err, errlen))) return rc;
        const cJSON *fu = cJSON_GetObjectItemCaseSensitive(b, "full");
        if (fu && (rc = parse_budget(&t->full, fu, file, "budgets.full", err, errlen))) return rc;
    }
    return MB_OK;
}

void task_defaults(Task *t) {
    memset(t, 0, sizeof *t);
    model_config_default(&t->model, METHOD_VANILLA, 0, 0, 0, 0);
    adamw_config_default(&t->optim, 1);
    t->optim.lr = 5e-4f;
    t->warmup_frac = 0.1f;
    t->data.frame = 1;
    t->data.sample_rate = 8000;
    Budget q = {.steps = 20, .batch = 8, .train_limit = 256, .test_limit = 100};
    Budget f = {.steps = 5000, .batch = 32};
    t->quick = q;
    t->full = f;
}

int task_validate(const Task *t, char *err, size_t errlen) {
    const char *file = t->file;
    if (!t->data.source[0]) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: data.source: missing", file);
    if (!t->data.path[0]) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: data.path: missing", file);
    const char *sources[] = {"listops", "listops-parens", "imdb", "cifar10", "ucr", "fsdd", "tsv", "images", "cifar10-bin", "pathfinder", "aan"};
    int known = 0;
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) known |= !strcmp(t->data.source, sources[i]);
    if (!known) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: data.source: unknown source \"%s\"", file, t->data.source);
    if (t->model.pairs != !strcmp(t->data.source, "aan"))
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: model.pairs: %s", file, t->model.pairs
                       ? "the two-tower pairs model needs a source of document pairs (\"aan\")"
                       : "source \"aan\" holds pairs of documents: set model.pairs to true");
    if (strstr(t->data.path, "..") || t->data.path[0] == '/')
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: data.path: must be relative to the data root, without \"..\"", file);
    const Budget *bs[2] = {&t->quick, &t->full};
    const char *bn[2] = {"quick", "full"};
    for (int i = 0; i < 2; i++) {
        if (bs[i]->steps == 0 && bs[i]->time_budget <= 0 && bs[i]->epochs <= 0)
            return mb_fail(err, errlen, MB_ERR_USAGE, "%s: budgets.%s: needs steps, epochs or time_budget > 0", file, bn[i]);
    }
    if (!(t->optim.lr > 0)) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: optim.lr: must be > 0", file);
    if (t->optim.beta1 >= 1 || t->optim.beta2 >= 1)
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: optim: beta1 and beta2 must be < 1", file);
    if (t->warmup_frac > 1) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: optim.warmup_frac: must be in [0, 1]", file);
    if (!(t->model.dropout >= 0 && t->model.dropout < 1))
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: model.dropout: must be in [0, 1)", file);
    if (t->model.tome_r_frac >= 1) return mb_fail(err, errlen, MB_ERR_USAGE, "%s: model.tome_r_frac: must be in [0, 1)", file);
    // The shape must be valid for every method: check each with a stand-in input.
    for (int m = 0; m < METHOD_COUNT; m++) {
        ModelConfig c = task_model_config(t, (Method)m, 16, 0, t->data.max_len ? t->data.max_len : 64,
                                          t->classes ? t->classes : 2);
        char why[256];
        if (model_config_check(&c, why, sizeof why))
            return mb_fail(err, errlen, MB_ERR_USAGE, "%s: model (%s): %s", file, method_name((Method)m), why);
    }
    return MB_OK;
}

void task_free(Task *t) {
    if (t && t->json) cJSON_Delete(t->json);
    if (t) t->json = NULL;
}

ModelConfig task_model_config(const Task *t, Method method, size_t vocab, size_t feat_dim,
                              size_t max_len, size_t classes) {
    ModelConfig c = t->model;
    c.method = method;
    c.vocab = vocab;
    c.feat_dim = feat_dim;
    c.max_len = max_len;
    c.classes = classes;
    if (c.linformer_k > max_len && max_len > 0) c.linformer_k = max_len;
    if (t->maelre_keep_auto && c.n_stages > 1 && max_len > 0) {
        // Keep per stage so that the longest sample has fewer than D tokens (0.9 D, to stay clear of
        // rounding) when the last stage starts: keep = (0.9 D / N)^(1 / (stages - 1)), in [1/4, 1].
        size_t thr = c.switch_threshold ? c.switch_threshold : c.dim;
        double k = pow(0.9 * (double)thr / (double)max_len, 1.0 / (double)(c.n_stages - 1));
        if (k > 1.0) k = 1.0;
        if (k < 0.25) k = 0.25;
        for (size_t i = 0; i < c.n_stages; i++) c.stages[i].keep = (float)k;
    }
    return c;
}

// ---------------------------------------------------------------- finding task files

static char g_tasks_dir[PATH_MAX];

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tasks_dir(void) {
    if (g_tasks_dir[0]) return g_tasks_dir;
    const char *env = getenv("MAELRE_TASKS");
    if (env && *env) {
        snprintf(g_tasks_dir, sizeof g_tasks_dir, "%s", env);
        return g_tasks_dir;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 5; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            char probe[PATH_MAX + 32];
            snprintf(probe, sizeof probe, "%s/tasks/ts.json", exe);
            if (file_exists(probe)) {
                snprintf(g_tasks_dir, sizeof g_tasks_dir, "%.4000s/tasks", exe);
                return g_tasks_dir;
            }
        }
    }
    snprintf(g_tasks_dir, sizeof g_tasks_dir, "tasks");
    return g_tasks_dir;
}

static int valid_name(const char *s) {
    if (!*s || strlen(s) > 60) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '_')) return 0;
    return 1;
}

// Finds the folder under <root>/ucr whose name equals `want` ignoring case.
static int find_ucr_folder(const char *root, const char *want, char *out, size_t n) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ucr", root);
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!strcasecmp(e->d_name, want)) {
            snprintf(out, n, "%s", e->d_name);
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

int task_load(Task *t, const char *name, const char *config_file, const char *data_root,
              char *err, size_t errlen) {
    task_defaults(t);
    char path[PATH_MAX + 64];
    char ts_name[64] = "", lower[64];
    size_t nl = strlen(name);
    if (nl < sizeof lower && !(nl > 5 && !strcmp(name + nl - 5, ".json"))) {
        // Task names are case-insensitive (ts-GunPoint == ts-gunpoint).
        for (size_t i = 0; i <= nl; i++) lower[i] = (char)tolower((unsigned char)name[i]);
        name = lower;
    }
    if (nl > 5 && !strcmp(name + nl - 5, ".json")) {
        snprintf(path, sizeof path, "%s", name);
    } else if (!valid_name(name)) {
        return mb_fail(err, errlen, MB_ERR_USAGE,
                       "unknown task '%s' (task names are lowercase letters, digits and '-'; see `maelre-bench list`)", name);
    } else if (!strncmp(name, "ts-", 3)) {
        if (!name[3]) return mb_fail(err, errlen, MB_ERR_USAGE, "task 'ts-' needs a dataset name, e.g. ts-gunpoint");
        snprintf(ts_name, sizeof ts_name, "%s", name + 3);
        snprintf(path, sizeof path, "%s/ts.json", tasks_dir());
    } else {
        snprintf(path, sizeof path, "%s/%s.json", tasks_dir(), name);
        if (!file_exists(path))
            return mb_fail(err, errlen, MB_ERR_USAGE, "unknown task '%s' (no %s; see `maelre-bench list`)", name, path);
    }
    cJSON *base = NULL, *over = NULL;
    int rc = json_read_file(&base, path, err, errlen);
    if (rc) return rc;
    snprintf(t->file, sizeof t->file, "%.1000s", path);
    if ((rc = task_apply_json(t, base, path, err, errlen))) { cJSON_Delete(base); return rc; }
    if (config_file) {
        if ((rc = json_read_file(&over, config_file, err, errlen))) { cJSON_Delete(base); return rc; }
        if ((rc = task_apply_json(t, over, config_file, err, errlen))) {
            cJSON_Delete(base); cJSON_Delete(over);
            return rc;
        }
        size_t l = strlen(t->file);
        snprintf(t->file + l, sizeof t->file - l, " + %s", config_file);
    }
    t->json = json_merge(base, over);
    cJSON_Delete(base);
    cJSON_Delete(over);
    if (!t->json) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory merging task config");

    if (ts_name[0]) {
        // The ts template: the dataset is the folder under <root>/ucr named like the task.
        char folder[256];
        if (!find_ucr_folder(data_root, ts_name, folder, sizeof folder)) snprintf(folder, sizeof folder, "%s", ts_name);
        char *p = strstr(t->data.path, "{name}");
        if (p) {
            char rest[512];
            snprintf(rest, sizeof rest, "%s", p + 6);
            *p = 0;
            size_t l = strlen(t->data.path);
            snprintf(t->data.path + l, sizeof t->data.path - l, "%s%s", folder, rest);
        }
        snprintf(t->name, sizeof t->name, "ts-%s", ts_name);
        cJSON_DeleteItemFromObjectCaseSensitive(t->json, "name");
        cJSON_AddStringToObject(t->json, "name", t->name);
        cJSON *dj = cJSON_GetObjectItemCaseSensitive(t->json, "data");
        if (dj) {
            cJSON_DeleteItemFromObjectCaseSensitive(dj, "path");
            cJSON_AddStringToObject(dj, "path", t->data.path);
        }
    } else if (!t->name[0]) {
        // A task file without a name takes its file name.
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(t->name, sizeof t->name, "%.*s", (int)(strlen(b) > 5 ? strlen(b) - 5 : strlen(b)), b);
    }
    if ((rc = task_validate(t, err, errlen))) return rc;
    return MB_OK;
}

void task_data_path(const Task *t, const char *data_root, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", data_root, t->data.path);
}

int task_data_present(const Task *t, const char *data_root) {
    char p[PATH_MAX + 600];
    if (!strcmp(t->data.source, "aan")) return aan_find_dir(data_root, t->data.path, p, sizeof p);  // also lra_release/
    task_data_path(t, data_root, p, sizeof p);
    if (!strcmp(t->data.source, "pathfinder"))  // also under <root>/lra_release/; not if cut short
        return pathfinder_find(data_root, t->data.path, p, sizeof p, NULL, 0) == MB_OK;
    return dir_exists(p);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int push_name(char ***names, size_t *n, size_t *cap, const char *s) {
    for (size_t i = 0; i < *n; i++) if (!strcmp((*names)[i], s)) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        char **nn = realloc(*names, nc * sizeof *nn);
        if (!nn) return -1;
        *names = nn;
        *cap = nc;
    }
    if (!((*names)[*n] = strdup(s))) return -1;
    (*n)++;
    return 0;
}

int task_names(char ***names, size_t *n, const char *data_root, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    size_t cap = 0;
    DIR *d = opendir(tasks_dir());
    if (!d) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot open the task folder (set MAELRE_TASKS)", tasks_dir());
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".json") || !strcmp(e->d_name, "ts.json")) continue;
        char nm[256];
        snprintf(nm, sizeof nm, "%.*s", (int)(l - 5), e->d_name);
        if (push_name(names, n, &cap, nm)) { closedir(d); goto oom; }
    }
    closedir(d);
    size_t fixed = *n;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/ucr", data_root);
    if ((d = opendir(dir))) {
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char full[PATH_MAX + 300];
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            if (!dir_exists(full)) continue;
            char nm[300];
            snprintf(nm, sizeof nm, "ts-%s", e->d_name);
            for (char *p = nm; *p; p++) *p = (char)tolower((unsigned char)*p);
            if (!valid_name(nm)) continue;
            if (push_name(names, n, &cap, nm)) { closedir(d); goto oom; }
        }
        closedir(d);
    }
    if (fixed) qsort(*names, fixed, sizeof **names, cmp_str);
    if (*n > fixed) qsort(*names + fixed, *n - fixed, sizeof **names, cmp_str);
    return MB_OK;
oom:
    task_names_free(*names, *n);
    *names = NULL;
    *n = 0;
    return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing tasks");
}

void task_names_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}
