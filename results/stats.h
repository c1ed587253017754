// Statistics for the report (SPEC §11): aggregates over seeds and the paired comparison of a
// method with vanilla on the same test samples. Plain functions on arrays; nothing here reads
// files. Every test is exact or seeded: the same input and seed give the same bits.
// Library code: returns core/status.h codes with a reason, never prints.   -- results/stats.c
#ifndef MAELRE_STATS_H
#define MAELRE_STATS_H
#include <stddef.h>
#include <stdint.h>

// Mean of x[0..n); NAN when n == 0.
double stats_mean(const double *x, size_t n);
// Sample standard deviation (divisor n - 1, two passes); NAN when n < 2.
double stats_sample_std(const double *x, size_t n);

// McNemar's exact test: two-sided p-value of the discordant pairs, b = samples only A gets
// right, c = samples only B gets right. Under H0 (both equally accurate) b ~ Binomial(b + c, 1/2);
// p = min(1, 2 * P(X <= min(b, c))). b = c (including 0, 0) gives 1.
double stats_mcnemar_exact(size_t b, size_t c);

// Type-7 (linear interpolation) quantile of sorted[0..n), q in [0, 1]; NAN when n == 0.
double stats_quantile_sorted(const double *sorted, size_t n, double q);

typedef struct {
    double diff;        // observed acc(A) - acc(B), a fraction
    double lo, hi;      // percentile interval of the resampled differences
    size_t resamples;
} StatsInterval;

#define STATS_BOOTSTRAP_RESAMPLES 10000

// Paired bootstrap of acc(A) - acc(B). a and b hold correctness (0 or 1) of k prediction sets
// (seeds) on the same n test samples, seed-major: a[s * n + i] is seed s, sample i. Each resample
// draws n sample indices with replacement and keeps, for every drawn sample, the pairs of all k
// seeds (so pooling seeds never treats one test sample as k independent ones); k = 1 is the
// ordinary paired bootstrap. level: e.g. 0.95 -> the 2.5% and 97.5% quantiles (type 7) of the
// resampled differences. Deterministic for a given seed. MB_OK, MB_ERR_USAGE (n or k or
// resamples 0, level outside (0, 1)) or MB_ERR_NOMEM.
int stats_paired_bootstrap(const unsigned char *a, const unsigned char *b, size_t n, size_t k,
                           size_t resamples, uint64_t seed, double level, StatsInterval *out,
                           char *err, size_t errlen);

#endif
