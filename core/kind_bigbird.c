// Attention kind "bigbird": block-sparse exact softmax, ITC form (SPEC §9.5, core/attn_bigbird.c):
// blocks of b = bigbird_block tokens; query block i sees key blocks i-1, i, i+1, the first and
// the last, and r = bigbird_random random blocks; the first and last query blocks see every key;
// with N <= (5 + r) b it is `softmax`. Takes + log s_j (proportional attention).
//
// The random blocks are one non-trainable buffer per layer, "bigbird_table" (H, M, r) with
// M = ceil(max_len / b), drawn by attn_bigbird_draw_table from the block's buffer stream and
// saved in checkpoints. The kernels take int32 entries; the buffer is float, so it holds them as
// float values: block indices in [-1, M) are integers far below 2^24, exactly representable.
// Each call converts them back into int32 in the tail of its save (training: backward reads the
// same table from there) or of its inference workspace: H M r extra floats per sample.
#include <math.h>
#include <string.h>
#include "core/attn_bigbird.h"
#include "core/attn_kind.h"
#include "core/status.h"

static size_t blk(const ModelConfig *c) { return c->bigbird_block; }
static size_t rnd(const ModelConfig *c) { return c->bigbird_random; }
static size_t M_of(const ModelConfig *c) { return (c->max_len + blk(c) - 1) / blk(c); }
static size_t table_floats(const ModelConfig *c) { return c->heads * M_of(c) * rnd(c); }

static size_t buffers(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]) {
    out[0] = (AttnTensorSpec){"bigbird_table", table_floats(c), 0};
    return 1;
}

// One table per head from the block's stream, head after head: drawn as int32 into the
// buffer's own memory (4 bytes each), then rewritten in place as float values.
static void init_buffers(const ModelConfig *c, float *const *buf, uint64_t *rng) {
    size_t M = M_of(c), r = rnd(c);
    for (size_t h = 0; h < c->heads; h++) {
        float *f = buf[0] + h * M * r;
        attn_bigbird_draw_table((int32_t *)(void *)f, rng, M, r);
        for (size_t i = 0; i < M * r; i++) {
            int32_t v;
            memcpy(&v, f + i, sizeof v);
            f[i] = (float)v;
        }
    }
}

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) {
    return attn_bigbird_save_floats(N, D, H, blk(c)) + table_floats(c);
}
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) {
    return attn_bigbird_infer_work_floats(N, D, H, blk(c)) + table_floats(c);
}
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_bigbird_work_floats(N, D, H, blk(c)); }

// The int32 table at the tail of a save/workspace of `head` floats.
static int32_t *table_at(float *region, size_t head) { return (int32_t *)(void *)(region + head); }

static const int32_t *table_in(float *region, size_t head, const AttnCall *a) {
    int32_t *t = table_at(region, head);
    size_t n = table_floats(a->cfg);
    for (size_t i = 0; i < n; i++) t[i] = (int32_t)a->buf[0][i];
    return t;
}

static void forward(float *out, float *save, const AttnCall *a) {
    const ModelConfig *c = a->cfg;
    const int32_t *t = table_in(save, attn_bigbird_save_floats(a->N, a->D, a->H, blk(c)), a);
    attn_bigbird_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, t, M_of(c), a->N, a->D, a->H, blk(c), rnd(c));
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    const ModelConfig *c = a->cfg;
    const int32_t *t = table_in(save, attn_bigbird_infer_work_floats(a->N, a->D, a->H, blk(c)), a);
    attn_bigbird_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, t, M_of(c), a->N, a->D, a->H, blk(c), rnd(c));
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    const ModelConfig *c = a->cfg;
    const int32_t *t = (const int32_t *)(const void *)(save + attn_bigbird_save_floats(a->N, a->D, a->H, blk(c)));
    attn_bigbird_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, t, M_of(c), a->N, a->D,
                             a->H, blk(c), rnd(c), work);
}

static int check(const ModelConfig *c, char *err, size_t errlen) {
    if (c->bigbird_block == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: bigbird_block must be > 0");
    if (c->bigbird_random == 0)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: bigbird_random must be > 0 (random blocks per query block)");
    size_t M = M_of(c);
    // the table draw keeps M candidates on the stack; entries stay exact as floats (< 2^24)
    if (M > 65536)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: bigbird needs ceil(max_len / bigbird_block) = %zu <= 65536 blocks", M);
    return MB_OK;
}


const AttnKindRow attn_kind_bigbird = {
    .name = "bigbird",
    .description = "BigBird ITC block-sparse softmax: window, global and r random blocks of b tokens: O(N b)",
    .proportional = 1,
    .shared_grads = 0,
    .check = check,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = buffers, .init_buffers = init_buffers,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
