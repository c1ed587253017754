// LRA Retrieval pairs (loaders/aan.h). Rows are read a line at a time (getline), so a file of
// any size is held only as the kept pairs' bytes (one byte per token). With a limit, a first
// pass reads (and checks) every row's label, the class-balanced pick is made from them, and a
// second pass keeps the picked rows' texts.
#include "loaders/aan.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "loaders/media.h"
#include "loaders/seqset.h"
#include "loaders/tokenizer.h"

#define AAN_FIELDS 5

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int aan_find_dir(const char *data_root, const char *path, char *buf, size_t n) {
    char cand[3][4096], f[sizeof cand + 64];
    snprintf(cand[0], sizeof cand[0], "%s/%s", data_root, path && path[0] ? path : "aan");
    snprintf(cand[1], sizeof cand[1], "%s/lra_release/tsv_data", data_root);
    snprintf(cand[2], sizeof cand[2], "%s/lra_release/lra_release/tsv_data", data_root);
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s/new_aan_pairs.train.tsv", cand[i]);
        if (file_exists(f)) { snprintf(buf, n, "%s", cand[i]); return 1; }
    }
    snprintf(buf, n, "%s", cand[0]);
    return 0;
}

// A label field: a decimal number equal to 0 or 1 ("0", "1", "1.0", "0.000"); -1 otherwise.
static int parse_label(const char *p, size_t n) {
    while (n && p[0] == ' ') p++, n--;
    while (n && p[n - 1] == ' ') n--;
    if (n == 0) return -1;
    size_t i = 0;
    int v = -1;
    while (i < n && p[i] == '0') i++, v = 0;
    if (i < n && p[i] == '1') { v = 1; i++; }
    if (v < 0) return -1;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] == '0') i++;
    }
    return i == n ? v : -1;
}

typedef struct {
    const char *f[AAN_FIELDS];
    size_t n[AAN_FIELDS];
} Row;

// Splits line (length len, no newline) on tabs. Returns the field count (stops counting past 5).
static size_t split_row(const char *line, size_t len, Row *r) {
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || line[i] == '\t') {
            if (nf < AAN_FIELDS) { r->f[nf] = line + start; r->n[nf] = i - start; }
            nf++;
            start = i + 1;
        }
    }
    return nf;
}

// One pass over the file. labels (when non-NULL) receives every row's label (*n_rows rows); keep
// (when non-NULL) says which rows go into out (NULL keep with out: all rows).
static int scan(const char *file, size_t max_len, int32_t **labels, size_t *n_rows,
                const unsigned char *keep, SeqSet *out, char *err, size_t errlen) {
    FILE *fp = fopen(file, "rb");
    if (!fp) return mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot open: %s", file, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0, row = 0, lcap = 0;
    ssize_t got;
    int rc = MB_OK;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        if (len == 0) continue;
        Row r;
        size_t nf = split_row(line, len, &r);
        if (nf != AAN_FIELDS) {
            int last = got > 0 && line[got - 1] != '\n';
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: %zu tab-separated fields, expected 5 (label, id1, id2, text1, text2)%s",
                         file, lineno, nf, last && nf < AAN_FIELDS ? "; the file ends inside this row (cut short?)" : "");
            goto done;
        }
        int lab = parse_label(r.f[0], r.n[0]);
        if (lab < 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label \"%.*s\" is not 0 or 1", file, lineno,
                         (int)(r.n[0] > 40 ? 40 : r.n[0]), r.f[0]);
            goto done;
        }
        for (int k = 3; k < 5; k++)
            if (r.n[k] == 0) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: text%d is empty", file, lineno, k - 2);
                goto done;
            }
        if (labels) {
            if (row == lcap) {
                size_t nc = lcap ? 2 * lcap : 1024;
                int32_t *nl = realloc(*labels, nc * sizeof *nl);
                if (!nl) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory for labels", file); goto done; }
                *labels = nl;
                lcap = nc;
            }
            (*labels)[row] = lab;
        }
        if (out && (!keep || keep[row])) {
            size_t l1 = max_len && r.n[3] > max_len ? max_len : r.n[3];
            size_t l2 = max_len && r.n[4] > max_len ? max_len : r.n[4];
            Sequence q = {0};
            q.label = lab;
            q.len = l1 + l2;
            q.len2 = l2;
            q.bytes = mem_alloc(l1 + l2);
            if (!q.bytes) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s:%zu: out of memory for a pair of %zu bytes", file, lineno, l1 + l2); goto done; }
            memcpy(q.bytes, r.f[3], l1);
            memcpy(q.bytes + l1, r.f[4], l2);
            if ((rc = seqset_push(out, &q, err, errlen))) { mem_free(q.bytes); goto done; }
        }
        row++;
    }
    if (ferror(fp)) rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: read error", file, lineno + 1);
done:
    free(line);
    fclose(fp);
    if (n_rows) *n_rows = row;
    return rc;
}

int aan_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    static const char *const classes[] = {"0", "1"};
    int rc = seqset_set_classes(out, classes, 2, err, errlen);
    if (rc) return rc;
    out->vocab = TOK_BYTE_VOCAB;
    out->pairs = 1;
    char dir[4096], file[4300];
    if (!aan_find_dir(data_root, spec->path, dir, sizeof dir)) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s/new_aan_pairs.train.tsv: LRA Retrieval (AAN) data not found (also looked in "
                       "%s/lra_release/tsv_data); download lra_release.gz (linked from the README of "
                       "https://github.com/google-research/long-range-arena: "
                       "https://storage.googleapis.com/long-range-arena/lra_release.gz), unpack it and put "
                       "lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv into %s/ (or keep the "
                       "lra_release/ tree under %s); or try the pipeline on generated pairs: "
                       "maelre-bench data aan-synthetic --out %s", dir, data_root, dir, data_root, dir);
    }
    const char *sn = split == SPLIT_TRAIN ? "train" : split == SPLIT_VAL ? "eval" : "test";
    snprintf(file, sizeof file, "%s/new_aan_pairs.%s.tsv", dir, sn);
    if (!file_exists(file)) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: missing (the train file is there: LRA's release has "
                       "new_aan_pairs.{train,eval,test}.tsv side by side)", file);
    }
    if (!spec->limit) {
        rc = scan(file, spec->max_len, NULL, NULL, NULL, out, err, errlen);
    } else {
        int32_t *labels = NULL;
        size_t n = 0, n_pick = 0;
        rc = scan(file, 0, &labels, &n, NULL, NULL, err, errlen);
        size_t *pick = rc ? NULL : malloc((n ? n : 1) * sizeof *pick);
        unsigned char *keep = rc ? NULL : calloc(n ? n : 1, 1);
        if (!rc && (!pick || !keep)) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", file);
        if (!rc && n <= spec->limit) { for (size_t i = 0; i < n; i++) keep[i] = 1; }
        else if (!rc) {
            rc = media_pick_balanced(labels, n, 2, spec->limit, pick, &n_pick, err, errlen);
            for (size_t j = 0; !rc && j < n_pick; j++) keep[pick[j]] = 1;
        }
        if (!rc) rc = scan(file, spec->max_len, NULL, NULL, keep, out, err, errlen);
        free(labels);
        free(pick);
        free(keep);
    }
    if (rc) seqset_free(out);
    return rc;
}

// ---------------------------------------------------------------- generated pairs

#define SYN_TOPICS 4
#define SYN_TOPIC_LETTERS 5

// A document of topic k: words of 2..7 letters, each letter from the topic's own five letters
// (topic k owns letters 'a' + 5k .. 'a' + 5k + 4) with probability 1/2, else from the whole
// alphabet; words separated by spaces. The relation "same topic" is visible to a model that
// compares the two documents' byte statistics, which a pooled two-tower model can learn fast.
static size_t syn_doc(char *buf, size_t len, int topic, uint64_t *rng) {
    size_t i = 0;
    while (i < len) {
        size_t w = 2 + rng_below(rng, 6);
        for (size_t j = 0; j < w && i < len; j++) {
            char ch = rng_below(rng, 2) ? (char)('a' + SYN_TOPIC_LETTERS * topic + (int)rng_below(rng, SYN_TOPIC_LETTERS))
                                        : (char)('a' + (int)rng_below(rng, 26));
            buf[i++] = ch;
        }
        if (i < len) buf[i++] = ' ';
    }
    if (len && buf[len - 1] == ' ') buf[len - 1] = 'e';
    return len;
}

static int syn_file(const char *dir, const char *split, size_t n, size_t len_min, size_t len_max,
                    uint64_t *rng, char *err, size_t errlen) {
    char path[4300], tmp[4400];
    snprintf(path, sizeof path, "%s/new_aan_pairs.%s.tsv", dir, split);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    char *a = malloc(len_max + 1), *b = malloc(len_max + 1);
    int ok = a && b;
    for (size_t i = 0; ok && i < n; i++) {
        int label = (int)(i % 2);   // balanced; the order is shuffled by the training sampler anyway
        int t1 = (int)rng_below(rng, SYN_TOPICS);
        int t2 = label ? t1 : (t1 + 1 + (int)rng_below(rng, SYN_TOPICS - 1)) % SYN_TOPICS;
        size_t l1 = len_min + rng_below(rng, len_max - len_min + 1);
        size_t l2 = len_min + rng_below(rng, len_max - len_min + 1);
        syn_doc(a, l1, t1, rng);
        syn_doc(b, l2, t2, rng);
        ok = fprintf(f, "%s\tsyn-%s-%zu-a\tsyn-%s-%zu-b\t%.*s\t%.*s\n", label ? "1.0" : "0.0", split, i, split, i,
                     (int)l1, a, (int)l2, b) > 0;
    }
    free(a);
    free(b);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write", path);
    }
    return MB_OK;
}

int aan_write_synthetic(const char *dir, size_t n_train, size_t n_eval, size_t n_test,
                        size_t len_min, size_t len_max, uint64_t seed, char *err, size_t errlen) {
    if (len_min == 0 || len_max < len_min)
        return mb_fail(err, errlen, MB_ERR_USAGE, "aan-synthetic: document lengths must satisfy 1 <= min <= max (got %zu, %zu)", len_min, len_max);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create the folder: %s", dir, strerror(errno));
    const char *names[3] = {"train", "eval", "test"};
    size_t counts[3] = {n_train, n_eval, n_test};
    for (int s = 0; s < 3; s++) {
        uint64_t rng = rng_derive(seed, 0x61616e00ull + (uint64_t)s);
        int rc = syn_file(dir, names[s], counts[s], len_min, len_max, &rng, err, errlen);
        if (rc) return rc;
    }
    return MB_OK;
}
