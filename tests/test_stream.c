// Streamed table input (issue 12, lean data): gz_open/gz_read give the bytes gz_read_file gives
// (plain, gzip, concatenated members, zero padding; damage refused with the file and a byte
// offset), and text_table_walk_file calls back the same rows, with the same lines, as
// text_table_walk over the whole buffer, across its 4 MiB pieces: rows that straddle a piece,
// CRLF, empty lines, a BOM, a header, quoted CSV fields with newlines, one row longer than a piece.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/gz.h"
#include "loaders/seqset.h"
#include "loaders/text.h"

static char err[512];

typedef struct {
    unsigned long long hash;
    size_t rows, bytes, last_line;
} Digest;

// Folds every row (line, label, text) into a hash: two walks agree when their digests do.
static int digest_row(void *vctx, const char *file, size_t line, const char *label, size_t label_n,
                      const unsigned char *text, size_t text_n, char *e, size_t en) {
    Digest *d = vctx;
    unsigned long long h = d->hash ^ (line * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < label_n; i++) h = (h ^ (unsigned char)label[i]) * 0x100000001B3ull;
    h = (h ^ 0xFF) * 0x100000001B3ull;
    for (size_t i = 0; i < text_n; i++) h = (h ^ text[i]) * 0x100000001B3ull;
    d->hash = h;
    d->rows++;
    d->bytes += text_n;
    d->last_line = line;
    return MB_OK;
}

static void write_file(const char *path, const char *data, size_t n, int gzip) {
    if (gzip) {
        gzFile g = gzopen(path, "wb");
        cr_assert(g);
        cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert(f);
        cr_assert_eq(fwrite(data, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
}

// A table of about `target` bytes: random rows of 0-3000 bytes (one of 50000 when long_row),
// CRLF on some lines, empty lines, quoted fields with embedded newlines and "" for ','.
static char *make_table(size_t target, char delim, int long_row, size_t *n) {
    size_t cap = target + 200000;
    char *s = malloc(cap);
    size_t k = 0;
    uint64_t r = 42;
    k += (size_t)sprintf(s + k, "\xEF\xBB\xBFlabel%ctext\n", delim);
    for (size_t row = 0; k < target; row++) {
        size_t len = rng_next(&r) % 3000;
        if (long_row && row == 700) len = 50000;   // past the first piece boundary
        k += (size_t)sprintf(s + k, "%u%c", (unsigned)(rng_next(&r) % 10), delim);
        int quoted = delim == ',' && rng_next(&r) % 3 == 0;
        if (quoted) s[k++] = '"';
        for (size_t i = 0; i < len; i++) {
            unsigned v = (unsigned)(rng_next(&r) % 64);
            char c = (char)('a' + v % 26);
            if (v == 63) c = ' ';
            if (quoted && v == 62) { s[k++] = '"'; c = '"'; }
            if (quoted && v == 61) c = '\n';
            if (!quoted && delim == ',' && c == '"') c = 'q';
            s[k++] = c;
        }
        if (quoted) s[k++] = '"';
        if (rng_next(&r) % 5 == 0) s[k++] = '\r';
        s[k++] = '\n';
        if (rng_next(&r) % 50 == 0) s[k++] = '\n';   // empty line
        cr_assert(k + 60000 < cap);
    }
    *n = k;
    return s;
}

static void same_walk(size_t target, char delim, int long_row, int gzip) {
    size_t n;
    char *t = make_table(target, delim, long_row, &n);
    char path[] = "/tmp/maelre-stream-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    write_file(path, t, n, gzip);
    Digest a = {0}, b = {0};
    cr_assert_eq(text_table_walk(path, (const unsigned char *)t, n, delim, digest_row, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(text_table_walk_file(path, delim, digest_row, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert(a.rows > 100, "rows %zu", a.rows);
    cr_assert(a.hash == b.hash && a.rows == b.rows && a.bytes == b.bytes && a.last_line == b.last_line,
              "%zu bytes delim '%c' gzip %d: whole %zu rows (last line %zu), streamed %zu rows (last line %zu)", n, delim,
              gzip, a.rows, a.last_line, b.rows, b.last_line);
    // the streamed bytes are gz_read_file's
    unsigned char *whole;
    size_t wn;
    cr_assert_eq(gz_read_file(path, &whole, &wn, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(wn, n);
    GzReader *r;
    cr_assert_eq(gz_open(path, &r, err, sizeof err), MB_OK, "%s", err);
    unsigned char piece[7777];
    size_t at = 0, got;
    do {
        cr_assert_eq(gz_read(r, piece, sizeof piece, &got, err, sizeof err), MB_OK, "%s", err);
        cr_assert(at + got <= wn && !memcmp(piece, whole + at, got), "bytes differ near %zu", at);
        at += got;
    } while (got);
    cr_assert_eq(at, wn);
    gz_close(r);
    mem_free(whole);
    unlink(path);
    free(t);
}

Test(stream, tsv_rows_equal_whole_buffer_walk) { same_walk(9u << 20, '\t', 0, 0); }
Test(stream, gzip_tsv_rows_equal_whole_buffer_walk) { same_walk(9u << 20, '\t', 0, 1); }
Test(stream, csv_with_quoted_newlines_equal_whole_buffer_walk) { same_walk(9u << 20, ',', 0, 0); }
Test(stream, small_table_and_one_long_row) { same_walk(200000, '\t', 1, 0); same_walk(200000, ',', 1, 1); }

// Damage: the streamed walk refuses what the whole-file read refuses, naming the file.
Test(stream, damaged_gzip_and_empty_tables_are_refused) {
    size_t n;
    char *t = make_table(300000, '\t', 0, &n);
    uLong bound = compressBound(n) + 64;
    unsigned char *g = malloc(bound + 16);
    // a gzip member by hand: deflate with a gzip wrapper
    z_stream zs = {0};
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (unsigned char *)t;
    zs.avail_in = (uInt)n;
    zs.next_out = g;
    zs.avail_out = (uInt)bound;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t gn = zs.total_out;
    deflateEnd(&zs);
    char path[] = "/tmp/maelre-stream-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    Digest d = {0};
    // cut short
    write_file(path, (const char *)g, gn / 2, 0);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, path) && strstr(err, "cut short") && strstr(err, "byte "), "%s", err);
    // garbage after the stream; zero padding is fine
    memcpy(g + gn, "JUNK", 4);
    write_file(path, (const char *)g, gn + 4, 0);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "unexpected bytes after the gzip stream"), "%s", err);
    memset(g + gn, 0, 16);
    write_file(path, (const char *)g, gn + 16, 0);
    memset(&d, 0, sizeof d);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_OK, "%s", err);
    cr_assert(d.rows > 10);
    // corrupt deflate data
    g[gn / 2] ^= 0xFF;
    g[gn / 2 + 1] ^= 0xFF;
    write_file(path, (const char *)g, gn, 0);
    int rc = text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err);
    cr_assert_eq(rc, MB_ERR_DATA, "rc %d", rc);
    // empty, header only, missing
    write_file(path, "", 0, 0);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "no data rows"), "%s", err);
    write_file(path, "label\ttext\n", 11, 1);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "after the header"), "%s", err);
    unlink(path);
    cr_assert_eq(text_table_walk_file(path, '\t', digest_row, &d, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "cannot open"), "%s", err);
    free(t);
    free(g);
}

// A limited table load tokenises only the rows DataSpec.limit keeps: the same items, in the same
// order, as loading everything and limiting afterwards (seqset_limit).
Test(stream, limited_table_load_equals_limit_after_full_load) {
    char dir[] = "/tmp/maelre-stream-dir-XXXXXX", sub[300], path[400];
    cr_assert(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/imdb", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    size_t n;
    char *t = make_table(400000, '\t', 0, &n);
    // labels 0-9 -> 0/1 (IMDb has two classes), skewed so that balancing matters
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || t[i - 1] == '\n') && t[i] >= '0' && t[i] <= '9') t[i] = t[i] < '7' ? '0' : '1';
    snprintf(path, sizeof path, "%s/train.tsv", sub);
    write_file(path, t, n, 1);
    snprintf(path, sizeof path, "%s/test.tsv", sub);
    write_file(path, t, n, 0);
    DataSpec ds = {.source = "imdb", .path = "imdb", .max_len = 1000};
    for (int split = 0; split < 2; split++) {
        Split sp = split ? SPLIT_TEST : SPLIT_TRAIN;
        SeqSet all, lim;
        ds.limit = 0;
        cr_assert_eq(dataset_load(&ds, dir, sp, &all, err, sizeof err), MB_OK, "%s", err);
        cr_assert(all.n > 60);
        cr_assert_eq(seqset_limit(&all, 37, err, sizeof err), MB_OK);
        ds.limit = 37;
        cr_assert_eq(dataset_load(&ds, dir, sp, &lim, err, sizeof err), MB_OK, "%s", err);
        cr_assert_eq(lim.n, 37);
        cr_assert_eq(all.n, lim.n);
        for (size_t i = 0; i < lim.n; i++) {
            cr_assert(all.items[i].label == lim.items[i].label && all.items[i].len == lim.items[i].len, "item %zu", i);
            cr_assert_eq(lim.items[i].id_bytes, 2);
            cr_assert(!memcmp(all.items[i].ids, lim.items[i].ids, lim.items[i].len * 2), "item %zu ids", i);
        }
        seqset_free(&all);
        seqset_free(&lim);
    }
    snprintf(path, sizeof path, "%s/train.tsv", sub);
    unlink(path);
    snprintf(path, sizeof path, "%s/test.tsv", sub);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
    free(t);
}
