// Linear attention (Katharopoulos et al. 2020), SPEC §9.3: per head, with phi(x) = elu(x) + 1
// applied element-wise to the raw q and k and sizes s_j = exp(log s_j),
//   Ks_j = s_j phi(k_j),  C = Ks^T V (d x d),  z = sum_j Ks_j (d),
//   out_i = phi(q_i) C / (phi(q_i) . z + 1e-6).
// Like efficient attention (core/attn_efficient.c) the d x d context is the only "attention
// matrix": O(N d^2) time, O(N d + d^2) memory per head, nothing N x N.
//
// Backward, per head, with G = dOut_h, r_i = 1/(phi(q_i) . z + 1e-6), T = G C^T:
//   a_i = phi(q_i) . T_i (= g_i . num_i),  b_i = -a_i r_i^2 (= dL/d den_i)
//   dphi(q_i) = r_i T_i + b_i z,           dq += dphi(q) * elu'(q)
//   dC = sum_i r_i phi(q_i) g_i^T,         dz = sum_i b_i phi(q_i)
//   dV += Ks dC,  dKs = V dC^T + 1 dz^T,   dk += dKs * s_j elu'(k)
// elu'(x) is 1 for x > 0 and exp(x) = phi(x) for x <= 0, so the saved features give it without
// another exp: elu'(q) = q > 0 ? 1 : phi(q), and s_j elu'(k_j) = k > 0 ? s_j : Ks_j.
//
// save layout, per head h (contiguous block of 2 N d + d d + d + N floats):
//   Fq (N, d) = phi(Q_h), Ks (N, d) = s_j phi(K_h)_j, C (d, d), z (d), r (N).
// FLOP convention (core/flops.h, SPEC §6): matrix products (the two d x d products, the N dot
// products phi(q_i) . z and their backward twins) 2 per multiply-add; the feature map elu + 1 is
// 2 per element; every other element-wise operation (exp of log s, the s_j scaling, sums,
// reciprocals, the backward's row combinations) 1 each, as listed beside the counts below.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include "core/attn_linear.h"
#include "core/flops.h"
#include "core/mem.h"

#define PAR_MIN_ROWS 256   // below this many tokens the row loops stay on one thread
#define LIN_EPS 1e-6f      // SPEC §9.3's denominator guard

// Branch-free (the sign of x is random, a branch mispredicts half the time): for x > 0 it is
// exp(0) + x = 1 + x, for x <= 0 exp(x) + 0, bit for bit the branchy form.
static inline float phi(float x) { return expf(fminf(x, 0.0f)) + fmaxf(x, 0.0f); }
static inline double phi_d(double x) { return x > 0.0 ? x + 1.0 : exp(x); }

size_t attn_linear_save_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H;
    return H * (2 * N * d + d * d + d + N);
}

// F (N, d) = s_i phi(x_i) for N rows x (stride ld); log_s NULL: s = 1 (F = phi(x) exactly).
static void features(float *restrict F, const float *restrict x, size_t ld,
                     const float *restrict log_s, size_t N, size_t d) {
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
    for (size_t i = 0; i < N; i++) {
        const float *xi = x + i * ld;
        float *fi = F + i * d;
        float s = log_s ? expf(log_s[i]) : 1.0f;
        for (size_t c = 0; c < d; c++) fi[c] = s * phi(xi[c]);
    }
}

// zs (d) += column sums of F (N, d), in row order, in double (N can be thousands of terms).
static void add_col_sums(double *zs, const float *F, size_t N, size_t d) {
    for (size_t j = 0; j < N * d; j += d) {
        #pragma omp simd
        for (size_t c = 0; c < d; c++) zs[c] += F[j + c];
    }
}

// out_i (stride ldo) *= r_i = 1 / (Fq_i . z + 1e-6); r_i also to r when non-NULL.
static void normalise_rows(float *out, size_t ldo, const float *Fq, const float *z, float *r,
                           size_t N, size_t d) {
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
    for (size_t i = 0; i < N; i++) {
        const float *fi = Fq + i * d;
        float den = 0.0f;
        #pragma omp simd reduction(+ : den)
        for (size_t c = 0; c < d; c++) den += fi[c] * z[c];
        float ri = 1.0f / (den + LIN_EPS);
        if (r) r[i] = ri;
        float *oi = out + i * ldo;
        #pragma omp simd
        for (size_t c = 0; c < d; c++) oi[c] *= ri;
    }
}

// Analytic forward cost, shared by the training and inference forms (same math, same count).
static void count_forward_flops(size_t N, size_t d, size_t H, int has_log_s) {
    double n = (double)N, nd = (double)N * (double)d;
    for (size_t h = 0; h < H; h++) {
        flops_elem(4.0 * nd);                     // phi(q), phi(k): elu and +1
        if (has_log_s) flops_elem(n + nd);        // s_j = exp(log s_j), s_j phi(k_j)
        flops_matmul(d, d, N);                    // C = Ks^T V
        flops_elem(nd);                           // z = column sums of Ks
        flops_matmul(N, d, d);                    // phi(Q) C
        flops_matmul(N, 1, d);                    // phi(q_i) . z
        flops_elem(2.0 * n + nd);                 // + 1e-6, reciprocal, row scaling
    }
}

void attn_linear_forward(float *out, float *save, const float *q, const float *k, const float *v,
                         size_t ld, const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, out (N,D) stride D, save H (2Nd + dd + d + N)
    if (N == 0) return;
    size_t d = D / H;
    double zs[d];
    for (size_t h = 0; h < H; h++) {
        float *Fq = save + h * (2 * N * d + d * d + d + N);
        float *Ks = Fq + N * d, *C = Ks + N * d, *z = C + d * d, *r = z + d;
        features(Fq, q + h * d, ld, NULL, N, d);
        features(Ks, k + h * d, ld, log_s, N, d);
        // C (d,d) = Ks^T (d,N) V_h (N,d)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)N, 1.0f, Ks,
                    (int)d, v + h * d, (int)ld, 0.0f, C, (int)d);
        for (size_t c = 0; c < d; c++) zs[c] = 0.0;
        add_col_sums(zs, Ks, N, d);
        for (size_t c = 0; c < d; c++) z[c] = (float)zs[c];
        // out_h (N,d) = Fq (N,d) C (d,d), then each row over its denominator
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)d, 1.0f, Fq,
                    (int)d, C, (int)d, 0.0f, out + h * d, (int)D);
        normalise_rows(out + h * d, D, Fq, z, r, N, d);
    }
    count_forward_flops(N, d, H, log_s != NULL);
}

static void count_backward_flops(size_t N, size_t d, size_t H, int has_log_s) {
    double n = (double)N, nd = (double)N * (double)d;
    for (size_t h = 0; h < H; h++) {
        flops_matmul(N, d, d);                    // T = dOut C^T
        flops_matmul(N, 1, d);                    // a_i = phi(q_i) . T_i
        flops_elem(2.0 * n);                      // b_i = -a_i r_i^2
        flops_elem(3.0 * nd);                     // dphi(q_i) = r_i T_i + b_i z
        flops_elem(2.0 * nd);                     // dq += dphi(q) elu'(q)
        flops_elem(nd);                           // U_i = r_i phi(q_i)
        flops_matmul(d, d, N);                    // dC = U^T dOut
        flops_matmul(d, 1, N);                    // dz = phi(Q)^T b
        flops_matmul(N, d, d);                    // dV += Ks dC
        flops_matmul(N, d, d);                    // dKs = V dC^T
        flops_elem(nd);                           // dKs += dz
        flops_elem(2.0 * nd);                     // dk += dKs s_j elu'(k)
        if (has_log_s) flops_elem(n);             // s_j = exp(log s_j)
    }
}

size_t attn_linear_work_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H;
    return N * d + d * d + d + N;
}

void attn_linear_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                             const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H, float *work) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; save as forward;
    // work N d + d d + d + N: T (N,d), dC (d,d), dz (d), b (N)
    if (N == 0) return;
    size_t d = D / H;
    count_backward_flops(N, d, H, log_s != NULL);
    float *T = work, *dC = T + N * d, *dz = dC + d * d, *b = dz + d;
    for (size_t h = 0; h < H; h++) {
        const float *Fq = save + h * (2 * N * d + d * d + d + N);
        const float *Ks = Fq + N * d, *C = Ks + N * d, *z = C + d * d, *r = z + d;
        const float *go = dout + h * d, *qh = q + h * d, *kh = k + h * d;
        float *dqh = dq + h * d, *dkh = dk + h * d;
        // T (N,d) = dOut_h (N,d) C^T (d,d)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)d, (int)d, 1.0f, go,
                    (int)D, C, (int)d, 0.0f, T, (int)d);
        // dq, b; then T_i := U_i = r_i phi(q_i) for dC
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t i = 0; i < N; i++) {
            const float *fq = Fq + i * d, *qi = qh + i * ld;
            float *t = T + i * d, *dqi = dqh + i * ld;
            float a = 0.0f;
            #pragma omp simd reduction(+ : a)
            for (size_t c = 0; c < d; c++) a += fq[c] * t[c];
            float ri = r[i], bi = -a * ri * ri;
            b[i] = bi;
            #pragma omp simd
            for (size_t c = 0; c < d; c++) {
                float g = ri * t[c] + bi * z[c];
                dqi[c] += g * (qi[c] > 0.0f ? 1.0f : fq[c]);
                t[c] = ri * fq[c];
            }
        }
        // dC (d,d) = U^T (d,N) dOut_h (N,d); dz (d) = Fq^T (d,N) b (N)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)N, 1.0f, T,
                    (int)d, go, (int)D, 0.0f, dC, (int)d);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)d, 1.0f, Fq, (int)d, b, 1, 0.0f, dz, 1);
        // dV_h += Ks dC; T = dKs - dz = V_h dC^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)d, 1.0f, Ks,
                    (int)d, dC, (int)d, 1.0f, dv + h * d, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)d, (int)d, 1.0f,
                    v + h * d, (int)ld, dC, (int)d, 0.0f, T, (int)d);
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t j = 0; j < N; j++) {
            const float *ks = Ks + j * d, *kj = kh + j * ld, *t = T + j * d;
            float *dkj = dkh + j * ld;
            float s = log_s ? expf(log_s[j]) : 1.0f;
            #pragma omp simd
            for (size_t c = 0; c < d; c++)
                dkj[c] += (t[c] + dz[c]) * (kj[c] > 0.0f ? s : ks[c]);
        }
    }
}

// ---------------------------------------------------------------- inference form
// The training forward keeps phi(Q), s phi(K) (N, d) per head for backward. Inference streams over
// chunks of LIN_INFER_ROWS tokens and holds one head's C (d, d), z (d) and one chunk (rows, d):
//   1. per key chunk: E = s phi(K_chunk), z += column sums (double, row order), C += E^T V_chunk
//   2. per query chunk: E = phi(Q_chunk), out_chunk = E C, each row over (E_i . z + 1e-6)
// The features, z and the row scaling are bitwise the forward's; C is accumulated chunk by chunk
// (sgemm with beta = 1), so outputs differ from the forward's in the last bits only.
#define LIN_INFER_ROWS 256

size_t attn_linear_infer_work_floats(size_t N, size_t D, size_t H) {
    size_t d = D / H, rows = N < LIN_INFER_ROWS ? N : LIN_INFER_ROWS;
    return d * d + d + rows * d;
}

void attn_linear_forward_infer(float *out, float *work, const float *q, const float *k,
                               const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                               size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, out (N,D) stride D,
    // work d d + d + min(N,256) d: C (d,d), z (d), one chunk E (rows,d)
    if (N == 0) return;
    size_t d = D / H;
    float *C = work, *z = C + d * d, *E = z + d;
    double zs[d];
    for (size_t h = 0; h < H; h++) {
        for (size_t c = 0; c < d * d; c++) C[c] = 0.0f;
        for (size_t c = 0; c < d; c++) zs[c] = 0.0;
        for (size_t j0 = 0; j0 < N; j0 += LIN_INFER_ROWS) {
            size_t r = N - j0 < LIN_INFER_ROWS ? N - j0 : LIN_INFER_ROWS;
            features(E, k + j0 * ld + h * d, ld, log_s ? log_s + j0 : NULL, r, d);
            add_col_sums(zs, E, r, d);
            // C (d,d) += E^T (d,r) V_chunk (r,d)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)r, 1.0f, E,
                        (int)d, v + j0 * ld + h * d, (int)ld, 1.0f, C, (int)d);
        }
        for (size_t c = 0; c < d; c++) z[c] = (float)zs[c];
        for (size_t i0 = 0; i0 < N; i0 += LIN_INFER_ROWS) {
            size_t r = N - i0 < LIN_INFER_ROWS ? N - i0 : LIN_INFER_ROWS;
            features(E, q + i0 * ld + h * d, ld, NULL, r, d);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)d, (int)d, 1.0f, E,
                        (int)d, C, (int)d, 0.0f, out + i0 * D + h * d, (int)D);
            normalise_rows(out + i0 * D + h * d, D, E, z, NULL, r, d);
        }
    }
    count_forward_flops(N, d, H, log_s != NULL);
}

// ---------------------------------------------------------------- plain reference kernels
// Loops in double, straight from the formulas above; O(d^2) scratch from malloc (test oracle:
// aborts if it cannot get it, like attn_softmax_forward_ref).

void attn_linear_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, out (N,D) stride D
    size_t d = D / H;
    double *C = malloc((d * d + 2 * d) * sizeof(double));
    if (!C) abort();
    double *z = C + d * d, *fq = z + d;
    for (size_t h = 0; h < H; h++) {
        for (size_t x = 0; x < d * d + d; x++) C[x] = 0.0;
        for (size_t j = 0; j < N; j++) {
            double s = log_s ? exp((double)log_s[j]) : 1.0;
            for (size_t c = 0; c < d; c++) {
                double f = s * phi_d(k[j * ld + h * d + c]);
                z[c] += f;
                for (size_t e = 0; e < d; e++) C[c * d + e] += f * v[j * ld + h * d + e];
            }
        }
        for (size_t i = 0; i < N; i++) {
            double den = LIN_EPS;
            for (size_t c = 0; c < d; c++) {
                fq[c] = phi_d(q[i * ld + h * d + c]);
                den += fq[c] * z[c];
            }
            for (size_t e = 0; e < d; e++) {
                double num = 0.0;
                for (size_t c = 0; c < d; c++) num += fq[c] * C[c * d + e];
                out[i * D + h * d + e] = (float)(num / den);
            }
        }
    }
    free(C);
}

void attn_linear_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, size_t ld, const float *log_s,
                              size_t N, size_t D, size_t H) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; accumulates
    size_t d = D / H;
    double *C = malloc((2 * d * d + 4 * d) * sizeof(double));
    if (!C) abort();
    double *z = C + d * d, *dC = z + d, *dz = dC + d * d, *fq = dz + d, *t = fq + d;
    for (size_t h = 0; h < H; h++) {
        for (size_t x = 0; x < 2 * (d * d + d); x++) C[x] = 0.0;   // C, z, dC, dz
        for (size_t j = 0; j < N; j++) {
            double s = log_s ? exp((double)log_s[j]) : 1.0;
            for (size_t c = 0; c < d; c++) {
                double f = s * phi_d(k[j * ld + h * d + c]);
                z[c] += f;
                for (size_t e = 0; e < d; e++) C[c * d + e] += f * v[j * ld + h * d + e];
            }
        }
        for (size_t i = 0; i < N; i++) {
            const float *g = dout + i * D + h * d;
            double den = LIN_EPS, a = 0.0;
            for (size_t c = 0; c < d; c++) {
                fq[c] = phi_d(q[i * ld + h * d + c]);
                den += fq[c] * z[c];
                t[c] = 0.0;
                for (size_t e = 0; e < d; e++) t[c] += C[c * d + e] * g[e];
                a += fq[c] * t[c];
            }
            double r = 1.0 / den, b = -a * r * r;
            for (size_t c = 0; c < d; c++) {
                double x = q[i * ld + h * d + c];
                dq[i * ld + h * d + c] += (float)((r * t[c] + b * z[c]) * (x > 0 ? 1.0 : fq[c]));
                dz[c] += b * fq[c];
                for (size_t e = 0; e < d; e++) dC[c * d + e] += r * fq[c] * g[e];
            }
        }
        for (size_t j = 0; j < N; j++) {
            double s = log_s ? exp((double)log_s[j]) : 1.0;
            const float *vj = v + j * ld + h * d;
            for (size_t c = 0; c < d; c++) {
                double x = k[j * ld + h * d + c], dks = dz[c];
                for (size_t e = 0; e < d; e++) dks += vj[e] * dC[c * d + e];
                dk[j * ld + h * d + c] += (float)(dks * s * (x > 0 ? 1.0 : exp(x)));
            }
            for (size_t e = 0; e < d; e++) {
                double acc = 0.0;
                for (size_t c = 0; c < d; c++) acc += s * phi_d(k[j * ld + h * d + c]) * dC[c * d + e];
                dv[j * ld + h * d + e] += (float)acc;
            }
        }
    }
    free(C);
}
