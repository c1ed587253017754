// The classifier of SPEC §2 over packed ragged batches, for all four methods of SPEC §5.
//
// Memory: one mem_alloc per role. `params` and `grads` share the layout built by
// layout_params (a table of named tensors); activations live in one float arena and one
// size_t arena, laid out by plan_batch from (config, sample lengths) and grown when a
// bigger batch arrives; backward scratch is a third arena. model_bytes_needed runs the
// same planner, so its answer is what forward/backward would hold.
//
// Block loop (every block, every method): per-block token counts per sample, per-sample
// attention kind, and a per-block merge flag are decided up front from the lengths alone
// (merge targets depend only on N), so the whole batch is planned before any math runs.
//   x_b --LN1--> a --QKV--> qkv --attn per sample--> att --Wo,+x_b--> xmid
//       --merge per sample (if the block merges; metric = this block's keys)--> xm
//       --LN2--> c --W1--> h --GELU--> g --W2,+xm--> x_{b+1}
// Sizes s and log s travel with the tokens of every level; log s is given to attention
// only after some block has merged (before that all sizes are 1 and log s is 0).
#include "core/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/flops.h"
#include "core/mem.h"
#include "core/merge.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);  // from OpenBLAS (cblas.h); declared here as core/threads.c does

#define NONE ((size_t)-1)
#define ALIGN_F 16  // floats per 64 bytes

typedef struct {
    char name[32];
    size_t off, count;
    uint8_t decay;
} Tensor;

typedef struct {
    size_t ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2, E, F;
} BlockParams;

// Float offsets into the activation arena for one block (level b = tokens entering block b).
typedef struct {
    size_t x, s, logs;                       // level b: x (T_b, D), sizes, log sizes (T_b)
    size_t ln1_m, ln1_r, a, qkv, att, xmid;  // (T_b, ...)
    size_t xm;                               // (T_{b+1}, D); == xmid when the block does not merge
    size_t ln2_m, ln2_r, c, h, g;            // (T_{b+1}, ...)
    size_t mwork;                            // merge planner work
    size_t rt;                               // inference: W_o / W_2 output of one row chunk
} BlockLayout;

typedef struct {
    size_t n, blocks;
    // size_t arena offsets
    size_t off;       // (blocks + 1) x (n + 1) token offsets per level
    size_t kind;      // blocks x n attention kinds
    size_t save;      // blocks x n float offsets of attention saves
    size_t sstride;   // blocks x 1: per-thread stride of the save region (0 when kept per sample)
    size_t dst;       // blocks x 1: offset of this block's merge assignment (T_b entries) or NONE
    size_t iwork;     // merge planner size_t work
    size_t ix_total;
    // float arena
    size_t pooled, lnf_m, lnf_r, pln;
    size_t act_total;
    // backward arena
    size_t g_dx0, g_dx1, g_dg, g_dh, g_dc, g_datt, g_dqkv, g_da, g_sm, g_dpool, g_dpln;
    size_t gw_total;
    size_t t_max, n_max, sm_max, nthr;
    size_t chunk;     // inference: rows per chunk of the row-wise ops
} Plan;

struct Model {
    ModelConfig cfg;
    size_t n_params, n_tensors;
    Tensor *tensors;
    float *params, *grads;
    uint8_t *decay;
    size_t tok_emb, patch_w, patch_b, pos, lnf_g, lnf_b, head_w, head_b;
    BlockParams *bp;
    uint8_t *merges;      // per block: does this block's merge point merge
    BlockLayout *bl;      // blocks + 1 (the last only uses x, s, logs)
    Plan plan;
    float *act;  size_t act_cap;
    size_t *ix;  size_t ix_cap;
    float *gw;   size_t gw_cap;
    int kept;             // last forward kept activations
    AttnUsage usage;
};

// ---------------------------------------------------------------- config

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
}

int model_config_check(const ModelConfig *c, char *err, size_t errlen) {
    if ((c->vocab > 0) == (c->feat_dim > 0))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: exactly one of vocab (%zu) and feat_dim (%zu) must be > 0", c->vocab, c->feat_dim);
    if (c->max_len == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: max_len must be > 0");
    if (c->dim == 0 || c->heads == 0 || c->dim % c->heads)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: dim %zu must be a positive multiple of heads %zu", c->dim, c->heads);
    if (c->mlp == 0 || c->blocks == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: mlp and blocks must be > 0");
    if (c->classes < 2) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: classes %zu must be >= 2", c->classes);
    if (!(c->ln_eps > 0.0f)) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: ln_eps must be > 0");
    if ((unsigned)c->method >= METHOD_COUNT) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: unknown method %d", (int)c->method);
    if ((unsigned)c->softmax_impl >= SOFTMAX_IMPL_COUNT)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: unknown softmax implementation %d", (int)c->softmax_impl);
    if (c->method == METHOD_LINFORMER && c->linformer_k == 0)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: linformer_k must be > 0");
    if (c->method == METHOD_TOME && !(c->tome_r_frac >= 0.0f && c->tome_r_frac < 1.0f))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: tome_r_frac %g must be in [0, 1)", (double)c->tome_r_frac);
    if (c->method == METHOD_MAELRE) {
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
    }
    return MB_OK;
}

static const char *const METHOD_NAMES[METHOD_COUNT] = {"vanilla", "linformer", "tome", "maelre"};
const char *method_name(Method m) { return (unsigned)m < METHOD_COUNT ? METHOD_NAMES[m] : "?"; }
int method_parse(const char *s, Method *out) {
    for (int i = 0; i < METHOD_COUNT; i++)
        if (s && strcmp(s, METHOD_NAMES[i]) == 0) { *out = (Method)i; return 0; }
    return -1;
}
const char *attn_kind_name(AttnKind k) {
    static const char *const names[ATTN_KIND_COUNT] = {"softmax", "linformer", "efficient"};
    return (unsigned)k < ATTN_KIND_COUNT ? names[k] : "?";
}

static const char *const SOFTMAX_IMPL_NAMES[SOFTMAX_IMPL_COUNT] = {"tiled", "dense"};
const char *softmax_impl_name(SoftmaxImpl s) { return (unsigned)s < SOFTMAX_IMPL_COUNT ? SOFTMAX_IMPL_NAMES[s] : "?"; }
int softmax_impl_parse(const char *s, SoftmaxImpl *out) {
    for (int i = 0; i < SOFTMAX_IMPL_COUNT; i++)
        if (!strcmp(s, SOFTMAX_IMPL_NAMES[i])) { *out = (SoftmaxImpl)i; return 0; }
    return -1;
}

static size_t switch_threshold(const ModelConfig *c) {
    return c->switch_threshold ? c->switch_threshold : c->dim;
}

// Which blocks merge at their merge point.
static void block_merges(const ModelConfig *c, uint8_t *merges) {
    for (size_t b = 0; b < c->blocks; b++) merges[b] = 0;
    if (c->method == METHOD_TOME) {
        for (size_t b = 0; b < c->blocks; b++) merges[b] = 1;
    } else if (c->method == METHOD_MAELRE) {
        size_t b = 0;
        for (size_t st = 0; st < c->n_stages; st++) { b += c->stages[st].blocks; merges[b - 1] = 1; }
    }
}

// Stage keep ratio of a merging maelre block.
static float stage_keep(const ModelConfig *c, size_t block) {
    size_t b = 0;
    for (size_t st = 0; st < c->n_stages; st++) {
        b += c->stages[st].blocks;
        if (block < b) return c->stages[st].keep;
    }
    return 1.0f;
}

// Tokens after block `block`'s merge point for a sample of n tokens.
static size_t merge_target(const ModelConfig *c, size_t block, size_t n) {
    if (c->method == METHOD_TOME) {
        size_t r = (size_t)floor((double)c->tome_r_frac * (double)n);
        return r >= n ? 1 : n - r;
    }
    double t = floor((double)stage_keep(c, block) * (double)n + 0.5);
    size_t out = t < 1.0 ? 1 : (size_t)t;
    return out > n ? n : out;
}

static AttnKind block_kind(const ModelConfig *c, size_t n) {
    switch (c->method) {
    case METHOD_LINFORMER: return ATTN_LINFORMER;
    case METHOD_MAELRE: return n > switch_threshold(c) ? ATTN_EFFICIENT : ATTN_SOFTMAX;
    default: return ATTN_SOFTMAX;
    }
}

// Floats one sample's attention holds: what backward reads when training; in inference only
// the kernel's workspace (efficient attention: one head's d x d context and a row chunk; tiled
// softmax: its statistics, a row block and the packed K^T, V; dense softmax: P, as PyTorch).
static size_t attn_save_floats(const ModelConfig *c, AttnKind k, size_t n, int keep) {
    size_t D = c->dim, H = c->heads;
    switch (k) {
    case ATTN_LINFORMER: return attn_linformer_save_floats(n, D, H, c->linformer_k);
    case ATTN_EFFICIENT: return keep ? attn_efficient_save_floats(n, D, H) : attn_efficient_infer_work_floats(n, D, H);
    default:
        if (c->softmax_impl == SOFTMAX_DENSE) return attn_softmax_dense_save_floats(n, D, H);
        return keep ? attn_softmax_save_floats(n, D, H) : attn_softmax_infer_save_floats(n, D, H);
    }
}

// Backward scratch of one softmax sample of n tokens.
static size_t softmax_work_floats(const ModelConfig *c, size_t n) {
    return c->softmax_impl == SOFTMAX_DENSE ? attn_softmax_dense_work_floats(n) : attn_softmax_work_floats(n);
}

// ---------------------------------------------------------------- parameter layout

// Builds the tensor table (when m != NULL) and returns the parameter count. Order (the
// checkpoint and fixture layout): embeddings, blocks, final LayerNorm, head.
static size_t layout_params(const ModelConfig *c, Model *m) {
    size_t off = 0, nt = 0;
    size_t D = c->dim, M = c->mlp;
#define T_ADD(dstfield, cnt, dec, ...) do {                                            \
        size_t cnt_ = (cnt);                                                           \
        if (m) {                                                                       \
            Tensor *t_ = &m->tensors[nt];                                              \
            snprintf(t_->name, sizeof t_->name, __VA_ARGS__);                          \
            t_->off = off; t_->count = cnt_; t_->decay = (dec);                        \
            dstfield = off;                                                            \
        }                                                                              \
        nt++; off += cnt_;                                                             \
    } while (0)
    size_t dummy;
    if (m) { m->tok_emb = m->patch_w = m->patch_b = NONE; }
    if (c->vocab) T_ADD(*(m ? &m->tok_emb : &dummy), c->vocab * D, 0, "tok_emb");
    else {
        T_ADD(*(m ? &m->patch_w : &dummy), D * c->feat_dim, 1, "patch_w");
        T_ADD(*(m ? &m->patch_b : &dummy), D, 0, "patch_b");
    }
    T_ADD(*(m ? &m->pos : &dummy), c->max_len * D, 0, "pos");
    for (size_t b = 0; b < c->blocks; b++) {
        BlockParams tmp, *p = m ? &m->bp[b] : &tmp;
        T_ADD(p->ln1_g, D, 0, "blk%zu.ln1_g", b);
        T_ADD(p->ln1_b, D, 0, "blk%zu.ln1_b", b);
        T_ADD(p->wqkv, 3 * D * D, 1, "blk%zu.wqkv", b);
        T_ADD(p->bqkv, 3 * D, 0, "blk%zu.bqkv", b);
        T_ADD(p->wo, D * D, 1, "blk%zu.wo", b);
        T_ADD(p->bo, D, 0, "blk%zu.bo", b);
        T_ADD(p->ln2_g, D, 0, "blk%zu.ln2_g", b);
        T_ADD(p->ln2_b, D, 0, "blk%zu.ln2_b", b);
        T_ADD(p->w1, M * D, 1, "blk%zu.w1", b);
        T_ADD(p->b1, M, 0, "blk%zu.b1", b);
        T_ADD(p->w2, D * M, 1, "blk%zu.w2", b);
        T_ADD(p->b2, D, 0, "blk%zu.b2", b);
        p->E = p->F = NONE;
        if (c->method == METHOD_LINFORMER) {
            T_ADD(p->E, c->linformer_k * c->max_len, 1, "blk%zu.E", b);
            if (c->linformer_share_ef) p->F = p->E;
            else T_ADD(p->F, c->linformer_k * c->max_len, 1, "blk%zu.F", b);
        }
    }
    T_ADD(*(m ? &m->lnf_g : &dummy), D, 0, "lnf_g");
    T_ADD(*(m ? &m->lnf_b : &dummy), D, 0, "lnf_b");
    T_ADD(*(m ? &m->head_w : &dummy), c->classes * D, 1, "head_w");
    T_ADD(*(m ? &m->head_b : &dummy), c->classes, 0, "head_b");
#undef T_ADD
    if (m) m->n_tensors = nt;
    return off;
}

static size_t count_tensors(const ModelConfig *c) {
    size_t per_block = 12 + (c->method == METHOD_LINFORMER ? (c->linformer_share_ef ? 1 : 2) : 0);
    return (c->vocab ? 1 : 2) + 1 + c->blocks * per_block + 4;
}

static void init_params(Model *m, uint64_t seed) {
    const ModelConfig *c = &m->cfg;
    uint64_t rng = rng_derive(seed, 0x6d6f64656cull);
    float *p = m->params;
    size_t D = c->dim, M = c->mlp;
#define FILL_N(off, cnt, std) for (size_t i_ = 0; i_ < (cnt); i_++) p[(off) + i_] = (float)(std) * rng_normal(&rng)
#define FILL_C(off, cnt, val) for (size_t i_ = 0; i_ < (cnt); i_++) p[(off) + i_] = (val)
    if (m->tok_emb != NONE) FILL_N(m->tok_emb, c->vocab * D, 0.02);
    if (m->patch_w != NONE) FILL_N(m->patch_w, D * c->feat_dim, 1.0 / sqrt((double)c->feat_dim));
    FILL_N(m->pos, c->max_len * D, 0.02);
    for (size_t b = 0; b < c->blocks; b++) {
        BlockParams *q = &m->bp[b];
        FILL_C(q->ln1_g, D, 1.0f);
        FILL_N(q->wqkv, 3 * D * D, 1.0 / sqrt((double)D));
        FILL_N(q->wo, D * D, 1.0 / sqrt((double)D));
        FILL_C(q->ln2_g, D, 1.0f);
        FILL_N(q->w1, M * D, 1.0 / sqrt((double)D));
        FILL_N(q->w2, D * M, 1.0 / sqrt((double)M));
        if (q->E != NONE) {
            double std = sqrt(2.0 / (double)(c->linformer_k + c->max_len));  // Xavier normal
            FILL_N(q->E, c->linformer_k * c->max_len, std);
            if (q->F != q->E) FILL_N(q->F, c->linformer_k * c->max_len, std);
        }
    }
    FILL_C(m->lnf_g, D, 1.0f);
    FILL_N(m->head_w, c->classes * D, 1.0 / sqrt((double)D));
#undef FILL_N
#undef FILL_C
}

int model_create(Model **out, const ModelConfig *cfg, uint64_t seed, char *err, size_t errlen) {
    *out = NULL;
    int rc = model_config_check(cfg, err, errlen);
    if (rc) return rc;
    Model *m = mem_alloc(sizeof *m);
    if (!m) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory creating the model");
    m->cfg = *cfg;
    m->tensors = mem_alloc(count_tensors(cfg) * sizeof(Tensor));
    m->bp = mem_alloc(cfg->blocks * sizeof(BlockParams));
    m->merges = mem_alloc(cfg->blocks);
    m->bl = mem_alloc((cfg->blocks + 1) * sizeof(BlockLayout));
    if (!m->tensors || !m->bp || !m->merges || !m->bl) { model_destroy(m); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory creating the model"); }
    m->n_params = layout_params(cfg, m);
    m->params = mem_alloc(m->n_params * sizeof(float));
    m->decay = mem_alloc(m->n_params);
    if (!m->params || !m->decay) {
        model_destroy(m);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu parameters", layout_params(cfg, NULL));
    }
    for (size_t t = 0; t < m->n_tensors; t++)
        memset(m->decay + m->tensors[t].off, m->tensors[t].decay, m->tensors[t].count);
    block_merges(cfg, m->merges);
    init_params(m, seed);
    *out = m;
    return MB_OK;
}

void model_destroy(Model *m) {
    if (!m) return;
    mem_free(m->tensors); mem_free(m->bp); mem_free(m->merges); mem_free(m->bl);
    mem_free(m->params); mem_free(m->grads); mem_free(m->decay);
    mem_free(m->act); mem_free(m->ix); mem_free(m->gw);
    mem_free(m);
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
void model_set_softmax_impl(Model *m, SoftmaxImpl s) { if ((unsigned)s < SOFTMAX_IMPL_COUNT) m->cfg.softmax_impl = s; }
size_t model_num_params(const Model *m) { return m->n_params; }
float *model_params(Model *m) { return m->params; }
// Gradients exist from the first forward that keeps activations (or the first model_grads
// call) on: a model that only runs inference never holds them.
static int ensure_grads(Model *m) {
    if (m->grads) return MB_OK;
    m->grads = mem_alloc(m->n_params * sizeof(float));  // zeroed by mem_alloc
    return m->grads ? MB_OK : MB_ERR_NOMEM;
}
float *model_grads(Model *m) { return ensure_grads(m) == MB_OK ? m->grads : NULL; }
const uint8_t *model_decay_mask(const Model *m) { return m->decay; }
void model_zero_grad(Model *m) { if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float)); }
AttnUsage model_last_usage(const Model *m) { return m->usage; }
size_t model_num_tensors(const Model *m) { return m->n_tensors; }
const char *model_tensor(const Model *m, size_t i, size_t *offset, size_t *count) {
    if (i >= m->n_tensors) return NULL;
    if (offset) *offset = m->tensors[i].off;
    if (count) *count = m->tensors[i].count;
    return m->tensors[i].name;
}

// ---------------------------------------------------------------- batch planning

static size_t up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }

// Rows per chunk of inference's row-wise ops: a sixteenth of the tokens, at least 256 (small
// chunks make the products too skinny for BLAS), at most all of them.
static size_t row_chunk(size_t t_max) {
    size_t ch = t_max / 16 > 256 ? t_max / 16 : 256;
    return ch < t_max ? ch : (t_max ? t_max : 1);
}

// Plans token counts, kinds and arena layouts for samples of the given lengths. When ix is
// NULL only the totals are computed (sizes come from a scratch copy of the counts).
// keep: training layout (every block's activations kept + backward arena); otherwise the
// per-block temporaries of successive blocks share one region.
static int plan_batch(const ModelConfig *c, const uint8_t *merges, size_t n, const size_t *len,
                      int keep, Plan *P, BlockLayout *bl, size_t *ix) {
    size_t B = c->blocks, D = c->dim, M = c->mlp;
    size_t nthr = (size_t)(threads_get() > 0 ? threads_get() : 1);
    if (nthr > n && n > 0) nthr = n;  // samples run one per thread: more slots than samples go unused
    memset(P, 0, sizeof *P);
    P->n = n; P->blocks = B;
    // size_t arena: off, kind, save, dst offsets, then the dst storage, then iwork
    size_t xo = 0;
    P->off = xo;   xo += (B + 1) * (n + 1);
    P->kind = xo;  xo += B * n;
    P->save = xo;  xo += B * n;
    P->sstride = xo; xo += B;
    P->dst = xo;   xo += B;
    size_t *cnt = ix ? NULL : malloc(((B + 1) * (n + 1) + B) * sizeof(size_t));
    size_t *off = ix ? ix + P->off : cnt;
    size_t *dsto = ix ? ix + P->dst : cnt + (B + 1) * (n + 1);
    if (!off) return MB_ERR_NOMEM;
    off[0] = 0;
    for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + len[i];
    size_t t_max = off[n], n_max = 0;
    for (size_t i = 0; i < n; i++) n_max = len[i] > n_max ? len[i] : n_max;
    for (size_t b = 0; b < B; b++) {
        size_t *o = off + b * (n + 1), *o2 = off + (b + 1) * (n + 1);
        o2[0] = 0;
        for (size_t i = 0; i < n; i++) {
            size_t Ni = o[i + 1] - o[i];
            o2[i + 1] = o2[i] + (merges[b] ? merge_target(c, b, Ni) : Ni);
        }
        if (merges[b]) { dsto[b] = xo; xo += o[n]; } else dsto[b] = NONE;
    }
    P->iwork = xo; xo += merge_plan_work_sizes(n_max);
    P->ix_total = xo;

    // float arena
    size_t fo = 0;
    for (size_t b = 0; b <= B; b++) {
        size_t T = off[b * (n + 1) + n];
        if (keep) { bl[b].x = fo; fo += up(T * D); }
        bl[b].s = fo;    fo += up(T);
        bl[b].logs = fo; fo += up(T);
    }
    if (!keep) {
        // Inference keeps no level: the residual stream is updated in place in region 0,
        // and a merge writes its (shorter) output into the other region, so levels alternate
        // between two regions only when blocks merge.
        size_t rsz[2] = {t_max, 0};
        for (size_t b = 0, r = 0; b < B; b++) {
            if (merges[b]) r ^= 1;
            size_t Tn = off[(b + 1) * (n + 1) + n];
            if (Tn > rsz[r]) rsz[r] = Tn;
        }
        size_t base[2] = {fo, fo + up(rsz[0] * D)};
        fo = base[1] + up(rsz[1] * D);
        for (size_t b = 0, r = 0; b <= B; b++) {
            bl[b].x = base[r];
            if (b < B && merges[b]) r ^= 1;
        }
    }
    P->pooled = fo; fo += up(n * D);
    P->lnf_m = fo;  fo += up(n);
    P->lnf_r = fo;  fo += up(n);
    P->pln = fo;    fo += up(n * D);
    size_t temp_base = fo, temp_end = fo, sm_max = 0, any_merge = 0;
    for (size_t b = 0; b < B; b++) any_merge |= merges[b];
    size_t chunk = row_chunk(t_max), qkv0 = 0, att0 = 0, rows0 = 0;
    if (!keep) {
        // Inference temporaries, shared by every block: QKV and the attention output for all
        // tokens (attention needs every key), the merge planner's work over the attention
        // output (dead once W_o has read it), and the row-wise ops' scratch for one chunk of
        // `chunk` rows (LN1 -> QKV, W_o -> residual, LN2 -> MLP -> residual run a chunk at a time).
        size_t mw = any_merge ? up(merge_plan_work_floats(n_max, D, c->heads)) : 0;
        qkv0 = fo;  fo += up(t_max * 3 * D);
        att0 = fo;  fo += up(t_max * D) > mw ? up(t_max * D) : mw;
        rows0 = fo; fo += 2 * up(chunk) + 2 * up(chunk * D) + up(chunk * M);
        temp_base = temp_end = fo;
    }
    for (size_t b = 0; b < B; b++) {
        size_t *o = off + b * (n + 1);
        size_t T = o[n], Tn = off[(b + 1) * (n + 1) + n];
        BlockLayout *L = &bl[b];
        if (keep) {
            L->ln1_m = fo; fo += up(T);
            L->ln1_r = fo; fo += up(T);
            L->a = fo;     fo += up(T * D);
            L->qkv = fo;   fo += up(T * 3 * D);
            L->att = fo;   fo += up(T * D);
            L->xmid = fo;  fo += up(T * D);
            if (merges[b]) { L->xm = fo; fo += up(Tn * D); } else L->xm = L->xmid;
            L->ln2_m = fo; fo += up(Tn);
            L->ln2_r = fo; fo += up(Tn);
            L->c = fo;     fo += up(Tn * D);
            L->h = fo;     fo += up(Tn * M);
            L->g = fo;     fo += up(Tn * M);
            L->mwork = fo;
            if (merges[b]) fo += up(merge_plan_work_floats(n_max, D, c->heads));
        } else {  // chunk scratch: LN statistics, LN output (also W_o's and W_2's output), MLP hidden
            fo = temp_base;
            L->qkv = qkv0; L->att = att0; L->mwork = att0;
            L->xmid = L->x;        // W_o's residual lands in x itself
            L->xm = bl[b + 1].x;   // == x unless the block merges
            L->ln1_m = L->ln2_m = rows0;
            L->ln1_r = L->ln2_r = rows0 + up(chunk);
            L->a = L->c = rows0 + 2 * up(chunk);
            L->rt = rows0 + 2 * up(chunk) + up(chunk * D);
            L->h = L->g = rows0 + 2 * up(chunk) + 2 * up(chunk * D);
        }
        size_t save_base = fo, save_max = 0;
        for (size_t i = 0; i < n; i++) {
            size_t Ni = o[i + 1] - o[i];
            AttnKind k = block_kind(c, Ni);
            size_t sf = up(attn_save_floats(c, k, Ni, keep));
            if (ix) { ix[P->kind + b * n + i] = (size_t)k; }
            if (k == ATTN_SOFTMAX && softmax_work_floats(c, Ni) > sm_max) sm_max = softmax_work_floats(c, Ni);
            if (keep) {
                if (ix) ix[P->save + b * n + i] = fo;
                fo += sf;
            } else {  // samples run one after another: one save region per block
                if (ix) ix[P->save + b * n + i] = save_base;
                save_max = sf > save_max ? sf : save_max;
            }
        }
        if (ix) ix[P->sstride + b] = keep ? 0 : save_max;
        if (!keep) fo += save_max * nthr;  // one slot per thread (samples run in parallel)
        temp_end = fo > temp_end ? fo : temp_end;
    }
    P->act_total = temp_end;
    P->t_max = t_max;
    P->n_max = n_max;
    P->sm_max = sm_max;
    P->nthr = nthr;
    P->chunk = chunk;
    if (keep) {
        size_t go = 0;
        P->g_dx0 = go;   go += up(t_max * D);
        P->g_dx1 = go;   go += up(t_max * D);
        P->g_dg = go;    go += up(t_max * M);
        P->g_dh = go;    go += up(t_max * M);
        P->g_dc = go;    go += up(t_max * D);
        P->g_datt = go;  go += up(t_max * D);
        P->g_dqkv = go;  go += up(t_max * 3 * D);
        P->g_da = go;    go += up(t_max * D);
        P->g_sm = go;    go += up(sm_max) * nthr;  // max softmax_work_floats(N), per thread
        P->g_dpool = go; go += up(n * D);
        P->g_dpln = go;  go += up(n * D);
        P->gw_total = go;
    }
    free(cnt);
    return MB_OK;
}

size_t model_bytes_needed(const ModelConfig *c, size_t n_tokens, int training) {
    size_t np = layout_params(c, NULL);
    size_t bytes = sizeof(Model) + count_tensors(c) * sizeof(Tensor) + c->blocks * (sizeof(BlockParams) + 1)
                 + (c->blocks + 1) * sizeof(BlockLayout);
    bytes += np * (sizeof(float) + 1);             // params, decay mask
    if (training) bytes += 3 * np * sizeof(float);  // grads, AdamW moments
    uint8_t *merges = malloc(c->blocks ? c->blocks : 1);
    BlockLayout *bl = malloc((c->blocks + 1) * sizeof *bl);
    if (!merges || !bl) { free(merges); free(bl); return (size_t)-1; }
    block_merges(c, merges);
    Plan P;
    if (n_tokens == 0) n_tokens = 1;
    if (plan_batch(c, merges, 1, &n_tokens, training, &P, bl, NULL) != MB_OK) bytes = (size_t)-1;
    else bytes += (P.act_total + P.gw_total) * sizeof(float) + P.ix_total * sizeof(size_t);
    free(merges);
    free(bl);
    return bytes;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && *buf) return MB_OK;
    mem_free(*buf);
    *buf = mem_alloc((need ? need : 1) * elem);
    *cap = *buf ? need : 0;
    return *buf ? MB_OK : MB_ERR_NOMEM;
}

// ---------------------------------------------------------------- per-sample attention

// Attention forward (backward when dqkv != NULL) of sample i in block bk, on thread slot tid.
static void attn_one(Model *m, size_t bk, size_t i, int tid, int merged_before, const float *datt,
                     float *dqkv) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, H = c->heads;
    const size_t *ix = m->ix, *o = ix + P->off + bk * (P->n + 1);
    const BlockLayout *L = &m->bl[bk];
    const BlockParams *bp = &m->bp[bk];
    float *A = m->act, *p = m->params, *g = m->grads;
    size_t Ni = o[i + 1] - o[i];
    const float *q = A + L->qkv + o[i] * 3 * D;
    float *save = A + ix[P->save + bk * n + i] + (size_t)tid * ix[P->sstride + bk];
    const float *ls = merged_before ? A + L->logs + o[i] : NULL;
    AttnKind k = (AttnKind)ix[P->kind + bk * n + i];
    if (!dqkv) {
        float *out = A + L->att + o[i] * D;
        int infer = !m->kept;   // inference forms keep nothing for backward (less memory, same output)
        if (k == ATTN_SOFTMAX && c->softmax_impl == SOFTMAX_DENSE)
            attn_softmax_dense_forward(out, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
        else if (k == ATTN_SOFTMAX && infer) attn_softmax_forward_infer(out, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
        else if (k == ATTN_SOFTMAX) attn_softmax_forward(out, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
        else if (k == ATTN_EFFICIENT && infer)
            attn_efficient_forward_infer(out, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
        else if (k == ATTN_EFFICIENT) attn_efficient_forward(out, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
        else attn_linformer_forward(out, save, q, q + D, q + 2 * D, 3 * D, p + bp->E, p + bp->F,
                                    c->max_len, c->linformer_k, Ni, D, H);
        return;
    }
    float *dq = dqkv + o[i] * 3 * D;
    const float *dout = datt + o[i] * D;
    if (k == ATTN_SOFTMAX && c->softmax_impl == SOFTMAX_DENSE)
        attn_softmax_dense_backward_ws(dq, dq + D, dq + 2 * D, dout, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H,
                                       m->gw + P->g_sm + (size_t)tid * up(P->sm_max));
    else if (k == ATTN_SOFTMAX)
        attn_softmax_backward_ws(dq, dq + D, dq + 2 * D, dout, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H,
                                 m->gw + P->g_sm + (size_t)tid * up(P->sm_max));
    else if (k == ATTN_EFFICIENT)
        attn_efficient_backward(dq, dq + D, dq + 2 * D, dout, save, q, q + D, q + 2 * D, 3 * D, ls, Ni, D, H);
    else
        attn_linformer_backward(dq, dq + D, dq + 2 * D, g + bp->E, g + bp->F, dout, save, q, q + D, q + 2 * D,
                                3 * D, p + bp->E, p + bp->F, c->max_len, c->linformer_k, Ni, D, H);
}

// Runs every sample's attention of block bk. With several threads and samples, samples run
// in parallel (each on one thread, BLAS single-threaded inside), so a sample's numbers never
// depend on the others or on scheduling. Workers count FLOPs into private counters that are
// added to the caller's in sample order. Linformer's backward accumulates into shared dE/dF,
// so it stays sequential (BLAS-threaded).
static void run_samples(Model *m, size_t bk, int merged_before, int backward, const float *datt,
                        float *dqkv) {
    const Plan *P = &m->plan;
    size_t n = P->n;
    int nthr = (int)P->nthr;
    int par = n > 1 && nthr > 1 && !(backward && m->cfg.method == METHOD_LINFORMER);
#ifndef _OPENMP
    par = 0;
#endif
    if (!par) {
        for (size_t i = 0; i < n; i++) attn_one(m, bk, i, 0, merged_before, datt, backward ? dqkv : NULL);
        return;
    }
    FlopCounter *fmain = flops_active();
    FlopCounter *loc = fmain ? calloc(n, sizeof *loc) : NULL;
    if (fmain && !loc) {  // cannot count in parallel: run sequentially instead
        for (size_t i = 0; i < n; i++) attn_one(m, bk, i, 0, merged_before, datt, backward ? dqkv : NULL);
        return;
    }
    openblas_set_num_threads(1);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
    for (size_t i = 0; i < n; i++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        if (loc) flops_install(&loc[i]);
        attn_one(m, bk, i, tid, merged_before, datt, backward ? dqkv : NULL);
        if (loc) flops_install(NULL);
    }
    openblas_set_num_threads(threads_get());  // P->nthr may be capped at the sample count
    flops_install(fmain);
    if (loc) {
        for (size_t i = 0; i < n; i++) { fmain->flops += loc[i].flops; fmain->macs += loc[i].macs; }
        free(loc);
    }
}

// ---------------------------------------------------------------- forward

// The merge point of block bk: per sample, plan on this block's keys (MAELRE: local matching
// while N > the switch threshold, global after; ToMe: global) and merge xmid into xm with the
// sizes of the next level; without merging the sizes carry over.
static void merge_point(Model *m, size_t bk, const float *xmid, float *xm) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, H = c->heads;
    const BlockLayout *L = &m->bl[bk], *Ln = &m->bl[bk + 1];
    float *A = m->act;
    size_t *ix = m->ix;
    const size_t *o = ix + P->off + bk * (n + 1), *on = o + (n + 1);
    size_t T = o[n], Tn = on[n];
    const float *s = A + L->s, *qkv = A + L->qkv;
    float *sn = A + Ln->s, *logsn = A + Ln->logs;
    if (!m->merges[bk]) {
        memcpy(sn, s, T * sizeof(float));
        memcpy(logsn, A + L->logs, T * sizeof(float));
        return;
    }
    size_t *dst = ix + ix[P->dst + bk];
    MatchKind mk = c->method == METHOD_MAELRE ? MATCH_LOCAL : MATCH_GLOBAL;
    size_t until = c->method == METHOD_MAELRE ? switch_threshold(c) : 0;
    for (size_t i = 0; i < n; i++) {
        size_t Ni = o[i + 1] - o[i];
        MergePlan mp = {Ni, on[i + 1] - on[i], dst + o[i]};
        merge_plan_build(&mp, qkv + o[i] * 3 * D + D, 3 * D, s + o[i], Ni, D, H, mp.n_out, mk,
                         c->local_window, until, A + L->mwork, ix + P->iwork);
        merge_forward(xm + on[i] * D, sn + on[i], xmid + o[i] * D, s + o[i], &mp, D);
    }
    for (size_t t = 0; t < Tn; t++) logsn[t] = logf(sn[t]);
}

// Block bk keeping every activation for backward (the training layout of plan_batch).
static void train_block(Model *m, size_t bk, int merged_before) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, M = c->mlp;
    const BlockLayout *L = &m->bl[bk], *Ln = &m->bl[bk + 1];
    const BlockParams *bp = &m->bp[bk];
    const size_t *o = m->ix + P->off + bk * (n + 1), *on = o + (n + 1);
    size_t T = o[n], Tn = on[n];
    float *A = m->act, *p = m->params;
    float *x = A + L->x, *xmid = A + L->xmid, *xm = A + L->xm, *xn = A + Ln->x;
    layernorm_forward(A + L->a, A + L->ln1_m, A + L->ln1_r, x, p + bp->ln1_g, p + bp->ln1_b, T, D, c->ln_eps);
    linear_forward(A + L->qkv, A + L->a, p + bp->wqkv, p + bp->bqkv, T, D, 3 * D);
    run_samples(m, bk, merged_before, 0, NULL, NULL);
    linear_forward(xmid, A + L->att, p + bp->wo, p + bp->bo, T, D, D);
    residual_forward(xmid, x, T * D);
    merge_point(m, bk, xmid, xm);
    layernorm_forward(A + L->c, A + L->ln2_m, A + L->ln2_r, xm, p + bp->ln2_g, p + bp->ln2_b, Tn, D, c->ln_eps);
    linear_forward(A + L->h, A + L->c, p + bp->w1, p + bp->b1, Tn, D, M);
    gelu_forward(A + L->g, A + L->h, Tn * M);
    linear_forward(xn, A + L->g, p + bp->w2, p + bp->b2, Tn, M, D);
    residual_forward(xn, xm, Tn * D);
}

// Block bk for inference (plan_batch's layout without keep): the residual stream x is updated
// in place; the row-wise ops run a chunk of rows at a time through small scratch; a merge
// writes its output into the other residual region (Ln->x). Every element goes through the
// same operations in the same order as in train_block (x + t == t + x), so the logits agree
// with a forward that keeps activations, while the memory held is QKV and the attention
// output for all tokens plus chunk scratch instead of every activation of every block.
static void infer_block(Model *m, size_t bk, int merged_before) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, M = c->mlp, ch = P->chunk;
    const BlockLayout *L = &m->bl[bk];
    const BlockParams *bp = &m->bp[bk];
    const size_t *o = m->ix + P->off + bk * (n + 1), *on = o + (n + 1);
    size_t T = o[n], Tn = on[n];
    float *A = m->act, *p = m->params;
    float *x = A + L->x, *xm = A + L->xm, *qkv = A + L->qkv, *att = A + L->att;
    float *mean = A + L->ln1_m, *rstd = A + L->ln1_r, *a = A + L->a, *t = A + L->rt, *h = A + L->h;
    for (size_t r = 0; r < T; r += ch) {
        size_t nr = T - r < ch ? T - r : ch;
        layernorm_forward(a, mean, rstd, x + r * D, p + bp->ln1_g, p + bp->ln1_b, nr, D, c->ln_eps);
        linear_forward(qkv + r * 3 * D, a, p + bp->wqkv, p + bp->bqkv, nr, D, 3 * D);
    }
    run_samples(m, bk, merged_before, 0, NULL, NULL);
    for (size_t r = 0; r < T; r += ch) {
        size_t nr = T - r < ch ? T - r : ch;
        linear_forward(t, att + r * D, p + bp->wo, p + bp->bo, nr, D, D);
        residual_forward(x + r * D, t, nr * D);   // x becomes xmid in place (L->xmid == L->x)
    }
    merge_point(m, bk, x, xm);  // xm == x when the block does not merge
    for (size_t r = 0; r < Tn; r += ch) {
        size_t nr = Tn - r < ch ? Tn - r : ch;
        layernorm_forward(a, mean, rstd, xm + r * D, p + bp->ln2_g, p + bp->ln2_b, nr, D, c->ln_eps);
        linear_forward(h, a, p + bp->w1, p + bp->b1, nr, D, M);
        gelu_forward(h, h, nr * M);
        linear_forward(t, h, p + bp->w2, p + bp->b2, nr, M, D);
        residual_forward(xm + r * D, t, nr * D);
    }
}

int model_forward(Model *m, const Batch *b, int keep_for_backward, float *logits,
                  char *err, size_t errlen) {
    const ModelConfig *c = &m->cfg;
    size_t n = b->n, D = c->dim, B = c->blocks;
    if (n == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: empty batch");
    if (c->vocab && !b->ids) return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: model takes token ids but the batch has none");
    if (c->feat_dim && (!b->feats || b->feat_dim != c->feat_dim))
        return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: model takes features of width %zu, batch has %zu", c->feat_dim, b->feats ? b->feat_dim : (size_t)0);
    size_t *len = malloc(n * sizeof(size_t));
    if (!len) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        len[i] = batch_len(b, i);
        if (len[i] == 0 || len[i] > c->max_len) {
            size_t L = len[i];
            free(len);
            return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: sample %zu has %zu tokens, must be in [1, max_len = %zu]", i, L, c->max_len);
        }
    }
    if (c->vocab) {
        for (size_t t = 0; t < batch_tokens(b); t++)
            if (b->ids[t] < 0 || (size_t)b->ids[t] >= c->vocab) {
                free(len);
                return mb_fail(err, errlen, MB_ERR_DATA, "model_forward: token %zu has id %d outside [0, %zu)", t, (int)b->ids[t], c->vocab);
            }
    }
    // plan: first the totals, then grow the arenas, then the real layout
    Plan P;
    int rc = plan_batch(c, m->merges, n, len, keep_for_backward, &P, m->bl, NULL);
    if (!rc) rc = grow((void **)&m->ix, &m->ix_cap, P.ix_total, sizeof(size_t));
    if (!rc) rc = grow((void **)&m->act, &m->act_cap, P.act_total, sizeof(float));
    if (!rc && keep_for_backward) rc = grow((void **)&m->gw, &m->gw_cap, P.gw_total, sizeof(float));
    if (!rc && keep_for_backward) rc = ensure_grads(m);
    if (!rc) rc = plan_batch(c, m->merges, n, len, keep_for_backward, &P, m->bl, m->ix);
    free(len);
    if (rc) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for activations (%zu floats)", P.act_total + P.gw_total);
    m->plan = P;
    m->kept = keep_for_backward;
    memset(&m->usage, 0, sizeof m->usage);
    m->usage.samples = n;

    float *A = m->act, *p = m->params;
    size_t *ix = m->ix;
    const size_t *off0 = ix + P.off;
    size_t T0 = off0[n];
    // embed
    float *x0 = A + m->bl[0].x;
    if (c->vocab) embed_tokens_forward(x0, b->ids, p + m->tok_emb, T0, D);
    else linear_forward(x0, b->feats, p + m->patch_w, p + m->patch_b, T0, c->feat_dim, D);
    pos_embed_forward(x0, p + m->pos, off0, n, D);
    for (size_t t = 0; t < T0; t++) { A[m->bl[0].s + t] = 1.0f; A[m->bl[0].logs + t] = 0.0f; }

    int merged_before = 0;
    for (size_t bk = 0; bk < B; bk++) {
        for (size_t i = 0; i < n; i++) m->usage.count[ix[P.kind + bk * n + i]]++;
        if (keep_for_backward) train_block(m, bk, merged_before);
        else infer_block(m, bk, merged_before);
        if (m->merges[bk]) merged_before = 1;
    }
    // pool -> LayerNorm -> head
    const BlockLayout *Lf = &m->bl[B];
    const size_t *of = ix + P.off + B * (n + 1);
    pool_forward(A + P.pooled, A + Lf->x, A + Lf->s, of, n, D);
    layernorm_forward(A + P.pln, A + P.lnf_m, A + P.lnf_r, A + P.pooled, p + m->lnf_g, p + m->lnf_b, n, D, c->ln_eps);
    linear_forward(logits, A + P.pln, p + m->head_w, p + m->head_b, n, D, c->classes);
    return MB_OK;
}

float model_loss(const float *logits, const int32_t *labels, size_t n, size_t classes, float *dlogits) {
    return softmax_ce(logits, labels, n, classes, dlogits);
}

// ---------------------------------------------------------------- backward

void model_backward(Model *m, const Batch *b, const float *dlogits) {
    if (!m->kept) abort();  // contract: forward with keep_for_backward first
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, M = c->mlp, B = c->blocks;
    float *A = m->act, *p = m->params, *g = m->grads, *W = m->gw;
    size_t *ix = m->ix;
    const BlockLayout *Lf = &m->bl[B];
    const size_t *of = ix + P->off + B * (n + 1);

    float *dpln = W + P->g_dpln, *dpool = W + P->g_dpool;
    memset(dpln, 0, n * D * sizeof(float));
    memset(dpool, 0, n * D * sizeof(float));
    linear_backward(dpln, g + m->head_w, g + m->head_b, dlogits, A + P->pln, p + m->head_w, n, D, c->classes);
    layernorm_backward(dpool, g + m->lnf_g, g + m->lnf_b, dpln, A + P->pooled, A + P->lnf_m, A + P->lnf_r,
                       p + m->lnf_g, n, D);
    float *dx = W + P->g_dx0, *dother = W + P->g_dx1;
    memset(dx, 0, of[n] * D * sizeof(float));
    pool_backward(dx, dpool, A + Lf->s, of, n, D);

    int merged_before_b[64];
    int *mb = B <= 64 ? merged_before_b : malloc(B * sizeof(int));
    if (!mb) abort();
    for (size_t bk = 0, seen = 0; bk < B; bk++) { mb[bk] = (int)seen; if (m->merges[bk]) seen = 1; }

    for (size_t bk = B; bk-- > 0;) {
        const BlockLayout *L = &m->bl[bk], *Ln = &m->bl[bk + 1];
        const BlockParams *bp = &m->bp[bk];
        const size_t *o = ix + P->off + bk * (n + 1), *on = o + (n + 1);
        size_t T = o[n], Tn = on[n];
        float *dg = W + P->g_dg, *dh = W + P->g_dh, *dc = W + P->g_dc;
        // MLP: dx holds d x_{b+1} (Tn, D), which is also d xm through the residual
        memset(dg, 0, Tn * M * sizeof(float));
        memset(dh, 0, Tn * M * sizeof(float));
        memset(dc, 0, Tn * D * sizeof(float));
        linear_backward(dg, g + bp->w2, g + bp->b2, dx, A + L->g, p + bp->w2, Tn, M, D);
        gelu_backward(dh, dg, A + L->h, Tn * M);
        linear_backward(dc, g + bp->w1, g + bp->b1, dh, A + L->c, p + bp->w1, Tn, D, M);
        layernorm_backward(dx, g + bp->ln2_g, g + bp->ln2_b, dc, A + L->xm, A + L->ln2_m, A + L->ln2_r,
                           p + bp->ln2_g, Tn, D);
        // merge point
        float *dxmid = dx;
        if (m->merges[bk]) {
            memset(dother, 0, T * D * sizeof(float));
            size_t *dst = ix + ix[P->dst + bk];
            for (size_t i = 0; i < n; i++) {
                MergePlan mp = {o[i + 1] - o[i], on[i + 1] - on[i], dst + o[i]};
                merge_backward(dother + o[i] * D, dx + on[i] * D, A + L->s + o[i], A + Ln->s + on[i], &mp, D);
            }
            dxmid = dother;
            dother = dx;
        }
        // attention
        float *datt = W + P->g_datt, *dqkv = W + P->g_dqkv, *da = W + P->g_da;
        memset(datt, 0, T * D * sizeof(float));
        memset(dqkv, 0, T * 3 * D * sizeof(float));
        memset(da, 0, T * D * sizeof(float));
        linear_backward(datt, g + bp->wo, g + bp->bo, dxmid, A + L->att, p + bp->wo, T, D, D);
        run_samples(m, bk, mb[bk], 1, datt, dqkv);
        linear_backward(da, g + bp->wqkv, g + bp->bqkv, dqkv, A + L->a, p + bp->wqkv, T, D, 3 * D);
        layernorm_backward(dxmid, g + bp->ln1_g, g + bp->ln1_b, da, A + L->x, A + L->ln1_m, A + L->ln1_r,
                           p + bp->ln1_g, T, D);
        dx = dxmid;  // now d x_b
    }
    if (mb != merged_before_b) free(mb);
    const size_t *off0 = ix + P->off;
    pos_embed_backward(g + m->pos, dx, off0, n, D);
    if (c->vocab) embed_tokens_backward(g + m->tok_emb, dx, b->ids, off0[n], D);
    else linear_backward(NULL, g + m->patch_w, g + m->patch_b, dx, b->feats, p + m->patch_w, off0[n], c->feat_dim, D);
}

// ---------------------------------------------------------------- checkpoints

#define CKPT_MAGIC "MAELRECK"
#define CKPT_VERSION 1u

// The config is stored field by field (fixed widths), so struct padding never leaks in.
typedef struct { uint64_t u[16]; float f[2]; uint64_t stage_blocks[MODEL_MAX_STAGES]; float stage_keep[MODEL_MAX_STAGES]; } CkptConfig;

static void cfg_pack(const ModelConfig *c, CkptConfig *k) {
    memset(k, 0, sizeof *k);
    uint64_t u[16] = {c->vocab, c->feat_dim, c->max_len, c->dim, c->heads, c->mlp, c->blocks, c->classes,
                      (uint64_t)c->method, c->linformer_k, (uint64_t)c->linformer_share_ef, c->n_stages,
                      c->switch_threshold, c->local_window, 0, 0};
    memcpy(k->u, u, sizeof u);
    k->f[0] = c->ln_eps;
    k->f[1] = c->tome_r_frac;
    for (size_t i = 0; i < MODEL_MAX_STAGES; i++) { k->stage_blocks[i] = c->stages[i].blocks; k->stage_keep[i] = c->stages[i].keep; }
}

static void cfg_unpack(const CkptConfig *k, ModelConfig *c) {
    memset(c, 0, sizeof *c);
    c->vocab = k->u[0]; c->feat_dim = k->u[1]; c->max_len = k->u[2]; c->dim = k->u[3];
    c->heads = k->u[4]; c->mlp = k->u[5]; c->blocks = k->u[6]; c->classes = k->u[7];
    c->method = (Method)k->u[8]; c->linformer_k = k->u[9]; c->linformer_share_ef = (int)k->u[10];
    c->n_stages = k->u[11]; c->switch_threshold = k->u[12]; c->local_window = k->u[13];
    c->ln_eps = k->f[0]; c->tome_r_frac = k->f[1];
    for (size_t i = 0; i < MODEL_MAX_STAGES; i++) { c->stages[i].blocks = k->stage_blocks[i]; c->stages[i].keep = k->stage_keep[i]; }
}

int model_save(const Model *m, const char *path, char *err, size_t errlen) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { int rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create checkpoint", tmp); free(tmp); return rc; }
    CkptConfig k;
    cfg_pack(&m->cfg, &k);
    uint32_t ver = CKPT_VERSION;
    uint64_t np = m->n_params;
    int ok = fwrite(CKPT_MAGIC, 1, 8, f) == 8 && fwrite(&ver, sizeof ver, 1, f) == 1 &&
             fwrite(&k, sizeof k, 1, f) == 1 && fwrite(&np, sizeof np, 1, f) == 1 &&
             fwrite(m->params, sizeof(float), m->n_params, f) == m->n_params;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        int rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write checkpoint", path);
        free(tmp);
        return rc;
    }
    free(tmp);
    return MB_OK;
}

int model_load(Model **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot open checkpoint", path);
    char magic[8];
    uint32_t ver;
    CkptConfig k;
    uint64_t np;
    int rc = MB_OK;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:0: not a maelre-bench checkpoint (bad magic); hint: pass a file written by maelre-bench's model_save", path);
    } else if (fread(&ver, sizeof ver, 1, f) != 1) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:8: truncated checkpoint (no version); hint: the file was cut short, save it again", path);
    } else if (ver != CKPT_VERSION) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:8: checkpoint version %u, this build reads version %u; hint: retrain, or use the build that wrote it", path, ver, CKPT_VERSION);
    } else if (fread(&k, sizeof k, 1, f) != 1 || fread(&np, sizeof np, 1, f) != 1) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:12: truncated checkpoint header; hint: the file was cut short, save it again", path);
    }
    if (rc) { fclose(f); return rc; }
    ModelConfig cfg;
    cfg_unpack(&k, &cfg);
    char why[256];
    if (model_config_check(&cfg, why, sizeof why) != MB_OK) {
        fclose(f);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:12: checkpoint holds an invalid config (%s); hint: the file is corrupt", path, why);
    }
    Model *m;
    rc = model_create(&m, &cfg, 0, err, errlen);
    if (rc) { fclose(f); return rc; }
    long hdr = (long)(8 + sizeof ver + sizeof k + sizeof np);
    if (np != m->n_params) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: checkpoint holds %llu parameters but its config needs %zu; hint: the file is corrupt or from another build",
                     path, hdr - (long)sizeof np, (unsigned long long)np, m->n_params);
    } else {
        size_t got = fread(m->params, sizeof(float), m->n_params, f);
        if (got != m->n_params)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: truncated checkpoint: %zu of %zu parameters; hint: the file was cut short, save it again",
                         path, hdr + (long)(got * sizeof(float)), got, m->n_params);
        else if (fgetc(f) != EOF)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: trailing bytes after the parameters; hint: the file is corrupt or not a checkpoint",
                         path, hdr + (long)(m->n_params * sizeof(float)));
    }
    fclose(f);
    if (rc) { model_destroy(m); return rc; }
    *out = m;
    return MB_OK;
}
