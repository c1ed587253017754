// `maelre-bench data listops` (generate LRA ListOps) and `maelre-bench data check` (read a task's
// whole dataset and describe it). Argument parsing and printing only; the work is in loaders/.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/commands.h"
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/listops.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: maelre-bench data listops --out DIR [--seed S] [--train N] [--val N] [--test N]\n"
            "       maelre-bench data check --task TASK [--data-root DIR] [--limit N]\n"
            "       maelre-bench data aan-synthetic --out DIR [...]   (see data aan-synthetic --help)\n\n"
            "listops  writes DIR/basic_{train,val,test}.tsv with LRA's ListOps grammar (defaults:\n"
            "         seed 0, 96000/2000/2000 trees of 501-1999 tokens) and prints length and label\n"
            "         statistics. Same seed, same files.\n"
            "check    reads every split of TASK's data and prints counts per split and class and\n"
            "         token-length statistics; exit 0 when it all reads, 3 when some of it is bad.\n"
            "         Tasks: lra-listops, lra-text, lra-image, audio-fsdd, ts-<name> (a folder of\n"
            "         <data root>/ucr, case-insensitive). Data root: --data-root, else $MAELRE_DATA,\n"
            "         else ./data. --limit N loads at most N samples per split (as --quick does).\n");
}

// Task name -> what its data is (SPEC §7). The one place to swap for tasks/*.json lookups.
static int task_dataspec(const char *task, DataSpec *ds) {
    memset(ds, 0, sizeof *ds);
    if (!strcmp(task, "lra-listops")) {
        strcpy(ds->source, "listops");
        strcpy(ds->path, "listops");
        ds->max_len = 2000;
    } else if (!strcmp(task, "lra-text")) {
        strcpy(ds->source, "imdb");
        strcpy(ds->path, "imdb");
        ds->max_len = 4096;
    } else if (!strcmp(task, "lra-image")) {
        strcpy(ds->source, "cifar10");
        strcpy(ds->path, "cifar10");
        ds->grayscale = 1;
        ds->frame = 1;
        ds->max_len = 1024;
    } else if (!strcmp(task, "audio-fsdd")) {
        strcpy(ds->source, "fsdd");
        strcpy(ds->path, "fsdd");
        ds->frame = 4;
        ds->sample_rate = 8000;
        ds->max_len = 2000;
    } else if (!strcmp(task, "lra-retrieval")) {
        strcpy(ds->source, "aan");
        strcpy(ds->path, "aan");
        ds->max_len = 4000;   // per document
    } else if (!strncmp(task, "ts-", 3) && task[3] && strlen(task) < sizeof ds->path - 8 && !strchr(task, '/')) {
        strcpy(ds->source, "ucr");
        snprintf(ds->path, sizeof ds->path, "ucr/%s", task + 3);
        ds->max_len = 0;  // the series length
    } else {
        return MB_ERR_USAGE;
    }
    return MB_OK;
}

static int parse_size(const char *s, size_t *v) {
    if (!s || !*s || *s == '-') return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno) return 0;
    *v = (size_t)x;
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmd_listops(int argc, char **argv) {
    const char *out = NULL;
    size_t seed = 0, n[3] = {96000, 2000, 2000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return MB_OK; }
        else if (!strcmp(a, "--out")) ok = v != NULL, out = v;
        else if (!strcmp(a, "--seed")) ok = parse_size(v, &seed);
        else if (!strcmp(a, "--train")) ok = parse_size(v, &n[0]);
        else if (!strcmp(a, "--val")) ok = parse_size(v, &n[1]);
        else if (!strcmp(a, "--test")) ok = parse_size(v, &n[2]);
        else {
            fprintf(stderr, "maelre-bench: data listops: unknown option '%s'\n", a);
            usage(stderr);
            return MB_ERR_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "maelre-bench: data listops: %s needs %s\n", a, !strcmp(a, "--out") ? "a folder" : "a non-negative integer");
            return MB_ERR_USAGE;
        }
        i++;
    }
    if (!out) {
        fprintf(stderr, "maelre-bench: data listops: --out DIR is required\n");
        usage(stderr);
        return MB_ERR_USAGE;
    }
    if (n[0] + n[1] + n[2] > (size_t)100000000) {
        fprintf(stderr, "maelre-bench: data listops: at most 100000000 trees in all\n");
        return MB_ERR_USAGE;
    }
    ListopsStats st;
    char err[1024];
    double t0 = now();
    int rc = listops_generate(out, (uint64_t)seed, n[0], n[1], n[2], &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        return rc;
    }
    printf("listops: wrote %s/basic_{train,val,test}.tsv in %.2f s (seed %zu; %zu trees drawn, %zu duplicates dropped)\n",
           out, now() - t0, seed, st.trees_tried, st.duplicates);
    printf("lengths are tokens without parentheses (LRA's count; kept when %d-%d)\n", LISTOPS_MIN_LEN, LISTOPS_MAX_LEN);
    static const char *const names[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        const ListopsSplitStats *x = &st.split[s];
        printf("%-5s %7zu trees  length min %zu median %zu mean %.1f max %zu\n      labels:", names[s], x->n,
               x->len_min, x->len_median, x->len_mean, x->len_max);
        for (int c = 0; c < 10; c++)
            printf(" %d:%.1f%%", c, x->n ? 100.0 * (double)x->label_count[c] / (double)x->n : 0.0);
        printf("\n");
    }
    return MB_OK;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_check(int argc, char **argv) {
    const char *task = NULL, *root = NULL;
    size_t limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return MB_OK; }
        else if (!strcmp(a, "--task")) ok = v != NULL, task = v;
        else if (!strcmp(a, "--data-root")) ok = v != NULL, root = v;
        else if (!strcmp(a, "--limit")) ok = parse_size(v, &limit);
        else {
            fprintf(stderr, "maelre-bench: data check: unknown option '%s'\n", a);
            usage(stderr);
            return MB_ERR_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "maelre-bench: data check: %s needs a value\n", a);
            return MB_ERR_USAGE;
        }
        i++;
    }
    if (!task) {
        fprintf(stderr, "maelre-bench: data check: --task TASK is required\n");
        usage(stderr);
        return MB_ERR_USAGE;
    }
    if (!root) root = getenv("MAELRE_DATA");
    if (!root || !*root) root = "data";
    DataSpec ds;
    if (task_dataspec(task, &ds)) {
        fprintf(stderr, "maelre-bench: unknown task '%s' (known: lra-listops, lra-text, lra-image, audio-fsdd, ts-<name>)\n",
                task);
        return MB_ERR_USAGE;
    }
    ds.limit = limit;
    printf("task %s: source %s, data %s/%s, max_len %zu%s\n", task, ds.source, root, ds.path, ds.max_len,
           ds.max_len ? "" : " (no limit)");
    static const char *const names[3] = {"train", "val", "test"};
    char err[1024];
    for (int s = 0; s < 3; s++) {
        SeqSet set;
        double t0 = now();
        int rc = dataset_load(&ds, root, (Split)s, &set, err, sizeof err);
        if (rc) {
            fprintf(stderr, "maelre-bench: %s\n", err);
            return rc;
        }
        double dt = now() - t0;
        if (set.n == 0) {
            printf("%-5s none (this dataset has no %s split)\n", names[s], names[s]);
            seqset_free(&set);
            continue;
        }
        size_t *len = malloc(set.n * sizeof *len), *per = calloc(set.n_classes ? set.n_classes : 1, sizeof *per);
        if (!len || !per) {
            free(len);
            free(per);
            seqset_free(&set);
            fprintf(stderr, "maelre-bench: out of memory\n");
            return MB_ERR_NOMEM;
        }
        double sum = 0;
        for (size_t i = 0; i < set.n; i++) {
            len[i] = set.items[i].len;
            sum += (double)len[i];
            if (set.items[i].label >= 0 && (size_t)set.items[i].label < set.n_classes) per[set.items[i].label]++;
        }
        qsort(len, set.n, sizeof *len, cmp_size);
        printf("%-5s %zu samples, %zu classes, %s %zu; tokens min %zu median %zu mean %.1f max %zu (read in %.2f s)\n",
               names[s], set.n, set.n_classes, set.vocab ? "vocab" : "feat_dim", set.vocab ? set.vocab : set.feat_dim,
               len[0], len[(set.n - 1) / 2], sum / (double)set.n, len[set.n - 1], dt);
        printf("      per class:");
        for (size_t c = 0; c < set.n_classes; c++) printf(" %s:%zu", set.class_names[c], per[c]);
        printf("\n");
        free(len);
        free(per);
        seqset_free(&set);
    }
    return MB_OK;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? MB_ERR_USAGE : MB_OK;
    }
    if (!strcmp(argv[1], "listops")) return cmd_listops(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "aan-synthetic")) return cmd_data_aan_synthetic(argc - 1, argv + 1);
    fprintf(stderr, "maelre-bench: data: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return MB_ERR_USAGE;
}
