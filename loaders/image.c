// Image datasets: folder-per-class (PNG/JPEG/BMP through stb_image) and CIFAR-10 binary records.
// See loaders/image.h for what is promised; decisions the header does not spell out:
//  - Reading: each file whole into memory (capped at IMAGE_MAX_FILE_BYTES), then the container
//    walk, stbi_info_from_memory (size limit), stbi_load_from_memory. stb_image alone decodes a
//    truncated JPEG or BMP "successfully" (missing bytes read as zero), hence the walk.
//  - Files are decoded in parallel (media_load_all, OpenMP); the order of samples and the error
//    reported (the lowest failing index) do not depend on the thread count.
//  - DataSpec.limit picks the subset from file names and labels only (media_pick_balanced), so
//    files that are not used are never opened.
#include "loaders/image.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stb_image.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/media.h"
#include "loaders/tokenizer.h"

// ---------------------------------------------------------------- container walks (cut short?)

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }

static void chunk_name(char out[5], const unsigned char *p) {
    for (int i = 0; i < 4; i++) out[i] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '?';
    out[4] = '\0';
}

// PNG: signature, then chunks (length, type, data, CRC) until IEND.
static int check_png(const char *name, const unsigned char *b, size_t n, char *err, size_t errlen) {
    size_t off = 8;
    for (;;) {
        if (off == n)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: PNG ends before its IEND chunk (cut short)",
                           name, n);
        if (n - off < 12)
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: PNG chunk header needs 12 bytes, the file has %zu left (cut short)",
                           name, off, n - off);
        uint32_t len = be32(b + off);
        char type[5];
        chunk_name(type, b + off + 4);
        if (len > 0x7fffffffu)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: PNG chunk '%s' has invalid length %u",
                           name, off, type, len);
        if ((uint64_t)len > (uint64_t)(n - off - 12))
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: PNG chunk '%s' declares %u bytes, the file ends at byte %zu (cut short)",
                           name, off, type, len, n);
        if (memcmp(b + off + 4, "IEND", 4) == 0) return MB_OK;
        off += 12 + (size_t)len;
    }
}

// JPEG Huffman tables (DHT segment payload b[p..end)): class 0-1, slot 0-3, and at most 256 codes
// per table. stb_image 2.27 does not check the count and writes past its 257-entry size table
// (found by fuzz/fuzz_image.c: tests/fuzz-regressions/image-jpeg-dht-over-256-codes.bin). Each
// table read marks defined[class][slot].
static int check_dht(const char *name, const unsigned char *b, size_t p, size_t end,
                     unsigned char defined[2][4], char *err, size_t errlen) {
    while (p < end) {
        size_t at = p;
        if (end - p < 17)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG Huffman table header runs past its segment",
                           name, at);
        unsigned tc = b[p] >> 4, th = b[p] & 15;
        if (tc > 1 || th > 3)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG Huffman table class %u, slot %u (corrupt)",
                           name, at, tc, th);
        size_t codes = 0;
        for (int i = 1; i <= 16; i++) codes += b[p + (size_t)i];
        if (codes > 256)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG Huffman table with %zu codes (at most 256; "
                           "corrupt)", name, at, codes);
        p += 17 + codes;
        if (p > end)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG Huffman table runs past its segment", name, at);
        defined[tc][th] = 1;
    }
    return MB_OK;
}

// A scan (SOS payload b[p..end)) may only use Huffman tables a DHT before it defined: stb_image
// 2.27 allocates its tables without clearing them and decodes with whatever an undefined one
// holds, indexing its symbol arrays out of bounds (fuzz_image:
// tests/fuzz-regressions/image-jpeg-scan-undefined-huffman-table.bin). The tables a scan decodes
// with are stb's: baseline (SOF0/SOF1) DC and AC; progressive (SOF2) DC in a first DC scan
// (Ss = 0, Ah = 0), AC in an AC scan (Ss > 0), none in a DC refinement. Selectors over 3 and
// malformed headers are left to the decoder, which refuses them with its own reason.
static int check_scan_tables(const char *name, const unsigned char *b, size_t p, size_t end, int progressive,
                             const unsigned char defined[2][4], char *err, size_t errlen) {
    if (end <= p) return MB_OK;
    size_t ns = b[p];
    if (end - p < 1 + 2 * ns + 3) return MB_OK;
    unsigned ss = b[p + 1 + 2 * ns], ah = b[p + 3 + 2 * ns] >> 4;
    int uses_dc = !progressive || (ss == 0 && ah == 0), uses_ac = !progressive || ss > 0;
    for (size_t k = 0; k < ns; k++) {
        unsigned td = b[p + 2 + 2 * k] >> 4, ta = b[p + 2 + 2 * k] & 15;
        if (uses_dc && td <= 3 && !defined[0][td])
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG scan uses DC Huffman table %u, which no "
                           "table before it defines (corrupt)", name, p + 2 + 2 * k, td);
        if (uses_ac && ta <= 3 && !defined[1][ta])
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG scan uses AC Huffman table %u, which no "
                           "table before it defines (corrupt)", name, p + 2 + 2 * k, ta);
    }
    return MB_OK;
}

// stb_image 2.27 finds markers in more places than a strict walk does (it resynchronises on any
// 0xFF after an entropy-coded scan), so check_jpeg's walk can miss a DHT that stb will build
// (fuzz_image: tests/fuzz-regressions/image-jpeg-dht-resync-over-256-codes.bin). This pass is
// independent of any walk: every FF C4 in the file is read as a DHT segment and any table in it
// claiming more than 256 codes is refused. Nothing else refuses here, so stray FF C4 bytes in
// metadata cannot reject a valid image.
static int check_every_dht(const char *name, const unsigned char *b, size_t n, char *err,
                           size_t errlen) {
    for (size_t i = 0; i + 4 <= n; i++) {
        if (b[i] != 0xFF || b[i + 1] != 0xC4) continue;
        // stb reads tables while the segment's declared length has bytes left, taking a table
        // header from whatever follows, even past the segment or the file (which reads as 0).
        size_t seg_end = i + 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
        for (size_t p = i + 4; p < seg_end;) {
            size_t codes = 0;
            for (size_t k = 1; k <= 16; k++) codes += p + k < n ? b[p + k] : 0;
            if (codes > 256)
                return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: JPEG Huffman table with %zu codes "
                               "(at most 256; corrupt)", name, p, codes);
            p += 17 + codes;
        }
    }
    return MB_OK;
}

// JPEG: markers from SOI; segments carry a 16-bit length; after SOS comes entropy-coded data in
// which 0xFF is always followed by 0x00 or a restart marker, so the next real marker is found by
// scanning. The image is complete only if the EOI marker (FF D9) is reached. Every DHT segment
// met on the way is validated (check_dht), and every scan's Huffman tables must have been
// defined before it (check_scan_tables).
static int check_jpeg(const char *name, const unsigned char *b, size_t n, char *err, size_t errlen) {
    int rc0 = check_every_dht(name, b, n, err, errlen);
    if (rc0) return rc0;
    size_t off = 2, scan_start = 0;
    unsigned char defined[2][4] = {{0}};
    int progressive = 0;
    for (;;) {
        if (off >= n) break;
        // Bytes that are not a marker are skipped up to the next 0xFF, as stb_image does; so this
        // walk sees every segment the decoder will parse (the DHT check depends on it).
        while (off < n && b[off] != 0xFF) off++;
        while (off < n && b[off] == 0xFF) off++;  // fill bytes
        if (off >= n) break;
        unsigned m = b[off++];
        if (m == 0xD9) return MB_OK;                              // EOI
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;      // no length
        if (n - off < 2) break;
        size_t len = (size_t)b[off] << 8 | b[off + 1];
        if (len < 2) return MB_OK;  // malformed: the decoder gives the reason
        if (len > n - off)
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: JPEG segment 0xFF%02X declares %zu bytes, the file ends at byte %zu "
                           "(cut short)", name, off - 2, m, len, n);
        if (m == 0xC4) {
            int rc = check_dht(name, b, off + 2, off + len, defined, err, errlen);
            if (rc) return rc;
        }
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) progressive = m == 0xC2;
        if (m == 0xDA) {
            int rc = check_scan_tables(name, b, off + 2, off + len, progressive, defined, err, errlen);
            if (rc) return rc;
        }
        off += len;
        if (m != 0xDA) continue;
        scan_start = off;
        for (;;) {  // entropy-coded data up to the next marker
            if (off + 1 >= n) { off = n; break; }
            if (b[off] == 0xFF && b[off + 1] != 0x00 && !(b[off + 1] >= 0xD0 && b[off + 1] <= 0xD7)) break;
            off++;
        }
    }
    if (scan_start)
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s:%zu: JPEG ends inside the scan data that starts at byte %zu, before its "
                       "end-of-image marker (cut short)", name, n, scan_start);
    return mb_fail(err, errlen, MB_ERR_DATA,
                   "%s:%zu: JPEG ends before any image data (cut short)", name, n);
}

// BMP: the uncompressed pixel array (rows padded to 4 bytes) must fit in the file.
static int check_bmp(const char *name, const unsigned char *b, size_t n, char *err, size_t errlen) {
    if (n < 26)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: BMP header is cut short", name, n);
    uint32_t data_off = le32(b + 10), hsz = le32(b + 14);
    uint64_t w, h, bpp, comp = 0;
    if (hsz == 12) {
        w = le16(b + 18);
        h = le16(b + 20);
        bpp = le16(b + 24);
    } else if (hsz >= 40) {
        if (n < 34) return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: BMP header is cut short", name, n);
        int32_t sw = (int32_t)le32(b + 18), sh = (int32_t)le32(b + 22);
        if (sw <= 0 || sh == 0 || sh == INT32_MIN) return MB_OK;  // the decoder refuses these itself
        w = (uint64_t)sw;
        h = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        bpp = le16(b + 28);
        comp = le32(b + 30);
    } else {
        return MB_OK;  // unknown header: the decoder refuses it
    }
    // stb_image 2.27 refuses RLE (1, 2) but decodes any other unknown compression as if it were
    // uncompressed (fuzz_image: tests/fuzz-regressions/image-bmp-unknown-compression.bin), so only
    // the uncompressed kinds pass: 0 (RGB), 3 (BITFIELDS), 6 (ALPHABITFIELDS).
    if (comp == 1 || comp == 2) return MB_OK;  // the decoder refuses RLE itself, with its reason
    if (comp != 0 && comp != 3 && comp != 6)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:30: BMP compression %llu is not supported", name,
                       (unsigned long long)comp);
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE) return MB_OK;  // the size limit reports it
    // The header itself must be there, and pixels cannot start inside it: a pixel offset that
    // points into the header made stb_image read (zero-filled) bytes past the end of a 37-byte
    // file as a 4230 x 1798 image (fuzz_image: tests/fuzz-regressions/image-bmp-offset-in-header.bin).
    if ((uint64_t)14 + hsz > n)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: BMP header of %u bytes is cut short", name, n,
                       14 + hsz);
    uint64_t start = data_off < 14 + (uint64_t)hsz ? 14 + (uint64_t)hsz : data_off;
    uint64_t stride = (w * bpp + 31) / 32 * 4, need = start + stride * h;
    if (need > n)
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s:%zu: BMP pixel data (%llu x %llu, %llu bit) needs bytes %llu..%llu, the file "
                       "ends at byte %zu (cut short)", name, n, (unsigned long long)w,
                       (unsigned long long)h, (unsigned long long)bpp, (unsigned long long)start,
                       (unsigned long long)need, n);
    return MB_OK;
}

int image_decode(const char *name, const unsigned char *b, size_t n, Image *out, char *err,
                 size_t errlen) {
    memset(out, 0, sizeof *out);
    if (n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: empty file (not an image)", name);
    if (n > IMAGE_MAX_FILE_BYTES || n > (size_t)INT32_MAX)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: file of %zu bytes is over the %zu-byte limit",
                       name, n, IMAGE_MAX_FILE_BYTES);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    int rc;
    const char *kind;
    if (n >= 8 && memcmp(b, png_sig, 8) == 0) {
        kind = "PNG";
        rc = check_png(name, b, n, err, errlen);
    } else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        kind = "JPEG";
        rc = check_jpeg(name, b, n, err, errlen);
    } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
        kind = "BMP";
        rc = check_bmp(name, b, n, err, errlen);
    } else {
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: not a PNG, JPEG or BMP image (unknown magic bytes)",
                       name);
    }
    if (rc) return rc;
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(b, (int)n, &w, &h, &c))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: bad %s header: %s", name, kind, stbi_failure_reason());
    if (w <= 0 || h <= 0 || c < 1 || c > 4)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: %s header gives %d x %d pixels, %d channels", name,
                       kind, w, h, c);
    if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (size_t)w * (size_t)h > IMAGE_MAX_PIXELS)
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s: %s of %d x %d pixels is over the size limit (%d per side, %zu pixels); "
                       "not decoded", name, kind, w, h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    int w2 = 0, h2 = 0, c2 = 0;
    unsigned char *pix = stbi_load_from_memory(b, (int)n, &w2, &h2, &c2, 0);
    if (!pix) return mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot decode %s: %s", name, kind, stbi_failure_reason());
    if (w2 != w || h2 != h || c2 != c) {
        stbi_image_free(pix);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: %s decodes to %d x %d x %d, its header said %d x %d x %d",
                       name, kind, w2, h2, c2, w, h, c);
    }
    out->pix = pix;
    out->w = (size_t)w;
    out->h = (size_t)h;
    out->channels = (size_t)c;
    return MB_OK;
}

void image_free(Image *img) {
    if (!img) return;
    stbi_image_free(img->pix);
    img->pix = NULL;
}

// ---------------------------------------------------------------- datasets

static size_t patch_of(const DataSpec *spec) { return spec->frame ? spec->frame : 1; }

static int tokenize(const DataSpec *spec, const char *name, const unsigned char *pix, size_t w,
                    size_t h, size_t c, Sequence *out, char *err, size_t errlen) {
    char e[256];
    int rc = tok_image(out, pix, w, h, c, spec->grayscale, patch_of(spec), spec->max_len, e, sizeof e);
    if (rc) return mb_fail(err, errlen, rc, "%s: %s", name, e);
    return MB_OK;
}

static int fill_set(SeqSet *out, const DataSpec *spec, Sequence *items, size_t n, char **names,
                    size_t n_classes, char *err, size_t errlen) {
    char **cn = calloc(n_classes, sizeof(char *));
    if (!cn) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for class names");
    for (size_t c = 0; c < n_classes; c++)
        if (!(cn[c] = media_strdup(names[c]))) {
            media_free_names(cn, c);
            return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for class names");
        }
    size_t p = patch_of(spec);
    out->items = items;
    out->n = n;
    out->vocab = spec->grayscale ? TOK_PIXEL_VOCAB : 0;
    out->feat_dim = spec->grayscale ? 0 : p * p * 3;
    out->n_classes = n_classes;
    out->class_names = cn;
    return MB_OK;
}

// ---- folder per class

typedef struct {
    const DataSpec *spec;
    char **paths;      // candidate files, canonical order (class, then name)
    int32_t *labels;
    const size_t *pick;
} FolderCtx;

static int load_folder_item(void *vctx, size_t i, Sequence *out, char *err, size_t errlen) {
    FolderCtx *ctx = vctx;
    size_t k = ctx->pick[i];
    const char *path = ctx->paths[k];
    unsigned char *bytes;
    size_t n;
    int rc = media_read_file(path, IMAGE_MAX_FILE_BYTES, &bytes, &n, err, errlen);
    if (rc) return rc;
    Image img;
    rc = image_decode(path, bytes, n, &img, err, errlen);
    mem_free(bytes);
    if (rc) return rc;
    rc = tokenize(ctx->spec, path, img.pix, img.w, img.h, img.channels, out, err, errlen);
    image_free(&img);
    if (rc) return rc;
    out->label = ctx->labels[k];
    return MB_OK;
}

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

// Sorted union of the class folders of base/{train,val,test}.
static int union_classes(const char *base, char ***out, size_t *n_out, char *err, size_t errlen) {
    static const char *splits[] = {"train", "val", "test"};
    char **all = NULL;
    size_t n = 0;
    int rc = MB_OK;
    for (int s = 0; s < 3 && rc == MB_OK; s++) {
        char *dir = join(base, splits[s]);
        if (!dir) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
        if (!media_is_dir(dir)) { free(dir); continue; }
        char **names;
        size_t k;
        rc = media_list_dir(dir, 'd', &names, &k, err, errlen);
        free(dir);
        if (rc) break;
        for (size_t i = 0; i < k && rc == MB_OK; i++) {
            int seen = 0;
            for (size_t j = 0; j < n && !seen; j++) seen = strcmp(all[j], names[i]) == 0;
            if (seen) continue;
            char **na = realloc(all, (n + 1) * sizeof(char *));
            if (!na) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
            all = na;
            all[n] = names[i];
            names[i] = NULL;
            n++;
        }
        media_free_names(names, k);
    }
    if (rc) { media_free_names(all, n); return rc; }
    for (size_t i = 1; i < n; i++)  // insertion sort: a handful of classes
        for (size_t j = i; j > 0 && strcmp(all[j - 1], all[j]) > 0; j--) {
            char *t = all[j]; all[j] = all[j - 1]; all[j - 1] = t;
        }
    *out = all;
    *n_out = n;
    return MB_OK;
}

static int load_folders(const DataSpec *spec, const char *base, Split split, SeqSet *out,
                        char *err, size_t errlen) {
    if (!media_is_dir(base))
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s: not found; expected <split>/<class>/<image files> there (CIFAR-10 as JPEGs "
                       "per class, or the binary release https://www.cs.toronto.edu/~kriz/"
                       "cifar-10-binary.tar.gz with source \"cifar10-bin\")", base);
    const char *sname = split == SPLIT_TRAIN ? "train" : "test";
    char *dir = NULL;
    if (split == SPLIT_VAL) {
        char *v = join(base, "val");
        if (v && media_is_dir(v)) { dir = v; sname = "val"; } else free(v);
    }
    if (!dir) dir = join(base, sname);
    if (!dir) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = MB_OK;
    char **classes = NULL, **split_classes = NULL, **paths = NULL;
    size_t n_classes = 0, n_split = 0, n = 0, cap = 0, n_pick = 0, n_loaded = 0;
    int32_t *labels = NULL;
    size_t *pick = NULL;
    Sequence *items = NULL;
    if (!media_is_dir(dir)) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: split folder not found (expected %s/<class>/<images>)",
                     dir, dir);
        goto done;
    }
    if ((rc = media_list_dir(dir, 'd', &split_classes, &n_split, err, errlen))) goto done;
    if (n_split == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no class folders (expected %s/<class>/<images>)", dir, dir);
        goto done;
    }
    if ((rc = union_classes(base, &classes, &n_classes, err, errlen))) goto done;
    for (size_t c = 0; c < n_classes && rc == MB_OK; c++) {
        char *cdir = join(dir, classes[c]);
        if (!cdir) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
        if (!media_is_dir(cdir)) { free(cdir); continue; }  // class absent from this split
        char **files;
        size_t k;
        rc = media_list_dir(cdir, 'f', &files, &k, err, errlen);
        if (rc) { free(cdir); break; }
        if (n + k > cap) {
            size_t nc = (n + k) * 2;
            char **np = realloc(paths, nc * sizeof(char *));
            int32_t *nl = np ? realloc(labels, nc * sizeof(int32_t)) : NULL;
            if (np) paths = np;
            if (nl) labels = nl;
            if (!np || !nl) {
                media_free_names(files, k);
                free(cdir);
                rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            cap = nc;
        }
        for (size_t i = 0; i < k && rc == MB_OK; i++) {
            if (!(paths[n] = join(cdir, files[i]))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); break; }
            labels[n++] = (int32_t)c;
        }
        media_free_names(files, k);
        free(cdir);
    }
    if (rc) goto done;
    if (n == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: the class folders hold no files", dir);
        goto done;
    }
    pick = malloc(n * sizeof(size_t));
    if (!pick) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    if ((rc = media_pick_balanced(labels, n, n_classes, spec->limit, pick, &n_pick, err, errlen))) goto done;
    items = mem_alloc(n_pick * sizeof(Sequence));
    if (!items) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu samples", n_pick); goto done; }
    FolderCtx ctx = {spec, paths, labels, pick};
    if ((rc = media_load_all(n_pick, load_folder_item, &ctx, items, err, errlen))) goto done;
    n_loaded = n_pick;
    if ((rc = fill_set(out, spec, items, n_pick, classes, n_classes, err, errlen))) goto done;
    items = NULL;  // owned by out
done:
    media_free_items(items, n_loaded);
    media_free_names(paths, n);
    media_free_names(classes, n_classes);
    media_free_names(split_classes, n_split);
    free(labels);
    free(pick);
    free(dir);
    return rc;
}

// ---- CIFAR-10 binary

#define CIFAR_SIDE 32
#define CIFAR_RECORD (1 + 3 * CIFAR_SIDE * CIFAR_SIDE)

static const char *cifar_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                      "dog", "frog", "horse", "ship", "truck"};

typedef struct {
    const DataSpec *spec;
    char paths[5][1024 + 64];
    int fds[5];
    size_t n_files;
    uint8_t *file_of;   // per candidate record
    size_t *rec_of;     // record index inside its file
    const size_t *pick;
} BinCtx;

static int load_bin_item(void *vctx, size_t i, Sequence *out, char *err, size_t errlen) {
    BinCtx *ctx = vctx;
    size_t k = ctx->pick[i], f = ctx->file_of[k];
    off_t off = (off_t)(ctx->rec_of[k] * CIFAR_RECORD);
    unsigned char rec[CIFAR_RECORD], pix[CIFAR_RECORD - 1];
    ssize_t got = pread(ctx->fds[f], rec, CIFAR_RECORD, off);
    if (got != CIFAR_RECORD)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:%lld: cannot read a %d-byte record (%s)", ctx->paths[f],
                       (long long)off, CIFAR_RECORD, got < 0 ? strerror(errno) : "file changed while loading");
    for (size_t p = 0; p < CIFAR_SIDE * CIFAR_SIDE; p++)  // planes R, G, B -> interleaved
        for (size_t c = 0; c < 3; c++) pix[p * 3 + c] = rec[1 + c * CIFAR_SIDE * CIFAR_SIDE + p];
    char name[1024 + 96];
    snprintf(name, sizeof name, "%s:%lld", ctx->paths[f], (long long)off);
    int rc = tokenize(ctx->spec, name, pix, CIFAR_SIDE, CIFAR_SIDE, 3, out, err, errlen);
    if (rc) return rc;
    out->label = rec[0];
    return MB_OK;
}

// Class names: one per non-empty line of batches.meta.txt (trailing spaces trimmed).
static int read_meta(const char *base, char ***names, size_t *n, char *err, size_t errlen) {
    *names = NULL;
    *n = 0;
    char path[1024 + 64];
    snprintf(path, sizeof path, "%s/batches.meta.txt", base);
    FILE *f = fopen(path, "r");
    if (!f) {
        char **v = calloc(10, sizeof(char *));
        if (!v) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
        for (size_t c = 0; c < 10; c++)
            if (!(v[c] = media_strdup(cifar_names[c]))) {
                media_free_names(v, c);
                return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
            }
        *names = v;
        *n = 10;
        return MB_OK;
    }
    char line[256];
    char **v = NULL;
    size_t k = 0, lineno = 0;
    int rc = MB_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            line[--l] = '\0';
        if (!l) continue;
        if (k == 256) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: more than 256 class names", path, lineno); break; }
        char **nv = realloc(v, (k + 1) * sizeof(char *));
        if (!nv || !(nv[k] = media_strdup(line))) {
            if (nv) v = nv;
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
            break;
        }
        v = nv;
        k++;
    }
    fclose(f);
    if (rc == MB_OK && k == 0) rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:1: no class names", path);
    if (rc) { media_free_names(v, k); return rc; }
    *names = v;
    *n = k;
    return MB_OK;
}

static int load_cifar_bin(const DataSpec *spec, const char *base0, Split split, SeqSet *out,
                          char *err, size_t errlen) {
    char base[1024 + 32];
    snprintf(base, sizeof base, "%s", base0);
    char probe[1024 + 32];
    snprintf(probe, sizeof probe, "%s/cifar-10-batches-bin", base0);
    {
        char first[1024 + 64];
        snprintf(first, sizeof first, "%s/%s", base0, split == SPLIT_TRAIN ? "data_batch_1.bin" : "test_batch.bin");
        struct stat st;
        if (stat(first, &st) != 0 && media_is_dir(probe)) snprintf(base, sizeof base, "%s", probe);
    }
    BinCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.spec = spec;
    for (int i = 0; i < 5; i++) ctx.fds[i] = -1;
    if (split == SPLIT_TRAIN) {
        ctx.n_files = 5;
        for (int i = 0; i < 5; i++) snprintf(ctx.paths[i], sizeof ctx.paths[i], "%s/data_batch_%d.bin", base, i + 1);
    } else {
        ctx.n_files = 1;
        snprintf(ctx.paths[0], sizeof ctx.paths[0], "%s/test_batch.bin", base);
    }
    char **names = NULL;
    size_t n_classes = 0, n = 0, n_pick = 0, n_loaded = 0;
    size_t *pick = NULL;
    int32_t *labels = NULL;
    Sequence *items = NULL;
    int rc = MB_OK;
    size_t sizes[5] = {0};
    for (size_t f = 0; f < ctx.n_files; f++) {
        ctx.fds[f] = open(ctx.paths[f], O_RDONLY);
        struct stat st;
        if (ctx.fds[f] < 0 || fstat(ctx.fds[f], &st) != 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA,
                         "%s: cannot open (%s); get the CIFAR-10 binary release from "
                         "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", ctx.paths[f], strerror(errno));
            goto done;
        }
        sizes[f] = (size_t)st.st_size;
        if (sizes[f] == 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:0: empty file (no CIFAR records)", ctx.paths[f]);
            goto done;
        }
        if (sizes[f] % CIFAR_RECORD) {
            rc = mb_fail(err, errlen, MB_ERR_DATA,
                         "%s:%zu: last record has %zu of %d bytes (cut short, or not CIFAR-10 binary)",
                         ctx.paths[f], sizes[f] / CIFAR_RECORD * CIFAR_RECORD, sizes[f] % CIFAR_RECORD,
                         CIFAR_RECORD);
            goto done;
        }
        n += sizes[f] / CIFAR_RECORD;
    }
    if ((rc = read_meta(base, &names, &n_classes, err, errlen))) goto done;
    labels = malloc(n * sizeof(int32_t));
    pick = malloc(n * sizeof(size_t));
    ctx.file_of = malloc(n);
    ctx.rec_of = malloc(n * sizeof(size_t));
    if (!labels || !pick || !ctx.file_of || !ctx.rec_of) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    size_t k = 0;
    for (size_t f = 0; f < ctx.n_files; f++) {
        // Labels only (one byte per record), so the subset is chosen before pixels are read.
        FILE *fp = fdopen(dup(ctx.fds[f]), "rb");
        if (!fp) { rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot read: %s", ctx.paths[f], strerror(errno)); goto done; }
        for (size_t r = 0; r < sizes[f] / CIFAR_RECORD; r++, k++) {
            int c = (fseeko(fp, (off_t)(r * CIFAR_RECORD), SEEK_SET) == 0) ? fgetc(fp) : EOF;
            if (c == EOF) {
                fclose(fp);
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: cannot read the label byte", ctx.paths[f], r * CIFAR_RECORD);
                goto done;
            }
            if ((size_t)c >= n_classes) {
                fclose(fp);
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: label %d is not a class (0-%zu)", ctx.paths[f],
                             r * CIFAR_RECORD, c, n_classes - 1);
                goto done;
            }
            labels[k] = c;
            ctx.file_of[k] = (uint8_t)f;
            ctx.rec_of[k] = r;
        }
        fclose(fp);
    }
    if ((rc = media_pick_balanced(labels, n, n_classes, spec->limit, pick, &n_pick, err, errlen))) goto done;
    ctx.pick = pick;
    items = mem_alloc(n_pick * sizeof(Sequence));
    if (!items) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu samples", n_pick); goto done; }
    if ((rc = media_load_all(n_pick, load_bin_item, &ctx, items, err, errlen))) goto done;
    n_loaded = n_pick;
    if ((rc = fill_set(out, spec, items, n_pick, names, n_classes, err, errlen))) goto done;
    items = NULL;
done:
    media_free_items(items, n_loaded);
    for (size_t f = 0; f < 5; f++)
        if (ctx.fds[f] >= 0) close(ctx.fds[f]);
    media_free_names(names, n_classes);
    free(labels);
    free(pick);
    free(ctx.file_of);
    free(ctx.rec_of);
    return rc;
}

int image_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!spec->grayscale && spec->frame > IMAGE_MAX_SIDE)
        return mb_fail(err, errlen, MB_ERR_USAGE, "image patch side %zu is too large", spec->frame);
    char base[1024];
    int l = snprintf(base, sizeof base, "%s/%s", data_root, spec->path);
    if (l < 0 || (size_t)l >= sizeof base)
        return mb_fail(err, errlen, MB_ERR_USAGE, "data path too long: %s/%s", data_root, spec->path);
    if (strcmp(spec->source, "cifar10-bin") == 0) return load_cifar_bin(spec, base, split, out, err, errlen);
    if (strcmp(spec->source, "cifar10") == 0 || strcmp(spec->source, "images") == 0)
        return load_folders(spec, base, split, out, err, errlen);
    return mb_fail(err, errlen, MB_ERR_USAGE, "image loader: unknown source \"%s\"", spec->source);
}
