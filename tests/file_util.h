// File helpers shared by the CLI and runner tests (test_report, test_run_cli, test_runner,
// test_sweep, test_data_parallel): the CLI binary under test, read a whole file, write a text
// file, and write a small two-class TSV text split.
#ifndef MAELRE_TEST_FILE_UTIL_H
#define MAELRE_TEST_FILE_UTIL_H
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/rng.h"

// The CLI binary under test: $MAELRE_BIN (set by `make test`) as an absolute path, so tests may
// chdir; skips the test when it is unset, fails when it is not executable.
static inline const char *test_cli_bin(void) {
    static char abs[1024];
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`)");
    if (bin[0] != '/') {
        char cwd[700];
        cr_assert(getcwd(cwd, sizeof cwd));
        snprintf(abs, sizeof abs, "%s/%s", cwd, bin);
        bin = abs;
    }
    cr_assert_eq(access(bin, X_OK), 0, "MAELRE_BIN=%s is not executable", bin);
    return bin;
}

// The whole file, NUL-terminated, malloc'ed (free it); NULL when it cannot be opened.
static inline char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert(b);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

static inline void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

// A TSV split (header label<TAB>text) of n byte strings 20-60 long: class 0 drawn from "abcd",
// class 1 from "abwx" (so one byte alone does not always decide); the model has to pool.
static inline void write_split(const char *path, size_t n, uint64_t seed) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "label\ttext\n");
    uint64_t r = seed;
    for (size_t i = 0; i < n; i++) {
        int label = (int)(i % 2);
        size_t len = 20 + rng_below(&r, 41);
        const char *alpha = label ? "abwx" : "abcd";
        fprintf(f, "%d\t", label);
        for (size_t k = 0; k < len; k++) fputc(alpha[rng_below(&r, 4)], f);
        fputc('\n', f);
    }
    fclose(f);
}

#endif
