// The machine's own single-precision FMA ceiling, measured rather than looked up: each thread
// runs 12 independent chains of fused multiply-adds on registers (no memory traffic) for at least
// --min-time seconds, once with 8-lane AVX2 FMA and once with 16-lane AVX-512 FMA (when the CPU
// has them). bench/compare_pytorch.sh reports the C model's GFLOP/s against it beside OpenBLAS's
// sgemm rate: this environment pins OpenBLAS to one kernel family (OPENBLAS_CORETYPE), so its
// sgemm rate is a library's rate, not the machine's. 2 FLOPs per lane per FMA.
// Usage: fma_peak [--threads T] [--min-time S]
// Output (stdout, one line per vector width): isa= threads= gflops=
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12          // enough independent FMAs in flight to cover latency x throughput
#define ITERS 1000000L     // FMA rounds per timing check

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Rounds of CHAINS FMAs per call; the sum of the chains is returned so nothing is dead code.
__attribute__((target("avx2,fma"))) static float run_avx2(long rounds) {
    __m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long r = 0; r < rounds; r++) {
        #pragma GCC unroll 12   // fully unrolled: the accumulators stay in registers
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
    }
    float out[8], s = 0;
    for (int c = 1; c < CHAINS; c++) acc[0] = _mm256_add_ps(acc[0], acc[c]);
    _mm256_storeu_ps(out, acc[0]);
    for (int l = 0; l < 8; l++) s += out[l];
    return s;
}

__attribute__((target("avx512f"))) static float run_avx512(long rounds) {
    __m512 acc[CHAINS], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long r = 0; r < rounds; r++) {
        #pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
    }
    for (int c = 1; c < CHAINS; c++) acc[0] = _mm512_add_ps(acc[0], acc[c]);
    return _mm512_reduce_add_ps(acc[0]);
}

// GFLOP/s of all threads together: every thread runs rounds until min_time has passed.
static double measure(int lanes, int threads, double min_time) {
    double total_flops = 0, t0 = now_s(), t1 = t0;
    volatile float sink = 0;
    #pragma omp parallel num_threads(threads) reduction(+ : total_flops)
    {
        double start = now_s();
        do {
            sink = lanes == 16 ? run_avx512(ITERS) : run_avx2(ITERS);
            total_flops += 2.0 * lanes * CHAINS * (double)ITERS;
        } while (now_s() - start < min_time);
    }
    t1 = now_s();
    (void)sink;
    return total_flops / (t1 - t0) * 1e-9;
}

int main(int argc, char **argv) {
    int threads = 2;
    double min_time = 0.5;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = (int)strtol(argv[++i], &end, 10);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = strtod(argv[++i], &end);
        if (!end || *end || threads < 1 || !(min_time > 0)) {
            fprintf(stderr, "fma_peak: bad argument '%s'\nusage: fma_peak [--threads T] [--min-time S]\n", argv[i]);
            return 2;
        }
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        printf("isa=avx2 threads=%d gflops=%.1f\n", threads, measure(8, threads, min_time));
    if (__builtin_cpu_supports("avx512f"))
        printf("isa=avx512 threads=%d gflops=%.1f\n", threads, measure(16, threads, min_time));
    return 0;
}
