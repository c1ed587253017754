// Attention kind "performer": FAVOR+ with positive orthogonal random features (core/
// attn_performer.c, SPEC §9.1). Owns one per-layer BUFFER "W" (performer_features x d, d = D/H),
// shared by the heads: drawn once from the model seed (attn_performer_draw_features), saved in
// checkpoints, never trained (no gradient; the stabilisers c are held constant in backward).
// Keys carry their sizes s_j, so it may serve in MAELRE's coarse stages. Linear in N.
#include <math.h>
#include "core/attn_kind.h"
#include "core/attn_performer.h"
#include "core/status.h"

static size_t fm(const ModelConfig *c) { return c->performer_features; }

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_performer_save_floats(N, D, H, fm(c)); }
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_performer_infer_work_floats(N, D, H, fm(c)); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_performer_work_floats(N, D, H, fm(c)); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_performer_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->buf[0], fm(a->cfg), a->N, a->D, a->H);
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    attn_performer_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->buf[0], fm(a->cfg), a->N, a->D, a->H);
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    attn_performer_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->buf[0], fm(a->cfg),
                               a->N, a->D, a->H, work);
}

static int check(const ModelConfig *c, char *err, size_t errlen) {
    if (c->performer_features == 0)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: performer_features must be > 0");
    if (c->performer_features > 65536)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: performer_features %zu is above 65536", c->performer_features);
    return MB_OK;
}


static size_t buffers(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]) {
    out[0] = (AttnTensorSpec){"W", c->performer_features * (c->dim / c->heads), 0};
    return 1;
}

// W from the layer's own stream. The draw's only failure is its d x d scratch allocation; the
// row cannot report it (init_buffers returns nothing), so W is then filled with NaN: every
// output of the model turns NaN (loudly wrong, never silently plausible).
static void init_buffers(const ModelConfig *c, float *const *buf, uint64_t *rng) {
    size_t m = c->performer_features, d = c->dim / c->heads;
    if (attn_performer_draw_features(buf[0], m, d, rng))
        for (size_t i = 0; i < m * d; i++) buf[0][i] = NAN;
}

const AttnKindRow attn_kind_performer = {
    .name = "performer",
    .description = "Performer (FAVOR+): positive orthogonal random features estimate the softmax kernel: linear in N",
    .proportional = 1,
    .shared_grads = 0,
    .check = check,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = buffers, .init_buffers = init_buffers,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
