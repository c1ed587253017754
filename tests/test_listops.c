// ListOps: operator semantics on hand-made trees, LRA's file format, generator determinism and
// grammar limits, and the loader's tokenisation and refusals.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/gz.h"
#include "loaders/listops.h"

static char err[1024];

static int value(const char *src) {
    int v = -1;
    int rc = listops_eval(src, strlen(src), &v, err, sizeof err);
    cr_assert_eq(rc, MB_OK, "'%s': %s", src, err);
    return v;
}

Test(listops, operator_values_on_hand_made_trees) {
    cr_assert_eq(value("[MAX 4 3 [MIN 2 3 ] 1 0 ]"), 4);
    cr_assert_eq(value("[MIN 4 3 [MAX 2 9 ] 1 5 ]"), 1);
    cr_assert_eq(value("[MED 3 1 2 ]"), 2);
    cr_assert_eq(value("[MED 1 2 3 4 ]"), 2, "even count: mean of middle two (2.5) truncated");
    cr_assert_eq(value("[MED 0 9 ]"), 4, "(0 + 9) / 2 = 4.5 -> 4");
    cr_assert_eq(value("[MED 9 8 1 8 ]"), 8, "sorted 1 8 8 9 -> 8");
    cr_assert_eq(value("[MED 7 6 ]"), 6);
    cr_assert_eq(value("[SM 9 8 7 ]"), 4, "24 mod 10");
    cr_assert_eq(value("[SM 5 5 ]"), 0);
    cr_assert_eq(value("[SM [MAX 9 1 ] [MIN 9 8 ] [MED 2 4 6 ] ]"), 1, "9 + 8 + 4 = 21");
    cr_assert_eq(value("( ( ( [MAX 2 ) 9 ) ] )"), 9, "LRA's parenthesised form");
    cr_assert_eq(value("7"), 7);
}

Test(listops, malformed_expressions_are_refused) {
    const char *bad[] = {"[MAX ]", "[MAX 1 2", "1 2", "]", "[MAX 1 ] 3", "( [MAX 1 ]", "[MAX 1 ] )", "[FOO 1 ]", "[MAX 12 ]", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int v;
        err[0] = 0;
        cr_assert_eq(listops_eval(bad[i], strlen(bad[i]), &v, err, sizeof err), MB_ERR_DATA, "'%s' accepted", bad[i]);
        cr_assert(strstr(err, "word"), "'%s': %s", bad[i], err);
    }
}

static char *tmpdir(void) {
    static char t[64];
    strcpy(t, "/tmp/maelre-listops-XXXXXX");
    cr_assert(mkdtemp(t));
    return t;
}

static char *slurp(const char *dir, const char *name, size_t *n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unsigned char *b;
    cr_assert_eq(gz_read_file(p, &b, n, err, sizeof err), MB_OK, "%s", err);
    char *c = malloc(*n + 1);
    memcpy(c, b, *n + 1);
    mem_free(b);
    return c;
}

// LRA's to_string, re-derived from the words without parentheses: the reference for the format.
static size_t lra_string(char **w, size_t p, char *o, size_t *k) {
    if (w[p][0] != '[') { *k += (size_t)sprintf(o + *k, "%s", w[p]); return p + 1; }
    size_t q = p + 1, args = 0;
    char sub[65536];
    size_t sk = 0;
    while (strcmp(w[q], "]")) {
        sub[sk++] = ' ';
        q = lra_string(w, q, sub, &sk);
        sk += (size_t)sprintf(sub + sk, " )");
        args++;
    }
    sub[sk] = 0;
    for (size_t i = 0; i <= args; i++) *k += (size_t)sprintf(o + *k, "( ");
    *k += (size_t)sprintf(o + *k, "%s%s ] )", w[p], sub);
    return q + 1;
}

Test(listops, generator_writes_lra_format_and_grammar) {
    char *d = tmpdir();
    char out[512];
    snprintf(out, sizeof out, "%s/sub/listops", d);  // folders are created
    ListopsStats st;
    cr_assert_eq(listops_generate(out, 7, 30, 4, 5, &st, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(st.split[0].n, 30);
    cr_assert_eq(st.split[1].n, 4);
    cr_assert_eq(st.split[2].n, 5);
    cr_assert(st.trees_tried >= 39);
    static const char *const files[3] = {"basic_train.tsv", "basic_val.tsv", "basic_test.tsv"};
    for (int f = 0; f < 3; f++) {
        size_t n;
        char *text = slurp(out, files[f], &n);
        cr_assert_eq(strncmp(text, "Source\tTarget\n", 14), 0);
        size_t rows = 0, label_sum = 0;
        for (char *line = strtok(text + 14, "\n"); line; line = strtok(NULL, "\n")) {
            char *tab = strchr(line, '\t');
            cr_assert(tab);
            *tab = 0;
            int target = atoi(tab + 1);
            int v = value(line);
            cr_assert_eq(v, target, "row %zu: target %d, value %d", rows, target, v);
            label_sum += (size_t)v;
            // split into words; count those that are not parentheses; rebuild LRA's string
            char *copy = strdup(line), *words[20000];
            size_t nw = 0, np = 0;
            char *save;
            for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
                if (strcmp(t, "(") && strcmp(t, ")")) words[np++] = t; else nw++;
            cr_assert(np >= LISTOPS_MIN_LEN && np <= LISTOPS_MAX_LEN, "length %zu outside 501-1999", np);
            cr_assert(nw > 0);
            char *re = malloc(200000);
            size_t k = 0;
            cr_assert_eq(lra_string(words, 0, re, &k), np);
            cr_assert_str_eq(re, line, "not LRA's to_string format");
            free(re);
            free(copy);
            rows++;
        }
        cr_assert_eq(rows, st.split[f].n);
        free(text);
    }
    // same seed, same bytes; another seed, other trees
    char out2[512], out3[512];
    snprintf(out2, sizeof out2, "%s/again", d);
    snprintf(out3, sizeof out3, "%s/other", d);
    cr_assert_eq(listops_generate(out2, 7, 30, 4, 5, NULL, err, sizeof err), MB_OK);
    cr_assert_eq(listops_generate(out3, 8, 30, 4, 5, NULL, err, sizeof err), MB_OK);
    size_t a, b, c;
    char *x = slurp(out, "basic_train.tsv", &a), *y = slurp(out2, "basic_train.tsv", &b), *z = slurp(out3, "basic_train.tsv", &c);
    cr_assert(a == b && !memcmp(x, y, a), "not deterministic");
    cr_assert(a != c || memcmp(x, z, a), "seed ignored");
    free(x);
    free(y);
    free(z);
    // no temporary files left behind
    char p[600];
    snprintf(p, sizeof p, "%s/.basic_train.tsv.tmp%ld", out, (long)getpid());
    struct stat sb;
    cr_assert_neq(stat(p, &sb), 0);
}

Test(listops, generator_refuses_unwritable_folder) {
    char *d = tmpdir();
    char file[512];
    snprintf(file, sizeof file, "%s/plainfile", d);
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    cr_assert_eq(listops_generate(file, 1, 2, 1, 1, NULL, err, sizeof err), MB_ERR_IO);
    cr_assert(strstr(err, "plainfile"), "%s", err);
}

static DataSpec spec(const char *source, size_t limit) {
    DataSpec ds;
    memset(&ds, 0, sizeof ds);
    strcpy(ds.source, source);
    strcpy(ds.path, "listops");
    ds.max_len = 2000;
    ds.limit = limit;
    return ds;
}

Test(listops, loader_drops_parentheses_by_default) {
    char *d = tmpdir();
    char out[512];
    snprintf(out, sizeof out, "%s/listops", d);
    cr_assert_eq(listops_generate(out, 3, 40, 3, 3, NULL, err, sizeof err), MB_OK, "%s", err);
    DataSpec ds = spec("listops", 0);
    SeqSet s, p;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 40);
    cr_assert_eq(s.vocab, LO_VOCAB);
    cr_assert_eq(s.n_classes, 10);
    for (size_t i = 0; i < s.n; i++) {
        cr_assert(s.items[i].len >= LISTOPS_MIN_LEN && s.items[i].len <= LISTOPS_MAX_LEN);
        cr_assert_eq(s.items[i].id_bytes, 1, "18 words: one byte per token");
        for (size_t t = 0; t < s.items[i].len; t++)
            cr_assert(seq_id(&s.items[i], t) > 0 && seq_id(&s.items[i], t) < LO_LPAREN);
    }
    ds = spec("listops-parens", 0);
    ds.max_len = 0;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &p, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(seq_id(&p.items[0], 0), LO_LPAREN);
    cr_assert(p.items[0].len > 2 * s.items[0].len);
    cr_assert_eq(p.items[0].label, s.items[0].label);
    seqset_free(&s);
    seqset_free(&p);
    ds = spec("listops", 10);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 10);
    seqset_free(&s);
    ds = spec("listops", 0);
    ds.max_len = 100;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.items[0].len, 100);
    seqset_free(&s);
}

static void expect_bad(const char *t, const char *what) {
    SeqSet s;
    err[0] = 0;
    int rc = listops_parse("x.tsv", (const unsigned char *)t, strlen(t), 0, 0, 0, &s, err, sizeof err);
    cr_assert_eq(rc, MB_ERR_DATA, "accepted: %s", t);
    cr_assert(strstr(err, what), "reason '%s' lacks '%s'", err, what);
    cr_assert_eq(s.n, 0);
    cr_assert_null(s.items);
}

Test(listops, loader_refuses_damaged_files) {
    expect_bad("", "x.tsv:1: no data rows");
    expect_bad("Source\tTarget\n( ( [MAX 2 ) 9 ]\t9\n", "x.tsv:2: word 7: 1 '(' never closed");
    expect_bad("Source\tTarget\n[MAX 2 9 ]\t9\n[MIN 2 9 ]\t9\n", "x.tsv:3: target 9 but the expression evaluates to 2");
    expect_bad("Source\tTarget\n[MAX 2 9 ]\t12\n", "x.tsv:2: target '12'");
    expect_bad("Source\tTarget\n[MAX 2 nine ]\t9\n", "x.tsv:2: word 3: 'nine'");
    expect_bad("Source\tTarget\n[MAX 2 9 ]\n", "x.tsv:2: expected 2 fields");
    DataSpec ds = spec("listops", 0);
    SeqSet s;
    char *d = tmpdir();
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "basic_train.tsv: not found") && strstr(err, "data listops"), "%s", err);
}
