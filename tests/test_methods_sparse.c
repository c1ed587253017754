// The methods `local` and `bigbird` (SPEC §9.4, §9.5) at model level: a sample's logits do not
// depend on the rest of its packed ragged batch; local with a window covering the sequence
// (w >= 2N) and bigbird with N <= (5 + r) b equal vanilla with the same parameters (logits and
// every gradient), while the sparse patterns do not; finite differences through the whole model
// with the sparse patterns; FLOP counts equal a hand formula (the
// pairs counted by hand from the pattern's definition); the memory estimate matches the
// allocator; bigbird's random tables are integers in [-1, M), survive a checkpoint round trip
// bit for bit, and another seed draws other tables.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/flops.h"
#include "core/mem.h"
#include "core/model.h"
#include "core/status.h"
#include "tests/gradcheck.h"

#define MAXLEN 40

// Small windows and blocks so the sparse patterns appear at these lengths: local w = 4;
// bigbird b = 4, r = 1 (dense while N <= 24).
static ModelConfig sparse_config(Method m) {
    ModelConfig c;
    model_config_default(&c, m, 7, 0, MAXLEN, 3);
    c.dim = 8; c.heads = 2; c.mlp = 12; c.blocks = 2;
    c.local_attn_window = 4;
    c.bigbird_block = 4;
    c.bigbird_random = 1;
    return c;
}

static Model *make(const ModelConfig *c, uint64_t seed) {
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, c, seed, err, sizeof err), MB_OK, "%s", err);
    return m;
}

static void ids_for(int32_t *ids, size_t n) {
    for (size_t t = 0; t < n; t++) ids[t] = (int32_t)((t * 5 + t / 4 + 1) % 7);
}

static void forward_ok(Model *m, const Batch *b, int keep, float *logits) {
    char err[256];
    cr_assert_eq(model_forward(m, b, keep, logits, err, sizeof err), MB_OK, "%s", err);
}

// Ragged batch of 37, 5, 29, 40 tokens: both patterns sparse in the long samples.
#define NS 4
static const size_t OFFS[NS + 1] = {0, 37, 42, 71, 111};

static void batch_independence(Method method) {
    ModelConfig c = sparse_config(method);
    Model *m = make(&c, 5);
    int32_t ids[111], labels[NS] = {0, 1, 2, 1};
    ids_for(ids, 111);
    Batch b = {NS, OFFS, ids, NULL, 0, labels};
    for (int keep = 0; keep < 2; keep++) {
        float all[NS * 3];
        forward_ok(m, &b, keep, all);
        for (size_t i = 0; i < NS; i++) {
            size_t o1[2] = {0, OFFS[i + 1] - OFFS[i]};
            Batch one = {1, o1, ids + OFFS[i], NULL, 0, labels + i};
            float lg[3];
            forward_ok(m, &one, keep, lg);
            for (size_t k = 0; k < 3; k++)
                cr_expect(fabsf(lg[k] - all[i * 3 + k]) <= 1e-6f * (1.0f + fabsf(lg[k])),
                          "%s keep=%d sample %zu class %zu: alone %.9g in batch %.9g", method_name(method), keep, i, k,
                          lg[k], all[i * 3 + k]);
        }
    }
    model_destroy(m);
}

Test(methods_sparse, batch_independence_local) { batch_independence(METHOD_LOCAL); }
Test(methods_sparse, batch_independence_bigbird) { batch_independence(METHOD_BIGBIRD); }

// Finite differences (double) of <R, logits> through the whole model, every tensor, on the
// ragged batch where the patterns are sparse.
typedef struct { Model *m; Batch b; } Ctx;
static void fwd(void *p, float *out) { Ctx *c = p; forward_ok(c->m, &c->b, 1, out); }

static void model_gradcheck(Method method) {
    ModelConfig c = sparse_config(method);
    Model *m = make(&c, 7);
    int32_t ids[111], labels[NS] = {0, 1, 2, 1};
    ids_for(ids, 111);
    Ctx ctx = {m, {NS, OFFS, ids, NULL, 0, labels}};
    float logits[NS * 3], R[NS * 3];
    uint64_t s = 3;
    gc_fill(R, NS * 3, &s, 1.0f);
    fwd(&ctx, logits);
    model_zero_grad(m);
    model_backward(m, &ctx.b, R);
    size_t np = model_num_params(m);
    float *g = malloc(np * sizeof(float));
    memcpy(g, model_grads(m), np * sizeof(float));
    for (size_t t = 0; t < model_num_tensors(m); t++) {
        size_t off, cnt, at;
        const char *name = model_tensor(m, t, &off, &cnt);
        double rms = 0;
        for (size_t i = 0; i < cnt; i++) rms += (double)model_params(m)[off + i] * model_params(m)[off + i];
        rms = sqrt(rms / (double)cnt);
        // an eighth of test_model.c's step: the 0.02-scale embeddings feed LayerNorm, whose
        // curvature there makes 0.05 rms too coarse a step (the error falls with the step as
        // step^2: bigbird's pos 0.093, 0.025, 0.0064 at 0.025, 0.0125, 0.00625 rms with the
        // tables drawn for ATTN_BIGBIRD = 7)
        float step = (float)fmin(1e-2, fmax(1e-4, 0.00625 * rms));
        double e = gc_check(fwd, &ctx, model_params(m) + off, cnt, g + off, logits, R, NS * 3, step, &at);
        cr_expect(e < 2e-2, "%s: tensor %s FD error %g at %zu (analytic %g)", method_name(method), name, e, at, g[off + at]);
    }
    free(g);
    model_destroy(m);
}

Test(methods_sparse, gradcheck_local) { model_gradcheck(METHOD_LOCAL); }
Test(methods_sparse, gradcheck_bigbird) { model_gradcheck(METHOD_BIGBIRD); }

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) { e = fmax(e, fabs((double)a[i] - b[i])); s = fmax(s, fabs((double)b[i])); }
    return e / (s + 1e-30);
}

// Logits and every gradient of `c` against vanilla with the same seed (so the same parameters:
// neither kind has any) on a ragged batch; returns the logits' relative difference.
static double against_vanilla(const ModelConfig *c, const size_t *offs, size_t n, int expect_equal) {
    ModelConfig cv = *c;
    cv.method = METHOD_VANILLA;
    Model *m = make(c, 9), *v = make(&cv, 9);
    size_t np = model_num_params(m);
    cr_assert_eq(np, model_num_params(v));
    cr_assert_eq(memcmp(model_params(m), model_params(v), np * sizeof(float)), 0, "parameters differ");
    int32_t ids[4 * MAXLEN], labels[4] = {2, 0, 1, 1};
    ids_for(ids, offs[n]);
    Batch b = {n, offs, ids, NULL, 0, labels};
    float l1[12], l2[12], d1[12], d2[12];
    forward_ok(m, &b, 1, l1);
    forward_ok(v, &b, 1, l2);
    model_loss(l1, labels, n, 3, d1);
    model_loss(l2, labels, n, 3, d2);
    double e = rel_err(l1, l2, n * 3);
    if (expect_equal) {
        cr_expect(e < 1e-5, "%s: logits differ from vanilla by %g", method_name(c->method), e);
        model_zero_grad(m);
        model_zero_grad(v);
        model_backward(m, &b, d1);
        model_backward(v, &b, d2);
        for (size_t t = 0; t < model_num_tensors(m); t++) {
            size_t off, cnt;
            const char *name = model_tensor(m, t, &off, &cnt);
            double g = rel_err(model_grads(m) + off, model_grads(v) + off, cnt);
            cr_expect(g < 1e-4, "%s: grad %s differs from vanilla by %g", method_name(c->method), name, g);
        }
    }
    model_destroy(m);
    model_destroy(v);
    return e;
}

Test(methods_sparse, local_with_covering_window_equals_vanilla) {
    ModelConfig c = sparse_config(METHOD_LOCAL);
    const size_t offs[4] = {0, 40, 47, 80};  // N <= 40
    c.local_attn_window = 2 * MAXLEN;         // w >= 2N: every key in every window
    against_vanilla(&c, offs, 3, 1);
    c.local_attn_window = 2 * MAXLEN - 2;     // the last query loses key 0 in the 40-token sample
    double e = against_vanilla(&c, offs, 3, 0);
    cr_expect(e > 1e-6, "w = 2N - 2 still equals vanilla (%g): the window is not applied", e);
}

Test(methods_sparse, short_bigbird_equals_vanilla) {
    ModelConfig c = sparse_config(METHOD_BIGBIRD);
    const size_t offs[4] = {0, 24, 31, 50};   // N <= (5 + r) b = 24
    against_vanilla(&c, offs, 3, 1);
    const size_t longer[4] = {0, 37, 44, 63};  // 37 tokens: 10 blocks, sparse
    double e = against_vanilla(&c, longer, 3, 0);
    cr_expect(e > 1e-6, "bigbird at N = 37 equals vanilla (%g): the pattern is not applied", e);
}

// FLOPs of one forward of one sample: vanilla's formula (tests/test_model.c) with the
// attention's N^2 pairs replaced by the pattern's pairs per head.
static void expect_flops(Method method, size_t N, double pairs) {
    ModelConfig c = sparse_config(method);
    Model *m = make(&c, 1);
    size_t D = 8, M = 12, H = 2, d = 4, C = 3, B = 2;
    size_t offs[2] = {0, N};
    int32_t ids[MAXLEN], lab = 1;
    ids_for(ids, N);
    Batch b = {1, offs, ids, NULL, 0, &lab};
    float lg[3];
    FlopCounter fc = {0};
    flops_install(&fc);
    forward_ok(m, &b, 1, lg);
    flops_install(NULL);
    // Per block: QKV N*3D*D, Wo N*D*D, MLP 2*N*D*M, attention QK^T and PV 2*H*pairs*d MACs.
    double macs_block = (double)N * 3 * D * D + (double)N * D * D + 2.0 * N * D * M + 2.0 * H * pairs * d;
    double macs = B * macs_block + (double)N * D + (double)D * C;
    // Element-wise per block: LN 4ND, biases, residual 2ND, GELU NM, softmax exp + normalise
    // 2 per pair and head (no merging: no log s). Input ND, pool D, final LN 2D, head bias C.
    double elem_block = 4.0 * N * D + (3.0 * N * D + N * D + N * M + N * D) + 2.0 * N * D + N * M + 2.0 * H * pairs;
    double elem = B * elem_block + N * D + D + 2.0 * D + C;
    cr_expect_float_eq(fc.macs, macs, 1e-9, "%s N=%zu: macs %.17g vs %.17g", method_name(method), N, fc.macs, macs);
    cr_expect_float_eq(fc.flops, 2 * macs + elem, 1e-9, "%s N=%zu: flops %.17g vs %.17g", method_name(method), N, fc.flops,
                       2 * macs + elem);
    model_destroy(m);
}

Test(methods_sparse, local_flops_match_formula) {
    // w = 4: query i sees i-1 .. i+2 clipped to [0, N): N = 13 gives 1 row of 3 (i = 0), 10 of 4,
    // one of 3 (i = 11: 10..12) and one of 2 (i = 12: 11..12).
    double pairs = 3 + 10 * 4 + 3 + 2;
    size_t N = 13, count = 0;
    for (size_t i = 0; i < N; i++)  // the same from the definition i - w/2 < j <= i + w/2
        for (size_t j = 0; j < N; j++) count += (double)j > (double)i - 2 && j <= i + 2;
    cr_assert_eq((double)count, pairs);
    expect_flops(METHOD_LOCAL, N, pairs);
}

Test(methods_sparse, bigbird_flops_match_formula) {
    // N = 30, b = 4, r = 1: 8 blocks (the last of 2 tokens) > 5 + r, so sparse. Query blocks 0
    // and 7 see all 30 keys; block 1 sees {0, 1, 2, 7} + 1 random block = 3*4 + 2 + 4 = 18 keys,
    // block 6 likewise {0, 5, 6, 7} + 1: 18; blocks 2..5 see {0, i-1, i, i+1, 7} + 1: 5*4 + 2 = 22.
    // Whatever the table says, the random block is one more full block (never block 7).
    double pairs = 4 * 30 + 2 * 30 + 2 * (4 * 18) + 4 * (4 * 22);
    expect_flops(METHOD_BIGBIRD, 30, pairs);
}

// model_bytes_needed's estimate matches what the allocator sees (training, one 40-token sample).
Test(methods_sparse, memory_estimate_matches_allocator) {
    const Method ms[] = {METHOD_LOCAL, METHOD_BIGBIRD};
    for (int i = 0; i < 2; i++) {
        ModelConfig c = sparse_config(ms[i]);
        size_t base = mem_current();
        mem_reset_peak();
        Model *m = make(&c, 3);
        size_t offs[2] = {0, MAXLEN};
        int32_t ids[MAXLEN], lab = 0;
        ids_for(ids, MAXLEN);
        Batch one = {1, offs, ids, NULL, 0, &lab};
        float lg[3];
        forward_ok(m, &one, 1, lg);
        model_backward(m, &one, lg);
        size_t used = mem_peak() - base;
        size_t est = model_bytes_needed(&c, MAXLEN, 1) - 2 * model_num_params(m) * sizeof(float);
        cr_expect(est >= used - used / 20 && est <= used + used / 20, "%s: estimate %zu vs measured %zu",
                  method_name(ms[i]), est, used);
        model_destroy(m);
    }
}

Test(methods_sparse, bigbird_tables_checkpoint_round_trip) {
    ModelConfig c = sparse_config(METHOD_BIGBIRD);
    Model *m = make(&c, 21), *other = make(&c, 22), *r;
    size_t M = (MAXLEN + 3) / 4, H = 2, R = 1;
    cr_assert_eq(model_num_buffer_tensors(m), c.blocks);
    cr_assert_eq(model_num_buffers(m), c.blocks * H * M * R);
    for (size_t t = 0; t < model_num_buffer_tensors(m); t++) {
        size_t off, cnt;
        const char *name = model_buffer_tensor(m, t, &off, &cnt);
        char want[48];
        snprintf(want, sizeof want, "blk%zu.bigbird_table", t);
        cr_expect_str_eq(name, want);
        cr_expect_eq(cnt, H * M * R);
        for (size_t i = 0; i < cnt; i++) {
            float x = model_buffers(m)[off + i];
            size_t row = (i / R) % M;
            cr_expect(x == floorf(x) && x >= -1.0f && x < (float)M, "%s[%zu] = %g", name, i, x);
            if (row == 0 || row == M - 1) cr_expect_eq(x, -1.0f, "%s: global row %zu has a random block", name, row);
            else cr_expect(x != (float)row && x != (float)row - 1 && x != (float)row + 1 && x != 0 && x != (float)(M - 1),
                           "%s row %zu draws fixed block %g", name, row, x);
        }
    }
    size_t nb = model_num_buffers(m);
    cr_expect_neq(memcmp(model_buffers(m), model_buffers(other), nb * sizeof(float)), 0, "seeds 21 and 22 draw the same tables");
    char err[512], path[] = "/tmp/maelre-bigbird-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(model_save(m, path, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(model_load(&r, path, err, sizeof err), MB_OK, "%s", err);
    unlink(path);
    cr_assert_eq(model_num_buffers(r), nb);
    cr_expect_eq(memcmp(model_buffers(r), model_buffers(m), nb * sizeof(float)), 0, "tables changed in the round trip");
    const ModelConfig *rc = model_config(r);
    cr_expect_eq(rc->method, METHOD_BIGBIRD);
    cr_expect_eq(rc->bigbird_block, 4u);
    cr_expect_eq(rc->bigbird_random, 1u);
    cr_expect_eq(rc->local_attn_window, 4u);
    // the same logits; the other seed's tables (same parameters copied in) give other logits
    int32_t ids[111], labels[NS] = {0, 1, 2, 1};
    ids_for(ids, 111);
    Batch b = {NS, OFFS, ids, NULL, 0, labels};
    float l1[NS * 3], l2[NS * 3], l3[NS * 3];
    forward_ok(m, &b, 0, l1);
    forward_ok(r, &b, 0, l2);
    cr_expect_eq(memcmp(l1, l2, sizeof l1), 0, "logits differ after a round trip");
    memcpy(model_params(other), model_params(m), model_num_params(m) * sizeof(float));
    forward_ok(other, &b, 0, l3);
    cr_expect_gt(rel_err(l3, l1, NS * 3), 1e-6, "other tables, same logits");
    model_destroy(r);
    model_destroy(m);
    model_destroy(other);
}
