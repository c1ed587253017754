// Text tables and the aclImdb layout -> byte-token SeqSets (loaders/text.h).
#include "loaders/text.h"
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/gz.h"
#include "loaders/media.h"
#include "loaders/seqset.h"
#include "loaders/tokenizer.h"

#define TEXT_MAX_CLASSES 1000

static const char *const label_names[] = {"label", "labels", "target", "class", "y", "sentiment", "category"};
static const char *const text_names[] = {"text", "source", "review", "sentence", "content", "input", "inputs"};

static void trim(const char **p, size_t *n) {
    while (*n && (**p == ' ' || **p == '\r')) (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\r')) (*n)--;
}

static int in_set(const char *p, size_t n, const char *const *set, size_t k) {
    trim(&p, &n);
    for (size_t i = 0; i < k; i++)
        if (strlen(set[i]) == n && !strncasecmp(p, set[i], n)) return 1;
    return 0;
}

// 1 when p[0..n) (spaces trimmed) is a non-negative decimal integer that fits int32.
static int parse_index(const char *p, size_t n, int32_t *v) {
    trim(&p, &n);
    if (n == 0 || n > 10) return 0;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        x = x * 10 + (p[i] - '0');
    }
    if (x > INT32_MAX) return 0;
    *v = (int32_t)x;
    return 1;
}

typedef struct { const char *p; size_t n; } Field;

// Where a walk over a table stands between pieces of it (text_table_walk_file reads a file a
// piece of whole rows at a time; text_table_walk walks one piece, the whole buffer).
typedef struct {
    size_t line, rows;
    int header_seen, label_col, started;
} WalkState;

// Rows of buf (n bytes, whole rows) -> fn calls, continuing from *st.
static int walk_piece(const char *file, const unsigned char *buf, size_t n, char delim, TextRowFn fn, void *ctx,
                      WalkState *st, char *err, size_t errlen) {
    const int quoting = delim == ',';
    size_t pos = 0, line = st->line, rows = st->rows;
    if (!st->started && n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) pos = 3;
    st->started = 1;
    char *scratch = NULL;  // unescaped quoted fields ("" -> "), allocated on first need
    int rc = MB_OK, header_seen = st->header_seen, label_col = st->label_col;
    while (pos < n) {
        size_t row_line = line, nf = 0, used = 0;
        Field f[2] = {{0}};
        for (;;) {
            Field cur;
            if (quoting && pos < n && buf[pos] == '"') {
                size_t qline = line, start = ++pos;
                int esc = 0;
                for (;;) {
                    if (pos >= n) {
                        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: quoted field never closed", file, qline);
                        goto done;
                    }
                    if (buf[pos] == '"') {
                        if (pos + 1 < n && buf[pos + 1] == '"') { esc = 1; pos += 2; continue; }
                        break;
                    }
                    if (buf[pos] == '\n') line++;
                    pos++;
                }
                size_t end = pos++;
                if (pos < n && buf[pos] == '\r' && (pos + 1 == n || buf[pos + 1] == '\n')) pos++;
                if (pos < n && buf[pos] != (unsigned char)delim && buf[pos] != '\n') {
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: text after a closing quote", file, line);
                    goto done;
                }
                cur.p = (const char *)buf + start;
                cur.n = end - start;
                if (esc && nf < 2) {
                    if (!scratch && !(scratch = mem_alloc(n + 1))) {
                        rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", file);
                        goto done;
                    }
                    char *o = scratch + used;
                    size_t k = 0;
                    for (size_t i = start; i < end; i++) {
                        o[k++] = (char)buf[i];
                        if (buf[i] == '"') i++;  // the second quote of a ""
                    }
                    cur.p = o;
                    cur.n = k;
                    used += k;
                }
            } else {
                size_t start = pos;
                while (pos < n && buf[pos] != (unsigned char)delim && buf[pos] != '\n') pos++;
                size_t end = pos;
                if (end > start && buf[end - 1] == '\r' && (pos == n || buf[pos] == '\n')) end--;
                cur.p = (const char *)buf + start;
                cur.n = end - start;
            }
            if (nf < 2) f[nf] = cur;
            nf++;
            if (pos < n && buf[pos] == (unsigned char)delim) { pos++; continue; }
            if (pos < n) { pos++; line++; }  // the '\n'
            break;
        }
        if (nf == 1 && f[0].n == 0) continue;  // empty line
        if (nf != 2) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: expected 2 fields (label and text) separated by %s, found %zu",
                         file, row_line, delim == '\t' ? "a tab" : "','", nf);
            goto done;
        }
        if (!header_seen) {
            header_seen = 1;
            int l0 = in_set(f[0].p, f[0].n, label_names, 7), l1 = in_set(f[1].p, f[1].n, label_names, 7);
            int t0 = in_set(f[0].p, f[0].n, text_names, 7), t1 = in_set(f[1].p, f[1].n, text_names, 7);
            if ((l0 && t1) || (t0 && l1)) {
                label_col = (l0 && t1) ? 0 : 1;
                continue;
            }
            int32_t v;
            label_col = (!parse_index(f[0].p, f[0].n, &v) && parse_index(f[1].p, f[1].n, &v)) ? 1 : 0;
        }
        const Field *lab = &f[label_col], *txt = &f[1 - label_col];
        rc = fn(ctx, file, row_line, lab->p, lab->n, (const unsigned char *)txt->p, txt->n, err, errlen);
        if (rc) goto done;
        rows++;
    }
done:
    mem_free(scratch);
    st->line = line;
    st->rows = rows;
    st->header_seen = header_seen;
    st->label_col = label_col;
    return rc;
}

static int walk_end(const char *file, const WalkState *st, char *err, size_t errlen) {
    if (st->rows) return MB_OK;
    return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: no data rows (empty file%s)", file, st->line,
                   st->header_seen ? " after the header" : "");
}

int text_table_walk(const char *file, const unsigned char *buf, size_t n, char delim,
                    TextRowFn fn, void *ctx, char *err, size_t errlen) {
    // buf (n bytes) -> one fn call per row
    WalkState st = {1, 0, 0, -1, 0};
    int rc = walk_piece(file, buf, n, delim, fn, ctx, &st, err, errlen);
    return rc ? rc : walk_end(file, &st, err, errlen);
}

// The end of the last whole row in buf[0, n): just past the last '\n' outside quotes (',' tables
// quote with "..." and "" inside; a '\n' is outside when an even number of quotes precede it in
// the piece, which starts at a row start). 0 when there is none.
static size_t last_row_end(const unsigned char *buf, size_t n, int quoting) {
    if (!quoting) {
        const unsigned char *p = buf + n;
        while (p > buf && p[-1] != '\n') p--;
        return (size_t)(p - buf);
    }
    size_t cut = 0;
    int in_q = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '"') in_q = !in_q;
        else if (buf[i] == '\n' && !in_q) cut = i + 1;
    }
    return cut;
}

#define WALK_PIECE (4u << 20)   // bytes read per piece (grown while one row is longer)

int text_table_walk_file(const char *path, char delim, TextRowFn fn, void *ctx, char *err, size_t errlen) {
    GzReader *r;
    int rc = gz_open(path, &r, err, errlen);
    if (rc) return rc;
    WalkState st = {1, 0, 0, -1, 0};
    size_t cap = WALK_PIECE, used = 0;
    unsigned char *buf = mem_alloc(cap + 1);
    if (!buf) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
    int eof = 0;
    while (!rc && !(eof && used == 0)) {
        if (!eof) {
            if (used == cap) {   // one row longer than the buffer: grow it
                if (cap >= GZ_MAX_BYTES) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: a row longer than %zu bytes", path, cap); break; }
                unsigned char *nb = mem_alloc(2 * cap + 1);
                if (!nb) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory for a %zu-byte row", path, cap); break; }
                memcpy(nb, buf, used);
                mem_free(buf);
                buf = nb;
                cap *= 2;
            }
            size_t got;
            if ((rc = gz_read(r, buf + used, cap - used, &got, err, errlen))) break;
            used += got;
            eof = got == 0;
        }
        size_t cut = eof ? used : last_row_end(buf, used, delim == ',');
        if (cut == 0) continue;   // no whole row yet: read more (growing the buffer when full)
        unsigned char keep = buf[cut];
        buf[cut] = 0;   // pieces are NUL-terminated like gz_read_file's buffer
        rc = walk_piece(path, buf, cut, delim, fn, ctx, &st, err, errlen);
        buf[cut] = keep;
        memmove(buf, buf + cut, used - cut);
        used -= cut;
    }
    if (!rc) rc = walk_end(path, &st, err, errlen);
    mem_free(buf);
    gz_close(r);
    return rc;
}

typedef struct {
    SeqSet *out;
    const char *const *classes;
    size_t n_classes, max_len;
    const unsigned char *keep;   // rows to tokenise (NULL = all), by row index; see load_table_file
    size_t row;
    int32_t *labels;             // labels_row: every row's class, in order
    size_t n_labels, cap_labels;
} TableCtx;

static int label_index(const char *const *classes, size_t n_classes, const char *p, size_t n, int32_t *idx) {
    trim(&p, &n);
    for (size_t c = 0; c < n_classes; c++)
        if (strlen(classes[c]) == n && !memcmp(classes[c], p, n)) { *idx = (int32_t)c; return 1; }
    return parse_index(p, n, idx) && (size_t)*idx < n_classes;
}

static int table_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                     const unsigned char *text, size_t text_n, char *err, size_t errlen) {
    TableCtx *c = vctx;
    if (c->keep && !c->keep[c->row++]) return MB_OK;
    int32_t idx;
    if (!label_index(c->classes, c->n_classes, label, label_n, &idx)) {
        size_t show = label_n > 40 ? 40 : label_n;
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label '%.*s%s' is not one of the %zu classes",
                       file, line, (int)show, label, label_n > show ? "..." : "", c->n_classes);
    }
    Sequence s = {.label = idx};
    char e[160];
    int rc = tok_bytes(&s, text, text_n, c->max_len, e, sizeof e);
    if (rc) return mb_fail(err, errlen, rc, "%s:%zu: %s", file, line, e);
    rc = seqset_push(c->out, &s, err, errlen);
    if (rc) sequence_free(&s);
    return rc;
}

int text_parse_table(const char *file, const unsigned char *buf, size_t n, char delim,
                     const char *const *classes, size_t n_classes, size_t max_len, SeqSet *out,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int rc = seqset_set_classes(out, classes, n_classes, err, errlen);
    if (rc) return rc;
    out->vocab = TOK_BYTE_VOCAB;
    TableCtx ctx = {out, classes, n_classes, max_len, NULL, 0, NULL, 0, 0};
    rc = text_table_walk(file, buf, n, delim, table_row, &ctx, err, errlen);
    if (rc) seqset_free(out);
    return rc;
}

typedef struct {
    char **names;
    size_t n;
    int all_int;
    int32_t max_int;
} ClassCtx;

static int class_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                     const unsigned char *text, size_t text_n, char *err, size_t errlen) {
    ClassCtx *c = vctx;
    trim(&label, &label_n);
    int32_t v;
    if (parse_index(label, label_n, &v)) {
        if (v > c->max_int) c->max_int = v;
        if (v >= TEXT_MAX_CLASSES)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label %d: more than %d classes", file, line, v,
                           TEXT_MAX_CLASSES);
    } else {
        c->all_int = 0;
    }
    if (label_n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: empty label", file, line);
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->names[i]) == label_n && !memcmp(c->names[i], label, label_n)) return MB_OK;
    if (c->n >= TEXT_MAX_CLASSES)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: more than %d distinct labels", file, line, TEXT_MAX_CLASSES);
    if (memchr(label, 0, label_n))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: NUL byte in a label", file, line);
    char **nv = realloc(c->names, (c->n + 1) * sizeof *nv);
    if (!nv) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    c->names = nv;
    if (!(nv[c->n] = strndup(label, label_n))) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    c->n++;
    return MB_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int text_table_classes(const char *file, const unsigned char *buf, size_t n, char delim,
                       char ***names, size_t *n_names, char *err, size_t errlen) {
    *names = NULL;
    *n_names = 0;
    ClassCtx c = {NULL, 0, 1, -1};
    int rc = text_table_walk(file, buf, n, delim, class_row, &c, err, errlen);
    if (rc) { free_names(c.names, c.n); return rc; }
    if (c.all_int) {  // integer labels are class indices: "0".."max"
        free_names(c.names, c.n);
        size_t k = (size_t)c.max_int + 1;
        if (!(c.names = calloc(k, sizeof *c.names))) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < k; i++) {
            char t[24];
            snprintf(t, sizeof t, "%zu", i);
            if (!(c.names[i] = strdup(t))) { free_names(c.names, i); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
        }
        c.n = k;
    } else {
        qsort(c.names, c.n, sizeof *c.names, cmp_str);
    }
    *names = c.names;
    *n_names = c.n;
    return MB_OK;
}

// ---- files and folders ----

static int join(char *dst, size_t cap, char *err, size_t errlen, const char *a, const char *b, const char *c) {
    int k = snprintf(dst, cap, "%s%s%s%s%s", a, b ? "/" : "", b ? b : "", c ? "/" : "", c ? c : "");
    if (k < 0 || (size_t)k >= cap) return mb_fail(err, errlen, MB_ERR_USAGE, "path too long: %s/%s", a, b ? b : "");
    return MB_OK;
}

static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }
static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

static char guess_delim(const char *path) {
    size_t k = strlen(path);
    if (k >= 7 && !strcasecmp(path + k - 7, ".csv.gz")) return ',';
    if (k >= 4 && !strcasecmp(path + k - 4, ".csv")) return ',';
    return '\t';
}

static const char *split_name(Split s) { return s == SPLIT_TRAIN ? "train" : s == SPLIT_VAL ? "val" : "test"; }

// The first pass of a limited load: every row's class (refusing a bad label as table_row does).
static int labels_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                      const unsigned char *text, size_t text_n, char *err, size_t errlen) {
    TableCtx *c = vctx;
    int32_t idx;
    if (!label_index(c->classes, c->n_classes, label, label_n, &idx)) {
        size_t show = label_n > 40 ? 40 : label_n;
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label '%.*s%s' is not one of the %zu classes",
                       file, line, (int)show, label, label_n > show ? "..." : "", c->n_classes);
    }
    if (c->n_labels == c->cap_labels) {
        size_t nc = c->cap_labels ? 2 * c->cap_labels : 1024;
        int32_t *nl = realloc(c->labels, nc * sizeof *nl);
        if (!nl) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        c->labels = nl;
        c->cap_labels = nc;
    }
    c->labels[c->n_labels++] = idx;
    return MB_OK;
}

// A table file -> SeqSet, streamed (text_table_walk_file: the text is never held whole). With
// limit > 0, a first pass reads the labels only and the rows DataSpec.limit would keep
// (media_pick_balanced, as seqset_limit) are the only ones tokenised: the same set as tokenising
// all and limiting afterwards, without holding the rest (rows not picked are not checked).
static int load_table_file(const char *path, const char *const *classes, size_t n_classes,
                           size_t max_len, size_t limit, SeqSet *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int rc = seqset_set_classes(out, classes, n_classes, err, errlen);
    if (rc) return rc;
    out->vocab = TOK_BYTE_VOCAB;
    char delim = guess_delim(path);
    TableCtx ctx = {out, classes, n_classes, max_len, NULL, 0, NULL, 0, 0};
    unsigned char *keep = NULL;
    size_t *pick = NULL;
    if (limit) {
        rc = text_table_walk_file(path, delim, labels_row, &ctx, err, errlen);
        if (!rc && ctx.n_labels > limit) {
            keep = calloc(ctx.n_labels, 1);
            pick = malloc(ctx.n_labels * sizeof *pick);
            size_t n_pick = 0;
            if (!keep || !pick) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
            else rc = media_pick_balanced(ctx.labels, ctx.n_labels, n_classes, limit, pick, &n_pick, err, errlen);
            for (size_t j = 0; !rc && j < n_pick; j++) keep[pick[j]] = 1;
            ctx.keep = keep;
        }
    }
    if (!rc) rc = text_table_walk_file(path, delim, table_row, &ctx, err, errlen);
    free(keep);
    free(pick);
    free(ctx.labels);
    if (rc) seqset_free(out);
    return rc;
}

// First existing <dir>/<stem><ext> among the table extensions.
static int find_table(char *dst, size_t cap, const char *dir, const char *stem) {
    static const char *const exts[] = {".tsv.gz", ".tsv", ".csv.gz", ".csv"};
    for (size_t i = 0; i < 4; i++) {
        int k = snprintf(dst, cap, "%s/%s%s", dir, stem, exts[i]);
        if (k > 0 && (size_t)k < cap && is_file(dst)) return 1;
    }
    return 0;
}

static const char *const imdb_classes[] = {"neg", "pos"};

typedef struct { char *path; int32_t label; } FileItem;

static int cmp_file(const void *a, const void *b) {
    const FileItem *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return strcmp(x->path, y->path);
}

// aclImdb/<split>/{neg,pos}/*.txt, sorted (class, name); only the picked files are read.
static int load_acl(const char *split_dir, size_t max_len, size_t limit, SeqSet *out, char *err, size_t errlen) {
    FileItem *items = NULL;
    size_t n = 0, cap = 0;
    int rc = MB_OK;
    for (int32_t c = 0; c < 2 && !rc; c++) {
        char dir[4096];
        if ((rc = join(dir, sizeof dir, err, errlen, split_dir, imdb_classes[c], NULL))) break;
        DIR *d = opendir(dir);
        if (!d) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no class folder '%s' (aclImdb layout needs %s/neg and %s/pos): %s",
                         split_dir, imdb_classes[c], split_dir, split_dir, strerror(errno));
            break;
        }
        size_t before = n;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t k = strlen(e->d_name);
            if (k < 5 || strcmp(e->d_name + k - 4, ".txt") || e->d_name[0] == '.') continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                FileItem *ni = realloc(items, cap * sizeof *ni);
                if (!ni) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing %s", dir); break; }
                items = ni;
            }
            size_t pl = strlen(dir) + k + 2;
            if (!(items[n].path = malloc(pl))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
            snprintf(items[n].path, pl, "%s/%s", dir, e->d_name);
            items[n++].label = c;
        }
        closedir(d);
        if (!rc && n == before) rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no .txt reviews in this class folder", dir);
    }
    size_t *pick = NULL, n_pick = 0;
    int32_t *labels = NULL;
    if (!rc) {
        qsort(items, n, sizeof *items, cmp_file);
        pick = malloc(n * sizeof *pick);
        labels = malloc(n * sizeof *labels);
        if (!pick || !labels) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) labels[i] = items[i].label;
        rc = media_pick_balanced(labels, n, 2, limit, pick, &n_pick, err, errlen);
    }
    for (size_t j = 0; j < n_pick && !rc; j++) {
        const FileItem *it = &items[pick[j]];
        unsigned char *buf;
        size_t len;
        if ((rc = gz_read_file(it->path, &buf, &len, err, errlen))) break;
        Sequence s = {.label = it->label};
        char e[160];
        rc = tok_bytes(&s, buf, len, max_len, e, sizeof e);
        mem_free(buf);
        if (rc) { rc = mb_fail(err, errlen, rc, "%s:1: %s", it->path, e); break; }
        if ((rc = seqset_push(out, &s, err, errlen))) sequence_free(&s);
    }
    for (size_t i = 0; i < n; i++) free(items[i].path);
    free(items);
    free(pick);
    free(labels);
    return rc;
}

int text_imdb_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                   char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int rc = seqset_set_classes(out, imdb_classes, 2, err, errlen);
    if (rc) return rc;
    out->vocab = TOK_BYTE_VOCAB;
    char base[4096], path[4096];
    if ((rc = join(base, sizeof base, err, errlen, data_root, spec->path, NULL))) goto fail;
    if (split == SPLIT_VAL) return MB_OK;  // IMDb has train and test only
    const char *sn = split_name(split);
    if (find_table(path, sizeof path, base, sn)) {
        seqset_free(out);
        return load_table_file(path, imdb_classes, 2, spec->max_len, spec->limit, out, err, errlen);
    }
    char cands[3][4096];
    int nc = 0;
    if (!join(cands[nc], sizeof cands[0], err, errlen, base, sn, NULL)) nc++;
    if (!join(cands[nc], sizeof cands[0], err, errlen, base, "aclImdb", sn)) nc++;
    if (!join(cands[nc], sizeof cands[0], err, errlen, data_root, "aclImdb", sn)) nc++;
    for (int i = 0; i < nc; i++)
        if (is_dir(cands[i])) {
            rc = load_acl(cands[i], spec->max_len, spec->limit, out, err, errlen);
            if (rc) goto fail;
            return MB_OK;
        }
    rc = mb_fail(err, errlen, MB_ERR_DATA,
                 "%s/%s.tsv.gz: IMDb data not found (also looked for %s/aclImdb/%s/{neg,pos}); download "
                 "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz and unpack it under %s",
                 base, sn, data_root, sn, data_root);
fail:
    seqset_free(out);
    return rc;
}

int text_tsv_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                  char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char base[4096], train[4096], path[4096];
    int rc = join(base, sizeof base, err, errlen, data_root, spec->path, NULL);
    if (rc) return rc;
    if (!find_table(train, sizeof train, base, "train"))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/train.tsv: not found (a 'tsv' dataset needs train and test "
                       "tables, .tsv/.csv, optionally .gz)", base);
    int have = find_table(path, sizeof path, base, split_name(split));
    if (!have && split != SPLIT_VAL)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s.tsv: not found", base, split_name(split));
    unsigned char *buf;
    size_t n;
    if ((rc = gz_read_file(train, &buf, &n, err, errlen))) return rc;
    char **names;
    size_t k;
    rc = text_table_classes(train, buf, n, guess_delim(train), &names, &k, err, errlen);
    mem_free(buf);
    if (rc) return rc;
    if (have) {
        rc = load_table_file(path, (const char *const *)names, k, spec->max_len, spec->limit, out, err, errlen);
    } else {
        rc = seqset_set_classes(out, (const char *const *)names, k, err, errlen);
        out->vocab = TOK_BYTE_VOCAB;
    }
    free_names(names, k);
    return rc;
}
