// Attention kind "local": sliding-window exact softmax, token i sees keys j with
// i - w/2 < j <= i + w/2, w = local_attn_window (SPEC §9.4, core/attn_local.c), with + log s_j
// (proportional attention). With w >= 2N it is `softmax`. No parameters, no buffers; the
// kernel's save is 2 H N floats plus one score block, so nothing is O(N w) or O(N^2).
#include "core/attn_kind.h"
#include "core/attn_local.h"
#include "core/status.h"

static size_t w_of(const ModelConfig *c) { return c->local_attn_window; }

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_local_save_floats(N, D, H, w_of(c)); }
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_local_infer_work_floats(N, D, H, w_of(c)); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_local_work_floats(N, D, H, w_of(c)); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_local_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, w_of(a->cfg));
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    attn_local_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, w_of(a->cfg));
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    attn_local_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H,
                           w_of(a->cfg), work);
}

static int check(const ModelConfig *c, char *err, size_t errlen) {
    if (c->local_attn_window < 2)
        return mb_fail(err, errlen, MB_ERR_USAGE, "model config: local_attn_window %zu must be >= 2 (the window is "
                       "i - w/2 < j <= i + w/2)", c->local_attn_window);
    return MB_OK;
}


const AttnKindRow attn_kind_local = {
    .name = "local",
    .description = "sliding-window softmax, i - w/2 < j <= i + w/2 (w = local_attn_window): O(N w)",
    .proportional = 1,
    .shared_grads = 0,
    .check = check,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
