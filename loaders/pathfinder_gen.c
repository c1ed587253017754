// Pathfinder generator: snakes of paddles, markers, 2x rendering, PNG files (pathfinder_gen.h).
// Written from the description of drewlinsley/pathfinder (snakes.py, snakes2.py) and LRA's TFDS
// builder settings; the raster masks of the reference are replaced by exact segment distances
// (the same "keeps clear by margin" rule, without pixel rounding), see the header.
#include "loaders/pathfinder_gen.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/rng.h"
#include "core/status.h"
#include "loaders/media.h"

// Private copy of the writer (static functions), so that no other translation unit's copy clashes.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
// stb declares every writer static; the unused ones are reported at the end of the unit.
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const char *const diff_names[3] = {"easy", "intermediate", "hard"};
static const char *const diff_dirs[3] = {"curv_baseline", "curv_contour_length_9", "curv_contour_length_14"};

const char *pf_difficulty_name(PfDifficulty d) { return (unsigned)d < 3 ? diff_names[d] : "?"; }
const char *pf_difficulty_dir(PfDifficulty d) { return (unsigned)d < 3 ? diff_dirs[d] : "?"; }

int pf_difficulty_parse(const char *s, PfDifficulty *d) {
    for (int i = 0; i < 3; i++)
        if (s && (!strcmp(s, diff_names[i]) || !strcmp(s, diff_dirs[i]))) { *d = (PfDifficulty)i; return 1; }
    return 0;
}

int pf_parse_path(const char *path, int *size, PfDifficulty *d) {
    int sz, k = 0;
    if (strncmp(path, "pathfinder", 10) || sscanf(path + 10, "%d/%n", &sz, &k) != 1 || k == 0) return 0;
    if (sz != 32 && sz != 64 && sz != 128) return 0;
    char dir[64];
    size_t n = strcspn(path + 10 + k, "/");
    if (n == 0 || n >= sizeof dir || path[10 + k + n] != 0) return 0;
    memcpy(dir, path + 10 + k, n);
    dir[n] = 0;
    for (int i = 0; i < 3; i++)
        if (!strcmp(dir, diff_dirs[i])) { *size = sz; *d = (PfDifficulty)i; return 1; }
    return 0;
}

int pf_dataset_dir(char *buf, size_t n, const char *root, int size, PfDifficulty d) {
    int k = snprintf(buf, n, "%s/pathfinder%d/%s", root, size, pf_difficulty_dir(d));
    return k >= 0 && (size_t)k < n ? MB_OK : MB_ERR_USAGE;
}

int pf_params(PfParams *p, int size, PfDifficulty d) {
    memset(p, 0, sizeof *p);
    if ((unsigned)d > PF_HARD) return MB_ERR_USAGE;
    static const int lengths[3] = {6, 9, 14};
    p->size = size;
    p->difficulty = d;
    p->contour_length = lengths[d];
    p->distractor_length = p->contour_length / 3;
    p->aa = 2;
    p->padding = 1;
    p->max_paddle_retrial = 2;
    p->max_distractor_retrial = 4;
    p->marker_contrast = 1.0;
    int distractor_paddles;
    if (size == 32) {          // LRA Pathfinder32
        p->paddle_length = 2;
        p->thickness = 0.5;
        p->margin_lo = p->margin_hi = 1;
        p->seed_distance = 7;
        p->marker_radius = 1.5;
        p->continuity = 1.0;
        p->target_contrast = 0.75 * 2.0;   // paddle contrast x snake contrast
        p->distractor_contrast = 2.0;      // snake contrast
        distractor_paddles = 20;
    } else if (size == 64) {   // LRA Pathfinder64
        p->paddle_length = 5;
        p->thickness = 1;
        p->margin_lo = p->margin_hi = 1;
        p->seed_distance = 12;
        p->marker_radius = 2.5;
        p->continuity = 1.8;
        p->target_contrast = p->distractor_contrast = 0.8;
        distractor_paddles = 22;
    } else if (size == 128) {  // LRA Pathfinder128 (Path-X)
        p->paddle_length = 5;
        p->thickness = 1.5;
        p->margin_lo = 2;
        p->margin_hi = 3;
        p->seed_distance = 20;
        p->marker_radius = 3;
        p->continuity = 1.8;
        p->target_contrast = p->distractor_contrast = 0.9;
        distractor_paddles = 35;
    } else {
        return MB_ERR_USAGE;
    }
    p->n_distractors = distractor_paddles / p->distractor_length;
    if (p->n_distractors > PF_MAX_SNAKES) p->n_distractors = PF_MAX_SNAKES;
    return MB_OK;
}

// ---------------------------------------------------------------- geometry

static double uni(uint64_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double pt_seg_d2(double px, double py, const PfPaddle *s) {
    double dx = s->x1 - s->x0, dy = s->y1 - s->y0, l2 = dx * dx + dy * dy;
    double t = l2 > 0 ? ((px - s->x0) * dx + (py - s->y0) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = s->x0 + t * dx - px, ey = s->y0 + t * dy - py;
    return ex * ex + ey * ey;
}

static double orient(double ax, double ay, double bx, double by, double cx, double cy) {
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

// Squared distance between two segments (0 when they cross).
static double seg_seg_d2(const PfPaddle *a, const PfPaddle *b) {
    double o1 = orient(a->x0, a->y0, a->x1, a->y1, b->x0, b->y0);
    double o2 = orient(a->x0, a->y0, a->x1, a->y1, b->x1, b->y1);
    double o3 = orient(b->x0, b->y0, b->x1, b->y1, a->x0, a->y0);
    double o4 = orient(b->x0, b->y0, b->x1, b->y1, a->x1, a->y1);
    if (((o1 > 0 && o2 < 0) || (o1 < 0 && o2 > 0)) && ((o3 > 0 && o4 < 0) || (o3 < 0 && o4 > 0))) return 0;
    double d = pt_seg_d2(b->x0, b->y0, a), e;
    if ((e = pt_seg_d2(b->x1, b->y1, a)) < d) d = e;
    if ((e = pt_seg_d2(a->x0, a->y0, b)) < d) d = e;
    if ((e = pt_seg_d2(a->x1, a->y1, b)) < d) d = e;
    return d;
}

// Everything drawn so far, for the clearance test.
typedef struct {
    PfPaddle p[2 * PF_MAX_PADDLES + PF_MAX_SNAKES * PF_MAX_PADDLES];
    int n;
    double lo, hi, clear2;   // allowed coordinate range, squared clearance
} Scene;

// 1 when paddle q may be drawn: inside the frame and clear of every drawn paddle but `skip`.
static int admissible(const Scene *sc, const PfPaddle *q, int skip) {
    if (q->x0 < sc->lo || q->x0 > sc->hi || q->y0 < sc->lo || q->y0 > sc->hi ||
        q->x1 < sc->lo || q->x1 > sc->hi || q->y1 < sc->lo || q->y1 > sc->hi) return 0;
#define MIN2(a, b) ((a) < (b) ? (a) : (b))
#define MAX2(a, b) ((a) > (b) ? (a) : (b))
    double c = sqrt(sc->clear2), qx0 = MIN2(q->x0, q->x1), qx1 = MAX2(q->x0, q->x1);
    double qy0 = MIN2(q->y0, q->y1), qy1 = MAX2(q->y0, q->y1);
    for (int i = 0; i < sc->n; i++) {
        const PfPaddle *o = &sc->p[i];
        // Bounding boxes at least the clearance apart: the segments are too (same decision, cheaper).
        if (MIN2(o->x0, o->x1) - qx1 >= c || qx0 - MAX2(o->x0, o->x1) >= c ||
            MIN2(o->y0, o->y1) - qy1 >= c || qy0 - MAX2(o->y0, o->y1) >= c) continue;
        if (i != skip && seg_seg_d2(q, o) < sc->clear2) return 0;
    }
    return 1;
}

// A growing snake: where its paddles are in the scene, its pivot and direction.
typedef struct {
    PfSnake *out;
    int last;               // scene index of its last paddle
    double qx, qy, a;       // pivot and direction of the last paddle
} Grower;

static void grower_add(Scene *sc, Grower *g, const PfPaddle *q, double qx, double qy, double a) {
    g->out->p[g->out->n++] = *q;
    g->last = sc->n;
    sc->p[sc->n++] = *q;
    g->qx = qx, g->qy = qy, g->a = a;
}

// A seed paddle with tail (x, y) and direction a: tail -> tail + L u; pivot = tail - m u.
static PfPaddle seed_paddle(double x, double y, double a, double L) {
    return (PfPaddle){x, y, x + L * cos(a), y + L * sin(a)};
}

// One more paddle for g, drawn with the continuity prior among admissible candidates.
static int extend(const PfParams *p, int m, Scene *sc, Grower *g, uint64_t *rng) {
    double L = p->paddle_length, r = L + m;
    double nx = g->qx + (L + 2 * m) * cos(g->a), ny = g->qy + (L + 2 * m) * sin(g->a);
    int n = (int)ceil(2 * M_PI * r);
    if (n > 256) n = 256;
    double w[256], ang[256], total = 0, phase = uni(rng) * 2 * M_PI / n;
    for (int j = 0; j < n; j++) {
        double b = phase + 2 * M_PI * j / n;
        double dlt = b - g->a;   // both directions lie in [0, 2 pi): one wrap is enough
        dlt = fabs(dlt > M_PI ? dlt - 2 * M_PI : dlt < -M_PI ? dlt + 2 * M_PI : dlt) * p->continuity;
        double c = dlt >= M_PI / 2 ? 0 : cos(dlt);
        w[j] = c * c;
        ang[j] = b;
        if (w[j] < 1e-12) { w[j] = 0; continue; }
        PfPaddle q = {nx + m * cos(b), ny + m * sin(b), nx + r * cos(b), ny + r * sin(b)};
        if (!admissible(sc, &q, g->last)) w[j] = 0;
        total += w[j];
    }
    if (total <= 0) return 0;
    double u = uni(rng) * total, acc = 0;
    int k = -1;
    for (int j = 0; j < n; j++) {
        if (w[j] <= 0) continue;
        k = j;
        acc += w[j];
        if (u < acc) break;
    }
    double b = ang[k];
    PfPaddle q = {nx + m * cos(b), ny + m * sin(b), nx + r * cos(b), ny + r * sin(b)};
    grower_add(sc, g, &q, nx, ny, b);
    return 1;
}

// Seed tries at random free spots: the reference draws its seed among free pixels directly, so
// rejection sampling needs more tries than its max_paddle_retrial to match it.
#define PF_SEED_TRIES 200
#define PF_MAX_RESTARTS 10000

static int place_targets(const PfParams *p, int m, Scene *sc, PfSample *s, uint64_t *rng) {
    double L = p->paddle_length, sd = p->seed_distance;
    Grower g[2];
    for (int k = 0; k < 2; k++) {
        s->target[k].n = 0;
        g[k].out = &s->target[k];
    }
    sc->n = 0;
    int ok = 0;
    for (int t = 0; t < PF_SEED_TRIES && !ok; t++) {
        double x = 2 * sd + uni(rng) * (p->size - 4 * sd), y = 2 * sd + uni(rng) * (p->size - 4 * sd);
        double a = uni(rng) * 2 * M_PI;
        PfPaddle q = seed_paddle(x, y, a, L);
        if ((ok = admissible(sc, &q, -1))) grower_add(sc, &g[0], &q, x - m * cos(a), y - m * sin(a), a);
    }
    if (!ok) return 0;
    ok = 0;
    for (int t = 0; t <= p->max_paddle_retrial && !ok; t++) {
        double phi = uni(rng) * 2 * M_PI, a = uni(rng) * 2 * M_PI;
        double x = s->target[0].p[0].x0 + sd * cos(phi), y = s->target[0].p[0].y0 + sd * sin(phi);
        PfPaddle q = seed_paddle(x, y, a, L);
        if ((ok = admissible(sc, &q, -1))) grower_add(sc, &g[1], &q, x - m * cos(a), y - m * sin(a), a);
    }
    if (!ok) return 0;
    for (int i = 1; i < p->contour_length; i++)
        for (int k = 0; k < 2; k++)
            if (!extend(p, m, sc, &g[k], rng)) return 0;
    return 1;
}

static int place_distractor(const PfParams *p, int m, Scene *sc, PfSnake *out, uint64_t *rng) {
    double L = p->paddle_length;
    int n0 = sc->n;
    Grower g = {.out = out};
    out->n = 0;
    int ok = 0;
    for (int t = 0; t < PF_SEED_TRIES && !ok; t++) {
        double x = sc->lo + uni(rng) * (sc->hi - sc->lo), y = sc->lo + uni(rng) * (sc->hi - sc->lo);
        double a = uni(rng) * 2 * M_PI;
        PfPaddle q = seed_paddle(x, y, a, L);
        if ((ok = admissible(sc, &q, -1))) grower_add(sc, &g, &q, x - m * cos(a), y - m * sin(a), a);
    }
    for (int i = 1; ok && i < p->distractor_length; i++) ok = extend(p, m, sc, &g, rng);
    if (!ok) {
        sc->n = n0;
        out->n = 0;
    }
    return ok;
}

// ---------------------------------------------------------------- rendering

// Lanczos-2 taps for a 2:1 reduction: the 8 fine pixels around a coarse pixel centre sit at
// +-0.25, +-0.75, +-1.25, +-1.75 coarse pixels.
static void lanczos_taps(double w[8]) {
    double sum = 0;
    for (int t = 0; t < 8; t++) {
        double x = (t - 3.5) / 2, px = M_PI * x;
        w[t] = x == 0 ? 1 : 2 * sin(px) * sin(px / 2) / (px * px);
        sum += w[t];
    }
    for (int t = 0; t < 8; t++) w[t] /= sum;
}

typedef struct {
    int kind;                    // 0 paddle, 1 disk
    double ax, ay, bx, by;       // fine-grid coordinates (x aa)
    double hw, r;                // paddle half width, disk radius (fine pixels)
    double l, ux, uy;            // paddle length and direction (set by splat)
} Shape;

// Coverage of the fine pixel centred at (x, y): a one-pixel ramp at the edge, flat paddle ends.
static double coverage(const Shape *sh, double x, double y) {
    if (sh->kind == 1) {
        double d = hypot(x - sh->ax, y - sh->ay), c = sh->r + 0.5 - d;
        return c <= 0 ? 0 : c >= 1 ? 1 : c;
    }
    double l = sh->l, ux = sh->ux, uy = sh->uy, px = x - sh->ax, py = y - sh->ay;
    double t = px * ux + py * uy, perp = fabs(px * uy - py * ux);
    double cp = sh->hw + 0.5 - perp, ca = 0.5 + (t < l - t ? t : l - t);
    cp = cp <= 0 ? 0 : cp >= 1 ? 1 : cp;
    ca = ca <= 0 ? 0 : ca >= 1 ? 1 : ca;
    return cp * ca;
}

#define PF_PATCH 40   // coarse patch side limit (a Path-X paddle needs ~16)

// Draws one shape at 2x around its bounding box, reduces it to 1x and max-combines it into img.
static void splat(float *img, int size, int aa, const Shape *shape, double ext, double contrast, const double w[8]) {
    Shape s1 = *shape, *sh = &s1;
    if (sh->kind == 0) {
        double dx = sh->bx - sh->ax, dy = sh->by - sh->ay;
        sh->l = hypot(dx, dy);
        sh->ux = dx / sh->l, sh->uy = dy / sh->l;
    }
    double xmin = fmin(sh->ax, sh->bx) / aa - ext, xmax = fmax(sh->ax, sh->bx) / aa + ext;
    double ymin = fmin(sh->ay, sh->by) / aa - ext, ymax = fmax(sh->ay, sh->by) / aa + ext;
    int x0 = (int)floor(xmin) - 2, x1 = (int)ceil(xmax) + 2, y0 = (int)floor(ymin) - 2, y1 = (int)ceil(ymax) + 2;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size - 1) x1 = size - 1;
    if (y1 > size - 1) y1 = size - 1;
    if (x1 - x0 + 1 > PF_PATCH) x1 = x0 + PF_PATCH - 1;
    if (y1 - y0 + 1 > PF_PATCH) y1 = y0 + PF_PATCH - 1;
    int W = x1 - x0 + 1, H = y1 - y0 + 1, W2 = 2 * W + 6, H2 = 2 * H + 6;
    if (W <= 0 || H <= 0) return;
    float fine[(2 * PF_PATCH + 6) * (2 * PF_PATCH + 6)], half[(2 * PF_PATCH + 6) * PF_PATCH];
    // fine pixel (i, j) is fine-grid pixel (2 x0 - 3 + i, 2 y0 - 3 + j), centre + 0.5
    for (int j = 0; j < H2; j++)
        for (int i = 0; i < W2; i++)
            fine[j * W2 + i] = (float)coverage(sh, 2 * x0 - 3 + i + 0.5, 2 * y0 - 3 + j + 0.5);
    for (int j = 0; j < H2; j++)
        for (int o = 0; o < W; o++) {
            double s = 0;
            for (int t = 0; t < 8; t++) s += w[t] * fine[j * W2 + 2 * o + t];
            half[j * W + o] = (float)s;
        }
    for (int oy = 0; oy < H; oy++)
        for (int ox = 0; ox < W; ox++) {
            double s = 0;
            for (int t = 0; t < 8; t++) s += w[t] * half[(2 * oy + t) * W + ox];
            float v = (float)((s > 0 ? s : 0) * contrast);
            float *d = &img[(size_t)(y0 + oy) * size + x0 + ox];
            if (v > *d) *d = v;
        }
}

static void draw_snake(float *img, const PfParams *p, const PfSnake *s, double contrast, const double w[8]) {
    for (int i = 0; i < s->n; i++) {
        const PfPaddle *q = &s->p[i];
        Shape sh = {.kind = 0, .ax = q->x0 * p->aa, .ay = q->y0 * p->aa, .bx = q->x1 * p->aa, .by = q->y1 * p->aa,
                    .hw = p->thickness * p->aa / 2};
        splat(img, p->size, p->aa, &sh, p->thickness / 2 + 1, contrast, w);
    }
}

int pf_sample(const PfParams *p, uint64_t seed, uint64_t index, PfSample *out, uint8_t *img,
              char *err, size_t errlen) {
    PfSample local, *s = out ? out : &local;
    memset(s, 0, sizeof *s);
    Scene *sc = malloc(sizeof *sc);
    float *fimg = calloc((size_t)p->size * p->size, sizeof *fimg);
    if (!sc || !fimg) {
        free(sc);
        free(fimg);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for a %d px pathfinder image", p->size);
    }
    uint64_t rng = rng_derive(seed, index);
    s->label = uni(&rng) < 0.5 ? 0 : 1;
    s->margin = p->margin_lo + (int)rng_below(&rng, (size_t)(p->margin_hi - p->margin_lo + 1));
    int m = s->margin;
    sc->lo = p->padding + m + p->thickness / 2;
    sc->hi = p->size - sc->lo;
    double clear = p->thickness + 2 * m;
    sc->clear2 = clear * clear;
    while (!place_targets(p, m, sc, s, &rng))
        if (++s->restarts >= PF_MAX_RESTARTS) {
            free(sc);
            free(fimg);
            return mb_fail(err, errlen, MB_ERR_INTERNAL, "pathfinder: no pair of %d-paddle snakes fits a %d px image "
                           "after %d tries", p->contour_length, p->size, PF_MAX_RESTARTS);
        }
    for (int k = 0; k < p->n_distractors; k++)
        for (int t = 0; t <= p->max_distractor_retrial; t++)
            if (place_distractor(p, m, sc, &s->distractor[s->n_distractors], &rng)) {
                s->n_distractors++;
                break;
            }
    int o = (int)rng_below(&rng, 2), term = s->label ? o : 1 - o;
    const PfSnake *so = &s->target[o], *st = &s->target[term];
    s->marker[0][0] = so->p[0].x0, s->marker[0][1] = so->p[0].y0;
    s->marker[1][0] = st->p[st->n - 1].x1, s->marker[1][1] = st->p[st->n - 1].y1;
    s->marker_snake[0] = o, s->marker_snake[1] = term;

    double w[8];
    lanczos_taps(w);
    for (int k = 0; k < 2; k++) draw_snake(fimg, p, &s->target[k], p->target_contrast, w);
    for (int k = 0; k < s->n_distractors; k++) draw_snake(fimg, p, &s->distractor[k], p->distractor_contrast, w);
    for (int k = 0; k < 2; k++) {
        double x = s->marker[k][0] * p->aa, y = s->marker[k][1] * p->aa;
        Shape sh = {.kind = 1, .ax = x, .ay = y, .bx = x, .by = y, .r = p->marker_radius * p->aa};
        splat(fimg, p->size, p->aa, &sh, p->marker_radius + 1, p->marker_contrast, w);
    }
    size_t np = (size_t)p->size * p->size;
    float lo = fimg[0], hi = fimg[0];
    for (size_t i = 1; i < np; i++) {
        if (fimg[i] < lo) lo = fimg[i];
        if (fimg[i] > hi) hi = fimg[i];
    }
    double scale = hi > lo ? 255.0 / (hi - lo) : 0;
    for (size_t i = 0; i < np; i++) {
        double v = floor((fimg[i] - lo) * scale + 0.5);
        img[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(sc);
    free(fimg);
    return MB_OK;
}

// ---------------------------------------------------------------- files

typedef struct { unsigned char *b; size_t n, cap; int oom; } MemBuf;

static void membuf_write(void *ctx, void *data, int size) {
    MemBuf *m = ctx;
    if (m->oom || size <= 0) return;
    if (m->n + (size_t)size > m->cap) {
        size_t c = m->cap ? m->cap * 2 : 4096;
        while (c < m->n + (size_t)size) c *= 2;
        unsigned char *nb = realloc(m->b, c);
        if (!nb) { m->oom = 1; return; }
        m->b = nb, m->cap = c;
    }
    memcpy(m->b + m->n, data, (size_t)size);
    m->n += (size_t)size;
}

int pf_png(const uint8_t *img, int w, int h, unsigned char **png, size_t *len) {
    MemBuf m = {0};
    int ok = stbi_write_png_to_func(membuf_write, &m, w, h, 1, img, w);
    if (!ok || m.oom) {
        free(m.b);
        return MB_ERR_NOMEM;
    }
    *png = m.b;
    *len = m.n;
    return MB_OK;
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return mb_fail(err, errlen, MB_ERR_IO, "%s: path too long", path);
    strcpy(buf, path);
    for (char *q = buf + 1; ; q++) {
        if (*q == '/' || *q == 0) {
            char c = *q;
            *q = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create folder: %s", buf, strerror(errno));
            *q = c;
            if (!c) break;
        }
    }
    if (!media_is_dir(path)) return mb_fail(err, errlen, MB_ERR_IO, "%s: exists and is not a folder", path);
    return MB_OK;
}

// The temporary file is <folder>/.<name>.tmp<pid>.
int pf_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    char tmp[4200];
    const char *slash = strrchr(path, '/');
    int dl = slash ? (int)(slash - path + 1) : 0;
    int k = snprintf(tmp, sizeof tmp, "%.*s.%s.tmp%ld", dl, path, slash ? slash + 1 : path, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp) return mb_fail(err, errlen, MB_ERR_IO, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = n && fwrite(data, 1, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return MB_OK;
}

int pf_generate(const char *root, int size, PfDifficulty d, size_t count, uint64_t seed,
                void (*progress)(void *ctx, size_t done, size_t total), void *ctx, PfStats *st,
                char *err, size_t errlen) {
    PfStats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    PfParams p;
    if (pf_params(&p, size, d)) return mb_fail(err, errlen, MB_ERR_USAGE, "pathfinder: size must be 32, 64 or 128 (got %d)", size);
    char dir[4096], path[4300];
    if (pf_dataset_dir(dir, sizeof dir, root, size, d)) return mb_fail(err, errlen, MB_ERR_IO, "%s: path too long", root);
    int rc;
    snprintf(path, sizeof path, "%s/metadata", dir);
    if ((rc = mkdir_p(path, err, errlen))) return rc;
    snprintf(path, sizeof path, "%s/" PF_PARTIAL, dir);
    const char *partial = "generation started; this folder is incomplete until this file is gone and COMPLETE exists\n";
    if ((rc = pf_write_atomic(path, partial, strlen(partial), err, errlen))) return rc;
    snprintf(path, sizeof path, "%s/" PF_COMPLETE, dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    // Stale metadata from an earlier run would add its images to this one.
    snprintf(path, sizeof path, "%s/metadata", dir);
    char **names = NULL;
    size_t nn = 0;
    if ((rc = media_list_dir(path, 'f', &names, &nn, err, errlen))) return rc;
    for (size_t i = 0; i < nn; i++) {
        size_t l = strlen(names[i]);
        if (l < 4 || strcmp(names[i] + l - 4, ".npy")) continue;
        snprintf(path, sizeof path, "%s/metadata/%s", dir, names[i]);
        if (unlink(path) != 0) {
            rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
            break;
        }
    }
    media_free_names(names, nn);
    if (rc) return rc;

    size_t nb = (count + PF_PER_BATCH - 1) / PF_PER_BATCH;
    int *labels = malloc(PF_PER_BATCH * sizeof *labels), *margins = malloc(PF_PER_BATCH * sizeof *margins);
    char *meta = malloc((size_t)PF_PER_BATCH * 160);
    if (!labels || !margins || !meta) {
        free(labels); free(margins); free(meta);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for pathfinder batch bookkeeping");
    }
    for (size_t b = 0; b < nb && !rc; b++) {
        size_t n = count - b * PF_PER_BATCH < PF_PER_BATCH ? count - b * PF_PER_BATCH : PF_PER_BATCH;
        snprintf(path, sizeof path, "%s/imgs/%zu", dir, b);
        if ((rc = mkdir_p(path, err, errlen))) break;
        int fail = 0;
        size_t fail_i = (size_t)-1;
        char ferr[1024] = "";
        size_t bytes = 0, dshort = 0;
        unsigned restarts = 0;
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : bytes, dshort, restarts)
        for (size_t i = 0; i < n; i++) {
            char lerr[1024], fp[4400];
            uint8_t *img = malloc((size_t)size * size);
            PfSample *s = malloc(sizeof *s);
            unsigned char *png = NULL;
            size_t len = 0;
            int r = img && s ? MB_OK : mb_fail(lerr, sizeof lerr, MB_ERR_NOMEM, "out of memory for an image");
            if (!r) r = pf_sample(&p, seed, b * PF_PER_BATCH + i, s, img, lerr, sizeof lerr);
            if (!r && pf_png(img, size, size, &png, &len)) r = mb_fail(lerr, sizeof lerr, MB_ERR_NOMEM, "out of memory encoding a PNG");
            if (!r) {
                snprintf(fp, sizeof fp, "%s/imgs/%zu/sample_%zu.png", dir, b, i);
                r = pf_write_atomic(fp, png, len, lerr, sizeof lerr);
            }
            if (!r) {
                labels[i] = s->label;
                margins[i] = s->margin;
                bytes += len;
                restarts += s->restarts;
                dshort += (size_t)(p.n_distractors - s->n_distractors);
            } else {
#pragma omp critical(pf_fail)
                if (!fail || i < fail_i) {
                    fail = r, fail_i = i;
                    snprintf(ferr, sizeof ferr, "%s", lerr);
                }
            }
            free(png);
            free(img);
            free(s);
        }
        if (fail) {
            rc = mb_fail(err, errlen, fail, "%s", ferr);
            break;
        }
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            off += (size_t)snprintf(meta + off, 160, "imgs/%zu sample_%zu.png %zu %d %.1f %d %d %d %.1f %d 1\n", b, i, i,
                                    labels[i], p.continuity, p.contour_length, p.distractor_length,
                                    (int)p.paddle_length, p.thickness, margins[i]);
            st->label1 += (size_t)labels[i];
        }
        snprintf(path, sizeof path, "%s/metadata/%zu.npy", dir, b);
        if ((rc = pf_write_atomic(path, meta, off, err, errlen))) break;
        st->n += n;
        st->batches++;
        st->png_bytes += bytes;
        st->restarts += restarts;
        st->distractors_short += dshort;
        if (progress) progress(ctx, st->n, count);
    }
    free(labels);
    free(margins);
    free(meta);
    if (rc) return rc;
    char info[512];
    int k = snprintf(info, sizeof info,
                     "pathfinder%d %s (%s): %zu images in %zu batches, seed %llu, label 1: %zu\n"
                     "generated by maelre-bench data pathfinder (loaders/pathfinder_gen.c)\n",
                     size, pf_difficulty_name(d), pf_difficulty_dir(d), st->n, st->batches,
                     (unsigned long long)seed, st->label1);
    snprintf(path, sizeof path, "%s/" PF_COMPLETE, dir);
    if ((rc = pf_write_atomic(path, info, (size_t)k, err, errlen))) return rc;
    snprintf(path, sizeof path, "%s/" PF_PARTIAL, dir);
    if (unlink(path) != 0) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return MB_OK;
}

// ---------------------------------------------------------------- contact sheet

// 3 x 5 glyphs of "0" and "1", one row per byte (bits 2..0 = left..right).
static const uint8_t digit_glyph[2][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}};

int pf_contact_sheet(const PfParams *p, uint64_t seed, int cols, int rows, int zoom, uint8_t **out,
                     int *w, int *h, char *err, size_t errlen) {
    int cell = p->size * zoom + 2, g = 4, strip = 3 * g + 6;  // g: glyph pixel size
    int W = strip + cols * cell, H = 2 * rows * cell;
    uint8_t *sheet = malloc((size_t)W * H), *img = malloc((size_t)p->size * p->size);
    PfSample *s = malloc(sizeof *s);
    if (!sheet || !img || !s) {
        free(sheet); free(img); free(s);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for a %d x %d contact sheet", W, H);
    }
    memset(sheet, 64, (size_t)W * H);   // gaps and strip: dark gray, so black image borders show
    int filled[2] = {0, 0}, rc = MB_OK;
    for (uint64_t idx = 0; (filled[0] < rows * cols || filled[1] < rows * cols) && !rc; idx++) {
        if ((rc = pf_sample(p, seed, idx, s, img, err, errlen))) break;
        int l = s->label, k = filled[l];
        if (k >= rows * cols) continue;
        filled[l]++;
        int r = l * rows + k / cols, c = k % cols, ox = strip + c * cell + 1, oy = r * cell + 1;
        for (int y = 0; y < p->size * zoom; y++)
            for (int x = 0; x < p->size * zoom; x++)
                sheet[(size_t)(oy + y) * W + ox + x] = img[(y / zoom) * p->size + x / zoom];
    }
    for (int r = 0; r < 2 * rows && !rc; r++) {  // the label digit, zoom-scaled, white on the strip
        int l = r / rows, gx = 3, gy = r * cell + cell / 2 - 5 * g / 2;
        for (int y = 0; y < 5 * g; y++)
            for (int x = 0; x < 3 * g; x++)
                if (digit_glyph[l][y / g] >> (2 - x / g) & 1) sheet[(size_t)(gy + y) * W + gx + x] = 255;
    }
    free(img);
    free(s);
    if (rc) { free(sheet); return rc; }
    *out = sheet, *w = W, *h = H;
    return MB_OK;
}
