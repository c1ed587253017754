// Learning: a small model must actually learn a generated long-range task.
// Each sequence is n filler tokens with two marker tokens at random positions at least n/4
// apart; a marker's id carries a value (one of LEARN_VALUES). Label: do the two markers carry
// the same value? Half the samples are equal. Chance is 50%; a model that ignores either
// marker cannot beat it, and no bag-of-tokens readout can (the label is an XOR of the two
// values), so attention between distant tokens must be learned.
// Training uses a length curriculum (n = 32, 64, ... up to LEARN_N = 512, fresh samples every
// step): content-based attention learned on short sequences carries over to long ones, which
// from scratch at 512 takes far more steps than a unit test can afford. The test set is 400
// held-out sequences of LEARN_N tokens; accuracy must reach >= 95%.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "core/model.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/threads.h"

#ifndef LEARN_N
#define LEARN_N 512
#endif
#ifndef LEARN_START
#define LEARN_START 32
#endif
#ifndef LEARN_STEPS
#define LEARN_STEPS 250
#endif
#define LEARN_VALUES 2
#ifndef LEARN_LR
#define LEARN_LR 1e-2f
#endif
#ifndef LEARN_DIM
#define LEARN_DIM 32
#endif
#ifndef LEARN_HEADS
#define LEARN_HEADS 2
#endif
#ifndef LEARN_BLOCKS
#define LEARN_BLOCKS 1
#endif
#ifndef LEARN_FILLER
#define LEARN_FILLER 16
#endif
#define LEARN_BATCH 16
#define LEARN_TEST 400
#define VOCAB (1 + LEARN_VALUES + LEARN_FILLER)  // 0 unused, 1..V markers, then filler

static void make_sample(uint64_t *rng, int32_t *ids, int32_t *label, size_t n) {
    for (size_t t = 0; t < n; t++) ids[t] = (int32_t)(1 + LEARN_VALUES + rng_below(rng, LEARN_FILLER));
    size_t gap = n / 4;
    size_t p1 = rng_below(rng, n - gap);
    size_t p2 = p1 + gap + rng_below(rng, n - gap - p1);
    int same = (int)rng_below(rng, 2);
    size_t v1 = rng_below(rng, LEARN_VALUES), v2 = v1;
    if (!same) v2 = (v1 + 1 + rng_below(rng, LEARN_VALUES - 1)) % LEARN_VALUES;
#ifdef LEARN_EASY
    v2 = v1;
    same = v1 == 0;
#endif
    ids[p1] = (int32_t)(1 + v1);
    ids[p2] = (int32_t)(1 + v2);
    *label = same;
}

Test(learning, long_range_marker_equality, .timeout = 300) {
    threads_set(2);
    ModelConfig c;
    model_config_default(&c, METHOD_VANILLA, VOCAB, 0, LEARN_N, 2);
    c.dim = LEARN_DIM; c.heads = LEARN_HEADS; c.mlp = 2 * LEARN_DIM; c.blocks = LEARN_BLOCKS;
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, &c, 1, err, sizeof err), MB_OK, "%s", err);
    AdamWConfig ac;
    adamw_config_default(&ac, LEARN_STEPS);
    ac.lr = LEARN_LR;
    ac.weight_decay = 0.0f;
    ac.warmup_steps = 20;
    Optimizer *o;
    cr_assert_eq(optimizer_create(&o, m, &ac, err, sizeof err), MB_OK, "%s", err);

    size_t offs[LEARN_BATCH + 1];
    for (size_t i = 0; i <= LEARN_BATCH; i++) offs[i] = i * LEARN_N;
    int32_t *ids = malloc(LEARN_BATCH * LEARN_N * sizeof(int32_t)), labels[LEARN_BATCH];
    float logits[LEARN_BATCH * 2], dl[LEARN_BATCH * 2];
    uint64_t train_rng = rng_derive(7, 1), test_rng = rng_derive(7, 2);
    Batch b = {LEARN_BATCH, offs, ids, NULL, 0, labels};
    float loss = 0;
    size_t phases = 0;
    for (size_t len = LEARN_START; len < LEARN_N; len *= 2) phases++;
    for (size_t step = 0; step < LEARN_STEPS; step++) {
        // phase k of phases+1 trains on length START * 2^k; the last phase is LEARN_N
        size_t ph = step * (phases + 1) / LEARN_STEPS, len = LEARN_START << ph;
        if (len > LEARN_N) len = LEARN_N;
        for (size_t i = 0; i <= LEARN_BATCH; i++) offs[i] = i * len;
        for (size_t i = 0; i < LEARN_BATCH; i++) make_sample(&train_rng, ids + i * len, &labels[i], len);
        cr_assert_eq(model_forward(m, &b, 1, logits, err, sizeof err), MB_OK, "%s", err);
        loss = model_loss(logits, labels, LEARN_BATCH, 2, dl);
        model_zero_grad(m);
        model_backward(m, &b, dl);
        optimizer_step(o, m);
    }
    size_t correct = 0;
    for (size_t i = 0; i <= LEARN_BATCH; i++) offs[i] = i * LEARN_N;
    for (size_t done = 0; done < LEARN_TEST; done += LEARN_BATCH) {
        for (size_t i = 0; i < LEARN_BATCH; i++) make_sample(&test_rng, ids + i * LEARN_N, &labels[i], LEARN_N);
        cr_assert_eq(model_forward(m, &b, 0, logits, err, sizeof err), MB_OK, "%s", err);
        for (size_t i = 0; i < LEARN_BATCH; i++)
            correct += (logits[2 * i + 1] > logits[2 * i]) == (labels[i] == 1);
    }
    double acc = (double)correct / (double)(LEARN_TEST / LEARN_BATCH * LEARN_BATCH);
    cr_log_info("learning: N=%d (curriculum from %d), %d steps, last train loss %.4f, test accuracy %.3f", LEARN_N, LEARN_START, LEARN_STEPS, loss, acc);
    cr_expect(acc >= 0.95, "test accuracy %.3f < 0.95 (last train loss %.4f)", acc, loss);
    free(ids);
    optimizer_destroy(o);
    model_destroy(m);
}
