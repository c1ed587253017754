// Token merging (core/merge.c): plan structure (targets reached exactly, r <= |A|, survivors keep
// their order, deterministic ties, local with w >= N equals global, keep 1 is the identity),
// merge_forward conservation of sum s and sum s x, merge_backward against finite differences,
// the cost of local vs global matching, and the adaptive (threshold) amount.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/flops.h"
#include "core/kernels.h"
#include "core/merge.h"
#include "core/rng.h"
#include "core/status.h"

static void fill(float *x, size_t n, float scale, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(rng);
}

// Builds a plan with freshly allocated work buffers. dst must hold N entries.
static MergePlan plan(size_t *dst, const float *k, size_t ld, const float *s, size_t N, size_t D,
                      size_t H, size_t target, MatchKind kind, size_t w, size_t local_until) {
    MergePlan p = {.dst = dst};
    float *work = malloc((merge_plan_work_floats(N, D, H) + 1) * sizeof(float));
    size_t *iwork = malloc((merge_plan_work_sizes(N) + 1) * sizeof(size_t));
    merge_plan_build(&p, k, ld, s, N, D, H, target, kind, w, local_until, 0.0f, work, iwork);
    free(work);
    free(iwork);
    return p;
}

// dst maps onto [0, n_out) and hits every output row.
static void assert_valid(const MergePlan *p) {
    char *hit = calloc(p->n_out + 1, 1);
    for (size_t i = 0; i < p->n_in; i++) {
        cr_assert_lt(p->dst[i], p->n_out, "dst[%zu] = %zu out of range", i, p->dst[i]);
        hit[p->dst[i]] = 1;
    }
    for (size_t g = 0; g < p->n_out; g++) cr_assert(hit[g], "output row %zu is empty", g);
    free(hit);
}

Test(merge, keep_one_is_identity) {
    size_t N = 13, D = 6, H = 2, dst[13];
    uint64_t rng = 1;
    float k[13 * 6], x[13 * 6], s[13], xo[13 * 6], so[13];
    fill(k, N * D, 1.0f, &rng);
    fill(x, N * D, 1.0f, &rng);
    for (size_t i = 0; i < N; i++) s[i] = 1.0f + (float)rng_below(&rng, 4);
    for (int kind = 0; kind < 2; kind++) {
        MergePlan p = plan(dst, k, D, s, N, D, H, N, (MatchKind)kind, 3, 0);
        cr_assert_eq(p.n_in, N);
        cr_assert_eq(p.n_out, N);
        for (size_t i = 0; i < N; i++) cr_assert_eq(dst[i], i);
        merge_forward(xo, so, x, s, &p, D);
        for (size_t i = 0; i < N * D; i++) cr_assert_float_eq(xo[i], x[i], 1e-6f);
        for (size_t i = 0; i < N; i++) cr_assert_eq(so[i], s[i]);
    }
}

// Merging keeps sum s and sum s x, reaches every target exactly, for global, local and mixed
// matching with non-unit sizes, over one and several rounds.
Test(merge, conserves_mass_and_reaches_target) {
    size_t N = 50, D = 8, H = 2, ld = 3 * D;
    uint64_t rng = 2;
    float *k = malloc(N * ld * sizeof(float)), *x = malloc(N * D * sizeof(float));
    float *s = malloc(N * sizeof(float)), *xo = malloc(N * D * sizeof(float));
    float *so = malloc(N * sizeof(float));
    size_t *dst = malloc(N * sizeof(size_t));
    fill(k, N * ld, 1.0f, &rng);
    fill(x, N * D, 1.0f, &rng);
    double S = 0, SX[8] = {0};
    for (size_t i = 0; i < N; i++) {
        s[i] = 1.0f + (float)rng_below(&rng, 4);
        S += s[i];
        for (size_t c = 0; c < D; c++) SX[c] += (double)s[i] * x[i * D + c];
    }
    size_t targets[] = {49, 30, 25, 24, 10, 3, 1};
    struct { MatchKind kind; size_t w, until; } modes[] = {
        {MATCH_GLOBAL, 0, 0}, {MATCH_LOCAL, 2, 0}, {MATCH_LOCAL, 8, 20}, {MATCH_LOCAL, 1, 0}};
    for (size_t m = 0; m < 4; m++)
        for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
            MergePlan p = plan(dst, k, ld, s, N, D, H, targets[t], modes[m].kind, modes[m].w,
                               modes[m].until);
            cr_assert_eq(p.n_out, targets[t], "mode %zu: %zu tokens, wanted %zu", m, p.n_out,
                         targets[t]);
            assert_valid(&p);
            merge_forward(xo, so, x, s, &p, D);
            double S2 = 0, SX2[8] = {0};
            for (size_t g = 0; g < p.n_out; g++) {
                S2 += so[g];
                for (size_t c = 0; c < D; c++) SX2[c] += (double)so[g] * xo[g * D + c];
            }
            cr_assert_eq(S2, S, "sum of sizes");
            for (size_t c = 0; c < D; c++)
                cr_assert_float_eq(SX2[c], SX[c], 1e-4 * (1 + fabs(SX[c])), "sum s x col %zu", c);
        }
    free(k); free(x); free(s); free(xo); free(so); free(dst);
}

// One round: every A token merges into a B token (never A into A), B tokens stay in order and at
// most |A| tokens go. With a target of floor(N/2) = |B|, all of A merges: one b per group.
Test(merge, one_round_structure_and_r_at_most_A) {
    size_t D = 8, H = 1;
    size_t cases[][2] = {{20, 12}, {10, 5}, {9, 4}, {9, 5}, {2, 1}};
    for (size_t t = 0; t < 5; t++) {
        size_t N = cases[t][0], target = cases[t][1], dst[20], odd_in[20] = {0}, members[20] = {0};
        uint64_t rng = 3 + t;
        float k[20 * 8];
        fill(k, N * D, 1.0f, &rng);
        for (int kind = 0; kind < 2; kind++) {
            memset(odd_in, 0, sizeof odd_in);
            memset(members, 0, sizeof members);
            MergePlan p = plan(dst, k, D, NULL, N, D, H, target, (MatchKind)kind, 3, 0);
            cr_assert_eq(p.n_out, target);
            assert_valid(&p);
            for (size_t i = 0; i < N; i++) {
                members[dst[i]]++;
                if (i % 2) odd_in[dst[i]]++;
            }
            for (size_t i = 3; i < N; i += 2) cr_assert_gt(dst[i], dst[i - 2], "B order");
            for (size_t g = 0; g < p.n_out; g++) {
                cr_assert_leq(odd_in[g], 1, "two B tokens in one group");
                if (members[g] > 1) cr_assert_eq(odd_in[g], 1, "A merged into A");
                if (target == N / 2) cr_assert_eq(odd_in[g], 1, "all of A merged: groups are B");
            }
        }
    }
}

// Equal keys make every similarity equal: ties go to the lower b and the lower a, so a0 and a1
// (positions 0 and 2) merge into b0 (position 1).
Test(merge, deterministic_ties) {
    size_t N = 6, D = 4, dst[6];
    float k[6 * 4];
    for (size_t i = 0; i < N * D; i++) k[i] = 0.5f;
    size_t want[6] = {0, 0, 0, 1, 2, 3};
    for (int kind = 0; kind < 2; kind++) {
        MergePlan p = plan(dst, k, D, NULL, N, D, 2, 4, (MatchKind)kind, 1, 0);
        cr_assert_eq(p.n_out, 4);
        for (size_t i = 0; i < N; i++) cr_assert_eq(dst[i], want[i], "kind %d token %zu", kind, i);
    }
}

// Token 0 is a near copy of token 7: global matching merges them and the merged token sits where
// token 7 was (order kept; ToMe would move it). Local matching with a small window cannot see it.
Test(merge, order_kept_and_local_window_respected) {
    size_t N = 8, D = 16, dst[8];
    uint64_t rng = 9;
    float k[8 * 16];
    fill(k, N * D, 1.0f, &rng);
    for (size_t c = 0; c < D; c++) k[7 * D + c] = k[c] + 0.01f * rng_normal(&rng);
    size_t want[8] = {6, 0, 1, 2, 3, 4, 5, 6};
    MergePlan p = plan(dst, k, D, NULL, N, D, 1, 7, MATCH_GLOBAL, 0, 0);
    for (size_t i = 0; i < N; i++) cr_assert_eq(dst[i], want[i], "global token %zu", i);
    p = plan(dst, k, D, NULL, N, D, 1, 7, MATCH_LOCAL, 8, 0);
    for (size_t i = 0; i < N; i++) cr_assert_eq(dst[i], want[i], "local w=8 token %zu", i);
    p = plan(dst, k, D, NULL, N, D, 1, 7, MATCH_LOCAL, 2, 0);
    cr_assert_eq(p.n_out, 7);
    cr_assert_neq(dst[0], dst[7], "w=2 matched positions 7 apart");
    // MATCH_LOCAL on a sequence not longer than local_until matches globally
    p = plan(dst, k, D, NULL, N, D, 1, 7, MATCH_LOCAL, 2, 8);
    for (size_t i = 0; i < N; i++) cr_assert_eq(dst[i], want[i], "local_until token %zu", i);
}

// Local matching whose window covers the whole sequence gives the global plan, over several
// rounds and with non-unit sizes (so the carried size-weighted metric is exercised too).
Test(merge, local_with_wide_window_equals_global) {
    size_t Ns[] = {64, 33, 101};
    for (size_t t = 0; t < 3; t++) {
        size_t N = Ns[t], D = 12, H = 3, ld = 3 * D;
        uint64_t rng = 50 + t;
        float *k = malloc(N * ld * sizeof(float)), *s = malloc(N * sizeof(float));
        size_t *d1 = malloc(N * sizeof(size_t)), *d2 = malloc(N * sizeof(size_t));
        fill(k, N * ld, 1.0f, &rng);
        for (size_t i = 0; i < N; i++) s[i] = 1.0f + (float)rng_below(&rng, 3);
        size_t targets[] = {N - 1, N / 2 + 3, N / 4, 5};
        for (size_t j = 0; j < 4; j++) {
            MergePlan g = plan(d1, k, ld, s, N, D, H, targets[j], MATCH_GLOBAL, 0, 0);
            MergePlan l = plan(d2, k, ld, s, N, D, H, targets[j], MATCH_LOCAL, N, 0);
            cr_assert_eq(g.n_out, l.n_out);
            for (size_t i = 0; i < N; i++)
                cr_assert_eq(d1[i], d2[i], "N=%zu target=%zu token %zu", N, targets[j], i);
        }
        // and a narrow window really gives a different plan on random data
        MergePlan l = plan(d2, k, ld, s, N, D, H, N / 4, MATCH_LOCAL, 1, 0);
        plan(d1, k, ld, s, N, D, H, N / 4, MATCH_GLOBAL, 0, 0);
        cr_assert_eq(l.n_out, N / 4);
        cr_assert_neq(memcmp(d1, d2, N * sizeof(size_t)), 0);
        free(k); free(s); free(d1); free(d2);
    }
}

// merge_backward is the exact adjoint of merge_forward in x (sizes and plan constant): central
// differences of a double evaluation of sum G * x_out; backward accumulates.
Test(merge, backward_matches_finite_differences) {
    size_t N = 11, D = 5, H = 1, dst[11];
    uint64_t rng = 70;
    float k[11 * 5], x[11 * 5], s[11], G[11 * 5], xo[11 * 5], so[11], dx[11 * 5], dx0[11 * 5];
    fill(k, N * D, 1.0f, &rng);
    fill(x, N * D, 1.0f, &rng);
    fill(G, N * D, 1.0f, &rng);
    fill(dx0, N * D, 1.0f, &rng);
    for (size_t i = 0; i < N; i++) s[i] = 1.0f + (float)rng_below(&rng, 5);
    MergePlan p = plan(dst, k, D, s, N, D, H, 4, MATCH_GLOBAL, 0, 0);
    cr_assert_eq(p.n_out, 4);
    merge_forward(xo, so, x, s, &p, D);
    memcpy(dx, dx0, sizeof dx);
    merge_backward(dx, G, s, so, &p, D);
    double xd[11 * 5];
    for (size_t i = 0; i < N * D; i++) xd[i] = x[i];
    const double eps = 1e-4;
    double num = 0, den = 0;
    for (size_t e = 0; e < N * D; e++) {
        double L[2];
        for (int sg = 0; sg < 2; sg++) {
            double keep = xd[e];
            xd[e] = keep + (sg ? -eps : eps);
            double acc[11 * 5] = {0}, ssum[11] = {0}, l = 0;
            for (size_t i = 0; i < N; i++) {
                ssum[dst[i]] += s[i];
                for (size_t c = 0; c < D; c++) acc[dst[i] * D + c] += s[i] * xd[i * D + c];
            }
            for (size_t g = 0; g < p.n_out; g++)
                for (size_t c = 0; c < D; c++) l += G[g * D + c] * acc[g * D + c] / ssum[g];
            L[sg] = l;
            xd[e] = keep;
        }
        double fd = (L[0] - L[1]) / (2 * eps);
        num = fmax(num, fabs((dx[e] - dx0[e]) - fd));
        den = fmax(den, fabs(fd));
    }
    cr_assert_gt(den, 0.1);
    cr_assert_lt(num / den, 1e-5, "rel err %g", num / den);
}

// Global matching costs O(N^2 d), local O(N w d): doubling N doubles the local matcher's FLOPs and
// about quadruples the global one's.
Test(merge, matcher_cost_scaling) {
    size_t D = 8, H = 1;
    double fl[2][2];
    for (int t = 0; t < 2; t++) {
        size_t N = 256 << t;
        uint64_t rng = 90;
        float *k = malloc(N * D * sizeof(float));
        size_t *dst = malloc(N * sizeof(size_t));
        fill(k, N * D, 1.0f, &rng);
        for (int kind = 0; kind < 2; kind++) {
            FlopCounter fc = {0};
            flops_install(&fc);
            plan(dst, k, D, NULL, N, D, H, N - N / 4, (MatchKind)kind, 8, 0);
            flops_install(NULL);
            fl[kind][t] = fc.flops;
        }
        free(k);
        free(dst);
    }
    double rg = fl[MATCH_GLOBAL][1] / fl[MATCH_GLOBAL][0], rl = fl[MATCH_LOCAL][1] / fl[MATCH_LOCAL][0];
    cr_assert(rg > 3.5 && rg < 4.1, "global ratio %g", rg);
    cr_assert(rl > 1.9 && rl < 2.1, "local ratio %g", rl);
}

// ---------------------------------------------------------------- parity with methods_ref.py
// tests/reference/merge_plan_fixture.txt is written by
//   /usr/bin/python3 tests/reference/methods_ref.py --write-plan-fixture tests/reference/merge_plan_fixture.txt
// (the torch/numpy mirror that make_fixtures.py uses for tome/maelre). The C plan must be the same
// assignment and merge_forward the same size-weighted average.
#define PLAN_FIXTURE "tests/reference/merge_plan_fixture.txt"

static void read_floats(FILE *f, const char *tag, float *x, size_t n) {
    char word[32];
    cr_assert_eq(fscanf(f, "%31s", word), 1);
    cr_assert_str_eq(word, tag, PLAN_FIXTURE ": expected '%s', found '%s'", tag, word);
    for (size_t i = 0; i < n; i++) cr_assert_eq(fscanf(f, "%f", &x[i]), 1, "%s[%zu]", tag, i);
}

Test(merge, matches_python_reference_plan) {
    FILE *f = fopen(PLAN_FIXTURE, "r");
    cr_assert(f, "cannot open %s (run the tests from the repository root)", PLAN_FIXTURE);
    char magic[64];
    int version = 0, cases = 0;
    cr_assert_eq(fscanf(f, "%63s %d", magic, &version), 2);
    cr_assert_str_eq(magic, "MAELRE-MERGE-PLAN-FIXTURE", "%s: not a merge-plan fixture", PLAN_FIXTURE);
    cr_assert_eq(version, 1, "%s: version %d, expected 1 (regenerate it with methods_ref.py)",
                 PLAN_FIXTURE, version);
    cr_assert_eq(fscanf(f, " cases %d", &cases), 1);
    cr_assert_gt(cases, 0);
    for (int c = 0; c < cases; c++) {
        size_t N, D, H, target, w, until, n_out;
        char kind[16];
        cr_assert_eq(fscanf(f, " case N %zu D %zu H %zu target %zu kind %15s window %zu local_until %zu n_out %zu",
                            &N, &D, &H, &target, kind, &w, &until, &n_out), 8, "case %d header", c);
        float *k = malloc(N * D * sizeof(float)), *s = malloc(N * sizeof(float));
        float *x = malloc(N * D * sizeof(float)), *xo_ref = malloc(N * D * sizeof(float));
        float *so_ref = malloc(N * sizeof(float)), *xo = malloc(N * D * sizeof(float));
        float *so = malloc(N * sizeof(float));
        size_t *dst_ref = malloc(N * sizeof(size_t)), *dst = malloc(N * sizeof(size_t));
        read_floats(f, "k", k, N * D);
        read_floats(f, "s", s, N);
        read_floats(f, "x", x, N * D);
        char word[32];
        cr_assert_eq(fscanf(f, "%31s", word), 1);
        cr_assert_str_eq(word, "dst");
        for (size_t i = 0; i < N; i++) cr_assert_eq(fscanf(f, "%zu", &dst_ref[i]), 1);
        read_floats(f, "x_out", xo_ref, n_out * D);
        read_floats(f, "s_out", so_ref, n_out);
        MatchKind mk = strcmp(kind, "local") == 0 ? MATCH_LOCAL : MATCH_GLOBAL;
        MergePlan p = plan(dst, k, D, s, N, D, H, target, mk, w, until);
        cr_assert_eq(p.n_out, n_out, "case %d: %zu tokens, python %zu", c, p.n_out, n_out);
        for (size_t i = 0; i < N; i++)
            cr_assert_eq(dst[i], dst_ref[i], "case %d (%s): token %zu goes to %zu, python %zu", c,
                         kind, i, dst[i], dst_ref[i]);
        merge_forward(xo, so, x, s, &p, D);
        for (size_t g = 0; g < n_out; g++) cr_assert_eq(so[g], so_ref[g], "case %d s_out[%zu]", c, g);
        for (size_t i = 0; i < n_out * D; i++)
            cr_assert_float_eq(xo[i], xo_ref[i], 1e-5f * (1.0f + fabsf(xo_ref[i])), "case %d x_out[%zu]",
                               c, i);
        free(k); free(s); free(x); free(xo_ref); free(so_ref); free(xo); free(so); free(dst_ref);
        free(dst);
    }
    fclose(f);
}

// merge_plan_build (restructured, vectorised, parallel local matcher) against the plain planner:
// the same plan bit for bit, for windows odd and even, one round and several, r < |A| and
// r = |A| (the sort skipped), sizes, keys quantised to a few levels so that exact similarity
// ties are everywhere, and a NaN key; N large enough for the vectorised interior blocks. In
// every kernel set this CPU has (core/merge_isa.h is compiled once per set).
static void fast_planner_equals_plain_in(KernelSet ks) {
    char err[256];
    cr_assert_eq(kernels_force(ks, err, sizeof err), MB_OK, "%s", err);
    static const size_t Ns[] = {150, 301, 1100, 2049, 4096};
    static const size_t ws[] = {1, 2, 7, 8, 9, 16};
    static const double keeps[] = {0.25, 0.6, 0.13};
    size_t D = 64, H = 2;
    uint64_t rng = 7;
    size_t cases = 0, adaptive_between = 0;
    for (size_t ni = 0; ni < 5; ni++) {
        size_t N = Ns[ni];
        float *k = malloc(N * D * sizeof(float)), *s = malloc(N * sizeof(float));
        size_t *d0 = malloc(N * sizeof(size_t)), *d1 = malloc(N * sizeof(size_t));
        float *work = malloc(merge_plan_work_floats(N, D, H) * sizeof(float));
        size_t *iwork = malloc(merge_plan_work_sizes(N) * sizeof(size_t));
        for (int variant = 0; variant < 3; variant++) {
            fill(k, N * D, 1.0f, &rng);
            if (variant == 1)   // three levels: many exact ties
                for (size_t i = 0; i < N * D; i++) k[i] = k[i] > 0.5f ? 1.0f : (k[i] < -0.5f ? -1.0f : 0.0f);
            if (variant == 2) k[(N / 2) * D + 3] = NAN;
            for (size_t i = 0; i < N; i++) s[i] = 1.0f + (float)rng_below(&rng, 3);
            for (size_t wi = 0; wi < 6; wi++)
                for (size_t ki = 0; ki < 6; ki++) {   // keeps, then the same floors adaptive
                    size_t target = (size_t)(keeps[ki % 3] * (double)N);
                    float thr = ki < 3 ? 0.0f : 0.2f;   // about the typical best similarity here
                    MergePlan p0 = {.dst = d0}, p1 = {.dst = d1};
                    merge_plan_build_plain(&p0, k, D, variant ? s : NULL, N, D, H, target,
                                           MATCH_LOCAL, ws[wi], 100, thr, work, iwork);
                    merge_plan_build(&p1, k, D, variant ? s : NULL, N, D, H, target, MATCH_LOCAL,
                                     ws[wi], 100, thr, work, iwork);
                    cr_assert_eq(p1.n_out, p0.n_out);
                    cr_assert(memcmp(d0, d1, N * sizeof(size_t)) == 0,
                              "%s: N=%zu w=%zu keep=%g thr=%g variant %d: plans differ", kernels_name(ks), N, ws[wi], keeps[ki % 3],
                              (double)thr, variant);
                    if (thr > 0) adaptive_between += p1.n_out > target && p1.n_out < N;
                    cases++;
                }
        }
        free(k); free(s); free(d0); free(d1); free(work); free(iwork);
    }
    cr_assert_eq(cases, 5 * 3 * 6 * 6);
    cr_assert_gt(adaptive_between, 60, "the adaptive cases must stop between floor and N: %zu", adaptive_between);
}

Test(merge, fast_planner_equals_plain) {
    size_t sets = 0;
    for (int ks = 0; ks < KERNELS_COUNT; ks++)
        if (kernels_cpu_mask() >> ks & 1u) { fast_planner_equals_plain_in((KernelSet)ks); sets++; }
    cr_expect_geq(sets, 1);
}

// merge_forward and merge_backward give the same bits in every kernel set this CPU has.
Test(merge, merge_rows_same_in_every_set) {
    enum { N = 301, D = 64 };
    static float k[N * D], s[N], x[N * D], xo[3][N * D], so[3][N], dxo[N * D], dxi[3][N * D];
    uint64_t rng = 11;
    fill(k, N * D, 1.0f, &rng); fill(x, N * D, 1.0f, &rng); fill(dxo, N * D, 1.0f, &rng);
    for (size_t i = 0; i < N; i++) s[i] = 1.0f + (float)rng_below(&rng, 3);
    size_t dst[N];
    MergePlan p = plan(dst, k, D, s, N, D, 2, N / 4, MATCH_LOCAL, 8, 64);
    char err[256];
    int ran = 0;
    for (int ks = 0; ks < KERNELS_COUNT; ks++) {
        if (!(kernels_cpu_mask() >> ks & 1u)) continue;
        cr_assert_eq(kernels_force((KernelSet)ks, err, sizeof err), MB_OK, "%s", err);
        merge_forward(xo[ks], so[ks], x, s, &p, D);
        memset(dxi[ks], 0, sizeof dxi[ks]);
        merge_backward(dxi[ks], dxo, s, so[ks], &p, D);
        if (ks > 0) {
            cr_expect(!memcmp(xo[ks], xo[0], p.n_out * D * sizeof(float)), "%s: merge_forward differs", kernels_name((KernelSet)ks));
            cr_expect(!memcmp(so[ks], so[0], p.n_out * sizeof(float)), "%s: sizes differ", kernels_name((KernelSet)ks));
            cr_expect(!memcmp(dxi[ks], dxi[0], sizeof dxi[0]), "%s: merge_backward differs", kernels_name((KernelSet)ks));
        }
        ran++;
    }
    cr_expect_geq(ran, 1);
}


// Adaptive amount (threshold > 0): exactly the a whose best similarity reaches the threshold
// merge; the target is a floor (the best of them merge first); a redundant input (every key the same) shrinks to the floor
// while random keys of the same length hardly shrink.
Test(merge, adaptive_threshold_merges_what_passes_down_to_the_floor) {
    size_t N = 40, D = 32, H = 1;
    uint64_t rng = 11;
    float *k = malloc(N * D * sizeof(float));
    size_t dst[40];
    fill(k, N * D, 1.0f, &rng);
    const size_t twins[] = {1, 4, 5, 13};   // pairs (2j, 2j + 1) given identical keys
    for (size_t t = 0; t < 4; t++) memcpy(k + 2 * twins[t] * D, k + (2 * twins[t] + 1) * D, D * sizeof(float));
    for (MatchKind mk = MATCH_GLOBAL; mk <= MATCH_LOCAL; mk++) {
        MergePlan p = {.dst = dst};
        float *work = malloc(merge_plan_work_floats(N, D, H) * sizeof(float));
        size_t *iwork = malloc(merge_plan_work_sizes(N) * sizeof(size_t));
        merge_plan_build(&p, k, D, NULL, N, D, H, 1, mk, 8, 0, 0.99f, work, iwork);
        cr_assert_eq(p.n_out, N - 4, "only the four twins reach 0.99: n_out %zu", p.n_out);
        assert_valid(&p);
        for (size_t t = 0; t < 4; t++) cr_assert_eq(dst[2 * twins[t]], dst[2 * twins[t] + 1]);
        merge_plan_build(&p, k, D, NULL, N, D, H, N - 2, mk, 8, 0, 0.99f, work, iwork);
        cr_assert_eq(p.n_out, N - 2, "the target is a floor");
        size_t merged = 0;   // two of the twins (their similarities are 1 to a few ulps), nothing else
        for (size_t t = 0; t < 4; t++) merged += dst[2 * twins[t]] == dst[2 * twins[t] + 1];
        cr_assert_eq(merged, 2, "%zu twin pairs merged at the floor N - 2", merged);
        free(work);
        free(iwork);
    }
    // redundant against dense input, one keep-1/4 floor
    size_t N2 = 256;
    float *kr = malloc(N2 * D * sizeof(float)), *kc = malloc(N2 * D * sizeof(float));
    size_t *d2 = malloc(N2 * sizeof(size_t));
    fill(kr, N2 * D, 1.0f, &rng);
    for (size_t i = 0; i < N2; i++) memcpy(kc + i * D, kr, D * sizeof(float));
    MergePlan pr = {.dst = d2}, pc = {.dst = d2};
    float *work = malloc(merge_plan_work_floats(N2, D, H) * sizeof(float));
    size_t *iwork = malloc(merge_plan_work_sizes(N2) * sizeof(size_t));
    merge_plan_build(&pc, kc, D, NULL, N2, D, H, N2 / 4, MATCH_LOCAL, 8, 0, 0.9f, work, iwork);
    merge_plan_build(&pr, kr, D, NULL, N2, D, H, N2 / 4, MATCH_LOCAL, 8, 0, 0.9f, work, iwork);
    cr_assert_eq(pc.n_out, N2 / 4, "constant keys reach the floor: %zu", pc.n_out);
    cr_assert_eq(pr.n_out, N2, "random 32-d keys never reach 0.9: %zu", pr.n_out);
    free(kr); free(kc); free(d2); free(work); free(iwork); free(k);
}
