// results/headline.c: the sentence `report` ends with says which method leads, whether it is
// clearly (> 2 standard errors) above the majority class, and marks methods at chance.
#include <criterion/criterion.h>
#include <string.h>
#include "core/status.h"
#include "results/headline.h"

static const char *const COLS[] = {"task", "method", "seed", "accuracy", "accuracy_stderr", "majority_accuracy"};

static void row(Table *t, const char *task, const char *method, double seed, double acc, double se, double maj) {
    size_t r = table_add_row(t);
    table_set_str(t, r, "task", task);
    table_set_str(t, r, "method", method);
    table_set_num(t, r, "seed", seed);
    table_set_num(t, r, "accuracy", acc);
    table_set_num(t, r, "accuracy_stderr", se);
    table_set_num(t, r, "majority_accuracy", maj);
}

Test(headline, names_the_leader_and_who_is_at_chance) {
    Table *t = table_new(COLS, 6);
    row(t, "lra-listops", "vanilla", 1, 0.103, 0.018, 0.10);
    row(t, "lra-listops", "maelre", 1, 0.2375, 0.021, 0.10);
    char buf[2048], err[256];
    cr_assert_eq(report_headline(t, buf, sizeof buf, err, sizeof err), MB_OK, "%s", err);
    cr_expect(strstr(buf, "lra-listops: maelre 23.8% (s.e. 2.1) is the most accurate, 6.5 standard errors above "
                          "the majority class (10.0%); then vanilla 10.3% (s.e. 1.8) (at chance).\n"), "%s", buf);
    table_free(t);
}

Test(headline, a_leader_within_two_standard_errors_is_not_clearly_above_chance) {
    Table *t = table_new(COLS, 6);
    row(t, "ts-gunpoint", "vanilla", 1, 0.55, 0.04, 0.50);
    row(t, "ts-gunpoint", "maelre", 1, 0.52, 0.04, 0.50);
    row(t, "lra-text", "maelre", 1, 0.70, 0.01, 0.50);
    char buf[2048], err[256];
    cr_assert_eq(report_headline(t, buf, sizeof buf, err, sizeof err), MB_OK, "%s", err);
    cr_expect(strstr(buf, "ts-gunpoint: vanilla 55.0% (s.e. 4.0) is the most accurate, but not clearly above the "
                          "majority class (50.0%)"), "%s", buf);
    cr_expect(strstr(buf, "lra-text: maelre 70.0% (s.e. 1.0) is the most accurate, 20.0 standard errors"), "%s", buf);
    cr_expect(strstr(buf, "then maelre 52.0% (s.e. 4.0) (at chance)."), "%s", buf);
    table_free(t);
}

Test(headline, seeds_are_averaged_and_counted) {
    Table *t = table_new(COLS, 6);
    row(t, "lra-listops", "maelre", 1, 0.30, 0.02, 0.10);
    row(t, "lra-listops", "maelre", 2, 0.34, 0.02, 0.10);
    char buf[2048], err[256];
    cr_assert_eq(report_headline(t, buf, sizeof buf, err, sizeof err), MB_OK, "%s", err);
    cr_expect(strstr(buf, "maelre 32.0% (s.e. 2.0, 2 seeds) is the most accurate"), "%s", buf);
    table_free(t);
}
