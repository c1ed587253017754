// core/rows_isa.h's GELU for the avx512 kernel set: core/rows_simd.h on 16 lanes (Makefile:
// per-file flags; no FMA is used, so the numbers are the plain set's). Entered only when
// core/kernels.h chose avx512.
#include <immintrin.h>
#include "core/rows_isa.h"

#define V __m512
#define W 16
#define SET1(f) _mm512_set1_ps(f)
#define LOAD(p) _mm512_loadu_ps(p)
#define STORE(p, v) _mm512_storeu_ps(p, v)
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define DIV _mm512_div_ps
#define MIN _mm512_min_ps
#define MAX _mm512_max_ps
#define ABS(v) _mm512_abs_ps(v)
#define SIGNSEL(x, t) _mm512_mask_xor_ps(t, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), t, _mm512_set1_ps(-0.0f))
#define EXP_SCALE(km) _mm512_castsi512_ps(_mm512_slli_epi32( \
    _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(km), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127)), 23))
#define RS_M(k) ((__mmask16)((1u << (k)) - 1))
#define MLOAD(p, k) _mm512_maskz_loadu_ps(RS_M(k), p)
#define MLOADF(p, k, f) _mm512_mask_loadu_ps(_mm512_set1_ps(f), RS_M(k), p)
#define MSTORE(p, k, v) _mm512_mask_storeu_ps(p, RS_M(k), v)
// Horizontal maximum, and the 16 partial sums combined as rows_sum16 does: GCC's reduce_add takes
// (i, i + 8), then (i, i + 4), (i, i + 2), (i, i + 1), the same pairs in the same order.
#define HMAX(v) _mm512_reduce_max_ps(v)
#define HSUM16(acc) _mm512_reduce_add_ps((acc)[0])
#define SUFFIX avx512
#include "core/rows_simd.h"

const RowKernels rows_avx512 = {gelu_forward_avx512, gelu_backward_avx512, softmax_rows_avx512,
                                 softmax_rows_saved_avx512, ds_rows_avx512, exp_sub_avx512,
                                 layernorm_forward_avx512, layernorm_backward_din_avx512,
                                 layernorm_backward_params_avx512, column_sums_avx512, add_avx512,
                                 softmax_head_rows_avx512, col_max_avx512, col_exp_sum_avx512};
