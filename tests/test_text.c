// Text tables (TSV/CSV, header or not, gzip) and the IMDb layouts, on files written here.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/gz.h"
#include "loaders/text.h"
#include "loaders/tokenizer.h"

static char err[1024];

static void mkdir_p(const char *root, const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0777); *s = '/'; }
    mkdir(p, 0777);
}

static void put(const char *root, const char *rel, const void *data, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    cr_assert(f, "cannot write %s", p);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void put_s(const char *root, const char *rel, const char *s) { put(root, rel, s, strlen(s)); }

// gzip of s into memory (malloc), via zlib's deflate with a gzip wrapper.
static unsigned char *gzip_mem(const char *s, size_t *out_n) {
    size_t n = strlen(s), cap = compressBound(n) + 64;
    unsigned char *o = malloc(cap);
    z_stream z = {0};
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)s;
    z.avail_in = (uInt)n;
    z.next_out = o;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return o;
}

static char *tmpdir(void) {
    static char t[64];
    strcpy(t, "/tmp/maelre-text-XXXXXX");
    cr_assert(mkdtemp(t));
    return t;
}

static void assert_bytes(const Sequence *s, const char *text) {
    cr_assert_eq(s->len, strlen(text), "len %zu vs '%s'", s->len, text);
    for (size_t i = 0; i < s->len; i++) cr_assert_eq(seq_id(s, i), (unsigned char)text[i] + 1);
}

static const char *const nc[] = {"neg", "pos"};

Test(text, tsv_with_header_and_byte_ids) {
    const char *t = "label\ttext\n0\tabc\n1\tde f\n\npos\tx\r\n";
    SeqSet s;
    cr_assert_eq(text_parse_table("t.tsv", (const unsigned char *)t, strlen(t), '\t', nc, 2, 0, &s, err, sizeof err),
                 MB_OK, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.vocab, TOK_BYTE_VOCAB);
    cr_assert_eq(s.n_classes, 2);
    cr_assert_str_eq(s.class_names[1], "pos");
    cr_assert_eq(s.items[0].label, 0);
    assert_bytes(&s.items[0], "abc");
    cr_assert_eq(s.items[1].label, 1);
    assert_bytes(&s.items[1], "de f");
    cr_assert_eq(s.items[2].label, 1, "class names are labels too");
    assert_bytes(&s.items[2], "x");
    seqset_free(&s);
    cr_assert_eq(s.items, NULL);
}

Test(text, headerless_label_column_is_found) {
    const char *a = "1\tgood\n0\tbad\n";  // label first
    SeqSet s;
    cr_assert_eq(text_parse_table("a.tsv", (const unsigned char *)a, strlen(a), '\t', nc, 2, 0, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.items[0].label, 1);
    assert_bytes(&s.items[0], "good");
    seqset_free(&s);
    const char *b = "[MAX 1 ]\t1\nhello\t0\n";  // LRA's Source<TAB>Target without its header
    cr_assert_eq(text_parse_table("b.tsv", (const unsigned char *)b, strlen(b), '\t', nc, 2, 0, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.items[0].label, 1);
    assert_bytes(&s.items[0], "[MAX 1 ]");
    seqset_free(&s);
}

Test(text, csv_quotes_and_truncation) {
    const char *t = "text,label\n\"a,\"\"b\"\"\nc\",1\nplain,0\n";
    SeqSet s;
    cr_assert_eq(text_parse_table("q.csv", (const unsigned char *)t, strlen(t), ',', nc, 2, 0, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 2);
    assert_bytes(&s.items[0], "a,\"b\"\nc");
    cr_assert_eq(s.items[0].label, 1);
    seqset_free(&s);
    cr_assert_eq(text_parse_table("q.csv", (const unsigned char *)t, strlen(t), ',', nc, 2, 3, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.items[0].len, 3);
    cr_assert_eq(s.items[1].len, 3);
    seqset_free(&s);
}

static void expect_bad(const char *file, const char *t, char delim, const char *what) {
    SeqSet s;
    memset(&s, 0x5a, sizeof s);
    err[0] = 0;
    int rc = text_parse_table(file, (const unsigned char *)t, strlen(t), delim, nc, 2, 0, &s, err, sizeof err);
    cr_assert_eq(rc, MB_ERR_DATA, "input %s gave %d", file, rc);
    cr_assert(strstr(err, what), "reason '%s' lacks '%s'", err, what);
    cr_assert_eq(s.items, NULL, "no partial output");
    cr_assert_eq(s.n, 0);
}

Test(text, bad_tables_are_refused_with_file_and_line) {
    expect_bad("empty.tsv", "", '\t', "empty.tsv:1: no data rows");
    expect_bad("hdr.tsv", "label\ttext\n", '\t', "hdr.tsv:2: no data rows");
    expect_bad("ragged.tsv", "0\ta\n1\tb\tc\n", '\t', "ragged.tsv:2: expected 2 fields");
    expect_bad("one.tsv", "0\ta\n1\n", '\t', "one.tsv:2: expected 2 fields");
    expect_bad("label.tsv", "0\ta\n1\tb\n7\tc\n", '\t', "label.tsv:3: label '7'");
    expect_bad("emptytext.tsv", "0\ta\n1\t\n", '\t', "emptytext.tsv:2: empty sample");
    expect_bad("quote.csv", "0,a\n1,\"never closed\n", ',', "quote.csv:2: quoted field never closed");
    expect_bad("after.csv", "0,\"x\"y\n", ',', "after.csv:1: text after a closing quote");
    expect_bad("ragged.csv", "0,a\n1,b,c\n", ',', "ragged.csv:2: expected 2 fields");
}

Test(text, table_classes_discovery) {
    const char *t = "label\ttext\nzeta\ta\nalpha\tb\nzeta\tc\n";
    char **names;
    size_t k;
    cr_assert_eq(text_table_classes("c.tsv", (const unsigned char *)t, strlen(t), '\t', &names, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, 2);
    cr_assert_str_eq(names[0], "alpha");
    cr_assert_str_eq(names[1], "zeta");
    for (size_t i = 0; i < k; i++) free(names[i]);
    free(names);
    const char *u = "3\ta\n1\tb\n";
    cr_assert_eq(text_table_classes("u.tsv", (const unsigned char *)u, strlen(u), '\t', &names, &k, err, sizeof err), MB_OK);
    cr_assert_eq(k, 4, "integer labels are indices 0..max");
    cr_assert_str_eq(names[3], "3");
    for (size_t i = 0; i < k; i++) free(names[i]);
    free(names);
}

Test(text, gzip_whole_multi_member_and_cut_short) {
    const char *t = "label\ttext\n0\tfirst review\n1\tsecond one\n";
    size_t gn;
    unsigned char *g = gzip_mem(t, &gn);
    unsigned char *out;
    size_t on;
    cr_assert_eq(gz_inflate(g, gn, 1 << 20, &out, &on, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(on, strlen(t));
    cr_assert_eq(memcmp(out, t, on), 0);
    cr_assert_eq(out[on], 0);
    mem_free(out);
    // two members back to back read as one stream (gzip a b > c)
    unsigned char *two = malloc(2 * gn);
    memcpy(two, g, gn);
    memcpy(two + gn, g, gn);
    cr_assert_eq(gz_inflate(two, 2 * gn, 1 << 20, &out, &on, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(on, 2 * strlen(t));
    mem_free(out);
    free(two);
    // bytes after the stream that are not another member are refused; zero padding is fine
    unsigned char *tail = malloc(gn + 4);
    memcpy(tail, g, gn);
    memcpy(tail + gn, "junk", 4);
    cr_assert_eq(gz_inflate(tail, gn + 4, 1 << 20, &out, &on, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "unexpected bytes after the gzip stream"), "%s", err);
    memset(tail + gn, 0, 4);
    cr_assert_eq(gz_inflate(tail, gn + 4, 1 << 20, &out, &on, err, sizeof err), MB_OK, "%s", err);
    mem_free(out);
    free(tail);
    // every cut short of the end is refused with a byte offset, never a crash or partial text
    for (size_t cut = 2; cut < gn; cut += 3) {
        err[0] = 0;
        out = (unsigned char *)1;
        int rc = gz_inflate(g, cut, 1 << 20, &out, &on, err, sizeof err);
        cr_assert_eq(rc, MB_ERR_DATA, "cut at %zu of %zu accepted", cut, gn);
        cr_assert_null(out);
        cr_assert(strstr(err, "byte "), "%s", err);
    }
    // a cap on the inflated size holds
    cr_assert_eq(gz_inflate(g, gn, 8, &out, &on, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "more than 8 bytes"), "%s", err);
    // files: the same through gz_read_file, and the truncated one names the file
    char *d = tmpdir();
    put(d, "t.tsv.gz", g, gn);
    put(d, "cut.tsv.gz", g, gn - 9);
    char p[256];
    snprintf(p, sizeof p, "%s/t.tsv.gz", d);
    cr_assert_eq(gz_read_file(p, &out, &on, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(on, strlen(t));
    mem_free(out);
    snprintf(p, sizeof p, "%s/cut.tsv.gz", d);
    cr_assert_eq(gz_read_file(p, &out, &on, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "cut.tsv.gz:byte ") && strstr(err, "cut short"), "%s", err);
    free(g);
}

static DataSpec imdb_spec(size_t max_len, size_t limit) {
    DataSpec ds;
    memset(&ds, 0, sizeof ds);
    strcpy(ds.source, "imdb");
    strcpy(ds.path, "imdb");
    ds.max_len = max_len;
    ds.limit = limit;
    return ds;
}

Test(text, imdb_tsv_gz_layout_and_limit) {
    char *d = tmpdir();
    mkdir_p(d, "imdb");
    char t[4096] = "label\ttext\n";
    for (int i = 0; i < 10; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d\treview number %d\n", i < 7 ? 0 : 1, i);
        strcat(t, row);
    }
    size_t gn;
    unsigned char *g = gzip_mem(t, &gn);
    put(d, "imdb/train.tsv.gz", g, gn);
    put_s(d, "imdb/test.tsv", "label\ttext\n1\tok\n0\tmeh\n");
    free(g);
    DataSpec ds = imdb_spec(0, 0);
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 10);
    assert_bytes(&s.items[8], "review number 8");
    cr_assert_eq(s.items[8].label, 1);
    seqset_free(&s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 2);
    seqset_free(&s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_VAL, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 0, "IMDb has no validation split");
    cr_assert_eq(s.n_classes, 2);
    seqset_free(&s);
    ds = imdb_spec(6, 6);  // limit keeps classes balanced: 3 + 3 although the data is 7:3
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 6);
    size_t pos = 0;
    for (size_t i = 0; i < s.n; i++) { pos += s.items[i].label; cr_assert_eq(s.items[i].len, 6); }
    cr_assert_eq(pos, 3);
    SeqSet again;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &again, err, sizeof err), MB_OK);
    for (size_t i = 0; i < s.n; i++) cr_assert_eq(memcmp(s.items[i].ids, again.items[i].ids, 6 * s.items[i].id_bytes), 0, "deterministic");
    seqset_free(&s);
    seqset_free(&again);
}

Test(text, imdb_acl_layout) {
    char *d = tmpdir();
    mkdir_p(d, "aclImdb/train/pos");
    mkdir_p(d, "aclImdb/train/neg");
    mkdir_p(d, "aclImdb/train/unsup");
    mkdir_p(d, "aclImdb/test/pos");
    put_s(d, "aclImdb/train/pos/0_9.txt", "great <br />film");
    put_s(d, "aclImdb/train/pos/1_8.txt", "fine");
    put_s(d, "aclImdb/train/neg/0_1.txt", "awful");
    put_s(d, "aclImdb/train/unsup/0_0.txt", "ignored");
    put_s(d, "aclImdb/train/neg/notes.md", "ignored too");
    put_s(d, "aclImdb/test/pos/0_7.txt", "ok");
    DataSpec ds = imdb_spec(0, 0);
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.items[0].label, 0);
    assert_bytes(&s.items[0], "awful");
    cr_assert_eq(s.items[1].label, 1);
    assert_bytes(&s.items[1], "great <br />film");
    seqset_free(&s);
    // test/ has pos but no neg: a split folder without its class folders is refused
    memset(&s, 0, sizeof s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "aclImdb/test") && strstr(err, "neg"), "%s", err);
    cr_assert_eq(s.n, 0);
    // an empty class folder is refused too
    mkdir_p(d, "aclImdb/test/neg");
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "no .txt reviews"), "%s", err);
    // and no data at all says where to get it
    char *e = tmpdir();
    cr_assert_eq(dataset_load(&ds, e, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "aclImdb_v1.tar.gz"), "%s", err);
}

Test(text, bad_imdb_file_names_file_and_line) {
    char *d = tmpdir();
    mkdir_p(d, "imdb");
    put_s(d, "imdb/train.tsv", "label\ttext\n0\ta\n1\tb\n2\tc\n");
    DataSpec ds = imdb_spec(0, 0);
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "imdb/train.tsv:4: label '2'"), "%s", err);
}

Test(text, generic_tsv_source_takes_classes_from_train) {
    char *d = tmpdir();
    mkdir_p(d, "mine");
    put_s(d, "mine/train.csv", "label,text\nsports,a\npolitics,b\n");
    put_s(d, "mine/test.csv", "label,text\nsports,c\n");
    DataSpec ds;
    memset(&ds, 0, sizeof ds);
    strcpy(ds.source, "tsv");
    strcpy(ds.path, "mine");
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n_classes, 2);
    cr_assert_str_eq(s.class_names[0], "politics");
    cr_assert_eq(s.items[0].label, 1);
    seqset_free(&s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_VAL, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 0);
    seqset_free(&s);
    put_s(d, "mine/test.csv", "label,text\nweather,c\n");
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "mine/test.csv:2: label 'weather'"), "%s", err);
}
