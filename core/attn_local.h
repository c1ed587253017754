// `local` attention (SPEC §9.4, LRA's Longformer setting without global tokens), per sample:
// token i attends, by exact softmax with 1/sqrt(d) scale and + log s_j, to the keys j with
//   i - w/2 < j <= i + w/2          (w/2 rounded down; w >= 2, default 512)
// i.e. w keys away from the sequence ends (w/2 - 1 before i, i itself, w/2 after). With
// w >= 2N every key is in every window and the kind equals `softmax` (core/attention.h).
// Conventions as core/attention.h: one sample of N tokens; q, k, v row stride ld (fused QKV:
// 3D), head h columns [h*d, (h+1)*d), d = D/H; out (N, D); log_s per-token log size or NULL;
// backward accumulates (+=) into dq, dk, dv (stride ld); no gradient flows through log s.
// w < 2 (an empty window) is a caller error: the functions abort().
// Memory: queries go 64 rows at a time against their key span (at most 63 + w keys), so save
// is 2 H N floats (row max and 1/sum) plus one 64 x span score block (and span floats of
// gathered log s); backward recomputes the scores from them. Nothing is O(N^2) or O(N w).
// FLOPs per head (core/flops.h), with n_i = |window of i| (clipped at the ends) and
// pairs = sum_i n_i (attn_local_pairs): forward QK^T and PV 2 pairs d MACs (4 pairs d FLOPs),
// plus 2 per pair (exp, normalise), 3 with log s; backward 4 pairs d MACs plus 2 per pair.
// Only scores inside the windows count, not the span's padding the sgemm also computes.
#ifndef MAELRE_ATTN_LOCAL_H
#define MAELRE_ATTN_LOCAL_H
#include <stddef.h>
#include <stdint.h>

#define ATTN_LOCAL_WINDOW 512  // SPEC §9.4's default w

// The keys of query i: [*lo, *hi). Number of (query, key) pairs of one head.
void attn_local_window(size_t i, size_t N, size_t w, size_t *lo, size_t *hi);
double attn_local_pairs(size_t N, size_t w);

size_t attn_local_save_floats(size_t N, size_t D, size_t H, size_t w);
void attn_local_forward(float *out, float *save, const float *q, const float *k, const float *v,
                        size_t ld, const float *log_s, size_t N, size_t D, size_t H, size_t w);
// Backward with caller scratch of attn_local_work_floats() floats (two score blocks).
size_t attn_local_work_floats(size_t N, size_t D, size_t H, size_t w);
void attn_local_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                            const float *q, const float *k, const float *v, size_t ld,
                            const float *log_s, size_t N, size_t D, size_t H, size_t w,
                            float *work);
// Inference form: the same output as attn_local_forward, bit for bit, and the same FLOP count,
// keeping nothing for backward; work is one score block (attn_local_infer_work_floats), its
// contents on entry do not matter.
size_t attn_local_infer_work_floats(size_t N, size_t D, size_t H, size_t w);
void attn_local_forward_infer(float *out, float *work, const float *q, const float *k,
                              const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                              size_t H, size_t w);

// Plain reference (tests' oracle): the explicit (N, N) window mask and the masked reference
// of core/attn_mask_ref.h (double accumulation, no BLAS).
void attn_local_mask(uint8_t *mask, size_t N, size_t w);  // mask (N, N): 1 where i sees j
void attn_local_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                            const float *log_s, size_t N, size_t D, size_t H, size_t w);
void attn_local_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, size_t ld, const float *log_s,
                             size_t N, size_t D, size_t H, size_t w);
#endif
