// Row-wise ops of the model (SPEC §2), each a forward/backward pair over packed rows
// [T, width]. Argument order: outputs, saved-for-backward, inputs, weights, sizes.
// Backward ACCUMULATES (+=) into every gradient it is given (NULL = not wanted).
// Linear layers use PyTorch's convention: w is (out, in) row-major, y = x w^T + b,
// computed with CBLAS sgemm. GELU is the tanh approximation (PyTorch
// F.gelu(x, approximate="tanh")).
// FLOPs are counted through core/flops.h from the actual shapes: matrix products as
// 2 FLOPs per multiply-add, element-wise work as 1 FLOP per output element per op
// (LayerNorm counts its normalisation and its affine step: 2 per element; a backward
// counts the same element-wise work as its forward per gradient tensor it produces).
// Reductions are done in a fixed order, so results do not depend on thread timing.
#ifndef MAELRE_OPS_H
#define MAELRE_OPS_H
#include <stddef.h>
#include <stdint.h>

// out[t] = table[ids[t]]                          table (V, D), out (T, D)
void embed_tokens_forward(float *out, const int32_t *ids, const float *table, size_t T, size_t D);
void embed_tokens_backward(float *dtable, const float *dout, const int32_t *ids, size_t T, size_t D);

// out = in w^T + b                                in (T, NI), w (NO, NI), b (NO) or NULL, out (T, NO)
void linear_forward(float *out, const float *in, const float *w, const float *b,
                    size_t T, size_t NI, size_t NO);
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, size_t T, size_t NI, size_t NO);

// x[offsets[i] + j] += pos[j] for each sample i    x (T, D), pos (max_len, D)
void pos_embed_forward(float *x, const float *pos, const size_t *offsets, size_t n, size_t D);
void pos_embed_backward(float *dpos, const float *dx, const size_t *offsets, size_t n, size_t D);

// out = (in - mean) * rstd * g + b per row; saves mean, rstd (T)
void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *g,
                       const float *b, size_t T, size_t D, float eps);
void layernorm_backward(float *din, float *dg, float *db, const float *dout, const float *in,
                        const float *mean, const float *rstd, const float *g, size_t T, size_t D);

// out = gelu_tanh(in), n elements
void gelu_forward(float *out, const float *in, size_t n);
void gelu_backward(float *din, const float *dout, const float *in, size_t n);

// out += in (residual add), n elements. Its backward is the identity: the caller adds the
// incoming gradient to both branches (x += ... makes that a no-op by construction).
void residual_forward(float *out, const float *in, size_t n);

// out[i] = sum_j s_j x_j / sum_j s_j over sample i's rows; s NULL = all sizes 1.
// x (T, D), out (n, D)
void pool_forward(float *out, const float *x, const float *s, const size_t *offsets, size_t n,
                  size_t D);
void pool_backward(float *dx, const float *dout, const float *s, const size_t *offsets, size_t n,
                   size_t D);

// Mean softmax cross-entropy over n rows of logits (n, C); dlogits (n, C) gets (=, not +=)
// d(mean loss)/dlogits when non-NULL. Same as model_loss.
float softmax_ce(const float *logits, const int32_t *labels, size_t n, size_t C, float *dlogits);

#endif
