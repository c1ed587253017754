// Attention kind "softmax": exact softmax attention with proportional attention (log s_j),
// core/attn_softmax.c (tiled, the default) or core/attn_softmax_dense.c (dense, P kept as
// PyTorch autograd keeps it), chosen by ModelConfig.softmax_impl: the same function and FLOP
// count, different memory. No parameters, no buffers.
#include "core/attention.h"
#include "core/attn_kind.h"

static int dense(const ModelConfig *c) { return c->softmax_impl == SOFTMAX_DENSE; }

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) {
    return dense(c) ? attn_softmax_dense_save_floats(N, D, H) : attn_softmax_save_floats(N, D, H);
}

// Inference holds the tiled kernel's statistics, a row block and the packed K^T, V (less than
// training on the fused path); dense holds P, as PyTorch does.
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) {
    return dense(c) ? attn_softmax_dense_save_floats(N, D, H) : attn_softmax_infer_save_floats(N, D, H);
}

static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) {
    return dense(c) ? attn_softmax_dense_work_floats(N) : attn_softmax_work_floats(N);
}

static void forward(float *out, float *save, const AttnCall *a) {
    if (dense(a->cfg)) attn_softmax_dense_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
    else attn_softmax_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    if (dense(a->cfg)) attn_softmax_dense_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
    else attn_softmax_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    if (dense(a->cfg))
        attn_softmax_dense_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, work);
    else
        attn_softmax_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, work);
}


const AttnKindRow attn_kind_softmax = {
    .name = "softmax",
    .description = "exact softmax attention, softmax(Q K^T / sqrt(d) + log s) V (tiled or dense)",
    .proportional = 1,
    .shared_grads = 0,
    .check = attn_kind_check_nothing,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
