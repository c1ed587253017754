// Checkpoints (core/checkpoint.c): an intact file loads with equal config and bit-equal
// parameters (and the same logits); every single byte of a saved file changed (each bit
// pattern 0x01 and 0xff, header, config, counts, parameters, checksum trailer) is refused with
// MB_ERR_DATA naming the file; cut at many lengths or extended: refused; a version 1 file is
// refused with a hint.
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/model.h"
#include "core/status.h"

static char g_path[64];

static void setup(void) {
    snprintf(g_path, sizeof g_path, "/tmp/maelre-ckpt-XXXXXX");
    int fd = mkstemp(g_path);
    cr_assert(fd >= 0);
    close(fd);
}
static void teardown(void) { unlink(g_path); }

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static Model *tiny_model(Method method, uint64_t seed) {
    ModelConfig c;
    model_config_default(&c, method, 6, 0, 12, 3);
    c.dim = 4; c.heads = 2; c.mlp = 6; c.blocks = 2;
    c.linformer_k = 3;
    c.n_stages = 2;
    c.stages[0] = (MaelreStage){1, 0.5f};
    c.stages[1] = (MaelreStage){1, 0.5f};
    c.switch_threshold = 5;
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, &c, seed, err, sizeof err), MB_OK, "%s", err);
    return m;
}

static void expect_refused(const char *what, size_t at) {
    Model *r = (Model *)0x1;
    char err[512] = "";
    int rc = model_load(&r, g_path, err, sizeof err);
    cr_expect_eq(rc, MB_ERR_DATA, "%s at %zu: model_load returned %d (%s)", what, at, rc, err);
    cr_expect_null(r, "%s at %zu: a model came back", what, at);
    cr_expect(strstr(err, g_path), "%s at %zu: the message does not name the file: %s", what, at, err);
    if (rc == MB_OK) model_destroy(r);
}

Test(checkpoint, intact_loads_with_equal_params, .init = setup, .fini = teardown) {
    for (int mth = 0; mth < METHOD_COUNT; mth++) {
        Model *m = tiny_model((Method)mth, 9), *r;
        char err[256];
        cr_assert_eq(model_save(m, g_path, err, sizeof err), MB_OK, "%s", err);
        cr_assert_eq(model_load(&r, g_path, err, sizeof err), MB_OK, "%s", err);
        const ModelConfig *a = model_config(m), *b = model_config(r);
        cr_expect_eq(b->method, a->method);
        cr_expect_eq(b->maelre_coarse, a->maelre_coarse);
        cr_expect_eq(b->dim, a->dim);
        cr_expect_eq(b->switch_threshold, a->switch_threshold);
        cr_assert_eq(model_num_params(r), model_num_params(m));
        cr_expect_eq(memcmp(model_params(r), model_params(m), model_num_params(m) * sizeof(float)), 0,
                     "%s: parameters differ after a round trip", method_name((Method)mth));
        cr_expect_eq(model_num_buffers(r), model_num_buffers(m));
        size_t offs[3] = {0, 7, 12};
        int32_t ids[12] = {1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0}, labels[2] = {0, 1};
        Batch bt = {2, offs, ids, NULL, 0, labels};
        float l1[6], l2[6];
        cr_assert_eq(model_forward(m, &bt, 0, l1, err, sizeof err), MB_OK, "%s", err);
        cr_assert_eq(model_forward(r, &bt, 0, l2, err, sizeof err), MB_OK, "%s", err);
        cr_expect_eq(memcmp(l1, l2, sizeof l1), 0, "%s: logits differ after a round trip", method_name((Method)mth));
        model_destroy(r);
        model_destroy(m);
    }
}

// Every byte, two ways: a single changed bit (crc32 catches every one) and all eight bits.
Test(checkpoint, any_changed_byte_is_refused, .init = setup, .fini = teardown, .timeout = 120) {
    Method ms[2] = {METHOD_LINFORMER, METHOD_MAELRE};   // with and without kind parameters
    for (int t = 0; t < 2; t++) {
        Model *m = tiny_model(ms[t], 3);
        char err[256];
        cr_assert_eq(model_save(m, g_path, err, sizeof err), MB_OK, "%s", err);
        size_t n;
        unsigned char *buf = read_all(g_path, &n);
        cr_assert_gt(n, model_num_params(m) * sizeof(float) + 12);
        // One byte changed in place (pwrite), loaded, put back.
        int fd = open(g_path, O_WRONLY);
        cr_assert(fd >= 0);
        for (size_t i = 0; i < n; i++) {
            unsigned char flips[2] = {0x01, 0xff};
            for (int f = 0; f < 2; f++) {
                unsigned char b = buf[i] ^ flips[f];
                cr_assert_eq(pwrite(fd, &b, 1, (off_t)i), 1);
                expect_refused("changed byte", i);
                cr_assert_eq(pwrite(fd, &buf[i], 1, (off_t)i), 1);
            }
        }
        close(fd);
        // The untouched bytes still load, and the refusal of a changed parameter byte says why.
        Model *r;
        cr_assert_eq(model_load(&r, g_path, err, sizeof err), MB_OK, "%s", err);
        model_destroy(r);
        buf[n - 9] ^= 0x10;   // inside the last parameter
        write_bytes(g_path, buf, n);
        char why[512];
        cr_expect_eq(model_load(&r, g_path, why, sizeof why), MB_ERR_DATA);
        cr_expect(strstr(why, "checksum mismatch") && strstr(why, "hint"), "%s", why);
        free(buf);
        model_destroy(m);
    }
}

Test(checkpoint, cut_or_extended_is_refused, .init = setup, .fini = teardown) {
    Model *m = tiny_model(METHOD_MAELRE, 4);
    char err[256];
    cr_assert_eq(model_save(m, g_path, err, sizeof err), MB_OK, "%s", err);
    size_t n;
    unsigned char *buf = read_all(g_path, &n);
    for (size_t cut = n; cut-- > 0;) {   // every length, shortening the file in place
        cr_assert_eq(truncate(g_path, (off_t)cut), 0);
        expect_refused("cut", cut);
    }
    unsigned char *big = calloc(n + 16, 1);
    memcpy(big, buf, n);
    for (size_t extra = 1; extra <= 16; extra *= 2) {
        write_bytes(g_path, big, n + extra);
        expect_refused("extended", n + extra);
    }
    free(big);
    free(buf);
    model_destroy(m);
}

// A file of the previous format (version 1: no checksum) is refused with a hint.
Test(checkpoint, version_1_refused_with_hint, .init = setup, .fini = teardown) {
    Model *m = tiny_model(METHOD_VANILLA, 4);
    char err[512];
    cr_assert_eq(model_save(m, g_path, err, sizeof err), MB_OK, "%s", err);
    size_t n;
    unsigned char *buf = read_all(g_path, &n);
    uint32_t v1 = 1;
    memcpy(buf + 8, &v1, 4);
    write_bytes(g_path, buf, n);
    Model *r;
    cr_expect_eq(model_load(&r, g_path, err, sizeof err), MB_ERR_DATA);
    cr_expect(strstr(err, "version 1") && strstr(err, "hint") && strstr(err, g_path), "%s", err);
    free(buf);
    model_destroy(m);
}
