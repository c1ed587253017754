// Attention kind "efficient": Shen et al.'s efficient attention rho_q(Q) (rho_k(K)^T V) with
// log s_j added before the key softmax (core/attn_efficient.c). Linear in N. Inference runs the
// chunked form, whose workspace is bounded independently of N. No parameters, no buffers.
#include "core/attention.h"
#include "core/attn_kind.h"

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_efficient_save_floats(N, D, H); }
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_efficient_infer_work_floats(N, D, H); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_efficient_work_floats(N, D, H); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_efficient_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    attn_efficient_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    attn_efficient_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, work);
}


const AttnKindRow attn_kind_efficient = {
    .name = "efficient",
    .description = "efficient attention (Shen et al.), rho_q(Q) (rho_k(K + log s)^T V): linear in N",
    .proportional = 1,
    .shared_grads = 0,
    .check = attn_kind_check_nothing,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
