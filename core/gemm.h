// Matrix products of the linear layers for the avx512 kernel set (issue 12). This environment
// pins OpenBLAS to its AVX2 ("Haswell") kernels (OPENBLAS_CORETYPE), and OpenBLAS 0.3.21 picks
// them on this AMD CPU anyway, while the CPU's AVX-512 FMA rate is about twice its AVX2 rate
// (bench/fma_peak.c). The linear layers' products are skinny (K and N of 64-192, M up to tens of
// thousands of token rows), so a plain register-blocked kernel over 16-lane FMAs beats the library
// here. core/ops_rows.c calls these when kernels_active() is avx512 and cblas_sgemm otherwise (the
// plain and avx2 sets, and the oracle tests/test_gemm.c compares against).
//
// Row-major throughout; C is M x N with row stride ldc. Each product is deterministic: every
// element of C sums its k terms in order k = 0, 1, ... (in FMA chains), whatever the thread count.
//   gemm_nt: C = bias + A B^T     A (M x K, lda), B (N x K, ldb)   linear forward: in W^T + b
//   gemm_nn: C = beta C + A B     A (M x K, lda), B (K x N, ldb)   input gradient: dout W
//   gemm_tn: C = beta C + A^T B   A (K x M, lda), B (K x N, ldb)   weight gradient: dout^T in
// beta is 0 or 1 (0: C's old contents are ignored, NaN included); gemm_nt's bias (N floats, or
// NULL for none) starts every row's sums, as cblas after a copy of b into C with beta 1 (C's old
// contents are ignored). gemm_nt_packed is gemm_nt with B^T already packed (K x N, row stride N)
// by gemm_pack_bt, bitwise the same: the model packs each weight once per forward instead of once
// per call (inference runs the layers a chunk of rows at a time). threads: OpenMP threads for the call (row blocks of C; gemm_tn: blocks
// of C, each summed over all of K by one thread).
#ifndef MAELRE_GEMM_H
#define MAELRE_GEMM_H
#include <stddef.h>

void gemm_nt_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, const float *bias, int threads);
void gemm_pack_bt(float *bt, const float *B, size_t ldb, size_t N, size_t K);
void gemm_nt_packed_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *bt, size_t M, size_t N,
                           size_t K, const float *bias, int threads);
void gemm_nn_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, float beta, int threads);
void gemm_tn_avx512(float *C, size_t ldc, const float *A, size_t lda, const float *B, size_t ldb,
                    size_t M, size_t N, size_t K, float beta, int threads);

#endif
