// Attention kind "linformer": softmax(Q (E K)^T / sqrt(d)) (F V) with learned per-layer
// projections E, F of (linformer_k, max_len), shared by the heads, only the first N columns
// used (core/attn_linformer.c). With linformer_share_ef one tensor E serves as both. Does not
// take log s (no proportional attention), so it never runs after merging. Backward
// accumulates into the layer's dE, dF, which all samples share.
#include <math.h>
#include "core/attention.h"
#include "core/attn_kind.h"
#include "core/rng.h"
#include "core/status.h"

static size_t kp(const ModelConfig *c) { return c->linformer_k; }

static size_t params(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]) {
    out[0] = (AttnTensorSpec){"E", c->linformer_k * c->max_len, 1};
    if (c->linformer_share_ef) return 1;
    out[1] = (AttnTensorSpec){"F", c->linformer_k * c->max_len, 1};
    return 2;
}

// Xavier normal: std sqrt(2 / (k + max_len)); E first, then F.
static void init_params(const ModelConfig *c, float *const *par, uint64_t *rng) {
    AttnTensorSpec t[ATTN_MAX_TENSORS];
    size_t nt = params(c, t);
    double std = sqrt(2.0 / (double)(c->linformer_k + c->max_len));
    for (size_t j = 0; j < nt; j++)
        for (size_t i = 0; i < t[j].count; i++) par[j][i] = (float)std * rng_normal(rng);
}

static const float *E_of(const AttnCall *a) { return a->par[0]; }
static const float *F_of(const AttnCall *a) { return a->cfg->linformer_share_ef ? a->par[0] : a->par[1]; }

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_linformer_save_floats(N, D, H, kp(c)); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_linformer_work_floats(N, D, H, kp(c)); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_linformer_forward(out, save, a->q, a->k, a->v, a->ld, E_of(a), F_of(a), a->cfg->max_len, kp(a->cfg),
                           a->N, a->D, a->H);
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    float *dE = dpar[0], *dF = a->cfg->linformer_share_ef ? dpar[0] : dpar[1];
    attn_linformer_backward_ws(dq, dk, dv, dE, dF, dout, save, a->q, a->k, a->v, a->ld, E_of(a), F_of(a),
                               a->cfg->max_len, kp(a->cfg), a->N, a->D, a->H, work);
}

static int check(const ModelConfig *c, char *err, size_t errlen) {
    if (c->linformer_k == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "model config: linformer_k must be > 0");
    return MB_OK;
}


const AttnKindRow attn_kind_linformer = {
    .name = "linformer",
    .description = "Linformer: keys and values projected to k rows by learned per-layer E, F, then softmax",
    .proportional = 0,
    .shared_grads = 1,
    .check = check,
    .params = params, .init_params = init_params,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    // The kernel keeps nothing beyond what its forward needs, so inference holds the same save.
    .save_floats = save_floats, .infer_floats = save_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward, .backward = backward,
};
