// `maelre-bench data listops` (generate LRA ListOps) and `maelre-bench data check` (read a task's
// whole dataset and describe it). Argument parsing and printing only; the work is in loaders/.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/commands.h"
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/listops.h"
#include "loaders/pathfinder_gen.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: maelre-bench data listops --out DIR [--seed S] [--train N] [--val N] [--test N]\n"
            "       maelre-bench data pathfinder --out DIR [--size 32|64|128] [--difficulty easy|intermediate|hard]\n"
            "                                    [--count N] [--seed S] [--sheet FILE.png]\n"
            "       maelre-bench data check --task TASK [--data-root DIR] [--limit N]\n"
            "       maelre-bench data aan-synthetic --out DIR [...]   (see data aan-synthetic --help)\n\n"
            "listops  writes DIR/basic_{train,val,test}.tsv with LRA's ListOps grammar (defaults:\n"
            "         seed 0, 96000/2000/2000 trees of 501-1999 tokens) and prints length and label\n"
            "         statistics. Same seed, same files.\n"
            "pathfinder  writes LRA's Pathfinder layout DIR/pathfinder<size>/<curv_baseline|curv_contour_length_9|\n"
            "         curv_contour_length_14>/{imgs/<batch>/sample_<i>.png, metadata/<batch>.npy} (Linsley et al.\n"
            "         2018's generator with LRA's settings; defaults: 32 px, hard, 200000 images, seed 0; %d\n"
            "         per batch). Same seed, same bytes. DIR is the data root the tasks read. --sheet FILE\n"
            "         writes a contact sheet PNG (4 rows of 8 per label) instead of a dataset.\n"
            "check    reads every split of TASK's data and prints counts per split and class and\n"
            "         token-length statistics; exit 0 when it all reads, 3 when some of it is bad.\n"
            "         Tasks: lra-listops, lra-text, lra-image, lra-pathfinder, lra-pathx, lra-retrieval, audio-fsdd, ts-<name> (a folder of\n"
            "         <data root>/ucr, case-insensitive). Data root: --data-root, else $MAELRE_DATA,\n"
            "         else ./data. --limit N loads at most N samples per split (as --quick does).\n",
            PF_PER_BATCH);
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
    } else if (!strcmp(task, "lra-pathfinder") || !strcmp(task, "lra-pathx")) {
        strcpy(ds->source, "pathfinder");
        strcpy(ds->path, task[8] == 'f' ? "pathfinder32/curv_contour_length_14" : "pathfinder128/curv_contour_length_14");
        ds->max_len = task[8] == 'f' ? 1024 : 16384;
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

static void pf_progress(void *ctx, size_t done, size_t total) {
    double *t0 = ctx;
    double el = now() - *t0;
    fprintf(stderr, "\rpathfinder: %zu/%zu images, %.0f s, about %.0f s left   ", done, total, el,
            el / (double)done * (double)(total - done));
    if (done == total) fprintf(stderr, "\n");
}

static int cmd_pathfinder(int argc, char **argv) {
    const char *out = NULL, *sheet = NULL, *diff = "hard";
    size_t size = 32, count = 200000, seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return MB_OK; }
        else if (!strcmp(a, "--out")) ok = v != NULL, out = v;
        else if (!strcmp(a, "--sheet")) ok = v != NULL, sheet = v;
        else if (!strcmp(a, "--difficulty")) ok = v != NULL, diff = v;
        else if (!strcmp(a, "--size")) ok = parse_size(v, &size);
        else if (!strcmp(a, "--count")) ok = parse_size(v, &count);
        else if (!strcmp(a, "--seed")) ok = parse_size(v, &seed);
        else {
            fprintf(stderr, "maelre-bench: data pathfinder: unknown option '%s'\n", a);
            usage(stderr);
            return MB_ERR_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "maelre-bench: data pathfinder: %s needs %s\n", a,
                    !strcmp(a, "--out") || !strcmp(a, "--sheet") ? "a path" : !strcmp(a, "--difficulty") ? "a value" : "a non-negative integer");
            return MB_ERR_USAGE;
        }
        i++;
    }
    PfDifficulty d;
    if (!pf_difficulty_parse(diff, &d)) {
        fprintf(stderr, "maelre-bench: data pathfinder: --difficulty must be easy, intermediate or hard (got '%s')\n", diff);
        return MB_ERR_USAGE;
    }
    if (size != 32 && size != 64 && size != 128) {
        fprintf(stderr, "maelre-bench: data pathfinder: --size must be 32, 64 or 128 (got %zu)\n", size);
        return MB_ERR_USAGE;
    }
    if (count == 0 || count > (size_t)100000000) {
        fprintf(stderr, "maelre-bench: data pathfinder: --count must be 1 to 100000000 (got %zu)\n", count);
        return MB_ERR_USAGE;
    }
    if (!out == !sheet) {
        fprintf(stderr, "maelre-bench: data pathfinder: give --out DIR (a dataset) or --sheet FILE (a contact sheet)\n");
        usage(stderr);
        return MB_ERR_USAGE;
    }
    char err[1024];
    double t0 = now();
    if (sheet) {
        PfParams p;
        pf_params(&p, (int)size, d);
        uint8_t *px;
        unsigned char *png;
        size_t len;
        int w, h, rc = pf_contact_sheet(&p, (uint64_t)seed, 8, 4, size == 32 ? 4 : size == 64 ? 2 : 1, &px, &w, &h,
                                        err, sizeof err);
        if (rc) { fprintf(stderr, "maelre-bench: %s\n", err); return rc; }
        rc = pf_png(px, w, h, &png, &len);
        free(px);
        if (rc) { fprintf(stderr, "maelre-bench: out of memory encoding the sheet\n"); return rc; }
        rc = pf_write_atomic(sheet, png, len, err, sizeof err);
        free(png);
        if (rc) { fprintf(stderr, "maelre-bench: %s\n", err); return rc; }
        printf("pathfinder: wrote %s (%d x %d): rows of label 0 (top), then label 1; %zu px, %s, seed %zu\n", sheet, w,
               h, size, pf_difficulty_name(d), seed);
        return MB_OK;
    }
    PfStats st;
    int rc = pf_generate(out, (int)size, d, count, (uint64_t)seed, isatty(2) ? pf_progress : NULL, &t0, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        return rc;
    }
    double dt = now() - t0;
    printf("pathfinder: wrote %zu images of %zu px (%s, %s) in %zu batches under %s/pathfinder%zu/%s in %.1f s "
           "(%.0f images/s); seed %zu\n", st.n, size, pf_difficulty_name(d), pf_difficulty_dir(d), st.batches, out,
           size, pf_difficulty_dir(d), dt, (double)st.n / dt, seed);
    printf("label 1: %.1f%%; PNG bytes %.1f MB (%.0f per image); target pairs restarted %.1f times per image; "
           "distractor snakes left out %.2f per image\n", 100.0 * (double)st.label1 / (double)st.n,
           (double)st.png_bytes / 1e6, (double)st.png_bytes / (double)st.n, (double)st.restarts / (double)st.n,
           (double)st.distractors_short / (double)st.n);
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
        fprintf(stderr, "maelre-bench: unknown task '%s' (known: lra-listops, lra-text, lra-image, lra-pathfinder, lra-pathx, audio-fsdd, ts-<name>)\n",
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
    if (!strcmp(argv[1], "pathfinder")) return cmd_pathfinder(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "aan-synthetic")) return cmd_data_aan_synthetic(argc - 1, argv + 1);
    fprintf(stderr, "maelre-bench: data: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return MB_ERR_USAGE;
}
