// Performer attention, FAVOR+ with positive orthogonal random features (Choromanski et al.
// 2021), SPEC §9.1: per sample, per head (d = D/H), with the feature matrix W (m, d) shared by the
// heads of a layer, drawn once, not trained (no gradient to W):
//   x' = x / d^(1/4) for queries and keys,
//   phi(x')_l = m^(-1/2) (exp(w_l . x' - |x'|^2/2 - c) + 1e-4),
//     c = max_l w_l . q'_i per query row; c = max over all keys j and features l of w_l . k'_j
//     per sample and head,
//   out_i = phi(q_i) (sum_j s_j phi(k_j) v_j^T) / (phi(q_i) . sum_j s_j phi(k_j)),
// sizes s_j = exp(log_s_j) (log_s NULL: all 1). Cost O(N m d), memory O(N m + m d) per head.
// Gradient convention: the stabilisers c are constants of the function (PyTorch with c
// detached, as every public FAVOR+ implementation does). Because of the + 1e-4 term c does not
// cancel exactly from out (not for keys, nor for queries), so this is the exact gradient of
// out(q, k, v; c) at c held at its forward value, not the derivative through the max.
// Conventions as core/attention.h: q, k, v row-major with row stride ld (3 D for a fused QKV
// projection), head h in columns [h d, (h+1) d); out (N, D) stride D; backward accumulates (+=)
// into dq, dk, dv (stride ld); every call counts its FLOPs through core/flops.h.
#ifndef MAELRE_ATTN_PERFORMER_H
#define MAELRE_ATTN_PERFORMER_H
#include <stddef.h>
#include <stdint.h>

#define ATTN_PERFORMER_DEFAULT_M 128

// Draws W (m, d) row-major from *rng: floor(m/d) blocks of d orthonormal rows plus one partial
// block of m mod d rows, each block the Gram-Schmidt orthonormalisation (in double, two passes)
// of independent N(0, 1) rows, then every row scaled by the norm of its own independent
// N(0, I_d) vector. RNG order: the blocks' Gaussian rows first (row-major, block by block), then
// the m norm vectors. Same state in, same W out. Scratch through core/mem.h; returns 0, or -1 if
// that allocation fails (W and *rng then untouched).
int attn_performer_draw_features(float *W, size_t m, size_t d, uint64_t *rng);

// The feature map alone (what the kernel runs for queries and keys), on N rows x (stride ld,
// d wide): F (N, m) row i = s_i phi(x_i'), s_i = exp(log_s_i) (NULL: 1). per_row = 1: c per row
// (queries); 0: one c over all rows and features (keys). Counts its FLOPs.
void attn_performer_phi(float *F, const float *x, size_t ld, const float *log_s, const float *W,
                        size_t m, size_t N, size_t d, int per_row);
// Its backward at c held constant: with dF (N, m) the gradient w.r.t. F (as returned above,
// weighted rows), dx (stride ld) += d^(-1/4) (dA W) - d^(-1/2) rowsum(dA) x, where
// dA = dF * (F - s_i m^(-1/2) 1e-4) = dL/d(w_l . x'). dF is overwritten with dA. Counts FLOPs.
void attn_performer_phi_backward(float *dx, float *dF, const float *F, const float *x, size_t ld,
                                 const float *log_s, const float *W, size_t m, size_t N,
                                 size_t d);

// Training forward: save holds attn_performer_save_floats() floats for backward.
size_t attn_performer_save_floats(size_t N, size_t D, size_t H, size_t m);
void attn_performer_forward(float *out, float *save, const float *q, const float *k,
                            const float *v, size_t ld, const float *log_s, const float *W,
                            size_t m, size_t N, size_t D, size_t H);
// Backward with caller scratch of attn_performer_work_floats() floats (contents ignored).
size_t attn_performer_work_floats(size_t N, size_t D, size_t H, size_t m);
void attn_performer_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                                const float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, const float *W, size_t m, size_t N,
                                size_t D, size_t H, float *work);
// Inference form: the same output as attn_performer_forward (to ~1e-6 relative), keeping nothing
// for backward; work of attn_performer_infer_work_floats() floats, bounded independently of N
// (one head's m x d context, m + d sums, one chunk of at most 256 rows x m); contents ignored.
// Keys stream in chunks with the key stabiliser c kept as a running maximum: the accumulated
// exp terms are rescaled by exp(c_old - c_new) when it grows, and the + 1e-4 term is added once
// at the end through sum_j s_j v_j, so one pass over K suffices. Its FLOP count therefore
// differs slightly from the forward's (counted as run; core/attn_performer.c lists both).
size_t attn_performer_infer_work_floats(size_t N, size_t D, size_t H, size_t m);
void attn_performer_forward_infer(float *out, float *work, const float *q, const float *k,
                                  const float *v, size_t ld, const float *log_s, const float *W,
                                  size_t m, size_t N, size_t D, size_t H);
// Plain reference kernels (loops, no BLAS, double accumulation, O(m d) heap): the tests' oracle.
// No FLOP counting. backward_ref accumulates (+=) with the same c convention.
void attn_performer_forward_ref(float *out, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, const float *W, size_t m, size_t N,
                                size_t D, size_t H);
void attn_performer_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                                 const float *q, const float *k, const float *v, size_t ld,
                                 const float *log_s, const float *W, size_t m, size_t N, size_t D,
                                 size_t H);

#endif
