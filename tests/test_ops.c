// Row-wise ops: finite-difference gradient checks on tiny awkward shapes, FLOP counts, and
// the cross-entropy against a direct formula.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "core/flops.h"
#include "core/ops.h"
#include "core/threads.h"
#include "tests/gradcheck.h"

#define TOL 1e-2

typedef struct {
    size_t T, NI, NO, D, n;
    float *in, *w, *b, *g, *s;
    int32_t *ids;
    size_t *offsets;
    float mean[64], rstd[64];
} Ctx;

static void fwd_linear(void *p, float *out) {
    Ctx *c = p;
    linear_forward(out, c->in, c->w, c->b, c->T, c->NI, c->NO);
}

Test(ops, linear_gradcheck) {
    Ctx c = {.T = 5, .NI = 7, .NO = 3};
    float in[35], w[21], b[3], out[15], R[15], din[35] = {0}, dw[21] = {0}, db[3] = {0};
    uint64_t s = 1;
    gc_fill(in, 35, &s, 1.0f); gc_fill(w, 21, &s, 0.5f); gc_fill(b, 3, &s, 0.5f); gc_fill(R, 15, &s, 1.0f);
    c.in = in; c.w = w; c.b = b;
    fwd_linear(&c, out);
    // backward accumulates: start from a known non-zero value and subtract it afterwards
    for (int i = 0; i < 21; i++) dw[i] = 1.0f;
    linear_backward(din, dw, db, R, in, w, 5, 7, 3);
    for (int i = 0; i < 21; i++) dw[i] -= 1.0f;
    size_t at;
    double e1 = gc_check(fwd_linear, &c, in, 35, din, out, R, 15, 1e-2f, &at);
    double e2 = gc_check(fwd_linear, &c, w, 21, dw, out, R, 15, 1e-2f, &at);
    double e3 = gc_check(fwd_linear, &c, b, 3, db, out, R, 15, 1e-2f, &at);
    cr_expect(e1 < TOL && e2 < TOL && e3 < TOL, "linear errors in %g w %g b %g", e1, e2, e3);
}

static void fwd_ln(void *p, float *out) {
    Ctx *c = p;
    layernorm_forward(out, c->mean, c->rstd, c->in, c->g, c->b, c->T, c->D, 1e-5f);
}

Test(ops, layernorm_gradcheck) {
    Ctx c = {.T = 4, .D = 9};
    float in[36], g[9], b[9], out[36], R[36], din[36] = {0}, dg[9] = {0}, db[9] = {0};
    uint64_t s = 2;
    gc_fill(in, 36, &s, 2.0f); gc_fill(g, 9, &s, 1.0f); gc_fill(b, 9, &s, 1.0f); gc_fill(R, 36, &s, 1.0f);
    c.in = in; c.g = g; c.b = b;
    fwd_ln(&c, out);
    layernorm_backward(din, dg, db, R, in, c.mean, c.rstd, g, 4, 9);
    size_t at;
    double e1 = gc_check(fwd_ln, &c, in, 36, din, out, R, 36, 1e-2f, &at);
    double e2 = gc_check(fwd_ln, &c, g, 9, dg, out, R, 36, 1e-2f, &at);
    double e3 = gc_check(fwd_ln, &c, b, 9, db, out, R, 36, 1e-2f, &at);
    cr_expect(e1 < TOL && e2 < TOL && e3 < TOL, "layernorm errors in %g g %g b %g", e1, e2, e3);
    // normalised rows: mean 0, variance ~1 before the affine step (g = 1, b = 0)
    float ones[9], zeros[9] = {0};
    for (int j = 0; j < 9; j++) ones[j] = 1.0f;
    layernorm_forward(out, c.mean, c.rstd, in, ones, zeros, 4, 9, 1e-5f);
    for (int t = 0; t < 4; t++) {
        double mu = 0, var = 0;
        for (int j = 0; j < 9; j++) mu += out[t * 9 + j];
        for (int j = 0; j < 9; j++) var += (out[t * 9 + j] - mu / 9) * (out[t * 9 + j] - mu / 9);
        cr_expect(fabs(mu / 9) < 1e-5 && fabs(var / 9 - 1.0) < 1e-3, "row %d mean %g var %g", t, mu / 9, var / 9);
    }
}

static void fwd_gelu(void *p, float *out) { Ctx *c = p; gelu_forward(out, c->in, c->T); }

Test(ops, gelu_gradcheck_and_values) {
    Ctx c = {.T = 40};
    float in[40], out[40], R[40], din[40];
    uint64_t s = 3;
    gc_fill(in, 40, &s, 4.0f); gc_fill(R, 40, &s, 1.0f);
    for (int i = 0; i < 40; i++) din[i] = 7.0f;   // written, not accumulated: the old value must go
    c.in = in;
    fwd_gelu(&c, out);
    gelu_backward(din, R, in, 40);
    size_t at;
    double e = gc_check(fwd_gelu, &c, in, 40, din, out, R, 40, 1e-2f, &at);
    cr_expect(e < TOL, "gelu error %g at %zu", e, at);
    // tanh approximation values (PyTorch gelu(approximate='tanh')): gelu(1) = 0.841192
    float x1 = 1.0f, y1;
    gelu_forward(&y1, &x1, 1);
    cr_expect(fabsf(y1 - 0.8411920f) < 1e-6f, "gelu(1) = %.7f", y1);
}

static void fwd_embed(void *p, float *out) {
    Ctx *c = p;
    embed_tokens_forward(out, c->ids, c->w, c->T, c->D);
    pos_embed_forward(out, c->g, c->offsets, c->n, c->D);
}

Test(ops, embeddings_gradcheck) {
    // two samples of 3 and 2 tokens, vocab 4, D 5, token 1 repeated (shared rows accumulate)
    int32_t ids[5] = {1, 3, 1, 0, 1};
    size_t offs[3] = {0, 3, 5};
    float table[20], pos[15], out[25], R[25], dt[20] = {0}, dp[15] = {0};
    uint64_t s = 4;
    gc_fill(table, 20, &s, 1.0f); gc_fill(pos, 15, &s, 1.0f); gc_fill(R, 25, &s, 1.0f);
    Ctx c = {.T = 5, .D = 5, .n = 2, .ids = ids, .offsets = offs, .w = table, .g = pos};
    fwd_embed(&c, out);
    embed_tokens_backward(dt, R, ids, 5, 5);
    pos_embed_backward(dp, R, offs, 2, 5);
    size_t at;
    double e1 = gc_check(fwd_embed, &c, table, 20, dt, out, R, 25, 1e-2f, &at);
    double e2 = gc_check(fwd_embed, &c, pos, 15, dp, out, R, 25, 1e-2f, &at);
    cr_expect(e1 < TOL && e2 < TOL, "embedding errors table %g pos %g", e1, e2);
    // unused vocabulary row 2 gets exactly no gradient
    for (int j = 0; j < 5; j++) cr_expect_eq(dt[2 * 5 + j], 0.0f);
}

static void fwd_pool(void *p, float *out) {
    Ctx *c = p;
    pool_forward(out, c->in, c->s, c->offsets, c->n, c->D);
}

Test(ops, pool_gradcheck_size_weighted) {
    size_t offs[4] = {0, 3, 4, 8};
    float x[8 * 3], sz[8] = {1, 2, 3, 5, 1, 1, 4, 2}, out[9], R[9], dx[24] = {0};
    uint64_t s = 5;
    gc_fill(x, 24, &s, 1.0f); gc_fill(R, 9, &s, 1.0f);
    Ctx c = {.n = 3, .D = 3, .in = x, .s = sz, .offsets = offs};
    fwd_pool(&c, out);
    // sample 0: (1 x0 + 2 x1 + 3 x2) / 6
    for (int j = 0; j < 3; j++)
        cr_expect(fabsf(out[j] - (x[j] + 2 * x[3 + j] + 3 * x[6 + j]) / 6.0f) < 1e-6f);
    pool_backward(dx, R, sz, offs, 3, 3);
    size_t at;
    double e = gc_check(fwd_pool, &c, x, 24, dx, out, R, 9, 1e-2f, &at);
    cr_expect(e < TOL, "pool error %g at %zu", e, at);
    // a merged token of size 2 pools like two copies of size 1
    float xa[6] = {1, 2, 3, 1, 2, 3}, xb[3] = {1, 2, 3}, sa[2] = {1, 1}, sb[1] = {2}, oa[3], ob[3];
    size_t o2[2] = {0, 2}, o1[2] = {0, 1};
    pool_forward(oa, xa, sa, o2, 1, 3);
    pool_forward(ob, xb, sb, o1, 1, 3);
    for (int j = 0; j < 3; j++) cr_expect_float_eq(oa[j], ob[j], 1e-7f);
}

static void fwd_res(void *p, float *out) {
    Ctx *c = p;
    memcpy(out, c->w, 6 * sizeof(float));
    residual_forward(out, c->in, 6);
}

Test(ops, residual_gradcheck) {
    float a[6], b[6], out[6], R[6];
    uint64_t s = 6;
    gc_fill(a, 6, &s, 1.0f); gc_fill(b, 6, &s, 1.0f); gc_fill(R, 6, &s, 1.0f);
    Ctx c = {.in = a, .w = b};
    // both branches receive the incoming gradient unchanged
    size_t at;
    double e1 = gc_check(fwd_res, &c, a, 6, R, out, R, 6, 1e-2f, &at);
    double e2 = gc_check(fwd_res, &c, b, 6, R, out, R, 6, 1e-2f, &at);
    cr_expect(e1 < TOL && e2 < TOL, "residual errors %g %g", e1, e2);
}

static int32_t g_labels[3] = {2, 0, 3};
static void fwd_ce(void *p, float *out) {
    Ctx *c = p;
    out[0] = softmax_ce(c->in, g_labels, 3, 4, NULL);
}

Test(ops, cross_entropy_value_and_gradcheck) {
    float z[12], dz[12], out[1], R[1] = {1.0f};
    uint64_t s = 7;
    gc_fill(z, 12, &s, 3.0f);
    Ctx c = {.in = z};
    float loss = softmax_ce(z, g_labels, 3, 4, dz);
    double ref = 0;
    for (int i = 0; i < 3; i++) {
        double sum = 0;
        for (int k = 0; k < 4; k++) sum += exp(z[i * 4 + k]);
        ref += log(sum) - z[i * 4 + g_labels[i]];
    }
    cr_expect(fabs(loss - ref / 3) < 1e-6, "loss %g vs %g", loss, ref / 3);
    size_t at;
    double e = gc_check(fwd_ce, &c, z, 12, dz, out, R, 1, 1e-2f, &at);
    cr_expect(e < TOL, "cross-entropy error %g at %zu", e, at);
    // a huge logit does not overflow: softmax starts from the row maximum
    float big[4] = {1000.0f, 0.0f, 0.0f, 0.0f};
    int32_t l0 = 0;
    cr_expect(fabsf(softmax_ce(big, &l0, 1, 4, NULL)) < 1e-6f);
}

Test(ops, flop_counts_follow_shapes) {
    FlopCounter fc = {0};
    float in[6 * 5] = {0}, w[4 * 5] = {0}, b[4] = {0}, out[24], din[30] = {0}, dw[20] = {0}, db[4] = {0};
    flops_install(&fc);
    linear_forward(out, in, w, b, 6, 5, 4);
    flops_install(NULL);
    // 6*4*5 MACs = 120 MACs = 240 FLOPs, + 24 bias adds
    cr_expect_float_eq(fc.macs, 120.0, 1e-9);
    cr_expect_float_eq(fc.flops, 264.0, 1e-9);
    memset(&fc, 0, sizeof fc);
    flops_install(&fc);
    linear_backward(din, dw, db, out, in, w, 6, 5, 4);
    flops_install(NULL);
    // din: 6*5*4, dw: 4*5*6 MACs; db: 24 adds
    cr_expect_float_eq(fc.macs, 240.0, 1e-9);
    cr_expect_float_eq(fc.flops, 504.0, 1e-9);
}

// The gradients that sum over rows (bias, LayerNorm scale/shift, position and token tables) and the
// AdamW-style element loops split their work over threads above a size: on shapes large enough
// to go parallel, 1 and 2 threads must give exactly the serial, rows-in-order sums.
Test(ops, row_sums_are_serial_whatever_the_threads) {
    enum { T = 1500, D = 64, NO = 72, V = 11, NS2 = 3 };
    static float in[T * D], dout[T * NO], dy[T * D], mean[T], rstd[T], g[D];
    static int32_t ids[T];
    uint64_t s = 5;
    gc_fill(in, T * D, &s, 1.0f); gc_fill(dout, T * NO, &s, 1.0f); gc_fill(dy, T * D, &s, 1.0f);
    gc_fill(mean, T, &s, 0.5f); gc_fill(g, D, &s, 1.0f);
    for (size_t t = 0; t < T; t++) { rstd[t] = 1.0f + 0.5f * mean[t]; ids[t] = (int32_t)((t * 7) % V); }
    size_t offs[NS2 + 1] = {0, 700, 701, T};   // ragged samples: positions 0..699 summed 3 times
    // serial references, rows in order
    float db_ref[NO] = {0}, dg_ref[D] = {0}, dbeta_ref[D] = {0}, dtab_ref[V * D] = {0};
    static float dpos_ref[T * D];
    memset(dpos_ref, 0, sizeof dpos_ref);
    for (size_t t = 0; t < T; t++) {
        for (size_t o = 0; o < NO; o++) db_ref[o] += dout[t * NO + o];
        for (size_t j = 0; j < D; j++) {
            dg_ref[j] += dy[t * D + j] * (in[t * D + j] - mean[t]) * rstd[t];
            dbeta_ref[j] += dy[t * D + j];
            dtab_ref[ids[t] * D + j] += dy[t * D + j];
        }
    }
    for (size_t i = 0; i < NS2; i++)
        for (size_t e = 0; e < (offs[i + 1] - offs[i]) * D; e++) dpos_ref[e] += dy[offs[i] * D + e];
    for (int th = 1; th <= 2; th++) {
        threads_set(th);
        float db[NO] = {0}, dg[D] = {0}, dbeta[D] = {0}, dtab[V * D] = {0};
        static float dpos[T * D];
        memset(dpos, 0, sizeof dpos);
        linear_backward(NULL, NULL, db, dout, in, NULL, T, D, NO);
        layernorm_backward(NULL, dg, dbeta, dy, in, mean, rstd, g, T, D);
        embed_tokens_backward(dtab, dy, ids, T, D);
        pos_embed_backward(dpos, dy, offs, NS2, D);
        cr_expect(!memcmp(db, db_ref, sizeof db), "%d threads: bias gradient", th);
        cr_expect(!memcmp(dg, dg_ref, sizeof dg) && !memcmp(dbeta, dbeta_ref, sizeof dbeta), "%d threads: LayerNorm", th);
        cr_expect(!memcmp(dtab, dtab_ref, sizeof dtab), "%d threads: token table", th);
        cr_expect(!memcmp(dpos, dpos_ref, sizeof dpos), "%d threads: position table", th);
    }
    threads_set(1);
}
