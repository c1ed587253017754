// core/gemm.h's AVX-512 products against a double-precision reference: the three layouts, beta 0
// (old C ignored, NaN included) and 1 (nt: a bias), shapes around the 8 x 32 blocks, the 64-row chunks and the
// 512-row K slices, strided operands; the same bits with 1 and 2 threads; and the linear layers
// (core/ops.h) in the avx512 set against the plain set (cblas). Skipped on CPUs without AVX-512.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/gemm.h"
#include "core/kernels.h"
#include "core/ops.h"
#include "core/status.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

static int have_avx512(void) { return (kernels_cpu_mask() >> KERNELS_AVX512) & 1u; }

typedef enum { NT, NN, TN } Layout;
static const char *const NAMES[] = {"nt", "nn", "tn"};

// a(i, k) and b(k, j) of the product in each layout, from row-major buffers with strides.
static double a_at(Layout l, const float *A, size_t lda, size_t i, size_t k) { return l == TN ? A[k * lda + i] : A[i * lda + k]; }
static double b_at(Layout l, const float *B, size_t ldb, size_t k, size_t j) { return l == NT ? B[j * ldb + k] : B[k * ldb + j]; }

// beta 1 for nt means its bias (the old C is never read there).
static void call(Layout l, float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                 size_t M, size_t N, size_t K, float beta, const float *bias, int threads) {
    if (l == NT) gemm_nt_avx512(C, ldc, A, lda, B, ldb, M, N, K, beta != 0.0f ? bias : NULL, threads);
    else if (l == NN) gemm_nn_avx512(C, ldc, A, lda, B, ldb, M, N, K, beta, threads);
    else gemm_tn_avx512(C, ldc, A, lda, B, ldb, M, N, K, beta, threads);
}

Test(gemm, three_layouts_match_double_reference) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    static const size_t Ms[] = {1, 7, 8, 9, 65, 200};
    static const size_t Ns[] = {1, 15, 16, 17, 32, 33, 64, 192};
    static const size_t Ks[] = {0, 1, 5, 64, 600};
    size_t cases = 0;
    for (int l = 0; l < 3; l++)
        for (size_t mi = 0; mi < 6; mi++)
            for (size_t ni = 0; ni < 8; ni++)
                for (size_t ki = 0; ki < 5; ki++) {
                    size_t M = Ms[mi], N = Ns[ni], K = Ks[ki];
                    // strides larger than the rows, so a kernel reading past a row would be caught
                    size_t lda = (l == TN ? M : K) + 3, ldb = (l == NT ? K : N) + 2, ldc = N + 5;
                    size_t arows = l == TN ? K : M, brows = l == NT ? N : K;
                    float *A = malloc((arows * lda + 1) * sizeof(float)), *B = malloc((brows * ldb + 1) * sizeof(float));
                    float *C = malloc((M * ldc + 1) * sizeof(float)), *C0 = malloc((M * ldc + 1) * sizeof(float));
                    float *bias = malloc((N + 1) * sizeof(float));
                    uint64_t s = 7 + M * 131 + N * 17 + K;
                    gc_fill(A, arows * lda, &s, 1.0f);
                    gc_fill(B, brows * ldb, &s, 1.0f);
                    gc_fill(C0, M * ldc, &s, 1.0f);
                    gc_fill(bias, N, &s, 1.0f);
                    for (int beta = 0; beta < 2; beta++) {
                        memcpy(C, C0, M * ldc * sizeof(float));
                        if (!beta || l == NT) for (size_t i = 0; i < M; i++) C[i * ldc] = NAN;   // never read
                        call((Layout)l, C, ldc, A, lda, B, ldb, M, N, K, (float)beta, bias, 2);
                        for (size_t i = 0; i < M; i++)
                            for (size_t j = 0; j < ldc; j++) {
                                if (j >= N) {   // the stride's padding is never written
                                    cr_assert(C[i * ldc + j] == C0[i * ldc + j], "%s: wrote past a row", NAMES[l]);
                                    continue;
                                }
                                double want = !beta ? 0.0 : l == NT ? bias[j] : C0[i * ldc + j], mag = fabs(want);
                                for (size_t k = 0; k < K; k++) {
                                    double t = a_at((Layout)l, A, lda, i, k) * b_at((Layout)l, B, ldb, k, j);
                                    want += t;
                                    mag += fabs(t);
                                }
                                cr_assert(fabs(C[i * ldc + j] - want) <= 1e-6 * (mag + 1e-30) * (1 + sqrt((double)K)),
                                          "%s M=%zu N=%zu K=%zu beta=%d: C[%zu][%zu] = %.9g, want %.9g", NAMES[l], M, N, K,
                                          beta, i, j, C[i * ldc + j], want);
                            }
                        cases++;
                    }
                    free(A); free(B); free(C); free(C0); free(bias);
                }
    cr_assert_eq(cases, 3 * 6 * 8 * 5 * 2);
}

// Each element sums its k terms in order whatever the split: 1 and 2 threads give the same bits,
// on shapes large enough to run in parallel (K = 1500: three K slices for tn).
Test(gemm, same_bits_with_one_and_two_threads) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    size_t M = 300, N = 96, K = 1500;
    float *A = malloc(M * K * sizeof(float)), *B = malloc(N * K * sizeof(float));
    float *C1 = malloc(M * N * sizeof(float)), *C2 = malloc(M * N * sizeof(float));
    uint64_t s = 5;
    gc_fill(A, M * K, &s, 1.0f);
    gc_fill(B, N * K, &s, 1.0f);
    for (int l = 0; l < 3; l++) {
        // nt: A (M x K), B (N x K); nn: A (M x K), B (K x N); tn: A (K x M), B (K x N)
        size_t lda = l == TN ? M : K, ldb = l == NT ? K : N;
        call((Layout)l, C1, N, A, lda, B, ldb, M, N, K, 0.0f, NULL, 1);
        call((Layout)l, C2, N, A, lda, B, ldb, M, N, K, 0.0f, NULL, 2);
        cr_assert(!memcmp(C1, C2, M * N * sizeof(float)), "%s: 1 and 2 threads differ", NAMES[l]);
    }
    free(A); free(B); free(C1); free(C2);
}

// The linear layers in the avx512 set agree with the plain set's cblas products: forward with and
// without bias, and every gradient (accumulated onto nonzero buffers).
Test(gemm, linear_layers_agree_with_cblas) {
    if (!have_avx512()) cr_skip_test("no AVX-512 on this CPU");
    char err[256];
    size_t T = 777, NI = 64, NO = 192;
    float *in = malloc(T * NI * sizeof(float)), *w = malloc(NO * NI * sizeof(float)), *b = malloc(NO * sizeof(float));
    float *dout = malloc(T * NO * sizeof(float));
    float *out[2], *din[2], *dw[2], *db[2];
    uint64_t s = 9;
    gc_fill(in, T * NI, &s, 1.0f);
    gc_fill(w, NO * NI, &s, 0.2f);
    gc_fill(b, NO, &s, 1.0f);
    gc_fill(dout, T * NO, &s, 1.0f);
    threads_set(2);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(kernels_force(k ? KERNELS_AVX512 : KERNELS_PLAIN, err, sizeof err), MB_OK, "%s", err);
        out[k] = malloc(T * NO * sizeof(float));
        din[k] = malloc(T * NI * sizeof(float));
        dw[k] = malloc(NO * NI * sizeof(float));
        db[k] = malloc(NO * sizeof(float));
        for (size_t i = 0; i < T * NI; i++) din[k][i] = 0.5f;
        for (size_t i = 0; i < NO * NI; i++) dw[k][i] = -0.25f;
        for (size_t i = 0; i < NO; i++) db[k][i] = 0.0f;
        linear_forward(out[k], in, w, b, T, NI, NO);
        linear_backward(din[k], dw[k], db[k], dout, in, w, T, NI, NO);
    }
    struct { const char *name; float *x[2]; size_t n; } cmp[] = {
        {"out", {out[0], out[1]}, T * NO}, {"din", {din[0], din[1]}, T * NI}, {"dw", {dw[0], dw[1]}, NO * NI}};
    for (size_t c = 0; c < 3; c++) {
        double worst = 0, scale = 0;
        for (size_t i = 0; i < cmp[c].n; i++) {
            worst = fmax(worst, fabs((double)cmp[c].x[0][i] - cmp[c].x[1][i]));
            scale = fmax(scale, fabs((double)cmp[c].x[0][i]));
        }
        cr_assert(worst <= 2e-6 * scale, "%s: max difference %g (scale %g)", cmp[c].name, worst, scale);
    }
    cr_assert(!memcmp(db[0], db[1], NO * sizeof(float)), "db does not go through the products");
    for (int k = 0; k < 2; k++) { free(out[k]); free(din[k]); free(dw[k]); free(db[k]); }
    free(in); free(w); free(b); free(dout);
    threads_set(1);
}
