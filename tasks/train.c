// One method: train with validation and model selection, save/resume its state, evaluate.
#include "tasks/train.h"
#include "tasks/train_state.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/flops.h"
#include "core/kernels.h"
#include "core/mem.h"
#include "core/optim.h"
#include "core/status.h"
#include "core/threads.h"
#include "results/table.h"
#include "tasks/dist.h"

static int stopped(const RunSpec *rs) { return rs->stop && *rs->stop; }

// ---------------------------------------------------------------- data parallel (SPEC §12)

#define DP_CHECK_EVERY 50   // steps between weight checksums compared across ranks

static int dp_fail(char *err, size_t errlen, const char *what) {
    return mb_fail(err, errlen, MB_ERR_INTERNAL, "data-parallel: MPI failed %s", what);
}

// Any rank stopped (SIGINT/SIGTERM)? Every rank gets the same answer.
static int dp_stopped(const RunSpec *rs, int dp) {
    if (!dp) return stopped(rs);
    int64_t s = stopped(rs);
    if (dist_allreduce_i64(&s, 1, DIST_MAX)) return 1;   // MPI broken: stop (the next call fails loudly)
    return s != 0;
}

// The slowest rank's seconds, so time-driven decisions agree.
static int dp_max_time(double *t, int dp, char *err, size_t errlen) {
    if (dp && dist_allreduce_f64(t, 1, DIST_MAX)) return dp_fail(err, errlen, "agreeing on a step time");
    return MB_OK;
}

// After each rank's forward and backward on its share: sums the gradients, the loss share and
// the step's FLOP/MAC counts (fc - before) over the ranks.
static int dp_sum_step(Model *m, FlopCounter *fc, const FlopCounter *before, float *loss, char *err,
                       size_t errlen) {
    double v[3] = {*loss, fc->flops - before->flops, fc->macs - before->macs};
    if (dist_sum_f32(model_grads(m), model_num_params(m))) return dp_fail(err, errlen, "summing gradients");
    if (dist_allreduce_f64(v, 3, DIST_SUM)) return dp_fail(err, errlen, "summing the loss and FLOPs");
    *loss = (float)v[0];
    fc->flops = before->flops + v[1];
    fc->macs = before->macs + v[2];
    return MB_OK;
}

// Same weights on every rank? FNV-1a of the parameter bytes, MIN and MAX over the ranks.
static int dp_check_weights(Model *m, size_t step, char *err, size_t errlen) {
    const unsigned char *b = (const unsigned char *)model_params(m);
    size_t n = model_num_params(m) * sizeof(float);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    int64_t lo = (int64_t)(h >> 1), hi = lo;
    if (dist_allreduce_i64(&lo, 1, DIST_MIN) || dist_allreduce_i64(&hi, 1, DIST_MAX))
        return dp_fail(err, errlen, "comparing weight checksums");
    if (lo != hi)
        return mb_fail(err, errlen, MB_ERR_INTERNAL,
                       "data-parallel: the weights of the ranks differ after step %zu (parameter checksums "
                       "%016llx to %016llx); the ranks no longer train the same model", step,
                       (unsigned long long)lo, (unsigned long long)hi);
    return MB_OK;
}

// ---------------------------------------------------------------- evaluation

int runner_evaluate_ex(Model *m, const SeqSet *s, size_t batch, volatile sig_atomic_t *stop, const EvalOptions *o,
                       EvalResult *r, char *err, size_t errlen) {
    // s: n samples; logits (batch, classes)
    memset(r, 0, sizeof *r);
    const ModelConfig *c = model_config(m);
    int rc = runner_check_fit(c, s, "evaluation", err, errlen);
    if (rc) return rc;
    if (s->n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "evaluation: the %s split is empty", o && o->what ? o->what : "");
    if (batch == 0) batch = 1;
    Progress *pg = o ? o->progress : NULL;
    const char *what = o && o->what ? o->what : "test";
    const int dp = o && o->data_parallel && dist_size() > 1;
    size_t lo = 0, hi = s->n;   // this rank's samples
    if (dp) {
        runner_share(s->n, dist_rank(), dist_size(), &lo, &hi);
        stop = NULL;            // the ranks must make the same passes
        if (o->pred) memset(o->pred, 0, s->n * sizeof *o->pred);   // summed over the ranks below
    }
    Packer pk = {0};
    size_t *idx = mem_alloc(batch * sizeof *idx);
    float *logits = mem_alloc(batch * c->classes * sizeof *logits);
    if (!idx || !logits) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for evaluation buffers"); goto done; }

    if ((!o || o->warmup) && hi > lo) {   // the first batch once, neither timed nor counted
        size_t nb = hi - lo < batch ? hi - lo : batch;
        for (size_t i = 0; i < nb; i++) idx[i] = lo + i;
        if (packer_fill(&pk, s, idx, nb)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
        if ((rc = model_forward(m, &pk.b, 0, logits, err, errlen))) goto done;
    }

    FlopCounter fc = {0};
    double tok = 0, loss = 0;
    double t0 = clock_seconds();
    double correct = 0;
    for (size_t start = lo; start < hi; start += batch) {
        if (stop && *stop) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); goto done; }
        size_t n = hi - start < batch ? hi - start : batch;
        for (size_t i = 0; i < n; i++) idx[i] = start + i;
        if (packer_fill(&pk, s, idx, n)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
        flops_install(&fc);
        rc = model_forward(m, &pk.b, 0, logits, err, errlen);
        flops_install(NULL);
        if (rc) goto done;
        loss += (double)model_loss(logits, pk.labels, n, c->classes, NULL) * (double)n;
        AttnUsage u = model_last_usage(m);
        for (int k = 0; k < ATTN_KIND_COUNT; k++) r->blocks[k] += (double)u.count[k];
        for (size_t i = 0; i < n; i++) {
            const float *z = logits + i * c->classes;
            size_t best = 0;
            for (size_t j = 1; j < c->classes; j++) if (z[j] > z[best]) best = j;
            correct += (int32_t)best == pk.labels[i];
            if (o && o->pred) o->pred[start + i] = (int32_t)best;
            tok += (double)s->items[start + i].len;
        }
        progress_eval(pg, what, start + n - lo, hi - lo, t0, 0);
    }
    r->seconds = clock_seconds() - t0;
    if (dp) {   // every rank's counts summed: the whole split's result on every rank
        double v[5 + ATTN_KIND_COUNT] = {correct, loss, tok, fc.flops, fc.macs};
        for (int k = 0; k < ATTN_KIND_COUNT; k++) v[5 + k] = r->blocks[k];
        if (dist_allreduce_f64(v, 5 + ATTN_KIND_COUNT, DIST_SUM) || dist_allreduce_f64(&r->seconds, 1, DIST_MAX) ||
            (o->pred && dist_allreduce_i32(o->pred, s->n, DIST_SUM))) {
            rc = dp_fail(err, errlen, "summing an evaluation");
            goto done;
        }
        correct = v[0]; loss = v[1]; tok = v[2]; fc.flops = v[3]; fc.macs = v[4];
        for (int k = 0; k < ATTN_KIND_COUNT; k++) r->blocks[k] = v[5 + k];
    }
    r->correct = (size_t)correct;
    r->n = s->n;
    double nn = (double)r->n;
    r->accuracy = (double)r->correct / nn;
    r->accuracy_stderr = sqrt(r->accuracy * (1 - r->accuracy) / nn);
    r->loss = loss / nn;
    r->samples_per_s = r->seconds > 0 ? nn / r->seconds : 0;
    r->flops_per_sample = fc.flops / nn;
    r->macs_per_sample = fc.macs / nn;
    r->mean_tokens = tok / nn;
    for (int k = 0; k < ATTN_KIND_COUNT; k++) r->blocks[k] /= nn;
    rc = MB_OK;
done:
    if (pg) progress_done(pg);
    packer_free(&pk);
    mem_free(idx);
    mem_free(logits);
    return rc;
}

int runner_evaluate(Model *m, const SeqSet *test, size_t batch, volatile sig_atomic_t *stop, EvalResult *r,
                    char *err, size_t errlen) {
    EvalOptions o = {.what = "test", .warmup = 1};
    return runner_evaluate_ex(m, test, batch, stop, &o, r, err, errlen);
}

// ---------------------------------------------------------------- predictions

static int write_predictions(const char *path, const SeqSet *test, const int32_t *best, const int32_t *last,
                             char *err, size_t errlen) {
    Buf b = {0};
    int rc = buf_printf(&b, "index,label,pred_best,pred_last\n");
    for (size_t i = 0; i < test->n && !rc; i++)
        rc = buf_printf(&b, "%zu,%d,%d,%d\n", i, (int)test->items[i].label, (int)best[i], (int)last[i]);
    if (rc) { free(b.p); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory writing %s", path); }
    rc = write_file_atomic(path, b.p, b.n, err, errlen);
    free(b.p);
    return rc;
}

// ---------------------------------------------------------------- training

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

static size_t ceil_div(size_t a, size_t b) { return b ? (a + b - 1) / b : 0; }

int runner_train_eval(const Task *t, const char *data_root, Method method, const RunSpec *rs,
                      const RunPaths *paths, RunRow *row, char *err, size_t errlen) {
    memset(row, 0, sizeof *row);
    RunPaths none = {0};
    if (!paths) paths = &none;
    // Data parallel: all ranks train, rank 0 writes; every rank may read a saved state.
    const int dp = rs->data_parallel && dist_size() > 1;
    RunPaths wr = *paths;
    if (dp && dist_rank() != 0) wr = none;
    const char *load_state = paths->state;
    paths = &wr;
    SeqSet train = {0}, val = {0}, test = {0};
    Model *m = NULL;
    Optimizer *opt = NULL;
    Packer pk = {0};
    Sampler sm = {0};
    Curves cv = {0};
    size_t *idx = NULL, *share = NULL;   // share: global batch indices of this rank's sequences
    float *logits = NULL, *dlogits = NULL, *best = NULL;
    int32_t *pred_best = NULL, *pred_last = NULL;
    char *key = NULL;
    int rc;
    char label[96], how[64] = "";
    snprintf(label, sizeof label, "%s/%s/seed%llu", t->name, method_name(method), (unsigned long long)rs->seed);
    Progress pg;
    progress_init(&pg, rs->progress, label, rs->steps, rs->time_budget);
    const int timed = rs->time_budget > 0;

    if (rs->batch == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "batch must be > 0");
    if (rs->steps == 0 && !(rs->epochs > 0) && !timed)
        return mb_fail(err, errlen, MB_ERR_USAGE, "need steps > 0, epochs > 0 or a time budget > 0");
    row->threads = threads_set(rs->threads);

    if ((rc = runner_load_splits(t, data_root, rs->train_limit, rs->test_limit, runspec_val_limit(rs), &train, &val, &test, how, sizeof how,
                                 err, errlen))) goto done;
    // No max length in the task (ts-<name>): the longest sample of the whole data set, subsets or
    // not, so a quick run and a full evaluation of its checkpoint see the same series.
    size_t max_len = t->data.max_len;
    if (!max_len) {
        for (int s = 0; s < 3; s++) {
            const SeqSet *q = s == 0 ? &train : s == 1 ? &val : &test;
            for (size_t i = 0; i < q->n; i++) if (seq_doc_len(q, i) > max_len) max_len = seq_doc_len(q, i);
        }
        for (int s = 0; s < 2; s++) {
            size_t lim = s ? rs->test_limit : rs->train_limit;
            if (!lim) continue;   // a subset: measure the whole split (series sets are small)
            SeqSet all = {0};
            if ((rc = runner_load_split(t, data_root, s ? SPLIT_TEST : SPLIT_TRAIN, 0, 0, &all, err, errlen))) goto done;
            for (size_t i = 0; i < all.n; i++) if (seq_doc_len(&all, i) > max_len) max_len = seq_doc_len(&all, i);
            seqset_free(&all);
        }
    }
    ModelConfig cfg = task_model_config(t, method, train.vocab, train.feat_dim, max_len, train.n_classes);
    if ((rc = model_config_check(&cfg, err, errlen))) goto done;

    size_t B = rs->batch < train.n ? rs->batch : train.n;
    snprintf(row->task, sizeof row->task, "%s", t->name);
    snprintf(row->kernels, sizeof row->kernels, "%s", kernels_name(kernels_active()));
    row->method = method;
    row->seed = rs->seed;
    row->max_len = max_len;
    row->train_samples = train.n;
    row->val_samples = val.n;
    row->test_samples = test.n;
    row->batch = B;
    row->model = cfg;
    {
        int32_t maj = runner_majority_class(&train);
        size_t hit = 0;
        for (size_t i = 0; i < test.n; i++) hit += test.items[i].label == maj;
        row->majority_accuracy = (double)hit / (double)test.n;
    }

    // Training memory: everything the run holds through core/mem.h above this point.
    size_t base = mem_current();
    mem_reset_peak();
    if ((rc = model_create(&m, &cfg, rs->seed, err, errlen))) goto done;
    size_t np = model_num_params(m);
    row->params = np;
    size_t total = rs->epochs > 0 && !timed ? (size_t)ceil(rs->epochs * (double)train.n / (double)B) : rs->steps;
    if (!timed && total == 0) total = 1;
    size_t eval_every = rs->eval_every;
    if (!eval_every && !timed) {
        eval_every = ceil_div(total, 10);
        if (rs->epochs > 0) {
            size_t per_epoch = ceil_div(train.n, B), cap = ceil_div(total, 100);
            eval_every = per_epoch > cap ? per_epoch : cap;
        }
        if (!eval_every) eval_every = 1;
    }
    {
        char bud[96];
        if (timed) snprintf(bud, sizeof bud, "%.0f s of training", rs->time_budget);
        else if (rs->epochs > 0) snprintf(bud, sizeof bud, "%g epochs = %zu steps", rs->epochs, total);
        else snprintf(bud, sizeof bud, "%zu steps", total);
        char ev[64];
        if (eval_every) snprintf(ev, sizeof ev, "every %zu steps", eval_every);
        else snprintf(ev, sizeof ev, "every %.0f s of training", rs->time_budget / 10);
        progress_note(&pg, "%zu params; %zu train / %zu val (%s) / %zu test samples (max_len %zu); %s, batch %zu; "
                      "validation %s%s", np, train.n, val.n, how, test.n, max_len, bud, B, ev,
                      rs->patience && !timed ? " with early stopping" : "");
    }
    idx = mem_alloc(B * sizeof *idx);
    share = mem_alloc(2 * B * sizeof *share);   // pairs: two documents per sample
    logits = mem_alloc(B * cfg.classes * sizeof *logits);
    dlogits = mem_alloc(B * cfg.classes * sizeof *dlogits);
    best = mem_alloc(np * sizeof *best);
    if (!idx || !share || !logits || !dlogits || !best || sampler_init(&sm, train.n, rs->seed)) {
        rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for training buffers");
        goto done;
    }
    memcpy(best, model_params(m), np * sizeof *best);

    AdamWConfig oc = t->optim;
    oc.total_steps = timed ? 1 : total;
    oc.warmup_steps = timed ? 0 : (size_t)lround((double)t->warmup_frac * (double)total);
    if ((rc = optimizer_create(&opt, m, &oc, err, errlen))) goto done;

    TrainCounters tc = {0};
    tc.best_acc = -1;
    tc.best_loss = INFINITY;
    tc.next_eval = eval_every;
    tc.next_eval_t = timed ? rs->time_budget / 10 : 0;
    {
        cJSON *kj = run_key_json(t, rs);
        if (kj) cJSON_AddStringToObject(kj, "method", method_name(method));
        key = kj ? cJSON_PrintUnformatted(kj) : NULL;
        cJSON_Delete(kj);
        if (!key) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    }
    if (load_state && access(load_state, F_OK) == 0) {
        if ((rc = state_load(load_state, key, m, opt, &sm, best, &cv, &tc, err, errlen))) goto done;
        progress_note(&pg, "resuming from %s at step %zu (%.1f s of training done)", load_state, tc.step,
                      tc.train_elapsed);
    }

    size_t warm = timed ? 2 : total >= 5 ? (total / 10 < 1 ? 1 : total / 10 > 5 ? 5 : total / 10) : 0;
    FlopCounter fc = {tc.flops, tc.macs};
    double last_save = clock_seconds();
    progress_init(&pg, rs->progress, label, timed ? 0 : total, rs->time_budget);
    for (;;) {
        if (dp_stopped(rs, dp)) {
            if (paths->state) {
                tc.flops = fc.flops; tc.macs = fc.macs;
                if ((rc = state_save(paths->state, key, m, opt, &sm, best, &cv, &tc, err, errlen))) goto done;
                progress_note(&pg, "interrupted at step %zu; state saved to %s", tc.step, paths->state);
            }
            rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted");
            goto done;
        }
        int end = tc.early_stopped || (timed ? tc.train_elapsed >= rs->time_budget : tc.step >= total);
        if (end && !tc.pending_eval) {
            // The last step gets its evaluation unless it already had one.
            int done_eval = cv.n ? !isnan(cv.rows[cv.n - 1].val) : tc.evaluations > 0;
            if (done_eval) break;
            tc.pending_eval = 1;
        }
        if (!end && !tc.pending_eval) {
            double s0 = clock_seconds();
            FlopCounter before = fc;
            sampler_next(&sm, idx, B);
            size_t lo = 0, hi = B;   // this rank's samples of the global batch
            if (dp) runner_share(B, dist_rank(), dist_size(), &lo, &hi);
            model_zero_grad(m);
            size_t per = train.pairs ? 2 : 1;   // dropout: the global index of each packed sequence
            for (size_t i = per * lo; i < per * hi; i++) share[i - per * lo] = i;
            model_set_dropout_step(m, rs->seed, tc.step, dp ? share : NULL);   // NULL: sample i is index i
            float loss = 0;
            if (hi > lo) {
                if (packer_fill(&pk, &train, idx + lo, hi - lo)) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory packing a batch"); goto done; }
                flops_install(&fc);
                rc = model_forward(m, &pk.b, 1, logits, err, errlen);
                if (rc) { flops_install(NULL); goto done; }
                loss = model_loss(logits, pk.labels, hi - lo, cfg.classes, dlogits);
                if (dp) {   // this share's part of the mean over the global batch
                    float w = (float)(hi - lo) / (float)B;
                    for (size_t i = 0; i < (hi - lo) * cfg.classes; i++) dlogits[i] *= w;
                    loss *= w;
                }
                model_backward(m, &pk.b, dlogits);
                flops_install(NULL);
            }
            if (dp && (rc = dp_sum_step(m, &fc, &before, &loss, err, errlen))) goto done;
            float lr;
            double el = clock_seconds() - s0;
            if (timed && (rc = dp_max_time(&el, dp, err, errlen))) goto done;
            el += tc.train_elapsed;   // the training clock at this update
            if (timed) {
                if (el > rs->time_budget) {   // this update would land past the budget: not applied
                    fc = before;
                    tc.train_elapsed = el;
                    continue;
                }
                lr = adamw_lr_at_frac(&oc, t->warmup_frac, el / rs->time_budget);
                if (el / rs->time_budget < t->warmup_frac) tc.warmup_steps_seen++;
            } else {
                lr = adamw_lr_at(&oc, tc.step);
            }
            optimizer_step_lr(opt, m, lr);
            if (!isfinite(loss)) {
                rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "training diverged at step %zu (loss %g); try a lower optim.lr",
                             tc.step, loss);
                goto done;
            }
            double dt = clock_seconds() - s0;
            if ((rc = dp_max_time(&dt, dp, err, errlen))) goto done;
            tc.train_elapsed += dt;
            tc.step++;
            if (dp && tc.step % DP_CHECK_EVERY == 0 && (rc = dp_check_weights(m, tc.step, err, errlen))) goto done;
            if (tc.step > warm) { tc.timed_seconds += dt; tc.timed_samples += B; }
            tc.run_loss = tc.step == 1 ? loss : 0.9 * tc.run_loss + 0.1 * loss;
            if (curves_push(&cv, (CurveRow){tc.step, tc.step * B, el, lr, loss, NAN})) {
                rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
                goto done;
            }
            progress_step_at(&pg, tc.step, tc.run_loss,
                             tc.timed_seconds > 0 ? (double)tc.timed_samples / tc.timed_seconds : 0, tc.train_elapsed, 0);
            if (eval_every ? tc.step >= tc.next_eval : tc.train_elapsed >= tc.next_eval_t) tc.pending_eval = 1;
        }
        if (tc.pending_eval) {
            progress_done(&pg);
            EvalOptions eo = {.progress = &pg, .what = "validation", .warmup = 0, .data_parallel = dp};
            EvalResult ev;
            if ((rc = runner_evaluate_ex(m, &val, B, rs->stop, &eo, &ev, err, errlen))) {
                if (rc == MB_ERR_INTERRUPTED) continue;   // the top of the loop saves the state (eval pending)
                goto done;
            }
            tc.pending_eval = 0;
            tc.evaluations++;
            if (eval_every) while (tc.next_eval <= tc.step) tc.next_eval += eval_every;
            else while (tc.next_eval_t <= tc.train_elapsed) tc.next_eval_t += rs->time_budget / 10;
            if (cv.n) cv.rows[cv.n - 1].val = ev.accuracy;
            int better = ev.accuracy > tc.best_acc || (ev.accuracy == tc.best_acc && ev.loss < tc.best_loss);
            if (better) {
                tc.best_acc = ev.accuracy;
                tc.best_loss = ev.loss;
                tc.best_step = tc.step;
                tc.since_best = 0;
                memcpy(best, model_params(m), np * sizeof *best);
            } else {
                tc.since_best++;
                if (rs->patience && !timed && tc.since_best >= rs->patience && !end) tc.early_stopped = 1;
            }
            progress_note(&pg, "step %zu: validation accuracy %.4f, loss %.4f (best %.4f at step %zu)%s", tc.step,
                          ev.accuracy, ev.loss, tc.best_acc, tc.best_step,
                          tc.early_stopped && !end ? "; early stop: no improvement in patience evaluations" : "");
        }
        if (paths->state && rs->checkpoint_every > 0 && clock_seconds() - last_save >= rs->checkpoint_every) {
            tc.flops = fc.flops; tc.macs = fc.macs;
            if ((rc = state_save(paths->state, key, m, opt, &sm, best, &cv, &tc, err, errlen))) goto done;
            if (paths->curves && (rc = write_curves(paths->curves, &cv, err, errlen))) goto done;
            last_save = clock_seconds();
        }
    }
    progress_step_at(&pg, tc.step, tc.run_loss, tc.timed_seconds > 0 ? (double)tc.timed_samples / tc.timed_seconds : 0,
                     tc.train_elapsed, 1);
    progress_done(&pg);
    if (dp && (rc = dp_check_weights(m, tc.step, err, errlen))) goto done;
    if (paths->state) {   // trained: an interruption from here on resumes at the test evaluation
        tc.flops = fc.flops; tc.macs = fc.macs;
        if ((rc = state_save(paths->state, key, m, opt, &sm, best, &cv, &tc, err, errlen))) goto done;
    }
    size_t step = tc.step;
    row->steps = step;
    row->best_step = tc.best_step;
    row->val_accuracy = tc.best_acc;
    row->evaluations = tc.evaluations;
    row->early_stopped = tc.early_stopped;
    row->train_seconds = tc.train_elapsed;
    row->train_samples_per_s = tc.timed_seconds > 0 && tc.timed_samples ? (double)tc.timed_samples / tc.timed_seconds : 0;
    row->flops_train_per_sample = step ? fc.flops / (double)(step * B) : 0;
    row->macs_train_per_sample = step ? fc.macs / (double)(step * B) : 0;
    size_t tail = step / 10 ? step / 10 : 1;
    if (tail > step) tail = step;
    double ls = 0;
    for (size_t i = step - tail; i < step; i++) ls += cv.rows[i].loss;
    row->final_loss = step ? ls / (double)tail : NAN;
    row->peak_mem_train_bytes = mem_peak() - base;
    if (timed) { oc.total_steps = step; oc.warmup_steps = tc.warmup_steps_seen; }
    row->optim = oc;
    if (paths->curves && (rc = write_curves(paths->curves, &cv, err, errlen))) goto done;

    // Last weights on test (unless they are the best ones): accuracy_last and pred_last.
    pred_best = mem_alloc(test.n * sizeof *pred_best);
    pred_last = mem_alloc(test.n * sizeof *pred_last);
    if (!pred_best || !pred_last) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    int same = tc.best_step == step;
    double acc_last = 0;
    if (!same) {
        EvalOptions eo = {.progress = &pg, .what = "test (last weights)", .pred = pred_last, .warmup = 0,
                          .data_parallel = dp};
        EvalResult ev;
        if ((rc = runner_evaluate_ex(m, &test, B, rs->stop, &eo, &ev, err, errlen))) goto done;
        acc_last = ev.accuracy;
        memcpy(model_params(m), best, np * sizeof *best);
    }
    optimizer_destroy(opt); opt = NULL;
    packer_free(&pk);
    model_set_dropout_step(m, rs->seed, tc.step, NULL);   // share is freed next
    mem_free(idx); mem_free(share); mem_free(logits); mem_free(dlogits); mem_free(best);
    idx = share = NULL; logits = dlogits = best = NULL;

    // The best weights: saved as the checkpoint, and measured from a fresh model loaded from it
    // (inference memory: that model and the eval buffers).
    if (paths->ckpt) {
        if ((rc = save_checkpoint(m, paths->ckpt, err, errlen))) goto done;
        model_destroy(m); m = NULL;
    }
    size_t base_i = mem_current();
    mem_reset_peak();
    if (paths->ckpt && (rc = model_load(&m, paths->ckpt, err, errlen))) goto done;
    if (paths->ckpt) model_set_softmax_impl(m, cfg.softmax_impl);   // not in the checkpoint
    if (!paths->ckpt) base_i = mem_current();   // model already resident: count activations only
    if (dp_stopped(rs, dp)) { rc = mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted"); goto done; }
    EvalResult ev;
    EvalOptions eo = {.progress = &pg, .what = "test", .pred = pred_best, .warmup = 1, .data_parallel = dp};
    if ((rc = runner_evaluate_ex(m, &test, B, rs->stop, &eo, &ev, err, errlen))) goto done;
    row->peak_mem_infer_bytes = mem_peak() - base_i;
    row->accuracy = ev.accuracy;
    row->accuracy_stderr = ev.accuracy_stderr;
    row->accuracy_last = same ? ev.accuracy : acc_last;
    if (same) memcpy(pred_last, pred_best, test.n * sizeof *pred_last);
    row->infer_samples_per_s = ev.samples_per_s;
    row->flops_infer_per_sample = ev.flops_per_sample;
    row->macs_infer_per_sample = ev.macs_per_sample;
    row->mean_tokens = ev.mean_tokens;
    for (int k = 0; k < ATTN_KIND_COUNT; k++) row->blocks[k] = ev.blocks[k];
    if (paths->predictions && (rc = write_predictions(paths->predictions, &test, pred_best, pred_last, err, errlen)))
        goto done;
    progress_note(&pg, "accuracy %.4f +- %.4f on %zu test samples (best validation %.4f at step %zu of %zu; last "
                  "weights %.4f; majority class %.4f; %.1f samples/s)", ev.accuracy, ev.accuracy_stderr, ev.n,
                  row->val_accuracy, row->best_step, step, row->accuracy_last, row->majority_accuracy, ev.samples_per_s);
    rc = MB_OK;
done:
    progress_done(&pg);
    optimizer_destroy(opt);
    model_destroy(m);
    packer_free(&pk);
    mem_free(idx); mem_free(share); mem_free(logits); mem_free(dlogits); mem_free(best);
    mem_free(pred_best); mem_free(pred_last);
    sampler_free(&sm);
    free(cv.rows);
    free(key);
    seqset_free(&train);
    seqset_free(&val);
    seqset_free(&test);
    return rc;
}
