// Dropout (SPEC §11, §12; core/dropout.h): finite differences through the whole model in
// training mode with fixed masks (same seed and step -> same masks), no dropout in evaluation,
// mask statistics and scaling, masks independent of the thread count and of how a global batch
// is split, and the config/task checks. PyTorch parity with dropout is in tests/test_parity.c.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/dropout.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/status.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

static void tiny_config(ModelConfig *c, Method m, size_t vocab, size_t feat, float p) {
    model_config_default(c, m, vocab, feat, 40, 3);
    c->dim = 8; c->heads = 2; c->mlp = 12; c->blocks = 2;
    c->linformer_k = 5;
    c->tome_r_frac = 0.3f;
    c->n_stages = 2;
    c->stages[0] = (MaelreStage){1, 0.5f};
    c->stages[1] = (MaelreStage){1, 0.5f};
    c->switch_threshold = 6;  // first stage efficient for long samples, softmax once N <= 6
    c->local_window = 2;
    c->dropout = p;
}

#define NS 4
static const size_t OFFS[NS + 1] = {0, 11, 14, 31, 39};
static int32_t g_ids[39], g_labels[NS] = {0, 2, 1, 2};
static float g_feats[39 * 3];

static Batch make_batch(int continuous) {
    uint64_t s = 11;
    for (size_t t = 0; t < 39; t++) g_ids[t] = (int32_t)((t * 7 + t / 3) % 7);
    gc_fill(g_feats, 39 * 3, &s, 1.0f);
    Batch b = {NS, OFFS, continuous ? NULL : g_ids, continuous ? g_feats : NULL, continuous ? 3 : 0, g_labels};
    return b;
}

static Model *make_model(const ModelConfig *c, uint64_t seed) {
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, c, seed, err, sizeof err), MB_OK, "%s", err);
    return m;
}

static void forward(Model *m, const Batch *b, int keep, float *logits) {
    char err[256];
    cr_assert_eq(model_forward(m, b, keep, logits, err, sizeof err), MB_OK, "%s", err);
}

typedef struct { Model *m; Batch b; } Ctx;
static void fwd_train(void *p, float *out) { Ctx *c = p; forward(c->m, &c->b, 1, out); }

// ---------------------------------------------------------------- finite differences

// Central differences of every parameter tensor in training mode: the step and seed stay fixed,
// so every probe draws the same masks and the function is smooth (piecewise for merging). A row
// that lost most of its elements to dropout has a small LayerNorm variance, so the function
// bends on the scale of the embeddings (~0.02): an element whose error exceeds tol is re-probed
// at eps/4 and eps/16 (gc_check_piecewise; a wrong gradient is wrong at every step).
static void dropout_gradcheck(Method method, int continuous, float eps, double tol) {
    int piecewise = 1;
    ModelConfig c;
    tiny_config(&c, method, continuous ? 0 : 7, continuous ? 3 : 0, 0.3f);
    Model *m = make_model(&c, 7);
    static const size_t gidx[NS] = {7, 3, 12, 0};   // positions in a larger global batch
    model_set_dropout_step(m, 99, 5, gidx);
    Ctx ctx = {m, make_batch(continuous)};
    float logits[NS * 3], R[NS * 3], plain[NS * 3];
    uint64_t s = 3;
    gc_fill(R, NS * 3, &s, 1.0f);
    forward(m, &ctx.b, 0, plain);
    fwd_train(&ctx, logits);
    double diff = 0;
    for (size_t i = 0; i < NS * 3; i++) diff = fmax(diff, fabs((double)logits[i] - plain[i]));
    cr_assert(diff > 1e-3, "%s: p = 0.3 changed no logit (max diff %g)", method_name(method), diff);
    model_zero_grad(m);
    model_backward(m, &ctx.b, R);
    size_t np = model_num_params(m);
    float *g = malloc(np * sizeof(float));
    memcpy(g, model_grads(m), np * sizeof(float));
    for (size_t t = 0; t < model_num_tensors(m); t++) {
        size_t off, cnt;
        const char *name = model_tensor(m, t, &off, &cnt);
        size_t at, retried;
        double e = gc_check_tensor(fwd_train, &ctx, model_params(m) + off, cnt, g + off, logits, R, NS * 3, eps, 1e-4f,
                                   piecewise, tol, &at, &retried);
        cr_expect(e < tol, "%s: tensor %s FD error %g at %zu (analytic %g)", method_name(method), name, e, at, g[off + at]);
        cr_expect(retried * 4 <= cnt + 4, "%s: tensor %s needed smaller steps for %zu of %zu", method_name(method), name, retried, cnt);
    }
    free(g);
    model_destroy(m);
}

Test(dropout, gradcheck_vanilla_tokens) { dropout_gradcheck(METHOD_VANILLA, 0, 1e-2f, 5e-2); }
Test(dropout, gradcheck_vanilla_patches) { dropout_gradcheck(METHOD_VANILLA, 1, 1e-2f, 5e-2); }
Test(dropout, gradcheck_linformer) { dropout_gradcheck(METHOD_LINFORMER, 0, 1e-2f, 5e-2); }
Test(dropout, gradcheck_tome) { dropout_gradcheck(METHOD_TOME, 0, 2e-3f, 5e-2); }
Test(dropout, gradcheck_maelre) { dropout_gradcheck(METHOD_MAELRE, 1, 2e-3f, 5e-2); }

// ---------------------------------------------------------------- evaluation never drops

Test(dropout, off_in_evaluation_and_same_masks_for_same_step) {
    for (int mth = 0; mth < METHOD_COUNT; mth++) {
        ModelConfig c0, cp;
        tiny_config(&c0, (Method)mth, 7, 0, 0.0f);
        tiny_config(&cp, (Method)mth, 7, 0, 0.5f);
        Model *m0 = make_model(&c0, 5), *mp = make_model(&cp, 5);
        cr_assert_eq(model_num_params(m0), model_num_params(mp));
        cr_assert(!memcmp(model_params(m0), model_params(mp), model_num_params(m0) * sizeof(float)),
                  "dropout must not change the initialisation");
        Batch b = make_batch(0);
        float e0[NS * 3], ep[NS * 3], t0[NS * 3], t1[NS * 3], t2[NS * 3], t3[NS * 3];
        model_set_dropout_step(mp, 1, 1, NULL);
        forward(m0, &b, 0, e0);
        forward(mp, &b, 0, ep);
        cr_expect(!memcmp(e0, ep, sizeof e0), "%s: evaluation logits differ from the p = 0 model", method_name((Method)mth));
        forward(m0, &b, 1, t0);   // p = 0 in training mode: the evaluation logits (to rounding)
        for (size_t i = 0; i < NS * 3; i++)
            cr_expect(fabsf(e0[i] - t0[i]) <= 1e-5f * (1 + fabsf(e0[i])), "%s: p = 0 training logit %zu %g, evaluation %g",
                      method_name((Method)mth), i, t0[i], e0[i]);
        forward(mp, &b, 1, t1);
        forward(mp, &b, 1, t2);
        cr_expect(!memcmp(t1, t2, sizeof t1), "%s: same seed and step gave different masks", method_name((Method)mth));
        model_set_dropout_step(mp, 1, 2, NULL);
        forward(mp, &b, 1, t3);
        double d01 = 0, d13 = 0;
        for (size_t i = 0; i < NS * 3; i++) { d01 = fmax(d01, fabs(t1[i] - t0[i])); d13 = fmax(d13, fabs(t1[i] - t3[i])); }
        cr_expect(d01 > 1e-3 && d13 > 1e-3, "%s: masks had no effect (%g) or did not change with the step (%g)",
                  method_name((Method)mth), d01, d13);
        forward(mp, &b, 0, ep);   // and evaluation after training forwards still does not drop
        cr_expect(!memcmp(e0, ep, sizeof e0), "%s: evaluation after training forwards dropped", method_name((Method)mth));
        model_destroy(m0);
        model_destroy(mp);
    }
}

// ---------------------------------------------------------------- mask statistics

Test(dropout, kept_fraction_and_inverted_scaling) {
    const float ps[] = {0.1f, 0.3f, 0.5f};
    size_t rows = 1000, W = 200, cnt = rows * W;
    float *x = malloc(cnt * sizeof(float)), *y = malloc(cnt * sizeof(float)), *y2 = malloc(cnt * sizeof(float));
    for (size_t e = 0; e < cnt; e++) x[e] = 1.0f + (float)(e % 7);
    size_t o[3] = {0, 400, rows};   // two samples
    for (size_t k = 0; k < 3; k++) {
        float p = ps[k];
        DropKey dk = {42, 3, NULL, p};
        dropout_apply(y, x, o, 2, W, &dk, 1, DROP_GELU);
        size_t kept = 0;
        double sum = 0, sumx = 0;
        for (size_t e = 0; e < cnt; e++) {
            sum += y[e];
            sumx += x[e];
            if (y[e] != 0.0f) {
                kept++;
                cr_assert_eq(y[e], x[e] * (1.0f / (1.0f - p)), "kept value not scaled by 1/(1-p)");
            }
        }
        double frac = (double)kept / (double)cnt, sd = sqrt(p * (1 - p) / (double)cnt);
        cr_expect(fabs(frac - (1 - p)) < 5 * sd, "p %g: kept fraction %g, expected %g +- %g", p, frac, 1 - p, 5 * sd);
        cr_expect(fabs(sum / sumx - 1) < 0.01, "p %g: mean not preserved (%g)", p, sum / sumx);
        // other layer, site, step, seed or sample index: other masks (agreement ~ p^2 + (1-p)^2)
        DropKey alt[4] = {{42, 4, NULL, p}, {43, 3, NULL, p}, {42, 3, NULL, p}, {42, 3, NULL, p}};
        uint32_t lay[4] = {1, 1, 2, 1}, site[4] = {DROP_GELU, DROP_GELU, DROP_GELU, DROP_ATTN};
        for (int a = 0; a < 4; a++) {
            dropout_apply(y2, x, o, 2, W, &alt[a], lay[a], site[a]);
            size_t same = 0;
            for (size_t e = 0; e < cnt; e++) same += (y[e] != 0) == (y2[e] != 0);
            double agree = (double)same / (double)cnt, want = p * p + (1 - p) * (1 - p);
            cr_expect(fabs(agree - want) < 0.01, "p %g variant %d: masks agree on %g, independent would be %g", p, a, agree, want);
        }
        // p = 0 is the identity
        DropKey zero = {42, 3, NULL, 0.0f};
        dropout_apply(y2, x, o, 2, W, &zero, 1, DROP_GELU);
        cr_expect(!memcmp(x, y2, cnt * sizeof(float)), "p = 0 must copy");
    }
    free(x); free(y); free(y2);
}

// The hash is a fixed function: pin a few values so an accidental change (which would break the
// PyTorch fixture's masks and resumed runs) is caught here with a clear message.
Test(dropout, hash_is_pinned) {
    cr_assert_eq(dropout_mix(0), 0ull);
    // splitmix64 seeded with 0: first output 0xe220a8397b1dcdaf (the published reference value)
    cr_assert_eq(dropout_mix(0x9e3779b97f4a7c15ull), 0xe220a8397b1dcdafull);
    cr_assert_eq(dropout_threshold(0.0f), 0u);
    cr_assert_eq(dropout_threshold(0.5f), 32768u);
    cr_assert_eq(dropout_threshold(0.1f), 6553u);
    // dropout_keep (one element) and dropout_apply (groups of 4) draw the same bits
    float x[10], y[10];
    for (int e = 0; e < 10; e++) x[e] = 1.0f;
    size_t o[2] = {0, 5};
    DropKey k = {1, 2, NULL, 0.5f};
    dropout_apply(y, x, o, 1, 2, &k, 3, DROP_ATTN);
    uint64_t base = dropout_base(1, 2, 0, 3, DROP_ATTN);
    for (int e = 0; e < 10; e++) cr_assert_eq(y[e] != 0.0f, dropout_keep(base, (uint64_t)e, 32768u), "element %d", e);
}

// ---------------------------------------------------------------- threads and batch splits

Test(dropout, masks_independent_of_thread_count) {
    size_t rows = 600, W = 128, cnt = rows * W;   // above the parallel threshold
    float *x = malloc(cnt * sizeof(float)), *y1 = malloc(cnt * sizeof(float)), *y2 = malloc(cnt * sizeof(float));
    for (size_t e = 0; e < cnt; e++) x[e] = (float)(e % 13) - 6.0f;
    size_t o[2] = {0, rows};
    DropKey dk = {7, 11, NULL, 0.25f};
    int was = threads_get();
    threads_set(1);
    dropout_apply(y1, x, o, 1, W, &dk, 0, DROP_EMBED);
    threads_set(2);
    dropout_apply(y2, x, o, 1, W, &dk, 0, DROP_EMBED);
    cr_expect(!memcmp(y1, y2, cnt * sizeof(float)), "masks depend on the thread count");
    // the whole model in training mode: same masks, so the logits agree to float rounding
    ModelConfig c;
    tiny_config(&c, METHOD_VANILLA, 7, 0, 0.3f);
    Model *m = make_model(&c, 2);
    model_set_dropout_step(m, 5, 9, NULL);
    Batch b = make_batch(0);
    float l1[NS * 3], l2[NS * 3];
    threads_set(1);
    forward(m, &b, 1, l1);
    threads_set(2);
    forward(m, &b, 1, l2);
    for (size_t i = 0; i < NS * 3; i++)
        cr_expect(fabsf(l1[i] - l2[i]) <= 1e-5f * (1 + fabsf(l1[i])), "logit %zu: 1 thread %g, 2 threads %g", i, l1[i], l2[i]);
    threads_set(was);
    model_destroy(m);
    free(x); free(y1); free(y2);
}

// A global batch of 4 split into shares (as data-parallel ranks do): each share's samples carry
// their global indices, so every sample gets the masks it gets in the whole batch; the logits
// agree and the shares' gradients sum to the whole batch's (SPEC §12).
static void split_equals_whole(Method method) {
    ModelConfig c;
    tiny_config(&c, method, 7, 0, 0.3f);
    Model *m = make_model(&c, 3);
    model_set_dropout_step(m, 17, 4, NULL);
    Batch b = make_batch(0);
    float all[NS * 3], R[NS * 3];
    uint64_t s = 9;
    gc_fill(R, NS * 3, &s, 1.0f);
    forward(m, &b, 1, all);
    model_zero_grad(m);
    model_backward(m, &b, R);
    size_t np = model_num_params(m);
    double *gwhole = malloc(np * sizeof(double)), *gsum = calloc(np, sizeof(double));
    for (size_t i = 0; i < np; i++) gwhole[i] = model_grads(m)[i];
    // shares: {0}, {1, 2}, {3}
    const size_t start[3] = {0, 1, 3}, count[3] = {1, 2, 1};
    for (int sh = 0; sh < 3; sh++) {
        size_t o[3], gi[2];
        for (size_t k = 0; k <= count[sh]; k++) o[k] = OFFS[start[sh] + k] - OFFS[start[sh]];
        for (size_t k = 0; k < count[sh]; k++) gi[k] = start[sh] + k;
        Batch part = {count[sh], o, g_ids + OFFS[start[sh]], NULL, 0, g_labels + start[sh]};
        model_set_dropout_step(m, 17, 4, gi);
        float lg[2 * 3];
        forward(m, &part, 1, lg);
        for (size_t k = 0; k < count[sh] * 3; k++)
            cr_expect(fabsf(lg[k] - all[start[sh] * 3 + k]) <= 1e-6f * (1 + fabsf(lg[k])),
                      "%s share %d logit %zu: %g in the share, %g in the whole batch", method_name(method), sh, k, lg[k],
                      all[start[sh] * 3 + k]);
        model_zero_grad(m);
        model_backward(m, &part, R + start[sh] * 3);
        for (size_t i = 0; i < np; i++) gsum[i] += model_grads(m)[i];
    }
    double scale = 0, worst = 0;
    for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(gwhole[i]));
    for (size_t i = 0; i < np; i++) worst = fmax(worst, fabs(gsum[i] - gwhole[i]));
    cr_expect(worst <= 1e-5 * scale, "%s: summed share gradients differ from the whole batch's by %g (scale %g)",
              method_name(method), worst, scale);
    // without the global index, sample 3 alone would be index 0: other masks, other logits
    size_t o1[2] = {0, OFFS[4] - OFFS[3]};
    Batch alone = {1, o1, g_ids + OFFS[3], NULL, 0, NULL};
    model_set_dropout_step(m, 17, 4, NULL);
    float lg[3];
    forward(m, &alone, 1, lg);
    double d = 0;
    for (size_t k = 0; k < 3; k++) d = fmax(d, fabs(lg[k] - all[9 + k]));
    cr_expect(d > 1e-4, "%s: the global index does not select the masks", method_name(method));
    free(gwhole); free(gsum);
    model_destroy(m);
}

Test(dropout, split_batch_same_masks_and_summed_gradients) {
    for (int mth = 0; mth < METHOD_COUNT; mth++) split_equals_whole((Method)mth);
}

// ---------------------------------------------------------------- memory and checks

// Backward regenerates the masks: a training step with dropout holds exactly what one without
// does, so model_bytes_needed's training estimate needs no mask term.
Test(dropout, no_mask_memory) {
    size_t peak[2];
    for (int k = 0; k < 2; k++) {
        ModelConfig c;
        tiny_config(&c, METHOD_MAELRE, 7, 0, k ? 0.2f : 0.0f);
        size_t before = mem_current();
        mem_reset_peak();
        Model *m = make_model(&c, 1);
        Batch b = make_batch(0);
        float lg[NS * 3], R[NS * 3] = {0};
        forward(m, &b, 1, lg);
        model_backward(m, &b, R);
        peak[k] = mem_peak() - before;
        model_destroy(m);
    }
    cr_expect_eq(peak[0], peak[1], "peak bytes without dropout %zu, with %zu", peak[0], peak[1]);
}

Test(dropout, config_range) {
    ModelConfig c;
    char err[256];
    const float bad[] = {-0.1f, 1.0f, 1.5f, NAN};
    for (size_t i = 0; i < 4; i++) {
        tiny_config(&c, METHOD_VANILLA, 7, 0, bad[i]);
        cr_expect_eq(model_config_check(&c, err, sizeof err), MB_ERR_USAGE, "dropout %g accepted", bad[i]);
        cr_expect(strstr(err, "dropout"), "%s", err);
    }
    tiny_config(&c, METHOD_VANILLA, 7, 0, 0.0f);
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s", err);
    tiny_config(&c, METHOD_VANILLA, 7, 0, 0.999f);
    cr_expect_eq(model_config_check(&c, err, sizeof err), MB_OK, "%s", err);
}
