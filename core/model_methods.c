// The method table: for each method, which attention kind each block runs (given the tokens
// entering it), which blocks merge, to how many tokens and how tokens are matched. The model
// dispatches through these rows only (core/model_internal.h: MethodRow).
//
// Adding a method: append its value to Method (core/model.h), then one row below built from
// the helpers here, e.g. `efficient` = {kind_efficient, no merging}; `maelre-exact` =
// {kind_softmax, the maelre_* merge helpers}. A method with new settings adds their check.
#include <math.h>
#include "core/model_internal.h"
#include "core/status.h"

#define BIT(k) (1u << (unsigned)(k))

// ---------------------------------------------------------------- attention kinds
static AttnKind kind_softmax(const ModelConfig *c, size_t block, size_t n) { return ATTN_SOFTMAX; }
static unsigned used_softmax(const ModelConfig *c) { return BIT(ATTN_SOFTMAX); }
static AttnKind kind_linformer(const ModelConfig *c, size_t block, size_t n) { return ATTN_LINFORMER; }
static unsigned used_linformer(const ModelConfig *c) { return BIT(ATTN_LINFORMER); }
static AttnKind kind_performer(const ModelConfig *c, size_t block, size_t n) { return ATTN_PERFORMER; }
static unsigned used_performer(const ModelConfig *c) { return BIT(ATTN_PERFORMER); }
static AttnKind kind_nystrom(const ModelConfig *c, size_t block, size_t n) { return ATTN_NYSTROM; }
static unsigned used_nystrom(const ModelConfig *c) { return BIT(ATTN_NYSTROM); }
static AttnKind kind_linear(const ModelConfig *c, size_t block, size_t n) { return ATTN_LINEAR; }
static unsigned used_linear(const ModelConfig *c) { return BIT(ATTN_LINEAR); }
static AttnKind kind_efficient(const ModelConfig *c, size_t block, size_t n) { return ATTN_EFFICIENT; }
static unsigned used_efficient(const ModelConfig *c) { return BIT(ATTN_EFFICIENT); }
static AttnKind kind_local(const ModelConfig *c, size_t block, size_t n) { return ATTN_LOCAL; }
static unsigned used_local(const ModelConfig *c) { return BIT(ATTN_LOCAL); }
static AttnKind kind_bigbird(const ModelConfig *c, size_t block, size_t n) { return ATTN_BIGBIRD; }
static unsigned used_bigbird(const ModelConfig *c) { return BIT(ATTN_BIGBIRD); }
// MAELRE: the coarse kind while N > the switch threshold, exact softmax once N <= it.
static AttnKind kind_maelre(const ModelConfig *c, size_t block, size_t n) {
    return n > model_switch_threshold(c) ? c->maelre_coarse : ATTN_SOFTMAX;
}
static unsigned used_maelre(const ModelConfig *c) { return BIT(c->maelre_coarse) | BIT(ATTN_SOFTMAX); }

// ---------------------------------------------------------------- merging
static int merges_none(const ModelConfig *c, size_t block) { return 0; }
static size_t target_none(const ModelConfig *c, size_t block, size_t n) { return n; }
static void match_global(const ModelConfig *c, MatchKind *mk, size_t *until) { *mk = MATCH_GLOBAL; *until = 0; }
static float threshold_none(const ModelConfig *c, size_t block) { return 0.0f; }

// ToMe: every block merges r = floor(frac * N) tokens away (at least 1 left), global matching.
static int merges_every(const ModelConfig *c, size_t block) { return 1; }
static size_t target_tome(const ModelConfig *c, size_t block, size_t n) {
    size_t r = (size_t)floor((double)c->tome_r_frac * (double)n);
    return r >= n ? 1 : n - r;
}

// MAELRE: each stage's last block merges to round(keep * N) (at least 1); local matching with
// window w while N > the switch threshold, global after.
static int merges_stage_end(const ModelConfig *c, size_t block) {
    size_t b = 0;
    for (size_t st = 0; st < c->n_stages; st++) {
        b += c->stages[st].blocks;
        if (block + 1 == b) return 1;
    }
    return 0;
}
static size_t target_stage_keep(const ModelConfig *c, size_t block, size_t n) {
    float keep = 1.0f;
    size_t b = 0;
    for (size_t st = 0; st < c->n_stages; st++) {
        b += c->stages[st].blocks;
        if (block < b) { keep = c->stages[st].keep; break; }
    }
    double t = floor((double)keep * (double)n + 0.5);
    size_t out = t < 1.0 ? 1 : (size_t)t;
    return out > n ? n : out;
}
static void match_local_then_global(const ModelConfig *c, MatchKind *mk, size_t *until) {
    *mk = MATCH_LOCAL;
    *until = model_switch_threshold(c);
}
// The adaptive amount (merge_threshold > 0): the keep ratio above becomes the floor.
static float threshold_stage(const ModelConfig *c, size_t block) { return c->merge_threshold; }

// ---------------------------------------------------------------- checks
static int check_none(const ModelConfig *c, char *err, size_t errlen) { return MB_OK; }

static int check_tome(const ModelConfig *c, char *err, size_t errlen) {
    if (!(c->tome_r_frac >= 0.0f && c->tome_r_frac < 1.0f))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: tome_r_frac %g must be in [0, 1)", (double)c->tome_r_frac);
    return MB_OK;
}

static int check_stages(const ModelConfig *c, char *err, size_t errlen) {
    if (c->n_stages == 0 || c->n_stages > MODEL_MAX_STAGES)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: maelre needs 1..%d stages, got %zu", MODEL_MAX_STAGES, c->n_stages);
    size_t sum = 0;
    for (size_t i = 0; i < c->n_stages; i++) {
        if (c->stages[i].blocks == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: maelre stage %zu has 0 blocks", i);
        if (!(c->stages[i].keep > 0.0f && c->stages[i].keep <= 1.0f))
            return mb_fail(err, errlen, MB_ERR_USAGE, "model config: maelre stage %zu keep %g must be in (0, 1]", i, (double)c->stages[i].keep);
        sum += c->stages[i].blocks;
    }
    if (sum != c->blocks)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: maelre stages hold %zu blocks but the model has %zu", sum, c->blocks);
    if (c->local_window == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: local_window must be > 0");
    return MB_OK;
}

// SPEC §9.6: the coarse kind is one of efficient (default), linear, performer: approximate kinds
// that take proportional attention (they run after merging). local and bigbird take log s too,
// but they are exact softmax on a sparse pattern, not the approximations the stage compares.
static int check_maelre(const ModelConfig *c, char *err, size_t errlen) {
    const AttnKindRow *k = attn_kind(c->maelre_coarse);
    if (!k) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: unknown maelre_coarse kind %d", (int)c->maelre_coarse);
    AttnKind ck = c->maelre_coarse;
    if (!k->proportional || !(ck == ATTN_EFFICIENT || ck == ATTN_LINEAR || ck == ATTN_PERFORMER))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: maelre_coarse \"%s\" must be \"efficient\", \"linear\" or "
                       "\"performer\" (approximate kinds that take proportional attention); exact softmax in every block "
                       "is the method maelre-exact", k->name);
    return check_stages(c, err, errlen);
}

static const MethodRow METHODS[METHOD_COUNT] = {
    [METHOD_VANILLA] = {
        "vanilla", "exact softmax attention in every block, no merging (the baseline)",
        kind_softmax, used_softmax, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_LINFORMER] = {
        "linformer", "Linformer: keys/values projected to k rows by learned E, F (k = 128, capped at the max length)",
        kind_linformer, used_linformer, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_TOME] = {
        "tome", "ToMe: softmax with proportional attention, global bipartite merging of r = 25% of tokens per block",
        kind_softmax, used_softmax, merges_every, target_tome, match_global, threshold_none, check_tome},
    [METHOD_MAELRE] = {
        "maelre", "MAELRE: efficient (linear) attention while N > D, softmax once N <= D; local then global merging per stage",
        kind_maelre, used_maelre, merges_stage_end, target_stage_keep, match_local_then_global, threshold_stage, check_maelre},
    [METHOD_PERFORMER] = {
        "performer", "Performer: FAVOR+ positive orthogonal random features (m = 128) in every block, no merging",
        kind_performer, used_performer, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_NYSTROMFORMER] = {
        "nystromformer", "Nystromformer: 64 segment-mean landmarks, pseudo-inverse, conv skip (35) in every block, no merging",
        kind_nystrom, used_nystrom, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_LINEAR] = {
        "linear", "linear attention (elu+1 features, normalised) in every block, no merging",
        kind_linear, used_linear, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_EFFICIENT] = {
        "efficient", "ablation: efficient attention in every block, no merging (MAELRE without merging)",
        kind_efficient, used_efficient, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_MAELRE_EXACT] = {
        "maelre-exact", "ablation: MAELRE's stages and merging, exact softmax with proportional attention in every block",
        kind_softmax, used_softmax, merges_stage_end, target_stage_keep, match_local_then_global, threshold_stage, check_stages},
    [METHOD_LOCAL] = {
        "local", "sliding-window softmax (LRA's Longformer setting, w = 512) in every block, no merging",
        kind_local, used_local, merges_none, target_none, match_global, threshold_none, check_none},
    [METHOD_BIGBIRD] = {
        "bigbird", "BigBird block-sparse softmax (b = 64; window, global, 3 random blocks) in every block, no merging",
        kind_bigbird, used_bigbird, merges_none, target_none, match_global, threshold_none, check_none},
};

const MethodRow *method_row(Method m) { return (unsigned)m < METHOD_COUNT ? &METHODS[m] : NULL; }
