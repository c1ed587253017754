// MAELRE's adaptive merge amount (ModelConfig.merge_threshold) in the whole model: a threshold no
// pair reaches merges nothing (the same logits as keep 1), a redundant sample shrinks to the
// keep floor while a varied one of the same length does not (seen in the kinds its blocks ran),
// and the re-planned batch stays batch independent, agrees between the inference and training
// forwards, fits the memory model_bytes_needed plans, and survives a checkpoint. Finite
// differences through it: tests/test_model.c (gradcheck_maelre_adaptive).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/mem.h"
#include "core/model.h"
#include "core/status.h"

#define VOCAB 300
#define LEN 600

// 3 stages of one block, keep 0.3 (the floor when adaptive), softmax once N <= 200.
static void config(ModelConfig *c, Method m, float threshold) {
    model_config_default(c, m, VOCAB, 0, 700, 3);
    c->dim = 16; c->heads = 2; c->mlp = 24; c->blocks = 3;
    c->n_stages = 3;
    for (size_t i = 0; i < 3; i++) c->stages[i] = (MaelreStage){1, 0.3f};
    c->switch_threshold = 200;
    c->merge_threshold = threshold;
}

// Token embeddings 50x larger than position embeddings: a token's keys are then nearly the
// same wherever it stands, so a run of one token is redundant input.
static Model *make(const ModelConfig *c) {
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, c, 9, err, sizeof err), MB_OK, "%s", err);
    for (size_t t = 0; t < model_num_tensors(m); t++) {
        size_t off, cnt;
        if (!strcmp(model_tensor(m, t, &off, &cnt), "tok_emb"))
            for (size_t i = 0; i < cnt; i++) model_params(m)[off + i] *= 50.0f;
    }
    return m;
}

// Sample 0: one token repeated (redundant); sample 1: 300 different tokens in turn (no
// neighbour alike); sample 2: short and varied.
static const size_t LENS[3] = {LEN, LEN, 7};
static Batch batch(int32_t *ids, size_t *offs) {
    offs[0] = 0;
    for (size_t i = 0; i < 3; i++) offs[i + 1] = offs[i] + LENS[i];
    for (size_t t = 0; t < LEN; t++) ids[t] = 5;
    for (size_t t = 0; t < LEN; t++) ids[LEN + t] = (int32_t)((t * 37) % VOCAB);
    for (size_t t = 0; t < 7; t++) ids[2 * LEN + t] = (int32_t)(t + 1);
    return (Batch){3, offs, ids, NULL, 0, NULL};
}

static void forward(Model *m, const Batch *b, int keep, float *logits) {
    char err[256];
    cr_assert_eq(model_forward(m, b, keep, logits, err, sizeof err), MB_OK, "%s", err);
}

Test(adaptive_merge, threshold_one_merges_nothing_like_keep_one) {
    int32_t ids[2 * LEN + 7];
    size_t offs[4];
    Batch b = batch(ids, offs);
    for (int mth = 0; mth < 2; mth++) {
        Method method = mth ? METHOD_MAELRE_EXACT : METHOD_MAELRE;
        ModelConfig ca, ck;
        config(&ca, method, 1.0f);
        config(&ck, method, 0.0f);
        for (size_t i = 0; i < 3; i++) ck.stages[i].keep = 1.0f;
        // sample 0 varied too: no two keys alike, so no similarity reaches 1
        for (size_t t = 0; t < LEN; t++) ids[t] = (int32_t)((t * 41 + 3) % VOCAB);
        Model *ma = make(&ca), *mk = make(&ck);
        for (int keep = 0; keep < 2; keep++) {
            float la[9], lk[9];
            forward(ma, &b, keep, la);
            forward(mk, &b, keep, lk);
            cr_expect_eq(memcmp(la, lk, sizeof la), 0, "%s keep %d: adaptive at 1 differs from keep 1",
                         method_name(method), keep);
        }
        model_destroy(ma);
        model_destroy(mk);
    }
}

// The kinds each sample's blocks ran tell how far it shrank: the redundant 600 go to the floor
// (600 -> 180 -> 54: efficient, softmax, softmax), the varied 600 stay long (efficient three
// times), the 7 tokens are softmax throughout. Fixed keep 0.3 treats both long samples alike.
Test(adaptive_merge, redundant_input_shrinks_varied_input_does_not) {
    int32_t ids[2 * LEN + 7];
    size_t offs[4];
    Batch b = batch(ids, offs);
    ModelConfig c;
    config(&c, METHOD_MAELRE, 0.9f);
    Model *m = make(&c);
    float lg[9];
    for (size_t i = 0; i < 2; i++) {
        size_t o1[2] = {0, LENS[i]};
        Batch one = {1, o1, ids + offs[i], NULL, 0, NULL};
        forward(m, &one, 0, lg);
        AttnUsage u = model_last_usage(m);
        if (i == 0) cr_expect(u.count[ATTN_EFFICIENT] == 1 && u.count[ATTN_SOFTMAX] == 2, "redundant: %zu efficient, %zu softmax",
                              u.count[ATTN_EFFICIENT], u.count[ATTN_SOFTMAX]);
        else cr_expect(u.count[ATTN_EFFICIENT] == 3 && u.count[ATTN_SOFTMAX] == 0, "varied: %zu efficient, %zu softmax",
                       u.count[ATTN_EFFICIENT], u.count[ATTN_SOFTMAX]);
    }
    forward(m, &b, 0, lg);
    AttnUsage all = model_last_usage(m);
    cr_expect(all.count[ATTN_EFFICIENT] == 4 && all.count[ATTN_SOFTMAX] == 5, "batch: %zu efficient, %zu softmax",
              all.count[ATTN_EFFICIENT], all.count[ATTN_SOFTMAX]);
    model_destroy(m);
    config(&c, METHOD_MAELRE, 0.0f);
    m = make(&c);
    forward(m, &b, 0, lg);
    all = model_last_usage(m);
    cr_expect(all.count[ATTN_EFFICIENT] == 2 && all.count[ATTN_SOFTMAX] == 7, "fixed keep: %zu efficient, %zu softmax",
              all.count[ATTN_EFFICIENT], all.count[ATTN_SOFTMAX]);
    model_destroy(m);
}

// Re-planning inside the batch: each sample alone gives its logits in the batch; inference and
// training forwards agree (logits and kinds); the allocator's peak stays within what
// model_bytes_needed plans for the longest sample times the batch.
Test(adaptive_merge, batch_independent_paths_agree_and_memory_fits) {
    int32_t ids[2 * LEN + 7];
    size_t offs[4];
    Batch b = batch(ids, offs);
    for (int mth = 0; mth < 2; mth++) {
        ModelConfig c;
        config(&c, mth ? METHOD_MAELRE_EXACT : METHOD_MAELRE, 0.9f);
        size_t base = mem_current();
        mem_reset_peak();
        Model *m = make(&c);
        float lt[9], li[9];
        forward(m, &b, 1, lt);
        AttnUsage ut = model_last_usage(m);
        forward(m, &b, 0, li);
        AttnUsage ui = model_last_usage(m);
        size_t used = mem_peak() - base;
        cr_expect(used <= 3 * model_bytes_needed(&c, LEN, 1), "%s: %zu bytes used", method_name(c.method), used);
        for (int k = 0; k < 9; k++)
            cr_expect(fabsf(li[k] - lt[k]) <= 1e-6f * (1.0f + fabsf(lt[k])), "%s logit %d: inference %.9g, training %.9g",
                      method_name(c.method), k, li[k], lt[k]);
        cr_expect_eq(memcmp(&ut, &ui, sizeof ut), 0, "%s: kinds differ between the forwards", method_name(c.method));
        for (size_t i = 0; i < 3; i++) {
            size_t o1[2] = {0, LENS[i]};
            Batch one = {1, o1, ids + offs[i], NULL, 0, NULL};
            float lg[3];
            forward(m, &one, 1, lg);
            for (size_t k = 0; k < 3; k++)
                cr_expect(fabsf(lg[k] - lt[i * 3 + k]) <= 1e-6f * (1.0f + fabsf(lg[k])), "%s sample %zu: alone %.9g, in batch %.9g",
                          method_name(c.method), i, lg[k], lt[i * 3 + k]);
        }
        model_destroy(m);
    }
}

Test(adaptive_merge, threshold_checked_and_kept_in_checkpoints) {
    ModelConfig c;
    char err[256];
    config(&c, METHOD_MAELRE, 1.5f);
    cr_assert_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    cr_expect(strstr(err, "merge_threshold"), "%s", err);
    c.merge_threshold = -0.1f;
    cr_assert_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE);
    c.merge_threshold = 0.85f;
    Model *m = make(&c), *back;
    char path[] = "/tmp/maelre-test-adaptive-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(model_save(m, path, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(model_load(&back, path, err, sizeof err), MB_OK, "%s", err);
    cr_expect_eq(model_config(back)->merge_threshold, 0.85f);
    int32_t ids[2 * LEN + 7];
    size_t offs[4];
    Batch b = batch(ids, offs);
    float la[9], lb[9];
    forward(m, &b, 0, la);
    forward(back, &b, 0, lb);
    cr_expect_eq(memcmp(la, lb, sizeof la), 0, "the loaded model merges the same way");
    unlink(path);
    model_destroy(m);
    model_destroy(back);
}
