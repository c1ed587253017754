// Attention kind "nystromformer": landmark (segment-mean) Nyström approximation of softmax
// attention with the iterative pseudo-inverse and a depthwise convolution skip over V
// (core/attn_nystrom.c, SPEC §9.2); exact softmax when N <= nystrom_landmarks. Keys carry their
// sizes in B = softmax(Q~ k'^T + log s), so it takes proportional attention.
// Parameter: the per-layer convolution kernel "conv" (H x nystrom_conv, one kernel per head
// shared by its d channels), present only when nystrom_conv > 0. Initialised like PyTorch's
// Conv2d default (kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in
// = kc for a depthwise kernel). Not weight-decayed: it is not the weight of a linear map of the
// features (the rule of core/model.h), it is a per-head smoothing filter along the tokens.
// Backward accumulates into the layer's dconv, which every sample shares.
#include <math.h>
#include "core/attn_kind.h"
#include "core/attn_nystrom.h"
#include "core/rng.h"
#include "core/status.h"

static size_t lm(const ModelConfig *c) { return c->nystrom_landmarks; }
static size_t kc(const ModelConfig *c) { return c->nystrom_conv; }

static size_t params(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]) {
    if (kc(c) == 0) return 0;
    out[0] = (AttnTensorSpec){"conv", c->heads * kc(c), 0};
    return 1;
}

static void init_params(const ModelConfig *c, float *const *par, uint64_t *rng) {
    if (kc(c) == 0) return;
    double bound = 1.0 / sqrt((double)kc(c));
    for (size_t i = 0; i < c->heads * kc(c); i++) par[0][i] = (float)(bound * (2.0 * rng_uniform(rng) - 1.0));
}

static const float *conv_of(const AttnCall *a) { return kc(a->cfg) ? a->par[0] : NULL; }

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_nystrom_save_floats(N, D, H, lm(c)); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_nystrom_work_floats(N, D, H, lm(c)); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_nystrom_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, conv_of(a), kc(a->cfg), a->N, a->D, a->H, lm(a->cfg));
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    attn_nystrom_backward_ws(dq, dk, dv, kc(a->cfg) ? dpar[0] : NULL, dout, save, a->q, a->k, a->v, a->ld, a->log_s,
                             conv_of(a), kc(a->cfg), a->N, a->D, a->H, lm(a->cfg), work);
}

static int check(const ModelConfig *c, char *err, size_t errlen) {
    if (c->nystrom_landmarks == 0)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: nystrom_landmarks must be > 0");
    if (c->nystrom_conv > 1024)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: nystrom_conv %zu is above 1024 taps (0 turns the skip off)", c->nystrom_conv);
    return MB_OK;
}


const AttnKindRow attn_kind_nystrom = {
    .name = "nystromformer",
    .description = "Nystromformer: segment-mean landmarks, iterative pseudo-inverse, depthwise conv skip: linear in N",
    .proportional = 1,
    .shared_grads = 1,
    .check = check,
    .params = params, .init_params = init_params,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    // The kernel keeps only what its forward computes, so inference holds the same save.
    .save_floats = save_floats, .infer_floats = save_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward, .backward = backward,
};
