// results/stats: seed aggregates against hand-computed values, McNemar's exact test against
// direct integer binomial sums, the paired bootstrap's determinism, invariants and coverage.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "core/rng.h"
#include "core/status.h"
#include "results/stats.h"
#ifdef _OPENMP
#include <omp.h>
#endif

Test(stats, mean_and_sample_std) {
    double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    cr_assert_float_eq(stats_mean(x, 8), 5.0, 1e-15);
    // sum of squared deviations 32, divisor n - 1 = 7 (the population std would be 2)
    cr_assert_float_eq(stats_sample_std(x, 8), sqrt(32.0 / 7.0), 1e-15);
    double acc[] = {0.61, 0.65};
    cr_assert_float_eq(stats_sample_std(acc, 2), 0.04 / sqrt(2.0), 1e-15);
    cr_assert(isnan(stats_sample_std(x, 1)), "one seed has no spread");
    cr_assert(isnan(stats_mean(x, 0)));
    double same[] = {0.3, 0.3, 0.3};
    cr_assert_eq(stats_sample_std(same, 3), 0.0);
}

Test(stats, mcnemar_hand_values) {
    // b=10, c=2: n=12, P(X<=2) = (1 + 12 + 66) / 4096, doubled = 158/4096 = 0.03857
    cr_assert_float_eq(stats_mcnemar_exact(10, 2), 158.0 / 4096.0, 1e-15);
    cr_assert_float_eq(stats_mcnemar_exact(2, 10), 158.0 / 4096.0, 1e-15, "symmetric");
    cr_assert(fabs(stats_mcnemar_exact(10, 2) - 0.0386) < 5e-5);
    cr_assert_eq(stats_mcnemar_exact(7, 7), 1.0);
    cr_assert_eq(stats_mcnemar_exact(0, 0), 1.0);
    // b=5, c=0: 2 / 32
    cr_assert_float_eq(stats_mcnemar_exact(5, 0), 1.0 / 16.0, 1e-15);
    // one discordant pair can never be significant
    cr_assert_eq(stats_mcnemar_exact(1, 0), 1.0);
    // b=3, c=2: P(X<=2) = (1+5+10)/32 = 0.5, doubled = 1
    cr_assert_eq(stats_mcnemar_exact(3, 2), 1.0);
}

// Exact for small counts: against the binomial sum in long double (64-bit mantissa: the
// coefficients are exact up to 2^64, beyond that within 1e-19 relative), across the switch from
// the integer sum (n <= 60) to the lgamma route.
Test(stats, mcnemar_matches_direct_binomial_sums) {
    for (size_t b = 0; b <= 60; b++) {
        for (size_t c = 0; c <= 60; c++) {
            size_t n = b + c, m = b < c ? b : c;
            long double coef = 1, sum = 0;   // C(n, k) for k = 0..m
            for (size_t k = 0; k <= m; k++) {
                if (k) coef = coef * (long double)(n - k + 1) / (long double)k;
                sum += coef;
            }
            long double p = 2.0L * sum / powl(2.0L, (long double)n);
            if (p > 1) p = 1;
            double got = stats_mcnemar_exact(b, c);
            cr_assert(fabsl((long double)got - p) <= 1e-12L * p + 1e-300L,
                      "b=%zu c=%zu: %.17g, want %.17Lg", b, c, got, p);
        }
    }
}

Test(stats, mcnemar_large_counts_stay_finite) {
    // 25,000 test samples (IMDb): terms near 2^-25000 must not underflow the answer to 0 or NaN.
    double p = stats_mcnemar_exact(6000, 5000);
    cr_assert(p > 0 && p < 1e-15, "%g", p);
    double q = stats_mcnemar_exact(5030, 5000);   // z ~ 0.3: clearly not significant
    cr_assert(q > 0.7 && q < 0.8, "%g", q);
    // normal approximation with continuity correction, for the second: 2*(1 - Phi((30-1)/sqrt(10030)))
    double z = 29.0 / sqrt(10030.0), approx = erfc(z / sqrt(2.0));
    cr_assert(fabs(q - approx) < 0.01, "%g vs %g", q, approx);
}

Test(stats, quantile_type7) {
    double s[] = {1, 2, 3, 4, 5};
    cr_assert_float_eq(stats_quantile_sorted(s, 5, 0.0), 1.0, 0);
    cr_assert_float_eq(stats_quantile_sorted(s, 5, 1.0), 5.0, 0);
    cr_assert_float_eq(stats_quantile_sorted(s, 5, 0.5), 3.0, 0);
    cr_assert_float_eq(stats_quantile_sorted(s, 5, 0.1), 1.4, 1e-15);
}

// Correctness vectors with accuracies pa and pb on n samples, drawn independently per sample.
static void draw(unsigned char *a, unsigned char *b, size_t n, double pa, double pb, uint64_t *r) {
    for (size_t i = 0; i < n; i++) {
        a[i] = rng_uniform(r) < pa;
        b[i] = rng_uniform(r) < pb;
    }
}

Test(stats, bootstrap_is_deterministic_and_centred) {
    enum { N = 2000 };
    unsigned char a[N], b[N];
    uint64_t r = 42;
    draw(a, b, N, 0.7, 0.6, &r);
    StatsInterval x, y, z;
    char err[256];
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 10000, 7, 0.95, &x, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 10000, 7, 0.95, &y, err, sizeof err), MB_OK);
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 10000, 8, 0.95, &z, err, sizeof err), MB_OK);
    cr_assert(x.lo == y.lo && x.hi == y.hi, "same seed, same bits");
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(threads > 1 ? 1 : 2);   // another thread count: still the same bits
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 10000, 7, 0.95, &y, err, sizeof err), MB_OK);
    omp_set_num_threads(threads);
    cr_assert(x.lo == y.lo && x.hi == y.hi, "the interval depends on the thread count");
#endif
    cr_assert(x.lo != z.lo || x.hi != z.hi, "another seed resamples differently");
    cr_assert_eq(x.resamples, 10000);
    size_t ca = 0, cb = 0, bb = 0, cc = 0;
    for (size_t i = 0; i < N; i++) {
        ca += a[i];
        cb += b[i];
        bb += a[i] && !b[i];
        cc += !a[i] && b[i];
    }
    cr_assert_float_eq(x.diff, ((double)ca - (double)cb) / N, 1e-15);
    cr_assert(x.lo < x.diff && x.diff < x.hi);
    // Half-width against the normal approximation 1.96 * sd(d) / sqrt(n) of the paired difference.
    double md = x.diff, vd = ((double)(bb + cc) / N - md * md) * N / (N - 1);
    double half = 1.959964 * sqrt(vd / N);
    cr_assert(fabs((x.hi - x.lo) / 2 - half) < 0.08 * half, "half-width %g vs %g", (x.hi - x.lo) / 2, half);
    // Identical predictions: every resample differs by exactly 0.
    cr_assert_eq(stats_paired_bootstrap(a, a, N, 1, 500, 7, 0.95, &y, err, sizeof err), MB_OK);
    cr_assert(y.diff == 0 && y.lo == 0 && y.hi == 0);
    cr_assert_eq(stats_paired_bootstrap(a, b, 0, 1, 10, 7, 0.95, &y, err, sizeof err), MB_ERR_USAGE);
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 10, 7, 1.0, &y, err, sizeof err), MB_ERR_USAGE);
}

// Pooling k seeds keeps each test sample's k pairs together: k identical copies give exactly the
// one-seed interval (same draws, each sample's summed difference k times larger, scale k times smaller).
Test(stats, bootstrap_pooled_copies_equal_one_seed) {
    enum { N = 300 };
    unsigned char a[3 * N], b[3 * N];
    uint64_t r = 3;
    draw(a, b, N, 0.55, 0.5, &r);
    for (int s = 1; s < 3; s++)
        for (size_t i = 0; i < N; i++) { a[s * N + i] = a[i]; b[s * N + i] = b[i]; }
    StatsInterval one, three;
    char err[256];
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 2000, 11, 0.95, &one, err, sizeof err), MB_OK);
    cr_assert_eq(stats_paired_bootstrap(a, b, N, 3, 2000, 11, 0.95, &three, err, sizeof err), MB_OK);
    cr_assert_float_eq(one.diff, three.diff, 1e-15);
    cr_assert_float_eq(one.lo, three.lo, 1e-15);
    cr_assert_float_eq(one.hi, three.hi, 1e-15);
}

// Coverage: over many test sets drawn with a known true difference (0.70 - 0.60), about 95% of
// the intervals contain it (binomial spread over 200 trials: ~ +-3%).
Test(stats, bootstrap_covers_the_true_difference) {
    enum { N = 400, TRIALS = 200 };
    unsigned char a[N], b[N];
    uint64_t r = 2026;
    size_t covered = 0;
    char err[256];
    for (int t = 0; t < TRIALS; t++) {
        draw(a, b, N, 0.70, 0.60, &r);
        StatsInterval x;
        cr_assert_eq(stats_paired_bootstrap(a, b, N, 1, 1000, (uint64_t)t, 0.95, &x, err, sizeof err), MB_OK);
        covered += x.lo <= 0.10 && 0.10 <= x.hi;
    }
    double cov = (double)covered / TRIALS;
    cr_assert(cov >= 0.89 && cov <= 0.99, "coverage %.3f", cov);
}
