// The real datasets in ../shared/data (when present): the loaders report the counts its README
// gives. Skipped with a message when the folder is absent (tests run from the repo root).
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "core/status.h"
#include "loaders/dataset.h"

#define ROOT "../shared/data"
static char err[1024];

static int have(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", ROOT, rel);
    struct stat st;
    return stat(p, &st) == 0;
}

static DataSpec spec(const char *source, const char *path, size_t max_len) {
    DataSpec ds;
    memset(&ds, 0, sizeof ds);
    strcpy(ds.source, source);
    strcpy(ds.path, path);
    ds.max_len = max_len;
    return ds;
}

Test(shared_data, imdb_25000_each_balanced) {
    if (!have("imdb/train.tsv.gz")) cr_skip_test("%s/imdb absent: real-data counts not checked", ROOT);
    DataSpec ds = spec("imdb", "imdb", 4096);
    for (int sp = 0; sp < 3; sp += 2) {
        SeqSet s;
        cr_assert_eq(dataset_load(&ds, ROOT, (Split)sp, &s, err, sizeof err), MB_OK, "%s", err);
        cr_assert_eq(s.n, 25000);
        size_t pos = 0, longest = 0, over_971 = 0;
        for (size_t i = 0; i < s.n; i++) {
            pos += (size_t)s.items[i].label;
            if (s.items[i].len > longest) longest = s.items[i].len;
            over_971 += s.items[i].len > 971;
        }
        cr_assert_eq(pos, 12500);
        cr_assert_eq(longest, 4096, "truncated to max_len (the longest review is 13,704 bytes)");
        cr_assert(over_971 > 11000 && over_971 < 14000, "README: median byte length 971 (got %zu above)", over_971);
        seqset_free(&s);
    }
}

typedef struct {
    const char *name;
    size_t train, test, len_min, len_max, dims, classes;
} Ucr;

Test(shared_data, ucr_sizes_match_readme) {
    if (!have("ucr")) cr_skip_test("%s/ucr absent: real-data counts not checked", ROOT);
    static const Ucr want[] = {
        {"ucr/acsf1", 100, 100, 1460, 1460, 1, 10},
        {"ucr/GunPoint", 50, 150, 150, 150, 1, 2},
        {"ucr/basicmotions", 40, 40, 100, 100, 6, 4},
        {"ucr/JapaneseVowels", 270, 370, 7, 29, 12, 9},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        const Ucr *w = &want[k];
        DataSpec ds = spec("ucr", w->name, 0);
        size_t mn = (size_t)-1, mx = 0;
        for (int sp = 0; sp < 3; sp += 2) {
            SeqSet s;
            cr_assert_eq(dataset_load(&ds, ROOT, (Split)sp, &s, err, sizeof err), MB_OK, "%s", err);
            cr_assert_eq(s.n, sp == 0 ? w->train : w->test, "%s split %d: %zu series", w->name, sp, s.n);
            cr_assert_eq(s.feat_dim, w->dims, "%s", w->name);
            cr_assert_eq(s.n_classes, w->classes, "%s", w->name);
            for (size_t i = 0; i < s.n; i++) {
                if (s.items[i].len < mn) mn = s.items[i].len;
                if (s.items[i].len > mx) mx = s.items[i].len;
            }
            if (!strcmp(w->name, "ucr/basicmotions")) cr_assert_str_eq(s.class_names[0], "Standing");
            seqset_free(&s);
        }
        cr_assert_eq(mn, w->len_min, "%s", w->name);
        cr_assert_eq(mx, w->len_max, "%s", w->name);
    }
}
