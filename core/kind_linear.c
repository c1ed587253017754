// Attention kind "linear": Katharopoulos et al.'s linear attention, phi = elu + 1 on the raw q,
// k, key j weighted by its size s_j (core/attn_linear.c, SPEC §9.3). Linear in N. Inference runs
// the chunked form, whose workspace is bounded independently of N. No parameters, no buffers.
#include "core/attn_kind.h"
#include "core/attn_linear.h"

static size_t save_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_linear_save_floats(N, D, H); }
static size_t infer_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_linear_infer_work_floats(N, D, H); }
static size_t work_floats(const ModelConfig *c, size_t N, size_t D, size_t H) { return attn_linear_work_floats(N, D, H); }

static void forward(float *out, float *save, const AttnCall *a) {
    attn_linear_forward(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void forward_infer(float *out, float *save, const AttnCall *a) {
    attn_linear_forward_infer(out, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H);
}

static void backward(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a) {
    attn_linear_backward_ws(dq, dk, dv, dout, save, a->q, a->k, a->v, a->ld, a->log_s, a->N, a->D, a->H, work);
}


const AttnKindRow attn_kind_linear = {
    .name = "linear",
    .description = "linear attention (Katharopoulos et al.), elu+1 features, normalised: linear in N",
    .proportional = 1,
    .shared_grads = 0,
    .check = attn_kind_check_nothing,
    .params = attn_kind_no_tensors, .init_params = attn_kind_init_nothing,
    .buffers = attn_kind_no_tensors, .init_buffers = attn_kind_init_nothing,
    .save_floats = save_floats, .infer_floats = infer_floats, .work_floats = work_floats,
    .forward = forward, .forward_infer = forward_infer, .backward = backward,
};
