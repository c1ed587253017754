// Performer attention, FAVOR+ (Choromanski et al. 2021), SPEC §9.1: per head, with W (m, d)
// shared by the heads, x' = x d^(-1/4), sizes s_j = exp(log s_j) and eps = 1e-4,
//   phi(x')_l = m^(-1/2) (exp(w_l . x' - |x'|^2/2 - c) + eps)
//   Fq = phi(Q') (N, m) with c per query row, Ks_j = s_j phi(k_j') (N, m) with one c for all keys,
//   C = Ks^T V (m, d),  z = sum_j Ks_j (m),  out_i = Fq_i C / (Fq_i . z).
// The m x d context replaces the N x N attention matrix: O(N m d) time, O(N m + m d) memory.
//
// Backward (c held constant, see core/attn_performer.h), per head, G = dOut_h, r_i = 1/(Fq_i.z),
// T = G C^T (N, m):
//   a_i = Fq_i . T_i,  b_i = -a_i r_i^2,  dFq_i = r_i T_i + b_i z,
//   dC = sum_i r_i Fq_i g_i^T,  dz = sum_i b_i Fq_i,  dV += Ks dC,  dKs = V dC^T + 1 dz^T,
// then through the feature map (attn_performer_phi_backward), for F the weighted features:
//   dA = dF * (F - s_i m^(-1/2) eps)   (= dL/d(w_l . x'), since dF/dA = F - s_i m^(-1/2) eps)
//   dx += d^(-1/4) dA W - d^(-1/2) rowsum(dA) x        (the second term from -|x'|^2/2)
// so the saved features give the exponentials back without a second exp or a second product.
//
// save layout, per head h (contiguous block of 2 N m + m d + m + N floats):
//   Fq (N, m), Ks (N, m), C (m, d), z (m), r (N).
// FLOP convention (core/flops.h, SPEC §6): matrix products (x W^T, the context products, the N
// dot products Fq_i . z, the squared norms |x_i|^2 and their backward twins) 2 per multiply-add;
// the d^(-1/4) scale rides in the product's alpha (as linformer's 1/sqrt(d)); every element-wise
// operation 1 per element, as listed beside each count below (the feature map: max, subtract,
// exp, + eps, scale = 5 per feature, plus per-row terms).
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include "core/attn_performer.h"
#include "core/flops.h"
#include "core/mem.h"
#include "core/rng.h"

#define PAR_MIN_ROWS 256   // below this many tokens the row loops stay on one thread
#define PERF_EPS 1e-4f     // SPEC §9.1's positive floor of every feature

// ---------------------------------------------------------------- the random features
// Orthogonal rows by modified Gram-Schmidt in double, not a library QR: LAPACKE is not a
// dependency and d x d blocks (d = D/H, tens of columns) are tiny. Gram-Schmidt of the rows of a
// Gaussian matrix is its QR (of the transpose) with a positive R diagonal, so each block is a
// Haar-distributed orthonormal set, as the paper asks. A second pass ("twice is enough",
// Giraud et al. 2005) keeps the rows orthogonal to ~1e-15 even for an ill-conditioned draw, far
// below the float rounding of W; a row left with under 1e-6 of its norm (probability ~0) is
// redrawn, so the result is always a full orthonormal set.
int attn_performer_draw_features(float *W, size_t m, size_t d, uint64_t *rng) {
    // W (m,d) out
    if (m == 0 || d == 0) return 0;
    double *B = mem_alloc(d * d * sizeof(double));
    if (!B) return -1;
    for (size_t r0 = 0; r0 < m; r0 += d) {
        size_t nr = m - r0 < d ? m - r0 : d;
        for (size_t i = 0; i < nr; i++) {
            double *bi = B + i * d, n0, n;
            do {
                n0 = 0.0;
                for (size_t c = 0; c < d; c++) {
                    bi[c] = rng_normal(rng);
                    n0 += bi[c] * bi[c];
                }
                for (int pass = 0; pass < 2; pass++)
                    for (size_t p = 0; p < i; p++) {
                        const double *bp = B + p * d;
                        double dot = 0.0;
                        for (size_t c = 0; c < d; c++) dot += bi[c] * bp[c];
                        for (size_t c = 0; c < d; c++) bi[c] -= dot * bp[c];
                    }
                n = 0.0;
                for (size_t c = 0; c < d; c++) n += bi[c] * bi[c];
            } while (!(n > 1e-12 * n0));
            n = sqrt(n);
            for (size_t c = 0; c < d; c++) bi[c] /= n;
        }
        for (size_t i = 0; i < nr; i++)
            for (size_t c = 0; c < d; c++) W[(r0 + i) * d + c] = (float)B[i * d + c];
    }
    // row norms: each row times |g_l|, g_l ~ N(0, I_d) drawn independently (chi with d dof)
    for (size_t l = 0; l < m; l++) {
        double n = 0.0;
        for (size_t c = 0; c < d; c++) {
            double g = rng_normal(rng);
            n += g * g;
        }
        n = sqrt(n);
        for (size_t c = 0; c < d; c++) W[l * d + c] = (float)((double)W[l * d + c] * n);
    }
    mem_free(B);
    return 0;
}

// ---------------------------------------------------------------- the feature map

static void count_phi_flops(size_t N, size_t m, size_t d, int has_log_s) {
    double n = (double)N, nm = (double)N * (double)m;
    flops_matmul(N, m, d);                        // A = x' W^T
    flops_matmul(N, 1, d);                        // |x_i|^2
    flops_elem(n);                                // |x'|^2 / 2 = |x|^2 / (2 sqrt d)
    flops_elem(nm);                               // the max for c
    flops_elem(n);                                // offset |x'|^2/2 + c
    flops_elem(4.0 * nm);                         // subtract, exp, + eps, scale
    if (has_log_s) flops_elem(2.0 * n);           // s_i = exp(log s_i), s_i m^(-1/2)
}

void attn_performer_phi(float *F, const float *x, size_t ld, const float *log_s, const float *W,
                        size_t m, size_t N, size_t d, int per_row) {
    // x (N,d) stride ld, log_s (N) or NULL, W (m,d), F (N,m)
    if (N == 0) return;
    float xs = (float)pow((double)d, -0.25), hn_scale = (float)(0.5 / sqrt((double)d));
    float sm = (float)(1.0 / sqrt((double)m));
    // A (N,m) = x' W^T = d^(-1/4) x W^T, in F
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)m, (int)d, xs, x, (int)ld,
                W, (int)d, 0.0f, F, (int)m);
    float cg = -INFINITY;
    if (!per_row) {
        #pragma omp parallel for schedule(static) reduction(max : cg) if (N >= PAR_MIN_ROWS)
        for (size_t x0 = 0; x0 < N * m; x0++) cg = F[x0] > cg ? F[x0] : cg;
    }
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
    for (size_t i = 0; i < N; i++) {
        const float *xi = x + i * ld;
        float *fi = F + i * m;
        float nn = 0.0f;
        #pragma omp simd reduction(+ : nn)
        for (size_t c = 0; c < d; c++) nn += xi[c] * xi[c];
        float c = cg;
        if (per_row) {
            c = -INFINITY;
            for (size_t l = 0; l < m; l++) c = fi[l] > c ? fi[l] : c;
        }
        float off = nn * hn_scale + c;
        float f = log_s ? sm * expf(log_s[i]) : sm;
        for (size_t l = 0; l < m; l++) fi[l] = (expf(fi[l] - off) + PERF_EPS) * f;
    }
    count_phi_flops(N, m, d, log_s != NULL);
}

void attn_performer_phi_backward(float *dx, float *dF, const float *F, const float *x, size_t ld,
                                 const float *log_s, const float *W, size_t m, size_t N,
                                 size_t d) {
    // dx,x (N,d) stride ld, dF,F (N,m), log_s (N) or NULL, W (m,d); dF := dA
    if (N == 0) return;
    float xs = (float)pow((double)d, -0.25), xs2 = (float)(1.0 / sqrt((double)d));
    float floor0 = (float)(1e-4 / sqrt((double)m));
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
    for (size_t i = 0; i < N; i++) {
        const float *fi = F + i * m, *xi = x + i * ld;
        float *gi = dF + i * m, *dxi = dx + i * ld;
        float fl = log_s ? floor0 * expf(log_s[i]) : floor0;
        float rs = 0.0f;
        #pragma omp simd reduction(+ : rs)
        for (size_t l = 0; l < m; l++) {
            float a = gi[l] * (fi[l] - fl);
            gi[l] = a;
            rs += a;
        }
        float t = rs * xs2;
        #pragma omp simd
        for (size_t c = 0; c < d; c++) dxi[c] -= t * xi[c];
    }
    // dx (N,d) += d^(-1/4) dA (N,m) W (m,d)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)m, xs, dF, (int)m,
                W, (int)d, 1.0f, dx, (int)ld);
    double n = (double)N, nm = (double)N * (double)m;
    if (log_s) flops_elem(2.0 * n);               // exp(log s_i), floor s_i m^(-1/2) eps
    flops_elem(2.0 * nm);                         // dA = dF (F - floor)
    flops_elem(nm);                               // rowsum(dA)
    flops_elem(n);                                // rowsum / sqrt(d)
    flops_elem(2.0 * n * (double)d);              // dx -= (.) x
    flops_matmul(N, d, m);                        // dx += d^(-1/4) dA W
}

// ---------------------------------------------------------------- training forward / backward

size_t attn_performer_save_floats(size_t N, size_t D, size_t H, size_t m) {
    size_t d = D / H;
    return H * (2 * N * m + m * d + m + N);
}

// out_i (stride ldo) *= r_i = 1 / (Fq_i . z); r_i also to r when non-NULL.
static void normalise_rows(float *out, size_t ldo, const float *Fq, const float *z, float *r,
                           size_t N, size_t m, size_t d) {
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
    for (size_t i = 0; i < N; i++) {
        const float *fi = Fq + i * m;
        float den = 0.0f;
        #pragma omp simd reduction(+ : den)
        for (size_t l = 0; l < m; l++) den += fi[l] * z[l];
        float ri = 1.0f / den;
        if (r) r[i] = ri;
        float *oi = out + i * ldo;
        #pragma omp simd
        for (size_t c = 0; c < d; c++) oi[c] *= ri;
    }
}

// The query side and the output, shared by the training and inference forms: out = Fq C, the
// row denominators and the scaling (the feature maps count themselves).
static void count_query_side_flops(size_t N, size_t m, size_t d) {
    flops_matmul(N, d, m);                        // Fq C
    flops_matmul(N, 1, m);                        // Fq_i . z
    flops_elem((double)N + (double)N * (double)d);   // reciprocal, row scaling
}

void attn_performer_forward(float *out, float *save, const float *q, const float *k,
                            const float *v, size_t ld, const float *log_s, const float *W,
                            size_t m, size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, W (m,d), out (N,D) stride D,
    // save H (2Nm + md + m + N)
    if (N == 0) return;
    size_t d = D / H;
    double zs[m];
    for (size_t h = 0; h < H; h++) {
        float *Fq = save + h * (2 * N * m + m * d + m + N);
        float *Ks = Fq + N * m, *C = Ks + N * m, *z = C + m * d, *r = z + m;
        attn_performer_phi(Fq, q + h * d, ld, NULL, W, m, N, d, 1);
        attn_performer_phi(Ks, k + h * d, ld, log_s, W, m, N, d, 0);
        // C (m,d) = Ks^T (m,N) V_h (N,d)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)N, 1.0f, Ks,
                    (int)m, v + h * d, (int)ld, 0.0f, C, (int)d);
        // z (m) = column sums of Ks, in double
        for (size_t l = 0; l < m; l++) zs[l] = 0.0;
        for (size_t j = 0; j < N * m; j += m)
            for (size_t l = 0; l < m; l++) zs[l] += Ks[j + l];
        for (size_t l = 0; l < m; l++) z[l] = (float)zs[l];
        flops_matmul(m, d, N);
        flops_elem((double)N * (double)m);
        // out_h (N,d) = Fq (N,m) C (m,d), then each row over Fq_i . z
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)m, 1.0f, Fq,
                    (int)m, C, (int)d, 0.0f, out + h * d, (int)D);
        normalise_rows(out + h * d, D, Fq, z, r, N, m, d);
        count_query_side_flops(N, m, d);
    }
}

size_t attn_performer_work_floats(size_t N, size_t D, size_t H, size_t m) {
    size_t d = D / H;
    return N * m + m * d + m + N;
}

void attn_performer_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                                const float *save, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, const float *W, size_t m, size_t N,
                                size_t D, size_t H, float *work) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; W (m,d); save as forward;
    // work N m + m d + m + N: T (N,m), dC (m,d), dz (m), b (N)
    if (N == 0) return;
    size_t d = D / H;
    float *T = work, *dC = T + N * m, *dz = dC + m * d, *b = dz + m;
    double n = (double)N, nm = (double)N * (double)m;
    for (size_t h = 0; h < H; h++) {
        const float *Fq = save + h * (2 * N * m + m * d + m + N);
        const float *Ks = Fq + N * m, *C = Ks + N * m, *z = C + m * d, *r = z + m;
        const float *go = dout + h * d;
        // T (N,m) = dOut_h (N,d) C^T (d,m)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)m, (int)d, 1.0f, go,
                    (int)D, C, (int)d, 0.0f, T, (int)m);
        // b_i, and T_i := dFq_i = r_i T_i + b_i z
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t i = 0; i < N; i++) {
            const float *fq = Fq + i * m;
            float *t = T + i * m;
            float a = 0.0f;
            #pragma omp simd reduction(+ : a)
            for (size_t l = 0; l < m; l++) a += fq[l] * t[l];
            float ri = r[i], bi = -a * ri * ri;
            b[i] = bi;
            #pragma omp simd
            for (size_t l = 0; l < m; l++) t[l] = ri * t[l] + bi * z[l];
        }
        flops_matmul(N, m, d);                    // T = dOut C^T
        flops_matmul(N, 1, m);                    // a_i = Fq_i . T_i
        flops_elem(2.0 * n);                      // b_i = -a_i r_i^2
        flops_elem(3.0 * nm);                     // dFq = r_i T_i + b_i z
        attn_performer_phi_backward(dq + h * d, T, Fq, q + h * d, ld, NULL, W, m, N, d);
        // T_i := U_i = r_i Fq_i; dC (m,d) = U^T dOut_h; dz (m) = Fq^T b
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t i = 0; i < N; i++) {
            #pragma omp simd
            for (size_t l = 0; l < m; l++) T[i * m + l] = r[i] * Fq[i * m + l];
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)N, 1.0f, T,
                    (int)m, go, (int)D, 0.0f, dC, (int)d);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)m, 1.0f, Fq, (int)m, b, 1, 0.0f, dz, 1);
        // dV_h += Ks dC; T := dKs = V_h dC^T + 1 dz^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)m, 1.0f, Ks,
                    (int)m, dC, (int)d, 1.0f, dv + h * d, (int)ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)m, (int)d, 1.0f,
                    v + h * d, (int)ld, dC, (int)d, 0.0f, T, (int)m);
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN_ROWS)
        for (size_t j = 0; j < N; j++) {
            #pragma omp simd
            for (size_t l = 0; l < m; l++) T[j * m + l] += dz[l];
        }
        flops_elem(nm);                           // U = r_i Fq_i
        flops_matmul(m, d, N);                    // dC = U^T dOut
        flops_matmul(m, 1, N);                    // dz = Fq^T b
        flops_matmul(N, d, m);                    // dV += Ks dC
        flops_matmul(N, m, d);                    // dKs = V dC^T
        flops_elem(nm);                           // dKs += dz
        attn_performer_phi_backward(dk + h * d, T, Ks, k + h * d, ld, log_s, W, m, N, d);
    }
}

// ---------------------------------------------------------------- inference form
// One pass over the keys in chunks of PERF_INFER_ROWS rows with the key stabiliser as a running
// maximum c: per chunk A = K'_chunk W^T, c_new = max(c, max A), the accumulated Ce (m, d) and
// ze (m) rescaled by exp(c - c_new) (every chunk, so the count does not depend on the data),
// E_jl = s_j exp(A_jl - |k_j'|^2/2 - c_new), ze += column sums of E, Ce += E^T V_chunk,
// sv += s_j v_j, ssum += s_j. At the end every E is relative to the global maximum, and
//   C = m^(-1/2) (Ce + eps 1 sv^T),  z = m^(-1/2) (ze + eps ssum)
// are the forward's Ks^T V and sum_j Ks_j (the same sums, grouped differently). Queries then
// stream in chunks through the same feature map as the forward. work: C (m, d), z (m), one
// chunk (rows, m); the m + d double sums live on the stack.
// FLOPs against the forward's (per head): the key features cost 2 per element (subtract, exp;
// + 1 with sizes for s_j) instead of 4, and s_j's exp is taken twice; added are m d + m + 1 per
// chunk (rescale), d per key row (2 d with sizes) for sv and 1 for ssum, and d + 1 + 2 m d + 2 m
// at the end. Everything else (products, norms, max, column sums, query side) is the same.
#define PERF_INFER_ROWS 256

size_t attn_performer_infer_work_floats(size_t N, size_t D, size_t H, size_t m) {
    size_t d = D / H, rows = N < PERF_INFER_ROWS ? N : PERF_INFER_ROWS;
    return m * d + m + rows * m;
}

void attn_performer_forward_infer(float *out, float *work, const float *q, const float *k,
                                  const float *v, size_t ld, const float *log_s, const float *W,
                                  size_t m, size_t N, size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, W (m,d), out (N,D) stride D,
    // work m d + m + min(N,256) m: C (m,d), z (m), one chunk A (rows,m)
    if (N == 0) return;
    size_t d = D / H;
    float *C = work, *z = C + m * d, *A = z + m;
    float xs = (float)pow((double)d, -0.25), hn_scale = (float)(0.5 / sqrt((double)d));
    float sm = (float)(1.0 / sqrt((double)m));
    double ze[m], sv[d];
    double n = (double)N, nm = (double)N * (double)m, nd = (double)N * (double)d;
    for (size_t h = 0; h < H; h++) {
        const float *kh = k + h * d, *vh = v + h * d;
        for (size_t x = 0; x < m * d; x++) C[x] = 0.0f;
        for (size_t l = 0; l < m; l++) ze[l] = 0.0;
        for (size_t e = 0; e < d; e++) sv[e] = 0.0;
        double ssum = 0.0;
        float c = -INFINITY;
        size_t chunks = 0;
        for (size_t j0 = 0; j0 < N; j0 += PERF_INFER_ROWS, chunks++) {
            size_t r = N - j0 < PERF_INFER_ROWS ? N - j0 : PERF_INFER_ROWS;
            // A (r,m) = d^(-1/4) K_chunk W^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)r, (int)m, (int)d, xs,
                        kh + j0 * ld, (int)ld, W, (int)d, 0.0f, A, (int)m);
            float cm = c;
            for (size_t x = 0; x < r * m; x++) cm = A[x] > cm ? A[x] : cm;
            float f = expf(c - cm);   // 0 on the first chunk (c = -inf), where Ce, ze are 0
            for (size_t x = 0; x < m * d; x++) C[x] *= f;
            for (size_t l = 0; l < m; l++) ze[l] *= f;
            c = cm;
            #pragma omp parallel for schedule(static) if (r >= PAR_MIN_ROWS)
            for (size_t i = 0; i < r; i++) {
                const float *xi = kh + (j0 + i) * ld;
                float *ai = A + i * m;
                float nn = 0.0f;
                #pragma omp simd reduction(+ : nn)
                for (size_t cc = 0; cc < d; cc++) nn += xi[cc] * xi[cc];
                float off = nn * hn_scale + c;
                if (log_s) {
                    float s = expf(log_s[j0 + i]);
                    for (size_t l = 0; l < m; l++) ai[l] = s * expf(ai[l] - off);
                } else {
                    for (size_t l = 0; l < m; l++) ai[l] = expf(ai[l] - off);
                }
            }
            for (size_t i = 0; i < r; i++) {
                double s = log_s ? (double)expf(log_s[j0 + i]) : 1.0;
                const float *vi = vh + (j0 + i) * ld;
                for (size_t l = 0; l < m; l++) ze[l] += A[i * m + l];
                for (size_t e = 0; e < d; e++) sv[e] += s * vi[e];
                ssum += s;
            }
            // Ce (m,d) += E^T (m,r) V_chunk (r,d)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)r, 1.0f, A,
                        (int)m, vh + j0 * ld, (int)ld, 1.0f, C, (int)d);
        }
        float esv[d];
        double ess = 1e-4 * ssum;
        for (size_t e = 0; e < d; e++) esv[e] = (float)(1e-4 * sv[e]);
        for (size_t l = 0; l < m; l++) {
            for (size_t e = 0; e < d; e++) C[l * d + e] = sm * (C[l * d + e] + esv[e]);
            z[l] = sm * (float)(ze[l] + ess);
        }
        // key side FLOPs, as run
        flops_matmul(N, m, d);                    // A = K' W^T
        flops_matmul(N, 1, d);                    // |k_j|^2
        flops_elem(n);                            // |k'|^2 / 2
        flops_elem(nm);                           // running max
        flops_elem((double)chunks * (double)(m * d + m + 1));   // rescale: exp, Ce, ze
        flops_elem(n);                            // offset
        flops_elem(2.0 * nm);                     // subtract, exp
        if (log_s) flops_elem(2.0 * n + nm);      // s_j = exp(log s_j) (twice), s_j E_j
        flops_elem(nm);                           // ze += E
        flops_elem((log_s ? 2.0 : 1.0) * nd + n); // sv += s_j v_j, ssum += s_j
        flops_matmul(m, d, N);                    // Ce += E^T V
        flops_elem((double)(d + 1 + 2 * m * d + 2 * m));   // C, z with + eps terms, m^(-1/2)
        // queries in chunks through the forward's feature map
        for (size_t i0 = 0; i0 < N; i0 += PERF_INFER_ROWS) {
            size_t r = N - i0 < PERF_INFER_ROWS ? N - i0 : PERF_INFER_ROWS;
            attn_performer_phi(A, q + i0 * ld + h * d, ld, NULL, W, m, r, d, 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)d, (int)m, 1.0f, A,
                        (int)m, C, (int)d, 0.0f, out + i0 * D + h * d, (int)D);
            normalise_rows(out + i0 * D + h * d, D, A, z, NULL, r, m, d);
        }
        count_query_side_flops(N, m, d);
    }
}

// ---------------------------------------------------------------- plain reference kernels
// Loops in double from the formulas above (c held constant in backward, computed in double);
// O(m d) scratch from malloc (test oracle: aborts if it cannot get it). No FLOP counting.

// A_l = d^(-1/4) w_l . x for one row x (d), into a (m); returns |x'|^2 / 2.
static double ref_logits(double *a, const float *x, const float *W, size_t m, size_t d) {
    double xs = pow((double)d, -0.25), nn = 0.0;
    for (size_t c = 0; c < d; c++) nn += (double)x[c] * x[c];
    for (size_t l = 0; l < m; l++) {
        double acc = 0.0;
        for (size_t c = 0; c < d; c++) acc += (double)W[l * d + c] * x[c];
        a[l] = xs * acc;
    }
    return 0.5 * nn / sqrt((double)d);
}

// The key stabiliser of one head: max over keys j and features l of d^(-1/4) w_l . k_j.
static double ref_key_max(double *a, const float *kh, size_t ld, const float *W, size_t m,
                          size_t N, size_t d) {
    double ck = -INFINITY;
    for (size_t j = 0; j < N; j++) {
        ref_logits(a, kh + j * ld, W, m, d);
        for (size_t l = 0; l < m; l++) ck = fmax(ck, a[l]);
    }
    return ck;
}

// f (m) = s m^(-1/2) (exp(a - hn - c) + eps); c = max_l a_l when per_row.
static void ref_phi(double *f, const double *a, double hn, double c, int per_row, double s,
                    size_t m) {
    if (per_row) {
        c = -INFINITY;
        for (size_t l = 0; l < m; l++) c = fmax(c, a[l]);
    }
    double sm = 1.0 / sqrt((double)m);
    for (size_t l = 0; l < m; l++) f[l] = s * sm * (exp(a[l] - hn - c) + 1e-4);
}

// C (m,d) = sum_j Ks_j v_j^T, z (m) = sum_j Ks_j for one head; a, f (m) scratch; returns c_k.
static double ref_context(double *C, double *z, double *a, double *f, const float *kh,
                          const float *vh, size_t ld, const float *log_s, const float *W,
                          size_t m, size_t N, size_t d) {
    double ck = ref_key_max(a, kh, ld, W, m, N, d);
    for (size_t x = 0; x < m * d + m; x++) C[x] = 0.0;   // C then z, contiguous
    for (size_t j = 0; j < N; j++) {
        double hn = ref_logits(a, kh + j * ld, W, m, d);
        ref_phi(f, a, hn, ck, 0, log_s ? exp((double)log_s[j]) : 1.0, m);
        for (size_t l = 0; l < m; l++) {
            z[l] += f[l];
            for (size_t e = 0; e < d; e++) C[l * d + e] += f[l] * vh[j * ld + e];
        }
    }
    return ck;
}

void attn_performer_forward_ref(float *out, const float *q, const float *k, const float *v,
                                size_t ld, const float *log_s, const float *W, size_t m, size_t N,
                                size_t D, size_t H) {
    // q,k,v (N,D) stride ld, log_s (N) or NULL, W (m,d), out (N,D) stride D
    size_t d = D / H;
    double *C = malloc((m * d + 3 * m) * sizeof(double));
    if (!C) abort();
    double *z = C + m * d, *a = z + m, *f = a + m;
    for (size_t h = 0; h < H; h++) {
        ref_context(C, z, a, f, k + h * d, v + h * d, ld, log_s, W, m, N, d);
        for (size_t i = 0; i < N; i++) {
            double hn = ref_logits(a, q + i * ld + h * d, W, m, d);
            ref_phi(f, a, hn, 0.0, 1, 1.0, m);
            double den = 0.0;
            for (size_t l = 0; l < m; l++) den += f[l] * z[l];
            for (size_t e = 0; e < d; e++) {
                double num = 0.0;
                for (size_t l = 0; l < m; l++) num += f[l] * C[l * d + e];
                out[i * D + h * d + e] = (float)(num / den);
            }
        }
    }
    free(C);
}

void attn_performer_backward_ref(float *dq, float *dk, float *dv, const float *dout,
                                 const float *q, const float *k, const float *v, size_t ld,
                                 const float *log_s, const float *W, size_t m, size_t N, size_t D,
                                 size_t H) {
    // dout (N,D) stride D; dq,dk,dv,q,k,v (N,D) stride ld; W (m,d); accumulates
    size_t d = D / H;
    double *C = malloc((2 * m * d + 5 * m) * sizeof(double));
    if (!C) abort();
    double *z = C + m * d, *dC = z + m, *dz = dC + m * d, *a = dz + m, *f = a + m, *t = f + m;
    double xs = pow((double)d, -0.25), xs2 = 1.0 / sqrt((double)d), sm = 1.0 / sqrt((double)m);
    for (size_t h = 0; h < H; h++) {
        const float *qh = q + h * d, *kh = k + h * d, *vh = v + h * d;
        double ck = ref_context(C, z, a, f, kh, vh, ld, log_s, W, m, N, d);
        for (size_t x = 0; x < m * d + m; x++) dC[x] = 0.0;   // dC then dz
        for (size_t i = 0; i < N; i++) {
            const float *g = dout + i * D + h * d;
            double hn = ref_logits(a, qh + i * ld, W, m, d);
            ref_phi(f, a, hn, 0.0, 1, 1.0, m);
            double den = 0.0, dot = 0.0;
            for (size_t l = 0; l < m; l++) {
                den += f[l] * z[l];
                t[l] = 0.0;
                for (size_t e = 0; e < d; e++) t[l] += C[l * d + e] * g[e];
                dot += f[l] * t[l];
            }
            double r = 1.0 / den, b = -dot * r * r, rs = 0.0;
            for (size_t l = 0; l < m; l++) {
                dz[l] += b * f[l];
                for (size_t e = 0; e < d; e++) dC[l * d + e] += r * f[l] * g[e];
                t[l] = (r * t[l] + b * z[l]) * (f[l] - sm * 1e-4);   // dA
                rs += t[l];
            }
            for (size_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (size_t l = 0; l < m; l++) acc += t[l] * W[l * d + c];
                dq[i * ld + h * d + c] += (float)(xs * acc - xs2 * rs * qh[i * ld + c]);
            }
        }
        for (size_t j = 0; j < N; j++) {
            double s = log_s ? exp((double)log_s[j]) : 1.0, rs = 0.0;
            double hn = ref_logits(a, kh + j * ld, W, m, d);
            ref_phi(f, a, hn, ck, 0, s, m);
            for (size_t e = 0; e < d; e++) {
                double acc = 0.0;
                for (size_t l = 0; l < m; l++) acc += f[l] * dC[l * d + e];
                dv[j * ld + h * d + e] += (float)acc;
            }
            for (size_t l = 0; l < m; l++) {
                double dks = dz[l];
                for (size_t e = 0; e < d; e++) dks += vh[j * ld + e] * dC[l * d + e];
                t[l] = dks * (f[l] - s * sm * 1e-4);
                rs += t[l];
            }
            for (size_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (size_t l = 0; l < m; l++) acc += t[l] * W[l * d + c];
                dk[j * ld + h * d + c] += (float)(xs * acc - xs2 * rs * kh[j * ld + c]);
            }
        }
    }
    free(C);
}
