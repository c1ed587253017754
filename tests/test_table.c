// Result tables: CSV/JSON round trips (quoting, exact numbers, types), reader errors naming file
// and line, and atomic writes that leave neither a temp file nor a partial file behind.
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/status.h"
#include "results/table.h"

static char dir[256];

static void make_dir(void) {
    snprintf(dir, sizeof dir, "/tmp/maelre-test-table-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void rm_dir(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) cr_log_warn("could not remove %s", dir);
}

TestSuite(table, .init = make_dir, .fini = rm_dir);

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

// Names of the entries in dir other than . and .. joined by '|'.
static void list_dir(char *out, size_t n) {
    out[0] = 0;
    DIR *d = opendir(dir);
    cr_assert(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        strncat(out, e->d_name, n - strlen(out) - 2);
        strcat(out, "|");
    }
    closedir(d);
}

static const double nums[] = {0.1, 1.0 / 3.0, 123456789012345.0, 1e-300, -2.5e17, 9007199254740993.0,
                              0.0, 5e-324, 1.7976931348623157e308, 42.0};
static const char *strs[] = {"plain", "comma,inside", "quote\"inside\"", "new\nline", "crlf\r\nend",
                             "", "  spaced  ", "123", "nan", "\"", "ünïcødé"};

static Table *sample_table(void) {
    const char *cols[] = {"name", "value", "empty"};
    Table *t = table_new(cols, 3);
    cr_assert(t);
    size_t ns = sizeof strs / sizeof strs[0], nn = sizeof nums / sizeof nums[0];
    for (size_t i = 0; i < ns || i < nn; i++) {
        size_t r = table_add_row(t);
        cr_assert_eq(r, i);
        if (i < ns) cr_assert_eq(table_set_str(t, r, "name", strs[i]), MB_OK);
        if (i < nn) cr_assert_eq(table_set_num(t, r, "value", nums[i]), MB_OK);
    }
    return t;
}

static void check_sample(const Table *t, int from_csv) {
    size_t ns = sizeof strs / sizeof strs[0], nn = sizeof nums / sizeof nums[0];
    cr_assert_eq(table_rows(t), ns > nn ? ns : nn);
    for (size_t i = 0; i < table_rows(t); i++) {
        const char *s = table_get_str(t, i, "name");
        if (i < ns) {
            cr_assert(s, "row %zu: name lost", i);
            cr_assert_str_eq(s, strs[i], "row %zu", i);
        } else {
            cr_assert_null(s);
        }
        double v = -1;
        if (i < nn) {
            cr_assert_eq(table_get_num(t, i, "value", &v), MB_OK, "row %zu", i);
            cr_assert(v == nums[i] && signbit(v) == signbit(nums[i]), "row %zu: %.17g != %.17g", i, v,
                      nums[i]);
        } else {
            cr_assert_neq(table_get_num(t, i, "value", &v), MB_OK);
        }
        cr_assert_null(table_get_str(t, i, "empty"));
        cr_assert_neq(table_get_num(t, i, "empty", &v), MB_OK);
    }
    (void)from_csv;
}

Test(table, csv_round_trip_quotes_and_exact_numbers) {
    char p[300], err[256] = "";
    path_in(p, sizeof p, "t.csv");
    Table *t = sample_table();
    cr_assert_eq(table_write_csv(t, p, err, sizeof err), MB_OK, "%s", err);
    table_free(t);
    Table *back = NULL;
    cr_assert_eq(table_read_csv(&back, p, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(table_columns(back), 3);
    cr_assert_str_eq(table_column(back, 0), "name");
    cr_assert_str_eq(table_column(back, 1), "value");
    cr_assert_str_eq(table_column(back, 2), "empty");
    check_sample(back, 1);
    table_free(back);
    // Integers print without a fraction, short decimals stay short.
    const char *text = slurp(p);
    cr_assert(strstr(text, "\n\"\",42,\n") || strstr(text, ",42,\n"), "%s", text);
    cr_assert(strstr(text, ",0.1,"), "%s", text);
    cr_assert(strstr(text, "\"comma,inside\""), "%s", text);
    cr_assert(strstr(text, "\"quote\"\"inside\"\"\""), "%s", text);
    cr_assert(strstr(text, "\"123\""), "a numeric-looking string must be quoted: %s", text);
}

Test(table, json_round_trip_with_json_only_column) {
    char p[300], err[256] = "";
    path_in(p, sizeof p, "t.json");
    Table *t = sample_table();
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddNumberToObject(cfg, "lr", 5e-4);
    cJSON_AddStringToObject(cfg, "method", "maelre");
    cr_assert_eq(table_set_json(t, 1, "config", cfg), MB_OK);
    cr_assert_eq(table_set_json(t, 2, "loss", cJSON_CreateNumber(0.1 + 0.2)), MB_OK);
    cr_assert_eq(table_set_json(t, 0, "name", cJSON_CreateTrue()), MB_ERR_USAGE,
                 "a CSV column cannot take JSON");
    cr_assert_eq(table_set_num(t, 0, "config", 1), MB_ERR_USAGE, "a JSON column cannot take numbers");
    cr_assert_eq(table_write_json(t, p, err, sizeof err), MB_OK, "%s", err);
    table_free(t);
    Table *back = NULL;
    cr_assert_eq(table_read_json(&back, p, err, sizeof err), MB_OK, "%s", err);
    check_sample(back, 0);
    cr_assert_eq(table_columns(back), 5);
    cr_assert(table_column_is_json(back, 3));
    cr_assert(!table_column_is_json(back, 4), "scalar values make a CSV column on reading");
    const cJSON *c = table_get_json(back, 1, "config");
    cr_assert(c);
    cr_assert_float_eq(cJSON_GetObjectItem(c, "lr")->valuedouble, 5e-4, 0);
    cr_assert_null(table_get_json(back, 0, "config"));
    double loss;
    cr_assert_eq(table_get_num(back, 2, "loss", &loss), MB_OK, "a bare JSON number reads back as a number");
    cr_assert(loss == 0.1 + 0.2, "%.17g", loss);
    // JSON-only columns stay out of the CSV.
    path_in(p, sizeof p, "t.csv");
    cr_assert_eq(table_write_csv(back, p, err, sizeof err), MB_OK, "%s", err);
    cr_assert(!strstr(slurp(p), "config"));
    cr_assert(!strncmp(slurp(p), "name,value,empty,loss\n", 22), "%s", slurp(p));
    table_free(back);
}

Test(table, unknown_column_is_appended_and_bad_rows_refused) {
    const char *cols[] = {"a"};
    Table *t = table_new(cols, 1);
    cr_assert_eq(table_set_num(t, 0, "a", 1), MB_ERR_USAGE, "no row 0 yet");
    size_t r = table_add_row(t);
    cr_assert_eq(table_set_num(t, r, "b", 2), MB_OK);
    cr_assert_eq(table_columns(t), 2);
    cr_assert_str_eq(table_column(t, 1), "b");
    cr_assert_null(table_column(t, 2));
    double v;
    cr_assert_eq(table_get_num(t, r, "b", &v), MB_OK);
    cr_assert_eq(v, 2);
    cr_assert_eq(table_set_str(t, r, "b", "now text"), MB_OK);
    cr_assert_neq(table_get_num(t, r, "b", &v), MB_OK);
    cr_assert_str_eq(table_get_str(t, r, "b"), "now text");
    table_free(t);
    const char *dup[] = {"x", "x"};
    cr_assert_null(table_new(dup, 2), "duplicate column names are refused");
}

Test(table, csv_reader_accepts_crlf_and_blank_lines) {
    char p[300], err[256] = "";
    path_in(p, sizeof p, "crlf.csv");
    spit(p, "\xEF\xBB\xBFtask,acc\r\nlra-text,0.5\r\n\r\n\"a,b\",\r\n");
    Table *t = NULL;
    cr_assert_eq(table_read_csv(&t, p, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(table_rows(t), 2);
    cr_assert_str_eq(table_column(t, 0), "task");
    cr_assert_str_eq(table_get_str(t, 1, "task"), "a,b");
    double v;
    cr_assert_eq(table_get_num(t, 0, "acc", &v), MB_OK);
    cr_assert_eq(v, 0.5);
    cr_assert_eq(table_row_line(t, 0), 2);
    cr_assert_eq(table_row_line(t, 1), 4, "a blank line is skipped but counted");
    cr_assert_neq(table_get_num(t, 1, "acc", &v), MB_OK);
    table_free(t);
}

static void expect_csv_error(const char *text, const char *want) {
    char p[300], err[256] = "";
    path_in(p, sizeof p, "bad.csv");
    spit(p, text);
    Table *t = (Table *)0x1;
    cr_assert_eq(table_read_csv(&t, p, err, sizeof err), MB_ERR_DATA, "for %s", want);
    cr_assert_null(t);
    char full[400];
    snprintf(full, sizeof full, "%s:%s", p, want);
    cr_assert(strstr(err, full), "got '%s', want '%s'", err, full);
}

Test(table, csv_reader_errors_name_file_and_line) {
    expect_csv_error("a,b\n1,2\n3\n", "3: 1 field, but the header has 2");
    expect_csv_error("a,b\n1,2\n\"x\ny,2\n5,6\n", "3: quoted field never closed");
    expect_csv_error("a,b\n\"x\"y,2\n", "2: unexpected character after a closing quote");
    expect_csv_error("a,b\n\"two\nlines\",2\n1,2,3\n", "4: 3 fields");
    expect_csv_error("a,b\nx\"y,2\n", "2: '\"' inside an unquoted field");
    expect_csv_error("", "1: empty file");
    expect_csv_error("a,a\n", "1: column 'a' appears twice");
    char err[256] = "";
    Table *t;
    char p[300];
    path_in(p, sizeof p, "missing.csv");
    cr_assert_eq(table_read_csv(&t, p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "missing.csv: cannot open"), "%s", err);
}

Test(table, json_reader_errors) {
    char p[300], err[256] = "";
    path_in(p, sizeof p, "bad.json");
    Table *t = NULL;
    spit(p, "[\n{\"a\": 1},\n{\"a\": 2,,}\n]\n");
    cr_assert_eq(table_read_json(&t, p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "bad.json:3: malformed JSON"), "%s", err);
    spit(p, "{\"a\": 1}");
    cr_assert_eq(table_read_json(&t, p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "expected an array"), "%s", err);
    spit(p, "[{\"a\": 1}, 7]");
    cr_assert_eq(table_read_json(&t, p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "element 1"), "%s", err);
    spit(p, "[]\n[]");
    cr_assert_eq(table_read_json(&t, p, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "bad.json:2: trailing data"), "%s", err);
}

Test(table, atomic_write_replaces_whole_and_leaves_no_temp) {
    char p[300], err[256] = "", names[1024];
    path_in(p, sizeof p, "out.txt");
    cr_assert_eq(write_file_atomic(p, "first", 5, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(write_file_atomic(p, "second!", 7, err, sizeof err), MB_OK, "%s", err);
    cr_assert_str_eq(slurp(p), "second!");
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "out.txt|");
    // A relative path (no folder part) goes beside it in the working directory.
    char cwd[512];
    cr_assert(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(write_file_atomic("rel.txt", "r", 1, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(chdir(cwd), 0);
    list_dir(names, sizeof names);
    cr_assert(strstr(names, "rel.txt|") && strlen(names) == strlen("out.txt|rel.txt|"), "%s", names);
}

Test(table, atomic_write_failures_leave_nothing) {
    char p[300], err[256] = "", names[1024];
    // Missing folder: refused with an I/O error naming the path.
    path_in(p, sizeof p, "no/such/dir/out.csv");
    cr_assert_eq(write_file_atomic(p, "x", 1, err, sizeof err), MB_ERR_IO);
    cr_assert(strstr(err, "no/such/dir/out.csv"), "%s", err);
    // Target is a folder: the temp file is written, the rename fails, the temp must go.
    path_in(p, sizeof p, "adir");
    cr_assert_eq(mkdir(p, 0755), 0);
    cr_assert_eq(write_file_atomic(p, "data", 4, err, sizeof err), MB_ERR_IO);
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "adir|", "left behind: %s", names);
    // The write itself fails halfway (file size limit, in a child so the limit does not leak):
    // the old file must be untouched and no temp left.
    path_in(p, sizeof p, "keep.csv");
    spit(p, "old contents\n");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100, 100};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(10);
        static char big[10000];
        memset(big, 'z', sizeof big);
        char e2[256];
        int rc = write_file_atomic(p, big, sizeof big, e2, sizeof e2);
        _exit(rc == MB_ERR_IO ? 0 : 11);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_str_eq(slurp(p), "old contents\n");
    list_dir(names, sizeof names);
    cr_assert(strstr(names, "keep.csv|") && strstr(names, "adir|") && strlen(names) == 14,
              "left behind: %s", names);
    // Unwritable folder (only meaningful when not root: root ignores permission bits).
    if (geteuid() != 0) {
        path_in(p, sizeof p, "ro");
        cr_assert_eq(mkdir(p, 0555), 0);
        path_in(p, sizeof p, "ro/out.csv");
        cr_assert_eq(write_file_atomic(p, "x", 1, err, sizeof err), MB_ERR_IO);
        path_in(p, sizeof p, "ro");
        DIR *d = opendir(p);
        int entries = 0;
        for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
        closedir(d);
        cr_assert_eq(entries, 0);
    }
}

Test(table, writers_fail_without_partial_output) {
    char p[300], err[256] = "";
    Table *t = sample_table();
    path_in(p, sizeof p, "missing/out.csv");
    cr_assert_eq(table_write_csv(t, p, err, sizeof err), MB_ERR_IO);
    path_in(p, sizeof p, "missing/out.json");
    cr_assert_eq(table_write_json(t, p, err, sizeof err), MB_ERR_IO);
    table_free(t);
    path_in(p, sizeof p, "missing");
    struct stat st;
    cr_assert_neq(stat(p, &st), 0);
}
