// ListOps: LRA's generator (in C, with our RNG), an evaluator and the TSV loader (listops.h).
#include "loaders/listops.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "loaders/gz.h"
#include "loaders/media.h"
#include "loaders/seqset.h"
#include "loaders/text.h"
#include "loaders/tokenizer.h"

static const char *const words[LO_VOCAB] = {
    "<pad>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "[MIN", "[MAX", "[MED", "[SM", "]", "(", ")"};

int listops_word_id(const char *w, size_t n) {
    if (n == 1) {
        if (w[0] >= '0' && w[0] <= '9') return LO_DIGIT0 + (w[0] - '0');
        return w[0] == ']' ? LO_END : w[0] == '(' ? LO_LPAREN : w[0] == ')' ? LO_RPAREN : -1;
    }
    if (n == 3 && w[0] == '[' && w[1] == 'S' && w[2] == 'M') return LO_SM;
    if (n != 4 || w[0] != '[' || w[1] != 'M') return -1;
    if (w[2] == 'I' && w[3] == 'N') return LO_MIN;
    if (w[2] == 'A' && w[3] == 'X') return LO_MAX;
    if (w[2] == 'E' && w[3] == 'D') return LO_MED;
    return -1;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

// op over v[0..k), k >= 1. MED as LRA: int(np.median(v)), the mean of the middle two truncated.
static int apply_op(int op, int *v, size_t k) {
    int r = v[0];
    switch (op) {
    case LO_MIN: for (size_t i = 1; i < k; i++) if (v[i] < r) r = v[i]; return r;
    case LO_MAX: for (size_t i = 1; i < k; i++) if (v[i] > r) r = v[i]; return r;
    case LO_SM: r = 0; for (size_t i = 0; i < k; i++) r = (r + v[i]) % 10; return r;
    default:
        if (k <= 16) {  // insertion sort: LRA's nodes have at most 10 arguments
            for (size_t i = 1; i < k; i++)
                for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) { int t = v[j]; v[j] = v[j - 1]; v[j - 1] = t; }
        } else {
            qsort(v, k, sizeof *v, cmp_int);
        }
        return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    }
}

// ---- evaluation of a word sequence (ids), shared by listops_eval and the loader ----

typedef struct {
    int *vals;      // value stack
    size_t *frames; // per open operator: (op << 32) | start index into vals
    size_t nv, nf;
} Evaluator;

// ids (n) -> value; parentheses must balance but are otherwise ignored. err: "word i: what".
static int eval_ids(Evaluator *ev, const int32_t *ids, size_t n, int *value, char *err, size_t errlen) {
    ev->nv = ev->nf = 0;
    long parens = 0;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id >= LO_DIGIT0 && id < LO_DIGIT0 + 10) {
            if (ev->nf == 0 && ev->nv > 0)
                return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: a second value outside any operator", i + 1);
            ev->vals[ev->nv++] = id - LO_DIGIT0;
        } else if (id >= LO_MIN && id <= LO_SM) {
            if (ev->nf == 0 && ev->nv > 0)
                return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: a second value outside any operator", i + 1);
            ev->frames[ev->nf++] = ((size_t)id << 32) | ev->nv;
        } else if (id == LO_END) {
            if (ev->nf == 0) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: ']' closes no operator", i + 1);
            size_t fr = ev->frames[--ev->nf], start = fr & 0xffffffffu;
            if (ev->nv == start) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: operator without arguments", i + 1);
            int r = apply_op((int)(fr >> 32), ev->vals + start, ev->nv - start);
            ev->nv = start;
            ev->vals[ev->nv++] = r;
        } else if (id == LO_LPAREN) {
            parens++;
        } else if (id == LO_RPAREN) {
            if (--parens < 0) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: ')' without '('", i + 1);
        } else {
            return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: id %d is not a ListOps symbol", i + 1, id);
        }
    }
    if (ev->nf) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: %zu operator(s) never closed with ']'", n, ev->nf);
    if (parens) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: %ld '(' never closed", n, parens);
    if (ev->nv != 1) return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: no expression", n);
    *value = ev->vals[0];
    return MB_OK;
}

// Splits src into words and maps them; *ids has room for n/2 + 1. err: "word i: what".
static int map_words(const char *src, size_t n, int32_t *ids, size_t *n_ids, char *err, size_t errlen) {
    size_t k = 0, i = 0;
    while (i < n) {
        while (i < n && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r')) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && src[i] != ' ' && src[i] != '\t' && src[i] != '\r') i++;
        int id = listops_word_id(src + s, i - s);
        if (id < 0) {
            size_t show = i - s > 20 ? 20 : i - s;
            return mb_fail(err, errlen, MB_ERR_DATA, "word %zu: '%.*s' is not a ListOps symbol", k + 1, (int)show, src + s);
        }
        ids[k++] = id;
    }
    *n_ids = k;
    return MB_OK;
}

int listops_eval(const char *src, size_t n, int *value, char *err, size_t errlen) {
    size_t cap = n / 2 + 1;
    int32_t *ids = malloc(cap * sizeof *ids);
    Evaluator ev = {malloc(cap * sizeof(int)), malloc(cap * sizeof(size_t)), 0, 0};
    int rc;
    size_t k;
    if (!ids || !ev.vals || !ev.frames) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    else if (!(rc = map_words(src, n, ids, &k, err, errlen))) rc = eval_ids(&ev, ids, k, value, err, errlen);
    free(ids);
    free(ev.vals);
    free(ev.frames);
    return rc;
}

// ---- generation ----

typedef struct {
    int32_t tok[LISTOPS_MAX_LEN + 1];  // prefix form without parentheses: op args... ]
    size_t end[LISTOPS_MAX_LEN + 1];   // end[p]: one past the last token of the node at p
    size_t n;
    int overflow;                      // the tree reached LISTOPS_MAX_LEN + 1 tokens: rejected
    uint64_t rng;
} Gen;

static int gen_tree(Gen *g, int depth) {
    // generate_tree(depth, max_depth=10, max_args=10) of LRA; returns the node's value
    if (g->n >= LISTOPS_MAX_LEN + 1) { g->overflow = 1; return 0; }
    float r = depth < LISTOPS_MAX_DEPTH ? rng_uniform(&g->rng) : 1.0f;
    if (r > 0.25f) {
        int v = (int)rng_below(&g->rng, 10);
        g->end[g->n] = g->n + 1;
        g->tok[g->n++] = LO_DIGIT0 + v;
        return v;
    }
    size_t at = g->n++;
    size_t k = 2 + rng_below(&g->rng, LISTOPS_MAX_ARGS - 1);
    int vals[LISTOPS_MAX_ARGS];
    for (size_t i = 0; i < k; i++) {
        vals[i] = gen_tree(g, depth + 1);
        if (g->overflow) return 0;
    }
    int op = LO_MIN + (int)rng_below(&g->rng, 4);  // LRA picks the operator after the arguments
    g->tok[at] = op;
    if (g->n >= LISTOPS_MAX_LEN + 1) { g->overflow = 1; return 0; }
    g->tok[g->n++] = LO_END;
    g->end[at] = g->n;
    return apply_op(op, vals, k);
}

static char *put(char *o, const char *s) { while (*s) *o++ = *s++; return o; }

// LRA's to_string: an operator with k arguments is "( "*(k+1) "[OP" (" " arg " )")*k " ] )".
static char *render(const int32_t *t, const size_t *end, size_t p, char *o) {
    if (t[p] < LO_MIN) { *o++ = (char)('0' + t[p] - LO_DIGIT0); return o; }
    size_t k = 0;
    for (size_t q = p + 1; t[q] != LO_END; q = end[q]) k++;
    for (size_t i = 0; i <= k; i++) o = put(o, "( ");
    o = put(o, words[t[p]]);
    for (size_t q = p + 1; t[q] != LO_END; q = end[q]) {
        *o++ = ' ';
        o = render(t, end, q, o);
        o = put(o, " )");
    }
    return put(o, " ] )");
}

static uint64_t hash_tree(const int32_t *t, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint64_t)t[i];
        h *= 0x100000001B3ull;
        h ^= h >> 29;
    }
    return h ? h : 1;
}

static int mkdirs(const char *dir, char *err, size_t errlen) {
    char p[4096];
    size_t k = strlen(dir);
    if (k == 0 || k >= sizeof p) return mb_fail(err, errlen, MB_ERR_IO, "bad output folder '%s'", dir);
    memcpy(p, dir, k + 1);
    for (size_t i = 1; i <= k; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
        p[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mb_fail(err, errlen, MB_ERR_IO, "%s: not a folder", dir);
    return MB_OK;
}

static const char *const split_names[3] = {"train", "val", "test"};

int listops_generate(const char *dir, uint64_t seed, size_t n_train, size_t n_val, size_t n_test,
                     ListopsStats *stats, char *err, size_t errlen) {
    int rc = mkdirs(dir, err, errlen);
    if (rc) return rc;
    size_t want[3] = {n_train, n_val, n_test}, total = n_train + n_val + n_test;
    char tmp[3][4096], final[3][4096];
    FILE *f[3] = {0};
    ListopsStats st;
    memset(&st, 0, sizeof st);
    size_t *hist = calloc(3 * (LISTOPS_MAX_LEN + 1), sizeof *hist);
    size_t cap = 1;
    while (cap < 2 * total + 2) cap <<= 1;
    uint64_t *seen = calloc(cap, sizeof *seen);
    Gen *g = malloc(sizeof *g);
    char *line = malloc(32 * (LISTOPS_MAX_LEN + 1) + 64);  // <= 5 words per token (parens), <= 5 chars each
    if (!hist || !seen || !g || !line) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    for (int s = 0; s < 3; s++) {
        int a = snprintf(final[s], sizeof final[s], "%s/basic_%s.tsv", dir, split_names[s]);
        int b = snprintf(tmp[s], sizeof tmp[s], "%s/.basic_%s.tsv.tmp%ld", dir, split_names[s], (long)getpid());
        if (a < 0 || b < 0 || (size_t)a >= sizeof final[s] || (size_t)b >= sizeof tmp[s]) {
            rc = mb_fail(err, errlen, MB_ERR_IO, "%s: path too long", dir);
            goto done;
        }
        if (!(f[s] = fopen(tmp[s], "wb"))) {
            rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write: %s", tmp[s], strerror(errno));
            goto done;
        }
        setvbuf(f[s], NULL, _IOFBF, 1 << 20);
        fputs("Source\tTarget\n", f[s]);
    }
    g->rng = rng_derive(seed, 0x4c6973744f7073ull);  // "ListOps"
    for (int s = 0; s < 3; s++) {
        ListopsSplitStats *ss = &st.split[s];
        ss->len_min = (size_t)-1;
        double sum = 0;
        while (ss->n < want[s]) {
            g->n = 0;
            g->overflow = 0;
            int v = gen_tree(g, 1);
            st.trees_tried++;
            if (g->overflow || g->n < LISTOPS_MIN_LEN || g->n > LISTOPS_MAX_LEN) continue;
            uint64_t h = hash_tree(g->tok, g->n);
            size_t slot = h & (cap - 1);
            while (seen[slot] && seen[slot] != h) slot = (slot + 1) & (cap - 1);
            if (seen[slot]) { st.duplicates++; continue; }
            seen[slot] = h;
            char *o = render(g->tok, g->end, 0, line);
            o += sprintf(o, "\t%d\n", v);
            fwrite(line, 1, (size_t)(o - line), f[s]);
            ss->n++;
            ss->label_count[v]++;
            hist[s * (LISTOPS_MAX_LEN + 1) + g->n]++;
            if (g->n < ss->len_min) ss->len_min = g->n;
            if (g->n > ss->len_max) ss->len_max = g->n;
            sum += (double)g->n;
        }
        if (ss->n == 0) ss->len_min = 0;
        ss->len_mean = ss->n ? sum / (double)ss->n : 0;
        size_t acc = 0;  // lower median
        for (size_t L = 0; L <= LISTOPS_MAX_LEN && ss->n; L++) {
            acc += hist[s * (LISTOPS_MAX_LEN + 1) + L];
            if (2 * acc >= ss->n) { ss->len_median = L; break; }
        }
    }
    for (int s = 0; s < 3; s++) {
        int bad = fflush(f[s]) != 0 || ferror(f[s]);
        bad |= fclose(f[s]) != 0;
        f[s] = NULL;
        if (bad) { rc = mb_fail(err, errlen, MB_ERR_IO, "%s: write failed: %s", tmp[s], strerror(errno)); goto done; }
    }
    for (int s = 0; s < 3; s++)
        if (rename(tmp[s], final[s]) != 0) {
            rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot rename into place: %s", final[s], strerror(errno));
            goto done;
        }
    if (stats) *stats = st;
done:
    for (int s = 0; s < 3; s++) {
        if (f[s]) fclose(f[s]);
        if (rc) unlink(tmp[s]);
    }
    free(hist);
    free(seen);
    free(g);
    free(line);
    return rc;
}

// ---- loading ----

typedef struct {
    SeqSet *out;
    int keep_parens;
    size_t max_len;
    int32_t *ids;
    size_t cap;
    Evaluator ev;
    const unsigned char *keep;  // rows to load (NULL = all), by row index
    size_t row;
    int32_t *labels;            // the first pass of a limited load only records targets here
    size_t n_labels, cap_labels;
} LoadCtx;

static int parse_target(const char *file, size_t line, const char *label, size_t label_n, int *target,
                        char *err, size_t errlen) {
    while (label_n && (*label == ' ' || *label == '\r')) label++, label_n--;
    while (label_n && (label[label_n - 1] == ' ' || label[label_n - 1] == '\r')) label_n--;
    if (label_n != 1 || label[0] < '0' || label[0] > '9') {
        size_t show = label_n > 20 ? 20 : label_n;
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: target '%.*s' is not a digit 0-9", file, line, (int)show, label);
    }
    *target = label[0] - '0';
    return MB_OK;
}

static int label_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                     const unsigned char *text, size_t text_n, char *err, size_t errlen) {
    LoadCtx *c = vctx;
    int target;
    int rc = parse_target(file, line, label, label_n, &target, err, errlen);
    if (rc) return rc;
    if (c->n_labels == c->cap_labels) {
        size_t nc = c->cap_labels ? 2 * c->cap_labels : 1024;
        int32_t *nl = realloc(c->labels, nc * sizeof *nl);
        if (!nl) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        c->labels = nl;
        c->cap_labels = nc;
    }
    c->labels[c->n_labels++] = target;
    return MB_OK;
}

static int load_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                    const unsigned char *text, size_t text_n, char *err, size_t errlen) {
    LoadCtx *c = vctx;
    if (c->keep && !c->keep[c->row++]) return MB_OK;
    int target;
    int rc = parse_target(file, line, label, label_n, &target, err, errlen);
    if (rc) return rc;
    size_t need = text_n / 2 + 1;
    if (need > c->cap) {
        size_t ncap = need > 2 * c->cap ? need : 2 * c->cap;
        int32_t *ni = realloc(c->ids, ncap * sizeof *ni);
        int *nv = realloc(c->ev.vals, ncap * sizeof *nv);
        if (ni) c->ids = ni;
        if (nv) c->ev.vals = nv;
        size_t *nf = realloc(c->ev.frames, ncap * sizeof *nf);
        if (nf) c->ev.frames = nf;
        if (!ni || !nv || !nf) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        c->cap = ncap;
    }
    size_t k;
    char e[160];
    rc = map_words((const char *)text, text_n, c->ids, &k, e, sizeof e);
    int value = -1;
    if (!rc) rc = eval_ids(&c->ev, c->ids, k, &value, e, sizeof e);
    if (rc) return mb_fail(err, errlen, rc, "%s:%zu: %s", file, line, e);
    if (value != target)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: target %d but the expression evaluates to %d", file, line,
                       target, value);
    if (!c->keep_parens) {
        size_t w = 0;
        for (size_t i = 0; i < k; i++)
            if (c->ids[i] != LO_LPAREN && c->ids[i] != LO_RPAREN) c->ids[w++] = c->ids[i];
        k = w;
    }
    Sequence s = {.label = target};
    rc = tok_ids(&s, c->ids, k, c->max_len, e, sizeof e);
    if (rc) return mb_fail(err, errlen, rc, "%s:%zu: %s", file, line, e);
    if ((rc = seqset_push(c->out, &s, err, errlen))) sequence_free(&s);
    return rc;
}

static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

// The table's rows from memory (buf) or, with buf NULL, streamed from the file itself.
static int walk_rows(const char *file, const unsigned char *buf, size_t n, TextRowFn fn, void *ctx, char *err,
                     size_t errlen) {
    return buf ? text_table_walk(file, buf, n, '\t', fn, ctx, err, errlen)
               : text_table_walk_file(file, '\t', fn, ctx, err, errlen);
}

static int parse_impl(const char *file, const unsigned char *buf, size_t n, int keep_parens, size_t max_len,
                      size_t limit, SeqSet *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int rc = seqset_set_classes(out, digit_names, 10, err, errlen);
    if (rc) return rc;
    out->vocab = LO_VOCAB;
    LoadCtx c = {out, keep_parens, max_len, NULL, 0, {0}, NULL, 0, NULL, 0, 0};
    unsigned char *keep = NULL;
    size_t *pick = NULL;
    if (limit) {  // first pass: targets only, to choose the rows before tokenising any
        rc = walk_rows(file, buf, n, label_row, &c, err, errlen);
        if (!rc && c.n_labels > limit) {
            keep = calloc(c.n_labels, 1);
            pick = malloc(c.n_labels * sizeof *pick);
            size_t n_pick = 0;
            if (!keep || !pick) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
            else rc = media_pick_balanced(c.labels, c.n_labels, 10, limit, pick, &n_pick, err, errlen);
            for (size_t j = 0; !rc && j < n_pick; j++) keep[pick[j]] = 1;
            c.keep = keep;
        }
    }
    if (!rc) rc = walk_rows(file, buf, n, load_row, &c, err, errlen);
    free(keep);
    free(pick);
    free(c.labels);
    free(c.ids);
    free(c.ev.vals);
    free(c.ev.frames);
    if (rc) seqset_free(out);
    return rc;
}

int listops_parse(const char *file, const unsigned char *buf, size_t n, int keep_parens,
                  size_t max_len, size_t limit, SeqSet *out, char *err, size_t errlen) {
    return parse_impl(file, buf, n, keep_parens, max_len, limit, out, err, errlen);
}

int listops_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                         char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char path[4096];
    int k = snprintf(path, sizeof path, "%s/%s/basic_%s.tsv", data_root, spec->path, split_names[split]);
    if (k < 0 || (size_t)k >= sizeof path) return mb_fail(err, errlen, MB_ERR_USAGE, "data path too long");
    struct stat st;
    if (stat(path, &st) != 0)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: not found; generate it with `maelre-bench data listops --out %s/%s`",
                       path, data_root, spec->path);
    // streamed: the 96,000-tree train file (636 MB) is never held whole (issue 12)
    return parse_impl(path, NULL, 0, !strcmp(spec->source, "listops-parens"), spec->max_len, spec->limit, out, err,
                      errlen);
}
