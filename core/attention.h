// Per-sample multi-head attention kinds (SPEC §3). Every function works on ONE sample of
// N tokens. q, k, v are row-major with row stride ld (ld = 3*D when they come from a fused
// QKV projection); head h uses columns [h*d, (h+1)*d), d = D/H. out is (N, D), stride D.
// Backward ACCUMULATES (+=) into dq, dk, dv (same stride ld) and into weight grads.
// `save` is a caller-provided buffer of *_save_floats() floats filled by forward and read
// by backward. log_s is the per-token log size (proportional attention) or NULL (all sizes 1).
// Every op counts its FLOPs via core/flops.h. Plain reference kernels stay beside fast ones.
#ifndef MAELRE_ATTENTION_H
#define MAELRE_ATTENTION_H
#include <stddef.h>

// softmax(Q K^T / sqrt(d) + log s_j) V                               -- core/attn_softmax.c
size_t attn_softmax_save_floats(size_t N, size_t D, size_t H);
void attn_softmax_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, size_t N, size_t D, size_t H);
void attn_softmax_backward(float *dq, float *dk, float *dv, const float *dout, const float *save,
                           const float *q, const float *k, const float *v, size_t ld,
                           const float *log_s, size_t N, size_t D, size_t H);
// The same backward with caller-provided scratch of attn_softmax_work_floats(N) floats (the
// plain one allocates it through core/mem.h per call).
size_t attn_softmax_work_floats(size_t N);
void attn_softmax_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                              const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H, float *work);
// Plain reference kernels (triple loops, no BLAS, double accumulation): the tests' oracle.
void attn_softmax_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H);
void attn_softmax_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, size_t ld, const float *log_s,
                               size_t N, size_t D, size_t H);
// Forward only (no backward will read save): the same output bit for bit, but save keeps only
// what forward reads, 2 D pad_n(N) floats fewer on the fused d = 32 path (pad_n: N rounded up
// to 64); elsewhere as large as attn_softmax_save_floats. Not valid input to backward.
size_t attn_softmax_infer_save_floats(size_t N, size_t D, size_t H);
void attn_softmax_forward_infer(float *out, float *save, const float *q, const float *k,
                                const float *v, size_t ld, const float *log_s, size_t N,
                                size_t D, size_t H);
// The row softmax both softmax kernels use, in place on nr rows of width N (row stride lds):
// S_ij + log_s_j (log_s may be NULL), max-subtracted; row max and 1/sum to mx, inv when non-NULL;
// par: may open an OpenMP region over rows.
void attn_softmax_rows(float *S, size_t lds, float *mx, float *inv, const float *log_s, size_t nr,
                       size_t N, int par);
// Their softmax backward, in place on nr rows: dS = P * (dP - rowsum(P * dP)), dS holding dP.
void attn_softmax_ds_rows(float *dS, const float *P, size_t lds, size_t nr, size_t N);

// The same softmax attention, textbook ("dense") form: S and P of every head materialised,
// P (H, N, N) kept in save for backward as autograd keeps it; backward scratch work is one
// head's dP (N, N). Same FLOP count as the tiled kernel above (the default). -- core/attn_softmax_dense.c
size_t attn_softmax_dense_save_floats(size_t N, size_t D, size_t H);  // H N N
void attn_softmax_dense_forward(float *out, float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, size_t N, size_t D, size_t H);
size_t attn_softmax_dense_work_floats(size_t N);                        // N N
void attn_softmax_dense_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                                    const float *q, const float *k, const float *v, size_t ld,
                                    const float *log_s, size_t N, size_t D, size_t H, float *work);

// rho_q(Q) (rho_k(K)^T V): rho_q softmax over the d features of each query row, rho_k
// softmax over the N tokens of each key column with + log s_j added first.  -- core/attn_efficient.c
size_t attn_efficient_save_floats(size_t N, size_t D, size_t H);
void attn_efficient_forward(float *out, float *save, const float *q, const float *k, const float *v,
                            size_t ld, const float *log_s, size_t N, size_t D, size_t H);
void attn_efficient_backward(float *dq, float *dk, float *dv, const float *dout, const float *save,
                             const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H);
// The same backward with caller-provided scratch of attn_efficient_work_floats() floats (the
// plain one allocates it through core/mem.h per call).
size_t attn_efficient_work_floats(size_t N, size_t D, size_t H);
void attn_efficient_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                                const float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, size_t N, size_t D, size_t H,
                                float *work);
// Inference form: the same output as attn_efficient_forward (to ~1e-6 relative; chunked
// accumulation of the context rounds differently) and the same FLOP count, keeping nothing for
// backward. work is caller scratch of attn_efficient_infer_work_floats() floats, bounded
// independently of N (one head's d x d context plus one chunk of at most 256 rows); its
// contents on entry do not matter.
size_t attn_efficient_infer_work_floats(size_t N, size_t D, size_t H);
void attn_efficient_forward_infer(float *out, float *work, const float *q, const float *k,
                                  const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                                  size_t H);

// softmax(Q (E K)^T / sqrt(d)) (F V); E, F are (kp, n_max) row-major, shared by the heads,
// only their first N columns used. dE, dF accumulate (same layout).   -- core/attn_linformer.c
size_t attn_linformer_save_floats(size_t N, size_t D, size_t H, size_t kp);
void attn_linformer_forward(float *out, float *save, const float *q, const float *k, const float *v,
                            size_t ld, const float *E, const float *F, size_t n_max, size_t kp,
                            size_t N, size_t D, size_t H);
void attn_linformer_backward(float *dq, float *dk, float *dv, float *dE, float *dF,
                             const float *dout, const float *save, const float *q, const float *k,
                             const float *v, size_t ld, const float *E, const float *F,
                             size_t n_max, size_t kp, size_t N, size_t D, size_t H);
// The same backward with caller-provided scratch of attn_linformer_work_floats() floats.
size_t attn_linformer_work_floats(size_t N, size_t D, size_t H, size_t kp);
void attn_linformer_backward_ws(float *dq, float *dk, float *dv, float *dE, float *dF,
                                const float *dout, const float *save, const float *q,
                                const float *k, const float *v, size_t ld, const float *E,
                                const float *F, size_t n_max, size_t kp, size_t N, size_t D,
                                size_t H, float *work);

#endif
