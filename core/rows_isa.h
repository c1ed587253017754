// Element-wise row loops compiled once per instruction set (issue 12): the library is built for
// the x86-64 baseline (SSE2), where GCC left the ops_expf/ops_tanhf loops scalar ("control flow
// in loop"): GELU became ~20 % of a vanilla training step at N = 1024 (under 2 % with
// -march=native) and the dense softmax's training step 1.9x slower (inference 3x). GELU, the row
// softmax and its backward rows, LayerNorm, the sums over rows of the gradients, the residual add
// and efficient attention's softmax passes are here.
// The loop bodies are here, once, as static functions; core/ops_rows.c compiles
// them for the baseline (the plain set, the oracle), core/rows_avx2.c and core/rows_avx512.c with
// their sets' flags (Makefile), and ops_rows.c calls the active set's copy (core/kernels.h).
// ISO C mode does not contract multiply-adds, so every copy computes the same float operations:
// the results are bitwise equal across sets (tests/test_kernels.c checks it).
#ifndef MAELRE_ROWS_ISA_H
#define MAELRE_ROWS_ISA_H
#include <math.h>
#include <stddef.h>
#include "core/ops.h"
#include "core/threads.h"

typedef struct {
    void (*gelu_forward)(float *out, const float *in, size_t n);
    void (*gelu_backward)(float *din, const float *dout, const float *in, size_t n);
    // core/attention.h's attn_softmax_rows and attn_softmax_ds_rows, and the sgemm path's
    // recomputation of P from saved statistics (core/attn_softmax.c)
    void (*softmax_rows)(float *S, size_t lds, float *mx, float *inv, const float *log_s, size_t nr, size_t N,
                         int par);
    void (*softmax_rows_saved)(float *S, size_t lds, const float *mx, const float *inv, const float *log_s,
                               size_t nr, size_t N);
    void (*ds_rows)(float *dS, const float *P, size_t lds, size_t nr, size_t N);
    // core/ops.h's ops_exp_sub (efficient attention's row and column softmax passes)
    void (*exp_sub)(float *out, const float *in, const float *shift, float shift1, size_t n);
    // core/ops.h's layernorm_forward and layernorm_backward's din part: plain loops, which GCC
    // vectorises to the set's width when compiled with its flags (no contraction: same numbers)
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *in, const float *g,
                              const float *b, size_t T, size_t D, float eps);
    void (*layernorm_backward_din)(float *din, const float *dout, const float *in, const float *mean,
                                   const float *rstd, const float *g, size_t T, size_t D);
    // layernorm_backward's dg/db part, linear_backward's bias gradient (ops_column_sums) and the
    // residual add (residual_forward): plain loops as above
    void (*layernorm_backward_params)(float *dg, float *db, const float *dout, const float *in, const float *mean,
                                      const float *rstd, size_t T, size_t D);
    void (*column_sums)(float *acc, const float *x, size_t T, size_t D);
    void (*add)(float *out, const float *in, size_t n);
    // efficient attention's query softmax (core/ops.h's ops_softmax_head_rows)
    void (*softmax_head_rows)(float *p, size_t hs, size_t pl, const float *q, size_t ld, size_t N, size_t d,
                              size_t H);
    // efficient attention's column softmax passes (core/ops.h's ops_col_max, ops_col_exp_sum)
    void (*col_max)(float *mx, const float *k, size_t ld, const float *log_s, size_t N, size_t D);
    void (*col_exp_sum)(float *e, size_t hs, size_t el, double *sum, const float *k, size_t ld, const float *log_s,
                        const float *mx, size_t n, size_t d, size_t H);
} RowKernels;

extern const RowKernels rows_avx2;     // core/rows_avx2.c
extern const RowKernels rows_avx512;   // core/rows_avx512.c
// The active set's copies (core/kernels.h); NULL for the plain set (call the bodies below).
const RowKernels *rows_active(void);   // core/ops_rows.c

// A parallel region only when it pays and none is open (core/threads.h): inference's row chunks
// call these loops per 256 rows, inside a region.
#define ROWS_PARALLEL(cond) ((cond) && !threads_in_parallel())

#define ROWS_GELU_C 0.7978845608028654f  // sqrt(2 / pi)
#define ROWS_GELU_A 0.044715f
#define ROWS_PAR_MIN 8192                // elements worth an OpenMP region (as core/ops_rows.c)
#define ROWS_LN_PAR_MIN 16384            // LayerNorm elements worth an OpenMP region

// out = gelu_tanh(in), n elements (out may be in)
static inline void rows_gelu_forward_body(float *out, const float *in, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= ROWS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + ops_tanhf(ROWS_GELU_C * (x + ROWS_GELU_A * x * x * x)));
    }
}

// din = dout * gelu_tanh'(in), n elements (din may be dout)
static inline void rows_gelu_backward_body(float *din, const float *dout, const float *in, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= ROWS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float th = ops_tanhf(ROWS_GELU_C * (x + ROWS_GELU_A * x * x * x));
        float d = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * ROWS_GELU_C * (1.0f + 3.0f * ROWS_GELU_A * x * x);
        din[i] = dout[i] * d;
    }
}

// LayerNorm over rows of D (core/ops.h's layernorm_forward without its FLOP count).
static inline void rows_layernorm_forward_body(float *out, float *mean, float *rstd, const float *in, const float *g,
                                               const float *b, size_t T, size_t D, float eps) {
    #pragma omp parallel for schedule(static) if (T * D >= ROWS_LN_PAR_MIN)
    for (size_t t = 0; t < T; t++) {
        const float *restrict x = in + t * D;
        float *restrict y = out + t * D;
        float mu = ops_row_sum(x, D) / (float)D;
        #pragma omp simd
        for (size_t j = 0; j < D; j++) { float c = x[j] - mu; y[j] = c * c; }   // y: scratch
        float var = ops_row_sum(y, D) / (float)D;
        float rs = 1.0f / sqrtf(var + eps);
        #pragma omp simd
        for (size_t j = 0; j < D; j++) y[j] = (x[j] - mu) * rs * g[j] + b[j];
        mean[t] = mu;
        rstd[t] = rs;
    }
}

// Sums over rows (bias and LayerNorm gradients) split their columns over threads in blocks of
// ROWS_COL_BLOCK (a cache line): every sum still runs over the rows in order, so the result is
// the serial one whatever the thread count.
#define ROWS_COL_BLOCK 16
#define ROWS_COL_BLOCKS(D) (((D) + ROWS_COL_BLOCK - 1) / ROWS_COL_BLOCK)
#define ROWS_COL_END(j0, D) ((j0) + ROWS_COL_BLOCK < (D) ? (j0) + ROWS_COL_BLOCK : (D))

// acc (D) += the column sums of x (T, D), rows in order. Each block's sums run in a local copy
// (registers: the compiler cannot keep acc there while x might alias it), added in the same order.
static inline void rows_column_sums_body(float *acc, const float *x, size_t T, size_t D) {
    #pragma omp parallel for schedule(static) if (T * D >= ROWS_PAR_MIN && D > ROWS_COL_BLOCK)
    for (size_t cb = 0; cb < ROWS_COL_BLOCKS(D); cb++) {
        size_t j0 = cb * ROWS_COL_BLOCK, nj = ROWS_COL_END(j0, D) - j0;
        float a[ROWS_COL_BLOCK];
        for (size_t j = 0; j < nj; j++) a[j] = acc[j0 + j];
        if (nj == ROWS_COL_BLOCK) {
            for (size_t t = 0; t < T; t++) {
                const float *restrict r = x + t * D + j0;
                #pragma omp simd
                for (size_t j = 0; j < ROWS_COL_BLOCK; j++) a[j] += r[j];
            }
        } else {
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < nj; j++) a[j] += x[t * D + j0 + j];
        }
        for (size_t j = 0; j < nj; j++) acc[j0 + j] = a[j];
    }
}

// LayerNorm backward's dg += dy * xhat and db += dy (either may be NULL), rows in order, in local
// copies as rows_column_sums_body.
static inline void rows_layernorm_backward_params_body(float *dg, float *db, const float *dout, const float *in,
                                                       const float *mean, const float *rstd, size_t T, size_t D) {
    #pragma omp parallel for schedule(static) if (T * D >= ROWS_PAR_MIN && D > ROWS_COL_BLOCK)
    for (size_t cb = 0; cb < ROWS_COL_BLOCKS(D); cb++) {
        size_t j0 = cb * ROWS_COL_BLOCK, nj = ROWS_COL_END(j0, D) - j0;
        float g[ROWS_COL_BLOCK] = {0}, b[ROWS_COL_BLOCK] = {0};
        for (size_t j = 0; j < nj; j++) {
            if (dg) g[j] = dg[j0 + j];
            if (db) b[j] = db[j0 + j];
        }
        for (size_t t = 0; t < T; t++) {
            const float *restrict x = in + t * D + j0, *restrict dy = dout + t * D + j0;
            float mu = mean[t], rs = rstd[t];
            #pragma omp simd
            for (size_t j = 0; j < nj; j++) {
                g[j] += dy[j] * (x[j] - mu) * rs;
                b[j] += dy[j];
            }
        }
        for (size_t j = 0; j < nj; j++) {
            if (dg) dg[j0 + j] = g[j];
            if (db) db[j0 + j] = b[j];
        }
    }
}

// out (n) += in (n)
static inline void rows_add_body(float *out, const float *in, size_t n) {
    if (ROWS_PARALLEL(n >= ROWS_PAR_MIN)) {
        #pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) out[i] += in[i];
    } else {
        #pragma omp simd
        for (size_t i = 0; i < n; i++) out[i] += in[i];
    }
}

// Efficient attention's column softmax (core/attn_efficient.c): mx (D) = max_j (K[j][:] + log s_j)
// over k (N, D) stride ld.
static inline void rows_col_max_body(float *restrict mx, const float *restrict k, size_t ld,
                                     const float *restrict log_s, size_t N, size_t D) {
    for (size_t c = 0; c < D; c++) mx[c] = -INFINITY;
    for (size_t j = 0; j < N; j++) {
        float ls = log_s ? log_s[j] : 0.0f;
        const float *kj = k + j * ld;
        #pragma omp simd
        for (size_t c = 0; c < D; c++) {
            float z = kj[c] + ls;
            mx[c] = z > mx[c] ? z : mx[c];
        }
    }
}

// Rows j in [0, n): e = exp((K + log s) - mx) for every column of K (D = H d), head h's part to
// e + h * hs + j * el; sum[c] += e in row order (c over D). exp_sub: the set's ops_exp_sub.
static inline void rows_col_exp_sum_body(float *restrict e, size_t hs, size_t el, double *restrict sum,
                                         const float *restrict k, size_t ld, const float *restrict log_s,
                                         const float *restrict mx, size_t n, size_t d, size_t H,
                                         void (*exp_sub)(float *, const float *, const float *, float, size_t)) {
    for (size_t j = 0; j < n; j++) {
        float ls = log_s ? log_s[j] : 0.0f;
        for (size_t h = 0; h < H; h++) {
            const float *kj = k + j * ld + h * d, *mh = mx + h * d;
            float *ej = e + h * hs + j * el;
            double *sh = sum + h * d;
            if (log_s) {   // (K + log s) - mx, rounded as one expression would be
                #pragma omp simd
                for (size_t c = 0; c < d; c++) ej[c] = kj[c] + ls;
                exp_sub(ej, ej, mh, 0.0f, d);
            } else {
                exp_sub(ej, kj, mh, 0.0f, d);
            }
            #pragma omp simd   // separate loop: GCC does not vectorise the float exp and the
            for (size_t c = 0; c < d; c++) sh[c] += ej[c];   // double sum in one loop
        }
    }
}

// LayerNorm backward's din += part (core/ops.h's layernorm_backward).
static inline void rows_layernorm_backward_din_body(float *din, const float *dout, const float *in, const float *mean,
                                                    const float *rstd, const float *g, size_t T, size_t D) {
    #pragma omp parallel for schedule(static) if (T * D >= ROWS_LN_PAR_MIN)
    for (size_t t = 0; t < T; t++) {
        const float *restrict x = in + t * D, *restrict dy = dout + t * D;
        float *restrict dx = din + t * D;
        float mu = mean[t], rs = rstd[t];
        float t1[D], t2[D];
        #pragma omp simd
        for (size_t j = 0; j < D; j++) {
            float xh = (x[j] - mu) * rs, dxh = dy[j] * g[j];
            t1[j] = dxh;
            t2[j] = dxh * xh;
        }
        float sum_dxh = ops_row_sum(t1, D) / (float)D;
        float sum_dxh_xh = ops_row_sum(t2, D) / (float)D;
        #pragma omp simd
        for (size_t j = 0; j < D; j++) {
            float xh = (x[j] - mu) * rs, dxh = dy[j] * g[j];
            dx[j] += rs * (dxh - sum_dxh - xh * sum_dxh_xh);
        }
    }
}

// out = ops_expf(in - shift), n elements (out may be in); shift per element, or NULL: shift1.
static inline void rows_exp_sub_body(float *out, const float *in, const float *shift, float shift1, size_t n) {
    if (shift)
        for (size_t i = 0; i < n; i++) out[i] = ops_expf(in[i] - shift[i]);
    else
        for (size_t i = 0; i < n; i++) out[i] = ops_expf(in[i] - shift1);
}

// ---- softmax rows: sums over a row in 16 fixed partial sums (element j into partial j % 16),
// then combined pairwise (rows_sum16), so that the 4-, 8- and 16-lane copies add in the same
// order as this scalar code and give the same numbers. Maxima are exact in any order.
#define ROWS_SOFTMAX_PAR_MIN 16384   // score elements worth an OpenMP region (core/attn_softmax.c)

static inline float rows_sum16(float *s) {
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) s[i] += s[i + w];
    return s[0];
}

// One row in place: softmax_j(r_j + log_s_j); its maximum and 1 / sum to *mx, *inv.
static inline void rows_softmax_row(float *r, const float *log_s, size_t N, float *mx_out, float *inv_out) {
    if (log_s)
        for (size_t j = 0; j < N; j++) r[j] += log_s[j];
    float mx = -INFINITY;
    for (size_t j = 0; j < N; j++) mx = r[j] > mx ? r[j] : mx;
    float s[16] = {0};
    size_t j = 0;
    for (; j + 16 <= N; j += 16)
        for (int l = 0; l < 16; l++) { r[j + l] = ops_expf(r[j + l] - mx); s[l] += r[j + l]; }
    for (int l = 0; j + (size_t)l < N; l++) { r[j + l] = ops_expf(r[j + l] - mx); s[l] += r[j + l]; }
    float inv = 1.0f / rows_sum16(s);
    for (size_t t = 0; t < N; t++) r[t] *= inv;
    *mx_out = mx;
    *inv_out = inv;
}

// Every head's row softmax of every query row, out of place: row i of head h is q + i * ld + h * d
// (d floats), its softmax goes to p + h * hs + i * pl. A copy, then rows_softmax_row.
static inline void rows_softmax_head_rows_body(float *p, size_t hs, size_t pl, const float *q, size_t ld, size_t N,
                                               size_t d, size_t H) {
    for (size_t i = 0; i < N; i++)
        for (size_t h = 0; h < H; h++) {
            float *restrict r = p + h * hs + i * pl, mx, inv;
            const float *restrict x = q + i * ld + h * d;
            for (size_t c = 0; c < d; c++) r[c] = x[c];
            rows_softmax_row(r, NULL, d, &mx, &inv);
        }
}

static inline void rows_softmax_body(float *S, size_t lds, float *mx_out, float *inv_out, const float *log_s,
                                     size_t nr, size_t N, int par) {
    #pragma omp parallel for schedule(static) if (par && nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) {
        float mx, inv;
        rows_softmax_row(S + i * lds, log_s, N, &mx, &inv);
        if (mx_out) mx_out[i] = mx;
        if (inv_out) inv_out[i] = inv;
    }
}

// P from the saved statistics: r_j = ops_expf(r_j + log_s_j - m) * inv, the forward's operations.
static inline void rows_softmax_saved_row(float *r, const float *log_s, size_t N, float m, float iv) {
    if (log_s)
        for (size_t j = 0; j < N; j++) r[j] += log_s[j];
    for (size_t j = 0; j < N; j++) r[j] = ops_expf(r[j] - m) * iv;
}

static inline void rows_softmax_saved_body(float *S, size_t lds, const float *mx, const float *inv,
                                           const float *log_s, size_t nr, size_t N) {
    #pragma omp parallel for schedule(static) if (nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) rows_softmax_saved_row(S + i * lds, log_s, N, mx[i], inv[i]);
}

// One row in place: g = p * (g - sum_j p_j g_j).
static inline void rows_ds_row(float *g, const float *p, size_t N) {
    float s[16] = {0};
    size_t j = 0;
    for (; j + 16 <= N; j += 16)
        for (int l = 0; l < 16; l++) s[l] += p[j + l] * g[j + l];
    for (int l = 0; j + (size_t)l < N; l++) s[l] += p[j + l] * g[j + l];
    float dot = rows_sum16(s);
    for (size_t t = 0; t < N; t++) g[t] = p[t] * (g[t] - dot);
}

static inline void rows_ds_body(float *dS, const float *P, size_t lds, size_t nr, size_t N) {
    #pragma omp parallel for schedule(static) if (nr * N >= ROWS_SOFTMAX_PAR_MIN)
    for (size_t i = 0; i < nr; i++) rows_ds_row(dS + i * lds, P + i * lds, N);
}

#endif
