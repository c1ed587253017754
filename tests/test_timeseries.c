// UEA/sktime .ts and UCR tables: header handling, dimensions, variable lengths, missing values,
// normalisation, refusals with file and line, and the ucr source's folder resolution.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/status.h"
#include "loaders/dataset.h"
#include "loaders/timeseries.h"

static char err[1024];

static int parse_ts(const char *t, SeqSet *s) {
    err[0] = 0;
    return ts_parse_ts("x.ts", (const unsigned char *)t, strlen(t), 0, s, err, sizeof err);
}

// z-normalised values of x (n), as tok_series computes them, for comparisons
static void znorm(const double *x, size_t n, double *z) {
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += x[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    double sd = sqrt(v / (double)n);
    for (size_t i = 0; i < n; i++) z[i] = (x[i] - m) / sd;
}

Test(ts, univariate_with_string_labels_and_any_case_keys) {
    const char *t =
        "# a comment\n"
        "@ProblemName toy\n@TIMESTAMPS false\n@univariate TRUE\n@equallength true\n@SeriesLength 4\n"
        "@CLASSLABEL true walk run\n@DATA\n"
        "1,2,3,4:run\r\n"
        "4,3,2,1:walk\n\n";
    SeqSet s;
    cr_assert_eq(parse_ts(t, &s), MB_OK, "%s", err);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.feat_dim, 1);
    cr_assert_eq(s.vocab, 0);
    cr_assert_eq(s.n_classes, 2);
    cr_assert_str_eq(s.class_names[0], "walk");
    cr_assert_eq(s.items[0].label, 1);
    cr_assert_eq(s.items[1].label, 0);
    cr_assert_eq(s.items[0].len, 4);
    double x[4] = {1, 2, 3, 4}, z[4];
    znorm(x, 4, z);
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(s.items[0].feats[i], z[i], 1e-5);
        cr_assert_float_eq(s.items[1].feats[i], z[3 - i], 1e-5);
    }
    seqset_free(&s);
}

Test(ts, multivariate_is_time_major_and_lengths_vary) {
    const char *t =
        "@problemName mv\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true 1 2 3\n@data\n"
        "1,2,3:10,10,40:3\n"
        "5,6:0,2:1\n";
    SeqSet s;
    cr_assert_eq(parse_ts(t, &s), MB_OK, "%s", err);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.feat_dim, 2);
    cr_assert_eq(s.items[0].len, 3);
    cr_assert_eq(s.items[1].len, 2);
    cr_assert_eq(s.items[0].label, 2);
    cr_assert_eq(s.items[1].label, 0);
    // series 0, dim 1 = 10,10,40: mean 20, sd sqrt(200)
    double sd = sqrt(200.0);
    cr_assert_float_eq(s.items[0].feats[1], -10 / sd, 1e-5);
    cr_assert_float_eq(s.items[0].feats[5], 20 / sd, 1e-5);
    cr_assert_float_eq(s.items[0].feats[0], -sqrt(1.5), 1e-5);  // dim 0 = 1,2,3
    seqset_free(&s);
    // max_len truncates time steps
    cr_assert_eq(ts_parse_ts("x.ts", (const unsigned char *)t, strlen(t), 2, &s, err, sizeof err), MB_OK);
    cr_assert_eq(s.items[0].len, 2);
    seqset_free(&s);
}

Test(ts, missing_values_are_interpolated) {
    const char *t =
        "@univariate true\n@missing true\n@classLabel true a\n@data\n"
        "1,?,3,?,?,9:a\n"      // -> 1,2,3,5,7,9
        "?,?,2,NaN,4,?:a\n"    // -> 2,2,2,3,4,4
        "?,?,?:a\n";           // nothing observed -> 0
    SeqSet s;
    cr_assert_eq(parse_ts(t, &s), MB_OK, "%s", err);
    double a[6] = {1, 2, 3, 5, 7, 9}, b[6] = {2, 2, 2, 3, 4, 4}, za[6], zb[6];
    znorm(a, 6, za);
    znorm(b, 6, zb);
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(s.items[0].feats[i], za[i], 1e-5, "a[%d]", i);
        cr_assert_float_eq(s.items[1].feats[i], zb[i], 1e-5, "b[%d]", i);
    }
    for (int i = 0; i < 3; i++) cr_assert_eq(s.items[2].feats[i], 0.0f);
    seqset_free(&s);
}

static void expect_bad(const char *t, const char *what) {
    SeqSet s;
    int rc = parse_ts(t, &s);
    cr_assert_eq(rc, MB_ERR_DATA, "accepted:\n%s", t);
    cr_assert(strstr(err, what), "reason '%s' lacks '%s'", err, what);
    cr_assert_null(s.items);
    cr_assert_eq(s.n, 0);
}

#define HDR "@problemName p\n@univariate false\n@dimensions 2\n@classLabel true a b\n@data\n"

Test(ts, bad_files_are_refused_with_line) {
    expect_bad("", "x.ts:0: no @data line (empty file)");
    expect_bad("@classLabel true a\n1,2:a\n", "x.ts:2: expected an '@key value'");
    expect_bad(HDR "1,2:3,4:a\n1,2:b\n", "x.ts:7: 1 dimensions, but the header (@dimensions) says 2");
    expect_bad(HDR "1,2:3,4:5,6:a\n", "x.ts:6: 3 dimensions, but the header");
    expect_bad("@univariate true\n@classLabel true a\n@data\n1,2:3,4:a\n", "x.ts:4: 2 dimensions, but the header (@univariate true) says 1");
    expect_bad(HDR "1,2:3,4:c\n", "x.ts:6: label 'c' is not declared");
    expect_bad(HDR "1,2:3,x4:a\n", "x.ts:6: dimension 2, value 2: 'x4' is not a number");
    expect_bad(HDR "1,2:3,,4:a\n", "x.ts:6: dimension 2, value 2: '' is not a number");
    expect_bad(HDR "1,2:3,4,5:a\n", "x.ts:6: dimension 2 has 3 values but dimension 1 has 2");
    expect_bad(HDR "1,2,3,4\n", "x.ts:6: no ':' before the class label");
    expect_bad(HDR, "no series after @data");
    expect_bad("@classLabel false\n@data\n1:2\n", "x.ts:1: @classLabel false");
    expect_bad("@data\n1:2\n", "x.ts:1: @data before any @classLabel");
    expect_bad("@timeStamps true\n@classLabel true a\n@data\n", "x.ts:1: @timeStamps true is not supported");
    expect_bad("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2,3:a\n1,2:a\n", "x.ts:6: series of length 2, but @seriesLength is 3");
    expect_bad("@dimensions two\n", "x.ts:1: @dimensions needs a count");
    expect_bad("@classLabel true a a\n", "x.ts:1: class 'a' declared twice");
    expect_bad("@classLabel true a\n@data\n1,inf:a\n", "'inf' is not a number");
    expect_bad("@classLabel true a\n@data\n1,1e999:a\n", "'1e999' is not a number");
}

static int parse_ucr(const char *t, char delim, const char *const *cl, size_t ncl, SeqSet *s) {
    err[0] = 0;
    return ts_parse_ucr("u.csv", (const unsigned char *)t, strlen(t), delim, cl, ncl, 0, s, err, sizeof err);
}

Test(ts, ucr_tables_header_padding_and_class_order) {
    const char *t = "target,t1,t2,t3,t4\n10,1,2,3,4\n2,1,2,NaN,NaN\n-1,1,?,3,5\n";
    SeqSet s;
    cr_assert_eq(parse_ucr(t, ',', NULL, 0, &s), MB_OK, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.feat_dim, 1);
    cr_assert_eq(s.n_classes, 3);
    cr_assert_str_eq(s.class_names[0], "-1");  // numeric order: -1 < 2 < 10
    cr_assert_str_eq(s.class_names[1], "2");
    cr_assert_str_eq(s.class_names[2], "10");
    cr_assert_eq(s.items[0].label, 2);
    cr_assert_eq(s.items[1].label, 1);
    cr_assert_eq(s.items[1].len, 2, "trailing NaNs pad a shorter series");
    cr_assert_eq(s.items[2].len, 4);
    double x[4] = {1, 2, 3, 5}, z[4];
    znorm(x, 4, z);
    cr_assert_float_eq(s.items[2].feats[1], z[1], 1e-5, "'?' interpolated");
    seqset_free(&s);
    // headerless TSV, classes given (as the TRAIN file's): "1.0" matches "1"
    static const char *const cl[] = {"1", "2"};
    cr_assert_eq(parse_ucr("1.0\t3\t4\n2\t5\t6\n", '\t', cl, 2, &s), MB_OK, "%s", err);
    cr_assert_eq(s.items[0].label, 0);
    cr_assert_eq(s.items[1].label, 1);
    seqset_free(&s);
    // string labels sort as strings
    cr_assert_eq(parse_ucr("b,1,2\na,3,4\n", ',', NULL, 0, &s), MB_OK, "%s", err);
    cr_assert_str_eq(s.class_names[0], "a");
    cr_assert_eq(s.items[0].label, 1);
    seqset_free(&s);
}

static void expect_bad_ucr(const char *t, const char *what) {
    SeqSet s;
    static const char *const cl[] = {"1", "2"};
    cr_assert_eq(parse_ucr(t, ',', strstr(what, "training") ? cl : NULL, 2, &s), MB_ERR_DATA, "accepted: %s", t);
    cr_assert(strstr(err, what), "reason '%s' lacks '%s'", err, what);
    cr_assert_null(s.items);
}

Test(ts, bad_ucr_tables) {
    expect_bad_ucr("", "u.csv:0: no series (empty file)");
    expect_bad_ucr("label,a,b\n", "no series (only a header)");
    expect_bad_ucr("1,2,3\n2,3\n", "u.csv:2: 2 fields, but the first row has 3 (ragged rows)");
    expect_bad_ucr("1,2,3\n2,3,x\n", "u.csv:2: value 2: 'x' is not a number");
    expect_bad_ucr("1,2,3\n2,NaN,NaN\n", "u.csv:2: a label and no values");
    expect_bad_ucr("1,2,3\n3,4,5\n", "u.csv:2: label '3' is not one of the training classes");
}

static void put(const char *root, const char *rel, const char *s) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    cr_assert(f, "cannot write %s", p);
    fputs(s, f);
    fclose(f);
}

static DataSpec ucr_spec(const char *path) {
    DataSpec ds;
    memset(&ds, 0, sizeof ds);
    strcpy(ds.source, "ucr");
    snprintf(ds.path, sizeof ds.path, "%s", path);
    return ds;
}

Test(ts, ucr_source_resolves_names_and_checks_test_against_train) {
    char d[64] = "/tmp/maelre-ts-XXXXXX";
    cr_assert(mkdtemp(d));
    char p[256];
    snprintf(p, sizeof p, "%s/ucr", d);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/ucr/MyData", d);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/ucr/Other", d);
    mkdir(p, 0777);
    put(d, "ucr/MyData/MyData_TRAIN.ts", "@classLabel true x y\n@data\n1,2,3:x\n3,2,1:y\n2,2,5:y\n");
    put(d, "ucr/MyData/MyData_TEST.ts", "@classLabel true x y\n@data\n1,5,3:y\n");
    put(d, "ucr/Other/Other_TRAIN.tsv", "1\t1\t2\n2\t3\t4\n");
    put(d, "ucr/Other/Other_TEST.tsv", "1\t1\t2\n3\t3\t4\n");
    DataSpec ds = ucr_spec("ucr/mydata");
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 3);
    seqset_free(&s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.items[0].label, 1);
    seqset_free(&s);
    cr_assert_eq(dataset_load(&ds, d, SPLIT_VAL, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(s.n_classes, 2);
    cr_assert_eq(s.feat_dim, 1);
    seqset_free(&s);
    ds.limit = 2;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 2);
    cr_assert_neq(s.items[0].label, s.items[1].label, "limit keeps both classes");
    seqset_free(&s);
    // test declaring other classes than train is refused
    put(d, "ucr/MyData/MyData_TEST.ts", "@classLabel true y x\n@data\n1,5,3:y\n");
    ds.limit = 0;
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "MyData_TEST.ts: its @classLabel list differs"), "%s", err);
    // UCR tables: test labels must be training classes
    ds = ucr_spec("ucr/OTHER");
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "Other_TEST.tsv:2: label '3'"), "%s", err);
    ds = ucr_spec("ucr/nothere");
    cr_assert_eq(dataset_load(&ds, d, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "nothere: no such dataset folder"), "%s", err);
    char **names;
    size_t n;
    cr_assert_eq(ts_list_ucr(d, &names, &n, err, sizeof err), MB_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(names[0], "MyData");
    cr_assert_str_eq(names[1], "Other");
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    char folder[256];
    cr_assert_eq(ts_resolve_ucr(d, "MYDATA", folder, sizeof folder, err, sizeof err), MB_OK);
    cr_assert_str_eq(folder, "MyData");
}
