// UEA/sktime .ts and UCR .tsv/.csv -> z-normalised series SeqSets (loaders/timeseries.h).
#include "loaders/timeseries.h"
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/gz.h"
#include "loaders/seqset.h"
#include "loaders/tokenizer.h"

#define TS_MAX_DIMS 100000
#define TS_MAX_CLASSES 100000

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static void trim(const char **p, size_t *n) {
    while (*n && is_space(**p)) (*p)++, (*n)--;
    while (*n && is_space((*p)[*n - 1])) (*n)--;
}

// Next line of buf from *pos: [*s, *s + *len), '\r' and surrounding blanks trimmed.
static int next_line(const unsigned char *buf, size_t n, size_t *pos, const char **s, size_t *len) {
    if (*pos >= n) return 0;
    const unsigned char *e = memchr(buf + *pos, '\n', n - *pos);
    size_t end = e ? (size_t)(e - buf) : n;
    *s = (const char *)buf + *pos;
    *len = end - *pos;
    *pos = e ? end + 1 : n;
    trim(s, len);
    return 1;
}

// A number, or a missing value ('?', NaN in any case) -> *missing = 1. 0 when it is neither.
static int parse_num(const char *p, size_t n, float *v, int *missing) {
    trim(&p, &n);
    *missing = 0;
    if (n == 1 && p[0] == '?') { *missing = 1; *v = NAN; return 1; }
    if (n == 3 && !strncasecmp(p, "nan", 3)) { *missing = 1; *v = NAN; return 1; }
    if (n == 0 || n >= 64) return 0;
    char t[64];
    memcpy(t, p, n);
    t[n] = 0;
    for (size_t i = 0; i < n; i++)  // plain decimal/exponent only: no hex, inf or nan spellings
        if (!strchr("0123456789+-.eE", t[i])) return 0;
    char *end;
    errno = 0;
    double d = strtod(t, &end);
    if (end != t + n || !isfinite(d) || fabs(d) > FLT_MAX) return 0;
    *v = (float)d;
    return 1;
}

static void fill_missing(float *v, size_t len, size_t stride) {
    // v[t * stride] for t < len; NaN marks a missing value
    size_t prev = (size_t)-1;
    for (size_t t = 0; t < len; t++) {
        if (isnan(v[t * stride])) continue;
        if (prev == (size_t)-1) {
            for (size_t u = 0; u < t; u++) v[u * stride] = v[t * stride];
        } else if (t > prev + 1) {
            float a = v[prev * stride], b = v[t * stride];
            for (size_t u = prev + 1; u < t; u++)
                v[u * stride] = a + (b - a) * (float)(u - prev) / (float)(t - prev);
        }
        prev = t;
    }
    if (prev == (size_t)-1) {
        for (size_t t = 0; t < len; t++) v[t * stride] = 0.0f;
        return;
    }
    for (size_t u = prev + 1; u < len; u++) v[u * stride] = v[prev * stride];
}

static int grow_floats(float **v, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t nc = need > 2 * *cap ? need : 2 * *cap;
    float *nv = realloc(*v, nc * sizeof *nv);
    if (!nv) return 0;
    *v = nv;
    *cap = nc;
    return 1;
}

static int word_is(const char *p, size_t n, const char *w) { return strlen(w) == n && !strncasecmp(p, w, n); }

// Splits the next whitespace-separated word off [*p, *p + *n).
static int next_word(const char **p, size_t *n, const char **w, size_t *wn) {
    while (*n && is_space(**p)) (*p)++, (*n)--;
    if (!*n) return 0;
    *w = *p;
    while (*n && !is_space(**p)) (*p)++, (*n)--;
    *wn = (size_t)(*p - *w);
    return 1;
}

static int parse_bool(const char *p, size_t n, int *b) {
    const char *w;
    size_t wn;
    if (!next_word(&p, &n, &w, &wn)) return 0;
    if (word_is(w, wn, "true")) *b = 1;
    else if (word_is(w, wn, "false")) *b = 0;
    else return 0;
    return !next_word(&p, &n, &w, &wn);
}

static int parse_count(const char *p, size_t n, size_t *v, size_t max) {
    trim(&p, &n);
    if (n == 0 || n > 12) return 0;
    size_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        x = x * 10 + (size_t)(p[i] - '0');
    }
    if (x == 0 || x > max) return 0;
    *v = x;
    return 1;
}

static void free_names(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int add_name(char ***v, size_t *n, const char *p, size_t len) {
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) return 0;
    *v = nv;
    if (!(nv[*n] = strndup(p, len))) return 0;
    (*n)++;
    return 1;
}

// Time-major copy of dim-major values, then the shared tokenizer.
static int emit_series(SeqSet *out, int32_t label, const float *dm, size_t len, size_t dims, size_t max_len,
                       float **tm, size_t *tm_cap, const char *file, size_t line, char *err, size_t errlen) {
    if (!grow_floats(tm, tm_cap, len * dims)) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    for (size_t d = 0; d < dims; d++)
        for (size_t t = 0; t < len; t++) (*tm)[t * dims + d] = dm[d * len + t];
    Sequence s = {.label = label};
    char e[160];
    int rc = tok_series(&s, *tm, len, dims, max_len, e, sizeof e);
    if (rc) return mb_fail(err, errlen, rc, "%s:%zu: %s", file, line, e);
    if ((rc = seqset_push(out, &s, err, errlen))) sequence_free(&s);
    return rc;
}

int ts_parse_ts(const char *file, const unsigned char *buf, size_t n, size_t max_len, SeqSet *out,
                char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char **classes = NULL;
    size_t n_classes = 0, dims_hdr = 0, series_len = 0, dims = 0, line_no = 0, pos = 0;
    int univariate = -1, equal_len = 0, have_data = 0, have_classes = 0, rc = MB_OK;
    float *vals = NULL, *tm = NULL;
    size_t vcap = 0, tcap = 0;
    const char *s;
    size_t len;
    if (n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) pos = 3;
    while (next_line(buf, n, &pos, &s, &len)) {
        line_no++;
        if (len == 0 || s[0] == '#') continue;
        if (!have_data) {
            if (s[0] != '@') {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: expected an '@key value' header line before @data", file, line_no);
                goto done;
            }
            const char *p = s + 1, *k;
            size_t pn = len - 1, kn;
            if (!next_word(&p, &pn, &k, &kn)) kn = 0, k = p;
            if (word_is(k, kn, "data")) {
                if (!have_classes) {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @data before any @classLabel line (not a classification file?)",
                                 file, line_no);
                    goto done;
                }
                if (univariate == 1 && dims_hdr > 1) {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: header says @univariate true but @dimensions %zu",
                                 file, line_no, dims_hdr);
                    goto done;
                }
                dims = dims_hdr ? dims_hdr : univariate == 1 ? 1 : 0;
                have_data = 1;
            } else if (word_is(k, kn, "timestamps")) {
                int b;
                if (!parse_bool(p, pn, &b)) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @timeStamps needs true or false", file, line_no); goto done; }
                if (b) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @timeStamps true is not supported (values only)", file, line_no); goto done; }
            } else if (word_is(k, kn, "univariate")) {
                if (!parse_bool(p, pn, &univariate)) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @univariate needs true or false", file, line_no); goto done; }
            } else if (word_is(k, kn, "equallength")) {
                if (!parse_bool(p, pn, &equal_len)) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @equalLength needs true or false", file, line_no); goto done; }
            } else if (word_is(k, kn, "dimensions")) {
                if (!parse_count(p, pn, &dims_hdr, TS_MAX_DIMS)) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @dimensions needs a count in 1..%d", file, line_no, TS_MAX_DIMS); goto done; }
            } else if (word_is(k, kn, "serieslength")) {
                if (!parse_count(p, pn, &series_len, (size_t)1 << 40)) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @seriesLength needs a positive count", file, line_no); goto done; }
            } else if (word_is(k, kn, "targetlabel")) {
                int b = 0;
                parse_bool(p, pn, &b);
                if (b) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @targetLabel true: a regression file, not classification", file, line_no); goto done; }
            } else if (word_is(k, kn, "classlabel")) {
                const char *w;
                size_t wn;
                if (!next_word(&p, &pn, &w, &wn) || !(word_is(w, wn, "true") || word_is(w, wn, "false"))) {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @classLabel needs true or false first", file, line_no);
                    goto done;
                }
                if (word_is(w, wn, "false")) {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @classLabel false: not a classification file", file, line_no);
                    goto done;
                }
                free_names(classes, n_classes);
                classes = NULL;
                n_classes = 0;
                while (next_word(&p, &pn, &w, &wn)) {
                    for (size_t c = 0; c < n_classes; c++)
                        if (strlen(classes[c]) == wn && !memcmp(classes[c], w, wn)) {
                            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: class '%.*s' declared twice", file, line_no, (int)(wn > 40 ? 40 : wn), w);
                            goto done;
                        }
                    if (n_classes >= TS_MAX_CLASSES || memchr(w, 0, wn)) {
                        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: bad @classLabel list", file, line_no);
                        goto done;
                    }
                    if (!add_name(&classes, &n_classes, w, wn)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
                }
                if (n_classes == 0) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: @classLabel true lists no classes", file, line_no); goto done; }
                have_classes = 1;
            }  // @problemName, @missing and unknown keys carry nothing we need
            continue;
        }
        if (s[0] == '@') {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: header line after @data", file, line_no);
            goto done;
        }
        // One series: dim (':' dim)* ':' label
        const char *colon = NULL;
        size_t nd = 0;
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':') { colon = s + i; nd++; }
        if (!colon) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: no ':' before the class label", file, line_no);
            goto done;
        }
        if (dims == 0) dims = nd;
        if (nd != dims) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: %zu dimensions, but %s %zu", file, line_no, nd,
                         dims_hdr ? "the header (@dimensions) says" : univariate == 1 ? "the header (@univariate true) says" : "the first series has",
                         dims);
            goto done;
        }
        const char *lab = colon + 1;
        size_t labn = (size_t)(s + len - lab);
        trim(&lab, &labn);
        int32_t label = -1;
        for (size_t c = 0; c < n_classes; c++)
            if (strlen(classes[c]) == labn && !memcmp(classes[c], lab, labn)) { label = (int32_t)c; break; }
        if (label < 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label '%.*s%s' is not declared in @classLabel", file, line_no,
                         (int)(labn > 40 ? 40 : labn), lab, labn > 40 ? "..." : "");
            goto done;
        }
        if (!grow_floats(&vals, &vcap, (size_t)(colon - s) / 2 + 2)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
        size_t nv = 0, slen = 0;
        const char *q = s;
        for (size_t d = 0; d < dims; d++) {
            const char *e = memchr(q, ':', (size_t)(colon + 1 - q));
            size_t k = 0;
            const char *f = q;
            for (;;) {  // values of dimension d: [q, e) split by ','
                const char *c = memchr(f, ',', (size_t)(e - f));
                const char *fe = c ? c : e;
                int miss;
                if (!parse_num(f, (size_t)(fe - f), &vals[nv], &miss)) {
                    size_t fn = (size_t)(fe - f);
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: dimension %zu, value %zu: '%.*s' is not a number",
                                 file, line_no, d + 1, k + 1, (int)(fn > 30 ? 30 : fn), f);
                    goto done;
                }
                nv++, k++;
                if (!c) break;
                f = c + 1;
            }
            if (d == 0) slen = k;
            else if (k != slen) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: dimension %zu has %zu values but dimension 1 has %zu",
                             file, line_no, d + 1, k, slen);
                goto done;
            }
            fill_missing(vals + nv - k, k, 1);
            q = e + 1;
        }
        if (equal_len && series_len && slen != series_len) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: series of length %zu, but @seriesLength is %zu", file, line_no,
                         slen, series_len);
            goto done;
        }
        if ((rc = emit_series(out, label, vals, slen, dims, max_len, &tm, &tcap, file, line_no, err, errlen))) goto done;
    }
    if (!have_data) rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: no @data line (%s)", file, line_no,
                                 line_no ? "not a .ts file?" : "empty file");
    else if (out->n == 0) rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: no series after @data", file, line_no);
    if (!rc) {
        rc = seqset_set_classes(out, (const char *const *)classes, n_classes, err, errlen);
        out->feat_dim = dims;
    }
done:
    free_names(classes, n_classes);
    free(vals);
    free(tm);
    if (rc) seqset_free(out);
    return rc;
}

// ---- UCR tables ----

static int label_num(const char *p, size_t n, double *v) {
    float f;
    int miss;
    if (!parse_num(p, n, &f, &miss) || miss) return 0;
    char t[64];  // parse again in double for exact comparisons
    trim(&p, &n);
    memcpy(t, p, n);
    t[n] = 0;
    *v = strtod(t, NULL);
    return 1;
}

static int same_label(const char *a, const char *p, size_t n) {
    trim(&p, &n);
    if (strlen(a) == n && !memcmp(a, p, n)) return 1;
    double x, y;
    return label_num(a, strlen(a), &x) && label_num(p, n, &y) && x == y;
}

typedef struct { const char *name; size_t idx; double v; int num; } ClassKey;

static int cmp_key(const void *a, const void *b) {
    const ClassKey *x = a, *y = b;
    if (x->num && y->num) return x->v < y->v ? -1 : x->v > y->v;
    return strcmp(x->name, y->name);
}

int ts_parse_ucr(const char *file, const unsigned char *buf, size_t n, char delim,
                 const char *const *classes, size_t n_classes, size_t max_len, SeqSet *out,
                 char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char **seen = NULL;  // classes NULL: labels in order of first appearance
    size_t n_seen = 0, line_no = 0, pos = 0, fields = 0, vcap = 0, tcap = 0;
    float *vals = NULL, *tm = NULL;
    int rc = MB_OK;
    const char *s;
    size_t len;
    if (n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) pos = 3;
    while (next_line(buf, n, &pos, &s, &len)) {
        line_no++;
        if (len == 0) continue;
        size_t nf = 1;
        for (size_t i = 0; i < len; i++) nf += s[i] == delim;
        if (!grow_floats(&vals, &vcap, nf)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
        const char *f = memchr(s, delim, len);
        const char *lab = s;
        size_t labn = f ? (size_t)(f - s) : len;
        size_t k = 0, bad = 0;
        const char *bad_p = NULL;
        size_t bad_n = 0;
        for (const char *p = f ? f + 1 : s + len; f && p <= s + len;) {
            const char *c = memchr(p, delim, (size_t)(s + len - p));
            const char *e = c ? c : s + len;
            int miss;
            if (!parse_num(p, (size_t)(e - p), &vals[k], &miss) && !bad) { bad = k + 1; bad_p = p; bad_n = (size_t)(e - p); }
            k++;
            if (!c) break;
            p = c + 1;
        }
        if (fields == 0 && bad) { fields = nf; continue; }  // a header row
        if (fields == 0) fields = nf;
        if (nf != fields) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: %zu fields, but the first row has %zu (ragged rows)", file,
                         line_no, nf, fields);
            goto done;
        }
        if (bad) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: value %zu: '%.*s' is not a number", file, line_no, bad,
                         (int)(bad_n > 30 ? 30 : bad_n), bad_p);
            goto done;
        }
        while (k && isnan(vals[k - 1])) k--;  // trailing NaNs pad a shorter series
        if (k == 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: a label and no values", file, line_no);
            goto done;
        }
        fill_missing(vals, k, 1);
        trim(&lab, &labn);
        int32_t label = -1;
        if (classes) {
            for (size_t c = 0; c < n_classes; c++)
                if (same_label(classes[c], lab, labn)) { label = (int32_t)c; break; }
            if (label < 0) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label '%.*s' is not one of the training classes", file,
                             line_no, (int)(labn > 40 ? 40 : labn), lab);
                goto done;
            }
        } else {
            for (size_t c = 0; c < n_seen; c++)
                if (same_label(seen[c], lab, labn)) { label = (int32_t)c; break; }
            if (label < 0) {
                if (labn == 0 || n_seen >= TS_MAX_CLASSES || memchr(lab, 0, labn)) {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: bad or empty label", file, line_no);
                    goto done;
                }
                if (!add_name(&seen, &n_seen, lab, labn)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
                label = (int32_t)(n_seen - 1);
            }
        }
        if ((rc = emit_series(out, label, vals, k, 1, max_len, &tm, &tcap, file, line_no, err, errlen))) goto done;
    }
    if (out->n == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: no series (%s)", file, line_no, line_no ? "only a header" : "empty file");
        goto done;
    }
    out->feat_dim = 1;
    if (classes) {
        rc = seqset_set_classes(out, classes, n_classes, err, errlen);
    } else {  // sort the classes (numeric when all labels are numbers) and renumber
        ClassKey *key = malloc(n_seen * sizeof *key);
        int32_t *remap = malloc(n_seen * sizeof *remap);
        const char **names = malloc(n_seen * sizeof *names);
        if (!key || !remap || !names) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        int all_num = 1;
        for (size_t c = 0; !rc && c < n_seen; c++) {
            key[c] = (ClassKey){seen[c], c, 0, 0};
            all_num &= label_num(seen[c], strlen(seen[c]), &key[c].v);
        }
        for (size_t c = 0; !rc && c < n_seen; c++) key[c].num = all_num;
        if (!rc) {
            qsort(key, n_seen, sizeof *key, cmp_key);
            for (size_t c = 0; c < n_seen; c++) { remap[key[c].idx] = (int32_t)c; names[c] = key[c].name; }
            for (size_t i = 0; i < out->n; i++) out->items[i].label = remap[out->items[i].label];
            rc = seqset_set_classes(out, names, n_seen, err, errlen);
        }
        free(key);
        free(remap);
        free(names);
    }
done:
    free_names(seen, n_seen);
    free(vals);
    free(tm);
    if (rc) seqset_free(out);
    return rc;
}

// ---- the ucr source ----

static int resolve_ci(const char *parent, const char *name, char *out, size_t cap, char *err, size_t errlen) {
    DIR *d = opendir(parent);
    if (!d) return mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot open folder: %s", parent, strerror(errno));
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)))
        if (!strcasecmp(e->d_name, name) && e->d_name[0] != '.') {
            int k = snprintf(out, cap, "%s", e->d_name);
            found = k >= 0 && (size_t)k < cap;
            if (!strcmp(e->d_name, name)) break;  // an exact match wins
        }
    closedir(d);
    if (!found) return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: no such dataset folder (names are matched ignoring case)",
                               parent, name);
    return MB_OK;
}

int ts_resolve_ucr(const char *data_root, const char *name, char *folder, size_t cap, char *err, size_t errlen) {
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/ucr", data_root);
    return resolve_ci(parent, name, folder, cap, err, errlen);
}

// <dir>/*_<SPLIT>.{ts,tsv,csv} (case-insensitive), preferring .ts; 0 when absent.
static int find_split_file(const char *dir, const char *split, char *out, size_t cap) {
    static const char *const exts[] = {".ts", ".tsv", ".csv"};
    DIR *d = opendir(dir);
    if (!d) return 0;
    char best[1024] = "";
    int best_rank = 99;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t k = strlen(e->d_name);
        for (int x = 0; x < 3; x++) {
            char suffix[16];
            snprintf(suffix, sizeof suffix, "_%s%s", split, exts[x]);
            size_t sl = strlen(suffix);
            if (k > sl && !strcasecmp(e->d_name + k - sl, suffix) && e->d_name[0] != '.' &&
                (x < best_rank || (x == best_rank && strcmp(e->d_name, best) < 0)) && k < sizeof best) {
                best_rank = x;
                memcpy(best, e->d_name, k + 1);
            }
        }
    }
    closedir(d);
    if (best_rank == 99) return 0;
    int k = snprintf(out, cap, "%s/%s", dir, best);
    return k >= 0 && (size_t)k < cap;
}

static int load_file(const char *path, const char *const *classes, size_t n_classes, size_t max_len, SeqSet *out,
                     char *err, size_t errlen) {
    unsigned char *buf;
    size_t n;
    int rc = gz_read_file(path, &buf, &n, err, errlen);
    if (rc) return rc;
    size_t k = strlen(path);
    if (k >= 3 && !strcasecmp(path + k - 3, ".ts"))
        rc = ts_parse_ts(path, buf, n, max_len, out, err, errlen);
    else
        rc = ts_parse_ucr(path, buf, n, (k >= 4 && !strcasecmp(path + k - 4, ".csv")) ? ',' : '\t', classes, n_classes,
                          max_len, out, err, errlen);
    mem_free(buf);
    return rc;
}

int ts_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                    char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char parent[4096], folder[1024], dir[4096], train[4096], test[4096];
    const char *slash = strrchr(spec->path, '/');
    const char *name = slash ? slash + 1 : spec->path;
    if (slash) snprintf(parent, sizeof parent, "%s/%.*s", data_root, (int)(slash - spec->path), spec->path);
    else snprintf(parent, sizeof parent, "%s", data_root);
    int rc = resolve_ci(parent, name, folder, sizeof folder, err, errlen);
    if (rc) return rc;
    if (snprintf(dir, sizeof dir, "%s/%s", parent, folder) >= (int)sizeof dir)
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: path too long", parent);
    if (!find_split_file(dir, "TRAIN", train, sizeof train))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s_TRAIN.ts: not found (nor .tsv/.csv)", dir, folder);
    SeqSet tr;
    if ((rc = load_file(train, NULL, 0, spec->max_len, &tr, err, errlen))) return rc;
    if (split == SPLIT_TRAIN) { *out = tr; return MB_OK; }
    if (split == SPLIT_VAL) {  // no validation split: empty, with the classes and width
        rc = seqset_set_classes(out, (const char *const *)tr.class_names, tr.n_classes, err, errlen);
        out->feat_dim = tr.feat_dim;
        seqset_free(&tr);
        return rc;
    }
    if (!find_split_file(dir, "TEST", test, sizeof test)) {
        seqset_free(&tr);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s_TEST.ts: not found (nor .tsv/.csv)", dir, folder);
    }
    rc = load_file(test, (const char *const *)tr.class_names, tr.n_classes, spec->max_len, out, err, errlen);
    if (!rc) {
        int same = out->n_classes == tr.n_classes;
        for (size_t c = 0; same && c < tr.n_classes; c++) same = !strcmp(out->class_names[c], tr.class_names[c]);
        if (out->feat_dim != tr.feat_dim)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: %zu dimensions, but the TRAIN file has %zu", test, out->feat_dim,
                         tr.feat_dim);
        else if (!same)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: its @classLabel list differs from the TRAIN file's (%s)", test, train);
    }
    seqset_free(&tr);
    if (rc) seqset_free(out);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int ts_list_ucr(const char *data_root, char ***names, size_t *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    char parent[4096], dir[4096], tmp[4096];
    snprintf(parent, sizeof parent, "%s/ucr", data_root);
    DIR *d = opendir(parent);
    if (!d) return MB_OK;
    struct dirent *e;
    int rc = MB_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (snprintf(dir, sizeof dir, "%s/%s", parent, e->d_name) >= (int)sizeof dir) continue;
        if (!find_split_file(dir, "TRAIN", tmp, sizeof tmp)) continue;
        if (!add_name(names, n, e->d_name, strlen(e->d_name))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
    }
    closedir(d);
    if (rc) { free_names(*names, *n); *names = NULL; *n = 0; return rc; }
    if (*n) qsort(*names, *n, sizeof **names, cmp_str);
    return MB_OK;
}
