// Labelled token sequences, the only thing loaders/ hands to the rest of the program.
// loaders/ turns bytes on disk into these through one shared tokenizer/patcher
// (SPEC §2, §7) and knows nothing of models.
#ifndef MAELRE_DATASET_H
#define MAELRE_DATASET_H
#include <stddef.h>
#include <stdint.h>

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL, SPLIT_TEST } Split;

typedef struct {
    int32_t label;     // class index in [0, n_classes)
    size_t len;        // tokens (already truncated to max_len)
    void *ids;         // len ids in [0, vocab), id_bytes each (read them with seq_id), or NULL
    float *feats;      // len * feat_dim values, or NULL
    unsigned id_bytes; // 1 (uint8_t ids), 2 (uint16_t) or 4 (int32_t): the narrowest that holds
                       // the vocabulary (loaders/tokenizer.h), so a loaded set stays compact
    uint8_t *bytes;    // byte tokens stored compactly (id = bytes[t] + 1), or NULL (then ids or feats)
    size_t len2;       // pairs (SeqSet.pairs): the second document's tokens; the first document
                       // is the first len - len2 tokens, the second the rest (both >= 1)
} Sequence;

// Id i of s (s->ids or s->bytes non-NULL, i < s->len).
static inline int32_t seq_id(const Sequence *s, size_t i) {
    if (s->bytes) return (int32_t)s->bytes[i] + 1;
    switch (s->id_bytes) {
    case 1: return ((const uint8_t *)s->ids)[i];
    case 2: return ((const uint16_t *)s->ids)[i];
    default: return ((const int32_t *)s->ids)[i];
    }
}
// Bytes per id for ids in [0, vocab): 1, 2 or 4.
static inline unsigned seq_id_bytes_for(size_t vocab) { return vocab <= 256 ? 1 : vocab <= 65536 ? 2 : 4; }
// s's ids widened to int32 (a batch's form, core/batch.h) into out (s->len entries).
void seq_ids_to_i32(const Sequence *s, int32_t *out);

typedef struct {
    Sequence *items;
    size_t n;
    size_t vocab;        // > 0 for discrete tokens
    size_t feat_dim;     // > 0 for continuous patches
    size_t n_classes;
    char **class_names;  // n_classes strings (owned)
    int pairs;           // 1: every item is a pair of documents (Sequence.len2; LRA Retrieval)
} SeqSet;

// Bytes held by the token ids and features of every item (what the set's data costs).
size_t seqset_data_bytes(const SeqSet *s);

// What a task says about its data (tasks/*.json "data" object). Paths are relative to the data root.
typedef struct {
    char source[32];     // "listops", "imdb", "cifar10", "ucr", "fsdd", "tsv", "images", "cifar10-bin", "aan"
    char path[512];      // e.g. "listops", "imdb", "cifar10", "ucr/ACSF1", "fsdd"
    size_t max_len;      // truncate to this many tokens (0 = no limit); pairs: per document
    size_t frame;        // audio: samples per token (4); image: patch side (1 = one token per pixel)
    int grayscale;       // image: 1 = grayscale intensities as ids (LRA image), 0 = RGB patches
    int sample_rate;     // audio: target rate in Hz (8000)
    size_t limit;        // load at most this many samples per split (0 = all); deterministic subset
} DataSpec;

// Loads one split of a task's data and tokenizes it. MB_OK, or MB_ERR_DATA with
// "<file>:<line or offset>: <what is wrong>" in err (a missing dataset says where to get it).
// A split the dataset does not have (IMDb and UCR have no validation split) is MB_OK with n = 0
// (classes, vocab/feat_dim still set). Items, ids and feats come from mem_alloc, class names from
// malloc (loaders/seqset.h builds them that way).
int dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                 char *err, size_t errlen);
void seqset_free(SeqSet *s);

#endif
