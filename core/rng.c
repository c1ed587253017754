#include "core/rng.h"
#include <math.h>

uint64_t rng_next(uint64_t *s) {  // splitmix64: passes BigCrush, one word of state
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float rng_uniform(uint64_t *s) { return (float)(rng_next(s) >> 40) * (1.0f / 16777216.0f); }

float rng_normal(uint64_t *s) {
    double u1 = ((double)(rng_next(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0,1]
    double u2 = (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

size_t rng_below(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

void rng_shuffle(uint64_t *s, size_t *idx, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(s, i);
        size_t t = idx[i - 1]; idx[i - 1] = idx[j]; idx[j] = t;
    }
}

uint64_t rng_derive(uint64_t seed, uint64_t stream) {
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
    rng_next(&s);
    return rng_next(&s);
}
