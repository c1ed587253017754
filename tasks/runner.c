// Train/evaluate one method and measure it; run several, each in its own process.
#include "tasks/runner.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/flops.h"
#include "core/kernels.h"
#include "core/mem.h"
#include "core/optim.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/threads.h"
#include "loaders/listops.h"
#include "tasks/progress.h"

const char *const RUN_COLUMNS[] = {
    "task", "method", "seed", "threads", "params", "max_len", "mean_tokens", "train_samples",
    "test_samples", "steps", "batch", "accuracy", "accuracy_stderr", "train_seconds",
    "train_samples_per_s", "infer_samples_per_s", "flops_infer_per_sample", "flops_train_per_sample",
    "macs_infer_per_sample", "peak_mem_train_bytes", "peak_mem_infer_bytes", "peak_rss_bytes",
    "blocks_softmax", "blocks_efficient",
};
const size_t RUN_N_COLUMNS = sizeof RUN_COLUMNS / sizeof RUN_COLUMNS[0];

void runspec_from_budget(RunSpec *rs, const Budget *b, const char *name) {
    rs->steps = b->steps;
    rs->time_budget = b->time_budget;
    rs->batch = b->batch;
    rs->train_limit = b->train_limit;
    rs->test_limit = b->test_limit;
    snprintf(rs->budget, sizeof rs->budget, "%s", name);
}

static int stopped(const RunSpec *rs) { return rs->stop && *rs->stop; }

// ---------------------------------------------------------------- data

int runner_load_split(const Task *t, const char *data_root, Split split, size_t limit, size_t max_len,
                      SeqSet *out, char *err, size_t errlen) {
    DataSpec spec = t->data;
    spec.limit = limit;
    if (max_len) spec.max_len = max_len;
    memset(out, 0, sizeof *out);
    int rc = dataset_load(&spec, data_root, split, out, err, errlen);
    if (rc) return rc;
    const char *sn = split == SPLIT_TRAIN ? "train" : split == SPLIT_TEST ? "test" : "val";
    if (out->n == 0) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: the %s split is empty", data_root, t->data.path, sn);
    }
    if (t->classes && out->n_classes != t->classes) {
        size_t got = out->n_classes;
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: %s split has %zu classes, task %s expects %zu",
                       data_root, t->data.path, sn, got, t->name, t->classes);
    }
    if ((out->vocab > 0) == (out->feat_dim > 0)) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "%s/%s: loader returned neither (or both) ids and features",
                       data_root, t->data.path);
    }
    return MB_OK;
}

int runner_check_fit(const ModelConfig *c, const SeqSet *s, const char *what, char *err, size_t errlen) {
    if (c->vocab != s->vocab || c->feat_dim != s->feat_dim) {
        char a[64], b[64];
        if (c->vocab) snprintf(a, sizeof a, "token ids (vocab %zu)", c->vocab);
        else snprintf(a, sizeof a, "continuous patches (width %zu)", c->feat_dim);
        if (s->vocab) snprintf(b, sizeof b, "token ids (vocab %zu)", s->vocab);
        else snprintf(b, sizeof b, "continuous patches (width %zu)", s->feat_dim);
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: the model takes %s but the task's data is %s", what, a, b);
    }
    if (c->classes != s->n_classes)
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: the model has %zu classes but the task has %zu",
                       what, c->classes, s->n_classes);
    return MB_OK;
}

// Packs chosen samples into one ragged batch, growing its buffers (through mem_alloc) as needed.
typedef struct {
    size_t cap_n, cap_tok, feat_dim;
    size_t *offsets;
    int32_t *ids, *labels;
    float *feats;
    Batch b;
} Packer;

static void packer_free(Packer *p) {
    mem_free(p->offsets); mem_free(p->ids); mem_free(p->labels); mem_free(p->feats);
    memset(p, 0, sizeof *p);
}

static int packer_fill(Packer *p, const SeqSet *s, const size_t *idx, size_t n) {
    size_t tok = 0;
    for (size_t i = 0; i < n; i++) tok += s->items[idx[i]].len;
    if (n > p->cap_n) {
        mem_free(p->offsets); mem_free(p->labels);
        p->offsets = mem_alloc((n + 1) * sizeof *p->offsets);
        p->labels = mem_alloc(n * sizeof *p->labels);
        if (!p->offsets || !p->labels) return MB_ERR_NOMEM;
        p->cap_n = n;
    }
    if (tok > p->cap_tok || !(s->vocab ? (void *)p->ids : (void *)p->feats)) {
        size_t c = tok > 2 * p->cap_tok ? tok : 2 * p->cap_tok;
        if (c < 1) c = 1;
        mem_free(p->ids); mem_free(p->feats);
        p->ids = NULL; p->feats = NULL;
        if (s->vocab) p->ids = mem_alloc(c * sizeof *p->ids);
        else p->feats = mem_alloc(c * s->feat_dim * sizeof *p->feats);
        if (!p->ids && !p->feats) return MB_ERR_NOMEM;
        p->cap_tok = c;
    }
    size_t off = 0;
    p->offsets[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const Sequence *q = &s->items[idx[i]];
        if (s->vocab) seq_ids_to_i32(q, p->ids + off);   // compact ids widened for the batch
        else memcpy(p->feats + off * s->feat_dim, q->feats, q->len * s->feat_dim * sizeof *p->feats);
        off += q->len;
        p->offsets[i + 1] = off;
        p->labels[i] = q->label;
    }
    p->b = (Batch){.n = n, .offsets = p->offsets, .ids = s->vocab ? p->ids : NULL,
                   .feats = s->vocab ? NULL : p->feats, .feat_dim = s->vocab ? 0 : s->feat_dim,
                   .labels = p->labels};
    return MB_OK;
}

const char *runner_data_root(const char *flag) {
    if (flag && *flag) return flag;
    const char *env = getenv("MAELRE_DATA");
    return env && *env ? env : "data";
}

int runner_ensure_data(const Task *t, const char *root, FILE *note, char *err, size_t errlen) {
    char dir[PATH_MAX];
    task_data_path(t, root, dir, sizeof dir);
    if (task_data_present(t, root)) return MB_OK;
    if (!strncmp(t->data.source, "listops", 7)) {
        if (note) {
            fprintf(note, "maelre-bench: no ListOps data at %s: generating it there now (LRA grammar, "
                          "96000/2000/2000 trees of 501-1999 tokens, seed 0; done once)\n", dir);
            fflush(note);
        }
        ListopsStats stats;
        int rc = listops_generate(dir, 0, 96000, 2000, 2000, &stats, err, errlen);
        if (rc) return rc;
        if (note) fprintf(note, "maelre-bench: wrote %s/basic_{train,val,test}.tsv (%zu trees drawn)\n", dir, stats.trees_tried);
        return MB_OK;
    }
    return mb_fail(err, errlen, MB_ERR_DATA,
                   "%s: no data for task %s. Download it from %s and put it at %s "
                   "(or point --data-root / MAELRE_DATA at the folder that holds %s)",
                   dir, t->name, t->download[0] ? t->download : "its official source", dir, t->data.path);
}

// ---------------------------------------------------------------- evaluation

int runner_evaluate(Model *m, const SeqSet *test, size_t batch, volatile sig_atomic_t *stop, EvalResult *r,
                    char *err, size_t errlen) {
    // test: n samples; logits (batch, classes)
    memset(r, 0, sizeof *r);
    const ModelConfig *c = model_config(m);
    int rc = runner_check_fit(c, test, "evaluation", err, errlen);
    if (rc) return rc;
    if (batch == 0) batch = 1;
    Packer pk = {0};
    size_t *idx = mem_alloc(batch * sizeof *idx);
    float *logits = mem_alloc(batch * c->classes * sizeof *logits);
    if (!idx || !logits) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for evaluation buffers"); goto done; }

    // Warm-up: the first batch once, neither timed nor counted.
    size_t nb = test->n < batch ? test->n : batch;
    for (size_t i = 0; i < nb; i++) idx[i] = i;
    if (packer_fill(&pk, test, idx, nb)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
    if ((rc = model_forward(m, &pk.b, 0, logits, err, errlen))) goto done;

    FlopCounter fc = {0};
    double tok = 0;
    double t0 = clock_seconds();
    for (size_t start = 0; start < test->n; start += batch) {
        if (stop && *stop) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); goto done; }
        size_t n = test->n - start < batch ? test->n - start : batch;
        for (size_t i = 0; i < n; i++) idx[i] = start + i;
        if (packer_fill(&pk, test, idx, n)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
        flops_install(&fc);
        rc = model_forward(m, &pk.b, 0, logits, err, errlen);
        flops_install(NULL);
        if (rc) goto done;
        AttnUsage u = model_last_usage(m);
        for (int k = 0; k < ATTN_KIND_COUNT; k++) r->blocks[k] += (double)u.count[k];
        for (size_t i = 0; i < n; i++) {
            const float *z = logits + i * c->classes;
            size_t best = 0;
            for (size_t j = 1; j < c->classes; j++) if (z[j] > z[best]) best = j;
            r->correct += (int32_t)best == pk.labels[i];
            tok += (double)test->items[start + i].len;
        }
    }
    r->seconds = clock_seconds() - t0;
    r->n = test->n;
    double nn = (double)r->n;
    r->accuracy = (double)r->correct / nn;
    r->accuracy_stderr = sqrt(r->accuracy * (1 - r->accuracy) / nn);
    r->samples_per_s = r->seconds > 0 ? nn / r->seconds : 0;
    r->flops_per_sample = fc.flops / nn;
    r->macs_per_sample = fc.macs / nn;
    r->mean_tokens = tok / nn;
    for (int k = 0; k < ATTN_KIND_COUNT; k++) r->blocks[k] /= nn;
    rc = MB_OK;
done:
    packer_free(&pk);
    mem_free(idx);
    mem_free(logits);
    return rc;
}

// ---------------------------------------------------------------- training

typedef struct {
    size_t *order, n, pos;
    uint64_t rng;
} Sampler;

// Seeded shuffle per epoch; a batch that crosses an epoch boundary continues in the next shuffle.
static void sampler_next(Sampler *s, size_t *idx, size_t b) {
    for (size_t i = 0; i < b; i++) {
        if (s->pos == s->n) { rng_shuffle(&s->rng, s->order, s->n); s->pos = 0; }
        idx[i] = s->order[s->pos++];
    }
}

static int save_checkpoint(const Model *m, const char *path, char *err, size_t errlen) {
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return mb_fail(err, errlen, MB_ERR_IO, "%s: path too long", path);
    int rc = model_save(m, tmp, err, errlen);
    if (rc) { unlink(tmp); return rc; }
    if (rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot rename checkpoint into place: %s", path, strerror(e));
    }
    return MB_OK;
}

int runner_train_eval(const Task *t, const char *data_root, Method method, const RunSpec *rs,
                      const char *ckpt_path, RunRow *row, char *err, size_t errlen) {
    memset(row, 0, sizeof *row);
    SeqSet train = {0}, test = {0};
    Model *m = NULL;
    Optimizer *opt = NULL;
    Packer pk = {0};
    Sampler sm = {0};
    size_t *idx = NULL;
    float *logits = NULL, *dlogits = NULL;
    double *loss_hist = NULL;
    int rc;
    char label[96];
    snprintf(label, sizeof label, "%s/%s", t->name, method_name(method));
    Progress pg;
    progress_init(&pg, rs->progress, label, rs->steps, rs->time_budget);

    if (rs->batch == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "batch must be > 0");
    if (rs->steps == 0 && !(rs->time_budget > 0))
        return mb_fail(err, errlen, MB_ERR_USAGE, "need steps > 0 or a time budget > 0");
    row->threads = threads_set(rs->threads);

    if ((rc = runner_load_split(t, data_root, SPLIT_TRAIN, rs->train_limit, 0, &train, err, errlen))) goto done;
    if ((rc = runner_load_split(t, data_root, SPLIT_TEST, rs->test_limit, 0, &test, err, errlen))) goto done;
    if (train.vocab != test.vocab || train.feat_dim != test.feat_dim || train.n_classes != test.n_classes) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: train and test splits disagree on vocabulary, patch width or classes",
                     data_root, t->data.path);
        goto done;
    }
    // No max length in the task (ts-<name>): the longest sample of the whole data set, subsets or
    // not, so a quick run and a full evaluation of its checkpoint see the same series.
    size_t max_len = t->data.max_len;
    if (!max_len)
        for (int s = 0; s < 2; s++) {
            const SeqSet *q = s ? &test : &train;
            size_t lim = s ? rs->test_limit : rs->train_limit;
            SeqSet all = {0};
            if (lim && q->n == lim) {   // a subset: measure the whole split (series sets are small)
                if ((rc = runner_load_split(t, data_root, s ? SPLIT_TEST : SPLIT_TRAIN, 0, 0, &all, err, errlen))) goto done;
                q = &all;
            }
            for (size_t i = 0; i < q->n; i++) if (q->items[i].len > max_len) max_len = q->items[i].len;
            seqset_free(&all);
        }
    ModelConfig cfg = task_model_config(t, method, train.vocab, train.feat_dim, max_len, train.n_classes);
    if ((rc = model_config_check(&cfg, err, errlen))) goto done;

    size_t B = rs->batch < train.n ? rs->batch : train.n;
    snprintf(row->task, sizeof row->task, "%s", t->name);
    row->method = method;
    row->seed = rs->seed;
    row->max_len = max_len;
    row->train_samples = train.n;
    row->test_samples = test.n;
    row->batch = B;
    row->model = cfg;

    // Training memory: everything the run holds through core/mem.h above this point.
    size_t base = mem_current();
    mem_reset_peak();
    if ((rc = model_create(&m, &cfg, rs->seed, err, errlen))) goto done;
    row->params = model_num_params(m);
    if (rs->time_budget > 0)
        progress_note(&pg, "%zu params; %zu train / %zu test samples (max_len %zu); %.0f s of training, batch %zu",
                      row->params, train.n, test.n, max_len, rs->time_budget, B);
    else
        progress_note(&pg, "%zu params; %zu train / %zu test samples (max_len %zu); %zu steps of batch %zu",
                      row->params, train.n, test.n, max_len, rs->steps, B);
    idx = mem_alloc(B * sizeof *idx);
    logits = mem_alloc(B * cfg.classes * sizeof *logits);
    dlogits = mem_alloc(B * cfg.classes * sizeof *dlogits);
    sm.order = malloc(train.n * sizeof *sm.order);
    if (!idx || !logits || !dlogits || !sm.order) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for training buffers"); goto done; }
    sm.n = train.n;
    for (size_t i = 0; i < sm.n; i++) sm.order[i] = i;
    sm.rng = rng_derive(rs->seed, 0x5EEDBA7C);   // same batches for every method
    rng_shuffle(&sm.rng, sm.order, sm.n);

    size_t total = rs->steps, warm = 0;
    double t_start = clock_seconds();
    if (rs->time_budget > 0) {
        // Calibration (warm-up, excluded from throughput): two forward+backward passes without
        // an optimizer step give the step time, hence the schedule length for the time budget.
        double c0 = clock_seconds();
        size_t calib = 2;
        for (size_t k = 0; k < calib; k++) {
            sampler_next(&sm, idx, B);
            if (packer_fill(&pk, &train, idx, B)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
            if ((rc = model_forward(m, &pk.b, 1, logits, err, errlen))) goto done;
            model_loss(logits, pk.labels, B, cfg.classes, dlogits);
            model_backward(m, &pk.b, dlogits);
            model_zero_grad(m);
        }
        double per = (clock_seconds() - c0) / (double)calib;
        double est = rs->time_budget / (per > 1e-6 ? per : 1e-6);
        total = est < 1 ? 1 : est > 1e9 ? 1000000000 : (size_t)est;
        progress_note(&pg, "time budget %.0fs: about %.3fs per step -> schedule of %zu steps", rs->time_budget, per, total);
    } else {
        warm = total >= 5 ? (total / 10 < 1 ? 1 : total / 10 > 5 ? 5 : total / 10) : 0;
    }
    AdamWConfig oc = t->optim;
    oc.total_steps = total;
    oc.warmup_steps = (size_t)lround((double)t->warmup_frac * (double)total);
    row->optim = oc;
    if ((rc = optimizer_create(&opt, m, &oc, err, errlen))) goto done;
    size_t hist_cap = 1024;
    loss_hist = malloc(hist_cap * sizeof *loss_hist);
    if (!loss_hist) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }

    FlopCounter fc = {0};
    size_t step = 0, timed_samples = 0;
    double timed_t0 = clock_seconds(), run_loss = 0;
    t_start = rs->time_budget > 0 ? clock_seconds() : t_start;
    progress_init(&pg, rs->progress, label, rs->time_budget > 0 ? 0 : total, rs->time_budget);
    for (;;) {
        if (rs->time_budget > 0) { if (clock_seconds() - t_start >= rs->time_budget) break; }
        else if (step >= total) break;
        if (stopped(rs)) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); goto done; }
        if (step == warm) { timed_t0 = clock_seconds(); timed_samples = 0; }
        sampler_next(&sm, idx, B);
        if (packer_fill(&pk, &train, idx, B)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
        model_zero_grad(m);
        flops_install(&fc);
        rc = model_forward(m, &pk.b, 1, logits, err, errlen);
        if (rc) { flops_install(NULL); goto done; }
        float loss = model_loss(logits, pk.labels, B, cfg.classes, dlogits);
        model_backward(m, &pk.b, dlogits);
        flops_install(NULL);
        optimizer_step(opt, m);
        if (!isfinite(loss)) {
            rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "training diverged at step %zu (loss %g); try a lower optim.lr", step, loss);
            goto done;
        }
        if (step == hist_cap) {
            double *nh = realloc(loss_hist, 2 * hist_cap * sizeof *nh);
            if (!nh) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
            loss_hist = nh;
            hist_cap *= 2;
        }
        loss_hist[step] = loss;
        step++;
        timed_samples += B;
        run_loss = step == 1 ? loss : 0.9 * run_loss + 0.1 * loss;
        double el = clock_seconds() - timed_t0;
        progress_step(&pg, step, run_loss, el > 0 && step > warm ? (double)timed_samples / el : 0, 0);
    }
    double t_end = clock_seconds();
    progress_step(&pg, step, run_loss,
                  t_end > timed_t0 && timed_samples ? (double)timed_samples / (t_end - timed_t0) : 0, 1);
    progress_done(&pg);
    row->steps = step;
    row->train_seconds = t_end - t_start;
    double timed = t_end - timed_t0;
    row->train_samples_per_s = timed > 0 && timed_samples ? (double)timed_samples / timed : 0;
    row->flops_train_per_sample = step ? fc.flops / (double)(step * B) : 0;
    row->macs_train_per_sample = step ? fc.macs / (double)(step * B) : 0;
    size_t tail = step / 10 ? step / 10 : 1;
    double ls = 0;
    for (size_t i = step - (step < tail ? step : tail); i < step; i++) ls += loss_hist[i];
    row->final_loss = step ? ls / (double)(step < tail ? step : tail) : NAN;
    row->peak_mem_train_bytes = mem_peak() - base;

    if (ckpt_path && (rc = save_checkpoint(m, ckpt_path, err, errlen))) goto done;
    optimizer_destroy(opt); opt = NULL;
    packer_free(&pk);
    mem_free(idx); mem_free(logits); mem_free(dlogits);
    idx = NULL; logits = dlogits = NULL;

    // Inference memory: a fresh model (from the checkpoint when there is one) and the eval buffers.
    if (ckpt_path) { model_destroy(m); m = NULL; }
    size_t base_i = mem_current();
    mem_reset_peak();
    if (ckpt_path && (rc = model_load(&m, ckpt_path, err, errlen))) goto done;
    if (ckpt_path) model_set_softmax_impl(m, cfg.softmax_impl);   // not in the checkpoint
    if (!ckpt_path) base_i = mem_current();   // model already resident: count activations only
    if (stopped(rs)) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); goto done; }
    EvalResult ev;
    if ((rc = runner_evaluate(m, &test, B, rs->stop, &ev, err, errlen))) goto done;
    row->peak_mem_infer_bytes = mem_peak() - base_i;
    row->accuracy = ev.accuracy;
    row->accuracy_stderr = ev.accuracy_stderr;
    row->infer_samples_per_s = ev.samples_per_s;
    row->flops_infer_per_sample = ev.flops_per_sample;
    row->macs_infer_per_sample = ev.macs_per_sample;
    row->mean_tokens = ev.mean_tokens;
    for (int k = 0; k < ATTN_KIND_COUNT; k++) row->blocks[k] = ev.blocks[k];
    progress_note(&pg, "accuracy %.4f +- %.4f on %zu test samples (%.1f samples/s)", ev.accuracy,
                  ev.accuracy_stderr, ev.n, ev.samples_per_s);
    rc = MB_OK;
done:
    progress_done(&pg);
    optimizer_destroy(opt);
    model_destroy(m);
    packer_free(&pk);
    mem_free(idx); mem_free(logits); mem_free(dlogits);
    free(sm.order);
    free(loss_hist);
    seqset_free(&train);
    seqset_free(&test);
    return rc;
}

// ---------------------------------------------------------------- rows as JSON

static const char *sched_name(Schedule s) {
    return s == SCHED_COSINE ? "cosine" : s == SCHED_LINEAR ? "linear" : "constant";
}

static cJSON *model_json(const ModelConfig *c) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", method_name(c->method));
    cJSON_AddNumberToObject(j, "vocab", (double)c->vocab);
    cJSON_AddNumberToObject(j, "feat_dim", (double)c->feat_dim);
    cJSON_AddNumberToObject(j, "max_len", (double)c->max_len);
    cJSON_AddNumberToObject(j, "dim", (double)c->dim);
    cJSON_AddNumberToObject(j, "heads", (double)c->heads);
    cJSON_AddNumberToObject(j, "mlp", (double)c->mlp);
    cJSON_AddNumberToObject(j, "blocks", (double)c->blocks);
    cJSON_AddNumberToObject(j, "classes", (double)c->classes);
    cJSON_AddNumberToObject(j, "ln_eps", c->ln_eps);
    if (c->method != METHOD_LINFORMER) cJSON_AddStringToObject(j, "softmax_impl", softmax_impl_name(c->softmax_impl));
    if (c->method == METHOD_LINFORMER) {
        cJSON_AddNumberToObject(j, "linformer_k", (double)c->linformer_k);
        cJSON_AddBoolToObject(j, "linformer_share_ef", c->linformer_share_ef);
    }
    if (c->method == METHOD_TOME) cJSON_AddNumberToObject(j, "tome_r_frac", c->tome_r_frac);
    if (c->method == METHOD_MAELRE) {
        cJSON *st = cJSON_AddArrayToObject(j, "maelre_stages");
        for (size_t i = 0; i < c->n_stages; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "blocks", (double)c->stages[i].blocks);
            cJSON_AddNumberToObject(s, "keep", c->stages[i].keep);
            cJSON_AddItemToArray(st, s);
        }
        cJSON_AddNumberToObject(j, "switch_threshold", (double)(c->switch_threshold ? c->switch_threshold : c->dim));
        cJSON_AddNumberToObject(j, "local_window", (double)c->local_window);
    }
    return j;
}

static cJSON *optim_json(const AdamWConfig *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", "adamw");
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "beta1", o->beta1);
    cJSON_AddNumberToObject(j, "beta2", o->beta2);
    cJSON_AddNumberToObject(j, "eps", o->eps);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(j, "clip_norm", o->clip_norm);
    cJSON_AddNumberToObject(j, "warmup_steps", (double)o->warmup_steps);
    cJSON_AddNumberToObject(j, "total_steps", (double)o->total_steps);
    cJSON_AddStringToObject(j, "schedule", sched_name(o->schedule));
    return j;
}

cJSON *run_key_json(const Task *t, const RunSpec *rs) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "task", t->name);
    cJSON_AddNumberToObject(j, "seed", (double)rs->seed);
    cJSON_AddNumberToObject(j, "threads", rs->threads);
    cJSON_AddNumberToObject(j, "steps", rs->time_budget > 0 ? 0 : (double)rs->steps);
    cJSON_AddNumberToObject(j, "time_budget", rs->time_budget);
    cJSON_AddNumberToObject(j, "batch", (double)rs->batch);
    cJSON_AddNumberToObject(j, "train_limit", (double)rs->train_limit);
    cJSON_AddNumberToObject(j, "test_limit", (double)rs->test_limit);
    // Only what changes the numbers: data, model and optimizer (not names, notes or budgets,
    // whose effective values are the fields above).
    cJSON *tc = cJSON_AddObjectToObject(j, "task_config");
    const char *keys[] = {"classes", "data", "model", "optim"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = t->json ? cJSON_GetObjectItemCaseSensitive(t->json, keys[i]) : NULL;
        if (v) cJSON_AddItemToObject(tc, keys[i], cJSON_Duplicate(v, 1));
    }
    return j;
}

cJSON *run_row_to_json(const RunRow *r, const Task *t, const RunSpec *rs) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "task", r->task);
    cJSON_AddStringToObject(j, "method", method_name(r->method));
    cJSON_AddNumberToObject(j, "seed", (double)r->seed);
    cJSON_AddNumberToObject(j, "threads", r->threads);
    cJSON_AddNumberToObject(j, "params", (double)r->params);
    cJSON_AddNumberToObject(j, "max_len", (double)r->max_len);
    cJSON_AddNumberToObject(j, "mean_tokens", r->mean_tokens);
    cJSON_AddNumberToObject(j, "train_samples", (double)r->train_samples);
    cJSON_AddNumberToObject(j, "test_samples", (double)r->test_samples);
    cJSON_AddNumberToObject(j, "steps", (double)r->steps);
    cJSON_AddNumberToObject(j, "batch", (double)r->batch);
    cJSON_AddNumberToObject(j, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(j, "accuracy_stderr", r->accuracy_stderr);
    cJSON_AddNumberToObject(j, "train_seconds", r->train_seconds);
    cJSON_AddNumberToObject(j, "train_samples_per_s", r->train_samples_per_s);
    cJSON_AddNumberToObject(j, "infer_samples_per_s", r->infer_samples_per_s);
    cJSON_AddNumberToObject(j, "flops_infer_per_sample", r->flops_infer_per_sample);
    cJSON_AddNumberToObject(j, "flops_train_per_sample", r->flops_train_per_sample);
    cJSON_AddNumberToObject(j, "macs_infer_per_sample", r->macs_infer_per_sample);
    cJSON_AddNumberToObject(j, "peak_mem_train_bytes", (double)r->peak_mem_train_bytes);
    cJSON_AddNumberToObject(j, "peak_mem_infer_bytes", (double)r->peak_mem_infer_bytes);
    cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)r->peak_rss_bytes);
    cJSON_AddNumberToObject(j, "blocks_softmax", r->blocks[ATTN_SOFTMAX]);
    cJSON_AddNumberToObject(j, "blocks_efficient", r->blocks[ATTN_EFFICIENT]);
    cJSON_AddNumberToObject(j, "blocks_linformer", r->blocks[ATTN_LINFORMER]);
    cJSON_AddNumberToObject(j, "macs_train_per_sample", r->macs_train_per_sample);
    cJSON_AddStringToObject(j, "kernels", kernels_name(kernels_active()));   // the kernel set that ran
    if (isfinite(r->final_loss)) cJSON_AddNumberToObject(j, "final_train_loss", r->final_loss);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddItemToObject(cfg, "task", t->json ? cJSON_Duplicate(t->json, 1) : cJSON_CreateNull());
    cJSON *run = cJSON_AddObjectToObject(cfg, "run");
    cJSON_AddStringToObject(run, "budget", rs->budget);
    cJSON_AddNumberToObject(run, "steps", rs->time_budget > 0 ? 0 : (double)rs->steps);
    cJSON_AddNumberToObject(run, "time_budget", rs->time_budget);
    cJSON_AddNumberToObject(run, "batch", (double)rs->batch);
    cJSON_AddNumberToObject(run, "train_limit", (double)rs->train_limit);
    cJSON_AddNumberToObject(run, "test_limit", (double)rs->test_limit);
    cJSON_AddNumberToObject(run, "seed", (double)rs->seed);
    cJSON_AddNumberToObject(run, "threads_requested", rs->threads);
    cJSON_AddItemToObject(cfg, "model", model_json(&r->model));
    cJSON_AddItemToObject(cfg, "optim", optim_json(&r->optim));
    cJSON_AddStringToObject(cfg, "conventions",
        "FLOPs analytic from actual shapes: 1 multiply-add = 2 FLOPs = 1 MAC, 1 FLOP per element-wise op; "
        "inference FLOPs/MACs = mean over the test set; training FLOPs = forward+backward over all steps / samples trained; "
        "throughput on a monotonic clock, warm-up excluded; peak_mem = core/mem.h high-water mark above the data, "
        "training and inference separately; peak_rss = ru_maxrss of the process that ran only this (task, method); "
        "blocks_* = mean blocks per test sample using that attention kind");
    cJSON_AddItemToObject(j, "config", cfg);
    cJSON_AddItemToObject(j, "run_key", run_key_json(t, rs));
    return j;
}

// ---------------------------------------------------------------- many methods, one process each

static int write_json_atomic(const char *path, const cJSON *j, char *err, size_t errlen) {
    char *s = cJSON_Print(j);
    if (!s) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory printing %s", path);
    size_t n = strlen(s);
    s[n] = '\n';   // cJSON_Print's buffer has room for the terminator we overwrite and rewrite
    int rc = write_file_atomic(path, s, n + 1, err, errlen);
    free(s);
    return rc;
}

static int read_row(cJSON **out, const char *path, char *err, size_t errlen) {
    int rc = json_read_file(out, path, err, errlen);
    if (rc == MB_ERR_USAGE) rc = MB_ERR_DATA;   // a damaged results file is bad data, not bad usage
    return rc;
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static void key_diff(const cJSON *a, const cJSON *b, char *buf, size_t n) {
    snprintf(buf, n, "settings");
    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) return;
    for (const cJSON *c = a->child; c; c = c->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(b, c->string);
        if (!o || !cJSON_Compare(c, o, 1)) { snprintf(buf, n, "%s", c->string); return; }
    }
    for (const cJSON *c = b->child; c; c = c->next)
        if (!cJSON_GetObjectItemCaseSensitive(a, c->string)) { snprintf(buf, n, "%s", c->string); return; }
}

// Child side of one method: train+eval, write the row, report a failure through the pipe.
static void child_main(const Task *t, const char *root, Method me, const RunSpec *rs, const char *out_dir, int fd) {
    char err[1024] = "", ckpt[PATH_MAX], rowp[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", out_dir, method_name(me));
    snprintf(rowp, sizeof rowp, "%s/.%s.json", out_dir, method_name(me));
    RunRow row;
    int rc = runner_train_eval(t, root, me, rs, ckpt, &row, err, sizeof err);
    if (rc == MB_OK) {
        cJSON *j = run_row_to_json(&row, t, rs);
        rc = j ? write_json_atomic(rowp, j, err, sizeof err) : mb_fail(err, sizeof err, MB_ERR_NOMEM, "out of memory");
        cJSON_Delete(j);
        if (rc) unlink(ckpt);
    }
    if (rc) {
        size_t n = strlen(err);
        ssize_t w = write(fd, err, n);
        (void)w;
    }
    close(fd);
    _exit(rc == MB_ERR_INTERRUPTED ? 130 : rc);
}

int runner_run(const Task *t, const char *root, const RunSpec *rs, const Method *methods,
               size_t n_methods, const char *out_dir, int force, Table **results, char *err, size_t errlen) {
    if (results) *results = NULL;
    int created = 0;
    {
        // mkdir -p: parents first; only the leaf is removed again when nothing was written.
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s", out_dir) >= (int)sizeof p || !*p)
            return mb_fail(err, errlen, MB_ERR_USAGE, "bad output folder '%s'", out_dir);
        for (char *s = p + 1; *s; s++)
            if (*s == '/') { *s = 0; mkdir(p, 0777); *s = '/'; }
        if (mkdir(out_dir, 0777) == 0) created = 1;
        else if (errno != EEXIST)
            return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create the output folder: %s", out_dir, strerror(errno));
    }
    struct stat st;
    if (stat(out_dir, &st) || !S_ISDIR(st.st_mode))
        return mb_fail(err, errlen, MB_ERR_IO, "%s: not a folder", out_dir);
    cJSON *key = run_key_json(t, rs);
    if (!key) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    int rc = MB_OK;
    char path[PATH_MAX];

    // Settings check for finished rows first, so a mismatch fails before any work.
    for (size_t i = 0; i < n_methods && !force; i++) {
        snprintf(path, sizeof path, "%s/.%s.json", out_dir, method_name(methods[i]));
        if (!file_exists(path)) continue;
        cJSON *row = NULL;
        if ((rc = read_row(&row, path, err, errlen))) goto out;
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(row, "run_key");
        if (!k || !cJSON_Compare(k, key, 1)) {
            char d[64];
            key_diff(k, key, d, sizeof d);
            cJSON_Delete(row);
            rc = mb_fail(err, errlen, MB_ERR_USAGE,
                         "%s: finished earlier with different settings (%s differs); use --force to rerun, or another --out",
                         path, d);
            goto out;
        }
        cJSON_Delete(row);
    }

    for (size_t i = 0; i < n_methods; i++) {
        Method me = methods[i];
        if (rs->stop && *rs->stop) { rc = MB_ERR_INTERRUPTED; break; }
        snprintf(path, sizeof path, "%s/.%s.json", out_dir, method_name(me));
        if (file_exists(path)) {
            if (!force) {
                if (rs->progress) fprintf(rs->progress, "%s/%s: finished earlier in %s, skipping (--force reruns)\n",
                                          t->name, method_name(me), out_dir);
                continue;
            }
            unlink(path);   // a forced rerun must not leave the old row behind if it fails
        }
        int fds[2];
        if (pipe(fds)) { rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "pipe: %s", strerror(errno)); break; }
        fflush(stdout);
        fflush(stderr);
        if (rs->progress) fflush(rs->progress);
        pid_t pid = fork();
        if (pid < 0) {
            close(fds[0]); close(fds[1]);
            rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            close(fds[0]);
            child_main(t, root, me, rs, out_dir, fds[1]);
        }
        close(fds[1]);
        int status = 0, forwarded = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        for (;;) {
            pid_t w = wait4(pid, &status, 0, &ru);
            if (w == pid) break;
            if (w < 0 && errno != EINTR) { status = -1; break; }
            if (rs->stop && *rs->stop && !forwarded) { kill(pid, SIGINT); forwarded = 1; }
        }
        char cerr[1024];
        ssize_t got = read(fds[0], cerr, sizeof cerr - 1);
        close(fds[0]);
        cerr[got > 0 ? got : 0] = 0;
        int code = status == -1 ? MB_ERR_INTERNAL
                 : WIFEXITED(status) ? WEXITSTATUS(status)
                 : WIFSIGNALED(status) && WTERMSIG(status) == SIGINT ? MB_ERR_INTERRUPTED
                 : MB_ERR_INTERNAL;
        if (code == MB_OK) {
            cJSON *row = NULL;
            if ((rc = read_row(&row, path, err, errlen))) break;
            cJSON *rss = cJSON_CreateNumber((double)ru.ru_maxrss * 1024.0);
            cJSON_ReplaceItemInObjectCaseSensitive(row, "peak_rss_bytes", rss);
            rc = write_json_atomic(path, row, err, errlen);
            cJSON_Delete(row);
            if (rc) break;
            continue;
        }
        if (code == MB_ERR_INTERRUPTED || (rs->stop && *rs->stop)) {
            rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted during %s; finished methods are kept in %s",
                         method_name(me), out_dir);
            break;
        }
        if (cerr[0]) rc = mb_fail(err, errlen, code, "%s", cerr);
        else if (WIFSIGNALED(status))
            rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "%s/%s: the worker process died (signal %d)%s", t->name,
                         method_name(me), WTERMSIG(status), WTERMSIG(status) == SIGKILL ? "; out of memory?" : "");
        else rc = mb_fail(err, errlen, code ? code : MB_ERR_INTERNAL, "%s/%s: the worker process failed (exit %d)",
                          t->name, method_name(me), code);
        break;
    }

    // Collect every finished row of these settings, in method order, and write the tables.
    {
        Table *tb = table_new(RUN_COLUMNS, RUN_N_COLUMNS);
        if (!tb) { if (!rc) rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto out; }
        for (int mi = 0; mi < METHOD_COUNT; mi++) {
            snprintf(path, sizeof path, "%s/.%s.json", out_dir, method_name((Method)mi));
            if (!file_exists(path)) continue;
            cJSON *row = NULL;
            char e2[512];
            if (read_row(&row, path, e2, sizeof e2)) continue;
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(row, "run_key");
            if (k && cJSON_Compare(k, key, 1)) {
                size_t r = table_add_row(tb);
                for (size_t c = 0; c < RUN_N_COLUMNS; c++) {
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, RUN_COLUMNS[c]);
                    if (cJSON_IsString(v)) table_set_str(tb, r, RUN_COLUMNS[c], v->valuestring);
                    else if (cJSON_IsNumber(v)) table_set_num(tb, r, RUN_COLUMNS[c], v->valuedouble);
                }
                const char *extra[] = {"blocks_linformer", "macs_train_per_sample", "final_train_loss", "kernels", "config"};
                for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) {
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, extra[e]);
                    if (v) table_set_json(tb, r, extra[e], cJSON_Duplicate(v, 1));
                }
            }
            cJSON_Delete(row);
        }
        if (table_rows(tb) > 0) {
            char p2[PATH_MAX];
            int w;
            snprintf(p2, sizeof p2, "%s/results.json", out_dir);
            w = table_write_json(tb, p2, err, errlen);
            if (!w) {
                snprintf(p2, sizeof p2, "%s/results.csv", out_dir);
                w = table_write_csv(tb, p2, err, errlen);
            }
            if (w && !rc) rc = w;
            if (results && !rc) { *results = tb; tb = NULL; }
            else if (results && rc == MB_ERR_INTERRUPTED) { *results = tb; tb = NULL; }
        }
        table_free(tb);
    }
out:
    cJSON_Delete(key);
    if (created) rmdir(out_dir);   // only succeeds when nothing was written
    return rc;
}
