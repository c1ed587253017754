// dataset_load: one DataSpec.source -> the loader that reads it, then DataSpec.limit.
// Also the SeqSet bookkeeping of loaders/seqset.h. A split a dataset does not have (IMDb and UCR
// have no validation split) loads as an empty set with its classes: MB_OK, n = 0.
#include "loaders/dataset.h"
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/aan.h"
#include "loaders/audio.h"
#include "loaders/image.h"
#include "loaders/listops.h"
#include "loaders/media.h"
#include "loaders/pathfinder.h"
#include "loaders/seqset.h"
#include "loaders/text.h"
#include "loaders/timeseries.h"

int dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                 char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (split != SPLIT_TRAIN && split != SPLIT_VAL && split != SPLIT_TEST)
        return mb_fail(err, errlen, MB_ERR_USAGE, "unknown split %d", (int)split);
    const char *src = spec->source;
    int rc;
    if (!strcmp(src, "listops") || !strcmp(src, "listops-parens"))
        rc = listops_dataset_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "imdb"))
        rc = text_imdb_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "tsv"))
        rc = text_tsv_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "aan"))
        rc = aan_dataset_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "ucr"))
        rc = ts_dataset_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "fsdd"))
        rc = audio_dataset_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "pathfinder"))
        rc = pathfinder_dataset_load(spec, data_root, split, out, err, errlen);
    else if (!strcmp(src, "cifar10") || !strcmp(src, "images") || !strcmp(src, "cifar10-bin"))
        rc = image_dataset_load(spec, data_root, split, out, err, errlen);
    else
        return mb_fail(err, errlen, MB_ERR_USAGE,
                       "unknown data source '%s' (known: listops, listops-parens, imdb, tsv, ucr, fsdd, "
                       "cifar10, images, cifar10-bin, pathfinder, aan)", src);
    if (rc) {
        seqset_free(out);
        return rc;
    }
    if (spec->limit && out->n > spec->limit) {
        rc = seqset_limit(out, spec->limit, err, errlen);
        if (rc) seqset_free(out);
    }
    return rc;
}

void seq_ids_to_i32(const Sequence *s, int32_t *out) {
    if (s->bytes) {   // byte tokens (loaders/aan.c): id = byte + 1
        for (size_t i = 0; i < s->len; i++) out[i] = (int32_t)s->bytes[i] + 1;
        return;
    }
    switch (s->id_bytes) {
    case 1: for (size_t i = 0; i < s->len; i++) out[i] = ((const uint8_t *)s->ids)[i]; break;
    case 2: for (size_t i = 0; i < s->len; i++) out[i] = ((const uint16_t *)s->ids)[i]; break;
    default: memcpy(out, s->ids, s->len * sizeof(int32_t));
    }
}

size_t seqset_data_bytes(const SeqSet *s) {
    size_t b = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].ids) b += s->items[i].len * s->items[i].id_bytes;
        if (s->items[i].bytes) b += s->items[i].len;
        if (s->items[i].feats) b += s->items[i].len * s->feat_dim * sizeof(float);
    }
    return b;
}

void seqset_free(SeqSet *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        mem_free(s->items[i].ids);
        mem_free(s->items[i].feats);
        mem_free(s->items[i].bytes);
    }
    mem_free(s->items);
    for (size_t c = 0; s->class_names && c < s->n_classes; c++) free(s->class_names[c]);
    free(s->class_names);
    memset(s, 0, sizeof *s);
}

int seqset_push(SeqSet *s, Sequence *seq, char *err, size_t errlen) {
    // Capacity is implicit: 16, then doubling, so it is full exactly when n is 16, 32, 64, ...
    size_t n = s->n;
    if (!s->items || (n >= 16 && (n & (n - 1)) == 0)) {
        size_t cap = n < 16 ? 16 : 2 * n;
        if (cap > ((size_t)-1) / sizeof(Sequence))
            return mb_fail(err, errlen, MB_ERR_NOMEM, "too many samples (%zu)", n);
        Sequence *ni = mem_alloc(cap * sizeof(Sequence));
        if (!ni) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu samples", cap);
        if (n) memcpy(ni, s->items, n * sizeof(Sequence));
        mem_free(s->items);
        s->items = ni;
    }
    s->items[n] = *seq;
    s->n = n + 1;
    memset(seq, 0, sizeof *seq);
    return MB_OK;
}

int seqset_set_classes(SeqSet *s, const char *const *names, size_t n, char *err, size_t errlen) {
    for (size_t c = 0; s->class_names && c < s->n_classes; c++) free(s->class_names[c]);
    free(s->class_names);
    s->class_names = NULL;
    s->n_classes = 0;
    if (n == 0) return MB_OK;
    char **v = calloc(n, sizeof *v);
    if (!v) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu class names", n);
    for (size_t c = 0; c < n; c++)
        if (!(v[c] = strdup(names[c]))) {
            for (size_t j = 0; j < c; j++) free(v[j]);
            free(v);
            return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for class names");
        }
    s->class_names = v;
    s->n_classes = n;
    return MB_OK;
}

int seqset_limit(SeqSet *s, size_t limit, char *err, size_t errlen) {
    if (limit == 0 || s->n <= limit) return MB_OK;
    int32_t *labels = malloc(s->n * sizeof *labels);
    size_t *pick = malloc(s->n * sizeof *pick), n_pick = 0;
    unsigned char *keep = calloc(s->n, 1);
    int rc = MB_OK;
    if (!labels || !pick || !keep) {
        rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory choosing %zu of %zu samples", limit, s->n);
        goto done;
    }
    for (size_t i = 0; i < s->n; i++) labels[i] = s->items[i].label;
    rc = media_pick_balanced(labels, s->n, s->n_classes, limit, pick, &n_pick, err, errlen);
    if (rc) goto done;
    for (size_t j = 0; j < n_pick; j++) keep[pick[j]] = 1;
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (keep[i]) s->items[w++] = s->items[i];
        else { mem_free(s->items[i].ids); mem_free(s->items[i].feats); mem_free(s->items[i].bytes); }
    }
    s->n = w;  // the block keeps its capacity, which is >= the implicit one of a smaller n
done:
    free(labels);
    free(pick);
    free(keep);
    return rc;
}
