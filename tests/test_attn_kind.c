// The attention-kind table (core/attn_kind.h), row by row: every row is complete (name,
// description, every function), names are unique and parse back, tensor specs are sane, sizes
// are positive for N > 0; each row's forward, inference forward and backward give exactly the
// numbers (and FLOP counts) of a direct call of its kernel; and, for every row, a finite-
// difference check in double of its backward (q, k, v and the kind's parameters, with log s)
// through the row itself, so a new kind is checked by this file as soon as it has a row.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attention.h"
#include "core/attn_bigbird.h"
#include "core/attn_local.h"
#include "core/attn_kind.h"
#include "core/attn_linear.h"
#include "core/attn_nystrom.h"
#include "core/attn_performer.h"
#include "core/flops.h"
#include "core/rng.h"
#include "tests/gradcheck.h"

#define NMAX 40
static const size_t LENS[] = {1, 5, 17, 37};

static ModelConfig small_config(SoftmaxImpl impl, int share) {
    ModelConfig c;
    model_config_default(&c, METHOD_VANILLA, 7, 0, NMAX, 3);
    c.dim = 8; c.heads = 2; c.mlp = 12; c.blocks = 2;
    c.linformer_k = 5;
    c.linformer_share_ef = share;
    c.performer_features = 6;   // more features than d = 4: a full and a partial block
    c.nystrom_landmarks = 4;    // N = 1 exact softmax, N = 5, 17, 37 the landmark path
    c.nystrom_conv = 3;
    c.softmax_impl = impl;
    c.local_attn_window = 4;   // small windows and blocks: the sparse patterns at N <= 40
    c.bigbird_block = 4;
    c.bigbird_random = 1;
    return c;
}

Test(attn_kind, every_row_is_complete_and_named_uniquely) {
    const char *block_names[] = {"ln1_g", "ln1_b", "wqkv", "bqkv", "wo", "bo", "ln2_g", "ln2_b", "w1", "b1", "w2", "b2"};
    const char *seen[ATTN_KIND_COUNT * 2 * ATTN_MAX_TENSORS];
    size_t n_seen = 0;
    ModelConfig c = small_config(SOFTMAX_TILED, 0);
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        const AttnKindRow *r = attn_kind((AttnKind)k);
        cr_assert(r, "kind %d has no row", k);
        cr_assert(r->name && r->name[0] && r->description && r->description[0], "kind %d: name/description", k);
        cr_assert(r->check && r->params && r->init_params && r->buffers && r->init_buffers, "%s: a function is missing", r->name);
        cr_assert(r->save_floats && r->infer_floats && r->work_floats, "%s: a size function is missing", r->name);
        cr_assert(r->forward && r->forward_infer && r->backward, "%s: a kernel is missing", r->name);
        cr_assert_str_eq(attn_kind_name((AttnKind)k), r->name);
        AttnKind back;
        cr_assert_eq(attn_kind_parse(r->name, &back), 0);
        cr_assert_eq(back, (AttnKind)k);
        for (int j = 0; j < k; j++) cr_assert_str_neq(attn_kind((AttnKind)j)->name, r->name, "two kinds named %s", r->name);
        cr_assert_eq(r->check(&c, NULL, 0), 0, "%s: rejects the test config", r->name);
        AttnTensorSpec ts[ATTN_MAX_TENSORS];
        for (int pass = 0; pass < 2; pass++) {
            size_t n = pass ? r->buffers(&c, ts) : r->params(&c, ts);
            cr_assert_leq(n, ATTN_MAX_TENSORS);
            for (size_t t = 0; t < n; t++) {
                cr_assert(ts[t].name && ts[t].name[0] && ts[t].count > 0, "%s: tensor %zu", r->name, t);
                for (size_t b = 0; b < sizeof block_names / sizeof *block_names; b++)
                    cr_assert_str_neq(ts[t].name, block_names[b], "%s: tensor name %s is a block's", r->name, ts[t].name);
                for (size_t s = 0; s < n_seen; s++) cr_assert_str_neq(ts[t].name, seen[s], "tensor name %s twice", ts[t].name);
                seen[n_seen++] = ts[t].name;
            }
        }
    }
    cr_assert_null(attn_kind(ATTN_KIND_COUNT));
    AttnKind dummy;
    cr_assert_neq(attn_kind_parse("no-such-kind", &dummy), 0);
}

Test(attn_kind, sizes_positive_for_every_length) {
    for (int impl = 0; impl < SOFTMAX_IMPL_COUNT; impl++) {
        ModelConfig c = small_config((SoftmaxImpl)impl, 0);
        for (int k = 0; k < ATTN_KIND_COUNT; k++) {
            const AttnKindRow *r = attn_kind((AttnKind)k);
            for (size_t i = 0; i < sizeof LENS / sizeof *LENS; i++) {
                size_t N = LENS[i];
                cr_expect_gt(r->save_floats(&c, N, c.dim, c.heads), 0, "%s N=%zu save", r->name, N);
                cr_expect_gt(r->infer_floats(&c, N, c.dim, c.heads), 0, "%s N=%zu infer", r->name, N);
                cr_expect_gt(r->work_floats(&c, N, c.dim, c.heads), 0, "%s N=%zu work", r->name, N);
            }
        }
    }
}

// One sample's inputs for a row: fused qkv (N, 3D), log s, the kind's parameters.
typedef struct {
    const AttnKindRow *r;
    ModelConfig c;
    size_t N, D, H, npar;
    float *qkv, *logs, *par[ATTN_MAX_TENSORS], *buf[ATTN_MAX_TENSORS];
    AttnTensorSpec ts[ATTN_MAX_TENSORS];
    float *save, *work;
    int use_logs;
} Sample;

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

static void sample_init(Sample *s, AttnKind k, SoftmaxImpl impl, int share, size_t N, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->r = attn_kind(k);
    s->c = small_config(impl, share);
    s->N = N; s->D = s->c.dim; s->H = s->c.heads;
    uint64_t rng = seed;
    s->qkv = malloc(N * 3 * s->D * sizeof(float));
    s->logs = malloc(N * sizeof(float));
    fill(s->qkv, N * 3 * s->D, 0.7f, &rng);
    for (size_t i = 0; i < N; i++) s->logs[i] = logf(1.0f + (float)rng_below(&rng, 4));
    s->use_logs = s->r->proportional;
    s->npar = s->r->params(&s->c, s->ts);
    for (size_t j = 0; j < s->npar; j++) { s->par[j] = malloc(s->ts[j].count * sizeof(float)); fill(s->par[j], s->ts[j].count, 0.4f, &rng); }
    AttnTensorSpec bs[ATTN_MAX_TENSORS];
    size_t nb = s->r->buffers(&s->c, bs);
    uint64_t brng = seed + 1;
    for (size_t j = 0; j < nb; j++) s->buf[j] = malloc(bs[j].count * sizeof(float));
    if (nb) s->r->init_buffers(&s->c, s->buf, &brng);
    size_t sf = s->r->save_floats(&s->c, N, s->D, s->H), inf = s->r->infer_floats(&s->c, N, s->D, s->H);
    s->save = calloc(sf > inf ? sf : inf, sizeof(float));
    s->work = calloc(s->r->work_floats(&s->c, N, s->D, s->H), sizeof(float));
}

static void sample_free(Sample *s) {
    free(s->qkv); free(s->logs); free(s->save); free(s->work);
    for (size_t j = 0; j < ATTN_MAX_TENSORS; j++) { free(s->par[j]); free(s->buf[j]); }
}

static AttnCall call_of(const Sample *s) {
    const float *q = s->qkv;
    return (AttnCall){q, q + s->D, q + 2 * s->D, 3 * s->D, s->use_logs ? s->logs : NULL, s->N, s->D, s->H,
                      (const float *const *)s->par, (const float *const *)s->buf, &s->c};
}

// The direct kernel call each row stands for (out, and grads when dout != NULL).
static void direct(const Sample *s, int infer, float *out, float *dqkv, float *const *dpar, const float *dout) {
    const float *q = s->qkv, *k = q + s->D, *v = q + 2 * s->D, *ls = s->use_logs ? s->logs : NULL;
    size_t ld = 3 * s->D, N = s->N, D = s->D, H = s->H;
    const ModelConfig *c = &s->c;
    size_t n_save = s->r->save_floats(c, N, D, H) + s->r->infer_floats(c, N, D, H);
    float *save = calloc(n_save, sizeof(float));
    const float *F = c->linformer_share_ef ? s->par[0] : s->par[1];
    float *dF = dpar && !c->linformer_share_ef ? dpar[1] : dpar ? dpar[0] : NULL;
    if (s->r == &attn_kind_softmax && c->softmax_impl == SOFTMAX_DENSE) {
        attn_softmax_dense_forward(out, save, q, k, v, ld, ls, N, D, H);
        if (dout) {
            float *w = calloc(attn_softmax_dense_work_floats(N), sizeof(float));
            attn_softmax_dense_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, N, D, H, w);
            free(w);
        }
    } else if (s->r == &attn_kind_softmax) {
        if (infer) attn_softmax_forward_infer(out, save, q, k, v, ld, ls, N, D, H);
        else attn_softmax_forward(out, save, q, k, v, ld, ls, N, D, H);
        if (dout) attn_softmax_backward(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, N, D, H);
    } else if (s->r == &attn_kind_efficient) {
        if (infer) attn_efficient_forward_infer(out, save, q, k, v, ld, ls, N, D, H);
        else attn_efficient_forward(out, save, q, k, v, ld, ls, N, D, H);
        if (dout) attn_efficient_backward(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, N, D, H);
    } else if (s->r == &attn_kind_linformer) {
        attn_linformer_forward(out, save, q, k, v, ld, s->par[0], F, c->max_len, c->linformer_k, N, D, H);
        if (dout)
            attn_linformer_backward(dqkv, dqkv + D, dqkv + 2 * D, dpar[0], dF, dout, save, q, k, v, ld, s->par[0], F,
                                    c->max_len, c->linformer_k, N, D, H);
    } else if (s->r == &attn_kind_linear) {
        if (infer) attn_linear_forward_infer(out, save, q, k, v, ld, ls, N, D, H);
        else attn_linear_forward(out, save, q, k, v, ld, ls, N, D, H);
        if (dout) {
            float *w = calloc(attn_linear_work_floats(N, D, H), sizeof(float));
            attn_linear_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, N, D, H, w);
            free(w);
        }
    } else if (s->r == &attn_kind_performer) {
        size_t m = c->performer_features;
        if (infer) attn_performer_forward_infer(out, save, q, k, v, ld, ls, s->buf[0], m, N, D, H);
        else attn_performer_forward(out, save, q, k, v, ld, ls, s->buf[0], m, N, D, H);
        if (dout) {
            float *w = calloc(attn_performer_work_floats(N, D, H, m), sizeof(float));
            attn_performer_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, s->buf[0], m, N, D, H, w);
            free(w);
        }
    } else if (s->r == &attn_kind_nystrom) {
        size_t m = c->nystrom_landmarks, kc = c->nystrom_conv;
        attn_nystrom_forward(out, save, q, k, v, ld, ls, s->par[0], kc, N, D, H, m);
        if (dout) {
            float *w = calloc(attn_nystrom_work_floats(N, D, H, m), sizeof(float));
            attn_nystrom_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dpar[0], dout, save, q, k, v, ld, ls, s->par[0], kc, N, D, H, m, w);
            free(w);
        }
    } else if (s->r == &attn_kind_local) {
        size_t w = c->local_attn_window;
        if (infer) attn_local_forward_infer(out, save, q, k, v, ld, ls, N, D, H, w);
        else attn_local_forward(out, save, q, k, v, ld, ls, N, D, H, w);
        if (dout) {
            float *w2 = calloc(attn_local_work_floats(N, D, H, w), sizeof(float));
            attn_local_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, N, D, H, w, w2);
            free(w2);
        }
    } else if (s->r == &attn_kind_bigbird) {
        // the buffer holds the (H, M, r) table as exact float integers
        size_t b = c->bigbird_block, r = c->bigbird_random, M = (c->max_len + b - 1) / b;
        int32_t *t = malloc(H * M * r * sizeof(int32_t));
        for (size_t i = 0; i < H * M * r; i++) {
            t[i] = (int32_t)s->buf[0][i];
            cr_assert_eq((float)t[i], s->buf[0][i], "bigbird table entry %zu is not an integer", i);
        }
        if (infer) attn_bigbird_forward_infer(out, save, q, k, v, ld, ls, t, M, N, D, H, b, r);
        else attn_bigbird_forward(out, save, q, k, v, ld, ls, t, M, N, D, H, b, r);
        if (dout) {
            float *w2 = calloc(attn_bigbird_work_floats(N, D, H, b), sizeof(float));
            attn_bigbird_backward_ws(dqkv, dqkv + D, dqkv + 2 * D, dout, save, q, k, v, ld, ls, t, M, N, D, H, b, r, w2);
            free(w2);
        }
        free(t);
    } else {
        cr_assert_fail("kind %s: add its direct kernel call to tests/test_attn_kind.c:direct()", s->r->name);
    }
    free(save);
}

static void compare_row_to_kernel(AttnKind k, SoftmaxImpl impl, int share, size_t N) {
    Sample s;
    sample_init(&s, k, impl, share, N, 100 + N);
    size_t D = s.D, no = N * D;
    float *o1 = calloc(no, sizeof(float)), *o2 = calloc(no, sizeof(float));
    float *dout = malloc(no * sizeof(float));
    uint64_t rng = 7;
    fill(dout, no, 1.0f, &rng);
    AttnCall a = call_of(&s);
    const char *nm = s.r->name;
    for (int infer = 0; infer < 2; infer++) {
        FlopCounter f1 = {0}, f2 = {0};
        flops_install(&f1);
        if (infer) s.r->forward_infer(o1, s.save, &a);
        else s.r->forward(o1, s.save, &a);
        flops_install(&f2);
        direct(&s, infer, o2, NULL, NULL, NULL);
        flops_install(NULL);
        cr_expect_eq(memcmp(o1, o2, no * sizeof(float)), 0, "%s (%s) N=%zu infer=%d: row and kernel outputs differ",
                     nm, softmax_impl_name(impl), N, infer);
        cr_expect_eq(f1.flops, f2.flops, "%s N=%zu infer=%d: FLOPs %g vs %g", nm, N, infer, f1.flops, f2.flops);
        cr_expect_gt(f1.flops, 0.0, "%s N=%zu: counts no FLOPs", nm, N);
    }
    // backward: the row (after its training forward) against the kernel's plain entry point
    float *g1 = calloc(N * 3 * D, sizeof(float)), *g2 = calloc(N * 3 * D, sizeof(float));
    float *dp1[ATTN_MAX_TENSORS] = {0}, *dp2[ATTN_MAX_TENSORS] = {0};
    for (size_t j = 0; j < s.npar; j++) { dp1[j] = calloc(s.ts[j].count, sizeof(float)); dp2[j] = calloc(s.ts[j].count, sizeof(float)); }
    s.r->forward(o1, s.save, &a);
    FlopCounter f1 = {0}, f2 = {0};
    flops_install(&f1);
    s.r->backward(g1, g1 + D, g1 + 2 * D, dp1, dout, s.save, s.work, &a);
    flops_install(&f2);
    direct(&s, 0, o2, g2, dp2, dout);
    flops_install(NULL);
    cr_expect_eq(memcmp(g1, g2, N * 3 * D * sizeof(float)), 0, "%s N=%zu: row and kernel dqkv differ", nm, N);
    for (size_t j = 0; j < s.npar; j++)
        cr_expect_eq(memcmp(dp1[j], dp2[j], s.ts[j].count * sizeof(float)), 0, "%s N=%zu: d%s differs", nm, N, s.ts[j].name);
    double fwd = 0;  // the direct call above ran a forward too: compare backward FLOPs only
    {
        FlopCounter f3 = {0};
        flops_install(&f3);
        direct(&s, 0, o2, NULL, NULL, NULL);
        flops_install(NULL);
        fwd = f3.flops;
    }
    cr_expect_eq(f1.flops, f2.flops - fwd, "%s N=%zu: backward FLOPs %g vs %g", nm, N, f1.flops, f2.flops - fwd);
    for (size_t j = 0; j < s.npar; j++) { free(dp1[j]); free(dp2[j]); }
    free(g1); free(g2); free(o1); free(o2); free(dout);
    sample_free(&s);
}

Test(attn_kind, row_equals_direct_kernel_call) {
    for (int k = 0; k < ATTN_KIND_COUNT; k++)
        for (int impl = 0; impl < SOFTMAX_IMPL_COUNT; impl++)
            for (int share = 0; share < 2; share++)
                for (size_t i = 0; i < sizeof LENS / sizeof *LENS; i++) compare_row_to_kernel((AttnKind)k, (SoftmaxImpl)impl, share, LENS[i]);
}

// Inference forward: the same output as the training forward (to float rounding).
Test(attn_kind, inference_forward_matches_training_forward) {
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        Sample s;
        sample_init(&s, (AttnKind)k, SOFTMAX_TILED, 0, 37, 3);
        size_t no = s.N * s.D;
        float *o1 = calloc(no, sizeof(float)), *o2 = calloc(no, sizeof(float));
        AttnCall a = call_of(&s);
        s.r->forward(o1, s.save, &a);
        s.r->forward_infer(o2, s.save, &a);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < no; i++) { worst = fmax(worst, fabs((double)o1[i] - o2[i])); scale = fmax(scale, fabs((double)o1[i])); }
        cr_expect(worst <= 1e-5 * scale + 1e-7, "%s: inference differs by %g (scale %g)", s.r->name, worst, scale);
        free(o1); free(o2);
        sample_free(&s);
    }
}

// Finite differences in double through the row: q, k, v and each parameter tensor.
typedef struct { Sample *s; } FdCtx;
static void fd_forward(void *p, float *out) {
    Sample *s = ((FdCtx *)p)->s;
    AttnCall a = call_of(s);
    s->r->forward(out, s->save, &a);
}

Test(attn_kind, row_backward_matches_finite_differences) {
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        Sample s;
        sample_init(&s, (AttnKind)k, SOFTMAX_TILED, 0, 6, 11);
        size_t D = s.D, N = s.N, no = N * D;
        float *out = calloc(no, sizeof(float)), *R = malloc(no * sizeof(float));
        uint64_t rng = 5;
        fill(R, no, 1.0f, &rng);
        float *g = calloc(N * 3 * D, sizeof(float)), *dp[ATTN_MAX_TENSORS] = {0};
        for (size_t j = 0; j < s.npar; j++) dp[j] = calloc(s.ts[j].count, sizeof(float));
        AttnCall a = call_of(&s);
        s.r->forward(out, s.save, &a);
        s.r->backward(g, g + D, g + 2 * D, dp, R, s.save, s.work, &a);
        FdCtx ctx = {&s};
        size_t where;
        double e = gc_check(fd_forward, &ctx, s.qkv, N * 3 * D, g, out, R, no, 1e-2f, &where);
        cr_expect(e < 2e-2, "%s: dqkv FD error %g at %zu", s.r->name, e, where);
        for (size_t j = 0; j < s.npar; j++) {
            // Only the first N columns of position-indexed tensors matter; check them all anyway
            // (unused entries have zero gradient both ways).
            e = gc_check(fd_forward, &ctx, s.par[j], s.ts[j].count, dp[j], out, R, no, 1e-2f, &where);
            cr_expect(e < 2e-2, "%s: d%s FD error %g at %zu", s.r->name, s.ts[j].name, e, where);
            free(dp[j]);
        }
        free(out); free(R); free(g);
        sample_free(&s);
    }
}
