// Batch planning: per-block token counts, each sample's attention kind (the method table),
// merge flags and the arena layouts, all from the sample lengths before any math runs (fixed
// merge targets depend only on N). Memory: activations live in one float arena and one size_t
// arena, backward scratch in a third; model_bytes_needed runs the same planner, so its answer
// is what forward/backward would hold.
//
// Adaptive merging (a method row's threshold > 0) leaves a data-dependent count: the plan then
// holds room for every token surviving (the count entering the block), and for the later blocks
// room for the largest of the method's kinds at those bounds (kinds switch with N; each kind's
// sizes grow with N). Once the merge point has run, model_plan_tail rewrites the later levels'
// offsets, kinds and save offsets from the real counts, inside that room: nothing moves that
// an earlier block wrote, and the arenas never grow mid-forward.
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "core/merge.h"
#include "core/model_internal.h"
#include "core/ops.h"
#include "core/status.h"
#include "core/threads.h"

#define up model_up

// Rows per chunk of inference's row-wise ops: chunks run in parallel, one per thread, each
// through LN -> product -> ... in its own scratch; 256 rows keep a chunk's scratch (~260 KiB at
// D = 64, M = 128) in L2 while the products stay wide enough for the kernels.
static size_t row_chunk(size_t t_max) { return t_max < 256 ? (t_max ? t_max : 1) : 256; }

// Tokens leaving block b for a sample entering it with n: the method's target; with adaptive
// merging n itself, the most the keys can leave.
static size_t level_count(const ModelConfig *c, const MethodRow *mr, const uint8_t *merges, size_t b, size_t n) {
    if (!merges[b]) return n;
    return mr->merge_threshold(c, b) > 0.0f ? n : mr->merge_target(c, b, n);
}

enum { ROOM_SAVE, ROOM_INFER, ROOM_WORK };
static size_t kind_floats(const AttnKindRow *kr, const ModelConfig *c, int what, size_t N) {
    size_t D = c->dim, H = c->heads;
    return what == ROOM_SAVE ? kr->save_floats(c, N, D, H) : what == ROOM_INFER ? kr->infer_floats(c, N, D, H)
                                                           : kr->work_floats(c, N, D, H);
}
// Floats block b's attention needs for a sample of N tokens; when N is only a bound (bound = 1),
// the largest over the kinds the method may run.
static size_t kind_room(const ModelConfig *c, const MethodRow *mr, size_t b, size_t N, int bound, int what) {
    if (!bound) return kind_floats(attn_kind(mr->kind(c, b, N)), c, what, N);
    size_t most = 0;
    unsigned used = mr->kinds_used(c);
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        if (!(used >> k & 1u)) continue;
        size_t f = kind_floats(attn_kind((AttnKind)k), c, what, N);
        most = f > most ? f : most;
    }
    return most;
}

int model_plan_batch(const ModelConfig *c, const uint8_t *merges, size_t n, const size_t *len,
                     int keep, Plan *P, BlockLayout *bl, size_t *ix) {
    const MethodRow *mr = method_row(c->method);
    size_t B = c->blocks, D = c->dim, H = c->heads, M = c->mlp;
    size_t nthr = (size_t)(threads_get() > 0 ? threads_get() : 1), rows_thr = nthr;
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
            o2[i + 1] = o2[i] + level_count(c, mr, merges, b, Ni);
        }
        if (merges[b]) { dsto[b] = xo; xo += o[n]; } else dsto[b] = NONE;
    }
    // merge planner work: one slot per thread (samples plan in parallel at a merge point)
    P->iwork_stride = merge_plan_work_sizes(n_max);
    P->iwork = xo; xo += P->iwork_stride * nthr;
    P->mwork_stride = up(merge_plan_work_floats(n_max, D, H));
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
    if (c->pairs) {  // two-tower head: documents 2i, 2i+1 are pair i
        P->np = n / 2;
        P->pz = fo; fo += up(P->np * 4 * D);
        P->ph = fo; fo += up(P->np * M);
    }
    size_t temp_base = fo, temp_end = fo, work_max = 0, any_merge = 0;
    for (size_t b = 0; b < B; b++) any_merge |= merges[b];
    size_t chunk = row_chunk(t_max), qkv0 = 0, att0 = 0, rows0 = 0;
    if (!keep) {
        // Inference temporaries, shared by every block: QKV and the attention output for all
        // tokens (attention needs every key), the merge planner's work over the attention
        // output (dead once W_o has read it), and the row-wise ops' scratch for one chunk of
        // `chunk` rows per thread (LN1 -> QKV, W_o -> residual, LN2 -> MLP -> residual run a chunk
        // at a time, chunks in parallel).
        size_t mw = any_merge ? P->mwork_stride * nthr : 0;
        qkv0 = fo;  fo += up(t_max * 3 * D);
        att0 = fo;  fo += up(t_max * D) > mw ? up(t_max * D) : mw;
        rows0 = fo; fo += rows_thr * (2 * up(chunk) + 2 * up(chunk * D) + up(chunk * M));   // per thread
        temp_base = temp_end = fo;
    }
    int bound = 0;   // level b's counts are upper bounds (an adaptive merge before it)
    for (size_t b = 0; b < B; b++) {
        size_t *o = off + b * (n + 1);
        size_t T = o[n], Tn = off[(b + 1) * (n + 1) + n];
        BlockLayout *L = &bl[b];
        if (b > 0 && merges[b - 1] && mr->merge_threshold(c, b - 1) > 0.0f) bound = 1;
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
            if (merges[b]) fo += P->mwork_stride * nthr;
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
            AttnKind k = mr->kind(c, b, Ni);
            // What backward reads when training; in inference only what the inference form holds.
            size_t sf = up(kind_room(c, mr, b, Ni, bound, keep ? ROOM_SAVE : ROOM_INFER));
            if (ix) { ix[P->kind + b * n + i] = (size_t)k; }
            if (keep) {
                size_t w = kind_room(c, mr, b, Ni, bound, ROOM_WORK);
                if (w > work_max) work_max = w;
            }
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
    P->work_max = work_max;
    P->nthr = nthr;
    P->chunk = chunk;
    P->rows_thr = rows_thr;
    P->rows_stride = 2 * up(chunk) + 2 * up(chunk * D) + up(chunk * M);
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
        P->g_work = go;  go += up(work_max) * nthr;  // largest attention backward scratch, per thread
        P->g_dpool = go; go += up(n * D);
        P->g_dpln = go;  go += up(n * D);
        if (c->pairs) {
            P->g_dpz = go; go += up(P->np * 4 * D);
            P->g_dph = go; go += 2 * up(P->np * M);   // d ReLU output, then d head1 output
        }
        P->gw_total = go;
    }
    free(cnt);
    return MB_OK;
}

void model_plan_tail(const ModelConfig *c, const uint8_t *merges, int keep, const Plan *P, size_t *ix, size_t level) {
    const MethodRow *mr = method_row(c->method);
    size_t n = P->n;
    for (size_t b = level; b < P->blocks; b++) {
        const size_t *o = ix + P->off + b * (n + 1);
        size_t *o2 = ix + P->off + (b + 1) * (n + 1);
        size_t at = ix[P->save + b * n];   // the block's save room starts at sample 0's
        o2[0] = 0;
        for (size_t i = 0; i < n; i++) {
            size_t Ni = o[i + 1] - o[i];
            AttnKind k = mr->kind(c, b, Ni);
            ix[P->kind + b * n + i] = (size_t)k;
            if (keep) {   // samples' saves back to back (inference: one shared region per block)
                ix[P->save + b * n + i] = at;
                at += up(attn_kind(k)->save_floats(c, Ni, c->dim, c->heads));
            }
            o2[i + 1] = o2[i] + level_count(c, mr, merges, b, Ni);
        }
    }
}

size_t model_bytes_needed(const ModelConfig *c, size_t n_tokens, int training) {
    size_t nb, nbt;
    size_t np = model_layout(c, NULL, &nb);
    size_t bytes = sizeof(Model) + model_count_tensors(c, &nbt) * sizeof(Tensor) + (nbt ? nbt : 1) * sizeof(Tensor)
                 + c->blocks * (sizeof(BlockParams) + 1) + (c->blocks + 1) * sizeof(BlockLayout);
    bytes += np * (sizeof(float) + 1) + nb * sizeof(float);  // params, decay mask, buffers
    if (training) bytes += 3 * np * sizeof(float);          // grads, AdamW moments
    if (linear_packs()) bytes += np * sizeof(float);        // packed weights (model_forward)
    uint8_t *merges = malloc(c->blocks ? c->blocks : 1);
    BlockLayout *bl = malloc((c->blocks + 1) * sizeof *bl);
    if (!merges || !bl) { free(merges); free(bl); return (size_t)-1; }
    const MethodRow *mr = method_row(c->method);
    for (size_t b = 0; b < c->blocks; b++) merges[b] = mr->merges(c, b) ? 1 : 0;
    Plan P;
    if (n_tokens == 0) n_tokens = 1;
    size_t lens[2] = {n_tokens, n_tokens};   // pairs: one pair is two documents
    if (model_plan_batch(c, merges, c->pairs ? 2 : 1, lens, training, &P, bl, NULL) != MB_OK) bytes = (size_t)-1;
    else bytes += (P.act_total + P.gw_total) * sizeof(float) + P.ix_total * sizeof(size_t);
    free(merges);
    free(bl);
    return bytes;
}

int model_grow(void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap && *buf) return MB_OK;
    mem_free(*buf);
    *buf = mem_alloc((need ? need : 1) * elem);
    *cap = *buf ? need : 0;
    return *buf ? MB_OK : MB_ERR_NOMEM;
}
