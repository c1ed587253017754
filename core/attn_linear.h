// Linear attention (Katharopoulos et al. 2020), SPEC §9.3: per sample, per head (d = D/H)
//   phi(x) = elu(x) + 1 on the raw q, k (no scaling)
//   out_i = phi(q_i) (sum_j s_j phi(k_j) v_j^T) / (phi(q_i) . sum_j s_j phi(k_j) + 1e-6)
// with sizes s_j = exp(log_s_j) (log_s NULL: all sizes 1). Cost O(N d^2), memory O(N d + d^2).
// Conventions as core/attention.h: q, k, v row-major with row stride ld (3 D for a fused QKV
// projection), head h in columns [h d, (h+1) d); out (N, D) stride D; backward accumulates (+=)
// into dq, dk, dv (stride ld); save is forward's output read by backward; every call counts its
// FLOPs through core/flops.h. Not wired into the model here (that is the attention-kind table).
#ifndef MAELRE_ATTN_LINEAR_H
#define MAELRE_ATTN_LINEAR_H
#include <stddef.h>

// Training forward: save holds attn_linear_save_floats() floats for backward.
size_t attn_linear_save_floats(size_t N, size_t D, size_t H);
void attn_linear_forward(float *out, float *save, const float *q, const float *k, const float *v,
                         size_t ld, const float *log_s, size_t N, size_t D, size_t H);
// Backward with caller scratch of attn_linear_work_floats() floats (contents on entry ignored).
size_t attn_linear_work_floats(size_t N, size_t D, size_t H);
void attn_linear_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                             const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H, float *work);
// Inference form: the same output as attn_linear_forward (to ~1e-6 relative: the context is
// accumulated chunk by chunk) and the same FLOP count, keeping nothing for backward. work is
// scratch of attn_linear_infer_work_floats() floats, bounded independently of N (one head's
// d x d context, d sums and one chunk of at most 256 rows); contents on entry ignored.
size_t attn_linear_infer_work_floats(size_t N, size_t D, size_t H);
void attn_linear_forward_infer(float *out, float *work, const float *q, const float *k,
                               const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                               size_t H);
// Plain reference kernels (loops, no BLAS, double accumulation, O(d^2) heap): the tests' oracle.
// They count no FLOPs. backward_ref accumulates (+=) like the fast one.
void attn_linear_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H);
void attn_linear_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, size_t ld, const float *log_s,
                              size_t N, size_t D, size_t H);

#endif
