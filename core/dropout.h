// Dropout masks from a counter-based hash (SPEC §11, §12): every mask bit is a pure function of
// (seed, step, the sample's index in the global batch, layer, site, element index), never of a
// thread's or a rank's random stream, so masks are the same for any thread count and any split
// of a global batch across ranks, and backward regenerates exactly the masks forward drew (no
// mask memory is held).
//
// The hash (tests/reference/make_fixtures.py implements the same in numpy):
//   mix(z)   = splitmix64's output function: z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
//              z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31
//   base     = mix(mix(mix(mix(seed + G) + step) + sample) + (layer << 8 | site))   (mod 2^64)
//   h(j)     = mix(base + (j + 1) * G)        with G = 0x9e3779b97f4a7c15 (splitmix64's j-th output)
//   u(e)     = bits [16 (e % 4), 16 (e % 4) + 16) of h(e / 4)   (one hash serves 4 elements)
//   keep(e)  = u(e) >= floor(p * 2^16)                   (p as a double of the float p)
// so an element is kept with probability 1 - floor(p 2^16) / 2^16 (within 2^-16 of 1 - p).
// Kept values are multiplied by 1 / (1 - p) (inverted dropout), dropped ones are 0.
// Sites: DROP_EMBED (layer 0) on the embedding output; per block b (layer b): DROP_ATTN after
// the attention output projection (before the residual add), DROP_GELU after the MLP's GELU,
// DROP_MLP after the MLP's second linear (before the residual add). The element index of a
// site is row * width + column, the row counted from the sample's first token at that point
// (after a merge the rows are the merged tokens).
#ifndef MAELRE_DROPOUT_H
#define MAELRE_DROPOUT_H
#include <stddef.h>
#include <stdint.h>

enum { DROP_EMBED = 0, DROP_ATTN = 1, DROP_GELU = 2, DROP_MLP = 3 };

static inline uint64_t dropout_mix(uint64_t z) {
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ull;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
uint64_t dropout_base(uint64_t seed, uint64_t step, uint64_t sample, uint32_t layer, uint32_t site);
uint32_t dropout_threshold(float p);   // floor(p * 2^16); p in [0, 1)
// Whether element e of the stream `base` is kept for the threshold thr.
static inline int dropout_keep(uint64_t base, uint64_t e, uint32_t thr) {
    uint64_t h = dropout_mix(base + (e / 4 + 1) * 0x9e3779b97f4a7c15ull);
    return ((h >> (16 * (e % 4))) & 0xffffu) >= thr;
}

// What selects the masks of one forward/backward: seed, step, the global index of each sample of
// the batch (NULL: sample i has global index i), the layer and the rate.
typedef struct {
    uint64_t seed, step;
    const size_t *index;
    float p;
} DropKey;

// y = mask * x / (1 - p) over a packed ragged matrix of width W (sample i owns rows
// [o[i], o[i+1])), for (layer, site). y may equal x. Counts 1 FLOP per element.
void dropout_apply(float *y, const float *x, const size_t *o, size_t n, size_t W, const DropKey *k,
                   uint32_t layer, uint32_t site);

#endif
