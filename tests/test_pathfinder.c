// Pathfinder generator and reader (SPEC §10.1): same seed same bytes (and any thread count),
// geometry invariants (snake lengths, spacing, turn limit from the continuity prior, clearance,
// frame), markers on the right snake ends and visible, label balance, rendered samples equal to
// hand-checked fixtures, LRA layout read back with an 80/10/10 split, bad metadata refused with
// file and line, the lra_release/ location, an interrupted generation refused, the CLI's exit 2.
#include <criterion/criterion.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "core/mem.h"
#include "core/status.h"
#include "file_util.h"
#include "loaders/dataset.h"
#include "loaders/image.h"
#include "loaders/pathfinder.h"
#include "loaders/pathfinder_gen.h"
#include "tasks/task.h"

static char g_dir[64];
static char err[1024];

static void make_tmp(void) {
    strcpy(g_dir, "/tmp/maelre-pf-XXXXXX");
    cr_assert(mkdtemp(g_dir));
}

static void rm_tmp(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    cr_assert_eq(system(cmd), 0);
}

static double seg_d(const PfPaddle *a, const PfPaddle *b) {
    // brute force: sample both segments finely (independent of the generator's closed form)
    double best = 1e9;
    for (int i = 0; i <= 200; i++) {
        double t = i / 200.0, ax = a->x0 + t * (a->x1 - a->x0), ay = a->y0 + t * (a->y1 - a->y0);
        for (int j = 0; j <= 200; j += 1) {
            double u = j / 200.0, bx = b->x0 + u * (b->x1 - b->x0), by = b->y0 + u * (b->y1 - b->y0);
            double d = hypot(ax - bx, ay - by);
            if (d < best) best = d;
        }
    }
    return best;
}

static double ang(const PfPaddle *q) { return atan2(q->y1 - q->y0, q->x1 - q->x0); }

Test(pathfinder, same_seed_same_bytes_other_seed_differs) {
    PfParams p;
    cr_assert_eq(pf_params(&p, 32, PF_HARD), MB_OK);
    uint8_t a[1024], b[1024], c[1024];
    for (uint64_t i = 0; i < 5; i++) {
        cr_assert_eq(pf_sample(&p, 7, i, NULL, a, err, sizeof err), MB_OK, "%s", err);
        cr_assert_eq(pf_sample(&p, 7, i, NULL, b, err, sizeof err), MB_OK);
        cr_assert_eq(pf_sample(&p, 8, i, NULL, c, err, sizeof err), MB_OK);
        cr_assert(!memcmp(a, b, sizeof a), "image %d differs between two calls", (int)i);
        cr_assert(memcmp(a, c, sizeof a), "seeds 7 and 8 gave the same image %d", (int)i);
    }
}

// Every snake property the header promises, for every size and difficulty.
Test(pathfinder, snakes_have_the_requested_length_and_keep_clear) {
    const int sizes[3] = {32, 64, 128};
    for (int si = 0; si < 3; si++)
        for (int d = 0; d < 3; d++) {
            PfParams p;
            cr_assert_eq(pf_params(&p, sizes[si], (PfDifficulty)d), MB_OK);
            uint8_t *img = malloc((size_t)p.size * p.size);
            PfSample s;
            for (uint64_t idx = 0; idx < 3; idx++) {
                cr_assert_eq(pf_sample(&p, 1, idx, &s, img, err, sizeof err), MB_OK, "%s", err);
                int m = s.margin;
                cr_assert(m >= p.margin_lo && m <= p.margin_hi);
                double lo = p.padding + m + p.thickness / 2 - 1e-9, hi = p.size - lo;
                double clear = p.thickness + 2 * m;
                // all paddles of the image, with (snake, position) for the adjacency exemption
                PfPaddle all[2 * PF_MAX_PADDLES + PF_MAX_SNAKES * PF_MAX_PADDLES];
                int who[sizeof all / sizeof all[0]], pos[sizeof all / sizeof all[0]], n = 0;
                for (int k = 0; k < 2 + s.n_distractors; k++) {
                    const PfSnake *sn = k < 2 ? &s.target[k] : &s.distractor[k - 2];
                    int want = k < 2 ? p.contour_length : p.distractor_length;
                    cr_assert_eq(sn->n, want, "%d px %s: snake %d has %d paddles, want %d", p.size,
                                 pf_difficulty_name((PfDifficulty)d), k, sn->n, want);
                    for (int j = 0; j < sn->n; j++) {
                        const PfPaddle *q = &sn->p[j];
                        cr_assert_float_eq(hypot(q->x1 - q->x0, q->y1 - q->y0), p.paddle_length, 1e-9);
                        cr_assert(q->x0 >= lo && q->x0 <= hi && q->y0 >= lo && q->y0 <= hi, "paddle outside the frame");
                        cr_assert(q->x1 >= lo && q->x1 <= hi && q->y1 >= lo && q->y1 <= hi, "paddle outside the frame");
                        if (j > 0) {
                            const PfPaddle *r = &sn->p[j - 1];
                            // the gap between consecutive paddles is at most 2 margins, exactly
                            // 2 margins plus nothing when straight; the turn obeys the prior's support
                            double gap = hypot(q->x0 - r->x1, q->y0 - r->y1);
                            cr_assert(gap <= 2 * m + 1e-9, "gap %g > 2m", gap);
                            double turn = fabs(remainder(ang(q) - ang(r), 2 * M_PI));
                            cr_assert(turn * p.continuity < M_PI / 2 + 1e-9, "turn %g rad beyond the prior's support", turn);
                        }
                        all[n] = *q, who[n] = k, pos[n] = j, n++;
                    }
                }
                cr_assert(s.n_distractors <= p.n_distractors && s.n_distractors >= p.n_distractors / 2,
                          "%d of %d distractors", s.n_distractors, p.n_distractors);
                // Clearance: the generator tests each new paddle against the ones drawn before it
                // except its own previous one; so any pair not adjacent on one snake keeps clear.
                for (int i = 0; i < n; i++)
                    for (int j = i + 1; j < n; j++) {
                        if (who[i] == who[j] && abs(pos[i] - pos[j]) == 1) continue;
                        const PfPaddle *u = &all[i], *v = &all[j];
                        double gx = fmax(fmin(v->x0, v->x1) - fmax(u->x0, u->x1), fmin(u->x0, u->x1) - fmax(v->x0, v->x1));
                        double gy = fmax(fmin(v->y0, v->y1) - fmax(u->y0, u->y1), fmin(u->y0, u->y1) - fmax(v->y0, v->y1));
                        if (gx > clear || gy > clear) continue;  // bounding boxes already far enough apart
                        double dd = seg_d(&all[i], &all[j]);
                        cr_assert(dd >= clear - 0.02, "%d px: paddles %d and %d are %g apart (< %g)", p.size, i, j, dd, clear);
                    }
            }
            free(img);
        }
}

Test(pathfinder, markers_sit_on_the_snake_ends_and_show) {
    PfParams p;
    cr_assert_eq(pf_params(&p, 32, PF_HARD), MB_OK);
    uint8_t img[1024];
    PfSample s;
    for (uint64_t idx = 0; idx < 40; idx++) {
        cr_assert_eq(pf_sample(&p, 3, idx, &s, img, err, sizeof err), MB_OK);
        int o = s.marker_snake[0], t = s.marker_snake[1];
        cr_assert(o == 0 || o == 1);
        cr_assert_eq(s.label, o == t, "label 1 exactly when both markers are on one snake");
        const PfSnake *so = &s.target[o], *st = &s.target[t];
        cr_assert_float_eq(s.marker[0][0], so->p[0].x0, 1e-12);
        cr_assert_float_eq(s.marker[0][1], so->p[0].y0, 1e-12);
        cr_assert_float_eq(s.marker[1][0], st->p[st->n - 1].x1, 1e-12);
        cr_assert_float_eq(s.marker[1][1], st->p[st->n - 1].y1, 1e-12);
        cr_assert(hypot(s.marker[0][0] - s.marker[1][0], s.marker[0][1] - s.marker[1][1]) > 2 * p.marker_radius,
                  "the two markers overlap");
        // Two markers visible: the brightest pixel of the 2x2 block around each centre is bright.
        for (int k = 0; k < 2; k++) {
            int cx = (int)s.marker[k][0], cy = (int)s.marker[k][1], best = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int x = cx + dx, y = cy + dy;
                    if (x >= 0 && y >= 0 && x < 32 && y < 32 && img[y * 32 + x] > best) best = img[y * 32 + x];
                }
            cr_assert(best >= 180, "image %d marker %d: brightest pixel near it is %d", (int)idx, k, best);
        }
        // and the background stays black far from everything
        cr_assert_eq(img[0], 0);
    }
}

Test(pathfinder, labels_are_balanced) {
    PfParams p;
    cr_assert_eq(pf_params(&p, 32, PF_HARD), MB_OK);
    uint8_t img[1024];
    PfSample s;
    int ones = 0;
    for (uint64_t idx = 0; idx < 200; idx++) {
        cr_assert_eq(pf_sample(&p, 11, idx, &s, img, err, sizeof err), MB_OK);
        ones += s.label;
    }
    // Binomial(200, 1/2): sd 7.1; 75..125 is 3.5 sd.
    cr_assert(ones >= 75 && ones <= 125, "%d of 200 labels are 1", ones);
}

// The fixtures were written by this generator and checked by eye, zoomed (label 1: both circles
// on the snake that runs up, across the top right and back along y = 18; label 0: the circles on
// the two different snakes). A change of geometry or rendering changes these bytes.
Test(pathfinder, rendered_samples_match_the_fixtures) {
    PfParams p;
    cr_assert_eq(pf_params(&p, 32, PF_HARD), MB_OK);
    for (int label = 0; label < 2; label++) {
        char path[128];
        snprintf(path, sizeof path, "tests/fixtures/pathfinder32_hard_seed0_label%d.png", label);
        size_t n = 0;
        unsigned char *bytes = (unsigned char *)slurp(path);
        cr_assert(bytes, "%s missing (tests run from the repository root)", path);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        n = (size_t)st.st_size;
        Image im;
        cr_assert_eq(image_decode(path, bytes, n, &im, err, sizeof err), MB_OK, "%s", err);
        cr_assert(im.w == 32 && im.h == 32 && im.channels == 1);
        // seed 0: image 0 has label 0, image 1 label 1
        uint8_t img[1024];
        PfSample s;
        cr_assert_eq(pf_sample(&p, 0, (uint64_t)label, &s, img, err, sizeof err), MB_OK);
        cr_assert_eq(s.label, label);
        int diff = 0;
        for (int i = 0; i < 1024; i++) diff += img[i] != im.pix[i];
        cr_assert_eq(diff, 0, "%s: %d pixels differ from the generator's image", path, diff);
        // and the PNG written now is the committed file, byte for byte
        unsigned char *png;
        size_t len;
        cr_assert_eq(pf_png(img, 32, 32, &png, &len), MB_OK);
        cr_assert(len == n && !memcmp(png, bytes, n), "%s: PNG bytes differ", path);
        free(png);
        image_free(&im);
        free(bytes);
    }
}

static void load(const char *root, Split sp, size_t limit, SeqSet *out) {
    DataSpec ds = {0};
    strcpy(ds.source, "pathfinder");
    strcpy(ds.path, "pathfinder32/curv_baseline");
    ds.max_len = 1024;
    ds.limit = limit;
    cr_assert_eq(dataset_load(&ds, root, sp, out, err, sizeof err), MB_OK, "%s", err);
}

static size_t count_label(const SeqSet *s, int l) {
    size_t c = 0;
    for (size_t i = 0; i < s->n; i++) c += s->items[i].label == l;
    return c;
}

Test(pathfinder, layout_is_lras_and_reads_back_split_80_10_10) {
    make_tmp();
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    PfStats st;
    cr_assert_eq(pf_generate(g_dir, 32, PF_EASY, 1030, 4, NULL, NULL, &st, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(st.n, 1030);
    cr_assert_eq(st.batches, 2);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/metadata/1.npy", g_dir);
    char *meta = slurp(p);
    cr_assert(meta, "%s missing", p);
    cr_assert(!strncmp(meta, "imgs/1 sample_0.png 0 ", 22), "%s", meta);
    size_t lines = 0, ones = 0;
    for (char *l = meta; *l; l = strchr(l, '\n') + 1) {
        char sub[32], file[64];
        int idx, label;
        cr_assert_eq(sscanf(l, "%31s %63s %d %d", sub, file, &idx, &label), 4, "%s", l);
        snprintf(q, sizeof q, "%s/pathfinder32/curv_baseline/%s/%s", g_dir, sub, file);
        struct stat sb;
        cr_assert_eq(stat(q, &sb), 0, "%s listed but missing", q);
        lines++;
        ones += (size_t)label;
        if (!strchr(l, '\n')) break;
    }
    free(meta);
    cr_assert_eq(lines, 30);
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/COMPLETE", g_dir);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0, "no completion marker");
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/PARTIAL", g_dir);
    cr_assert_neq(stat(p, &sb), 0, "PARTIAL left behind");

    // One thread gives the same files.
    char other[600];
    snprintf(other, sizeof other, "%s/one", g_dir);
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    cr_assert_eq(pf_generate(other, 32, PF_EASY, 1030, 4, NULL, NULL, NULL, err, sizeof err), MB_OK, "%s", err);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "diff -r %s/pathfinder32 %s/pathfinder32 >/dev/null", g_dir, other);
    cr_assert_eq(system(cmd), 0, "1 and 2 threads wrote different datasets");

    SeqSet tr, va, te;
    load(g_dir, SPLIT_TRAIN, 0, &tr);
    load(g_dir, SPLIT_VAL, 0, &va);
    load(g_dir, SPLIT_TEST, 0, &te);
    cr_assert_eq(tr.n, 824);
    cr_assert_eq(va.n, 103);
    cr_assert_eq(te.n, 103);
    cr_assert_eq(tr.vocab, 256);
    cr_assert_eq(tr.n_classes, 2);
    cr_assert_eq(count_label(&tr, 1) + count_label(&va, 1) + count_label(&te, 1), st.label1);
    for (size_t i = 0; i < tr.n; i++) {
        cr_assert_eq(tr.items[i].len, 1024);
        cr_assert_eq(tr.items[i].id_bytes, 1, "pixel ids are stored as bytes");
        for (size_t j = 0; j < 1024; j++) cr_assert(seq_id(&tr.items[i], j) >= 0 && seq_id(&tr.items[i], j) < 256);
    }
    // The splits are disjoint: no image appears in two of them (images are all distinct).
    for (size_t i = 0; i < va.n; i++)
        for (size_t j = 0; j < te.n; j++)
            cr_assert(memcmp(va.items[i].ids, te.items[j].ids, 1024 * va.items[i].id_bytes), "val %zu = test %zu", i, j);
    // A limit picks a class-balanced subset, the same one twice.
    SeqSet l1, l2;
    load(g_dir, SPLIT_TRAIN, 100, &l1);
    load(g_dir, SPLIT_TRAIN, 100, &l2);
    cr_assert_eq(l1.n, 100);
    cr_assert_eq(count_label(&l1, 1), 50);
    for (size_t i = 0; i < l1.n; i++) cr_assert(!memcmp(l1.items[i].ids, l2.items[i].ids, 1024 * l1.items[i].id_bytes));
    seqset_free(&l1);
    seqset_free(&l2);
    seqset_free(&tr);
    seqset_free(&va);
    seqset_free(&te);

    // LRA's release location: <root>/lra_release/pathfinder32/...
    snprintf(cmd, sizeof cmd, "mkdir %s/rel && mkdir %s/rel/lra_release && mv %s/pathfinder32 %s/rel/lra_release/", g_dir, g_dir,
             g_dir, g_dir);
    cr_assert_eq(system(cmd), 0);
    snprintf(p, sizeof p, "%s/rel", g_dir);
    load(p, SPLIT_TEST, 0, &te);
    cr_assert_eq(te.n, 103);
    seqset_free(&te);
    // An interrupted generation is not taken for a dataset.
    snprintf(q, sizeof q, "%s/rel/lra_release/pathfinder32/curv_baseline/PARTIAL", g_dir);
    spit(q, "x");
    char dir[1024];
    cr_assert_eq(pathfinder_find(p, "pathfinder32/curv_baseline", dir, sizeof dir, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "interrupted"), "%s", err);
    rm_tmp();
}

Test(pathfinder, bad_metadata_names_file_and_line) {
    make_tmp();
    char p[512];
    snprintf(p, sizeof p, "mkdir -p %s/pathfinder32/curv_baseline/metadata %s/pathfinder32/curv_baseline/imgs/0", g_dir, g_dir);
    cr_assert_eq(system(p), 0);
    PfParams pp;
    pf_params(&pp, 32, PF_EASY);
    uint8_t img[1024];
    unsigned char *png;
    size_t len;
    cr_assert_eq(pf_sample(&pp, 0, 0, NULL, img, err, sizeof err), MB_OK);
    cr_assert_eq(pf_png(img, 32, 32, &png, &len), MB_OK);
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/imgs/0/sample_0.png", g_dir);
    cr_assert_eq(pf_write_atomic(p, png, len, err, sizeof err), MB_OK);
    free(png);
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/imgs/0/sample_1.png", g_dir);
    spit(p, "");  // an empty image is skipped (LRA's release has one)
    snprintf(p, sizeof p, "%s/pathfinder32/curv_baseline/metadata/0.npy", g_dir);
    spit(p, "imgs/0 sample_0.png 0 1 1.0\nimgs/0 sample_1.png 1 0\n\n");
    DataSpec ds = {0};
    strcpy(ds.source, "pathfinder");
    strcpy(ds.path, "pathfinder32/curv_baseline");
    ds.max_len = 1024;
    SeqSet s;
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(s.n, 1, "the empty image is skipped, the other read");
    cr_assert_eq(s.items[0].label, 1);
    seqset_free(&s);
    spit(p, "imgs/0 sample_0.png 0 1\nimgs/0 sample_0.png 1 2\n");
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "metadata/0.npy:2: label (field 4) must be 0 or 1"), "%s", err);
    spit(p, "imgs/0 sample_0.png 0\n");
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "0.npy:1: expected at least 4 fields"), "%s", err);
    spit(p, "../../x sample_0.png 0 1\n");
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "leaves the dataset folder"), "%s", err);
    spit(p, "imgs/0 sample_9.png 0 1\n");
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "sample_9.png"), "a missing image is named: %s", err);
    ds.max_len = 100;  // a 32 x 32 image is not cut to fit a smaller task
    spit(p, "imgs/0 sample_0.png 0 1\n");
    cr_assert_eq(dataset_load(&ds, g_dir, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "32 x 32"), "%s", err);
    rm_tmp();
}

Test(pathfinder, tasks_are_registered) {
    const char *names[2] = {"lra-pathfinder", "lra-pathx"};
    const size_t len[2] = {1024, 16384};
    const char *path[2] = {"pathfinder32/curv_contour_length_14", "pathfinder128/curv_contour_length_14"};
    for (int i = 0; i < 2; i++) {
        Task t;
        cr_assert_eq(task_load(&t, names[i], NULL, "/nonexistent", err, sizeof err), MB_OK, "%s: %s", names[i], err);
        cr_assert_eq(t.classes, 2);
        cr_assert_eq(t.data.max_len, len[i]);
        cr_assert_str_eq(t.data.source, "pathfinder");
        cr_assert_str_eq(t.data.path, path[i]);
        int size;
        PfDifficulty d;
        cr_assert(pf_parse_path(t.data.path, &size, &d) && d == PF_HARD && (size_t)size * size == len[i]);
        cr_assert(t.quick.train_limit > 0 && t.quick.test_limit > 0 && t.quick.steps > 0);
        // MAELRE's stages bring the sequence below D before the last stage
        double n = (double)len[i];
        for (size_t s = 0; s + 1 < t.model.n_stages; s++) n = floor(n * t.model.stages[s].keep);
        cr_assert(n <= (double)t.model.dim, "%s: %g tokens reach the last stage", names[i], n);
        cr_assert(!task_data_present(&t, "/nonexistent"));
        task_free(&t);
    }
}

static char out[1 << 14], errtxt[1 << 14];

static int run_cli(const char *args) {
    const char *bin = getenv("MAELRE_BIN");
    if (!bin || !*bin) cr_skip_test("MAELRE_BIN is not set (run through `make test`): CLI not exercised");
    char cmd[2048], p[256];
    snprintf(cmd, sizeof cmd, "%s %s >%s/stdout 2>%s/stderr", bin, args, g_dir, g_dir);
    int st = system(cmd);
    snprintf(p, sizeof p, "%s/stdout", g_dir);
    char *o = slurp(p);
    snprintf(out, sizeof out, "%s", o ? o : "");
    free(o);
    snprintf(p, sizeof p, "%s/stderr", g_dir);
    o = slurp(p);
    snprintf(errtxt, sizeof errtxt, "%s", o ? o : "");
    free(o);
    cr_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

Test(pathfinder, cli_generates_deterministically_and_refuses_bad_arguments) {
    make_tmp();
    char a[512], c[1024];
    snprintf(a, sizeof a, "data pathfinder --out %s/r1 --count 12 --seed 9 --difficulty intermediate", g_dir);
    cr_assert_eq(run_cli(a), 0, "%s", errtxt);
    cr_assert(strstr(out, "wrote 12 images of 32 px (intermediate, curv_contour_length_9)"), "%s", out);
    snprintf(a, sizeof a, "data pathfinder --out %s/r2 --count 12 --seed 9 --difficulty curv_contour_length_9", g_dir);
    cr_assert_eq(run_cli(a), 0, "%s", errtxt);
    snprintf(c, sizeof c, "diff -r %s/r1/pathfinder32 %s/r2/pathfinder32 >/dev/null", g_dir, g_dir);
    cr_assert_eq(system(c), 0, "same seed, different files");
    snprintf(a, sizeof a, "data pathfinder --out %s/r3 --count 12 --seed 10 --difficulty intermediate", g_dir);
    cr_assert_eq(run_cli(a), 0, "%s", errtxt);
    snprintf(c, sizeof c, "cmp -s %s/r1/pathfinder32/curv_contour_length_9/imgs/0/sample_0.png "
                          "%s/r3/pathfinder32/curv_contour_length_9/imgs/0/sample_0.png", g_dir, g_dir);
    cr_assert_neq(system(c), 0, "seeds 9 and 10 gave the same image");
    snprintf(a, sizeof a, "data check --task lra-pathfinder --data-root %s/r1", g_dir);
    cr_assert_eq(run_cli(a), 3, "the hard set is not there");
    cr_assert(strstr(errtxt, "no Pathfinder data"), "%s", errtxt);

    const char *bad[] = {"--size 48", "--difficulty medium", "--count 0", "--count abc", "--seed -1", "--frob 1",
                         "--size", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(a, sizeof a, "data pathfinder %s%s %s", i + 1 < sizeof bad / sizeof bad[0] ? "--out " : "",
                 i + 1 < sizeof bad / sizeof bad[0] ? g_dir : "", bad[i]);
        cr_assert_eq(run_cli(a), 2, "'%s' should exit 2", a);
        cr_assert(strstr(errtxt, "maelre-bench: data pathfinder"), "'%s': %s", a, errtxt);
    }
    snprintf(a, sizeof a, "data pathfinder --out %s/x --size 48", g_dir);
    run_cli(a);
    cr_assert(strstr(errtxt, "--size must be 32, 64 or 128"), "%s", errtxt);
    struct stat sb;
    snprintf(c, sizeof c, "%s/x", g_dir);
    cr_assert_neq(stat(c, &sb), 0, "a refused run wrote nothing");
    rm_tmp();
}
