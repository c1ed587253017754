// LRA Retrieval data (loaders/aan.c) and the two-tower pipeline on it: files the test writes
// (a good file, float labels, LRA's folder layouts, class-balanced limits), bad input (wrong
// column count, a label that is not 0/1, an empty text, a file cut short mid-row: MB_ERR_DATA
// = exit 3 naming file:line), the missing-data message, the runner's packing of pairs, the
// generated pairs (deterministic, balanced), the CLI, and a learning test: a small pairs model
// learns the generated same-topic relation well above chance within seconds.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/model.h"
#include "core/optim.h"
#include "core/status.h"
#include "core/threads.h"
#include "loaders/aan.h"
#include "loaders/dataset.h"
#include "tasks/run_data.h"
#include "tests/file_util.h"

static char g_root[64];

static void make_root(void) {
    snprintf(g_root, sizeof g_root, "/tmp/mb_aan_XXXXXX");
    cr_assert(mkdtemp(g_root));
}

static void rm_rf(const char *p) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    cr_assert_eq(system(cmd), 0);
}

static void put(const char *sub, const char *split, const char *text) {
    char dir[256], path[320];
    snprintf(dir, sizeof dir, "%s/%s", g_root, sub);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/new_aan_pairs.%s.tsv", dir, split);
    spit(path, text);
}

static DataSpec spec(size_t max_len, size_t limit) {
    DataSpec s = {0};
    strcpy(s.source, "aan");
    strcpy(s.path, "aan");
    s.max_len = max_len;
    s.limit = limit;
    return s;
}

static const char *GOOD =
    "1.0\tid-a\tid-b\tabc\t\"q\" x\n"
    "0\tid-c\tid-d\tb'hello'\two\r\n"
    "\n"
    "0.00\tid-e\tid-f\txyzw\tk\n"
    "1\tid-g\tid-h\tmm\tnnnnn";   // last line without newline: fine

static void put_all(const char *sub, const char *text) {
    put(sub, "train", text);
    put(sub, "eval", text);
    put(sub, "test", text);
}

Test(aan, reads_a_good_file_with_float_labels_and_literal_quotes) {
    make_root();
    put_all("aan", GOOD);
    SeqSet s;
    char err[512];
    DataSpec sp = spec(4, 0);
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 4);
    cr_expect_eq(s.pairs, 1);
    cr_expect_eq(s.vocab, 257);
    cr_expect_eq(s.n_classes, 2);
    int32_t labels[4] = {1, 0, 0, 1};
    const char *t1[4] = {"abc", "b'he", "xyzw", "mm"}, *t2[4] = {"\"q\" ", "wo", "k", "nnnn"};
    for (size_t i = 0; i < 4; i++) {
        const Sequence *q = &s.items[i];
        cr_expect_eq(q->label, labels[i], "row %zu", i);
        size_t l1 = strlen(t1[i]), l2 = strlen(t2[i]);
        cr_expect_eq(q->len, l1 + l2, "row %zu", i);
        cr_expect_eq(q->len2, l2, "row %zu", i);
        cr_expect(q->bytes && !q->ids && !q->feats);
        cr_expect(!memcmp(q->bytes, t1[i], l1) && !memcmp(q->bytes + l1, t2[i], l2), "row %zu bytes", i);
    }
    // packed for the model: two documents per pair, id = byte + 1, one label per pair
    Packer pk = {0};
    size_t idx[2] = {2, 0};
    cr_assert_eq(packer_fill(&pk, &s, idx, 2), MB_OK);
    cr_expect_eq(pk.b.n, 4);
    size_t want_off[5] = {0, 4, 5, 8, 12};
    for (int i = 0; i < 5; i++) cr_expect_eq(pk.b.offsets[i], want_off[i], "offset %d", i);
    cr_expect_eq(pk.b.ids[0], 'x' + 1);
    cr_expect_eq(pk.b.ids[4], 'k' + 1);
    cr_expect_eq(pk.b.ids[5], 'a' + 1);
    cr_expect_eq(pk.b.ids[8], '"' + 1);
    cr_expect(pk.b.labels[0] == 0 && pk.b.labels[1] == 1);
    cr_expect_eq(seq_doc_len(&s, 3), 4);
    packer_free(&pk);
    seqset_free(&s);
    // the eval file is the validation split
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_VAL, &s, err, sizeof err), MB_OK, "%s", err);
    cr_expect_eq(s.n, 4);
    seqset_free(&s);
    rm_rf(g_root);
}

Test(aan, finds_lra_release_layouts) {
    const char *subs[2] = {"lra_release/tsv_data", "lra_release/lra_release/tsv_data"};
    for (int k = 0; k < 2; k++) {
        make_root();
        put_all(subs[k], GOOD);
        SeqSet s;
        char err[512], dir[512];
        DataSpec sp = spec(0, 0);
        cr_expect_eq(aan_find_dir(g_root, "aan", dir, sizeof dir), 1);
        cr_expect(strstr(dir, subs[k]), "%s", dir);
        cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
        cr_expect_eq(s.n, 4);
        cr_expect_eq(s.items[3].len, 7);   // no max_len: whole texts
        seqset_free(&s);
        rm_rf(g_root);
    }
}

static void expect_bad(const char *text, const char *line_tag, const char *what) {
    make_root();
    put_all("aan", text);
    SeqSet s;
    char err[512];
    DataSpec sp = spec(0, 0);
    cr_expect_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA, "accepted: %s", text);
    char want[300];
    snprintf(want, sizeof want, "%s/aan/new_aan_pairs.train.tsv:%s", g_root, line_tag);
    cr_expect(strstr(err, want), "error '%s' does not name %s", err, want);
    cr_expect(strstr(err, what), "error '%s' does not say '%s'", err, what);
    cr_expect_eq(s.n, 0);
    cr_expect_null(s.items);
    // the limited (two-pass) path finds it too
    sp.limit = 2;
    cr_expect_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_expect(strstr(err, want), "limited: %s", err);
    rm_rf(g_root);
}

Test(aan, bad_input_names_file_and_line) {
    expect_bad("1\ta\tb\tx\ty\n0\ta\tb\tx\n", "2:", "4 tab-separated fields");
    expect_bad("1\ta\tb\tx\ty\n0\ta\tb\tx\ty\tz\n", "2:", "6 tab-separated fields");
    expect_bad("1\ta\tb\tx\ty\n2\ta\tb\tx\ty\n", "2:", "label \"2\" is not 0 or 1");
    expect_bad("0.5\ta\tb\tx\ty\n", "1:", "label \"0.5\" is not 0 or 1");
    expect_bad("yes\ta\tb\tx\ty\n", "1:", "is not 0 or 1");
    expect_bad("1\ta\tb\t\ty\n", "1:", "text1 is empty");
    // cut short mid-row: the last line has fewer fields and no newline
    expect_bad("1\ta\tb\tx\ty\n0\ta\tb\tsome te", "2:", "cut short");
}

Test(aan, missing_data_says_where_to_get_it) {
    make_root();
    SeqSet s;
    char err[1024];
    DataSpec sp = spec(0, 0);
    cr_expect_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_ERR_DATA);
    cr_expect(strstr(err, "lra_release.gz"), "%s", err);
    cr_expect(strstr(err, "github.com/google-research/long-range-arena"), "%s", err);
    cr_expect(strstr(err, "/aan/"), "%s", err);
    cr_expect(strstr(err, "aan-synthetic"), "%s", err);
    // train present, eval missing: named
    put("aan", "train", GOOD);
    cr_expect_eq(dataset_load(&sp, g_root, SPLIT_VAL, &s, err, sizeof err), MB_ERR_DATA);
    cr_expect(strstr(err, "new_aan_pairs.eval.tsv: missing"), "%s", err);
    rm_rf(g_root);
}

Test(aan, generated_pairs_are_deterministic_balanced_and_limit_balances) {
    make_root();
    char d1[128], d2[128], err[512];
    snprintf(d1, sizeof d1, "%s/aan", g_root);
    snprintf(d2, sizeof d2, "%s/again", g_root);
    cr_assert_eq(aan_write_synthetic(d1, 60, 10, 12, 30, 50, 7, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(aan_write_synthetic(d2, 60, 10, 12, 30, 50, 7, err, sizeof err), MB_OK, "%s", err);
    const char *sp_[3] = {"train", "eval", "test"};
    for (int k = 0; k < 3; k++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/new_aan_pairs.%s.tsv", d1, sp_[k]);
        snprintf(b, sizeof b, "%s/new_aan_pairs.%s.tsv", d2, sp_[k]);
        char *x = slurp(a), *y = slurp(b);
        cr_assert(x && y);
        cr_expect_str_eq(x, y, "same seed, same bytes (%s)", sp_[k]);
        free(x);
        free(y);
    }
    SeqSet s;
    DataSpec sp = spec(0, 0);
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_expect_eq(s.n, 60);
    size_t ones = 0;
    for (size_t i = 0; i < s.n; i++) {
        ones += s.items[i].label == 1;
        size_t l1 = s.items[i].len - s.items[i].len2;
        cr_expect(l1 >= 30 && l1 <= 50 && s.items[i].len2 >= 30 && s.items[i].len2 <= 50);
    }
    cr_expect_eq(ones, 30);
    seqset_free(&s);
    sp.limit = 9;
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &s, err, sizeof err), MB_OK, "%s", err);
    cr_expect_eq(s.n, 9);
    ones = 0;
    for (size_t i = 0; i < s.n; i++) ones += s.items[i].label == 1;
    cr_expect(ones == 4 || ones == 5, "class-balanced subset: %zu of 9", ones);
    seqset_free(&s);
    cr_expect_eq(aan_write_synthetic(d1, 1, 1, 1, 5, 4, 7, err, sizeof err), MB_ERR_USAGE);
    rm_rf(g_root);
}

// The CLI: generation, then `data check`, then bad input gives exit 3 with file:line.
Test(aan, cli_generates_checks_and_exits_3_on_bad_rows) {
    const char *bin = test_cli_bin();   // $MAELRE_BIN: the sanitizer build tests its own binary
    make_root();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s data aan-synthetic --out %s/aan --train 20 --eval 4 --test 4 "
             "--min-bytes 10 --max-bytes 20 > /dev/null", bin, g_root);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s data check --task lra-retrieval --data-root %s > %s/out.txt", bin, g_root, g_root);
    cr_assert_eq(system(cmd), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/out.txt", g_root);
    char *o = slurp(p);
    cr_expect(o && strstr(o, "train 20 samples"), "%s", o ? o : "");
    free(o);
    put("aan", "test", "1\ta\tb\tx\ty\n3\ta\tb\tx\ty\n");
    snprintf(cmd, sizeof cmd, "%s data check --task lra-retrieval --data-root %s > /dev/null 2> %s/err.txt", bin, g_root, g_root);
    int st = system(cmd);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 3, "exit status %d", st);
    snprintf(p, sizeof p, "%s/err.txt", g_root);
    o = slurp(p);
    cr_expect(o && strstr(o, "new_aan_pairs.test.tsv:2: label \"3\""), "%s", o ? o : "");
    free(o);
    rm_rf(g_root);
}

// Learning: generated same-topic pairs of 40-80 bytes, a one-block vanilla pairs model
// (D = 32) trained for 60 steps of 16 pairs: test accuracy on 200 held-out pairs must reach
// 85% (chance 50%).
Test(aan, small_pairs_model_learns_the_generated_relation, .timeout = 120) {
    threads_set(2);
    make_root();
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/aan", g_root);
    cr_assert_eq(aan_write_synthetic(dir, 800, 100, 200, 40, 80, 3, err, sizeof err), MB_OK, "%s", err);
    SeqSet tr, te;
    DataSpec sp = spec(0, 0);
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(dataset_load(&sp, g_root, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    ModelConfig c;
    model_config_default(&c, METHOD_VANILLA, 257, 0, 80, 2);
    c.pairs = 1;
    c.dim = 32; c.heads = 2; c.mlp = 64; c.blocks = 1;
    Model *m;
    cr_assert_eq(model_create(&m, &c, 1, err, sizeof err), MB_OK, "%s", err);
    enum { STEPS = 60, B = 16 };
    AdamWConfig ac;
    adamw_config_default(&ac, STEPS);
    ac.lr = 5e-3f;
    ac.warmup_steps = 10;
    Optimizer *o;
    cr_assert_eq(optimizer_create(&o, m, &ac, err, sizeof err), MB_OK, "%s", err);
    Sampler sm;
    cr_assert_eq(sampler_init(&sm, tr.n, 1), MB_OK);
    Packer pk = {0};
    size_t idx[B];
    float logits[B * 2], dl[B * 2];
    for (size_t step = 0; step < STEPS; step++) {
        sampler_next(&sm, idx, B);
        cr_assert_eq(packer_fill(&pk, &tr, idx, B), MB_OK);
        cr_assert_eq(model_forward(m, &pk.b, 1, logits, err, sizeof err), MB_OK, "%s", err);
        model_loss(logits, pk.labels, B, 2, dl);
        model_zero_grad(m);
        model_backward(m, &pk.b, dl);
        optimizer_step(o, m);
    }
    size_t correct = 0;
    for (size_t start = 0; start < te.n; start += B) {
        size_t n = te.n - start < B ? te.n - start : B;
        for (size_t i = 0; i < n; i++) idx[i] = start + i;
        cr_assert_eq(packer_fill(&pk, &te, idx, n), MB_OK);
        cr_assert_eq(model_forward(m, &pk.b, 0, logits, err, sizeof err), MB_OK, "%s", err);
        for (size_t i = 0; i < n; i++) correct += (logits[2 * i + 1] > logits[2 * i]) == (pk.labels[i] == 1);
    }
    double acc = (double)correct / (double)te.n;
    cr_expect(acc >= 0.85, "test accuracy %.3f after %d steps (chance 0.5)", acc, STEPS);
    fprintf(stderr, "aan learning: test accuracy %.3f on %zu pairs after %d steps\n", acc, te.n, STEPS);
    packer_free(&pk);
    sampler_free(&sm);
    optimizer_destroy(o);
    model_destroy(m);
    seqset_free(&tr);
    seqset_free(&te);
    rm_rf(g_root);
}
