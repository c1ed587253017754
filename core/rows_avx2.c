// core/rows_isa.h's GELU for the avx2 kernel set: core/rows_simd.h on 8 lanes (Makefile: per-file
// flags -mavx2 -mfma; no FMA is used, so the numbers are the plain set's). Entered only when
// core/kernels.h chose avx2.
#include <immintrin.h>
#include "core/rows_isa.h"

#define V __m256
#define W 8
#define SET1(f) _mm256_set1_ps(f)
#define LOAD(p) _mm256_loadu_ps(p)
#define STORE(p, v) _mm256_storeu_ps(p, v)
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps
#define MIN _mm256_min_ps
#define MAX _mm256_max_ps
#define ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define SIGNSEL(x, t) _mm256_blendv_ps(t, _mm256_xor_ps(t, _mm256_set1_ps(-0.0f)), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ))
#define EXP_SCALE(km) _mm256_castsi256_ps(_mm256_slli_epi32( \
    _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(km), _mm256_set1_epi32(0x4B400000)), _mm256_set1_epi32(127)), 23))
static const int rs_mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
#define RS_M(k) _mm256_loadu_si256((const __m256i *)(rs_mask_tab + 8 - (k)))
#define MLOAD(p, k) _mm256_maskload_ps(p, RS_M(k))
#define MLOADF(p, k, f) _mm256_blendv_ps(_mm256_set1_ps(f), _mm256_maskload_ps(p, RS_M(k)), _mm256_castsi256_ps(RS_M(k)))
#define MSTORE(p, k, v) _mm256_maskstore_ps(p, RS_M(k), v)
// Horizontal maximum, and the 16 partial sums (two vectors) combined as rows_sum16 does: (i, i + 8)
// adds the two vectors, then (i, i + 4), (i, i + 2), (i, i + 1) within one.
static inline float hmax8(__m256 v) {
    __m128 t = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}
static inline float hsum8(__m256 v) {
    __m128 t = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}
#define HMAX(v) hmax8(v)
#define HSUM16(acc) hsum8(_mm256_add_ps((acc)[0], (acc)[1]))
#define SUFFIX avx2
#include "core/rows_simd.h"

const RowKernels rows_avx2 = {gelu_forward_avx2, gelu_backward_avx2, softmax_rows_avx2, softmax_rows_saved_avx2,
                               ds_rows_avx2, exp_sub_avx2, layernorm_forward_avx2,
                               layernorm_backward_din_avx2, layernorm_backward_params_avx2, column_sums_avx2,
                               add_avx2, softmax_head_rows_avx2, col_max_avx2, col_exp_sum_avx2};
