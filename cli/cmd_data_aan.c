// `maelre-bench data aan-synthetic`: generated stand-ins for LRA Retrieval's pairs
// (loaders/aan.h, aan_write_synthetic), so the two-tower pipeline can be smoke-tested without
// LRA's release. Argument parsing and printing only.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/commands.h"
#include "core/status.h"
#include "loaders/aan.h"

static void usage_aan(FILE *f) {
    fprintf(f,
            "usage: maelre-bench data aan-synthetic --out DIR [--seed S] [--train N] [--eval N] [--test N]\n"
            "                                       [--min-bytes A] [--max-bytes B]\n\n"
            "Writes DIR/new_aan_pairs.{train,eval,test}.tsv in the layout of LRA's Retrieval files\n"
            "(label as 1.0/0.0, id1, id2, text1, text2) with GENERATED pairs, not the ACL Anthology:\n"
            "each document is lowercase words biased to one of 4 topic alphabets, label 1 when both\n"
            "documents share the topic (balanced). Defaults: seed 0, 2000/200/200 pairs, documents of\n"
            "500-4000 bytes. Same seed, same files. Use --out <data root>/aan for --task lra-retrieval.\n");
}

static int parse_num(const char *s, size_t *v) {
    if (!s || !*s || *s == '-') return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno) return 0;
    *v = (size_t)x;
    return 1;
}

int cmd_data_aan_synthetic(int argc, char **argv) {
    const char *out = NULL;
    size_t seed = 0, n[3] = {2000, 200, 200}, lo = 500, hi = 4000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage_aan(stdout); return MB_OK; }
        else if (!strcmp(a, "--out")) ok = v != NULL, out = v;
        else if (!strcmp(a, "--seed")) ok = parse_num(v, &seed);
        else if (!strcmp(a, "--train")) ok = parse_num(v, &n[0]);
        else if (!strcmp(a, "--eval")) ok = parse_num(v, &n[1]);
        else if (!strcmp(a, "--test")) ok = parse_num(v, &n[2]);
        else if (!strcmp(a, "--min-bytes")) ok = parse_num(v, &lo);
        else if (!strcmp(a, "--max-bytes")) ok = parse_num(v, &hi);
        else {
            fprintf(stderr, "maelre-bench: data aan-synthetic: unknown option '%s'\n", a);
            usage_aan(stderr);
            return MB_ERR_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "maelre-bench: data aan-synthetic: %s needs %s\n", a, !strcmp(a, "--out") ? "a folder" : "a non-negative integer");
            return MB_ERR_USAGE;
        }
        i++;
    }
    if (!out) {
        fprintf(stderr, "maelre-bench: data aan-synthetic: --out DIR is required\n");
        usage_aan(stderr);
        return MB_ERR_USAGE;
    }
    if (n[0] == 0 || n[1] == 0 || n[2] == 0 || n[0] + n[1] + n[2] > (size_t)10000000) {
        fprintf(stderr, "maelre-bench: data aan-synthetic: each split needs 1 to 10000000 pairs\n");
        return MB_ERR_USAGE;
    }
    if (lo == 0 || hi < lo || hi > (size_t)1 << 20) {
        fprintf(stderr, "maelre-bench: data aan-synthetic: need 1 <= --min-bytes <= --max-bytes <= 1048576\n");
        return MB_ERR_USAGE;
    }
    char err[1024];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = aan_write_synthetic(out, n[0], n[1], n[2], lo, hi, (uint64_t)seed, err, sizeof err);
    if (rc) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("aan-synthetic: wrote %s/new_aan_pairs.{train,eval,test}.tsv (%zu/%zu/%zu generated pairs, documents "
           "%zu-%zu bytes, seed %zu) in %.2f s\n", out, n[0], n[1], n[2], lo, hi, seed,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return MB_OK;
}
