// Model configuration: SPEC §5 defaults, validation, the names of methods and softmax forms.
// What is specific to a method or an attention kind is checked by its row (the method table,
// core/model_methods.c; the kind table, core/attn_kind.h).
#include <string.h>
#include "core/attn_bigbird.h"
#include "core/attn_local.h"
#include "core/model_internal.h"
#include "core/status.h"

void model_config_default(ModelConfig *c, Method method, size_t vocab, size_t feat_dim,
                          size_t max_len, size_t classes) {
    memset(c, 0, sizeof *c);
    c->vocab = vocab;
    c->feat_dim = feat_dim;
    c->max_len = max_len;
    c->dim = 64;
    c->heads = 2;
    c->mlp = 128;
    c->blocks = 4;
    c->classes = classes;
    c->ln_eps = 1e-5f;
    c->method = method;
    c->linformer_k = 128;
    c->linformer_share_ef = 0;
    c->tome_r_frac = 0.25f;
    c->n_stages = 4;
    for (size_t i = 0; i < 4; i++) c->stages[i] = (MaelreStage){1, 0.25f};
    c->switch_threshold = 0;
    c->local_window = 8;
    c->maelre_coarse = ATTN_EFFICIENT;
    c->performer_features = 128;
    c->nystrom_landmarks = 64;
    c->nystrom_conv = 35;
    c->local_attn_window = ATTN_LOCAL_WINDOW;
    c->bigbird_block = ATTN_BIGBIRD_BLOCK;
    c->bigbird_random = ATTN_BIGBIRD_RANDOM;
}

int model_config_check(const ModelConfig *c, char *err, size_t errlen) {
    if ((c->vocab > 0) == (c->feat_dim > 0))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: exactly one of vocab (%zu) and feat_dim (%zu) must be > 0", c->vocab, c->feat_dim);
    if (c->max_len == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: max_len must be > 0");
    if (c->dim == 0 || c->heads == 0 || c->dim % c->heads)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: dim %zu must be a positive multiple of heads %zu", c->dim, c->heads);
    if (c->mlp == 0 || c->blocks == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: mlp and blocks must be > 0");
    if (c->classes < 2) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: classes %zu must be >= 2", c->classes);
    if (c->pairs != 0 && c->pairs != 1) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: pairs %d must be 0 or 1", c->pairs);
    if (!(c->ln_eps > 0.0f)) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: ln_eps must be > 0");
    if (!(c->merge_threshold >= 0.0f && c->merge_threshold <= 1.0f))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: merge_threshold %g must be 0 (fixed keep ratios) or a "
                       "cosine similarity in (0, 1]", (double)c->merge_threshold);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: dropout %g must be in [0, 1)", (double)c->dropout);
    const MethodRow *mr = method_row(c->method);
    if (!mr) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: unknown method %d", (int)c->method);
    if ((unsigned)c->softmax_impl >= SOFTMAX_IMPL_COUNT)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: unknown softmax implementation %d", (int)c->softmax_impl);
    int rc = mr->check(c, err, errlen);
    if (rc) return rc;
    unsigned used = mr->kinds_used(c);
    for (int k = 0; k < ATTN_KIND_COUNT; k++)
        if ((used >> k & 1u) && (rc = attn_kind((AttnKind)k)->check(c, err, errlen))) return rc;
    return MB_OK;
}

const char *method_name(Method m) { const MethodRow *r = method_row(m); return r ? r->name : "?"; }
const char *method_description(Method m) { const MethodRow *r = method_row(m); return r ? r->description : "?"; }
int method_parse(const char *s, Method *out) {
    for (int i = 0; i < METHOD_COUNT; i++)
        if (s && strcmp(s, method_row((Method)i)->name) == 0) { *out = (Method)i; return 0; }
    return -1;
}

int method_has_softmax(Method m) {
    const MethodRow *r = method_row(m);
    if (!r) return 0;
    ModelConfig c;
    model_config_default(&c, m, 1, 0, 1, 2);
    return (r->kinds_used(&c) >> ATTN_SOFTMAX) & 1u;
}

static const char *const SOFTMAX_IMPL_NAMES[SOFTMAX_IMPL_COUNT] = {"tiled", "dense"};
const char *softmax_impl_name(SoftmaxImpl s) { return (unsigned)s < SOFTMAX_IMPL_COUNT ? SOFTMAX_IMPL_NAMES[s] : "?"; }
int softmax_impl_parse(const char *s, SoftmaxImpl *out) {
    for (int i = 0; i < SOFTMAX_IMPL_COUNT; i++)
        if (!strcmp(s, SOFTMAX_IMPL_NAMES[i])) { *out = (SoftmaxImpl)i; return 0; }
    return -1;
}

size_t model_switch_threshold(const ModelConfig *c) { return c->switch_threshold ? c->switch_threshold : c->dim; }
