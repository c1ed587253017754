// Linformer attention, SPEC §3: per head
//   out = softmax(Q (E K)^T / sqrt(d)) (F V)
// E, F are (kp, n_max) row-major, shared by the heads; a sequence of N tokens uses only their
// first N columns (leading dimension stays n_max). Because E and F are shared by the heads,
// E K and F V are computed once for all heads as (kp, D) products.
//
// save layout: KP (kp, D) = E_N K, VP (kp, D) = F_N V, then per head h P_h (N, kp), the
// attention probabilities.
// FLOP convention (core/flops.h, the same as core/attn_softmax.c): matrix products 2 per
// multiply-add (the 1/sqrt(d) scale rides in the product's alpha); a softmax 2 per element (exp
// and normalisation); a softmax backward 2 per element.
#include <cblas.h>
#include <math.h>
#include "core/attention.h"
#include "core/flops.h"
#include "core/mem.h"

#define PAR_MIN_ROWS 256   // below this many tokens the row loops stay on one thread

size_t attn_linformer_save_floats(size_t N, size_t D, size_t H, size_t kp) {
    return 2 * kp * D + H * N * kp;
}

void attn_linformer_forward(float *out, float *save, const float *q, const float *k, const float *v,
                            size_t ld, const float *E, const float *F, size_t n_max, size_t kp,
                            size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld; E,F (kp,n_max) using columns [0,N); out (N,D) stride D
    if (N == 0) return;
    size_t d = D / H;
    float scale = 1.0f / sqrtf((float)d);
    float *KP = save, *VP = save + kp * D, *P = save + 2 * kp * D;
    // KP (kp,D) = E_N (kp,N) K (N,D); VP likewise with F
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)kp, (int)D, (int)N, 1.0f, E,
                (int)n_max, k, (int)ld, 0.0f, KP, (int)D);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)kp, (int)D, (int)N, 1.0f, F,
                (int)n_max, v, (int)ld, 0.0f, VP, (int)D);
    flops_matmul(kp, D, N);
    flops_matmul(kp, D, N);
    for (size_t h = 0; h < H; h++) {
        float *Ph = P + h * N * kp;
        // S (N,kp) = Q_h KP_h^T * scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)kp, (int)d, scale,
                    q + h * d, (int)ld, KP + h * d, (int)D, 0.0f, Ph, (int)kp);
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t i = 0; i < N; i++) {
            float *row = Ph + i * kp;
            float mx = -INFINITY;
            for (size_t r = 0; r < kp; r++) mx = row[r] > mx ? row[r] : mx;
            double sum = 0.0;
            for (size_t r = 0; r < kp; r++) {
                row[r] = expf(row[r] - mx);
                sum += row[r];
            }
            float inv = (float)(1.0 / sum);
            for (size_t r = 0; r < kp; r++) row[r] *= inv;
        }
        // out_h (N,d) = P_h (N,kp) VP_h (kp,d)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)kp, 1.0f, Ph,
                    (int)kp, VP + h * d, (int)D, 0.0f, out + h * d, (int)D);
        flops_matmul(N, kp, d);
        flops_elem(2.0 * (double)N * (double)kp);   // softmax
        flops_matmul(N, d, kp);
    }
}

static void count_backward_flops(size_t N, size_t D, size_t H, size_t kp, int with_dE,
                                 int with_dF) {
    size_t d = D / H;
    for (size_t h = 0; h < H; h++) {
        flops_matmul(kp, d, N);   // dVP_h = P^T dOut
        flops_matmul(N, kp, d);   // dP = dOut VP_h^T
        flops_elem(2.0 * (double)N * (double)kp);  // softmax backward
        flops_matmul(N, d, kp);   // dQ += dS KP_h
        flops_matmul(kp, d, N);   // dKP_h = dS^T Q
    }
    flops_matmul(N, D, kp);       // dK += E^T dKP
    flops_matmul(N, D, kp);       // dV += F^T dVP
    if (with_dE) flops_matmul(kp, N, D);
    if (with_dF) flops_matmul(kp, N, D);
}

// Plain backward kernel: loops, O(kp + D) stack, no heap. Reference for the BLAS path and its
// fallback when the workspace cannot be allocated (backward cannot report an error). It
// recomputes the softmax-backward row terms per projected row r, so it is O(N kp^2 D): slow, but
// correct with no memory beyond the stack.
void attn_linformer_backward_plain(float *dq, float *dk, float *dv, float *dE, float *dF,
                                   const float *dout, const float *save, const float *q,
                                   const float *k, const float *v, size_t ld, const float *E,
                                   const float *F, size_t n_max, size_t kp, size_t N, size_t D,
                                   size_t H) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; E,F,dE,dF (kp,n_max) cols [0,N)
    if (N == 0) return;
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    const float *KP = save, *VP = save + kp * D, *P = save + 2 * kp * D;
    float dS[kp], dKPr[D], dVPr[D];
    // dQ, row by row
    for (size_t h = 0; h < H; h++) {
        const float *Ph = P + h * N * kp;
        for (size_t i = 0; i < N; i++) {
            double delta = 0.0;
            for (size_t r = 0; r < kp; r++) {
                double acc = 0.0;
                for (size_t c = 0; c < d; c++)
                    acc += (double)dout[i * D + h * d + c] * VP[r * D + h * d + c];
                dS[r] = (float)acc;
                delta += acc * Ph[i * kp + r];
            }
            for (size_t r = 0; r < kp; r++)
                dS[r] = (float)(Ph[i * kp + r] * (dS[r] - delta) * scale);
            for (size_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (size_t r = 0; r < kp; r++) acc += (double)dS[r] * KP[r * D + h * d + c];
                dq[i * ld + h * d + c] += (float)acc;
            }
        }
    }
    // dK, dV, dE, dF one projected row r at a time
    for (size_t r = 0; r < kp; r++) {
        for (size_t x = 0; x < D; x++) { dKPr[x] = 0.0f; dVPr[x] = 0.0f; }
        for (size_t h = 0; h < H; h++) {
            const float *Ph = P + h * N * kp;
            for (size_t i = 0; i < N; i++) {
                const float *go = dout + i * D + h * d;
                double delta = 0.0, dPr = 0.0;
                for (size_t rr = 0; rr < kp; rr++) {
                    double acc = 0.0;
                    for (size_t c = 0; c < d; c++) acc += (double)go[c] * VP[rr * D + h * d + c];
                    delta += acc * Ph[i * kp + rr];
                    if (rr == r) dPr = acc;
                }
                double p = Ph[i * kp + r];
                double ds = p * (dPr - delta) * scale;
                for (size_t c = 0; c < d; c++) {
                    dVPr[h * d + c] += (float)(p * go[c]);
                    dKPr[h * d + c] += (float)(ds * q[i * ld + h * d + c]);
                }
            }
        }
        for (size_t j = 0; j < N; j++) {
            double ge = 0.0, gf = 0.0;
            for (size_t x = 0; x < D; x++) {
                dk[j * ld + x] += E[r * n_max + j] * dKPr[x];
                dv[j * ld + x] += F[r * n_max + j] * dVPr[x];
                ge += (double)dKPr[x] * k[j * ld + x];
                gf += (double)dVPr[x] * v[j * ld + x];
            }
            if (dE) dE[r * n_max + j] += (float)ge;
            if (dF) dF[r * n_max + j] += (float)gf;
        }
    }
}

size_t attn_linformer_work_floats(size_t N, size_t D, size_t H, size_t kp) {
    (void)H;
    return N * kp + 2 * kp * D;
}

void attn_linformer_backward_ws(float *dq, float *dk, float *dv, float *dE, float *dF,
                                const float *dout, const float *save, const float *q,
                                const float *k, const float *v, size_t ld, const float *E,
                                const float *F, size_t n_max, size_t kp, size_t N, size_t D,
                                size_t H, float *work) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; E,F,dE,dF (kp,n_max) cols [0,N);
    // work (N*kp + 2*kp*D)
    if (N == 0) return;
    size_t d = D / H;
    float scale = 1.0f / sqrtf((float)d);
    count_backward_flops(N, D, H, kp, dE != NULL, dF != NULL);
    const float *KP = save, *VP = save + kp * D, *P = save + 2 * kp * D;
    float *dP = work, *dKP = work + N * kp, *dVP = dKP + kp * D;
    for (size_t h = 0; h < H; h++) {
        const float *Ph = P + h * N * kp;
        const float *go = dout + h * d;
        // dVP_h (kp,d) = P_h^T dOut_h
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kp, (int)d, (int)N, 1.0f, Ph,
                    (int)kp, go, (int)D, 0.0f, dVP + h * d, (int)D);
        // dP (N,kp) = dOut_h VP_h^T, then dS = P (dP - rowdot) in place
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)kp, (int)d, 1.0f, go,
                    (int)D, VP + h * d, (int)D, 0.0f, dP, (int)kp);
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t i = 0; i < N; i++) {
            const float *p = Ph + i * kp;
            float *g = dP + i * kp;
            float delta = 0.0f;
            for (size_t r = 0; r < kp; r++) delta += p[r] * g[r];
            for (size_t r = 0; r < kp; r++) g[r] = p[r] * (g[r] - delta);
        }
        // dQ_h += scale dS KP_h ; dKP_h (kp,d) = scale dS^T Q_h
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)kp, scale, dP,
                    (int)kp, KP + h * d, (int)D, 1.0f, dq + h * d, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)kp, (int)d, (int)N, scale, dP,
                    (int)kp, q + h * d, (int)ld, 0.0f, dKP + h * d, (int)D);
    }
    // dK (N,D) += E_N^T dKP ; dV += F_N^T dVP
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)D, (int)kp, 1.0f, E,
                (int)n_max, dKP, (int)D, 1.0f, dk, (int)ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)D, (int)kp, 1.0f, F,
                (int)n_max, dVP, (int)D, 1.0f, dv, (int)ld);
    // dE_N (kp,N) += dKP K^T ; dF_N += dVP V^T
    if (dE)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)kp, (int)N, (int)D, 1.0f, dKP,
                    (int)D, k, (int)ld, 1.0f, dE, (int)n_max);
    if (dF)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)kp, (int)N, (int)D, 1.0f, dVP,
                    (int)D, v, (int)ld, 1.0f, dF, (int)n_max);
}

void attn_linformer_backward(float *dq, float *dk, float *dv, float *dE, float *dF,
                             const float *dout, const float *save, const float *q, const float *k,
                             const float *v, size_t ld, const float *E, const float *F,
                             size_t n_max, size_t kp, size_t N, size_t D, size_t H) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; E,F,dE,dF (kp,n_max) cols [0,N)
    if (N == 0) return;
    float *work = mem_alloc(attn_linformer_work_floats(N, D, H, kp) * sizeof(float));
    if (!work) {
        count_backward_flops(N, D, H, kp, dE != NULL, dF != NULL);
        attn_linformer_backward_plain(dq, dk, dv, dE, dF, dout, save, q, k, v, ld, E, F, n_max,
                                      kp, N, D, H);
        return;
    }
    attn_linformer_backward_ws(dq, dk, dv, dE, dF, dout, save, q, k, v, ld, E, F, n_max, kp, N,
                               D, H, work);
    mem_free(work);
}
