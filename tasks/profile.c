#include "tasks/profile.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/flops.h"
#include "core/mem.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/status.h"

void profile_options_default(ProfileOptions *o) {
    memset(o, 0, sizeof *o);
    o->vocab = 257;
    o->classes = 2;
    o->batch = 8;
    o->threads = 1;
    o->seed = 1;
    o->min_time = 1.0;
    o->min_reps = 3;
}

const char *profile_status_name(ProfileStatus s) {
    switch (s) {
    case PROFILE_OK: return "ok";
    case PROFILE_SKIPPED: return "skipped";
    case PROFILE_TRAIN_SKIPPED: return "train-skipped";
    case PROFILE_NOMEM: return "out-of-memory";
    }
    return "?";
}

size_t profile_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (size_t)pages * (size_t)page;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void progress(const ProfileOptions *o, const char *fmt, ...) {
    if (!o->progress) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->progress(o->progress_ctx, msg);
}

static int stopped(const ProfileOptions *o) { return o->stop && *o->stop; }

// Saturating a * b for byte counts.
static size_t mul_sat(size_t a, size_t b) {
    if (a && b > (size_t)-1 / a) return (size_t)-1;
    return a * b;
}

// A random batch of `batch` samples of n ids each, all buffers through mem_alloc so that they
// count in the peak like everything else the run holds.
typedef struct {
    Batch b;
    size_t *offsets;
    int32_t *ids, *labels;
    float *logits, *dlogits;
} RandomBatch;

static void random_batch_free(RandomBatch *rb) {
    mem_free(rb->offsets); mem_free(rb->ids); mem_free(rb->labels);
    mem_free(rb->logits); mem_free(rb->dlogits);
    memset(rb, 0, sizeof *rb);
}

static int random_batch_make(RandomBatch *rb, size_t batch, size_t n, size_t vocab, size_t classes,
                             uint64_t *rng) {
    memset(rb, 0, sizeof *rb);
    size_t tokens = mul_sat(batch, n);
    if (tokens == (size_t)-1 || tokens > (size_t)-1 / sizeof(int32_t)) return MB_ERR_NOMEM;
    rb->offsets = mem_alloc((batch + 1) * sizeof *rb->offsets);
    rb->ids = mem_alloc(tokens * sizeof *rb->ids);
    rb->labels = mem_alloc(batch * sizeof *rb->labels);
    rb->logits = mem_alloc(batch * classes * sizeof *rb->logits);
    rb->dlogits = mem_alloc(batch * classes * sizeof *rb->dlogits);
    if (!rb->offsets || !rb->ids || !rb->labels || !rb->logits || !rb->dlogits) {
        random_batch_free(rb);
        return MB_ERR_NOMEM;
    }
    for (size_t i = 0; i <= batch; i++) rb->offsets[i] = i * n;
    for (size_t t = 0; t < tokens; t++) rb->ids[t] = (int32_t)rng_below(rng, vocab);
    for (size_t i = 0; i < batch; i++) rb->labels[i] = (int32_t)rng_below(rng, classes);
    rb->b = (Batch){.n = batch, .offsets = rb->offsets, .ids = rb->ids, .feats = NULL, .feat_dim = 0,
                    .labels = rb->labels};
    return MB_OK;
}

// Growable list of repetition times with median/min/max.
typedef struct { double *t; size_t n, cap; } Times;

static int times_push(Times *ts, double v) {
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? 2 * ts->cap : 16;
        double *t = realloc(ts->t, cap * sizeof *t);
        if (!t) return MB_ERR_NOMEM;
        ts->t = t; ts->cap = cap;
    }
    ts->t[ts->n++] = v;
    return MB_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void times_summary(Times *ts, double *med, double *mn, double *mx) {
    qsort(ts->t, ts->n, sizeof *ts->t, cmp_double);
    size_t n = ts->n;
    *med = n % 2 ? ts->t[n / 2] : 0.5 * (ts->t[n / 2 - 1] + ts->t[n / 2]);
    *mn = ts->t[0];
    *mx = ts->t[n - 1];
}

// One training step as it is timed: zero grads, forward keeping activations, loss, backward,
// AdamW step (with clipping). The FLOP counter, when installed by the caller, is removed
// before the optimizer step: SPEC §6 training FLOPs are forward + backward.
static int train_step(Model *m, Optimizer *opt, RandomBatch *rb, size_t classes, char *err, size_t errlen) {
    model_zero_grad(m);
    int rc = model_forward(m, &rb->b, 1, rb->logits, err, errlen);
    if (rc) return rc;
    memset(rb->dlogits, 0, rb->b.n * classes * sizeof *rb->dlogits);
    model_loss(rb->logits, rb->labels, rb->b.n, classes, rb->dlogits);
    model_backward(m, &rb->b, rb->dlogits);
    FlopCounter *fc = flops_active();
    flops_install(NULL);
    optimizer_step(opt, m);
    flops_install(fc);
    return MB_OK;
}

// Repeats fn until min_time and min_reps are both reached; fills median/min/max per sample (ms).
typedef int (*PassFn)(void *ctx, char *err, size_t errlen);

static int time_passes(const ProfileOptions *o, PassFn fn, void *ctx, size_t batch, double *med,
                       double *mn, double *mx, size_t *reps, char *err, size_t errlen) {
    Times ts = {0};
    double total = 0;
    int rc = MB_OK;
    while (total < o->min_time || ts.n < o->min_reps) {
        if (stopped(o)) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); break; }
        double t0 = now_s();
        rc = fn(ctx, err, errlen);
        double dt = now_s() - t0;
        if (rc) break;
        total += dt;
        if ((rc = times_push(&ts, dt * 1e3 / (double)batch))) {
            mb_fail(err, errlen, rc, "out of memory for timing samples");
            break;
        }
    }
    if (!rc) {
        times_summary(&ts, med, mn, mx);
        *reps = ts.n;
    }
    free(ts.t);
    return rc;
}

typedef struct {
    Model *m;
    Optimizer *opt;
    RandomBatch *rb;
    size_t classes;
} PassCtx;

static int infer_pass(void *ctx, char *err, size_t errlen) {
    PassCtx *c = ctx;
    return model_forward(c->m, &c->rb->b, 0, c->rb->logits, err, errlen);
}

static int train_pass(void *ctx, char *err, size_t errlen) {
    PassCtx *c = ctx;
    return train_step(c->m, c->opt, c->rb, c->classes, err, errlen);
}

// Inference: model + batch created after the peak reset; one counted warm-up forward; timing.
static int measure_infer(const ProfileOptions *o, const ModelConfig *cfg, ProfileResult *r, char *err,
                         size_t errlen) {
    uint64_t rng = rng_derive(o->seed, 1000 + r->seq_len);
    Model *m = NULL;
    RandomBatch rb = {0};
    mem_reset_peak();
    size_t base = mem_current();
    int rc = model_create(&m, cfg, o->seed, err, errlen);
    if (!rc && (rc = random_batch_make(&rb, o->batch, r->seq_len, o->vocab, o->classes, &rng)))
        mb_fail(err, errlen, rc, "out of memory for a %zu x %zu batch", o->batch, r->seq_len);
    if (!rc) {
        r->params = model_num_params(m);
        FlopCounter fc = {0};
        flops_install(&fc);
        rc = model_forward(m, &rb.b, 0, rb.logits, err, errlen);   // warm-up, counted, not timed
        flops_install(NULL);
        if (!rc) {
            r->flops_infer = fc.flops / (double)o->batch;
            r->macs_infer = fc.macs / (double)o->batch;
            AttnUsage u = model_last_usage(m);
            double s = u.samples ? (double)u.samples : 1.0;
            r->blocks_softmax = (double)u.count[ATTN_SOFTMAX] / s;
            r->blocks_efficient = (double)u.count[ATTN_EFFICIENT] / s;
            r->blocks_linformer = (double)u.count[ATTN_LINFORMER] / s;
            r->blocks_linear = (double)u.count[ATTN_LINEAR] / s;
            r->blocks_performer = (double)u.count[ATTN_PERFORMER] / s;
            r->blocks_nystromformer = (double)u.count[ATTN_NYSTROM] / s;
            r->blocks_local = (double)u.count[ATTN_LOCAL] / s;
            r->blocks_bigbird = (double)u.count[ATTN_BIGBIRD] / s;
            progress(o, "%s N=%zu: inference, %.3g GFLOP/sample", method_name(r->method), r->seq_len,
                     r->flops_infer / 1e9);
            PassCtx ctx = {.m = m, .rb = &rb, .classes = o->classes};
            rc = time_passes(o, infer_pass, &ctx, o->batch, &r->infer_ms, &r->infer_ms_min, &r->infer_ms_max,
                             &r->infer_reps, err, errlen);
        }
    }
    r->peak_mem_infer = mem_peak() - base;
    random_batch_free(&rb);
    model_destroy(m);
    if (!rc) r->gflops_infer = r->flops_infer / (r->infer_ms * 1e-3) / 1e9;
    return rc;
}

static int measure_train(const ProfileOptions *o, const ModelConfig *cfg, ProfileResult *r, char *err,
                         size_t errlen) {
    uint64_t rng = rng_derive(o->seed, 1000 + r->seq_len);   // same tokens as inference
    Model *m = NULL;
    Optimizer *opt = NULL;
    RandomBatch rb = {0};
    AdamWConfig ac;
    adamw_config_default(&ac, 1000000);
    ac.warmup_steps = 0;   // a real update from the first step
    mem_reset_peak();
    size_t base = mem_current();
    int rc = model_create(&m, cfg, o->seed, err, errlen);
    if (!rc) rc = optimizer_create(&opt, m, &ac, err, errlen);
    if (!rc && (rc = random_batch_make(&rb, o->batch, r->seq_len, o->vocab, o->classes, &rng)))
        mb_fail(err, errlen, rc, "out of memory for a %zu x %zu batch", o->batch, r->seq_len);
    if (!rc) {
        FlopCounter fc = {0};
        flops_install(&fc);
        rc = train_step(m, opt, &rb, o->classes, err, errlen);   // warm-up, counted, not timed
        flops_install(NULL);
        if (!rc) {
            r->flops_train = fc.flops / (double)o->batch;
            r->macs_train = fc.macs / (double)o->batch;
            progress(o, "%s N=%zu: training, %.3g GFLOP/sample", method_name(r->method), r->seq_len,
                     r->flops_train / 1e9);
            PassCtx ctx = {.m = m, .opt = opt, .rb = &rb, .classes = o->classes};
            rc = time_passes(o, train_pass, &ctx, o->batch, &r->train_ms, &r->train_ms_min, &r->train_ms_max,
                             &r->train_reps, err, errlen);
        }
    }
    r->peak_mem_train = mem_peak() - base;
    random_batch_free(&rb);
    optimizer_destroy(opt);
    model_destroy(m);
    if (!rc) r->gflops_train = r->flops_train / (r->train_ms * 1e-3) / 1e9;
    return rc;
}

int profile_measure(const ProfileOptions *o, Method method, size_t n, ProfileResult *r, char *err,
                    size_t errlen) {
    memset(r, 0, sizeof *r);
    r->method = method;
    r->seq_len = n;
    r->batch = o->batch;
    r->threads = o->threads;
    r->status = PROFILE_OK;
    r->kernels = kernels_active();
    if (n == 0 || o->batch == 0 || o->vocab == 0 || o->classes < 2)
        return mb_fail(err, errlen, MB_ERR_USAGE, "profile: sequence length, batch and vocab must be > 0");
    ModelConfig cfg;
    model_config_default(&cfg, method, o->vocab, 0, n, o->classes);
    cfg.softmax_impl = o->softmax_impl;
    if (o->configure) o->configure(o->configure_ctx, &cfg);
    r->softmax_impl = cfg.softmax_impl;
    int rc = model_config_check(&cfg, err, errlen);
    if (rc) return rc;
    r->need_infer = mul_sat(model_bytes_needed(&cfg, n, 0), o->batch);
    r->need_train = o->train ? mul_sat(model_bytes_needed(&cfg, n, 1), o->batch) : 0;
    int skip_infer = o->mem_limit && r->need_infer > o->mem_limit;
    int skip_train = o->train && o->mem_limit && r->need_train > o->mem_limit;
    if (skip_infer) {
        r->status = PROFILE_SKIPPED;
        r->peak_mem_infer = r->need_infer;
        r->peak_mem_train = r->need_train;
        progress(o, "%s N=%zu: skipped, needs %zu bytes > limit %zu", method_name(method), n, r->need_infer,
                 o->mem_limit);
        return MB_OK;
    }
    rc = measure_infer(o, &cfg, r, err, errlen);
    if (rc == MB_ERR_NOMEM) { r->status = PROFILE_NOMEM; return MB_OK; }
    if (rc) return rc;
    if (!o->train) return MB_OK;
    if (skip_train) {
        r->status = PROFILE_TRAIN_SKIPPED;
        r->peak_mem_train = r->need_train;
        progress(o, "%s N=%zu: training skipped, needs %zu bytes > limit %zu", method_name(method), n,
                 r->need_train, o->mem_limit);
        return MB_OK;
    }
    rc = measure_train(o, &cfg, r, err, errlen);
    if (rc == MB_ERR_NOMEM) { r->status = PROFILE_NOMEM; return MB_OK; }
    if (rc) return rc;
    r->trained = 1;
    return MB_OK;
}

static const char *const k_columns[] = {
    "method", "seq_len", "batch", "threads", "params",
    "flops_infer_per_sample", "flops_train_per_sample", "macs_infer_per_sample",
    "peak_mem_infer_bytes", "peak_mem_train_bytes", "infer_ms_per_sample", "train_ms_per_sample",
    "gflops_infer", "gflops_train", "blocks_softmax", "blocks_efficient", "status",
    // beyond the list: spread, repetitions, the computed need and the limit
    "blocks_linformer", "macs_train_per_sample", "infer_ms_min", "infer_ms_max", "infer_reps",
    "train_ms_min", "train_ms_max", "train_reps", "bytes_needed_infer", "bytes_needed_train",
    "mem_limit_bytes", "variant", "softmax_impl",
    "blocks_linear", "blocks_performer", "blocks_nystromformer", "blocks_local", "blocks_bigbird",
    "kernels",   // last: tests/test_kernels.c and test_portable.c read it as the row's last field
};

Table *profile_table_new(void) { return table_new(k_columns, sizeof k_columns / sizeof k_columns[0]); }

const char *profile_variant(const ProfileResult *r, char *buf, size_t n) {
    int dense = method_has_softmax(r->method) && r->softmax_impl == SOFTMAX_DENSE;
    snprintf(buf, n, "%s%s", method_name(r->method), dense ? "-dense" : "");
    return buf;
}

int profile_table_add(Table *t, const ProfileResult *r, size_t mem_limit) {
    size_t i = table_add_row(t);
    int rc = 0;
    rc |= table_set_str(t, i, "method", method_name(r->method));
    char variant[32];
    rc |= table_set_str(t, i, "variant", profile_variant(r, variant, sizeof variant));
    if (method_has_softmax(r->method)) rc |= table_set_str(t, i, "softmax_impl", softmax_impl_name(r->softmax_impl));
    rc |= table_set_num(t, i, "seq_len", (double)r->seq_len);
    rc |= table_set_num(t, i, "batch", (double)r->batch);
    rc |= table_set_num(t, i, "threads", (double)r->threads);
    rc |= table_set_str(t, i, "kernels", kernels_name(r->kernels));
    rc |= table_set_str(t, i, "status", profile_status_name(r->status));
    rc |= table_set_num(t, i, "bytes_needed_infer", (double)r->need_infer);
    rc |= table_set_num(t, i, "mem_limit_bytes", (double)mem_limit);
    if (r->need_train) rc |= table_set_num(t, i, "bytes_needed_train", (double)r->need_train);
    if (r->status == PROFILE_SKIPPED) {   // the computed need in the peak columns
        rc |= table_set_num(t, i, "peak_mem_infer_bytes", (double)r->peak_mem_infer);
        if (r->need_train) rc |= table_set_num(t, i, "peak_mem_train_bytes", (double)r->peak_mem_train);
        return rc ? MB_ERR_NOMEM : MB_OK;
    }
    if (r->status == PROFILE_NOMEM && r->infer_reps == 0) return rc ? MB_ERR_NOMEM : MB_OK;
    rc |= table_set_num(t, i, "params", (double)r->params);
    rc |= table_set_num(t, i, "flops_infer_per_sample", r->flops_infer);
    rc |= table_set_num(t, i, "macs_infer_per_sample", r->macs_infer);
    rc |= table_set_num(t, i, "peak_mem_infer_bytes", (double)r->peak_mem_infer);
    rc |= table_set_num(t, i, "infer_ms_per_sample", r->infer_ms);
    rc |= table_set_num(t, i, "infer_ms_min", r->infer_ms_min);
    rc |= table_set_num(t, i, "infer_ms_max", r->infer_ms_max);
    rc |= table_set_num(t, i, "infer_reps", (double)r->infer_reps);
    rc |= table_set_num(t, i, "gflops_infer", r->gflops_infer);
    rc |= table_set_num(t, i, "blocks_softmax", r->blocks_softmax);
    rc |= table_set_num(t, i, "blocks_efficient", r->blocks_efficient);
    rc |= table_set_num(t, i, "blocks_linformer", r->blocks_linformer);
    rc |= table_set_num(t, i, "blocks_linear", r->blocks_linear);
    rc |= table_set_num(t, i, "blocks_performer", r->blocks_performer);
    rc |= table_set_num(t, i, "blocks_nystromformer", r->blocks_nystromformer);
    rc |= table_set_num(t, i, "blocks_local", r->blocks_local);
    rc |= table_set_num(t, i, "blocks_bigbird", r->blocks_bigbird);
    if (r->status == PROFILE_TRAIN_SKIPPED)
        rc |= table_set_num(t, i, "peak_mem_train_bytes", (double)r->peak_mem_train);
    if (r->trained) {
        rc |= table_set_num(t, i, "flops_train_per_sample", r->flops_train);
        rc |= table_set_num(t, i, "macs_train_per_sample", r->macs_train);
        rc |= table_set_num(t, i, "peak_mem_train_bytes", (double)r->peak_mem_train);
        rc |= table_set_num(t, i, "train_ms_per_sample", r->train_ms);
        rc |= table_set_num(t, i, "train_ms_min", r->train_ms_min);
        rc |= table_set_num(t, i, "train_ms_max", r->train_ms_max);
        rc |= table_set_num(t, i, "train_reps", (double)r->train_reps);
        rc |= table_set_num(t, i, "gflops_train", r->gflops_train);
    }
    return rc ? MB_ERR_NOMEM : MB_OK;
}
