// Element-wise row loops compiled once per instruction set (issue 12): the library is built for
// the x86-64 baseline (SSE2), where GCC vectorises ops_expf/ops_tanhf loops 4 wide without
// blends, and GELU became ~20 % of a vanilla training step at N = 1024 (under 2 % with
// -march=native). The loop bodies are here, once, as static functions; core/ops_rows.c compiles
// them for the baseline (the plain set, the oracle), core/rows_avx2.c and core/rows_avx512.c with
// their sets' flags (Makefile), and ops_rows.c calls the active set's copy (core/kernels.h).
// ISO C mode does not contract multiply-adds, so every copy computes the same float operations:
// the results are bitwise equal across sets (tests/test_kernels.c checks it).
#ifndef MAELRE_ROWS_ISA_H
#define MAELRE_ROWS_ISA_H
#include <stddef.h>
#include "core/ops.h"

typedef struct {
    void (*gelu_forward)(float *out, const float *in, size_t n);
    void (*gelu_backward)(float *din, const float *dout, const float *in, size_t n);
} RowKernels;

extern const RowKernels rows_avx2;     // core/rows_avx2.c
extern const RowKernels rows_avx512;   // core/rows_avx512.c

#define ROWS_GELU_C 0.7978845608028654f  // sqrt(2 / pi)
#define ROWS_GELU_A 0.044715f
#define ROWS_PAR_MIN 32768               // elements worth an OpenMP region (as core/ops_rows.c)

// out = gelu_tanh(in), n elements (out may be in)
static inline void rows_gelu_forward_body(float *out, const float *in, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= ROWS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + ops_tanhf(ROWS_GELU_C * (x + ROWS_GELU_A * x * x * x)));
    }
}

// din += dout * gelu_tanh'(in), n elements
static inline void rows_gelu_backward_body(float *din, const float *dout, const float *in, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n >= ROWS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float th = ops_tanhf(ROWS_GELU_C * (x + ROWS_GELU_A * x * x * x));
        float d = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * ROWS_GELU_C * (1.0f + 3.0f * ROWS_GELU_A * x * x);
        din[i] += dout[i] * d;
    }
}

#endif
