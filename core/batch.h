// A packed, ragged batch (SPEC §1): all tokens of all samples in one row-major
// matrix plus per-sample offsets. No padding, ever. Sample i owns token rows
// [offsets[i], offsets[i+1]). Inputs are either discrete ids (lookup-table
// embedding) or continuous features of width feat_dim (linear patch embedding).
#ifndef MAELRE_BATCH_H
#define MAELRE_BATCH_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t n;               // number of samples
    const size_t *offsets;  // n + 1 entries, offsets[0] == 0
    const int32_t *ids;     // offsets[n] token ids, or NULL
    const float *feats;     // offsets[n] * feat_dim values, or NULL
    size_t feat_dim;        // 0 for discrete input
    const int32_t *labels;  // n labels, or NULL for inference only
} Batch;

static inline size_t batch_tokens(const Batch *b) { return b->offsets[b->n]; }
static inline size_t batch_len(const Batch *b, size_t i) { return b->offsets[i + 1] - b->offsets[i]; }

#endif
