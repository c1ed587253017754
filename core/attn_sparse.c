// Block-sparse exact softmax attention engine (see core/attn_sparse.h).
#include "core/attn_sparse.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/mem.h"
#include "core/ops.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static size_t blk_rows(const AttnSparse *A) { return A->N < A->rows ? A->N : A->rows; }
size_t attn_sparse_fwd_scratch(const AttnSparse *A) { return (blk_rows(A) + 1) * A->wmax; }
size_t attn_sparse_bwd_scratch(const AttnSparse *A) { return (2 * blk_rows(A) + 1) * A->wmax; }

// S (nb, width) = scale Q_b K_runs^T, one sgemm per run, and the runs' log s gathered into lsg.
// Returns width.
static size_t scores(float *S, float *lsg, const float *qb, const float *kh, size_t ld,
                     const float *log_s, const size_t *run, size_t nruns, size_t nb, size_t d,
                     float scale) {
    // qb (nb, ld) at the head's columns; kh (N, ld) at the head's columns; S (nb, width)
    size_t width = 0;
    for (size_t t = 0; t < nruns; t++) width += run[2 * t + 1] - run[2 * t];
    for (size_t t = 0, col = 0; t < nruns; t++) {
        size_t k0 = run[2 * t], len = run[2 * t + 1] - k0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)len, (int)d, scale, qb,
                    (int)ld, kh + k0 * ld, (int)ld, 0.0f, S + col, (int)width);
        if (log_s) memcpy(lsg + col, log_s + k0, len * sizeof(float));
        col += len;
    }
    return width;
}

// Zero row r of S outside [lo, hi).
static void clear_outside(float *row, size_t lo, size_t hi, size_t width) {
    memset(row, 0, lo * sizeof(float));
    memset(row + hi, 0, (width - hi) * sizeof(float));
}

// C (nb, d) (= or +=) X_runs Y_runs: sum over runs of X[:, run cols] (nb x len) Y[k0:k1] (len x d).
static void times_runs(float *C, size_t ldc, const float *X, size_t width, const float *Y, size_t ld,
                       const size_t *run, size_t nruns, size_t nb, size_t d, float alpha, int accumulate) {
    for (size_t t = 0, col = 0; t < nruns; t++) {
        size_t k0 = run[2 * t], len = run[2 * t + 1] - k0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)len, alpha,
                    X + col, (int)width, Y + k0 * ld, (int)ld, accumulate || t ? 1.0f : 0.0f, C, (int)ldc);
        col += len;
    }
}

// One query block [i0, i0 + nb) of head h: P in scratch, O_b = P V_runs, (max, 1/sum) to stats.
static void forward_block(const AttnSparse *A, float *out, float *stats, float *scratch,
                          const float *q, const float *k, const float *v, size_t ld,
                          const float *log_s, size_t h, size_t i0) {
    size_t N = A->N, D = A->D, H = A->H, d = D / H, nb = N - i0 < A->rows ? N - i0 : A->rows;
    size_t run[2 * A->max_runs], lo[nb], hi[nb];
    size_t nruns = A->plan(A->ctx, h, i0, nb, run, lo, hi);
    float *S = scratch, *lsg = scratch + blk_rows(A) * A->wmax;
    size_t width = scores(S, lsg, q + i0 * ld + h * d, k + h * d, ld, log_s, run, nruns, nb, d,
                          1.0f / sqrtf((float)d));
    for (size_t r = 0; r < nb; r++) {
        float *row = S + r * width;
        attn_softmax_rows(row + lo[r], width, stats ? stats + h * N + i0 + r : NULL,
                          stats ? stats + (H + h) * N + i0 + r : NULL, log_s ? lsg + lo[r] : NULL, 1,
                          hi[r] - lo[r], 0);
        clear_outside(row, lo[r], hi[r], width);
    }
    times_runs(out + i0 * D + h * d, D, S, width, v + h * d, ld, run, nruns, nb, d, 1.0f, 0);
}

void attn_sparse_forward(const AttnSparse *A, float *out, float *stats, float *scratch,
                         const float *q, const float *k, const float *v, size_t ld,
                         const float *log_s) {
    // q,k,v (N, ld); out (N, D); stats (2, H, N) or NULL; scratch attn_sparse_fwd_scratch
    if (A->N == 0) return;
    size_t nblk = (A->N + A->rows - 1) / A->rows, items = A->H * nblk, sc = attn_sparse_fwd_scratch(A);
    float *extra = NULL;
    int nthr = threads_get(), spread = 0;
#ifdef _OPENMP
    spread = nthr > 1 && !omp_in_parallel() && items > 1;
    if (spread) extra = mem_alloc((size_t)(nthr - 1) * sc * sizeof(float));
    if (!extra) spread = 0;
#endif
    if (spread) {
        openblas_set_num_threads(1);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t it = 0; it < items; it++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            float *s = t == 0 ? scratch : extra + (size_t)(t - 1) * sc;
            forward_block(A, out, stats, s, q, k, v, ld, log_s, it / nblk, (it % nblk) * A->rows);
        }
        openblas_set_num_threads(nthr);
        mem_free(extra);
        return;
    }
    for (size_t it = 0; it < items; it++)
        forward_block(A, out, stats, scratch, q, k, v, ld, log_s, it / nblk, (it % nblk) * A->rows);
}

// Backward of one head, every query block in order: recompute P from (max, 1/sum), then
// dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ += scale dS K, dK += scale dS^T Q.
static void backward_head(const AttnSparse *A, float *dq, float *dk, float *dv, const float *dout,
                          const float *stats, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, float *work, size_t h) {
    size_t N = A->N, D = A->D, H = A->H, d = D / H, br = blk_rows(A);
    float scale = 1.0f / sqrtf((float)d), *P = work, *dS = work + br * A->wmax, *lsg = dS + br * A->wmax;
    const float *kh = k + h * d, *vh = v + h * d;
    for (size_t i0 = 0; i0 < N; i0 += A->rows) {
        size_t nb = N - i0 < A->rows ? N - i0 : A->rows;
        size_t run[2 * A->max_runs], lo[nb], hi[nb];
        size_t nruns = A->plan(A->ctx, h, i0, nb, run, lo, hi);
        const float *qb = q + i0 * ld + h * d, *dO = dout + i0 * D + h * d;
        size_t width = scores(P, lsg, qb, kh, ld, log_s, run, nruns, nb, d, scale);
        // P exactly as forward made it (attn_softmax_rows' element operations, saved statistics)
        for (size_t r = 0; r < nb; r++) {
            float *row = P + r * width, m = stats[h * N + i0 + r], iv = stats[(H + h) * N + i0 + r];
            if (log_s) {
                #pragma omp simd
                for (size_t j = lo[r]; j < hi[r]; j++) row[j] += lsg[j];
            }
            #pragma omp simd
            for (size_t j = lo[r]; j < hi[r]; j++) row[j] = ops_expf(row[j] - m) * iv;
            clear_outside(row, lo[r], hi[r], width);
        }
        for (size_t t = 0, col = 0; t < nruns; t++) {
            size_t k0 = run[2 * t], len = run[2 * t + 1] - k0;
            // dV_run += P_run^T dO_b ; dP_run = dO_b V_run^T
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)len, (int)d, (int)nb, 1.0f, P + col,
                        (int)width, dO, (int)D, 1.0f, dv + k0 * ld + h * d, (int)ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)len, (int)d, 1.0f, dO, (int)D,
                        vh + k0 * ld, (int)ld, 0.0f, dS + col, (int)width);
            col += len;
        }
        // outside a row's range P is 0, so dS is 0 there and rowsum(P dP) runs over the range
        attn_softmax_ds_rows(dS, P, width, nb, width);
        times_runs(dq + i0 * ld + h * d, ld, dS, width, kh, ld, run, nruns, nb, d, scale, 1);
        for (size_t t = 0, col = 0; t < nruns; t++) {
            size_t k0 = run[2 * t], len = run[2 * t + 1] - k0;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)len, (int)d, (int)nb, scale, dS + col,
                        (int)width, qb, (int)ld, 1.0f, dk + k0 * ld + h * d, (int)ld);
            col += len;
        }
    }
}

void attn_sparse_backward(const AttnSparse *A, float *dq, float *dk, float *dv, const float *dout,
                          const float *stats, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, float *work) {
    // dout (N, D); stats (2, H, N); dq,dk,dv (N, ld) accumulate; work attn_sparse_bwd_scratch
    if (A->N == 0) return;
    size_t sc = attn_sparse_bwd_scratch(A);
    float *extra = NULL;
    int nthr = threads_get(), spread = 0;
#ifdef _OPENMP
    if (nthr > (int)A->H) nthr = (int)A->H;
    spread = nthr > 1 && !omp_in_parallel();
    if (spread) extra = mem_alloc((size_t)(nthr - 1) * sc * sizeof(float));
    if (!extra) spread = 0;
#endif
    if (spread) {
        openblas_set_num_threads(1);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t h = 0; h < A->H; h++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            float *w = t == 0 ? work : extra + (size_t)(t - 1) * sc;
            backward_head(A, dq, dk, dv, dout, stats, q, k, v, ld, log_s, w, h);
        }
        openblas_set_num_threads(threads_get());
        mem_free(extra);
        return;
    }
    for (size_t h = 0; h < A->H; h++) backward_head(A, dq, dk, dv, dout, stats, q, k, v, ld, log_s, work, h);
}
