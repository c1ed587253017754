// Exact softmax attention per sample (SPEC §3): softmax(Q K^T / sqrt(d) + log s_j) V.
// Fast path: per head and per block of ROW_BLOCK query rows, S = Q K^T and O = P V are CBLAS
// sgemms; the row softmax is the only hand-written loop (BLAS has no softmax). save holds P
// (H, N, N) for backward; backward needs ROW_BLOCK x N scratch (dP -> dS in place).
// FLOPs per head: Q K^T and P V as matrix products, plus 2 per score element (exp and
// normalisation; the log s add is a third when sizes are given). Backward: four matrix
// products plus 2 per score element.
#include "core/attention.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/flops.h"
#include "core/mem.h"
#include "core/ops.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif


// Rows of the score matrix handled per step: S, P and dS are produced and consumed a block of
// rows at a time, so the block stays in cache between the sgemm that writes it, the row
// softmax, and the sgemm that reads it. Only P itself (saved for backward) goes to memory.
#define ROW_BLOCK 64
#define PAR_MIN_ELEMS 65536  // score elements worth an OpenMP region

size_t attn_softmax_save_floats(size_t N, size_t D, size_t H) { (void)D; return H * N * N; }
size_t attn_softmax_work_floats(size_t N) { return (N < ROW_BLOCK ? N : ROW_BLOCK) * N; }

// In place: each of the nr rows of S (width N, already scaled) becomes softmax_j(S_ij + log_s_j).
// Starts from the row maximum. The sums are vectorised in a fixed lane order (deterministic).
static void softmax_rows(float *S, const float *log_s, size_t nr, size_t N, int par) {
    #pragma omp parallel for schedule(static) if (par && nr * N >= PAR_MIN_ELEMS)
    for (size_t i = 0; i < nr; i++) {
        float *r = S + i * N;
        if (log_s) {
            #pragma omp simd
            for (size_t j = 0; j < N; j++) r[j] += log_s[j];
        }
        float mx = -INFINITY;
        #pragma omp simd reduction(max : mx)
        for (size_t j = 0; j < N; j++) mx = r[j] > mx ? r[j] : mx;
        float sum = 0.0f;
        #pragma omp simd reduction(+ : sum)
        for (size_t j = 0; j < N; j++) { r[j] = ops_expf(r[j] - mx); sum += r[j]; }
        float inv = 1.0f / sum;
        #pragma omp simd
        for (size_t j = 0; j < N; j++) r[j] *= inv;
    }
}

// One row block of one head: S = scale Q_b K_h^T into its place in save, row softmax, O_b = P_b V_h.
static void forward_block(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, size_t N, size_t D, size_t d, size_t h,
                          size_t i0, float scale, int par_rows) {
    // q,k,v (N, ld); out (N, D); save P (H, N, N); rows [i0, i0 + nb) of head h
    size_t nb = N - i0 < ROW_BLOCK ? N - i0 : ROW_BLOCK;
    float *P = save + h * N * N + i0 * N;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)N, (int)d, scale,
                q + i0 * ld + h * d, (int)ld, k + h * d, (int)ld, 0.0f, P, (int)N);
    softmax_rows(P, log_s, nb, N, par_rows);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)N, 1.0f, P,
                (int)N, v + h * d, (int)ld, 0.0f, out + i0 * D + h * d, (int)D);
}

// Row blocks are independent, so when this runs outside a parallel region with several threads
// (one sample at a time: batch 1, or a caller that does not parallelise samples), the blocks of
// all heads are spread over OpenMP threads with single-threaded BLAS inside. Alternating
// OpenMP regions (softmax) with multi-threaded OpenBLAS calls 64 rows at a time made two
// thread pools hand over thousands of times per pass: 12x slower than one thread at N = 1024
// on the shared 2-core box. Every block is computed the same way either way (same numbers).
void attn_softmax_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N, ld) head h at cols [h*d,(h+1)*d); out (N, D); save P (H, N, N)
    size_t d = D / H, nblk = (N + ROW_BLOCK - 1) / ROW_BLOCK;
    float scale = 1.0f / sqrtf((float)d);
    int nthr = threads_get(), spread = 0;
#ifdef _OPENMP
    spread = nthr > 1 && !omp_in_parallel() && H * nblk > 1;
#endif
    if (spread) {
        openblas_set_num_threads(1);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t it = 0; it < H * nblk; it++)
            forward_block(out, save, q, k, v, ld, log_s, N, D, d, it / nblk, (it % nblk) * ROW_BLOCK, scale, 0);
        openblas_set_num_threads(nthr);
    } else {
        for (size_t h = 0; h < H; h++)
            for (size_t b = 0; b < nblk; b++)
                forward_block(out, save, q, k, v, ld, log_s, N, D, d, h, b * ROW_BLOCK, scale, 1);
    }
    for (size_t h = 0; h < H; h++) {
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_elem((log_s ? 3.0 : 2.0) * (double)N * N);
    }
}

void attn_softmax_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                              const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H, float *work) {
    // dout (N, D); save P (H, N, N); dq,dk,dv (N, ld) accumulate; work (min(N, ROW_BLOCK), N)
    (void)log_s;  // sizes are constants: no gradient flows through log s
    size_t d = D / H;
    float scale = 1.0f / sqrtf((float)d);
    for (size_t h = 0; h < H; h++) {
        for (size_t i0 = 0; i0 < N; i0 += ROW_BLOCK) {
            size_t nb = N - i0 < ROW_BLOCK ? N - i0 : ROW_BLOCK;
            const float *P = save + h * N * N + i0 * N;
            const float *dO = dout + i0 * D + h * d;
            float *dS = work;
            // dV_h += P_b^T dO_b
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)nb, 1.0f, P,
                        (int)N, dO, (int)D, 1.0f, dv + h * d, (int)ld);
            // dP_b = dO_b V_h^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)N, (int)d, 1.0f, dO,
                        (int)D, v + h * d, (int)ld, 0.0f, dS, (int)N);
            // dS = P * (dP - rowsum(P * dP))
            #pragma omp parallel for schedule(static) if (nb * N >= PAR_MIN_ELEMS)
            for (size_t i = 0; i < nb; i++) {
                const float *p = P + i * N;
                float *g = dS + i * N;
                float dot = 0.0f;
                #pragma omp simd reduction(+ : dot)
                for (size_t j = 0; j < N; j++) dot += p[j] * g[j];
                #pragma omp simd
                for (size_t j = 0; j < N; j++) g[j] = p[j] * (g[j] - dot);
            }
            // dQ_b += scale dS K_h ; dK_h += scale dS^T Q_b
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)N, scale, dS,
                        (int)N, k + h * d, (int)ld, 1.0f, dq + i0 * ld + h * d, (int)ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)nb, scale, dS,
                        (int)N, q + i0 * ld + h * d, (int)ld, 1.0f, dk + h * d, (int)ld);
        }
        flops_matmul(N, d, N);
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_matmul(N, d, N);
        flops_elem(2.0 * (double)N * N);
    }
}

void attn_softmax_backward(float *dq, float *dk, float *dv, const float *dout, const float *save,
                           const float *q, const float *k, const float *v, size_t ld,
                           const float *log_s, size_t N, size_t D, size_t H) {
    float *work = mem_alloc(attn_softmax_work_floats(N) * sizeof(float));
    if (!work) abort();  // void contract: callers that cannot afford this use the _ws form
    attn_softmax_backward_ws(dq, dk, dv, dout, save, q, k, v, ld, log_s, N, D, H, work);
    mem_free(work);
}

// ---- plain reference kernels (tests only): direct formulas, double accumulation ----

void attn_softmax_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N, ld), out (N, D)
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(N * sizeof(double));
    if (!p) abort();
    for (size_t h = 0; h < H; h++) {
        for (size_t i = 0; i < N; i++) {
            double mx = -INFINITY;
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t c = 0; c < d; c++) s += (double)q[i * ld + h * d + c] * k[j * ld + h * d + c];
                p[j] = s * scale + (log_s ? log_s[j] : 0.0);
                if (p[j] > mx) mx = p[j];
            }
            double sum = 0;
            for (size_t j = 0; j < N; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            for (size_t c = 0; c < d; c++) {
                double o = 0;
                for (size_t j = 0; j < N; j++) o += p[j] / sum * v[j * ld + h * d + c];
                out[i * D + h * d + c] = (float)o;
            }
        }
    }
    free(p);
}

void attn_softmax_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, size_t ld, const float *log_s,
                               size_t N, size_t D, size_t H) {
    // dout (N, D); dq,dk,dv (N, ld) accumulate
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(N * sizeof(double)), *dp = malloc(N * sizeof(double));
    if (!p || !dp) abort();
    for (size_t h = 0; h < H; h++) {
        for (size_t i = 0; i < N; i++) {
            double mx = -INFINITY, sum = 0;
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t c = 0; c < d; c++) s += (double)q[i * ld + h * d + c] * k[j * ld + h * d + c];
                p[j] = s * scale + (log_s ? log_s[j] : 0.0);
                if (p[j] > mx) mx = p[j];
            }
            for (size_t j = 0; j < N; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            double dot = 0;
            for (size_t j = 0; j < N; j++) {
                p[j] /= sum;
                double g = 0;
                for (size_t c = 0; c < d; c++) g += (double)dout[i * D + h * d + c] * v[j * ld + h * d + c];
                dp[j] = g;
                dot += p[j] * g;
            }
            for (size_t j = 0; j < N; j++) {
                double ds = p[j] * (dp[j] - dot) * scale;
                for (size_t c = 0; c < d; c++) {
                    dq[i * ld + h * d + c] += (float)(ds * k[j * ld + h * d + c]);
                    dk[j * ld + h * d + c] += (float)(ds * q[i * ld + h * d + c]);
                    dv[j * ld + h * d + c] += (float)(p[j] * dout[i * D + h * d + c]);
                }
            }
        }
    }
    free(p);
    free(dp);
}
