// Shared plumbing of the media loaders: see loaders/media.h.
#include "loaders/media.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"

char *media_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void media_free_names(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int media_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int media_list_dir(const char *dir, char want, char ***names, size_t *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot open folder: %s", dir, strerror(errno));
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc = MB_OK;
    size_t dlen = strlen(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;  // ".", ".." and hidden files (.DS_Store, ...)
        size_t elen = strlen(e->d_name);
        char *full = malloc(dlen + elen + 2);
        if (!full) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing %s", dir); break; }
        memcpy(full, dir, dlen);
        full[dlen] = '/';
        memcpy(full + dlen + 1, e->d_name, elen + 1);
        struct stat st;
        int ok = stat(full, &st) == 0;
        free(full);
        if (!ok) continue;  // dangling link: not a file or folder we could read
        if (want == 'd' ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (len == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **nv = realloc(v, nc * sizeof(*nv));
            if (!nv) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing %s", dir); break; }
            v = nv;
            cap = nc;
        }
        if (!(v[len] = media_strdup(e->d_name))) {
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        len++;
    }
    closedir(d);
    if (rc) {
        media_free_names(v, len);
        return rc;
    }
    if (len) qsort(v, len, sizeof(*v), cmp_str);
    *names = v;
    *n = len;
    return MB_OK;
}

int media_read_file(const char *path, size_t max_bytes, unsigned char **bytes, size_t *n,
                    char *err, size_t errlen) {
    *bytes = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if ((unsigned long long)st.st_size > (unsigned long long)max_bytes) {
        fclose(f);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: file of %lld bytes is over the %zu-byte limit",
                       path, (long long)st.st_size, max_bytes);
    }
    unsigned char *buf = mem_alloc(size + 1);  // + a NUL, so text parsers may treat it as a string
    if (!buf) {
        fclose(f);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        mem_free(buf);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: read failed after %zu of %zu bytes", path,
                       got, got, size);
    }
    buf[size] = 0;
    *bytes = buf;
    *n = size;
    return MB_OK;
}

int media_pick_balanced(const int32_t *labels, size_t n, size_t n_classes, size_t limit,
                        size_t *pick, size_t *n_pick, char *err, size_t errlen) {
    *n_pick = 0;
    if (limit == 0 || limit >= n) {
        for (size_t i = 0; i < n; i++) pick[i] = i;
        *n_pick = n;
        return MB_OK;
    }
    if (n_classes == 0) return mb_fail(err, errlen, MB_ERR_INTERNAL, "balanced subset of 0 classes");
    // Bucket the indices by class (counting sort keeps each bucket in canonical order).
    size_t *start = calloc(n_classes + 1, sizeof(size_t));
    size_t *order = malloc(n * sizeof(size_t));
    size_t *next = calloc(n_classes, sizeof(size_t));
    unsigned char *take = calloc(n, 1);
    int rc = MB_OK;
    if (!start || !order || !next || !take) {
        rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory choosing %zu of %zu samples", limit, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (size_t)labels[i] >= n_classes) {
            rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "label %d out of [0, %zu)", labels[i], n_classes);
            goto done;
        }
        start[labels[i] + 1]++;
    }
    for (size_t c = 0; c < n_classes; c++) start[c + 1] += start[c];
    for (size_t i = 0; i < n; i++) order[start[labels[i]] + next[labels[i]]++] = i;
    // A fixed seed per class: the subset does not depend on anything but the data.
    for (size_t c = 0; c < n_classes; c++) {
        uint64_t s = rng_derive(0x6d61656c7265ULL, (uint64_t)c);
        rng_shuffle(&s, order + start[c], start[c + 1] - start[c]);
        next[c] = 0;
    }
    size_t got = 0;
    while (got < limit) {
        for (size_t c = 0; c < n_classes && got < limit; c++) {
            if (start[c] + next[c] == start[c + 1]) continue;
            take[order[start[c] + next[c]++]] = 1;
            got++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (take[i]) pick[(*n_pick)++] = i;
done:
    free(start);
    free(order);
    free(next);
    free(take);
    return rc;
}

void media_free_items(Sequence *items, size_t n) {
    if (!items) return;
    for (size_t i = 0; i < n; i++) {
        mem_free(items[i].ids);
        mem_free(items[i].feats);
    }
    mem_free(items);
}

int media_load_all(size_t n, media_load_fn load, void *ctx, Sequence *items, char *err,
                   size_t errlen) {
    size_t first_bad = n;  // lowest failing index so far; indices above it need not run
    int first_rc = MB_OK;
    // Dynamic schedule: file sizes vary. The reported error is the lowest failing index whatever
    // the interleaving: every index below the final first_bad ran, and first_bad only shrinks.
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t i = 0; i < n; i++) {
        size_t bad;
#pragma omp atomic read
        bad = first_bad;
        if (i > bad) continue;
        char e[512];
        e[0] = '\0';
        int rc = load(ctx, i, &items[i], e, sizeof e);
        if (rc != MB_OK) {
#pragma omp critical(media_first_bad)
            {
                if (i < first_bad) {
                    first_bad = i;
                    first_rc = rc;
                    if (err && errlen) snprintf(err, errlen, "%s", e);
                }
            }
        }
    }
    if (first_rc == MB_OK) return MB_OK;
    for (size_t i = 0; i < n; i++) {
        mem_free(items[i].ids);
        mem_free(items[i].feats);
        memset(&items[i], 0, sizeof items[i]);
    }
    // Libraries such as libsndfile keep their last error in a global, so a message produced while
    // other threads were failing too may be theirs: redo the failing item alone for its own words.
    char e[512];
    e[0] = '\0';
    int rc = load(ctx, first_bad, &items[first_bad], e, sizeof e);
    if (rc != MB_OK && err && errlen) snprintf(err, errlen, "%s", e);
    mem_free(items[first_bad].ids);  // in case the retry succeeded after all
    mem_free(items[first_bad].feats);
    memset(&items[first_bad], 0, sizeof items[first_bad]);
    return first_rc;
}
