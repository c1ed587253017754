// Nyströmformer attention, SPEC §9.2 (see core/attn_nystrom.h for the function).
//
// save layout when N > m, per head h (contiguous block of 2 N m + 8 m^2 + 4 m d floats):
//   Ql (m, d), Kl (m, d)   scaled landmarks (segment means of q', k')
//   F  (N, m)              softmax(q' Kl^T)
//   A  (m, m)              softmax(Ql Kl^T)
//   Z  (NYSTROM_ITERS + 1, m, m)   Z_0 .. Z_6 of the pseudo-inverse iteration
//   B  (m, N)              softmax(Ql k'^T + log s)
//   BV (m, d), W (m, d)    B V and Z_6 (B V)
// When N <= m save is the tiled softmax kernel's.
// Backward recomputes each iteration's products from the saved Z_t (m^3 work, small next to the
// N m d products) and sends gradients through everything PyTorch autograd would, the scale of
// Z_0 included: d scale / dA flows to the column and row that attain the two maxima (the first
// index on ties).
// FLOP convention (core/flops.h): every matrix product 2 per multiply-add (the convolution's
// taps that fall inside the sequence too); a softmax 2 per element (+1 with log s), its backward
// 2; landmark means 1 per summed element plus 1 per mean; Z_0: 3 per element of A (two sums,
// one scale); one iteration: 4 m^3 products and 4 m^2 element-wise (three c I - X, one 1/4).
#include "core/attn_nystrom.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "core/attention.h"
#include "core/flops.h"

static size_t head_save(size_t N, size_t d, size_t m) {
    return 2 * N * m + (NYSTROM_ITERS + 2) * m * m + 4 * m * d;
}

size_t attn_nystrom_save_floats(size_t N, size_t D, size_t H, size_t m) {
    if (N <= m) return attn_softmax_save_floats(N, D, H);
    return H * head_save(N, D / H, m);
}

// Backward scratch per call (one head at a time): dF (N, m), dB (m, N), dQl, dKl, dBV, dW (m, d),
// and eight m x m matrices for the iteration and A.
size_t attn_nystrom_work_floats(size_t N, size_t D, size_t H, size_t m) {
    if (N <= m) return attn_softmax_work_floats(N);
    return 2 * N * m + 4 * m * (D / H) + 8 * m * m;
}

static size_t seg_lo(size_t i, size_t N, size_t m) { return i * N / m; }

// ---------------------------------------------------------------- convolution skip

// out[i, c] += sum_t conv[t] v[i + t - kc/2, c] over taps inside [0, N); x (N, d) stride ld,
// out (N, d) stride ldo. Hand-written: a 1-D depthwise convolution is no BLAS product.
static void conv_forward(float *out, size_t ldo, const float *x, size_t ld, const float *w,
                         size_t kc, size_t N, size_t d) {
    size_t pad = kc / 2;
    for (size_t i = 0; i < N; i++)
        for (size_t t = 0; t < kc; t++) {
            if (i + t < pad || i + t - pad >= N) continue;
            const float *xr = x + (i + t - pad) * ld;
            float wt = w[t];
            for (size_t c = 0; c < d; c++) out[i * ldo + c] += wt * xr[c];
        }
}

static void conv_backward(float *dx, float *dw, size_t ld, const float *dout, size_t ldo,
                          const float *x, const float *w, size_t kc, size_t N, size_t d) {
    size_t pad = kc / 2;
    for (size_t t = 0; t < kc; t++) {
        double g = 0.0;
        for (size_t i = 0; i < N; i++) {
            if (i + t < pad || i + t - pad >= N) continue;
            const float *xr = x + (i + t - pad) * ld;
            float *dxr = dx + (i + t - pad) * ld;
            const float *go = dout + i * ldo;
            for (size_t c = 0; c < d; c++) {
                g += (double)go[c] * xr[c];
                dxr[c] += w[t] * go[c];
            }
        }
        dw[t] += (float)g;
    }
}

// Taps of the convolution that fall inside the sequence (the ones computed).
static double conv_taps(size_t kc, size_t N) {
    double n = 0;
    size_t pad = kc / 2;
    for (size_t t = 0; t < kc; t++) {
        long lo = (long)pad - (long)t, hi = (long)N - 1 + (long)pad - (long)t;  // i range
        if (lo < 0) lo = 0;
        if (hi > (long)N - 1) hi = (long)N - 1;
        if (hi >= lo) n += (double)(hi - lo + 1);
    }
    return n;
}

static void count_conv(size_t kc, size_t N, size_t d, int backward) {
    double macs = conv_taps(kc, N) * (double)d * (backward ? 2.0 : 1.0);
    FlopCounter *fc = flops_active();
    if (fc) { fc->macs += macs; fc->flops += 2.0 * macs; }
}

// ---------------------------------------------------------------- small m x m helpers

// C = alpha A B (+ beta C), all m x m row-major.
static void mm(float *C, const float *A, int ta, const float *B, int tb, float alpha, float beta,
               size_t m) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)m, (int)m, alpha, A, (int)m, B, (int)m, beta, C, (int)m);
}

// X <- c I - X
static void c_minus(float *X, float c, size_t m) {
    for (size_t i = 0; i < m * m; i++) X[i] = -X[i];
    for (size_t i = 0; i < m; i++) X[i * m + i] += c;
}

// One iteration's intermediates from Z: P = A Z, T1 = 7I - P, T2 = 15I - P T1, T3 = 13I - P T2.
static void iter_terms(float *P, float *T1, float *T2, float *T3, const float *A, const float *Z,
                       size_t m) {
    mm(P, A, 0, Z, 0, 1.0f, 0.0f, m);
    memcpy(T1, P, m * m * sizeof(float));
    c_minus(T1, 7.0f, m);
    mm(T2, P, 0, T1, 0, 1.0f, 0.0f, m);
    c_minus(T2, 15.0f, m);
    mm(T3, P, 0, T2, 0, 1.0f, 0.0f, m);
    c_minus(T3, 13.0f, m);
}

// Column and row holding the largest column sum and row sum of A (first on ties).
static void z0_argmax(const float *A, size_t m, size_t *jc, size_t *ir, double *cmax, double *rmax) {
    *cmax = -INFINITY; *rmax = -INFINITY; *jc = 0; *ir = 0;
    for (size_t j = 0; j < m; j++) {
        double s = 0;
        for (size_t i = 0; i < m; i++) s += A[i * m + j];
        if (s > *cmax) { *cmax = s; *jc = j; }
    }
    for (size_t i = 0; i < m; i++) {
        double s = 0;
        for (size_t j = 0; j < m; j++) s += A[i * m + j];
        if (s > *rmax) { *rmax = s; *ir = i; }
    }
}

// ---------------------------------------------------------------- forward

typedef struct { float *Ql, *Kl, *F, *A, *Z, *B, *BV, *W; } Save;

static Save save_at(float *base, size_t N, size_t d, size_t m) {
    Save s;
    s.Ql = base;
    s.Kl = s.Ql + m * d;
    s.F = s.Kl + m * d;
    s.A = s.F + N * m;
    s.Z = s.A + m * m;
    s.B = s.Z + (NYSTROM_ITERS + 1) * m * m;
    s.BV = s.B + m * N;
    s.W = s.BV + m * d;
    return s;
}

// Segment means of x (N, d) stride ld, scaled by sc -> L (m, d).
static void landmarks(float *L, const float *x, size_t ld, float sc, size_t N, size_t d, size_t m) {
    for (size_t i = 0; i < m; i++) {
        size_t lo = seg_lo(i, N, m), hi = seg_lo(i + 1, N, m);
        double acc[d];
        for (size_t c = 0; c < d; c++) acc[c] = 0.0;
        for (size_t r = lo; r < hi; r++)
            for (size_t c = 0; c < d; c++) acc[c] += x[r * ld + c];
        for (size_t c = 0; c < d; c++) L[i * d + c] = (float)(sc * acc[c] / (double)(hi - lo));
    }
}

static void head_forward(float *out, Save s, const float *q, const float *k, const float *v,
                         size_t ld, const float *log_s, size_t N, size_t D, size_t d, size_t m) {
    float sc = 1.0f / sqrtf(sqrtf((float)d));
    landmarks(s.Ql, q, ld, sc, N, d, m);
    landmarks(s.Kl, k, ld, sc, N, d, m);
    // F = softmax(q' Kl^T), A = softmax(Ql Kl^T), B = softmax(Ql k'^T + log s)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)m, (int)d, sc, q, (int)ld,
                s.Kl, (int)d, 0.0f, s.F, (int)m);
    attn_softmax_rows(s.F, m, NULL, NULL, NULL, N, m, 1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)d, 1.0f, s.Ql, (int)d,
                s.Kl, (int)d, 0.0f, s.A, (int)m);
    attn_softmax_rows(s.A, m, NULL, NULL, NULL, m, m, 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)N, (int)d, sc, s.Ql, (int)d, k,
                (int)ld, 0.0f, s.B, (int)N);
    attn_softmax_rows(s.B, N, NULL, NULL, log_s, m, N, 0);
    // Z_0 = A^T / (max col sum * max row sum), then the iteration
    size_t jc, ir;
    double cmax, rmax;
    z0_argmax(s.A, m, &jc, &ir, &cmax, &rmax);
    float scale = (float)(1.0 / (cmax * rmax));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) s.Z[i * m + j] = scale * s.A[j * m + i];
    float P[m * m], T1[m * m], T2[m * m], T3[m * m];
    for (size_t t = 0; t < NYSTROM_ITERS; t++) {
        const float *Z = s.Z + t * m * m;
        iter_terms(P, T1, T2, T3, s.A, Z, m);
        mm(s.Z + (t + 1) * m * m, Z, 0, T3, 0, 0.25f, 0.0f, m);
    }
    const float *Zf = s.Z + NYSTROM_ITERS * m * m;
    // BV = B V, W = Z BV, out = F W
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)N, 1.0f, s.B, (int)N,
                v, (int)ld, 0.0f, s.BV, (int)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0f, Zf, (int)m,
                s.BV, (int)d, 0.0f, s.W, (int)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)m, 1.0f, s.F, (int)m,
                s.W, (int)d, 0.0f, out, (int)D);
}

static void count_forward(size_t N, size_t d, size_t m, int with_log_s) {
    flops_elem(2.0 * N * d + 2.0 * m * d);               // landmark sums and means (q and k)
    flops_matmul(N, m, d); flops_elem(2.0 * N * m);      // F
    flops_matmul(m, m, d); flops_elem(2.0 * m * m);      // A
    flops_matmul(m, N, d); flops_elem((with_log_s ? 3.0 : 2.0) * m * N);  // B
    flops_elem(3.0 * m * m);                             // Z_0
    for (size_t t = 0; t < NYSTROM_ITERS; t++) {
        for (int p = 0; p < 4; p++) flops_matmul(m, m, m);
        flops_elem(4.0 * m * m);
    }
    flops_matmul(m, d, N);                               // B V
    flops_matmul(m, d, m);                               // Z (B V)
    flops_matmul(N, d, m);                               // F W
}

void attn_nystrom_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, const float *conv, size_t kc, size_t N,
                          size_t D, size_t H, size_t m) {
    // q,k,v (N, ld) head h at cols [h*d,(h+1)*d); conv (H, kc); out (N, D)
    size_t d = D / H;
    if (N == 0) return;
    if (N <= m) {
        attn_softmax_forward(out, save, q, k, v, ld, log_s, N, D, H);
    } else {
        for (size_t h = 0; h < H; h++) {
            head_forward(out + h * d, save_at(save + h * head_save(N, d, m), N, d, m), q + h * d,
                         k + h * d, v + h * d, ld, log_s, N, D, d, m);
            count_forward(N, d, m, log_s != NULL);
        }
    }
    if (kc == 0) return;
    for (size_t h = 0; h < H; h++) {
        conv_forward(out + h * d, D, v + h * d, ld, conv + h * kc, kc, N, d);
        count_conv(kc, N, d, 0);
    }
}

// ---------------------------------------------------------------- backward

// dL/dX of X = softmax rows, given P (rows x cols) and dP in place -> dS.
static void softmax_bwd(float *dS, const float *P, size_t rows, size_t cols) {
    attn_softmax_ds_rows(dS, P, cols, rows, cols);
    flops_elem(2.0 * rows * cols);
}

// dL/d(segment means): every row of segment i receives dL/dL_i * sc / |segment|.
static void landmarks_bwd(float *dx, size_t ld, const float *dL, float sc, size_t N, size_t d,
                          size_t m) {
    for (size_t i = 0; i < m; i++) {
        size_t lo = seg_lo(i, N, m), hi = seg_lo(i + 1, N, m);
        float f = sc / (float)(hi - lo);
        for (size_t r = lo; r < hi; r++)
            for (size_t c = 0; c < d; c++) dx[r * ld + c] += f * dL[i * d + c];
    }
    flops_elem(2.0 * N * d);
}

static void head_backward(float *dq, float *dk, float *dv, const float *dout, size_t D, Save s,
                          const float *q, const float *k, const float *v, size_t ld, size_t N,
                          size_t d, size_t m, float *work) {
    float sc = 1.0f / sqrtf(sqrtf((float)d));
    size_t mm2 = m * m;
    float *dF = work, *dB = dF + N * m, *dQl = dB + m * N, *dKl = dQl + m * d, *dBV = dKl + m * d,
          *dW = dBV + m * d, *dZ = dW + m * d, *dA = dZ + mm2, *P = dA + mm2, *T1 = P + mm2,
          *T2 = T1 + mm2, *T3 = T2 + mm2, *dP = T3 + mm2, *dT = dP + mm2;
    const float *Zf = s.Z + NYSTROM_ITERS * mm2;
    // out = F W: dF = dout W^T, dW = F^T dout
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)m, (int)d, 1.0f, dout, (int)D,
                s.W, (int)d, 0.0f, dF, (int)m);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)N, 1.0f, s.F, (int)m,
                dout, (int)D, 0.0f, dW, (int)d);
    // W = Z BV: dZ = dW BV^T, dBV = Z^T dW
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)d, 1.0f, dW, (int)d,
                s.BV, (int)d, 0.0f, dZ, (int)m);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0f, Zf, (int)m,
                dW, (int)d, 0.0f, dBV, (int)d);
    // BV = B V: dB = dBV V^T, dV += B^T dBV
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)N, (int)d, 1.0f, dBV, (int)d,
                v, (int)ld, 0.0f, dB, (int)N);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)m, 1.0f, s.B, (int)N,
                dBV, (int)d, 1.0f, dv, (int)ld);
    // B = softmax(sc Ql k^T + log s): dQl = sc dS_B k, dk += sc dS_B^T Ql
    softmax_bwd(dB, s.B, m, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)N, sc, dB, (int)N, k,
                (int)ld, 0.0f, dQl, (int)d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)m, sc, dB, (int)N, s.Ql,
                (int)d, 1.0f, dk, (int)ld);
    // F = softmax(sc q Kl^T): dq += sc dS_F Kl, dKl = sc dS_F^T q
    softmax_bwd(dF, s.F, N, m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)d, (int)m, sc, dF, (int)m,
                s.Kl, (int)d, 1.0f, dq, (int)ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)N, sc, dF, (int)m, q,
                (int)ld, 0.0f, dKl, (int)d);
    // the iteration, last to first: Z' = 1/4 Z T3 with T3 = 13I - P T2, T2 = 15I - P T1,
    // T1 = 7I - P, P = A Z
    memset(dA, 0, mm2 * sizeof(float));
    for (size_t t = NYSTROM_ITERS; t-- > 0;) {
        const float *Z = s.Z + t * mm2;
        iter_terms(P, T1, T2, T3, s.A, Z, m);
        // dT3 = 1/4 Z^T dZ'; new dZ = 1/4 dZ' T3^T (+ A^T dP below)
        mm(dT, Z, 1, dZ, 0, 0.25f, 0.0f, m);
        mm(dP, dT, 0, T2, 1, -1.0f, 0.0f, m);          // dP  = -dT3 T2^T
        float *dZn = T2;                                // T2 is no longer needed after this line
        mm(dZn, dZ, 0, T3, 1, 0.25f, 0.0f, m);
        memcpy(dZ, dZn, mm2 * sizeof(float));
        mm(T3, P, 1, dT, 0, -1.0f, 0.0f, m);           // dT2 = -P^T dT3 (into T3's space)
        mm(dP, T3, 0, T1, 1, -1.0f, 1.0f, m);          // dP -= dT2 T1^T
        mm(dT, P, 1, T3, 0, -1.0f, 0.0f, m);           // dT1 = -P^T dT2
        for (size_t i = 0; i < mm2; i++) dP[i] -= dT[i];  // dP -= dT1
        mm(dA, dP, 0, Z, 1, 1.0f, 1.0f, m);            // P = A Z: dA += dP Z^T
        mm(dZ, s.A, 1, dP, 0, 1.0f, 1.0f, m);          //          dZ += A^T dP
        for (int p = 0; p < 4; p++) flops_matmul(m, m, m);   // recompute P, T2, T3 products
        for (int p = 0; p < 7; p++) flops_matmul(m, m, m);   // the seven gradient products
        flops_elem(5.0 * mm2);
    }
    // Z_0 = scale A^T, scale = 1 / (cmax rmax): dA += scale dZ0^T and through the two maxima
    size_t jc, ir;
    double cmax, rmax, gs = 0;
    z0_argmax(s.A, m, &jc, &ir, &cmax, &rmax);
    double scale = 1.0 / (cmax * rmax);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) {
            gs += (double)dZ[i * m + j] * s.A[j * m + i];
            dA[j * m + i] += (float)(scale * dZ[i * m + j]);
        }
    // d scale = -scale / cmax d cmax - scale / rmax d rmax; cmax sums column jc, rmax row ir
    for (size_t i = 0; i < m; i++) dA[i * m + jc] += (float)(-gs * scale / cmax);
    for (size_t j = 0; j < m; j++) dA[ir * m + j] += (float)(-gs * scale / rmax);
    flops_elem(4.0 * mm2);
    // A = softmax(Ql Kl^T): dQl += dS_A Kl, dKl += dS_A^T Ql
    softmax_bwd(dA, s.A, m, m);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0f, dA, (int)m,
                s.Kl, (int)d, 1.0f, dQl, (int)d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)m, 1.0f, dA, (int)m,
                s.Ql, (int)d, 1.0f, dKl, (int)d);
    landmarks_bwd(dq, ld, dQl, sc, N, d, m);
    landmarks_bwd(dk, ld, dKl, sc, N, d, m);
    flops_matmul(N, m, d); flops_matmul(m, d, N);    // dF, dW
    flops_matmul(m, m, d); flops_matmul(m, d, m);    // dZ, dBV
    flops_matmul(m, N, d); flops_matmul(N, d, m);    // dB, dV
    flops_matmul(m, d, N); flops_matmul(N, d, m);    // dQl, dk
    flops_matmul(N, d, m); flops_matmul(m, d, N);    // dq, dKl
    flops_matmul(m, d, m); flops_matmul(m, d, m);    // through A
}

void attn_nystrom_backward_ws(float *dq, float *dk, float *dv, float *dconv, const float *dout,
                              const float *save, const float *q, const float *k, const float *v,
                              size_t ld, const float *log_s, const float *conv, size_t kc, size_t N,
                              size_t D, size_t H, size_t m, float *work) {
    // dout (N, D); dq,dk,dv (N, ld) and dconv (H, kc) accumulate; save from forward
    size_t d = D / H;
    if (N == 0) return;
    if (N <= m) {
        attn_softmax_backward_ws(dq, dk, dv, dout, save, q, k, v, ld, log_s, N, D, H, work);
    } else {
        for (size_t h = 0; h < H; h++)
            head_backward(dq + h * d, dk + h * d, dv + h * d, dout + h * d, D,
                          save_at((float *)save + h * head_save(N, d, m), N, d, m), q + h * d,
                          k + h * d, v + h * d, ld, N, d, m, work);
    }
    if (kc == 0) return;
    for (size_t h = 0; h < H; h++) {
        conv_backward(dv + h * d, dconv + h * kc, ld, dout + h * d, D, v + h * d, conv + h * kc, kc,
                      N, d);
        count_conv(kc, N, d, 1);
    }
}

// ---------------------------------------------------------------- plain reference (double)

static void ref_softmax_rows(double *S, size_t rows, size_t cols, const double *log_s) {
    for (size_t i = 0; i < rows; i++) {
        double *r = S + i * cols, mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < cols; j++) {
            r[j] += log_s ? log_s[j] : 0.0;
            mx = fmax(mx, r[j]);
        }
        for (size_t j = 0; j < cols; j++) sum += r[j] = exp(r[j] - mx);
        for (size_t j = 0; j < cols; j++) r[j] /= sum;
    }
}

// C (r x c) = A (r x n) B (n x c), all dense row-major double.
static void ref_mm(double *C, const double *A, const double *B, size_t r, size_t n, size_t c) {
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j < c; j++) {
            double s = 0;
            for (size_t t = 0; t < n; t++) s += A[i * n + t] * B[t * c + j];
            C[i * c + j] = s;
        }
}

static void ref_head(double *out, size_t D, const double *q, const double *k, const double *v,
                     size_t ld, const double *log_s, size_t N, size_t d, size_t m) {
    double sc = pow((double)d, -0.25);
    double qs[N * d], ks[N * d], vs[N * d];
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < d; c++) {
            qs[i * d + c] = sc * q[i * ld + c];
            ks[i * d + c] = sc * k[i * ld + c];
            vs[i * d + c] = v[i * ld + c];
        }
    if (N <= m) {  // exact softmax attention
        double S[N * N];
        for (size_t i = 0; i < N; i++)
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t c = 0; c < d; c++) s += qs[i * d + c] * ks[j * d + c];
                S[i * N + j] = s;
            }
        ref_softmax_rows(S, N, N, log_s);
        double o[N * d];
        ref_mm(o, S, vs, N, N, d);
        for (size_t i = 0; i < N; i++)
            for (size_t c = 0; c < d; c++) out[i * D + c] = o[i * d + c];
        return;
    }
    double Ql[m * d], Kl[m * d], KlT[d * m], kT[d * N];
    for (size_t i = 0; i < m; i++) {
        size_t lo = seg_lo(i, N, m), hi = seg_lo(i + 1, N, m);
        for (size_t c = 0; c < d; c++) {
            double a = 0, b = 0;
            for (size_t r = lo; r < hi; r++) { a += qs[r * d + c]; b += ks[r * d + c]; }
            Ql[i * d + c] = a / (double)(hi - lo);
            Kl[i * d + c] = b / (double)(hi - lo);
        }
    }
    for (size_t i = 0; i < m; i++)
        for (size_t c = 0; c < d; c++) KlT[c * m + i] = Kl[i * d + c];
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < d; c++) kT[c * N + i] = ks[i * d + c];
    double F[N * m], A[m * m], B[m * N];
    ref_mm(F, qs, KlT, N, d, m);
    ref_softmax_rows(F, N, m, NULL);
    ref_mm(A, Ql, KlT, m, d, m);
    ref_softmax_rows(A, m, m, NULL);
    ref_mm(B, Ql, kT, m, d, N);
    ref_softmax_rows(B, m, N, log_s);
    double cmax = -INFINITY, rmax = -INFINITY;
    for (size_t j = 0; j < m; j++) {
        double s = 0;
        for (size_t i = 0; i < m; i++) s += A[i * m + j];
        cmax = fmax(cmax, s);
    }
    for (size_t i = 0; i < m; i++) {
        double s = 0;
        for (size_t j = 0; j < m; j++) s += A[i * m + j];
        rmax = fmax(rmax, s);
    }
    double Z[m * m], P[m * m], T[m * m], U[m * m];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) Z[i * m + j] = A[j * m + i] / (cmax * rmax);
    for (int t = 0; t < NYSTROM_ITERS; t++) {
        ref_mm(P, A, Z, m, m, m);
        for (size_t i = 0; i < m * m; i++) T[i] = -P[i];          // 7I - P
        for (size_t i = 0; i < m; i++) T[i * m + i] += 7.0;
        ref_mm(U, P, T, m, m, m);                                  // 15I - P T1
        for (size_t i = 0; i < m * m; i++) U[i] = -U[i];
        for (size_t i = 0; i < m; i++) U[i * m + i] += 15.0;
        ref_mm(T, P, U, m, m, m);                                  // 13I - P T2
        for (size_t i = 0; i < m * m; i++) T[i] = -T[i];
        for (size_t i = 0; i < m; i++) T[i * m + i] += 13.0;
        ref_mm(U, Z, T, m, m, m);
        for (size_t i = 0; i < m * m; i++) Z[i] = 0.25 * U[i];
    }
    double BV[m * d], W[m * d], o[N * d];
    ref_mm(BV, B, vs, m, N, d);
    ref_mm(W, Z, BV, m, m, d);
    ref_mm(o, F, W, N, m, d);
    for (size_t i = 0; i < N; i++)
        for (size_t c = 0; c < d; c++) out[i * D + c] = o[i * d + c];
}

void attn_nystrom_forward_ref(double *out, const double *q, const double *k, const double *v,
                              size_t ld, const double *log_s, const double *conv, size_t kc,
                              size_t N, size_t D, size_t H, size_t m) {
    size_t d = D / H, pad = kc / 2;
    for (size_t h = 0; h < H; h++) {
        ref_head(out + h * d, D, q + h * d, k + h * d, v + h * d, ld, log_s, N, d, m);
        for (size_t i = 0; i < N; i++)
            for (size_t t = 0; t < kc; t++) {
                if (i + t < pad || i + t - pad >= N) continue;
                for (size_t c = 0; c < d; c++)
                    out[i * D + h * d + c] += conv[h * kc + t] * v[(i + t - pad) * ld + h * d + c];
            }
    }
}
