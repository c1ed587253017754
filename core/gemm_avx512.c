// core/gemm.h's products for the avx512 kernel set (Makefile: per-file flags; entered only when
// core/kernels.h chose avx512). One register-blocked micro-kernel: a block of up to 8 rows x 32
// columns of C held in 16 zmm accumulators, each k step loading 32 floats of a row of B and
// broadcasting 8 elements of A (16 FMAs per 2 loads and 8 broadcasts). Blocks cut by the edges of C
// run a row-at-a-time kernel with masked loads and stores. The three layouts differ only in
// how A's elements are addressed (gemm_nt first transposes B, a weight matrix of a few thousand
// floats) and in how the work is split:
//  - nt, nn: M (token rows) is long, K short: chunks of 64 rows of C go to the threads, and in a
//    chunk every 32-column block of B is reused over its 8 row blocks while it sits in L1;
//  - tn: K (token rows) is long, M x N (a weight's gradient) small: K runs in slices of 512 rows
//    (A's and B's slices stay in L2), and in each slice the blocks of C go to the threads, a
//    block's sum carried to the next slice through C. Every element still sums its k terms in
//    order, so the result does not depend on the slicing or the thread count.
#include "core/gemm.h"
#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define MR 8      // rows of C per micro-kernel call
#define NR 32     // columns of C per micro-kernel call (two zmm)
#define MC 64     // rows of C per parallel chunk (nt, nn)
#define KC 512    // rows of K per slice (tn)
#define PAR_MIN_WORK 262144.0   // multiply-adds worth an OpenMP region

static inline __mmask16 lanes(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

// The full 8 x 32 block: every loop over the 8 rows fully unrolled, so the 16 accumulators stay
// in registers (a loop GCC does not unroll keeps them in memory: one load and store per FMA).
// C[r][0..32) = init + sum_k a(r, k) B[k][0..32), a(r, k) = A[r * ars + k * acs]; init is bias[0..32)
// when bias is given, else C[r][..] when load_c, else 0.
static void kernel_full(float *C, size_t ldc, const float *A, size_t ars, size_t acs, const float *B, size_t ldb,
                        size_t K, int load_c, const float *bias) {
    __m512 c0[MR], c1[MR];
    #pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++) {
        c0[r] = bias ? _mm512_loadu_ps(bias) : load_c ? _mm512_loadu_ps(C + r * ldc) : _mm512_setzero_ps();
        c1[r] = bias ? _mm512_loadu_ps(bias + 16) : load_c ? _mm512_loadu_ps(C + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (size_t k = 0; k < K; k++) {
        const float *b = B + k * ldb, *a = A + k * acs;
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        #pragma GCC unroll 8
        for (size_t r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r * ars]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
    }
    #pragma GCC unroll 8
    for (size_t r = 0; r < MR; r++) {
        _mm512_storeu_ps(C + r * ldc, c0[r]);
        _mm512_storeu_ps(C + r * ldc + 16, c1[r]);
    }
}

// A tail block (mr < 8 rows or nr < 32 columns): the same sums, one row at a time with masked
// loads and stores (tails are a small share of the model's products).
static void kernel_tail(float *C, size_t ldc, const float *A, size_t ars, size_t acs, const float *B, size_t ldb,
                        size_t mr, size_t nr, size_t K, int load_c, const float *bias) {
    __mmask16 m0 = lanes(nr), m1 = lanes(nr > 16 ? nr - 16 : 0);
    for (size_t r = 0; r < mr; r++) {
        const float *c_in = bias ? bias : C + r * ldc;
        __m512 c0 = bias || load_c ? _mm512_maskz_loadu_ps(m0, c_in) : _mm512_setzero_ps();
        __m512 c1 = bias || load_c ? _mm512_maskz_loadu_ps(m1, c_in + 16) : _mm512_setzero_ps();
        for (size_t k = 0; k < K; k++) {
            const float *b = B + k * ldb;
            __m512 ar = _mm512_set1_ps(A[r * ars + k * acs]);
            c0 = _mm512_fmadd_ps(ar, _mm512_maskz_loadu_ps(m0, b), c0);
            c1 = _mm512_fmadd_ps(ar, _mm512_maskz_loadu_ps(m1, b + 16), c1);
        }
        _mm512_mask_storeu_ps(C + r * ldc, m0, c0);
        if (nr > 16) _mm512_mask_storeu_ps(C + r * ldc + 16, m1, c1);
    }
}

// One block of C at (i, j): the full kernel when it fits, the tail kernel otherwise.
static void block(float *C, size_t ldc, const float *A, size_t ars, size_t acs, const float *B, size_t ldb,
                  size_t i, size_t j, size_t M, size_t N, size_t K, int load_c, const float *bias) {
    size_t mr = M - i < MR ? M - i : MR, nr = N - j < NR ? N - j : NR;
    float *c = C + i * ldc + j;
    const float *a = A + i * ars, *b = B + j, *bj = bias ? bias + j : NULL;
    if (mr == MR && nr == NR) kernel_full(c, ldc, a, ars, acs, b, ldb, K, load_c, bj);
    else kernel_tail(c, ldc, a, ars, acs, b, ldb, mr, nr, K, load_c, bj);
}

// Rows [ch MC, (ch + 1) MC) of rows_product.
static void product_chunk(float *C, size_t ldc, const float *A, size_t ars, size_t acs, const float *B, size_t ldb,
                          size_t M, size_t N, size_t K, float beta, const float *bias, size_t ch) {
    size_t i1 = (ch + 1) * MC < M ? (ch + 1) * MC : M;
    for (size_t j = 0; j < N; j += NR)
        for (size_t i = ch * MC; i < i1; i += MR) block(C, ldc, A, ars, acs, B, ldb, i, j, M, N, K, beta != 0.0f, bias);
}

// C = beta C + A' B with A'(r, k) = A[r * ars + k * acs], B (K x N, ldb): chunks of MC rows in
// parallel, all of K at once (nt, nn).
static void rows_product(float *C, size_t ldc, const float *A, size_t ars, size_t acs, const float *B,
                         size_t ldb, size_t M, size_t N, size_t K, float beta, const float *bias, int threads) {
    size_t chunks = (M + MC - 1) / MC;
    int par = threads > 1 && chunks > 1 && (double)M * (double)N * (double)K >= PAR_MIN_WORK;
    if (!par) {   // not even an if(false) region: inference calls this per 256-row chunk
        for (size_t ch = 0; ch < chunks; ch++) product_chunk(C, ldc, A, ars, acs, B, ldb, M, N, K, beta, bias, ch);
        return;
    }
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (size_t ch = 0; ch < chunks; ch++) product_chunk(C, ldc, A, ars, acs, B, ldb, M, N, K, beta, bias, ch);
}

void gemm_nn_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, float beta, int threads) {
    rows_product(C, ldc, A, lda, 1, B, ldb, M, N, K, beta, NULL, threads);
}

void gemm_pack_bt(float *bt, const float *B, size_t ldb, size_t N, size_t K) {
    // in 8 x 8 tiles, so that reads and writes both stay within a few cache lines
    for (size_t n0 = 0; n0 < N; n0 += 8)
        for (size_t k0 = 0; k0 < K; k0 += 8) {
            size_t n1 = n0 + 8 < N ? n0 + 8 : N, k1 = k0 + 8 < K ? k0 + 8 : K;
            for (size_t n = n0; n < n1; n++)
                for (size_t k = k0; k < k1; k++) bt[k * N + n] = B[n * ldb + k];
        }
}

void gemm_nt_packed_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *bt, size_t M, size_t N,
                           size_t K, const float *bias, int threads) {
    rows_product(C, ldc, A, lda, 1, bt, N, M, N, K, 0.0f, bias, threads);
}

void gemm_nt_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, const float *bias, int threads) {
    // B^T (K x N) packed once: B is a weight (N x K), small next to the M x N x K work; the
    // default model's weights (up to 192 x 64) fit the stack buffer
    float stack[16384], *bt = K * N <= 16384 ? stack : malloc(K * N * sizeof(float));
    if (!bt) {   // no memory for the copy: the library does it unpacked
        if (bias)
            for (size_t i = 0; i < M; i++) memcpy(C + i * ldc, bias, N * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb,
                    bias ? 1.0f : 0.0f, C, (int)ldc);
        return;
    }
    gemm_pack_bt(bt, B, ldb, N, K);
    rows_product(C, ldc, A, lda, 1, bt, N, M, N, K, 0.0f, bias, threads);
    if (bt != stack) free(bt);
}

void gemm_tn_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, float beta, int threads) {
    size_t mb = (M + MR - 1) / MR, nb = (N + NR - 1) / NR, nblk = mb * nb;
    int par = threads > 1 && nblk > 1 && (double)M * (double)N * (double)K >= PAR_MIN_WORK;
    if (!par) {   // not even an if(false) region: attention calls this per sample, inside one
        for (size_t k0 = 0; k0 == 0 || k0 < K; k0 += KC) {
            size_t kc = K - k0 < KC ? K - k0 : KC;
            for (size_t t = 0; t < nblk; t++)
                block(C, ldc, A + k0 * lda, 1, lda, B + k0 * ldb, ldb, (t / nb) * MR, (t % nb) * NR, M, N, kc,
                      k0 > 0 || beta != 0.0f, NULL);
            if (K == 0) break;
        }
        return;
    }
    // One region for all K slices: static schedules of the same loop give every thread the same
    // blocks in every slice, so a thread only ever adds to its own blocks and the slices need no
    // barrier between them (nowait); each block still sums its slices in order.
    #pragma omp parallel num_threads(threads)
    for (size_t k0 = 0; k0 == 0 || k0 < K; k0 += KC) {
        size_t kc = K - k0 < KC ? K - k0 : KC;
        int load_c = k0 > 0 || beta != 0.0f;
        const float *a = A + k0 * lda, *b = B + k0 * ldb;
        #pragma omp for schedule(static) nowait
        for (size_t t = 0; t < nblk; t++)
            block(C, ldc, a, 1, lda, b, ldb, (t / nb) * MR, (t % nb) * NR, M, N, kc, load_c, NULL);
        if (K == 0) break;
    }
}
