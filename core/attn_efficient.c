// Efficient attention (Shen et al., WACV 2021), SPEC §3: per head
//   out = rho_q(Q) (rho_k(K)^T V)
// rho_q: softmax over the d features of each query row; rho_k: softmax over the N tokens of
// each key column, with + log s_j added to the key logits first (merged tokens keep their
// weight). The d x d context is the only "attention matrix": O(N d^2) time, O(N d + d^2)
// memory per head; nothing N x N is ever formed.
//
// save layout, per head h (contiguous block of 2*N*d + d*d floats):
//   Pq (N, d) = rho_q(Q_h), Pk (N, d) = rho_k(K_h), C (d, d) = Pk^T V_h.
// FLOP convention (core/flops.h, the same as core/attn_softmax.c): matrix products 2 per
// multiply-add; a softmax 2 per element (exp and normalisation), adding log s 1 more; a softmax
// backward 2 per element.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/flops.h"
#include "core/mem.h"
#include "core/ops.h"
#include "core/threads.h"

size_t attn_efficient_save_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H;
    return H * (2 * N * d + d * d);
}

#define PAR_MIN_ROWS 2048  // below this many tokens the (vectorised, ~60 cycles a row) element-wise
                           // loops stay on one thread: waking the team costs more

// The element-wise passes run over all H heads at once: a token's row of Q (or K) is D
// contiguous floats of the strided qkv buffer, read once for every head instead of once per
// head (the per-head passes were bound by cache misses on that buffer). Per element the
// operations are the per-head ones, in the same order. Destinations are per head:
// head h's row i goes to p + h * hs + i * pl.

// Row softmax over the d features of each head of each query row: q (N, D) stride ld, read in
// place (core/ops.h's ops_softmax_head_rows: the active kernel set's copy of the row softmax of
// core/attention.h, without the copy of Q when d is whole groups of 16). Its maximum, exp,
// 16-lane sum and scale are ops_row_max, ops_expf, ops_row_sum and the multiply, in that order.
static void softmax_rows(float *restrict p, size_t hs, size_t pl, const float *restrict q,
                         size_t ld, size_t N, size_t d, size_t H) {
    size_t nb = (N + PAR_MIN_ROWS - 1) / PAR_MIN_ROWS;   // blocks of rows, in parallel when many
    if (nb == 1) {   // no region at all (the inference form calls this per 256-row chunk)
        ops_softmax_head_rows(p, hs, pl, q, ld, N, d, H);
        return;
    }
    #pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * PAR_MIN_ROWS, n = N - i0 < PAR_MIN_ROWS ? N - i0 : PAR_MIN_ROWS;
        ops_softmax_head_rows(p + i0 * pl, hs, pl, q + i0 * ld, ld, n, d, H);
    }
}

// Column softmax over the N tokens of each key feature, with + log s_j. Hand-written: BLAS has
// no softmax. Three passes: column maxima (reads K), exp with the column sums (K + log s
// recomputed rather than stored; sums in double, row order, since N can be thousands of terms),
// scale. The first two are core/ops.h's ops_col_max and ops_col_exp_sum (core/rows_isa.h,
// compiled once per kernel set).
// Analytic forward cost, shared by attn_efficient_forward and attn_efficient_forward_infer (same
// math, so the same count). Per head: two softmaxes over N*d (2 per element), the optional
// log s add (1 per element), C = Pk^T V and out = Pq C.
static void count_forward_flops(size_t N, size_t d, size_t H, int has_log_s) {
    for (size_t h = 0; h < H; h++) {
        flops_elem((has_log_s ? 5.0 : 4.0) * (double)N * (double)d);
        flops_matmul(d, d, N);
        flops_matmul(N, d, d);
    }
}

void attn_efficient_forward(float *out, float *save, const float *q, const float *k, const float *v,
                            size_t ld, const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, out (N,D) stride D, save H*(2Nd + d*d)
    if (N == 0) return;
    size_t d = D / H, hs = 2 * N * d + d * d;
    // rho_k for every head: Pk_h = exp(K_h + log s - mx) / column sums; rho_q: Pq_h
    float mx[D], inv[D];
    double sum[D];
    ops_col_max(mx, k, ld, log_s, N, D);
    for (size_t c = 0; c < D; c++) sum[c] = 0.0;
    ops_col_exp_sum(save + N * d, hs, d, sum, k, ld, log_s, mx, N, d, H);
    for (size_t c = 0; c < D; c++) inv[c] = (float)(1.0 / sum[c]);
    for (size_t h = 0; h < H; h++) {
        float *Pk = save + h * hs + N * d;
        const float *ih = inv + h * d;
        for (size_t j = 0; j < N * d; j += d) {
            #pragma omp simd
            for (size_t c = 0; c < d; c++) Pk[j + c] *= ih[c];
        }
    }
    softmax_rows(save, hs, d, q, ld, N, d, H);
    for (size_t h = 0; h < H; h++) {
        float *Pq = save + h * hs;
        float *Pk = Pq + N * d;
        float *C = Pk + N * d;
        // C (d,d) = Pk^T (d,N) V_h (N,d)
        ops_gemm(1, 0, d, d, N, Pk, d, v + h * d, ld, 0.0f, C, d);
        // out_h (N,d) = Pq (N,d) C (d,d)
        ops_gemm(0, 0, N, d, d, Pq, d, C, d, 0.0f, out + h * d, D);
    }
    count_forward_flops(N, d, H, log_s != NULL);
}

// Plain backward kernel: loops only and O(d) stack, no heap. It is the reference the BLAS path is
// tested against, and the fallback when the BLAS path cannot get its workspace (backward cannot
// report an error). Same math, same accumulation semantics.
void attn_efficient_backward_plain(float *dq, float *dk, float *dv, const float *dout,
                                   const float *save, const float *q, const float *k,
                                   const float *v, size_t ld, const float *log_s, size_t N,
                                   size_t D, size_t H) {
    // dout (N,D) stride D; dq,dk,dv,v (N,D) stride ld; save as forward
    if (N == 0) return;
    size_t d = D / H;
    float row[d], dCc[d];
    for (size_t h = 0; h < H; h++) {
        const float *Pq = save + h * (2 * N * d + d * d);
        const float *Pk = Pq + N * d;
        const float *C = Pk + N * d;
        const float *go = dout + h * d;
        const float *vh = v + h * d;
        float *dqh = dq + h * d, *dkh = dk + h * d, *dvh = dv + h * d;
        // dQ: dPq_i = dOut_i C^T, then the row-softmax backward
        for (size_t i = 0; i < N; i++) {
            double delta = 0.0;
            for (size_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (size_t e = 0; e < d; e++) acc += (double)go[i * D + e] * C[c * d + e];
                row[c] = (float)acc;
                delta += acc * Pq[i * d + c];
            }
            for (size_t c = 0; c < d; c++)
                dqh[i * ld + c] += Pq[i * d + c] * (row[c] - (float)delta);
        }
        // dK, dV one key feature c at a time: dC_c = (Pq^T dOut)_c, dPk[:,c] = V dC_c
        for (size_t c = 0; c < d; c++) {
            for (size_t e = 0; e < d; e++) {
                double acc = 0.0;
                for (size_t i = 0; i < N; i++) acc += (double)Pq[i * d + c] * go[i * D + e];
                dCc[e] = (float)acc;
            }
            double colsum = 0.0;
            for (size_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (size_t e = 0; e < d; e++) acc += (double)dCc[e] * vh[j * ld + e];
                colsum += acc * Pk[j * d + c];
            }
            for (size_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (size_t e = 0; e < d; e++) acc += (double)dCc[e] * vh[j * ld + e];
                float p = Pk[j * d + c];
                dkh[j * ld + c] += p * (float)(acc - colsum);
                for (size_t e = 0; e < d; e++) dvh[j * ld + e] += p * dCc[e];
            }
        }
    }
}

static void count_backward_flops(size_t N, size_t d, size_t H) {
    for (size_t h = 0; h < H; h++) {
        flops_matmul(d, d, N);   // dC = Pq^T dOut
        flops_matmul(N, d, d);   // dPq = dOut C^T
        flops_matmul(N, d, d);   // dV += Pk dC
        flops_matmul(N, d, d);   // dPk = V dC^T
        flops_elem(4.0 * (double)N * (double)d);   // two softmax backwards
    }
}

// Row passes of the backward: the row softmax backward of dQ (dq += p * (g - p.g)), and dK's
// column-softmax backward (dk += pk * (g - colsum)). In parallel over rows only when long enough
// and no region is open (the model runs each sample's attention inside one): a nested or if(false)
// region still costs a libgomp call.
#define GO_PARALLEL(n) ((n) >= PAR_MIN_ROWS && !threads_in_parallel())
static inline void dq_row(float *restrict dqi, const float *restrict p, const float *restrict g, size_t d) {
    float delta = 0.0f;
    #pragma omp simd reduction(+ : delta)
    for (size_t c = 0; c < d; c++) delta += p[c] * g[c];
    #pragma omp simd
    for (size_t c = 0; c < d; c++) dqi[c] += p[c] * (g[c] - delta);
}
static inline void dk_row(float *restrict dkj, const float *restrict pk, const float *restrict g,
                          const float *restrict colsum, size_t d) {
    #pragma omp simd
    for (size_t c = 0; c < d; c++) dkj[c] += pk[c] * (g[c] - colsum[c]);
}

size_t attn_efficient_work_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H;
    return N * d + d * d + d;
}

void attn_efficient_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                                const float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, size_t N, size_t D, size_t H,
                                float *work) {
    // dout (N,D) stride D; dq,dk,dv,v (N,D) stride ld; save as forward; work (N*d + d*d + d)
    if (N == 0) return;
    size_t d = D / H;
    count_backward_flops(N, d, H);
    float *dP = work, *dC = work + N * d, *colsum = dC + d * d;
    for (size_t h = 0; h < H; h++) {
        const float *Pq = save + h * (2 * N * d + d * d);
        const float *Pk = Pq + N * d;
        const float *C = Pk + N * d;
        const float *go = dout + h * d;
        float *dqh = dq + h * d, *dkh = dk + h * d, *dvh = dv + h * d;
        // dC (d,d) = Pq^T dOut_h
        ops_gemm(1, 0, d, d, N, Pq, d, go, D, 0.0f, dC, d);
        // dPq (N,d) = dOut_h C^T
        ops_gemm(0, 1, N, d, d, go, D, C, d, 0.0f, dP, d);
        if (GO_PARALLEL(N)) {
            #pragma omp parallel for schedule(static)
            for (size_t i = 0; i < N; i++) dq_row(dqh + i * ld, Pq + i * d, dP + i * d, d);
        } else {
            for (size_t i = 0; i < N; i++) dq_row(dqh + i * ld, Pq + i * d, dP + i * d, d);
        }
        // dV_h += Pk dC
        ops_gemm(0, 0, N, d, d, Pk, d, dC, d, 1.0f, dvh, ld);
        // dPk (N,d) = V_h dC^T
        ops_gemm(0, 1, N, d, d, v + h * d, ld, dC, d, 0.0f, dP, d);
        double cs[d];
        for (size_t c = 0; c < d; c++) cs[c] = 0.0;
        for (size_t j = 0; j < N * d; j += d) {
            #pragma omp simd
            for (size_t c = 0; c < d; c++) cs[c] += (double)(Pk[j + c] * dP[j + c]);
        }
        for (size_t c = 0; c < d; c++) colsum[c] = (float)cs[c];
        if (GO_PARALLEL(N)) {
            #pragma omp parallel for schedule(static)
            for (size_t j = 0; j < N; j++) dk_row(dkh + j * ld, Pk + j * d, dP + j * d, colsum, d);
        } else {
            for (size_t j = 0; j < N; j++) dk_row(dkh + j * ld, Pk + j * d, dP + j * d, colsum, d);
        }
    }
}

void attn_efficient_backward(float *dq, float *dk, float *dv, const float *dout, const float *save,
                             const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H) {
    // dout (N,D) stride D; dq,dk,dv,v (N,D) stride ld; save as forward
    if (N == 0) return;
    float *work = mem_alloc(attn_efficient_work_floats(N, D, H) * sizeof(float));
    if (!work) {
        count_backward_flops(N, D / H, H);
        attn_efficient_backward_plain(dq, dk, dv, dout, save, q, k, v, ld, log_s, N, D, H);
        return;
    }
    attn_efficient_backward_ws(dq, dk, dv, dout, save, q, k, v, ld, log_s, N, D, H, work);
    mem_free(work);
}

// ---------------------------------------------------------------- inference form
// The forward above keeps Pq, Pk (N, d) and C (d, d) of every head for backward. Inference needs
// none of it, so this form streams over row chunks of EFF_INFER_ROWS tokens and holds one head's
// C (d, d) and one chunk (rows, d) at a time: work = d*d + min(N, EFF_INFER_ROWS)*d floats,
// independent of N once N >= EFF_INFER_ROWS (256 rows: 8 K floats = 32 KiB at d = 32, so the
// chunk stays in L2).
//   1. mx[c] = max_j (K[j][c] + log s_j)                       (one sweep over K, all heads)
// Then per head:
//   2. per chunk: E = exp(K_chunk + log s - mx) (rows, d), sum[c] += column sums of E (double,
//      row order), Cu += E^T V_chunk (ops_gemm, beta = 1); then C = diag(1/sum) Cu
//   3. per chunk: out_chunk = rho_q(Q_chunk) C                 (ops_gemm)
// E and sum are bitwise the forward's (same float ops, same order), and so is rho_q(Q). The
// forward normalises Pk = E / sum before its one N-long product; here the normalisation is
// applied to the d x d result and the product is accumulated chunk by chunk, so C, and the
// output, differ from the forward's in the last bits only (~1e-6 relative; the tests bound
// the output difference at 4e-6). Doing the normalisation on C saves a second exp of K.
// (Passes 2-3 over all heads at once would need every head's C: H times the work.)
// Deterministic for a fixed thread count: element-wise loops split rows statically, the column
// sums run on one thread in row order, and the products (ops_gemm) see the same calls in the same order.
#define EFF_INFER_ROWS 256

size_t attn_efficient_infer_work_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H, rows = N < EFF_INFER_ROWS ? N : EFF_INFER_ROWS;
    return d * d + rows * d;
}

void attn_efficient_forward_infer(float *out, float *work, const float *q, const float *k,
                                  const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                                  size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, out (N,D) stride D,
    // work d*d + min(N,256)*d: C (d,d) then one chunk E or rho_q(Q) (rows,d)
    if (N == 0) return;
    size_t d = D / H;
    float *C = work, *E = work + d * d;
    float mx[D], inv[d];
    double sum[d];
    // pass 1: column maxima of K + log s (hand-written: BLAS has no reductions like this)
    ops_col_max(mx, k, ld, log_s, N, D);
    for (size_t h = 0; h < H; h++) {
        const float *qh = q + h * d, *kh = k + h * d, *vh = v + h * d;
        for (size_t c = 0; c < d; c++) sum[c] = 0.0;
        // pass 2: unnormalised context Cu = sum over chunks of E_chunk^T V_chunk
        for (size_t c = 0; c < d * d; c++) C[c] = 0.0f;
        for (size_t j0 = 0; j0 < N; j0 += EFF_INFER_ROWS) {
            size_t r = N - j0 < EFF_INFER_ROWS ? N - j0 : EFF_INFER_ROWS;
            ops_col_exp_sum(E, 0, d, sum, kh + j0 * ld, ld, log_s ? log_s + j0 : NULL, mx + h * d, r, d, 1);
            // C (d,d) += E^T (d,r) V_chunk (r,d)
            ops_gemm(1, 0, d, d, r, E, d, vh + j0 * ld, ld, 1.0f, C, d);
        }
        for (size_t c = 0; c < d; c++) inv[c] = (float)(1.0 / sum[c]);
        for (size_t c = 0; c < d; c++) {
            #pragma omp simd
            for (size_t e = 0; e < d; e++) C[c * d + e] *= inv[c];
        }
        // pass 3: out_chunk (r,d) = rho_q(Q_chunk) (r,d) C (d,d)
        for (size_t i0 = 0; i0 < N; i0 += EFF_INFER_ROWS) {
            size_t r = N - i0 < EFF_INFER_ROWS ? N - i0 : EFF_INFER_ROWS;
            softmax_rows(E, 0, d, qh + i0 * ld, ld, r, d, 1);
            ops_gemm(0, 0, r, d, d, E, d, C, d, 0.0f, out + i0 * D + h * d, D);
        }
    }
    count_forward_flops(N, d, H, log_s != NULL);
}
