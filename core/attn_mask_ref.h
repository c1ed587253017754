// Masked exact softmax attention, plain reference (tests' oracle for the sparse kinds,
// core/attn_local.c and core/attn_bigbird.c): per head h,
//   out_i = sum_{j : mask[h][i][j]} softmax_j(q_i . k_j / sqrt(d) + log s_j) v_j
// with an explicit N x N mask of 0/1 bytes per head. Triple loops, no BLAS, double
// accumulation; O(N^2 d) time, so tests only. q, k, v row stride ld (fused QKV: 3D), head h
// columns [h*d, (h+1)*d); out (N, D). mask is (H, N, N) row-major, or one (N, N) mask shared
// by the heads when mask_head_stride is 0. Every row must allow at least one key. Backward
// accumulates (+=) into dq, dk, dv (stride ld); no gradient flows through log s.
#ifndef MAELRE_ATTN_MASK_REF_H
#define MAELRE_ATTN_MASK_REF_H
#include <stddef.h>
#include <stdint.h>

void attn_masked_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, const uint8_t *mask, size_t mask_head_stride,
                             size_t N, size_t D, size_t H);
void attn_masked_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, size_t ld, const float *log_s,
                              const uint8_t *mask, size_t mask_head_stride, size_t N, size_t D,
                              size_t H);
#endif
