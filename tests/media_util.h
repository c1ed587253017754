// Helpers shared by tests/test_audio.c and tests/test_image.c: a scratch folder per test under
// /tmp (removed afterwards), writing/truncating files, and reading the fuzz regressions.
#ifndef MAELRE_TEST_MEDIA_UTIL_H
#define MAELRE_TEST_MEDIA_UTIL_H
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static void tmp_setup(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/maelre-media-XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp));
}

static void tmp_teardown(void) {
    if (g_tmp[0]) nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

// g_tmp/<rel>, creating the parent folders.
static const char *tmp_path(const char *rel) {
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", g_tmp, rel);
    for (char *s = p + strlen(g_tmp) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    return p;
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot write %s", path);
    if (n) cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static size_t file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s missing", path);
    return (size_t)st.st_size;
}

static void truncate_to(const char *path, size_t n) { cr_assert_eq(truncate(path, (off_t)n), 0); }

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    cr_assert_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

// Number of fuzz regression files whose name starts with prefix; calls fn on each.
static size_t for_each_regression(const char *prefix, void (*fn)(const char *path)) {
    DIR *d = opendir("tests/fuzz-regressions");
    cr_assert_not_null(d, "tests must run from the repository root");
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            char p[1024];
            snprintf(p, sizeof p, "tests/fuzz-regressions/%s", e->d_name);
            fn(p);
            k++;
        }
    closedir(d);
    return k;
}

#define SHARED_DATA "../shared/data"

#endif
