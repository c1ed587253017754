// OpenBLAS's own large-SGEMM rate: the ceiling the C model's achieved GFLOP/s is compared
// against in bench/compare_pytorch.sh. C = A B with A, B, C square n x n (default 2048),
// row-major, beta = 0. One warm-up call excluded, then repeated until at least --min-time
// seconds on a monotonic clock; prints the median, min and max GFLOP/s (2 n^3 FLOPs per call).
// Usage: sgemm_rate [--n N] [--threads T] [--min-time S]
// Output (stdout, one line, key=value): n= threads= reps= gflops_median= gflops_min= gflops_max=
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_pos(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0)) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    double n_d = 2048, threads_d = 2, min_time = 1.0;
    for (int i = 1; i < argc; i++) {
        double *dst = !strcmp(argv[i], "--n") ? &n_d
                    : !strcmp(argv[i], "--threads") ? &threads_d
                    : !strcmp(argv[i], "--min-time") ? &min_time : NULL;
        if (!dst || i + 1 >= argc || parse_pos(argv[i + 1], dst)) {
            fprintf(stderr, "sgemm_rate: bad argument '%s'\nusage: sgemm_rate [--n N] [--threads T] [--min-time S]\n",
                    argv[i]);
            return 2;
        }
        i++;
    }
    size_t n = (size_t)n_d;
    int threads = (int)threads_d;
    openblas_set_num_threads(threads);
    float *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b), *c = malloc(n * n * sizeof *c);
    if (!a || !b || !c) { fprintf(stderr, "sgemm_rate: out of memory for n = %zu\n", n); return 5; }
    uint64_t s = 0x9E3779B97F4A7C15ull;  // fixed LCG fill: values in [-1, 1)
    for (size_t i = 0; i < n * n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)((s >> 40) / 8388608.0 - 1.0);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (float)((s >> 40) / 8388608.0 - 1.0);
    }
    const double flops = 2.0 * (double)n * (double)n * (double)n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a, (int)n, b,
                (int)n, 0.0f, c, (int)n);  // warm-up: thread pool start, page faults
    size_t cap = 64, reps = 0;
    double *rate = malloc(cap * sizeof *rate), total = 0;
    if (!rate) return 5;
    while (total < min_time || reps < 3) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a, (int)n, b,
                    (int)n, 0.0f, c, (int)n);
        double dt = now_s() - t0;
        total += dt;
        if (reps == cap) {
            double *r2 = realloc(rate, 2 * cap * sizeof *rate);
            if (!r2) return 5;
            rate = r2; cap *= 2;
        }
        rate[reps++] = flops / dt / 1e9;
    }
    qsort(rate, reps, sizeof *rate, cmp_double);
    double med = reps % 2 ? rate[reps / 2] : 0.5 * (rate[reps / 2 - 1] + rate[reps / 2]);
    // Touch the result so the calls cannot be considered dead.
    volatile float sink = c[(n / 2) * n + n / 3];
    (void)sink;
    printf("n=%zu threads=%d reps=%zu gflops_median=%.2f gflops_min=%.2f gflops_max=%.2f\n", n, threads, reps,
           med, rate[0], rate[reps - 1]);
    free(a); free(b); free(c); free(rate);
    return 0;
}
