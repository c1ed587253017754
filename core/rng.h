// Explicit, seedable random numbers (splitmix64 seeding + xoshiro-style mixing).
// State is a single uint64_t passed by pointer; never rand().
#ifndef MAELRE_RNG_H
#define MAELRE_RNG_H
#include <stdint.h>
#include <stddef.h>

uint64_t rng_next(uint64_t *state);                  // uniform 64-bit
float rng_uniform(uint64_t *state);                  // [0, 1)
float rng_normal(uint64_t *state);                   // N(0, 1), Box-Muller
size_t rng_below(uint64_t *state, size_t n);         // [0, n), n > 0
void rng_shuffle(uint64_t *state, size_t *idx, size_t n);
uint64_t rng_derive(uint64_t seed, uint64_t stream); // independent stream from a seed

#endif
