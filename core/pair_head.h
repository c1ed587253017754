// The two-tower head's own ops (SPEC §10.2): the combination of a pair's two pooled,
// normalised document vectors and the ReLU between the head's two linears. Same conventions
// as core/ops.h: outputs first, backward ACCUMULATES (+=), FLOPs through core/flops.h
// (1 per output element per element-wise op).               -- core/pair_head.c
#ifndef MAELRE_PAIR_HEAD_H
#define MAELRE_PAIR_HEAD_H
#include <stddef.h>

// e holds 2 np rows of width D: rows 2i and 2i + 1 are pair i's documents e1, e2.
// z row i (width 4 D) = [e1, e2, e1 * e2, e1 - e2].
void pair_combine_forward(float *z, const float *e, size_t np, size_t D);
// de (2 np, D) += d z / d e applied to dz (np, 4 D).
void pair_combine_backward(float *de, const float *dz, const float *e, size_t np, size_t D);

// out = max(in, 0), n elements (out may be in).
void relu_forward(float *out, const float *in, size_t n);
// din += dout where the forward's output was > 0 (out: the forward's output). Equivalent to
// testing in > 0, and lets the forward run in place.
void relu_backward(float *din, const float *dout, const float *out, size_t n);

#endif
