// Exact softmax attention per sample (SPEC §3), the textbook ("dense") way:
// softmax(Q K^T / sqrt(d) + log s_j) V with the whole score matrix of every head materialised.
// Per head h: S = scale Q_h K_h^T (one sgemm into that head's (N, N) slab of save), + log s_j
// on every column, row softmax in place (from the row maximum), O_h = P V_h (one sgemm).
// P of every head stays in save for backward, as PyTorch autograd keeps it: backward reads P,
// forms dP = dO_h V_h^T in work (N, N) and dS = P * (dP - rowsum(P * dP)) there, and every
// gradient product is one sgemm.
// Memory: save holds H N^2 floats (128 MiB per sample and block at N = 4096, H = 2), work
// N^2 floats (one head's dP/dS at a time).
// Why it exists: it is the baseline researchers compare efficient attention against (what an
// autograd framework runs), selectable so that a profile can show both. The tiled kernel
// (core/attn_softmax.c: P never stored, recomputed in backward) is the default.
// FLOPs are counted exactly as core/attn_softmax.c counts them (per head: Q K^T and P V as
// matrix products, 2 per score element, a third with log s; backward four matrix products plus
// 2 per score element), so both implementations report the same FLOPs for the same shapes.
// Threads: the sgemms are threaded by OpenBLAS; the row softmax and its backward are the tiled
// kernel's (attn_softmax_rows, attn_softmax_ds_rows: OpenMP, one row per thread, each row's
// sums in a fixed lane order), so results do not depend on the count.
#include "core/attention.h"
#include <cblas.h>
#include <math.h>
#include "core/flops.h"

size_t attn_softmax_dense_save_floats(size_t N, size_t D, size_t H) { return H * N * N; }
size_t attn_softmax_dense_work_floats(size_t N) { return N * N; }

void attn_softmax_dense_forward(float *out, float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N, ld) head h at cols [h*d,(h+1)*d); out (N, D); save P (H, N, N)
    size_t d = D / H;
    float scale = 1.0f / sqrtf((float)d);
    for (size_t h = 0; h < H && N > 0; h++) {  // N = 0: nothing to do (and BLAS refuses ld 0)
        float *P = save + h * N * N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)d, scale, q + h * d,
                    (int)ld, k + h * d, (int)ld, 0.0f, P, (int)N);
        attn_softmax_rows(P, N, NULL, NULL, log_s, N, N, 1);   // the tiled kernel's row softmax
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)N, 1.0f, P, (int)N,
                    v + h * d, (int)ld, 0.0f, out + h * d, (int)D);
    }
    for (size_t h = 0; h < H; h++) {
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_elem((log_s ? 3.0 : 2.0) * (double)N * N);
    }
}

void attn_softmax_dense_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                                    const float *q, const float *k, const float *v, size_t ld,
                                    const float *log_s, size_t N, size_t D, size_t H, float *work) {
    // dout (N, D); save P (H, N, N); dq,dk,dv (N, ld) accumulate; work dP/dS (N, N)
    // no gradient flows through log s (sizes are constants); it only shaped P in forward
    size_t d = D / H;
    float scale = 1.0f / sqrtf((float)d);
    for (size_t h = 0; h < H && N > 0; h++) {
        const float *P = save + h * N * N, *dO = dout + h * d;
        // dV_h += P^T dO_h
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)N, 1.0f, P, (int)N, dO,
                    (int)D, 1.0f, dv + h * d, (int)ld);
        // dP = dO_h V_h^T, then dS in place
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)N, (int)d, 1.0f, dO, (int)D,
                    v + h * d, (int)ld, 0.0f, work, (int)N);
        attn_softmax_ds_rows(work, P, N, N, N);   // the tiled kernel's softmax backward rows
        // dQ_h += scale dS K_h ; dK_h += scale dS^T Q_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)N, scale, work, (int)N,
                    k + h * d, (int)ld, 1.0f, dq + h * d, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)N, scale, work, (int)N,
                    q + h * d, (int)ld, 1.0f, dk + h * d, (int)ld);
    }
    for (size_t h = 0; h < H; h++) {
        flops_matmul(N, d, N);
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_matmul(N, d, N);
        flops_elem(2.0 * (double)N * N);
    }
}
