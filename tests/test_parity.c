// Parity with the PyTorch reference (tests/reference/make_fixtures.py, float64 there, float32
// here): logits, loss, every gradient tensor, attention-kind usage, and the losses of 5 AdamW
// steps, and with dropout (training mode, masks from core/dropout.h's hash); also for the two-tower
// pairs model (fixtures with a cfg.pairs tensor). Each comparison reports the max abs/rel error and
// where. Fixtures are read from tests/reference/ (tests run from the repo root).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/model.h"
#include "core/optim.h"
#include "core/status.h"

#define MAX_T 256

typedef struct {
    char name[64];
    size_t ndim, dims[4], count;
    float *data;
} FxTensor;

typedef struct {
    FxTensor t[MAX_T];
    size_t n;
} Fixture;

static void fx_load(Fixture *fx, const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s: missing fixture; hint: run `make fixtures` from the repo root", path);
    char magic[4];
    uint32_t ver, count;
    cr_assert(fread(magic, 1, 4, f) == 4 && memcmp(magic, "MBFX", 4) == 0, "%s: bad magic", path);
    cr_assert(fread(&ver, 4, 1, f) == 1 && ver == 1, "%s: fixture version %u, expected 1; hint: make fixtures", path, ver);
    cr_assert(fread(&count, 4, 1, f) == 1 && count <= MAX_T, "%s: bad tensor count", path);
    fx->n = count;
    for (uint32_t i = 0; i < count; i++) {
        FxTensor *t = &fx->t[i];
        uint32_t nl, nd;
        cr_assert(fread(&nl, 4, 1, f) == 1 && nl < sizeof t->name, "%s: tensor %u: bad name", path, i);
        cr_assert(fread(t->name, 1, nl, f) == nl);
        t->name[nl] = 0;
        cr_assert(fread(&nd, 4, 1, f) == 1 && nd <= 4, "%s: %s: bad ndim", path, t->name);
        t->ndim = nd;
        t->count = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            cr_assert(fread(&v, 8, 1, f) == 1);
            t->dims[d] = (size_t)v;
            t->count *= (size_t)v;
        }
        t->data = malloc((t->count ? t->count : 1) * sizeof(float));
        cr_assert(fread(t->data, sizeof(float), t->count, f) == t->count, "%s: %s truncated", path, t->name);
    }
    cr_assert(fgetc(f) == EOF, "%s: trailing bytes", path);
    fclose(f);
}

static void fx_free(Fixture *fx) {
    for (size_t i = 0; i < fx->n; i++) free(fx->t[i].data);
}

// The tensor named `name`, or NULL (optional entries of newer fixtures).
static const FxTensor *fx_find(const Fixture *fx, const char *name) {
    for (size_t i = 0; i < fx->n; i++)
        if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
    return NULL;
}

static const FxTensor *fx_get(const Fixture *fx, const char *name) {
    const FxTensor *t = fx_find(fx, name);
    cr_assert(t, "fixture has no tensor %s", name);
    return t;
}

// A string stored as character codes (the SPEC §9 fixtures name methods and kinds, so that they
// do not depend on enum numbering); NULL when the fixture has no such tensor.
static const char *fx_string(const Fixture *fx, const char *name, char *buf, size_t len) {
    const FxTensor *t = fx_find(fx, name);
    if (!t) return NULL;
    cr_assert_lt(t->count, len, "%s: too long", name);
    for (size_t i = 0; i < t->count; i++) buf[i] = (char)(int)t->data[i];
    buf[t->count] = 0;
    return buf;
}

// Max abs error, and max abs error relative to the tensor's largest reference magnitude
// (scale-aware: elements near zero are judged against the tensor's scale).
static int compare(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double scale = 0, max_abs = 0;
    size_t where = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (e > max_abs) { max_abs = e; where = i; }
    }
    double rel = max_abs / (scale + 1e-30);
    int ok = rel <= tol;
    cr_log_info("%-16s max abs %.3g, rel %.3g at %zu (got %.7g ref %.7g) %s", what, max_abs, rel, where,
                n ? got[where] : 0.0, n ? ref[where] : 0.0, ok ? "" : "FAIL");
    cr_expect(ok, "%s: max rel error %.3g > %.3g at %zu (got %.9g, ref %.9g)", what, rel, tol, where,
              n ? got[where] : 0.0, n ? ref[where] : 0.0);
    return ok;
}

static void run_parity(const char *file) {
    char path[256];
    snprintf(path, sizeof path, "tests/reference/%s", file);
    Fixture *fx = calloc(1, sizeof *fx);
    fx_load(fx, path);
    const float *ci = fx_get(fx, "cfg.ints")->data, *cf = fx_get(fx, "cfg.floats")->data;
    const FxTensor *sb = fx_get(fx, "cfg.stage_blocks"), *sk = fx_get(fx, "cfg.stage_keep");
    ModelConfig c;
    memset(&c, 0, sizeof c);
    c.vocab = (size_t)ci[0]; c.feat_dim = (size_t)ci[1]; c.max_len = (size_t)ci[2]; c.dim = (size_t)ci[3];
    c.heads = (size_t)ci[4]; c.mlp = (size_t)ci[5]; c.blocks = (size_t)ci[6]; c.classes = (size_t)ci[7];
    c.method = (Method)(int)ci[8]; c.linformer_k = (size_t)ci[9]; c.linformer_share_ef = (int)ci[10];
    c.n_stages = (size_t)ci[11]; c.switch_threshold = (size_t)ci[12]; c.local_window = (size_t)ci[13];
    c.ln_eps = cf[0]; c.tome_r_frac = cf[1];
    for (size_t i = 0; i < sb->count && i < MODEL_MAX_STAGES; i++)
        c.stages[i] = (MaelreStage){(size_t)sb->data[i], sk->data[i]};
    // The SPEC §9 fixtures carry every value by name (tests/reference/make_fixtures.py): the
    // method and coarse kind (cfg.method, cfg.maelre_coarse) and each kind setting by its field
    // name (cfg.<setting>); the earlier fixtures have none of them: the method by number, the
    // defaults for the rest.
    char sbuf[64];
    if (fx_string(fx, "cfg.method", sbuf, sizeof sbuf))
        cr_assert_eq(method_parse(sbuf, &c.method), 0, "%s: unknown method %s", file, sbuf);
    c.maelre_coarse = ATTN_EFFICIENT;
    if (fx_string(fx, "cfg.maelre_coarse", sbuf, sizeof sbuf))
        cr_assert_eq(attn_kind_parse(sbuf, &c.maelre_coarse), 0, "%s: unknown kind %s", file, sbuf);
    ModelConfig d;
    model_config_default(&d, c.method, 1, 0, 1, 2);
    struct { const char *name; size_t *field, def; } set[] = {
        {"cfg.performer_features", &c.performer_features, d.performer_features},
        {"cfg.nystrom_landmarks", &c.nystrom_landmarks, d.nystrom_landmarks},
        {"cfg.nystrom_conv", &c.nystrom_conv, d.nystrom_conv},
        {"cfg.local_attn_window", &c.local_attn_window, d.local_attn_window},
        {"cfg.bigbird_block", &c.bigbird_block, d.bigbird_block},
        {"cfg.bigbird_random", &c.bigbird_random, d.bigbird_random},
    };
    for (size_t i = 0; i < sizeof set / sizeof *set; i++) {
        const FxTensor *t = fx_find(fx, set[i].name);
        if (t) cr_assert_eq(t->count, 1, "%s: %s holds %zu values", file, set[i].name, t->count);
        *set[i].field = t ? (size_t)t->data[0] : set[i].def;
    }
    // Dropout fixtures: p, seed, first step and the samples' global indices (the masks are
    // core/dropout.h's hash, which the reference implements in numpy); AdamW step s uses step0 + s.
    const FxTensor *fd = fx_find(fx, "dropout");
    uint64_t dseed = 0, dstep = 0;
    size_t *dindex = NULL;
    if (fd) {
        c.dropout = fd->data[0];
        dseed = (uint64_t)fd->data[1];
        dstep = (uint64_t)fd->data[2];
        const FxTensor *fi = fx_get(fx, "dropout.index");
        dindex = malloc(fi->count * sizeof(size_t));
        for (size_t i = 0; i < fi->count; i++) dindex[i] = (size_t)fi->data[i];
    }
    const FxTensor *ft = fx_find(fx, "cfg.merge_threshold");   // adaptive merging fixtures only
    c.merge_threshold = ft ? ft->data[0] : 0.0f;
    const FxTensor *fp = fx_find(fx, "cfg.pairs");   // two-tower fixtures only
    c.pairs = fp ? (int)fp->data[0] : 0;
    Model *m;
    char err[256];
    cr_assert_eq(model_create(&m, &c, 0, err, sizeof err), MB_OK, "%s: %s", file, err);
    model_set_dropout_step(m, dseed, dstep, dindex);

    // batch
    // n samples (labels, logit rows); nd documents (n, or 2n for pairs)
    const FxTensor *fo = fx_get(fx, "offsets"), *fl = fx_get(fx, "labels");
    size_t n = fl->count, nd = fo->count - 1;
    cr_assert_eq(nd, c.pairs ? 2 * n : n, "%s: %zu documents for %zu labels", file, nd, n);
    size_t *offs = malloc((nd + 1) * sizeof(size_t));
    for (size_t i = 0; i <= nd; i++) offs[i] = (size_t)fo->data[i];
    int32_t *labels = malloc(n * sizeof(int32_t)), *ids = NULL;
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)fl->data[i];
    Batch b = {nd, offs, NULL, NULL, 0, labels};
    if (c.vocab) {
        const FxTensor *fi = fx_get(fx, "ids");
        ids = malloc(fi->count * sizeof(int32_t));
        for (size_t t = 0; t < fi->count; t++) ids[t] = (int32_t)fi->data[t];
        b.ids = ids;
    } else {
        b.feats = fx_get(fx, "feats")->data;
        b.feat_dim = c.feat_dim;
    }

    // parameters by name
    char nm[80];
    size_t total = 0;
    for (size_t t = 0; t < model_num_tensors(m); t++) {
        size_t off, cnt;
        const char *name = model_tensor(m, t, &off, &cnt);
        snprintf(nm, sizeof nm, "p.%s", name);
        const FxTensor *ft = fx_get(fx, nm);
        cr_assert_eq(ft->count, cnt, "%s: %s has %zu values, model %zu", file, name, ft->count, cnt);
        memcpy(model_params(m) + off, ft->data, cnt * sizeof(float));
        total += cnt;
    }
    cr_assert_eq(total, model_num_params(m));
    // non-trainable buffers (Performer's W, BigBird's random tables): the fixture's, drawn by the
    // reference (buf.<name>), handed over here
    total = 0;
    for (size_t t = 0; t < model_num_buffer_tensors(m); t++) {
        size_t off, cnt;
        const char *name = model_buffer_tensor(m, t, &off, &cnt);
        snprintf(nm, sizeof nm, "buf.%s", name);
        const FxTensor *ft = fx_get(fx, nm);
        cr_assert_eq(ft->count, cnt, "%s: buffer %s has %zu values, model %zu", file, name, ft->count, cnt);
        memcpy(model_buffers(m) + off, ft->data, cnt * sizeof(float));
        total += cnt;
    }
    cr_assert_eq(total, model_num_buffers(m));

    cr_log_info("parity %s (%s, %zu samples%s)", file, method_name(c.method), n, c.pairs ? " of two documents" : "");
    float *logits = malloc(n * c.classes * sizeof(float)), *dl = malloc(n * c.classes * sizeof(float));
    cr_assert_eq(model_forward(m, &b, 1, logits, err, sizeof err), MB_OK, "%s", err);
    compare("logits", logits, fx_get(fx, "logits")->data, n * c.classes, 1e-5);
    float loss = model_loss(logits, labels, n, c.classes, dl);
    compare("loss", &loss, fx_get(fx, "loss")->data, 1, 1e-5);
    AttnUsage u = model_last_usage(m);
    // usage: usage.<kind> by the kinds' names (SPEC §9 fixtures: every kind they knew); the
    // earlier fixtures hold the first kinds by position in `usage`; any other kind: 0 blocks
    const FxTensor *fu = fx_find(fx, "usage");
    cr_assert(fu || fx_find(fx, "usage.softmax"), "%s: fixture has no usage", file);
    for (int k = 0; k < ATTN_KIND_COUNT; k++) {
        snprintf(nm, sizeof nm, "usage.%s", attn_kind_name((AttnKind)k));
        const FxTensor *fk = fx_find(fx, nm);
        size_t want = fk ? (size_t)fk->data[0] : fu && (size_t)k < fu->count ? (size_t)fu->data[k] : 0;
        cr_expect_eq(u.count[k], want, "%s: %s blocks %zu, reference %zu", file, attn_kind_name((AttnKind)k), u.count[k], want);
    }
    model_zero_grad(m);
    model_backward(m, &b, dl);
    for (size_t t = 0; t < model_num_tensors(m); t++) {
        size_t off, cnt;
        const char *name = model_tensor(m, t, &off, &cnt);
        snprintf(nm, sizeof nm, "g.%s", name);
        char what[80];
        snprintf(what, sizeof what, "grad %s", name);
        compare(what, model_grads(m) + off, fx_get(fx, nm)->data, cnt, 2e-5);
    }

    // AdamW steps on the same batch
    const float *o = fx_get(fx, "opt")->data;
    AdamWConfig ac = {.lr = o[0], .beta1 = o[1], .beta2 = o[2], .eps = o[3], .weight_decay = o[4],
                      .clip_norm = o[5], .warmup_steps = (size_t)o[6], .total_steps = (size_t)o[7],
                      .schedule = (Schedule)(int)o[8]};
    size_t steps = (size_t)o[9];
    Optimizer *opt;
    cr_assert_eq(optimizer_create(&opt, m, &ac, err, sizeof err), MB_OK, "%s", err);
    float *losses = malloc((steps + 1) * sizeof(float));
    for (size_t s = 0; s <= steps; s++) {
        model_set_dropout_step(m, dseed, dstep + s, dindex);
        cr_assert_eq(model_forward(m, &b, 1, logits, err, sizeof err), MB_OK, "%s", err);
        losses[s] = model_loss(logits, labels, n, c.classes, dl);
        if (s == steps) break;
        model_zero_grad(m);
        model_backward(m, &b, dl);
        optimizer_step(opt, m);
    }
    const FxTensor *tl = fx_get(fx, "train_losses");
    cr_assert_eq(tl->count, steps + 1);
    for (size_t s = 0; s <= steps; s++) {
        char what[32];
        snprintf(what, sizeof what, "loss step %zu", s);
        // absolute, in units of the initial loss: the trajectory drops by orders of magnitude
        double e = fabs(losses[s] - tl->data[s]) / (fabs(tl->data[0]) + 1e-30);
        cr_log_info("%-16s got %.7g ref %.7g (err %.3g of the initial loss)", what, losses[s], tl->data[s], e);
        cr_expect(e < 2e-5, "%s: %s: got %.9g ref %.9g", file, what, losses[s], tl->data[s]);
    }
    optimizer_destroy(opt);
    if (fd) {   // evaluation never drops: differs from the training-mode logits of the same weights
        float *ev = malloc(n * c.classes * sizeof(float));
        cr_assert_eq(model_forward(m, &b, 0, ev, err, sizeof err), MB_OK, "%s", err);
        double d = 0;
        for (size_t i = 0; i < n * c.classes; i++) d = fmax(d, fabs((double)ev[i] - logits[i]));
        cr_expect(d > 1e-4, "%s: evaluation logits equal the training-mode ones (dropout in evaluation?)", file);
        free(ev);
    }
    free(losses); free(logits); free(dl); free(offs); free(labels); free(ids); free(dindex);
    model_destroy(m);
    fx_free(fx);
    free(fx);
}

Test(parity, vanilla_tokens_ragged) { run_parity("parity_vanilla_tokens.bin"); }
Test(parity, vanilla_patches) { run_parity("parity_vanilla_patches.bin"); }
Test(parity, linformer) { run_parity("parity_linformer.bin"); }
Test(parity, linformer_shared_ef) { run_parity("parity_linformer_shared.bin"); }
Test(parity, tome) { run_parity("parity_tome.bin"); }
Test(parity, maelre_mixed_kinds_in_one_block) { run_parity("parity_maelre.bin"); }
// Two-tower pairs (SPEC §10.2): the head [e1, e2, e1*e2, e1-e2] -> head1 -> ReLU -> head2 and its
// loss, every gradient and 5 AdamW steps, three pairs of ragged documents.
Test(parity, pairs_vanilla) { run_parity("parity_pairs_vanilla.bin"); }
Test(parity, pairs_maelre) { run_parity("parity_pairs_maelre.bin"); }

// SPEC §9 methods; Performer's W and BigBird's tables come from the fixture (model_buffers)
Test(parity, performer) { run_parity("parity_performer.bin"); }
Test(parity, nystromformer) { run_parity("parity_nystromformer.bin"); }
Test(parity, linear_patches) { run_parity("parity_linear.bin"); }
Test(parity, efficient) { run_parity("parity_efficient.bin"); }
Test(parity, maelre_exact) { run_parity("parity_maelre_exact.bin"); }
Test(parity, maelre_coarse_linear) { run_parity("parity_maelre_linear.bin"); }
Test(parity, maelre_coarse_performer) { run_parity("parity_maelre_performer.bin"); }
Test(parity, maelre_adaptive_merge_amount) { run_parity("parity_maelre_adaptive.bin"); }
Test(parity, local_window_4) { run_parity("parity_local.bin"); }
Test(parity, bigbird_tables_from_the_reference) { run_parity("parity_bigbird.bin"); }
// dropout 0.1 in training mode, masks handed over as the shared hash (SPEC §11, §12)
Test(parity, vanilla_dropout) { run_parity("parity_vanilla_dropout.bin"); }
Test(parity, maelre_dropout) { run_parity("parity_maelre_dropout.bin"); }
