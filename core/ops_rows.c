// Row-wise ops (see core/ops.h). Matrix products go through CBLAS, or in the avx512 kernel set
// through core/gemm.h's kernels; the rest is written by hand because BLAS has no element-wise or
// per-row normalising routines.
#include "core/ops.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "core/flops.h"
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/rows_isa.h"
#include "core/threads.h"

// Rows are independent, so row loops run in parallel; only above this many elements,
// because an OpenMP region costs microseconds.
#define PAR_MIN 8192
void ops_zero(float *x, size_t n) {
    size_t nb = (n + PAR_MIN - 1) / PAR_MIN;
    #pragma omp parallel for schedule(static) if (nb > 4)
    for (size_t b = 0; b < nb; b++) memset(x + b * PAR_MIN, 0, (n - b * PAR_MIN < PAR_MIN ? n - b * PAR_MIN : PAR_MIN) * sizeof(float));
}

void ops_column_sums(float *acc, const float *x, size_t T, size_t D) {
    const RowKernels *rk = rows_active();
    if (rk) rk->column_sums(acc, x, T, D);
    else rows_column_sums_body(acc, x, T, D);
}

void ops_softmax_head_rows(float *p, size_t hs, size_t pl, const float *q, size_t ld, size_t N, size_t d,
                           size_t H) {
    const RowKernels *rk = rows_active();
    if (rk) rk->softmax_head_rows(p, hs, pl, q, ld, N, d, H);
    else rows_softmax_head_rows_body(p, hs, pl, q, ld, N, d, H);
}

void ops_col_max(float *mx, const float *k, size_t ld, const float *log_s, size_t N, size_t D) {
    const RowKernels *rk = rows_active();
    if (rk) rk->col_max(mx, k, ld, log_s, N, D);
    else rows_col_max_body(mx, k, ld, log_s, N, D);
}

void ops_col_exp_sum(float *e, size_t hs, size_t el, double *sum, const float *k, size_t ld, const float *log_s,
                     const float *mx, size_t n, size_t d, size_t H) {
    const RowKernels *rk = rows_active();
    if (rk) rk->col_exp_sum(e, hs, el, sum, k, ld, log_s, mx, n, d, H);
    else rows_col_exp_sum_body(e, hs, el, sum, k, ld, log_s, mx, n, d, H, rows_exp_sub_body);
}

void embed_tokens_forward(float *out, const int32_t *ids, const float *table, size_t T, size_t D) {
    // ids (T), table (V, D), out (T, D)
    #pragma omp parallel for schedule(static) if (T * D >= PAR_MIN)
    for (size_t t = 0; t < T; t++) memcpy(out + t * D, table + (size_t)ids[t] * D, D * sizeof(float));
}

void embed_tokens_backward(float *dtable, const float *dout, const int32_t *ids, size_t T, size_t D) {
    // dout (T, D), dtable (V, D); rows may share an id, so rows go in order, columns split over
    // threads as core/rows_isa.h's column sums do (the serial result whatever the thread count)
    #pragma omp parallel for schedule(static) if (T * D >= PAR_MIN && D > ROWS_COL_BLOCK)
    for (size_t cb = 0; cb < ROWS_COL_BLOCKS(D); cb++) {
        size_t j0 = cb * ROWS_COL_BLOCK, j1 = ROWS_COL_END(j0, D);
        for (size_t t = 0; t < T; t++) {
            float *restrict dr = dtable + (size_t)ids[t] * D;
            const float *restrict g = dout + t * D;
            #pragma omp simd
            for (size_t j = j0; j < j1; j++) dr[j] += g[j];
        }
    }
    flops_elem((double)T * D);
}

// The linear layers' products: core/gemm.h's AVX-512 kernels in the avx512 set (OpenBLAS runs
// its AVX2 kernels here, at about half this CPU's AVX-512 FMA rate), cblas_sgemm otherwise.
static int gemm_own(void) { return kernels_active() == KERNELS_AVX512; }
static int gemm_threads(void) { return threads_in_parallel() ? 1 : threads_get() > 0 ? threads_get() : 1; }

void ops_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    // gemm_nt has no beta = 1 and there is no A^T B^T kernel: the model never asks either
    int own = gemm_own() && !(trans_a && trans_b) && !(trans_b && beta != 0.0f);
    if (own && trans_a) gemm_tn_avx512(C, ldc, A, lda, B, ldb, M, N, K, beta, gemm_threads());
    else if (own && !trans_b) gemm_nn_avx512(C, ldc, A, lda, B, ldb, M, N, K, beta, gemm_threads());
    else if (own) gemm_nt_avx512(C, ldc, A, lda, B, ldb, M, N, K, NULL, gemm_threads());
    else
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M,
                    (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void linear_forward(float *out, const float *in, const float *w, const float *b,
                    size_t T, size_t NI, size_t NO) {
    // in (T, NI), w (NO, NI), b (NO), out (T, NO)
    if (T == 0) return;
    if (b) flops_elem((double)T * NO);
    if (gemm_own()) {
        gemm_nt_avx512(out, NO, in, NI, w, NI, T, NO, NI, b, gemm_threads());   // the bias starts the sums
    } else {
        if (b)
            for (size_t t = 0; t < T; t++) memcpy(out + t * NO, b, NO * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)NO, (int)NI, 1.0f, in, (int)NI,
                    w, (int)NI, b ? 1.0f : 0.0f, out, (int)NO);
    }
    flops_matmul(T, NO, NI);
}

int linear_packs(void) { return gemm_own(); }

void linear_pack(float *wt, const float *w, size_t NI, size_t NO) { gemm_pack_bt(wt, w, NI, NO, NI); }

void linear_forward_packed(float *out, const float *in, const float *w, const float *wt, const float *b,
                           size_t T, size_t NI, size_t NO) {
    if (!wt || !gemm_own() || T == 0) { linear_forward(out, in, w, b, T, NI, NO); return; }
    if (b) flops_elem((double)T * NO);
    gemm_nt_packed_avx512(out, NO, in, NI, wt, T, NO, NI, b, gemm_threads());
    flops_matmul(T, NO, NI);
}

static void linear_backward_beta(float *din, float din_beta, float *dw, float *db, const float *dout,
                                 const float *in, const float *w, size_t T, size_t NI, size_t NO) {
    // dout (T, NO), in (T, NI), w (NO, NI); din (T, NI) = din_beta din + dout w; dw (NO, NI), db (NO) accumulate
    if (T == 0) return;
    if (din) {
        ops_gemm(0, 0, T, NI, NO, dout, NO, w, NI, din_beta, din, NI);
        flops_matmul(T, NI, NO);
    }
    if (dw) {
        ops_gemm(1, 0, NO, NI, T, dout, NO, in, NI, 1.0f, dw, NI);
        flops_matmul(NO, NI, T);
    }
    if (db) {
        ops_column_sums(db, dout, T, NO);
        flops_elem((double)T * NO);
    }
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, size_t T, size_t NI, size_t NO) {
    linear_backward_beta(din, 1.0f, dw, db, dout, in, w, T, NI, NO);
}

void linear_backward_fresh(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, size_t T, size_t NI, size_t NO) {
    linear_backward_beta(din, 0.0f, dw, db, dout, in, w, T, NI, NO);
}

void pos_embed_forward(float *x, const float *pos, const size_t *offsets, size_t n, size_t D) {
    // x (T, D), pos (max_len, D)
    for (size_t i = 0; i < n; i++) {
        size_t L = offsets[i + 1] - offsets[i];
        float *restrict xi = x + offsets[i] * D;
        #pragma omp parallel for simd schedule(static) if (L * D >= PAR_MIN)
        for (size_t e = 0; e < L * D; e++) xi[e] += pos[e];
    }
    flops_elem((double)offsets[n] * D);
}

void pos_embed_backward(float *dpos, const float *dx, const size_t *offsets, size_t n, size_t D) {
    // dx (T, D), dpos (max_len, D); samples in order for every element, so the sum order is
    // fixed; elements in parallel
    size_t Lmax = 0;
    for (size_t i = 0; i < n; i++) Lmax = offsets[i + 1] - offsets[i] > Lmax ? offsets[i + 1] - offsets[i] : Lmax;
    size_t nb = (Lmax * D + PAR_MIN - 1) / PAR_MIN;
    #pragma omp parallel for schedule(static) if (nb > 1)
    for (size_t b = 0; b < nb; b++)
        for (size_t i = 0; i < n; i++) {
            size_t L = offsets[i + 1] - offsets[i], e0 = b * PAR_MIN, e1 = (b + 1) * PAR_MIN < L * D ? (b + 1) * PAR_MIN : L * D;
            const float *restrict gi = dx + offsets[i] * D;
            #pragma omp simd
            for (size_t e = e0; e < e1; e++) dpos[e] += gi[e];
        }
    flops_elem((double)offsets[n] * D);
}

// LayerNorm rows are ~D = 64 floats: vectorised (sums through ops_row_sum), ~30 cycles a row, so
// rows go parallel only in large batches (ROWS_LN_PAR_MIN: waking the OpenMP team costs
// microseconds). The loops live in core/rows_isa.h, compiled per kernel set.

void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *g,
                       const float *b, size_t T, size_t D, float eps) {
    // in (T, D), g (D), b (D), out (T, D), mean (T), rstd (T)
    const RowKernels *rk = rows_active();
    if (rk) rk->layernorm_forward(out, mean, rstd, in, g, b, T, D, eps);
    else rows_layernorm_forward_body(out, mean, rstd, in, g, b, T, D, eps);
    flops_elem(2.0 * (double)T * D);
}

void layernorm_backward(float *din, float *dg, float *db, const float *dout, const float *in,
                        const float *mean, const float *rstd, const float *g, size_t T, size_t D) {
    // dout (T, D), in (T, D), mean/rstd (T), g (D); din (T, D), dg (D), db (D) accumulate
    if (din) {
        const RowKernels *rk = rows_active();
        if (rk) rk->layernorm_backward_din(din, dout, in, mean, rstd, g, T, D);
        else rows_layernorm_backward_din_body(din, dout, in, mean, rstd, g, T, D);
        flops_elem(2.0 * (double)T * D);
    }
    if (dg || db) {
        // rows in order (the sums over t are fixed whatever the thread count), columns in parallel
        const RowKernels *rk = rows_active();
        if (rk) rk->layernorm_backward_params(dg, db, dout, in, mean, rstd, T, D);
        else rows_layernorm_backward_params_body(dg, db, dout, in, mean, rstd, T, D);
        flops_elem(2.0 * (double)T * D);
    }
}

// GELU's loops live in core/rows_isa.h, compiled per kernel set (core/kernels.h); the plain set
// runs this file's baseline copy. Same numbers in every set.
const RowKernels *rows_active(void) {
    KernelSet k = kernels_active();
    return k == KERNELS_AVX512 ? &rows_avx512 : k == KERNELS_AVX2 ? &rows_avx2 : NULL;
}

void gelu_forward(float *out, const float *in, size_t n) {
    // in (n), out (n)
    const RowKernels *rk = rows_active();
    if (rk) rk->gelu_forward(out, in, n);
    else rows_gelu_forward_body(out, in, n);
    flops_elem((double)n);
}

void gelu_backward(float *din, const float *dout, const float *in, size_t n) {
    // dout (n), in (n), din (n) written
    const RowKernels *rk = rows_active();
    if (rk) rk->gelu_backward(din, dout, in, n);
    else rows_gelu_backward_body(din, dout, in, n);
    flops_elem((double)n);
}

void ops_exp_sub(float *out, const float *in, const float *shift, float shift1, size_t n) {
    const RowKernels *rk = rows_active();
    if (rk) rk->exp_sub(out, in, shift, shift1, n);
    else rows_exp_sub_body(out, in, shift, shift1, n);
}

void residual_forward(float *out, const float *in, size_t n) {
    // out (n) += in (n)
    const RowKernels *rk = rows_active();
    if (rk) rk->add(out, in, n);
    else rows_add_body(out, in, n);
    flops_elem((double)n);
}

void pool_forward(float *out, const float *x, const float *s, const size_t *offsets, size_t n,
                  size_t D) {
    // x (T, D), s (T) or NULL, out (n, D)
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * D;
        memset(o, 0, D * sizeof(float));
        float tot = 0.0f;
        for (size_t t = offsets[i]; t < offsets[i + 1]; t++) {
            float w = s ? s[t] : 1.0f;
            tot += w;
            const float *xr = x + t * D;
            for (size_t j = 0; j < D; j++) o[j] += w * xr[j];
        }
        float inv = tot > 0.0f ? 1.0f / tot : 0.0f;
        for (size_t j = 0; j < D; j++) o[j] *= inv;
        flops_matmul(1, D, offsets[i + 1] - offsets[i]);
        flops_elem((double)D);
    }
}

void pool_backward(float *dx, const float *dout, const float *s, const size_t *offsets, size_t n,
                   size_t D) {
    // dout (n, D), s (T) or NULL, dx (T, D) accumulates
    for (size_t i = 0; i < n; i++) {
        float tot = 0.0f;
        for (size_t t = offsets[i]; t < offsets[i + 1]; t++) tot += s ? s[t] : 1.0f;
        float inv = tot > 0.0f ? 1.0f / tot : 0.0f;
        const float *g = dout + i * D;
        for (size_t t = offsets[i]; t < offsets[i + 1]; t++) {
            float w = (s ? s[t] : 1.0f) * inv;
            float *d = dx + t * D;
            for (size_t j = 0; j < D; j++) d[j] += w * g[j];
        }
        flops_matmul(offsets[i + 1] - offsets[i], D, 1);
    }
}

float softmax_ce(const float *logits, const int32_t *labels, size_t n, size_t C, float *dlogits) {
    // logits (n, C), labels (n), dlogits (n, C) written
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * C;
        float mx = -INFINITY;
        for (size_t c = 0; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double sum = 0.0;
        for (size_t c = 0; c < C; c++) sum += exp((double)z[c] - mx);
        double lse = mx + log(sum);
        total += lse - z[labels[i]];
        if (dlogits) {
            for (size_t c = 0; c < C; c++) {
                double p = exp((double)z[c] - lse);
                dlogits[i * C + c] = (float)((p - (c == (size_t)labels[i] ? 1.0 : 0.0)) / (double)n);
            }
        }
    }
    flops_elem(3.0 * (double)n * C);
    return n ? (float)(total / (double)n) : 0.0f;
}
