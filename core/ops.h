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
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// out[t] = table[ids[t]]                          table (V, D), out (T, D)
void embed_tokens_forward(float *out, const int32_t *ids, const float *table, size_t T, size_t D);
void embed_tokens_backward(float *dtable, const float *dout, const int32_t *ids, size_t T, size_t D);

// out = in w^T + b                                in (T, NI), w (NO, NI), b (NO) or NULL, out (T, NO)
void linear_forward(float *out, const float *in, const float *w, const float *b,
                    size_t T, size_t NI, size_t NO);
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, size_t T, size_t NI, size_t NO);
// The same with din written rather than accumulated (its old contents ignored, NaN included;
// dw and db still accumulate): saves zeroing a fresh gradient buffer first.
void linear_backward_fresh(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, size_t T, size_t NI, size_t NO);
// The same with w packed beforehand (wt, NI * NO floats, filled by linear_pack): bitwise
// linear_forward's result without repacking w on every call. linear_packs() says whether the
// active kernel set uses packed weights; when it does not (or wt is NULL) this is linear_forward.
int linear_packs(void);
void linear_pack(float *wt, const float *w, size_t NI, size_t NO);
void linear_forward_packed(float *out, const float *in, const float *w, const float *wt, const float *b,
                           size_t T, size_t NI, size_t NO);

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
// C = beta C + op(A) op(B), row-major, beta 0 or 1, op = transpose when trans_* is set (not
// both): the avx512 set's own kernels (core/gemm.h), cblas_sgemm in the other sets. Inside an
// OpenMP region (samples running in parallel) it stays on the calling thread. Counts no FLOPs.
void ops_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc);
// out = ops_expf(in - shift) over n elements (out may be in), shift per element or, when NULL,
// the scalar shift1; the active kernel set's vector copy (core/rows_isa.h), same numbers in
// every set. Counts no FLOPs (callers count their softmax analytically).
void ops_exp_sub(float *out, const float *in, const float *shift, float shift1, size_t n);
// din = dout * gelu_tanh'(in), written (not accumulated: the model's MLP gradient starts here);
// din may be dout.
void gelu_backward(float *din, const float *dout, const float *in, size_t n);

// out += in (residual add), n elements. Its backward is the identity: the caller adds the
// incoming gradient to both branches (x += ... makes that a no-op by construction).
void residual_forward(float *out, const float *in, size_t n);
// x (n) = 0, in parallel for large n (the backward's accumulators).
void ops_zero(float *x, size_t n);
// acc (D) += the column sums of x (T, D), rows in order (the serial sums whatever the threads).
void ops_column_sums(float *acc, const float *x, size_t T, size_t D);
// Efficient attention's column softmax passes (core/attn_efficient.c), in the active kernel set:
// mx (D) = max_j (K[j][:] + log s_j) over k (N, D) stride ld (log_s may be NULL); and for rows j < n,
// e = exp((K + log s) - mx) with head h's part of row j at e + h * hs + j * el, sum (D, double)
// += e in row order.
// ... and its query softmax: for every row i < N and head h < H, the softmax of the d floats at
// q + i * ld + h * d, written to p + h * hs + i * pl.
void ops_softmax_head_rows(float *p, size_t hs, size_t pl, const float *q, size_t ld, size_t N, size_t d,
                           size_t H);
void ops_col_max(float *mx, const float *k, size_t ld, const float *log_s, size_t N, size_t D);
void ops_col_exp_sum(float *e, size_t hs, size_t el, double *sum, const float *k, size_t ld, const float *log_s,
                     const float *mx, size_t n, size_t d, size_t H);

// out[i] = sum_j s_j x_j / sum_j s_j over sample i's rows; s NULL = all sizes 1.
// x (T, D), out (n, D)
void pool_forward(float *out, const float *x, const float *s, const size_t *offsets, size_t n,
                  size_t D);
void pool_backward(float *dx, const float *dout, const float *s, const size_t *offsets, size_t n,
                   size_t D);

// exp(x) in float, vectorisable (no libm call, so loops over it auto-vectorise without
// -ffast-math): Cody-Waite range reduction x = k ln2 + r, Cephes' degree-6 polynomial for
// e^r, 2^k through the exponent bits. Max relative error 8.2e-8 (measured against double exp on [-87, 88]); inputs below
// -87.3 return ~1e-38 instead of 0 or a denormal, above 88.7 return ~3.4e38 instead of inf;
// a NaN input returns a finite value. Used where the input is already bounded (softmax
// after subtracting the row maximum, tanh through exp(-2|u|)).
static inline float ops_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    float km = x * 1.44269504088896341f + 12582912.0f;  // k = round(x / ln2) via the 1.5 * 2^23 trick
    float kf = km - 12582912.0f;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t kb, sb;
    memcpy(&kb, &km, sizeof kb);       // low mantissa bits of km hold k (+ 0x400000)
    sb = (kb - 0x4B400000 + 127) << 23;
    float scale;
    memcpy(&scale, &sb, sizeof scale);
    return y * scale;
}

// Sum and maximum of a short row (n ~ 32-64: a LayerNorm or softmax row) in 16 lanes: full
// blocks of 16 add lane-wise, the tail goes to lanes 0.., then a tree over the lanes. Vectorises
// without -ffast-math and without `omp simd reduction`, whose per-lane array GCC reduces with a
// scalar loop (measured: that loop was the hottest part of the efficient attention's row
// softmax). The order is fixed, so the result is deterministic. The maximum skips NaN like the
// scalar `x > m ? x : m`.
static inline float ops_row_sum(const float *x, size_t n) {
    float acc[16] = {0};
    size_t c = 0;
    for (; c + 16 <= n; c += 16)
        for (size_t l = 0; l < 16; l++) acc[l] += x[c + l];
    for (size_t l = 0; c < n; c++, l++) acc[l] += x[c];
    for (size_t w = 8; w; w >>= 1)
        for (size_t l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

static inline float ops_row_max(const float *x, size_t n) {
    float acc[16];
    for (size_t l = 0; l < 16; l++) acc[l] = -INFINITY;
    size_t c = 0;
    for (; c + 16 <= n; c += 16)
        for (size_t l = 0; l < 16; l++) acc[l] = x[c + l] > acc[l] ? x[c + l] : acc[l];
    for (size_t l = 0; c < n; c++, l++) acc[l] = x[c] > acc[l] ? x[c] : acc[l];
    for (size_t w = 8; w; w >>= 1)
        for (size_t l = 0; l < w; l++) acc[l] = acc[l + w] > acc[l] ? acc[l + w] : acc[l];
    return acc[0];
}

// tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): no cancellation for large |x|; for
// tiny |x| the absolute error is ~1e-7.
static inline float ops_tanhf(float x) {
    float ax = x < 0.0f ? -x : x;
    float e = ops_expf(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

// Mean softmax cross-entropy over n rows of logits (n, C); dlogits (n, C) gets (=, not +=)
// d(mean loss)/dlogits when non-NULL. Same as model_loss.
float softmax_ce(const float *logits, const int32_t *labels, size_t n, size_t C, float *dlogits);

#endif
