// Nyströmformer attention (Xiong et al., AAAI 2021), SPEC §9.2, per sample and head:
//   out = F pinv(A) (B V) + conv(V)
// with q' = q / d^(1/4), k' = k / d^(1/4); landmarks Q~, K~ the means of q', k' over m segments
// (segment i = rows [floor(i N/m), floor((i+1) N/m))); F = softmax(q' K~^T) (N x m),
// A = softmax(Q~ K~^T) (m x m), B = softmax(Q~ k'^T + log s) (m x N); pinv(A) by 6 iterations of
// Z <- 1/4 Z (13 I - A Z (15 I - A Z (7 I - A Z))) from Z0 = A^T / (max col sum A * max row sum A),
// per sample and head. When N <= m the kind is exact softmax attention (SPEC §3) instead.
// conv(V): a depthwise 1-D convolution along the tokens, one kernel of kc taps per head shared by
// its d channels, zero padding kc/2 (centred for odd kc, PyTorch's Conv2d(padding = kc // 2)), no
// bias; kc = 0 turns it off. It is added in both branches (it is part of the kind's function).
// Conventions as core/attention.h: q, k, v rows of stride ld, head h at columns [h*d, (h+1)*d),
// out (N, D); backward accumulates (+=) into dq, dk, dv and dconv (H, kc). FLOPs through
// core/flops.h (the counts are spelled out in core/attn_nystrom.c).   -- core/attn_nystrom.c
#ifndef MAELRE_ATTN_NYSTROM_H
#define MAELRE_ATTN_NYSTROM_H
#include <stddef.h>

#define NYSTROM_ITERS 6

// Floats forward fills for backward (also enough for inference: forward keeps what it computes).
size_t attn_nystrom_save_floats(size_t N, size_t D, size_t H, size_t m);
// Backward scratch floats.
size_t attn_nystrom_work_floats(size_t N, size_t D, size_t H, size_t m);
void attn_nystrom_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, const float *conv, size_t kc, size_t N,
                          size_t D, size_t H, size_t m);
void attn_nystrom_backward_ws(float *dq, float *dk, float *dv, float *dconv, const float *dout,
                              const float *save, const float *q, const float *k, const float *v,
                              size_t ld, const float *log_s, const float *conv, size_t kc, size_t N,
                              size_t D, size_t H, size_t m, float *work);

// Plain reference forward in double (loops, no BLAS): the tests' oracle. q,k,v,log_s,conv as above
// in double; out (N, D).
void attn_nystrom_forward_ref(double *out, const double *q, const double *k, const double *v,
                              size_t ld, const double *log_s, const double *conv, size_t kc,
                              size_t N, size_t D, size_t H, size_t m);

#endif
