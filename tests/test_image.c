// Image loader: PNG/BMP/JPEG of every channel count decode to the pixels written, folder-per-class
// and CIFAR-10 binary layouts give the right labels, classes and tokens, the size limit is
// enforced from the header before decoding, and bad or cut-short files are refused with the file
// and offset named (no partial output). Images are written here with stb_image_write.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdint.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/image.h"
#include "loaders/media.h"
#include "media_util.h"

static char err[1024];

// Deterministic test pattern, w x h x c.
static unsigned char *pattern(int w, int h, int c, int seed) {
    unsigned char *p = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h * c; i++) p[i] = (unsigned char)((i * 37 + seed * 101 + (i / c) * 13) & 255);
    return p;
}

static int decode_file(const char *path, Image *img) {
    size_t n;
    unsigned char *b = slurp(path, &n);
    int rc = image_decode(path, b, n, img, err, sizeof err);
    free(b);
    return rc;
}

static const char *write_png(const char *rel, int w, int h, int c, int seed) {
    const char *p = tmp_path(rel);
    unsigned char *px = pattern(w, h, c, seed);
    cr_assert(stbi_write_png(p, w, h, c, px, w * c));
    free(px);
    return p;
}

// A 16 x 8 RGB JPEG of gradient_px(), as stb_image_write's stbi_write_jpg(..., quality 95) writes
// it. Embedded rather than encoded here because that encoder's bit writer shifts a signed int into
// its sign bit, which the SANITIZE=undefined build aborts on (a defect of the writer, not of us).
static const unsigned char gradient_jpg[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02,
    0x01, 0x01, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04,
    0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06,
    0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08,
    0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x05, 0x03, 0x03, 0x05, 0x0a, 0x07, 0x06, 0x07, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00,
    0x08, 0x00, 0x10, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x01,
    0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00,
    0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01,
    0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24,
    0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3,
    0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x11, 0x00,
    0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00,
    0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13,
    0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15,
    0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27,
    0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4,
    0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xf9,
    0xe7, 0xf6, 0x24, 0xfd, 0x9b, 0x7f, 0xe3, 0xd3, 0xfd, 0x03, 0xfb, 0xbf, 0xc3, 0x5f, 0xa8, 0x1f,
    0x9c, 0x9f, 0xaa, 0x7f, 0x04, 0xbc, 0x0b, 0xe1, 0x9f, 0x82, 0xbf, 0x0d, 0x2f, 0x3e, 0x22, 0xf8,
    0xb1, 0xfe, 0xc9, 0x63, 0xa4, 0xe9, 0x93, 0xde, 0x5d, 0xdd, 0x08, 0x1a, 0x43, 0x6f, 0x04, 0x31,
    0x34, 0xb2, 0xcd, 0xb1, 0x55, 0x99, 0xc2, 0x22, 0x96, 0xda, 0xaa, 0xc4, 0x9c, 0x00, 0x39, 0xaf,
    0xc6, 0xbc, 0x6f, 0xf1, 0x2a, 0xa7, 0x87, 0x7c, 0x29, 0x18, 0x60, 0x17, 0x3e, 0x63, 0x8d, 0x97,
    0xd5, 0xf0, 0xb0, 0x52, 0xa6, 0x9a, 0xab, 0x35, 0x65, 0x55, 0xaa, 0x97, 0x4e, 0x14, 0x9b, 0x8b,
    0x77, 0x8c, 0xa2, 0xe7, 0x2a, 0x70, 0x9f, 0x2c, 0x6a, 0x73, 0xaf, 0xa0, 0xe1, 0x8c, 0x83, 0x1b,
    0xc4, 0xd9, 0xdd, 0x0c, 0xbf, 0x0b, 0x0e, 0x69, 0xd4, 0x9c, 0x61, 0x15, 0x74, 0xb9, 0xa5, 0x39,
    0x28, 0xc6, 0x37, 0x6d, 0x24, 0xe4, 0xdd, 0xae, 0xda, 0x4b, 0x57, 0x7d, 0x0f, 0xff, 0xd9,
};

static unsigned char gradient_px(int x, int y, int c) { return (unsigned char)(x * 12 + y * 8 + c * 30); }

TestSuite(image, .init = tmp_setup, .fini = tmp_teardown);

Test(image, png_bmp_jpeg_of_every_channel_count_decode) {
    for (int c = 1; c <= 4; c++) {
        char rel[64];
        snprintf(rel, sizeof rel, "c%d.png", c);
        const char *p = write_png(rel, 7, 5, c, c);
        Image img;
        cr_assert_eq(decode_file(p, &img), MB_OK, "%s", err);
        cr_assert(img.w == 7 && img.h == 5 && img.channels == (size_t)c);
        unsigned char *px = pattern(7, 5, c, c);
        cr_assert_eq(memcmp(img.pix, px, 7 * 5 * (size_t)c), 0, "PNG with %d channels is lossless", c);
        free(px);
        image_free(&img);
    }
    for (int c = 3; c <= 4; c++) {
        const char *p = tmp_path(c == 3 ? "rgb.bmp" : "rgba.bmp");
        unsigned char *px = pattern(9, 4, c, 7);
        cr_assert(stbi_write_bmp(p, 9, 4, c, px));
        Image img;
        cr_assert_eq(decode_file(p, &img), MB_OK, "%s", err);
        cr_assert(img.w == 9 && img.h == 4 && img.channels == (size_t)c);
        cr_assert_eq(memcmp(img.pix, px, 9 * 4 * (size_t)c), 0, "BMP with %d channels is lossless", c);
        free(px);
        image_free(&img);
    }
    // JPEG is lossy: a smooth gradient must come back close.
    const char *j = tmp_path("g.jpg");
    write_bytes(j, gradient_jpg, sizeof gradient_jpg);
    Image img;
    cr_assert_eq(decode_file(j, &img), MB_OK, "%s", err);
    cr_assert(img.w == 16 && img.h == 8 && img.channels == 3);
    double mad = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++)
            for (int c = 0; c < 3; c++) mad += abs((int)img.pix[(y * 16 + x) * 3 + c] - (int)gradient_px(x, y, c));
    cr_assert_lt(mad / (16 * 8 * 3), 4.0, "JPEG mean abs error %g", mad / (16 * 8 * 3));
    image_free(&img);
}

// A PNG that is only a header: signature, IHDR (w x h, 8-bit gray), IEND. Decoding it would fail
// ("no IDAT"), so a size error proves the limit was applied to the header before decoding.
static void write_png_header_only(const char *path, uint32_t w, uint32_t h) {
    unsigned char b[8 + 25 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    unsigned char *q = b + 16;
    q[0] = w >> 24; q[1] = w >> 16; q[2] = w >> 8; q[3] = w;
    q[4] = h >> 24; q[5] = h >> 16; q[6] = h >> 8; q[7] = h;
    q[8] = 8;  // bit depth; colour type 0, compression 0, filter 0, interlace 0; CRC left 0 (stb ignores it)
    memcpy(b + 33, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    write_bytes(path, b, sizeof b);
}

Test(image, size_limit_is_checked_before_decoding) {
    const char *big = tmp_path("big.png");
    write_png_header_only(big, 5000, 5000);  // 25 Mpx > 16 Mpx
    Image img;
    cr_assert_eq(decode_file(big, &img), MB_ERR_DATA);
    cr_assert(strstr(err, big) && strstr(err, "5000 x 5000 pixels is over the size limit"), "%s", err);
    cr_assert_null(img.pix);
    write_png_header_only(big, 20000, 10);  // one side over IMAGE_MAX_SIDE
    cr_assert_eq(decode_file(big, &img), MB_ERR_DATA);
    cr_assert(strstr(err, "20000 x 10 pixels is over the size limit"), "%s", err);
    write_png_header_only(big, 64, 64);  // within limits: now the decoder itself complains
    cr_assert_eq(decode_file(big, &img), MB_ERR_DATA);
    cr_assert(strstr(err, "cannot decode PNG"), "%s", err);
}

Test(image, bad_and_cut_short_files_are_refused_with_file_and_offset) {
    Image img;
    const char *t = tmp_path("t.png");
    write_bytes(t, "just some text\n", 15);
    cr_assert_eq(decode_file(t, &img), MB_ERR_DATA);
    cr_assert(strstr(err, t) && strstr(err, ":0: not a PNG, JPEG or BMP image"), "%s", err);
    const char *e = tmp_path("e.jpg");
    write_bytes(e, "", 0);
    cr_assert_eq(decode_file(e, &img), MB_ERR_DATA);
    cr_assert(strstr(err, e) && strstr(err, ":0: empty file"), "%s", err);

    const char *p = write_png("cut.png", 40, 30, 3, 1);
    size_t full = file_size(p);
    truncate_to(p, full - 20);  // inside IDAT or IEND
    cr_assert_eq(decode_file(p, &img), MB_ERR_DATA);
    cr_assert(strstr(err, p) && strstr(err, "cut short"), "%s", err);
    truncate_to(p, 8);  // signature only
    cr_assert_eq(decode_file(p, &img), MB_ERR_DATA);
    cr_assert(strstr(err, ":8: PNG ends before its IEND chunk"), "%s", err);

    const char *j = tmp_path("cut.jpg");
    size_t jn = sizeof gradient_jpg - 40;  // inside the scan: stb_image alone would pad with zeros
    write_bytes(j, gradient_jpg, jn);
    cr_assert_eq(decode_file(j, &img), MB_ERR_DATA);
    char want[64];
    snprintf(want, sizeof want, ":%zu: JPEG ends inside the scan data", jn);
    cr_assert(strstr(err, j) && strstr(err, want), "%s", err);
    write_bytes(j, gradient_jpg, 300);  // inside the Huffman tables
    cr_assert_eq(decode_file(j, &img), MB_ERR_DATA);
    cr_assert(strstr(err, "JPEG segment 0xFFC4") && strstr(err, "cut short"), "%s", err);

    unsigned char *px = pattern(40, 30, 3, 2);
    const char *b = tmp_path("cut.bmp");
    cr_assert(stbi_write_bmp(b, 40, 30, 3, px));
    size_t bn = file_size(b);
    truncate_to(b, bn - 100);
    cr_assert_eq(decode_file(b, &img), MB_ERR_DATA);
    snprintf(want, sizeof want, "cut.bmp:%zu: BMP pixel data", bn - 100);
    cr_assert(strstr(err, want) && strstr(err, "cut short"), "%s", err);
    free(px);
}

static void regression(const char *path) {
    Image img;
    err[0] = '\0';
    int rc = decode_file(path, &img);
    cr_assert(rc == MB_OK || rc == MB_ERR_DATA, "%s: rc %d", path, rc);
    if (rc == MB_OK) image_free(&img);
    else cr_assert(strstr(err, path), "%s: reason does not name the file: %s", path, err);
}

Test(image, fuzz_regressions_do_not_crash_or_leak) {
    size_t before = mem_current();
    cr_assert_geq(for_each_regression("image-", regression), 3);
    cr_assert_eq(mem_current(), before);
    // The BMP claims 1288 x 8442 pixels in 192 bytes with an unknown compression: refused up front
    // (stb_image would spend seconds "decoding" zeros).
    Image img;
    cr_assert_eq(decode_file("tests/fuzz-regressions/image-bmp-unknown-compression.bin", &img), MB_ERR_DATA);
    cr_assert(strstr(err, ":30: BMP compression 4278190083 is not supported"), "%s", err);
    // A DHT that stb_image reaches by resynchronising after a scan, where a strict marker walk
    // does not look: refused before stb overflows its 257-entry size table.
    cr_assert_eq(decode_file("tests/fuzz-regressions/image-jpeg-dht-resync-over-256-codes.bin", &img),
                 MB_ERR_DATA);
    cr_assert(strstr(err, "JPEG Huffman table with") && strstr(err, "codes (at most 256"), "%s", err);
    // stb reads a further table header past the end of its DHT segment while the declared length
    // has bytes left: that table is checked too.
    cr_assert_eq(decode_file("tests/fuzz-regressions/image-jpeg-dht-table-past-segment.bin", &img), MB_ERR_DATA);
    cr_assert(strstr(err, ":710: JPEG Huffman table with 3570 codes"), "%s", err);
    // 37 bytes whose BMP header (108 bytes) is not even there, pixel offset inside the header:
    // refused, not decoded as a 4230 x 1798 image of zeros.
    cr_assert_eq(decode_file("tests/fuzz-regressions/image-bmp-offset-in-header.bin", &img), MB_ERR_DATA);
    cr_assert(strstr(err, ":37: BMP header of 122 bytes is cut short"), "%s", err);
    // A baseline scan whose AC table 0 no DHT defines: stb_image 2.27 would decode with the
    // uninitialised table and index out of bounds.
    cr_assert_eq(decode_file("tests/fuzz-regressions/image-jpeg-scan-undefined-huffman-table.bin", &img),
                 MB_ERR_DATA);
    cr_assert(strstr(err, ":599: JPEG scan uses AC Huffman table 0, which no table before it defines"), "%s", err);
}

// ---- folder per class

static DataSpec folder_spec(int gray, size_t patch) {
    DataSpec s = {0};
    strcpy(s.source, "images");
    strcpy(s.path, "imgs");
    s.grayscale = gray;
    s.frame = patch;
    return s;
}

// train: cat (3), dog (2), zebra (4) ; test: cat (1), zebra (2) -- no dog in test.
static void make_folders(void) {
    const char *cls[] = {"zebra", "cat", "dog"};
    int ntr[] = {4, 3, 2}, nte[] = {2, 1, 0};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < ntr[c]; i++) {
            char rel[128];
            snprintf(rel, sizeof rel, "imgs/train/%s/%02d.png", cls[c], i);
            write_png(rel, 6, 4, 3, c * 10 + i);
        }
        for (int i = 0; i < nte[c]; i++) {
            char rel[128];
            snprintf(rel, sizeof rel, "imgs/test/%s/%02d.png", cls[c], i);
            write_png(rel, 6, 4, 3, 100 + c * 10 + i);
        }
    }
    write_bytes(tmp_path("imgs/train/.DS_Store"), "x", 1);      // hidden: ignored
    write_bytes(tmp_path("imgs/train/LICENSE"), "x", 1);        // not a class folder: ignored
}

Test(image, folders_give_sorted_classes_labels_and_tokens) {
    make_folders();
    DataSpec spec = folder_spec(1, 0);
    SeqSet tr, te;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.n, 9);
    cr_assert_eq(tr.n_classes, 3);
    cr_assert_str_eq(tr.class_names[0], "cat");
    cr_assert_str_eq(tr.class_names[1], "dog");
    cr_assert_str_eq(tr.class_names[2], "zebra");
    cr_assert_eq(tr.vocab, 256);
    cr_assert_eq(tr.feat_dim, 0);
    int want[9] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
    for (size_t i = 0; i < tr.n; i++) cr_assert_eq(tr.items[i].label, want[i]);
    cr_assert_eq(te.n, 3);
    cr_assert_eq(te.n_classes, 3, "test lacks dog but shares train's class list");
    cr_assert_eq(te.items[0].label, 0);
    cr_assert_eq(te.items[2].label, 2, "zebra is 2 in test as in train");
    // Grayscale: one ITU-R 601 luma id per pixel.
    unsigned char *px = pattern(6, 4, 3, 1 * 10 + 0);  // train/cat/00.png
    cr_assert_eq(tr.items[0].len, 24);
    for (int i = 0; i < 24; i++) {
        int l = (299 * px[i * 3] + 587 * px[i * 3 + 1] + 114 * px[i * 3 + 2] + 500) / 1000;
        cr_assert_eq(seq_id(&tr.items[0], i), l, "pixel %d", i);
    }
    seqset_free(&tr);
    seqset_free(&te);
    // RGB patches of 2x2: 3 x 2 patches of 12 values.
    spec = folder_spec(0, 2);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.feat_dim, 12);
    cr_assert_eq(tr.vocab, 0);
    cr_assert_eq(tr.items[0].len, 6);
    cr_assert_float_eq(tr.items[0].feats[12 + 3 + 1], px[(0 * 6 + 3) * 3 + 1] / 255.0f, 1e-6,
                       "patch 1, pixel (0,1), green");
    seqset_free(&tr);
    free(px);
    // max_len truncates.
    spec = folder_spec(1, 0);
    spec.max_len = 10;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.items[4].len, 10);
    seqset_free(&tr);
}

Test(image, folder_errors_name_the_problem_and_leave_no_output) {
    make_folders();
    DataSpec spec = folder_spec(1, 0);
    SeqSet s;
    size_t before = mem_current();
    // A broken image among good ones (and a later one): the first in order is named, nothing kept.
    write_bytes(tmp_path("imgs/train/dog/00.png"), "not an image", 12);
    write_bytes(tmp_path("imgs/train/zebra/01.png"), "", 0);
    for (int threads = 1; threads <= 3; threads += 2) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
        cr_assert(strstr(err, "imgs/train/dog/00.png:0: not a PNG, JPEG or BMP image"), "%s", err);
        cr_assert_eq(s.n, 0);
        cr_assert_null(s.items);
    }
    cr_assert_eq(mem_current(), before);
    // A split folder without class folders.
    write_bytes(tmp_path("imgs/val/stray.png"), "x", 1);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_VAL, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "imgs/val: no class folders"), "%s", err);
    // Missing dataset and missing split.
    strcpy(spec.path, "nothing");
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "nothing: not found") && strstr(err, "cifar-10-binary"), "%s", err);
    mkdir(tmp_path("nothing"), 0755);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "nothing/test: split folder not found"), "%s", err);
}

Test(image, limit_is_balanced_and_unused_files_are_not_decoded) {
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 10; i++) {
            char rel[128];
            snprintf(rel, sizeof rel, "imgs/train/k%d/%02d.png", c, i);
            write_png(rel, 4, 4, 1, c * 16 + i);  // pixel 0 = (c*16+i)*101 & 255 identifies the file
        }
    DataSpec spec = folder_spec(1, 0);
    spec.limit = 7;
    SeqSet a, b;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n, 7);
    int per[3] = {0};
    int used[30] = {0};
    for (size_t i = 0; i < a.n; i++) {
        per[a.items[i].label]++;
        cr_assert_eq(seq_id(&a.items[i], 0), seq_id(&b.items[i], 0), "same subset twice");
        for (int k = 0; k < 30; k++)
            if (seq_id(&a.items[i], 0) == (((k / 10) * 16 + k % 10) * 101 & 255)) used[k] = 1;
        if (i) cr_assert_leq(a.items[i - 1].label, a.items[i].label, "canonical order kept");
    }
    cr_assert(per[0] == 3 && per[1] == 2 && per[2] == 2, "%d %d %d", per[0], per[1], per[2]);
    seqset_free(&a);
    seqset_free(&b);
    int victim = 0;
    while (used[victim]) victim++;
    char rel[128];
    snprintf(rel, sizeof rel, "imgs/train/k%d/%02d.png", victim / 10, victim % 10);
    write_bytes(tmp_path(rel), "broken", 6);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &a, err, sizeof err), MB_OK, "%s", err);
    seqset_free(&a);
    spec.limit = 0;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &a, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, rel), "%s", err);
}

// ---- CIFAR-10 binary

// Record r of a batch: label (r % 10, or `label`), then R, G, B planes derived from (seed, r).
static void write_cifar(const char *rel, int records, int seed, int bad_label_at) {
    unsigned char *b = malloc((size_t)records * 3073);
    for (int r = 0; r < records; r++) {
        unsigned char *q = b + (size_t)r * 3073;
        q[0] = (unsigned char)(r == bad_label_at ? 10 : (r + seed) % 10);
        for (int i = 0; i < 3072; i++) q[1 + i] = (unsigned char)(i * 7 + r * 3 + seed);
    }
    write_bytes(tmp_path(rel), b, (size_t)records * 3073);
    free(b);
}

static DataSpec bin_spec(int gray, size_t patch) {
    DataSpec s = folder_spec(gray, patch);
    strcpy(s.source, "cifar10-bin");
    strcpy(s.path, "cifar");
    return s;
}

Test(image, cifar_binary_records_planes_labels_and_meta) {
    for (int k = 1; k <= 5; k++) {
        char rel[64];
        snprintf(rel, sizeof rel, "cifar/data_batch_%d.bin", k);
        write_cifar(rel, 4, k, -1);
    }
    write_cifar("cifar/test_batch.bin", 6, 0, -1);
    DataSpec spec = bin_spec(0, 4);
    SeqSet tr, te;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.n, 20);
    cr_assert_eq(tr.n_classes, 10);
    cr_assert_str_eq(tr.class_names[9], "truck", "CIFAR-10's names without batches.meta.txt");
    cr_assert_eq(tr.items[5].label, (1 + 2) % 10, "batch 2, record 1");
    cr_assert_eq(tr.feat_dim, 48);
    cr_assert_eq(tr.items[0].len, 64);
    // Patch 0, pixel (y=1, x=2): R at plane offset 34, G at 1024 + 34, B at 2048 + 34 (batch 1, record 0).
    const float *f = tr.items[0].feats + (1 * 4 + 2) * 3;
    for (int c = 0; c < 3; c++)
        cr_assert_float_eq(f[c], (unsigned char)((c * 1024 + 34) * 7 + 0 + 1) / 255.0f, 1e-6, "channel %d", c);
    seqset_free(&tr);
    // Grayscale, meta names, and the tarball's subfolder.
    char names[] = "alpha\nbeta\ngamma\ndelta\neps\nzeta\neta\ntheta\niota\nkappa\n\n";
    write_bytes(tmp_path("cifar/batches.meta.txt"), names, strlen(names));
    spec = bin_spec(1, 0);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(te.n, 6);
    cr_assert_str_eq(te.class_names[1], "beta");
    cr_assert_eq(te.items[3].len, 1024);
    int p = 5, r = 3;
    int R = (unsigned char)(p * 7 + r * 3), G = (unsigned char)((1024 + p) * 7 + r * 3),
        B = (unsigned char)((2048 + p) * 7 + r * 3);
    cr_assert_eq(seq_id(&te.items[r], p), (299 * R + 587 * G + 114 * B + 500) / 1000);
    seqset_free(&te);
    write_cifar("tarball/cifar-10-batches-bin/test_batch.bin", 2, 0, -1);
    strcpy(spec.path, "tarball");
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(te.n, 2);
    seqset_free(&te);
}

Test(image, cifar_binary_bad_files_are_refused_with_offsets) {
    DataSpec spec = bin_spec(1, 0);
    SeqSet s;
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "cifar/test_batch.bin: cannot open") && strstr(err, "cifar-10-binary.tar.gz"), "%s", err);
    write_cifar("cifar/test_batch.bin", 3, 0, -1);
    truncate_to(tmp_path("cifar/test_batch.bin"), 3 * 3073 - 5);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "test_batch.bin:6146: last record has 3068 of 3073 bytes"), "%s", err);
    write_cifar("cifar/test_batch.bin", 3, 0, 2);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "test_batch.bin:6146: label 10 is not a class"), "%s", err);
    write_bytes(tmp_path("cifar/test_batch.bin"), "", 0);
    cr_assert_eq(image_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "test_batch.bin:0: empty file"), "%s", err);
    cr_assert_eq(s.n, 0);
}

// ---- the real data, when present

static size_t count_files(const char *dir) {
    char **names;
    size_t n;
    cr_assert_eq(media_list_dir(dir, 'f', &names, &n, err, sizeof err), MB_OK, "%s", err);
    media_free_names(names, n);
    return n;
}

Test(image, real_cifar10_counts_match_its_readme) {
    const char *root = SHARED_DATA "/cifar10";
    if (!media_is_dir(root)) cr_skip_test("no %s (real data absent)", root);
    const char *names[] = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    size_t tr = 0, te = 0;
    for (int c = 0; c < 10; c++) {
        char d[512];
        snprintf(d, sizeof d, "%s/train/%s", root, names[c]);
        tr += count_files(d);
        snprintf(d, sizeof d, "%s/test/%s", root, names[c]);
        te += count_files(d);
    }
    cr_assert_eq(tr, 50000);
    cr_assert_eq(te, 10000);
    // A limited load decodes only what it keeps: 10 per class, 32 x 32 grayscale.
    DataSpec spec = folder_spec(1, 0);
    strcpy(spec.source, "cifar10");
    strcpy(spec.path, "cifar10");
    spec.max_len = 1024;
    spec.limit = 100;
    SeqSet s;
    cr_assert_eq(image_dataset_load(&spec, SHARED_DATA, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 100);
    cr_assert_eq(s.n_classes, 10);
    for (int c = 0; c < 10; c++) cr_assert_str_eq(s.class_names[c], names[c]);
    size_t per[10] = {0};
    for (size_t i = 0; i < s.n; i++) {
        per[s.items[i].label]++;
        cr_assert_eq(s.items[i].len, 1024);
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(per[c], 10);
    seqset_free(&s);
}
