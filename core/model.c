// The classifier of SPEC §2 over packed ragged batches: forward (training and inference) and
// backward. Every method and attention kind is reached through its table row (the method
// table, core/model_methods.c; the kind table, core/attn_kind.h), planned by core/model_plan.c.
//
// Block loop (every block, every method): per-block token counts per sample, per-sample
// attention kind, and a per-block merge flag are decided up front from the lengths alone
// (fixed merge targets depend only on N), so the whole batch is planned before any math runs;
// adaptive merging re-plans the later blocks inside the planned room at its merge point.
//   x_b --LN1--> a --QKV--> qkv --attn per sample--> att --Wo,+x_b--> xmid
//       --merge per sample (if the block merges; metric = this block's keys)--> xm
//       --LN2--> c --W1--> h --GELU--> g --W2,+xm--> x_{b+1}
// Dropout (training forwards only, core/dropout.h) drops the embedding output, Wo's output
// before "+x_b", g after the GELU and W2's output before "+xm"; per token row of that point, so
// after a merge the rows dropped are the merged tokens. Attention probabilities are not dropped.
// Sizes s and log s travel with the tokens of every level; log s is given to attention
// only after some block has merged (before that all sizes are 1 and log s is 0).
#include "core/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/dropout.h"
#include "core/flops.h"
#include "core/mem.h"
#include "core/merge.h"
#include "core/model_internal.h"
#include "core/ops.h"
#include "core/pair_head.h"
#include "core/status.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif

void openblas_set_num_threads(int);  // from OpenBLAS (cblas.h); declared here as core/threads.c does

#define up model_up

// ---------------------------------------------------------------- per-sample attention

// Attention forward (backward when dqkv != NULL) of sample i in block bk, on thread slot tid,
// through the row of the sample's kind.
static void attn_one(Model *m, size_t bk, size_t i, int tid, int merged_before, const float *datt,
                     float *dqkv) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, H = c->heads;
    const size_t *ix = m->ix, *o = ix + P->off + bk * (P->n + 1);
    const BlockLayout *L = &m->bl[bk];
    const BlockParams *bp = &m->bp[bk];
    float *A = m->act;
    size_t Ni = o[i + 1] - o[i];
    const float *q = A + L->qkv + o[i] * 3 * D;
    float *save = A + ix[P->save + bk * n + i] + (size_t)tid * ix[P->sstride + bk];
    AttnKind k = (AttnKind)ix[P->kind + bk * n + i];
    const AttnKindRow *kr = attn_kind(k);
    const float *par[ATTN_MAX_TENSORS], *buf[ATTN_MAX_TENSORS];
    for (size_t j = 0; j < m->kpar_n[k]; j++) par[j] = m->params + bp->kpar[k][j];
    for (size_t j = 0; j < m->kbuf_n[k]; j++) buf[j] = m->buffers + bp->kbuf[k][j];
    AttnCall a = {q, q + D, q + 2 * D, 3 * D, merged_before ? A + L->logs + o[i] : NULL, Ni, D, H, par, buf, c};
    if (!dqkv) {
        float *out = A + L->att + o[i] * D;
        // inference forms keep nothing for backward (less memory, same output)
        if (m->kept) kr->forward(out, save, &a);
        else kr->forward_infer(out, save, &a);
        return;
    }
    float *dpar[ATTN_MAX_TENSORS];
    for (size_t j = 0; j < m->kpar_n[k]; j++) dpar[j] = m->grads + bp->kpar[k][j];
    float *dq = dqkv + o[i] * 3 * D;
    memset(dq, 0, Ni * 3 * D * sizeof(float));   // kinds accumulate; zeroed here, on the sample's thread
    kr->backward(dq, dq + D, dq + 2 * D, dpar, datt + o[i] * D, save,
                 m->gw + P->g_work + (size_t)tid * up(P->work_max), &a);
}

// Runs fn(m, ctx, i, tid) for every item i < count (samples, or inference's row chunks) on
// thread slot tid < nthr. With several threads and items (and par set), items run in parallel,
// each on one thread with BLAS single-threaded inside, so an item's numbers never depend on the
// others or on scheduling. Workers count FLOPs into private counters that are added to the
// caller's in item order.
typedef void (*ItemFn)(Model *m, void *ctx, size_t i, int tid);
static void for_each_item(Model *m, size_t count, int nthr, int par, ItemFn fn, void *ctx) {
    par = par && count > 1 && nthr > 1;
#ifndef _OPENMP
    par = 0;
#endif
    FlopCounter *fmain = flops_active();
    FlopCounter *loc = par && fmain ? calloc(count, sizeof *loc) : NULL;
    if (!par || (fmain && !loc)) {  // one thread, or cannot count in parallel: in order
        for (size_t i = 0; i < count; i++) fn(m, ctx, i, 0);
        return;
    }
    openblas_set_num_threads(1);
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
    for (size_t i = 0; i < count; i++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        if (loc) flops_install(&loc[i]);
        fn(m, ctx, i, tid);
        if (loc) flops_install(NULL);
    }
    openblas_set_num_threads(threads_get());  // nthr may be capped at the item count
    flops_install(fmain);
    if (loc) {
        for (size_t i = 0; i < count; i++) { fmain->flops += loc[i].flops; fmain->macs += loc[i].macs; }
        free(loc);
    }
}

// Every sample through fn (for_each_item with the plan's per-sample thread slots).
static void for_each_sample(Model *m, int par, ItemFn fn, void *ctx) {
    for_each_item(m, m->plan.n, (int)m->plan.nthr, par, fn, ctx);
}

typedef struct { size_t bk; int merged_before; const float *datt; float *dqkv; } AttnArgs;
static void attn_sample(Model *m, void *ctx, size_t i, int tid) {
    const AttnArgs *a = ctx;
    attn_one(m, a->bk, i, tid, a->merged_before, a->datt, a->dqkv);
}

// Every sample's attention of block bk. A kind whose backward accumulates into the layer's
// shared parameter gradients (Linformer's dE/dF) runs its backward sequentially (BLAS-threaded).
static void run_samples(Model *m, size_t bk, int merged_before, int backward, const float *datt,
                        float *dqkv) {
    const Plan *P = &m->plan;
    size_t n = P->n;
    int shared = 0;
    for (size_t i = 0; backward && i < n; i++) shared |= attn_kind((AttnKind)m->ix[P->kind + bk * n + i])->shared_grads;
    AttnArgs a = {bk, merged_before, datt, backward ? dqkv : NULL};
    for_each_sample(m, !shared, attn_sample, &a);
}

// ---------------------------------------------------------------- forward

// A merge point's arguments for its per-sample passes (plan_sample, merge_sample).
typedef struct {
    size_t bk;
    MatchKind mk;
    size_t until;
    float thr;
    const float *xmid;
    float *xm;
} MergeArgs;

// Sample i's plan on block bk's keys (thread slot tid's planner work). Adaptive merging
// leaves the sample's count in on[i + 1]; merge_point turns the counts into offsets.
static void plan_sample(Model *m, void *ctx, size_t i, int tid) {
    const MergeArgs *a = ctx;
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim;
    const BlockLayout *L = &m->bl[a->bk];
    size_t *ix = m->ix;
    const size_t *o = ix + P->off + a->bk * (n + 1);
    size_t *on = ix + P->off + (a->bk + 1) * (n + 1);
    size_t Ni = o[i + 1] - o[i];
    const MethodRow *mr = method_row(c->method);
    size_t target = a->thr > 0.0f ? mr->merge_target(c, a->bk, Ni) : on[i + 1] - on[i];   // adaptive: the floor
    MergePlan mp = {Ni, target, ix + ix[P->dst + a->bk] + o[i]};
    merge_plan_build(&mp, m->act + L->qkv + o[i] * 3 * D + D, 3 * D, m->act + L->s + o[i], Ni, D, c->heads, target,
                     a->mk, c->local_window, a->until, a->thr, m->act + L->mwork + (size_t)tid * P->mwork_stride,
                     ix + P->iwork + (size_t)tid * P->iwork_stride);
    if (a->thr > 0.0f) on[i + 1] = mp.n_out;   // at most Ni: inside the planned room
}

// Sample i's merge by its plan: xmid into xm, sizes and log sizes of the next level.
static void merge_sample(Model *m, void *ctx, size_t i, int tid) {
    const MergeArgs *a = ctx;
    const Plan *P = &m->plan;
    size_t n = P->n, D = m->cfg.dim;
    const BlockLayout *L = &m->bl[a->bk], *Ln = &m->bl[a->bk + 1];
    const size_t *o = m->ix + P->off + a->bk * (n + 1), *on = o + (n + 1);
    MergePlan mp = {o[i + 1] - o[i], on[i + 1] - on[i], m->ix + m->ix[P->dst + a->bk] + o[i]};
    float *sn = m->act + Ln->s;
    merge_forward(a->xm + on[i] * D, sn + on[i], a->xmid + o[i] * D, m->act + L->s + o[i], &mp, D);
    float *logsn = m->act + Ln->logs;
    for (size_t t = on[i]; t < on[i + 1]; t++) logsn[t] = logf(sn[t]);
}

// The merge point of block bk: per sample, plan on this block's keys (the method row's matching:
// MAELRE local while N > the switch threshold, global after; ToMe global) and merge xmid into xm with the
// sizes of the next level; without merging the sizes carry over. Samples plan and merge in
// parallel. Adaptive merging (threshold > 0) sets the next level's offsets from the plans'
// counts between the two passes, then re-plans the blocks after this one (model_plan_tail).
static void merge_point(Model *m, size_t bk, const float *xmid, float *xm) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n;
    const BlockLayout *L = &m->bl[bk], *Ln = &m->bl[bk + 1];
    float *A = m->act;
    size_t *ix = m->ix;
    size_t *on = ix + P->off + (bk + 1) * (n + 1);
    if (!m->merges[bk]) {
        size_t T = ix[P->off + bk * (n + 1) + n];
        memcpy(A + Ln->s, A + L->s, T * sizeof(float));
        memcpy(A + Ln->logs, A + L->logs, T * sizeof(float));
        return;
    }
    const MethodRow *mr = method_row(c->method);
    MergeArgs a = {bk, 0, 0, mr->merge_threshold(c, bk), xmid, xm};
    mr->match(c, &a.mk, &a.until);
    for_each_sample(m, 1, plan_sample, &a);
    if (a.thr > 0.0f) {
        for (size_t i = 0; i < n; i++) on[i + 1] += on[i];
        model_plan_tail(c, m->merges, m->kept, P, ix, bk + 1);
    }
    for_each_sample(m, 1, merge_sample, &a);
}

// The blocks' four linear weights, packed once per forward (the weights may have changed since the
// last one), in parallel; item i is block i / 4's weight i % 4.
static void pack_weight(Model *m, void *ctx, size_t i, int tid) {
    const BlockParams *bp = &m->bp[i / 4];
    size_t D = m->cfg.dim, M = m->cfg.mlp;
    size_t off[4] = {bp->wqkv, bp->wo, bp->w1, bp->w2}, ni[4] = {D, D, D, M}, no[4] = {3 * D, D, M, D};
    linear_pack(m->wt + off[i % 4], m->params + off[i % 4], ni[i % 4], no[i % 4]);
}

// A block's packed weight (NULL when the kernel set does not pack).
static const float *packed(const Model *m, size_t off) { return m->wt ? m->wt + off : NULL; }

// Block bk keeping every activation for backward (the training layout of model_plan_batch).
// With dropout (dk != NULL) the attention output projection, the GELU output and the MLP
// output are dropped before they are used (the saved g is the dropped one, the input of W2).
static void train_block(Model *m, size_t bk, int merged_before, const DropKey *dk) {
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, M = c->mlp;
    const BlockLayout *L = &m->bl[bk], *Ln = &m->bl[bk + 1];
    const BlockParams *bp = &m->bp[bk];
    const size_t *o = m->ix + P->off + bk * (n + 1), *on = o + (n + 1);
    size_t T = o[n];
    float *A = m->act, *p = m->params;
    float *x = A + L->x, *xmid = A + L->xmid, *xm = A + L->xm, *xn = A + Ln->x;
    layernorm_forward(A + L->a, A + L->ln1_m, A + L->ln1_r, x, p + bp->ln1_g, p + bp->ln1_b, T, D, c->ln_eps);
    linear_forward_packed(A + L->qkv, A + L->a, p + bp->wqkv, packed(m, bp->wqkv), p + bp->bqkv, T, D, 3 * D);
    run_samples(m, bk, merged_before, 0, NULL, NULL);
    linear_forward_packed(xmid, A + L->att, p + bp->wo, packed(m, bp->wo), p + bp->bo, T, D, D);
    if (dk) dropout_apply(xmid, xmid, o, n, D, dk, (uint32_t)bk, DROP_ATTN);
    residual_forward(xmid, x, T * D);
    merge_point(m, bk, xmid, xm);
    size_t Tn = on[n];   // after the merge point: adaptive merging decides it there
    layernorm_forward(A + L->c, A + L->ln2_m, A + L->ln2_r, xm, p + bp->ln2_g, p + bp->ln2_b, Tn, D, c->ln_eps);
    linear_forward_packed(A + L->h, A + L->c, p + bp->w1, packed(m, bp->w1), p + bp->b1, Tn, D, M);
    gelu_forward(A + L->g, A + L->h, Tn * M);
    if (dk) dropout_apply(A + L->g, A + L->g, on, n, M, dk, (uint32_t)bk, DROP_GELU);
    linear_forward_packed(xn, A + L->g, p + bp->w2, packed(m, bp->w2), p + bp->b2, Tn, M, D);
    if (dk) dropout_apply(xn, xn, on, n, D, dk, (uint32_t)bk, DROP_MLP);
    residual_forward(xn, xm, Tn * D);
}

// Block bk for inference (model_plan_batch's layout without keep): the residual stream x is updated
// in place; the row-wise ops run a chunk of rows at a time through small per-thread scratch,
// chunks in parallel; a merge writes its output into the other residual region (Ln->x). Every
// element goes through the same operations in the same order as in train_block (x + t == t + x),
// so the logits agree with a forward that keeps activations, while the memory held is QKV and
// the attention output for all tokens plus chunk scratch instead of every activation of every block.
typedef struct { size_t bk, T; int stage; } ChunkArgs;
enum { CHUNK_QKV, CHUNK_OUT, CHUNK_MLP };

// Rows [r, r + chunk) of one stage of block bk on thread slot tid's scratch.
static void infer_chunk(Model *m, void *ctx, size_t ci, int tid) {
    const ChunkArgs *a = ctx;
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t D = c->dim, M = c->mlp, r = ci * P->chunk, nr = a->T - r < P->chunk ? a->T - r : P->chunk;
    const BlockLayout *L = &m->bl[a->bk];
    const BlockParams *bp = &m->bp[a->bk];
    float *A = m->act + (size_t)tid * P->rows_stride, *p = m->params;   // A: this thread's scratch
    float *mean = A + L->ln1_m, *rstd = A + L->ln1_r, *s = A + L->a, *t = A + L->rt, *h = A + L->h;
    if (a->stage == CHUNK_QKV) {
        layernorm_forward(s, mean, rstd, m->act + L->x + r * D, p + bp->ln1_g, p + bp->ln1_b, nr, D, c->ln_eps);
        linear_forward_packed(m->act + L->qkv + r * 3 * D, s, p + bp->wqkv, packed(m, bp->wqkv), p + bp->bqkv, nr, D, 3 * D);
    } else if (a->stage == CHUNK_OUT) {
        linear_forward_packed(t, m->act + L->att + r * D, p + bp->wo, packed(m, bp->wo), p + bp->bo, nr, D, D);
        residual_forward(m->act + L->x + r * D, t, nr * D);   // x becomes xmid in place (L->xmid == L->x)
    } else {
        float *xm = m->act + L->xm + r * D;
        layernorm_forward(s, mean, rstd, xm, p + bp->ln2_g, p + bp->ln2_b, nr, D, c->ln_eps);
        linear_forward_packed(h, s, p + bp->w1, packed(m, bp->w1), p + bp->b1, nr, D, M);
        gelu_forward(h, h, nr * M);
        linear_forward_packed(t, h, p + bp->w2, packed(m, bp->w2), p + bp->b2, nr, M, D);
        residual_forward(xm, t, nr * D);
    }
}

static void infer_block(Model *m, size_t bk, int merged_before) {
    const Plan *P = &m->plan;
    size_t n = P->n, ch = P->chunk;
    const size_t *o = m->ix + P->off + bk * (n + 1), *on = o + (n + 1);
    ChunkArgs a = {bk, o[n], CHUNK_QKV};
    for_each_item(m, (a.T + ch - 1) / ch, (int)P->rows_thr, 1, infer_chunk, &a);
    run_samples(m, bk, merged_before, 0, NULL, NULL);
    a.stage = CHUNK_OUT;
    for_each_item(m, (a.T + ch - 1) / ch, (int)P->rows_thr, 1, infer_chunk, &a);
    merge_point(m, bk, m->act + m->bl[bk].x, m->act + m->bl[bk].xm);  // xm == x when the block does not merge
    a.T = on[n];   // after the merge point: adaptive merging decides it there
    a.stage = CHUNK_MLP;
    for_each_item(m, (a.T + ch - 1) / ch, (int)P->rows_thr, 1, infer_chunk, &a);
}

void model_set_dropout_step(Model *m, uint64_t seed, uint64_t step, const size_t *index) {
    m->drop_seed = seed;
    m->drop_step = step;
    m->drop_index = index;
}

// The dropout key of a training forward/backward; NULL when nothing is dropped.
static const DropKey *drop_key(const Model *m, DropKey *k) {
    if (!m->kept || !(m->cfg.dropout > 0.0f)) return NULL;
    *k = (DropKey){m->drop_seed, m->drop_step, m->drop_index, m->cfg.dropout};
    return k;
}

int model_forward(Model *m, const Batch *b, int keep_for_backward, float *logits,
                  char *err, size_t errlen) {
    const ModelConfig *c = &m->cfg;
    size_t n = b->n, D = c->dim, B = c->blocks;
    if (n == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: empty batch");
    if (c->pairs && n % 2) return mb_fail(err, errlen, MB_ERR_USAGE, "model_forward: a pairs model takes two documents per sample, the batch has %zu documents", n);
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
    int rc = model_plan_batch(c, m->merges, n, len, keep_for_backward, &P, m->bl, NULL);
    if (!rc) rc = model_grow((void **)&m->ix, &m->ix_cap, P.ix_total, sizeof(size_t));
    if (!rc) rc = model_grow((void **)&m->act, &m->act_cap, P.act_total, sizeof(float));
    if (!rc && keep_for_backward) rc = model_grow((void **)&m->gw, &m->gw_cap, P.gw_total, sizeof(float));
    if (!rc && keep_for_backward) rc = model_ensure_grads(m);
    if (!rc) rc = model_plan_batch(c, m->merges, n, len, keep_for_backward, &P, m->bl, m->ix);
    free(len);
    if (rc) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for activations (%zu floats)", P.act_total + P.gw_total);
    if (linear_packs() && !m->wt && !(m->wt = mem_alloc(m->n_params * sizeof(float))))
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for packed weights (%zu floats)", m->n_params);
    if (!linear_packs()) { mem_free(m->wt); m->wt = NULL; }   // the kernel set changed (tests force sets)
    m->plan = P;
    m->kept = keep_for_backward;
    if (m->wt) for_each_item(m, B * 4, (int)P.rows_thr, 1, pack_weight, NULL);
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
    DropKey dks;
    const DropKey *dk = drop_key(m, &dks);
    if (dk) dropout_apply(x0, x0, off0, n, D, dk, 0, DROP_EMBED);
    for (size_t t = 0; t < T0; t++) { A[m->bl[0].s + t] = 1.0f; A[m->bl[0].logs + t] = 0.0f; }

    int merged_before = 0;
    for (size_t bk = 0; bk < B; bk++) {
        for (size_t i = 0; i < n; i++) m->usage.count[ix[P.kind + bk * n + i]]++;
        if (keep_for_backward) train_block(m, bk, merged_before, dk);
        else infer_block(m, bk, merged_before);
        if (m->merges[bk]) merged_before = 1;
    }
    // pool -> LayerNorm -> head
    const BlockLayout *Lf = &m->bl[B];
    const size_t *of = ix + P.off + B * (n + 1);
    pool_forward(A + P.pooled, A + Lf->x, A + Lf->s, of, n, D);
    layernorm_forward(A + P.pln, A + P.lnf_m, A + P.lnf_r, A + P.pooled, p + m->lnf_g, p + m->lnf_b, n, D, c->ln_eps);
    if (c->pairs) {  // two-tower head (SPEC §10.2): e1, e2 are the normalised pooled documents
        pair_combine_forward(A + P.pz, A + P.pln, P.np, D);
        linear_forward(A + P.ph, A + P.pz, p + m->head1_w, p + m->head1_b, P.np, 4 * D, c->mlp);
        relu_forward(A + P.ph, A + P.ph, P.np * c->mlp);
        linear_forward(logits, A + P.ph, p + m->head2_w, p + m->head2_b, P.np, c->mlp, c->classes);
        return MB_OK;
    }
    linear_forward(logits, A + P.pln, p + m->head_w, p + m->head_b, n, D, c->classes);
    return MB_OK;
}

float model_loss(const float *logits, const int32_t *labels, size_t n, size_t classes, float *dlogits) {
    return softmax_ce(logits, labels, n, classes, dlogits);
}

// ---------------------------------------------------------------- backward

typedef struct { size_t bk; float *dxmid; const float *dxm; } UnmergeArgs;
// Sample i's merge backward at block bk: dxm (the merged level) into dxmid (the sample's rows
// written, zeroed first on this thread).
static void unmerge_sample(Model *m, void *ctx, size_t i, int tid) {
    const UnmergeArgs *a = ctx;
    const Plan *P = &m->plan;
    size_t n = P->n, D = m->cfg.dim;
    const BlockLayout *L = &m->bl[a->bk], *Ln = &m->bl[a->bk + 1];
    const size_t *o = m->ix + P->off + a->bk * (n + 1), *on = o + (n + 1);
    MergePlan mp = {o[i + 1] - o[i], on[i + 1] - on[i], m->ix + m->ix[P->dst + a->bk] + o[i]};
    memset(a->dxmid + o[i] * D, 0, mp.n_in * D * sizeof(float));   // merge_backward accumulates
    merge_backward(a->dxmid + o[i] * D, a->dxm + on[i] * D, m->act + L->s + o[i], m->act + Ln->s + on[i], &mp, D);
}

void model_backward(Model *m, const Batch *b, const float *dlogits) {
    if (!m->kept) abort();  // contract: forward with keep_for_backward first
    const ModelConfig *c = &m->cfg;
    const Plan *P = &m->plan;
    size_t n = P->n, D = c->dim, M = c->mlp, B = c->blocks;
    float *A = m->act, *p = m->params, *g = m->grads, *W = m->gw;
    size_t *ix = m->ix;
    const BlockLayout *Lf = &m->bl[B];
    DropKey dks;
    const DropKey *dk = drop_key(m, &dks);   // the forward's masks, regenerated
    const size_t *of = ix + P->off + B * (n + 1);

    float *dpln = W + P->g_dpln, *dpool = W + P->g_dpool;
    ops_zero(dpln, n * D);
    ops_zero(dpool, n * D);
    if (c->pairs) {
        float *dph = W + P->g_dph, *dpre = dph + up(P->np * M), *dpz = W + P->g_dpz;
        ops_zero(dph, 2 * up(P->np * M));
        ops_zero(dpz, P->np * 4 * D);
        linear_backward(dph, g + m->head2_w, g + m->head2_b, dlogits, A + P->ph, p + m->head2_w, P->np, M, c->classes);
        relu_backward(dpre, dph, A + P->ph, P->np * M);  // ReLU ran in place: A + ph is its output
        linear_backward(dpz, g + m->head1_w, g + m->head1_b, dpre, A + P->pz, p + m->head1_w, P->np, 4 * D, M);
        pair_combine_backward(dpln, dpz, A + P->pln, P->np, D);
    } else {
        linear_backward(dpln, g + m->head_w, g + m->head_b, dlogits, A + P->pln, p + m->head_w, n, D, c->classes);
    }
    layernorm_backward(dpool, g + m->lnf_g, g + m->lnf_b, dpln, A + P->pooled, A + P->lnf_m, A + P->lnf_r,
                       p + m->lnf_g, n, D);
    float *dx = W + P->g_dx0, *dother = W + P->g_dx1;
    ops_zero(dx, of[n] * D);
    pool_backward(dx, dpool, A + Lf->s, of, n, D);

    int merged_before_b[64];
    int *mb = B <= 64 ? merged_before_b : malloc(B * sizeof(int));
    if (!mb) abort();
    for (size_t bk = 0, seen = 0; bk < B; bk++) { mb[bk] = (int)seen; if (m->merges[bk]) seen = 1; }

    for (size_t bk = B; bk-- > 0;) {
        const BlockLayout *L = &m->bl[bk];
        const BlockParams *bp = &m->bp[bk];
        const size_t *o = ix + P->off + bk * (n + 1), *on = o + (n + 1);
        size_t T = o[n], Tn = on[n];
        float *dg = W + P->g_dg, *dh = W + P->g_dh, *dc = W + P->g_dc;
        // MLP: dx holds d x_{b+1} (Tn, D), which is also d xm through the residual
        // (buffers a product, GELU's backward or a dropout mask writes whole are not zeroed first)
        if (dk) {   // through the MLP output's mask (dc is free until its own use below)
            dropout_apply(dc, dx, on, n, D, dk, (uint32_t)bk, DROP_MLP);
            linear_backward_fresh(dg, g + bp->w2, g + bp->b2, dc, A + L->g, p + bp->w2, Tn, M, D);
            dropout_apply(dg, dg, on, n, M, dk, (uint32_t)bk, DROP_GELU);
        } else {
            linear_backward_fresh(dg, g + bp->w2, g + bp->b2, dx, A + L->g, p + bp->w2, Tn, M, D);
        }
        gelu_backward(dh, dg, A + L->h, Tn * M);
        linear_backward_fresh(dc, g + bp->w1, g + bp->b1, dh, A + L->c, p + bp->w1, Tn, D, M);
        layernorm_backward(dx, g + bp->ln2_g, g + bp->ln2_b, dc, A + L->xm, A + L->ln2_m, A + L->ln2_r,
                           p + bp->ln2_g, Tn, D);
        // merge point
        float *dxmid = dx;
        if (m->merges[bk]) {
            UnmergeArgs ua = {bk, dother, dx};
            for_each_sample(m, 1, unmerge_sample, &ua);
            dxmid = dother;
            dother = dx;
        }
        // attention
        float *datt = W + P->g_datt, *dqkv = W + P->g_dqkv, *da = W + P->g_da;
        if (dk) {   // through the attention output's mask (da is free until its own use below)
            dropout_apply(da, dxmid, o, n, D, dk, (uint32_t)bk, DROP_ATTN);
            linear_backward_fresh(datt, g + bp->wo, g + bp->bo, da, A + L->att, p + bp->wo, T, D, D);
        } else {
            linear_backward_fresh(datt, g + bp->wo, g + bp->bo, dxmid, A + L->att, p + bp->wo, T, D, D);
        }
        run_samples(m, bk, mb[bk], 1, datt, dqkv);
        linear_backward_fresh(da, g + bp->wqkv, g + bp->bqkv, dqkv, A + L->a, p + bp->wqkv, T, D, 3 * D);
        layernorm_backward(dxmid, g + bp->ln1_g, g + bp->ln1_b, da, A + L->x, A + L->ln1_m, A + L->ln1_r,
                           p + bp->ln1_g, T, D);
        dx = dxmid;  // now d x_b
    }
    if (mb != merged_before_b) free(mb);
    const size_t *off0 = ix + P->off;
    if (dk) dropout_apply(dx, dx, off0, n, D, dk, 0, DROP_EMBED);
    pos_embed_backward(g + m->pos, dx, off0, n, D);
    if (c->vocab) embed_tokens_backward(g + m->tok_emb, dx, b->ids, off0[n], D);
    else linear_backward(NULL, g + m->patch_w, g + m->patch_b, dx, b->feats, p + m->patch_w, off0[n], c->feat_dim, D);
}
