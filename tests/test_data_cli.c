// `maelre-bench data` end to end through the built binary ($MAELRE_BIN, set by `make test`):
// ListOps generation (statistics, determinism), `data check` on good and bad data, exit codes.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[64];
static char out[1 << 16], errtxt[1 << 14];

static char *slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

// Runs the binary with args; stdout and stderr land in out / errtxt. Returns the exit status.
static int run(const char *args) {
    const char *bin = getenv("MAELRE_BIN");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout 2>%s/stderr", bin, args, dir, dir);
    int st = system(cmd);
    char p[128];
    snprintf(p, sizeof p, "%s/stdout", dir);
    slurp(p, out, sizeof out);
    snprintf(p, sizeof p, "%s/stderr", dir);
    slurp(p, errtxt, sizeof errtxt);
    cr_assert(WIFEXITED(st), "'%s' did not exit normally", cmd);
    return WEXITSTATUS(st);
}

static void setup(void) {
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`): CLI not exercised");
    struct stat st;
    if (stat(bin, &st) != 0) cr_skip_test("MAELRE_BIN=%s does not exist", bin);
    strcpy(dir, "/tmp/maelre-cli-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void put(const char *rel, const char *s) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    fputs(s, f);
    fclose(f);
}

Test(data_cli, listops_generates_reports_and_is_deterministic, .init = setup) {
    char a[256], b[1024];
    snprintf(a, sizeof a, "data listops --out %s/root/listops --seed 5 --train 24 --val 3 --test 4", dir);
    cr_assert_eq(run(a), 0, "stderr: %s", errtxt);
    cr_assert(strstr(out, " 24 trees  length"), "%s", out);
    cr_assert(strstr(out, " 4 trees  length"), "%s", out);
    cr_assert(strstr(out, "labels:"), "%s", out);
    snprintf(a, sizeof a, "data listops --out %s/again --seed 5 --train 24 --val 3 --test 4", dir);
    cr_assert_eq(run(a), 0);
    snprintf(b, sizeof b, "cmp -s %s/root/listops/basic_train.tsv %s/again/basic_train.tsv", dir, dir);
    cr_assert_eq(system(b), 0, "same seed gave different files");
    snprintf(a, sizeof a, "data check --task lra-listops --data-root %s/root", dir);
    cr_assert_eq(run(a), 0, "stderr: %s", errtxt);
    cr_assert(strstr(out, "train 24 samples, 10 classes, vocab 18"), "%s", out);
    cr_assert(strstr(out, "val   3 samples"), "%s", out);
    cr_assert(strstr(out, "per class:"), "%s", out);
    // MAELRE_DATA is the fallback data root
    snprintf(a, sizeof a, "data check --task lra-listops");
    char env[256];
    snprintf(env, sizeof env, "%s/root", dir);
    setenv("MAELRE_DATA", env, 1);
    cr_assert_eq(run(a), 0, "stderr: %s", errtxt);
    unsetenv("MAELRE_DATA");
}

Test(data_cli, check_reports_bad_data_with_exit_3, .init = setup) {
    char p[256], a[512];
    snprintf(p, sizeof p, "%s/imdb", dir);
    mkdir(p, 0777);
    put("imdb/train.tsv", "label\ttext\n0\tfine\n1\talso\tfine?\n");
    put("imdb/test.tsv", "label\ttext\n0\tx\n");
    snprintf(a, sizeof a, "data check --task lra-text --data-root %s", dir);
    cr_assert_eq(run(a), 3);
    cr_assert(strstr(errtxt, "maelre-bench: ") && strstr(errtxt, "imdb/train.tsv:3: expected 2 fields"), "%s", errtxt);
    put("imdb/train.tsv", "label\ttext\n0\tfine\n1\tgood\n");
    cr_assert_eq(run(a), 0, "%s", errtxt);
    cr_assert(strstr(out, "train 2 samples, 2 classes, vocab 257"), "%s", out);
    cr_assert(strstr(out, "val   none"), "%s", out);
    cr_assert(strstr(out, "neg:1 pos:1"), "%s", out);
    // a .ts whose series disagrees with its header
    snprintf(p, sizeof p, "%s/ucr", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/ucr/Toy", dir);
    mkdir(p, 0777);
    put("ucr/Toy/Toy_TRAIN.ts", "@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2:b\n");
    put("ucr/Toy/Toy_TEST.ts", "@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n");
    snprintf(a, sizeof a, "data check --task ts-toy --data-root %s", dir);
    cr_assert_eq(run(a), 3);
    cr_assert(strstr(errtxt, "Toy_TRAIN.ts:5: 1 dimensions, but the header (@dimensions) says 2"), "%s", errtxt);
    put("ucr/Toy/Toy_TRAIN.ts", "@dimensions 2\n@classLabel true a b\n@data\n1,2:3,4:a\n1,2,3:3,4,5:b\n");
    cr_assert_eq(run(a), 0, "%s", errtxt);
    cr_assert(strstr(out, "feat_dim 2; tokens min 2 median 2"), "%s", out);
    // missing data says what to do
    snprintf(a, sizeof a, "data check --task lra-listops --data-root %s", dir);
    cr_assert_eq(run(a), 3);
    cr_assert(strstr(errtxt, "data listops --out"), "%s", errtxt);
}

Test(data_cli, usage_errors_exit_2, .init = setup) {
    cr_assert_eq(run("data"), 2);
    cr_assert_eq(run("data frobnicate"), 2);
    cr_assert_eq(run("data listops"), 2);
    cr_assert(strstr(errtxt, "--out DIR is required"), "%s", errtxt);
    cr_assert_eq(run("data listops --out /tmp/x --seed -3"), 2);
    cr_assert_eq(run("data check"), 2);
    cr_assert_eq(run("data check --task no-such-task"), 2);
    cr_assert(strstr(errtxt, "unknown task 'no-such-task'"), "%s", errtxt);
    cr_assert_eq(run("data --help"), 0);
    cr_assert(strstr(out, "data check --task"), "%s", out);
    char a[256];
    snprintf(a, sizeof a, "data listops --out %s/file/sub --train 1 --val 1 --test 1", dir);
    put("file", "not a folder");
    cr_assert_eq(run(a), 4, "an output folder that cannot be made is an I/O error");
}
