// Data for the runner: splits (with validation), batches, the sampler, ensuring data exists.
#include "tasks/run_data.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "core/rng.h"
#include "core/status.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "loaders/listops.h"
#include "loaders/pathfinder.h"
#include "loaders/pathfinder_gen.h"
#include "loaders/seqset.h"
#include "tasks/progress.h"

static const char *split_name(Split s) { return s == SPLIT_TRAIN ? "train" : s == SPLIT_TEST ? "test" : "val"; }

int runner_load_split(const Task *t, const char *data_root, Split split, size_t limit, size_t max_len,
                      SeqSet *out, char *err, size_t errlen) {
    DataSpec spec = t->data;
    spec.limit = limit;
    if (max_len) spec.max_len = max_len;
    memset(out, 0, sizeof *out);
    int rc = dataset_load(&spec, data_root, split, out, err, errlen);
    if (rc) return rc;
    const char *sn = split_name(split);
    if (out->n == 0 && split != SPLIT_VAL) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: the %s split is empty", data_root, t->data.path, sn);
    }
    if (t->classes && out->n_classes != t->classes) {
        size_t got = out->n_classes;
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: %s split has %zu classes, task %s expects %zu",
                       data_root, t->data.path, sn, got, t->name, t->classes);
    }
    if (out->n && (out->vocab > 0) == (out->feat_dim > 0)) {
        seqset_free(out);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "%s/%s: loader returned neither (or both) ids and features",
                       data_root, t->data.path);
    }
    return MB_OK;
}

double runner_holdout_fraction(size_t n_train) { return n_train >= 1000 ? 0.1 : 0.2; }

// An empty set with from's vocabulary, width and classes.
static int empty_like(const SeqSet *from, SeqSet *to, char *err, size_t errlen) {
    memset(to, 0, sizeof *to);
    to->vocab = from->vocab;
    to->feat_dim = from->feat_dim;
    to->pairs = from->pairs;
    if (from->class_names) return seqset_set_classes(to, (const char *const *)from->class_names, from->n_classes, err, errlen);
    to->n_classes = from->n_classes;
    return MB_OK;
}

// Moves the items with take[i] = 1 into *to (in order); the rest stay in *from, in order.
static int move_items(SeqSet *from, SeqSet *to, const unsigned char *take, char *err, size_t errlen) {
    int rc = empty_like(from, to, err, errlen);
    if (rc) return rc;
    size_t keep = 0;
    for (size_t i = 0; i < from->n; i++) {
        if (take[i]) {
            Sequence q = from->items[i];
            if ((rc = seqset_push(to, &q, err, errlen))) {
                // ownership did not move: put the rest back in place, free what moved
                for (size_t j = i; j < from->n; j++) from->items[keep++] = from->items[j];
                from->n = keep;
                seqset_free(to);
                return rc;
            }
        } else {
            from->items[keep++] = from->items[i];
        }
    }
    from->n = keep;
    return MB_OK;
}

int runner_holdout(SeqSet *from, SeqSet *to, double frac, uint64_t seed, char *err, size_t errlen) {
    size_t n = from->n, k = from->n_classes;
    unsigned char *take = calloc(n ? n : 1, 1);
    size_t *members = malloc((n ? n : 1) * sizeof *members);
    if (!take || !members) { free(take); free(members); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); }
    uint64_t r = rng_derive(seed, 0x7A11D);
    for (size_t c = 0; c < k; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) if ((size_t)from->items[i].label == c) members[m++] = i;
        if (m < 2) continue;                      // a class's only sample stays in train
        size_t h = (size_t)lround(frac * (double)m);
        if (h < 1) h = 1;
        if (h > m - 1) h = m - 1;
        rng_shuffle(&r, members, m);
        for (size_t i = 0; i < h; i++) take[members[i]] = 1;
    }
    free(members);
    int rc = move_items(from, to, take, err, errlen);
    free(take);
    return rc;
}

int runner_load_splits(const Task *t, const char *root, size_t train_limit, size_t test_limit, size_t val_limit,
                       SeqSet *train, SeqSet *val, SeqSet *test, char *how, size_t how_len,
                       char *err, size_t errlen) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    int rc;
    if ((rc = runner_load_split(t, root, SPLIT_TRAIN, train_limit, 0, train, err, errlen))) return rc;
    if ((rc = runner_load_split(t, root, SPLIT_TEST, test_limit, 0, test, err, errlen))) goto fail;
    const char *src = t->data.source;
    int own = !strcmp(src, "listops") || !strcmp(src, "listops-parens") || !strcmp(src, "tsv") ||
              !strcmp(src, "pathfinder") ||   // pathfinder: the 10% of its seeded 80/10/10 cut
              !strcmp(src, "aan");   // LRA Retrieval: new_aan_pairs.eval.tsv
    if (own) {   // loaders that read a real val split (or none: n = 0); never a stand-in for test
        if ((rc = runner_load_split(t, root, SPLIT_VAL, val_limit, 0, val, err, errlen))) goto fail;
        if (val->n) { if (how) snprintf(how, how_len, "own val split"); }
        else seqset_free(val);
    }
    if (!val->n && (!strcmp(src, "cifar10") || !strcmp(src, "cifar10-bin"))) {
        size_t nv = train->n / 10;
        unsigned char *take = calloc(train->n, 1);
        if (!take) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto fail; }
        for (size_t i = train->n - nv; i < train->n; i++) take[i] = 1;
        rc = move_items(train, val, take, err, errlen);
        free(take);
        if (rc) goto fail;
        if (how) snprintf(how, how_len, "last 10%% of train (LRA)");
    }
    if (!val->n) {
        double f = runner_holdout_fraction(train->n);
        seqset_free(val);
        if ((rc = runner_holdout(train, val, f, 0x5B117, err, errlen))) goto fail;
        if (how) snprintf(how, how_len, "stratified %.0f%% of train", 100 * f);
    }
    // The limit caps held-out validation splits too: validating ten times per run on 2,500
    // held-out IMDb reviews would cost vanilla more time than its training. Items cut here do
    // not go back to train, so the training set does not depend on the limit.
    if ((rc = seqset_limit(val, val_limit, err, errlen))) goto fail;
    if (train->n == 0 || val->n == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: %zu samples in train are too few for a train/validation split",
                     root, t->data.path, train->n + val->n);
        goto fail;
    }
    if (train->vocab != test->vocab || train->feat_dim != test->feat_dim || train->n_classes != test->n_classes ||
        train->vocab != val->vocab || train->feat_dim != val->feat_dim || train->n_classes != val->n_classes) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s/%s: train, validation and test splits disagree on vocabulary, "
                     "patch width or classes", root, t->data.path);
        goto fail;
    }
    return MB_OK;
fail:
    seqset_free(train);
    seqset_free(val);
    seqset_free(test);
    return rc;
}

int32_t runner_majority_class(const SeqSet *s) {
    size_t k = s->n_classes, best = 0;
    size_t *cnt = calloc(k ? k : 1, sizeof *cnt);
    if (!cnt) return 0;
    for (size_t i = 0; i < s->n; i++)
        if ((size_t)s->items[i].label < k) cnt[s->items[i].label]++;
    for (size_t c = 1; c < k; c++) if (cnt[c] > cnt[best]) best = c;
    free(cnt);
    return (int32_t)best;
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
    if (c->pairs != s->pairs)
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: the model takes %s but the task's data is %s", what,
                       c->pairs ? "pairs of documents" : "single samples", s->pairs ? "pairs of documents" : "single samples");
    if (c->classes != s->n_classes)
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: the model has %zu classes but the task has %zu",
                       what, c->classes, s->n_classes);
    return MB_OK;
}

void packer_free(Packer *p) {
    mem_free(p->offsets); mem_free(p->ids); mem_free(p->labels); mem_free(p->feats);
    memset(p, 0, sizeof *p);
}

// Pairs (s->pairs): sample i becomes documents 2i and 2i + 1 of the batch, labels stay one per
// sample; byte-stored tokens (Sequence.bytes) are expanded to ids here (id = byte + 1).
int packer_fill(Packer *p, const SeqSet *s, const size_t *idx, size_t n) {
    size_t tok = 0, nd = s->pairs ? 2 * n : n;
    for (size_t i = 0; i < n; i++) tok += s->items[idx[i]].len;
    if (nd > p->cap_n) {
        mem_free(p->offsets); mem_free(p->labels);
        p->offsets = mem_alloc((nd + 1) * sizeof *p->offsets);
        p->labels = mem_alloc(nd * sizeof *p->labels);
        if (!p->offsets || !p->labels) return MB_ERR_NOMEM;
        p->cap_n = nd;
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
    size_t off = 0, d = 0;
    p->offsets[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const Sequence *q = &s->items[idx[i]];
        if (s->vocab) seq_ids_to_i32(q, p->ids + off);   // compact ids (or bytes) widened for the batch
        else memcpy(p->feats + off * s->feat_dim, q->feats, q->len * s->feat_dim * sizeof *p->feats);
        if (s->pairs) p->offsets[++d] = off + (q->len - q->len2);
        off += q->len;
        p->offsets[++d] = off;
        p->labels[i] = q->label;
    }
    p->b = (Batch){.n = nd, .offsets = p->offsets, .ids = s->vocab ? p->ids : NULL,
                   .feats = s->vocab ? NULL : p->feats, .feat_dim = s->vocab ? 0 : s->feat_dim,
                   .labels = p->labels};
    return MB_OK;
}

void runner_share(size_t n, int rank, int ranks, size_t *lo, size_t *hi) {
    if (ranks < 1) ranks = 1;
    *lo = n * (size_t)rank / (size_t)ranks;
    *hi = n * (size_t)(rank + 1) / (size_t)ranks;
}

int sampler_init(Sampler *s, size_t n, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->order = malloc((n ? n : 1) * sizeof *s->order);
    if (!s->order) return MB_ERR_NOMEM;
    s->n = n;
    for (size_t i = 0; i < n; i++) s->order[i] = i;
    s->rng = rng_derive(seed, 0x5EEDBA7C);   // same batches for every method
    rng_shuffle(&s->rng, s->order, s->n);
    return MB_OK;
}

void sampler_next(Sampler *s, size_t *idx, size_t b) {
    for (size_t i = 0; i < b; i++) {
        if (s->pos == s->n) { rng_shuffle(&s->rng, s->order, s->n); s->pos = 0; }
        idx[i] = s->order[s->pos++];
    }
}

void sampler_free(Sampler *s) {
    free(s->order);
    memset(s, 0, sizeof *s);
}

const char *runner_data_root(const char *flag) {
    if (flag && *flag) return flag;
    const char *env = getenv("MAELRE_DATA");
    return env && *env ? env : "data";
}

// Pathfinder / Path-X generated on first use (SPEC §10.1): LRA's 200,000 images at 32 px (~210 s
// of CPU, ~2 min on 2 idle cores, ~0.8 GB on disk); at 128 px 200,000 cost ~18 min of CPU, so only
// PF_FIRST_USE_128 are made and the message says how to make the full set (README "Pathfinder").
#define PF_FIRST_USE_32 200000
#define PF_FIRST_USE_128 20000

typedef struct { FILE *note; double t0; size_t last; } PfProgress;

static void pf_progress(void *ctx, size_t done, size_t total) {
    PfProgress *p = ctx;
    if (!p->note || (done - p->last < total / 10 && done < total)) return;
    p->last = done;
    double el = clock_seconds() - p->t0;
    fprintf(p->note, "maelre-bench: %zu/%zu images (%.0f s, about %.0f s left)\n", done, total, el,
            el / (double)done * (double)(total - done));
    fflush(p->note);
}

static int runner_ensure_pathfinder(const Task *t, const char *root, FILE *note, char *err, size_t errlen) {
    char dir[PATH_MAX], why[1024];
    if (pathfinder_find(root, t->data.path, dir, sizeof dir, why, sizeof why) == MB_OK) return MB_OK;
    int size;
    PfDifficulty d;
    if (!pf_parse_path(t->data.path, &size, &d))
        return mb_fail(err, errlen, MB_ERR_DATA, "%s (data.path \"%s\" is not pathfinder<32|64|128>/<difficulty folder>, "
                       "so it cannot be generated)", why, t->data.path);
    size_t count = size == 32 ? PF_FIRST_USE_32 : PF_FIRST_USE_128;
    if (note) {
        fprintf(note, "maelre-bench: %s\nmaelre-bench: generating %zu %d-px %s Pathfinder images into %s/%s now (seed 0, "
                      "done once; %s)\n", why, count, size, pf_difficulty_name(d), root, t->data.path,
                size == 32 ? "LRA's full count; about 2 minutes on 2 idle cores, 0.8 GB on disk"
                           : "a SUBSET, about 1 minute on 2 idle cores: LRA used 200,000; for those run "
                             "`maelre-bench data pathfinder --size 128 --count 200000 --out ROOT`, ~10 minutes");
        fflush(note);
    }
    // In a child process: the generator runs OpenMP threads, and libgomp's thread pool does not
    // survive fork(), which run_task does next for every method (the worker would hang).
    int fds[2];
    if (pipe(fds)) return mb_fail(err, errlen, MB_ERR_INTERNAL, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        char e[1024] = "";
        PfProgress pg = {note, clock_seconds(), 0};
        PfStats st;
        int rc = pf_generate(root, size, d, count, 0, pf_progress, &pg, &st, e, sizeof e);
        if (rc) {
            ssize_t w = write(fds[1], e, strlen(e));
            (void)w;
        } else if (note) {
            fprintf(note, "maelre-bench: wrote %zu images (%.1f MB of PNG) in %.0f s\n", st.n, (double)st.png_bytes / 1e6,
                    clock_seconds() - pg.t0);
            fflush(note);
        }
        _exit(rc);
    }
    close(fds[1]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) { status = -1; break; }
    char cerr[1024];
    ssize_t got = read(fds[0], cerr, sizeof cerr - 1);
    close(fds[0]);
    cerr[got > 0 ? got : 0] = 0;
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return MB_OK;
    if (status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGINT)
        return mb_fail(err, errlen, MB_ERR_INTERRUPTED, "interrupted while generating %s/%s (run again to start over)",
                       root, t->data.path);
    if (cerr[0]) return mb_fail(err, errlen, WIFEXITED(status) ? WEXITSTATUS(status) : MB_ERR_INTERNAL, "%s", cerr);
    return mb_fail(err, errlen, MB_ERR_INTERNAL, "%s/%s: the generating process failed", root, t->data.path);
}

int runner_ensure_data(const Task *t, const char *root, FILE *note, char *err, size_t errlen) {
    char dir[PATH_MAX];
    task_data_path(t, root, dir, sizeof dir);
    if (!strcmp(t->data.source, "pathfinder")) return runner_ensure_pathfinder(t, root, note, err, errlen);
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
