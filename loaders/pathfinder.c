// Pathfinder reader: metadata rows -> seeded 80/10/10 split -> PNGs -> pixel tokens (pathfinder.h).
#include "loaders/pathfinder.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "loaders/image.h"
#include "loaders/media.h"
#include "loaders/pathfinder_gen.h"
#include "loaders/seqset.h"
#include "loaders/tokenizer.h"

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int pathfinder_find(const char *root, const char *path, char *dir, size_t n, char *err, size_t errlen) {
    const char *pre[2] = {"", "lra_release/"};
    char first[4096];
    snprintf(first, sizeof first, "%s/%s", root, path);
    for (int k = 0; k < 2; k++) {
        char d[4096], m[4200];
        int w = snprintf(d, sizeof d, "%s/%s%s", root, pre[k], path);
        if (w < 0 || (size_t)w >= sizeof d) return mb_fail(err, errlen, MB_ERR_DATA, "%s: path too long", root);
        snprintf(m, sizeof m, "%s/" PF_PARTIAL, d);
        if (file_exists(m)) {
            snprintf(dir, n, "%s", d);
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s: an interrupted generation left this dataset incomplete (%s is there); "
                           "generate it again with `maelre-bench data pathfinder` (`run` does that by itself)", d, PF_PARTIAL);
        }
        snprintf(m, sizeof m, "%s/metadata", d);
        if (media_is_dir(m)) {
            snprintf(dir, n, "%s", d);
            return MB_OK;
        }
    }
    snprintf(dir, n, "%s", first);
    return mb_fail(err, errlen, MB_ERR_DATA, "%s: no Pathfinder data (no metadata/ folder here or under %s/lra_release/)",
                   first, root);
}

typedef struct {
    char **rel;        // "<field 0>/<field 1>" per row
    int32_t *label;
    size_t n, cap;
} Rows;

static void rows_free(Rows *r) {
    for (size_t i = 0; i < r->n; i++) free(r->rel[i]);
    free(r->rel);
    free(r->label);
    memset(r, 0, sizeof *r);
}

static int rows_push(Rows *r, char *rel, int32_t label) {
    if (r->n == r->cap) {
        size_t c = r->cap ? 2 * r->cap : 1024;
        char **a = realloc(r->rel, c * sizeof *a);
        if (!a) return MB_ERR_NOMEM;
        r->rel = a;
        int32_t *b = realloc(r->label, c * sizeof *b);
        if (!b) return MB_ERR_NOMEM;
        r->label = b;
        r->cap = c;
    }
    r->rel[r->n] = rel;
    r->label[r->n++] = label;
    return MB_OK;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

// Metadata files: numeric names in numeric order, any others after them by name.
static int cmp_meta(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    char *ex, *ey;
    unsigned long long nx = strtoull(x, &ex, 10), ny = strtoull(y, &ey, 10);
    int numx = ex != x && !strcmp(ex, ".npy"), numy = ey != y && !strcmp(ey, ".npy");
    if (numx && numy && nx != ny) return nx < ny ? -1 : 1;
    if (numx != numy) return numx ? -1 : 1;
    return strcmp(x, y);
}

static int parse_metadata(const char *file, char *text, size_t n, Rows *rows, char *err, size_t errlen) {
    size_t line = 0;
    char *p = text, *end = text + n;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        if (e > p && e[-1] == '\r') e[-1] = 0;
        *e = 0;
        char *f[4] = {0};
        int nf = 0;
        for (char *s = p; nf < 4;) {
            while (*s == ' ' || *s == '\t') s++;
            if (!*s) break;
            f[nf++] = s;
            while (*s && *s != ' ' && *s != '\t') s++;
            if (*s) *s++ = 0;
        }
        if (nf == 0) { p = e + 1; continue; }   // blank line
        if (nf < 4) return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: expected at least 4 fields "
                                   "(subfolder, file, index, label), found %d", file, line, nf);
        if (strcmp(f[3], "0") && strcmp(f[3], "1"))
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label (field 4) must be 0 or 1, found '%s'", file, line, f[3]);
        if (strstr(f[0], "..") || strstr(f[1], "..") || f[0][0] == '/' || strchr(f[1], '/'))
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: image path '%s/%s' leaves the dataset folder",
                           file, line, f[0], f[1]);
        size_t l0 = strlen(f[0]), l1 = strlen(f[1]);
        char *rel = malloc(l0 + l1 + 2);
        if (!rel) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory reading %s", file);
        memcpy(rel, f[0], l0);
        rel[l0] = '/';
        memcpy(rel + l0 + 1, f[1], l1 + 1);
        if (rows_push(rows, rel, f[3][0] - '0')) {
            free(rel);
            return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory reading %s", file);
        }
        p = e + 1;
    }
    return MB_OK;
}

typedef struct {
    const char *dir;
    const DataSpec *spec;
    const Rows *rows;
    const size_t *pick;
} LoadCtx;

static int load_item(void *vctx, size_t i, Sequence *out, char *err, size_t errlen) {
    const LoadCtx *c = vctx;
    size_t k = c->pick[i];
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", c->dir, c->rows->rel[k]);
    unsigned char *bytes;
    size_t n;
    int rc = media_read_file(path, IMAGE_MAX_FILE_BYTES, &bytes, &n, err, errlen);
    if (rc) return rc;
    if (n == 0) {  // skipped: an empty sequence is dropped by the caller
        mem_free(bytes);
        memset(out, 0, sizeof *out);
        return MB_OK;
    }
    Image img;
    rc = image_decode(path, bytes, n, &img, err, errlen);
    mem_free(bytes);
    if (rc) return rc;
    if (img.w != img.h || (c->spec->max_len && img.w * img.h > c->spec->max_len)) {
        size_t w = img.w, h = img.h;
        image_free(&img);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: image is %zu x %zu, the task expects a square of at most %zu pixels",
                       path, w, h, c->spec->max_len);
    }
    rc = tok_image(out, img.pix, img.w, img.h, img.channels, 1, 1, 0, err, errlen);
    image_free(&img);
    if (rc) return rc;
    out->label = c->rows->label[k];
    return MB_OK;
}

int pathfinder_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                            char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char dir[4096], mdir[4200];
    int rc = pathfinder_find(data_root, spec->path, dir, sizeof dir, err, errlen);
    if (rc) return rc;
    static const char *const classes[2] = {"0", "1"};
    if ((rc = seqset_set_classes(out, classes, 2, err, errlen))) return rc;
    out->vocab = TOK_PIXEL_VOCAB;
    snprintf(mdir, sizeof mdir, "%s/metadata", dir);
    char **names = NULL;
    size_t nn = 0;
    if ((rc = media_list_dir(mdir, 'f', &names, &nn, err, errlen))) return rc;
    size_t nm = 0;
    for (size_t i = 0; i < nn; i++) {
        size_t l = strlen(names[i]);
        if (l > 4 && !strcmp(names[i] + l - 4, ".npy")) names[nm++] = names[i];
        else free(names[i]);
    }
    qsort(names, nm, sizeof *names, cmp_meta);
    Rows rows = {0};
    for (size_t i = 0; i < nm && !rc; i++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/%s", mdir, names[i]);
        unsigned char *text;
        size_t n;
        if ((rc = media_read_file(f, (size_t)1 << 30, &text, &n, err, errlen))) break;
        rc = parse_metadata(f, (char *)text, n, &rows, err, errlen);
        mem_free(text);
    }
    media_free_names(names, nm);
    if (!rc && rows.n == 0)
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no metadata rows (no metadata/*.npy lines)", mdir);
    if (rc) { rows_free(&rows); return rc; }

    // Seeded shuffle, then 80/10/10.
    size_t *perm = malloc(rows.n * sizeof *perm), *pick = malloc(rows.n * sizeof *pick);
    int32_t *lab = malloc(rows.n * sizeof *lab);
    Sequence *items = NULL;
    if (!perm || !pick || !lab) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu rows", rows.n); goto done; }
    for (size_t i = 0; i < rows.n; i++) perm[i] = i;
    uint64_t rng = rng_derive(PF_SPLIT_SEED, 0);
    rng_shuffle(&rng, perm, rows.n);
    size_t n_train = rows.n * 8 / 10, n_val = rows.n / 10;
    size_t lo = split == SPLIT_TRAIN ? 0 : split == SPLIT_VAL ? n_train : n_train + n_val;
    size_t hi = split == SPLIT_TRAIN ? n_train : split == SPLIT_VAL ? n_train + n_val : rows.n;
    size_t ns = hi - lo;
    // In the split's own order (sorted row index), so a limit picks the same rows on every run.
    for (size_t i = 0; i < ns; i++) pick[i] = perm[lo + i];
    qsort(pick, ns, sizeof *pick, cmp_size);
    size_t n_pick = ns;
    if (spec->limit && spec->limit < ns) {
        for (size_t i = 0; i < ns; i++) lab[i] = rows.label[pick[i]];
        size_t *sub = perm;  // reuse: perm is no longer needed
        if ((rc = media_pick_balanced(lab, ns, 2, spec->limit, sub, &n_pick, err, errlen))) goto done;
        for (size_t j = 0; j < n_pick; j++) sub[j] = pick[sub[j]];
        memcpy(pick, sub, n_pick * sizeof *pick);
    }
    if (n_pick == 0) goto done;
    items = mem_alloc(n_pick * sizeof *items);
    if (!items) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu samples", n_pick); goto done; }
    memset(items, 0, n_pick * sizeof *items);
    LoadCtx ctx = {dir, spec, &rows, pick};
    if ((rc = media_load_all(n_pick, load_item, &ctx, items, err, errlen))) goto done;
    for (size_t i = 0; i < n_pick && !rc; i++) {
        if (items[i].len == 0) continue;  // an empty image file
        rc = seqset_push(out, &items[i], err, errlen);
    }
done:
    media_free_items(items, items ? n_pick : 0);
    free(perm);
    free(pick);
    free(lab);
    rows_free(&rows);
    return rc;
}

