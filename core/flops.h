// Analytic FLOP/MAC counting (SPEC §6). The code that runs an op adds its cost
// from the actual shapes: 1 multiply-add = 2 FLOPs = 1 MAC in every matrix
// product; 1 FLOP per element for element-wise work. Counting is off unless a
// FlopCounter is installed; the installed counter is per thread (a counter installed
// by the main thread is not seen by OpenMP workers), so ops count once per call, not
// per thread. Code that runs ops inside a parallel region gives each worker its own
// counter and adds them to the caller's afterwards (core/model.c's run_samples does).
#ifndef MAELRE_FLOPS_H
#define MAELRE_FLOPS_H
#include <stddef.h>

typedef struct {
    double flops;
    double macs;
} FlopCounter;

void flops_install(FlopCounter *c);   // NULL turns counting off
FlopCounter *flops_active(void);
// A (m x k) times B (k x n): m*n*k MACs, 2*m*n*k FLOPs.
void flops_matmul(size_t m, size_t n, size_t k);
// n element-wise FLOPs (no MACs).
void flops_elem(double n);

#endif
