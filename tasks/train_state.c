// Counters, curves and the saved training state of one run (see tasks/train_state.h).
#include "tasks/train_state.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/status.h"
#include "results/table.h"

// ---------------------------------------------------------------- curves

int curves_push(Curves *c, CurveRow r) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 1024;
        CurveRow *nr = realloc(c->rows, nc * sizeof *nr);
        if (!nr) return MB_ERR_NOMEM;
        c->rows = nr;
        c->cap = nc;
    }
    c->rows[c->n++] = r;
    return MB_OK;
}

int buf_printf(Buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return MB_ERR_INTERNAL;
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return MB_OK; }
        size_t nc = b->cap ? 2 * b->cap : 4096;
        while (nc < b->n + (size_t)k + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return MB_ERR_NOMEM;
        b->p = np;
        b->cap = nc;
    }
}

int write_curves(const char *path, const Curves *c, char *err, size_t errlen) {
    Buf b = {0};
    int rc = buf_printf(&b, "step,samples,wall_s,lr,train_loss,val_accuracy\n");
    for (size_t i = 0; i < c->n && !rc; i++) {
        const CurveRow *r = &c->rows[i];
        rc = buf_printf(&b, "%zu,%zu,%.6f,%.9g,%.9g,", r->step, r->samples, r->wall_s, r->lr, r->loss);
        if (!rc && !isnan(r->val)) rc = buf_printf(&b, "%.17g", r->val);
        if (!rc) rc = buf_printf(&b, "\n");
    }
    if (rc) { free(b.p); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory writing %s", path); }
    rc = write_file_atomic(path, b.p, b.n, err, errlen);
    free(b.p);
    return rc;
}

// ---------------------------------------------------------------- the training state

#define STATE_MAGIC "MBSTATE1"
#define STATE_HEADER 24   // magic 8, crc32 4, reserved 4, payload bytes 8

static int put(Buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return MB_ERR_NOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return MB_OK;
}

static int put_u64(Buf *b, uint64_t v) { return put(b, &v, sizeof v); }

int state_save(const char *path, const char *key, Model *m, Optimizer *opt, const Sampler *sm,
                      const float *best, const Curves *cv, const TrainCounters *tc, char *err, size_t errlen) {
    Buf b = {0};
    size_t np = model_num_params(m), nmv;
    float *mv = optimizer_moments(opt, &nmv);
    int rc = put(&b, STATE_MAGIC, 8);
    uint32_t zero = 0;
    uint64_t len0 = 0;
    rc |= put(&b, &zero, 4) | put(&b, &zero, 4) | put(&b, &len0, 8);
    size_t kl = strlen(key);
    rc |= put_u64(&b, kl) | put(&b, key, kl);
    rc |= put(&b, tc, sizeof *tc);
    rc |= put_u64(&b, np) | put(&b, model_params(m), np * sizeof(float));
    rc |= put_u64(&b, optimizer_steps_done(opt)) | put_u64(&b, nmv) | put(&b, mv, nmv * sizeof(float));
    rc |= put(&b, best, np * sizeof(float));
    rc |= put_u64(&b, sm->n) | put_u64(&b, sm->pos) | put_u64(&b, sm->rng);
    for (size_t i = 0; i < sm->n && !rc; i++) rc |= put_u64(&b, sm->order[i]);
    rc |= put_u64(&b, cv->n) | put(&b, cv->rows, cv->n * sizeof *cv->rows);
    if (rc) { free(b.p); return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory saving the training state"); }
    uint64_t plen = b.n - STATE_HEADER;
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)b.p + STATE_HEADER, (uInt)0);
    for (size_t off = STATE_HEADER; off < b.n;) {   // crc32 takes uInt lengths
        size_t chunk = b.n - off > (1u << 30) ? (1u << 30) : b.n - off;
        crc = (uint32_t)crc32(crc, (const Bytef *)b.p + off, (uInt)chunk);
        off += chunk;
    }
    memcpy(b.p + 8, &crc, 4);
    memcpy(b.p + 16, &plen, 8);
    rc = write_file_atomic(path, b.p, b.n, err, errlen);
    free(b.p);
    return rc;
}

typedef struct { const char *p; size_t n, off; int bad; } Rd;
static void get(Rd *r, void *dst, size_t n) {
    if (r->bad || r->n - r->off < n) { r->bad = 1; memset(dst, 0, n); return; }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}
static uint64_t get_u64(Rd *r) { uint64_t v; get(r, &v, sizeof v); return v; }

static int read_all(const char *path, char **out, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) { fclose(f); return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); }
        len += fread(b + len, 1, cap - len, f);
        if (len < cap) break;
        char *nb = realloc(b, cap * 2);
        if (!nb) free(b);
        b = nb;
        cap *= 2;
    }
    int e = ferror(f);
    fclose(f);
    if (e) { free(b); return mb_fail(err, errlen, MB_ERR_IO, "%s: read error", path); }
    *out = b;
    *n = len;
    return MB_OK;
}

int state_load(const char *path, const char *key, Model *m, Optimizer *opt, Sampler *sm, float *best,
                      Curves *cv, TrainCounters *tc, char *err, size_t errlen) {
    char *buf = NULL;
    size_t n = 0;
    int rc = read_all(path, &buf, &n, err, errlen);
    if (rc) return rc;
    uint64_t plen = 0;
    uint32_t crc = 0;
    if (n < STATE_HEADER || memcmp(buf, STATE_MAGIC, 8)) {
        free(buf);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: not a saved training state (bad magic); delete it to start "
                       "this method over", path);
    }
    memcpy(&crc, buf + 8, 4);
    memcpy(&plen, buf + 16, 8);
    uint32_t got = (uint32_t)crc32(0L, Z_NULL, 0);
    for (size_t off = STATE_HEADER; off < n;) {
        size_t chunk = n - off > (1u << 30) ? (1u << 30) : n - off;
        got = (uint32_t)crc32(got, (const Bytef *)buf + off, (uInt)chunk);
        off += chunk;
    }
    if (plen != n - STATE_HEADER || got != crc) {
        free(buf);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: saved training state is damaged (%s); delete it to start this "
                       "method over", path, plen != n - STATE_HEADER ? "truncated" : "crc32 mismatch");
    }
    Rd r = {buf, n, STATE_HEADER, 0};
    size_t kl = get_u64(&r);
    if (r.bad || kl > n - r.off || kl != strlen(key) || memcmp(buf + r.off, key, kl)) {
        free(buf);
        return mb_fail(err, errlen, MB_ERR_USAGE, "%s: a training state saved with other settings; use --force to "
                       "start over, or another --out", path);
    }
    r.off += kl;
    get(&r, tc, sizeof *tc);
    size_t np = model_num_params(m), nmv;
    float *mv = optimizer_moments(opt, &nmv);
    if (get_u64(&r) != np) r.bad = 1;
    get(&r, model_params(m), np * sizeof(float));
    size_t osteps = get_u64(&r);
    if (get_u64(&r) != nmv) r.bad = 1;
    get(&r, mv, nmv * sizeof(float));
    get(&r, best, np * sizeof(float));
    if (get_u64(&r) != sm->n) r.bad = 1;
    sm->pos = get_u64(&r);
    sm->rng = get_u64(&r);
    for (size_t i = 0; i < sm->n && !r.bad; i++) {
        sm->order[i] = get_u64(&r);
        if (sm->order[i] >= sm->n) r.bad = 1;
    }
    size_t nc = get_u64(&r);
    if (!r.bad && (nc > (n - r.off) / sizeof(CurveRow) || nc != tc->step)) r.bad = 1;
    if (!r.bad) {
        cv->n = 0;
        for (size_t i = 0; i < nc && !rc; i++) {
            CurveRow row;
            get(&r, &row, sizeof row);
            rc = curves_push(cv, row);
        }
    }
    if (!r.bad && (r.off != n || sm->pos > sm->n || tc->best_step > tc->step)) r.bad = 1;
    free(buf);
    if (rc) return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
    if (r.bad)   // the crc matched, so this is a state written by another version or for other data
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: saved training state does not fit this run's model or data; "
                       "delete it to start this method over", path);
    optimizer_set_steps(opt, osteps);
    return MB_OK;
}

