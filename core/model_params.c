// Parameter and buffer layout, initialisation and the model's lifetime. `params` and `grads`
// share one layout, a table of named tensors: embeddings, then per block its own weights and
// the parameters of every attention kind its method may use (kind order), then the final
// LayerNorm and head. Buffers (non-trainable tables of kinds) have their own table and vector.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "core/mem.h"
#include "core/model_internal.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/status.h"

size_t model_layout(const ModelConfig *c, Model *m, size_t *n_buffers) {
    size_t off = 0, nt = 0, boff = 0, nbt = 0;
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
    unsigned used = method_row(c->method)->kinds_used(c);
    if (m) {
        m->tok_emb = m->patch_w = m->patch_b = NONE;
        for (int k = 0; k < ATTN_KIND_COUNT; k++) m->kpar_n[k] = m->kbuf_n[k] = 0;
    }
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
        for (int k = 0; k < ATTN_KIND_COUNT; k++) {
            for (size_t j = 0; j < ATTN_MAX_TENSORS; j++) p->kpar[k][j] = p->kbuf[k][j] = NONE;
            if (!(used >> k & 1u)) continue;
            const AttnKindRow *kr = attn_kind((AttnKind)k);
            AttnTensorSpec ts[ATTN_MAX_TENSORS];
            size_t n = kr->params(c, ts);
            for (size_t j = 0; j < n; j++) T_ADD(p->kpar[k][j], ts[j].count, ts[j].decay ? 1 : 0, "blk%zu.%s", b, ts[j].name);
            size_t nb = kr->buffers(c, ts);
            for (size_t j = 0; j < nb; j++) {
                if (m) {
                    Tensor *t = &m->btensors[nbt];
                    snprintf(t->name, sizeof t->name, "blk%zu.%s", b, ts[j].name);
                    t->off = boff; t->count = ts[j].count; t->decay = 0;
                    p->kbuf[k][j] = boff;
                }
                nbt++; boff += ts[j].count;
            }
            if (m) { m->kpar_n[k] = n; m->kbuf_n[k] = nb; }
        }
    }
    T_ADD(*(m ? &m->lnf_g : &dummy), D, 0, "lnf_g");
    T_ADD(*(m ? &m->lnf_b : &dummy), D, 0, "lnf_b");
    if (m) m->head_w = m->head_b = m->head1_w = m->head1_b = m->head2_w = m->head2_b = NONE;
    if (c->pairs) {  // two-tower head (SPEC §10.2): Linear(4D, M), ReLU, Linear(M, classes)
        T_ADD(*(m ? &m->head1_w : &dummy), M * 4 * D, 1, "head1_w");
        T_ADD(*(m ? &m->head1_b : &dummy), M, 0, "head1_b");
        T_ADD(*(m ? &m->head2_w : &dummy), c->classes * M, 1, "head2_w");
        T_ADD(*(m ? &m->head2_b : &dummy), c->classes, 0, "head2_b");
    } else {
        T_ADD(*(m ? &m->head_w : &dummy), c->classes * D, 1, "head_w");
        T_ADD(*(m ? &m->head_b : &dummy), c->classes, 0, "head_b");
    }
#undef T_ADD
    if (m) { m->n_tensors = nt; m->n_btensors = nbt; }
    if (n_buffers) *n_buffers = boff;
    return off;
}

size_t model_count_tensors(const ModelConfig *c, size_t *n_btensors) {
    unsigned used = method_row(c->method)->kinds_used(c);
    size_t per_block = 12, per_block_buf = 0;
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        if (!(used >> k & 1u)) continue;
        AttnTensorSpec ts[ATTN_MAX_TENSORS];
        per_block += attn_kind((AttnKind)k)->params(c, ts);
        per_block_buf += attn_kind((AttnKind)k)->buffers(c, ts);
    }
    if (n_btensors) *n_btensors = c->blocks * per_block_buf;
    return (c->vocab ? 1 : 2) + 1 + c->blocks * per_block + (c->pairs ? 6 : 4);
}

// Parameters from one stream in layout order; each kind's buffers from their own stream per
// block, so adding a kind with buffers never moves another tensor's numbers.
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
        for (int k = 0; k < ATTN_KIND_COUNT; k++) {
            float *par[ATTN_MAX_TENSORS], *buf[ATTN_MAX_TENSORS];
            for (size_t j = 0; j < m->kpar_n[k]; j++) par[j] = p + q->kpar[k][j];
            for (size_t j = 0; j < m->kbuf_n[k]; j++) buf[j] = m->buffers + q->kbuf[k][j];
            if (m->kpar_n[k]) attn_kind((AttnKind)k)->init_params(c, par, &rng);
            if (m->kbuf_n[k]) {
                uint64_t brng = rng_derive(seed, 0x6275660000ull + ((uint64_t)b << 8) + (uint64_t)k);
                attn_kind((AttnKind)k)->init_buffers(c, buf, &brng);
            }
        }
    }
    FILL_C(m->lnf_g, D, 1.0f);
    if (c->pairs) {
        FILL_N(m->head1_w, M * 4 * D, 1.0 / sqrt(4.0 * (double)D));
        FILL_N(m->head2_w, c->classes * M, 1.0 / sqrt((double)M));
    } else {
        FILL_N(m->head_w, c->classes * D, 1.0 / sqrt((double)D));
    }
#undef FILL_N
#undef FILL_C
}

// Which blocks merge (the method row's answer, cached per block).
static void block_merges(const ModelConfig *c, uint8_t *merges) {
    const MethodRow *r = method_row(c->method);
    for (size_t b = 0; b < c->blocks; b++) merges[b] = r->merges(c, b) ? 1 : 0;
}

int model_create(Model **out, const ModelConfig *cfg, uint64_t seed, char *err, size_t errlen) {
    *out = NULL;
    int rc = model_config_check(cfg, err, errlen);
    if (rc) return rc;
    Model *m = mem_alloc(sizeof *m);
    if (!m) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory creating the model");
    m->cfg = *cfg;
    size_t nbt;
    m->tensors = mem_alloc(model_count_tensors(cfg, &nbt) * sizeof(Tensor));
    m->btensors = mem_alloc((nbt ? nbt : 1) * sizeof(Tensor));
    m->bp = mem_alloc(cfg->blocks * sizeof(BlockParams));
    m->merges = mem_alloc(cfg->blocks);
    m->bl = mem_alloc((cfg->blocks + 1) * sizeof(BlockLayout));
    if (!m->tensors || !m->btensors || !m->bp || !m->merges || !m->bl) { model_destroy(m); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory creating the model"); }
    m->n_params = model_layout(cfg, m, &m->n_buffers);
    m->params = mem_alloc(m->n_params * sizeof(float));
    m->decay = mem_alloc(m->n_params);
    m->buffers = m->n_buffers ? mem_alloc(m->n_buffers * sizeof(float)) : NULL;
    if (!m->params || !m->decay || (m->n_buffers && !m->buffers)) {
        size_t np = m->n_params;
        model_destroy(m);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu parameters", np);
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
    mem_free(m->tensors); mem_free(m->btensors); mem_free(m->bp); mem_free(m->merges); mem_free(m->bl);
    mem_free(m->params); mem_free(m->grads); mem_free(m->decay); mem_free(m->buffers);
    mem_free(m->act); mem_free(m->ix); mem_free(m->gw); mem_free(m->wt);
    mem_free(m);
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
void model_set_softmax_impl(Model *m, SoftmaxImpl s) { if ((unsigned)s < SOFTMAX_IMPL_COUNT) m->cfg.softmax_impl = s; }
size_t model_num_params(const Model *m) { return m->n_params; }
float *model_params(Model *m) { return m->params; }
// Gradients exist from the first forward that keeps activations (or the first model_grads
// call) on: a model that only runs inference never holds them.
int model_ensure_grads(Model *m) {
    if (m->grads) return MB_OK;
    m->grads = mem_alloc(m->n_params * sizeof(float));  // zeroed by mem_alloc
    return m->grads ? MB_OK : MB_ERR_NOMEM;
}
float *model_grads(Model *m) { return model_ensure_grads(m) == MB_OK ? m->grads : NULL; }
const uint8_t *model_decay_mask(const Model *m) { return m->decay; }
void model_zero_grad(Model *m) { if (m->grads) ops_zero(m->grads, m->n_params); }   // parallel when large
AttnUsage model_last_usage(const Model *m) { return m->usage; }
size_t model_num_tensors(const Model *m) { return m->n_tensors; }
const char *model_tensor(const Model *m, size_t i, size_t *offset, size_t *count) {
    if (i >= m->n_tensors) return NULL;
    if (offset) *offset = m->tensors[i].off;
    if (count) *count = m->tensors[i].count;
    return m->tensors[i].name;
}
size_t model_num_buffers(const Model *m) { return m->n_buffers; }
float *model_buffers(Model *m) { return m->buffers; }
size_t model_num_buffer_tensors(const Model *m) { return m->n_btensors; }
const char *model_buffer_tensor(const Model *m, size_t i, size_t *offset, size_t *count) {
    if (i >= m->n_btensors) return NULL;
    if (offset) *offset = m->btensors[i].off;
    if (count) *count = m->btensors[i].count;
    return m->btensors[i].name;
}
