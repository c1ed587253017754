// Plumbing shared by the audio and image loaders (loaders/audio.c, loaders/image.c): sorted
// directory listings, whole-file reads with a size cap, the deterministic class-balanced subset
// behind DataSpec.limit, and an order-deterministic parallel loop over files. Library code: it
// returns core/status.h codes with a "<file>:<offset>: <what>" reason, never prints or exits.
#ifndef MAELRE_MEDIA_H
#define MAELRE_MEDIA_H
#include <stddef.h>
#include <stdint.h>
#include "loaders/dataset.h"

// Names in `dir` (no "." / ".." / hidden entries), sorted by strcmp. want: 'd' directories only,
// 'f' regular files only (symlinks are followed). *names is a malloc'd array of malloc'd strings;
// free with media_free_names. A missing or unreadable dir is MB_ERR_DATA naming it.
int media_list_dir(const char *dir, char want, char ***names, size_t *n, char *err, size_t errlen);
void media_free_names(char **names, size_t n);
int media_is_dir(const char *path);

// Reads a whole file into a mem_alloc buffer (*bytes, free with mem_free), NUL-terminated after
// its n bytes. Refuses files larger than max_bytes before reading them. Missing/unreadable/too large: MB_ERR_DATA naming the file.
int media_read_file(const char *path, size_t max_bytes, unsigned char **bytes, size_t *n,
                    char *err, size_t errlen);

// DataSpec.limit: picks min(limit, n) of n samples (labels in [0, n_classes)) so that classes are
// as balanced as the data allows: each class's members are shuffled with a fixed seed, then
// classes are visited round-robin in label order taking one member each. pick[0..*n_pick) is
// returned in increasing index order (the caller's canonical order). limit 0 picks everything.
// Deterministic: same inputs, same subset, whatever the thread count. pick has room for n.
int media_pick_balanced(const int32_t *labels, size_t n, size_t n_classes, size_t limit,
                        size_t *pick, size_t *n_pick, char *err, size_t errlen);

// Runs load(ctx, i, &items[i], ...) for i in [0, n), in parallel (OpenMP) when available. On
// failure the error of the LOWEST failing index is returned (the same one a serial loop would
// report), every item is freed and zeroed: no partial output.
typedef int (*media_load_fn)(void *ctx, size_t i, Sequence *out, char *err, size_t errlen);
int media_load_all(size_t n, media_load_fn load, void *ctx, Sequence *items, char *err,
                   size_t errlen);

// SeqSet bookkeeping shared by both loaders (items from mem_alloc, class names from malloc,
// matching seqset_free in loaders/dataset.c).
char *media_strdup(const char *s);
void media_free_items(Sequence *items, size_t n);

#endif
