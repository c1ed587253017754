// The runner's data: loading a task's splits (with the validation rule of SPEC §11), packing
// chosen samples into ragged batches, the seeded epoch sampler, and making sure the data is
// there (ListOps is generated when missing).                              -- tasks/run_data.c
//
// Validation (the test split is never used for a decision):
//  - the dataset's own validation split where it has one (ListOps: basic_val.tsv; a "tsv" task
//    with a val table; LRA Retrieval: new_aan_pairs.eval.tsv), capped at the run's val_limit;
//  - CIFAR-10 ("cifar10", "cifar10-bin"): the last 10% of the (loaded) train split, as LRA does;
//  - otherwise a stratified hold-out of train drawn with a fixed seed (the same for every run
//    seed, so seeds vary the training only): 10% of each class when train has >= 1000 samples,
//    20% below that (small UCR/UEA sets: a 10% slice would be a handful of series), at least
//    one per class that has two or more samples, never a class's last training sample.
#ifndef MAELRE_RUN_DATA_H
#define MAELRE_RUN_DATA_H
#include <stdint.h>
#include <stdio.h>
#include "core/batch.h"
#include "core/model.h"
#include "loaders/dataset.h"
#include "tasks/task.h"

// Loads one split with the task's DataSpec and the given limit (0 = all); max_len overrides the
// task's truncation when > 0. Checks the class count against the task.
int runner_load_split(const Task *t, const char *data_root, Split split, size_t limit, size_t max_len,
                      SeqSet *out, char *err, size_t errlen);
// Train, validation and test as the rule above says. val_how (optional) receives a phrase for
// the progress line ("own val split", "last 10% of train", "stratified 20% of train").
// val_limit caps the validation split whatever its origin (0 = all of it).
int runner_load_splits(const Task *t, const char *data_root, size_t train_limit, size_t test_limit,
                       size_t val_limit, SeqSet *train, SeqSet *val, SeqSet *test, char *val_how, size_t how_len,
                       char *err, size_t errlen);
// Fraction of train held out for validation when the dataset has none (0.1 or 0.2, see above).
double runner_holdout_fraction(size_t n_train);
// Moves a stratified hold-out of `from` (fraction frac, fixed seed) into *to (which takes the
// same vocabulary and classes); the rest keeps its order.
int runner_holdout(SeqSet *from, SeqSet *to, double frac, uint64_t seed, char *err, size_t errlen);
// The most frequent label of s (ties: the smallest label).
int32_t runner_majority_class(const SeqSet *s);
// Refuses a model whose input kind, vocabulary, patch width or classes do not fit the data.
int runner_check_fit(const ModelConfig *c, const SeqSet *s, const char *what, char *err, size_t errlen);

// Makes sure the task's data is under data_root: present -> MB_OK; ListOps missing -> generated
// there with the LRA grammar (96k/2k/2k, fixed seed), announced on `note` first; anything else
// missing -> MB_ERR_DATA saying where to download it and where to put it.
int runner_ensure_data(const Task *t, const char *data_root, FILE *note, char *err, size_t errlen);
// --data-root, else $MAELRE_DATA, else "data".
const char *runner_data_root(const char *flag);

// Packs chosen samples into one ragged batch, growing its buffers (through mem_alloc) as needed.
typedef struct {
    size_t cap_n, cap_tok, feat_dim;
    size_t *offsets;
    int32_t *ids, *labels;
    float *feats;
    Batch b;
} Packer;
void packer_free(Packer *p);
// With s->pairs, sample i packs as documents 2i, 2i + 1 (b.n = 2n, n labels: the model's pairs mode).
int packer_fill(Packer *p, const SeqSet *s, const size_t *idx, size_t n);   // MB_OK or MB_ERR_NOMEM
// Tokens of item i's longest document (the item itself unless s->pairs): what max_len bounds.
static inline size_t seq_doc_len(const SeqSet *s, size_t i) {
    const Sequence *q = &s->items[i];
    if (!s->pairs) return q->len;
    return q->len2 > q->len - q->len2 ? q->len2 : q->len - q->len2;
}

// Rank `rank` of `ranks`'s contiguous share [*lo, *hi) of n samples (data-parallel training and
// evaluation, SPEC §12): n * rank / ranks to n * (rank + 1) / ranks; empty when n < ranks.
void runner_share(size_t n, int rank, int ranks, size_t *lo, size_t *hi);

// Seeded shuffle per epoch; a batch that crosses an epoch boundary continues in the next
// shuffle. The whole state (order, pos, rng) is what a saved training state records.
typedef struct {
    size_t *order, n, pos;
    uint64_t rng;
} Sampler;
int sampler_init(Sampler *s, size_t n, uint64_t seed);   // MB_OK or MB_ERR_NOMEM
void sampler_next(Sampler *s, size_t *idx, size_t b);
void sampler_free(Sampler *s);

#endif
