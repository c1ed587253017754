// Building SeqSets (loaders/dataset.h) the way seqset_free expects to free them: items from
// mem_alloc (grown by seqset_push), each item's ids/feats from the tokenizer (mem_alloc), class
// names and their array from malloc. Also DataSpec.limit for loaders that do not apply it
// themselves.                                                           -- loaders/dataset.c
#ifndef MAELRE_SEQSET_H
#define MAELRE_SEQSET_H
#include <stddef.h>
#include "loaders/dataset.h"

// Appends *seq (ownership moves into s; *seq is zeroed). Items must only ever grow through here.
int seqset_push(SeqSet *s, Sequence *seq, char *err, size_t errlen);
// Copies n class names into s (replacing any), sets n_classes.
int seqset_set_classes(SeqSet *s, const char *const *names, size_t n, char *err, size_t errlen);
// Keeps min(limit, n) items, class-balanced as far as the data allows (media_pick_balanced: the
// same rule the audio and image loaders use), in their original order. limit 0 keeps all.
int seqset_limit(SeqSet *s, size_t limit, char *err, size_t errlen);

#endif
