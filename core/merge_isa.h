// The merge planner's fast form and the merge itself, compiled once per kernel set (issue 12):
// core/merge.c includes this file for the plain set (suffix base: the portable baseline), core/merge_avx2.c and
// core/merge_avx512.c with their sets' flags (Makefile), each naming its functions with
// MERGE_SUFFIX (merge_plan_build_avx512, ...); core/merge.c dispatches on kernels_active().
// ISO C mode does not contract multiply-adds and every sum here runs in a fixed order (vectors go
// across independent rows or tokens, never along one sum), so every set computes the same plan
// bit for bit; tests/test_merge.c checks each set against the plain oracle.
#ifndef MERGE_SUFFIX
#error "define MERGE_SUFFIX before including core/merge_isa.h"
#endif
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "core/flops.h"
#include "core/merge.h"
#include "core/threads.h"

#define MERGE_CAT2(a, b) a##_##b
#define MERGE_CAT(a, b) MERGE_CAT2(a, b)
#define ISA(name) MERGE_CAT(name, MERGE_SUFFIX)

#define SIM_BLOCK 32   // A rows per sgemm block of the global similarity matrix

// The planners' work areas, laid out in the work buffers of merge_plan_work_floats and
// merge_plan_work_sizes (core/merge.c) for N tokens of metric width d.
typedef struct {
    float *m, *m_next, *sz, *sz_next, *best_sim, *simblk;
    size_t *best_b, *order, *tmp, *out;
} PlanWork;

static PlanWork plan_work(float *work, size_t *iwork, size_t N, size_t d) {
    PlanWork w;
    w.m = work; w.m_next = w.m + N * d;
    w.sz = w.m_next + N * d; w.sz_next = w.sz + N; w.best_sim = w.sz_next + N; w.simblk = w.best_sim + N;
    w.best_b = iwork; w.order = iwork + N; w.tmp = iwork + 2 * N; w.out = iwork + 3 * N;
    return w;
}

// Both planners' start: the bounds on the arguments and the identity plan. 0 when nothing merges.
static int plan_begin(MergePlan *plan, size_t N, size_t *n_target, size_t *window) {
    plan->n_in = N;
    plan->n_out = N;
    if (N == 0) return 0;
    if (*n_target > N) *n_target = N;
    if (*n_target == 0) *n_target = 1;
    if (*window == 0) *window = 1;
    for (size_t i = 0; i < N; i++) plan->dst[i] = i;
    return *n_target < N;
}

// One round's assignment (both planners): the r A tokens order[0 .. r) merge away; survivors are
// numbered in order; then each merged a points at its partner's new row. out[p] is token p's row
// in the next level; returns the next level's count.
static size_t round_assign(size_t *out, const size_t *order, const size_t *best_b, size_t n, size_t r) {
    for (size_t p = 0; p < n; p++) out[p] = 0;
    for (size_t t = 0; t < r; t++) out[2 * order[t]] = 1;   // 1 = merged away (a at even p)
    size_t g = 0;
    for (size_t p = 0; p < n; p++) out[p] = out[p] ? (size_t)-1 : g++;
    for (size_t t = 0; t < r; t++) {
        size_t a = order[t];
        out[2 * a] = out[2 * best_b[a] + 1];
    }
    return g;
}

// Best partner in B for every a in A, global matching: similarities of blocks of A rows against
// all of B as one sgemm per block. best_b/best_sim have nA entries.
static void match_global(size_t *best_b, float *best_sim, const float *m, size_t n, size_t d,
                         float *simblk) {
    // m (n,d); A rows at even positions (stride 2d), B rows at odd positions (stride 2d)
    size_t nA = (n + 1) / 2, nB = n / 2;
    for (size_t a0 = 0; a0 < nA; a0 += SIM_BLOCK) {
        size_t na = nA - a0 < SIM_BLOCK ? nA - a0 : SIM_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)na, (int)nB, (int)d, 1.0f,
                    m + 2 * a0 * d, (int)(2 * d), m + d, (int)(2 * d), 0.0f, simblk, (int)nB);
        for (size_t i = 0; i < na; i++) {
            // maximum first (vectorised), then its first position: ties to the lower b
            const float *row = simblk + i * nB;
            // A NaN first element stays (nothing compares greater); the vector reduction's NaN
            // handling would depend on the vector width, so it only runs from a number.
            float bs = row[0];
            if (bs == bs) {
                #pragma omp simd reduction(max : bs)
                for (size_t b = 1; b < nB; b++) bs = row[b] > bs ? row[b] : bs;
            }
            size_t bb = 0;
            while (bb + 1 < nB && row[bb] != bs) bb++;   // bounded even if a row holds NaN
            best_b[a0 + i] = bb;
            best_sim[a0 + i] = bs;
        }
    }
    flops_matmul(nA, nB, d);
    flops_elem((double)nA * (double)nB);
}

// Order A indices by best similarity, highest first, ties to the lower index. Bottom-up merge sort
// (stable, deterministic) over idx using tmp; qsort has no context pointer in C11.
static int before(const float *sim, size_t x, size_t y) {
    return sim[x] > sim[y] || (sim[x] == sim[y] && x < y);
}
static void sort_by_sim(size_t *idx, size_t *tmp, const float *sim, size_t n) {
    for (size_t i = 0; i < n; i++) idx[i] = i;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = before(sim, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid) tmp[o++] = idx[i++];
            while (j < hi) tmp[o++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(size_t));
    }
}

// Adaptive merging (threshold > 0): a round merges only the a whose best similarity reaches the
// threshold (still at most r, the count the target allows); NaN never reaches it. 0 ends the
// rounds. threshold <= 0: r unchanged, no comparisons.
static size_t adaptive_r(size_t r, const float *best_sim, size_t nA, float threshold) {
    if (!(threshold > 0.0f)) return r;
    size_t pass = 0;
    for (size_t a = 0; a < nA; a++) pass += best_sim[a] >= threshold;
    flops_elem((double)nA);
    return pass < r ? pass : r;
}

// Row g of x_out = sum over the i with dst[i] = g of s_in[i] x_in[i]; s_out[g] = the sum of
// those s_in[i]; i in order. The merge's numerator and the planner's metric carry.
static void weighted_sums(float *restrict x_out, float *restrict s_out, const float *restrict x_in,
                          const float *restrict s_in, const size_t *dst, size_t n_in, size_t n_out, size_t D) {
    memset(x_out, 0, n_out * D * sizeof(float));
    memset(s_out, 0, n_out * sizeof(float));
    for (size_t i = 0; i < n_in; i++) {
        size_t g = dst[i];
        float si = s_in[i];
        s_out[g] += si;
        float *restrict xo = x_out + g * D;
        const float *restrict xi = x_in + i * D;
        #pragma omp simd
        for (size_t c = 0; c < D; c++) xo[c] += si * xi[c];
    }
}

// ---------------------------------------------------------------- fast planner
// merge_plan_build computes exactly merge_plan_build_plain's plan (the same float and double
// operations on every value, in the same order; tests/test_merge.c checks the two bit for bit,
// ties and NaN included; the two share only the argument bounds, plan_work and round_assign)
// with the work restructured:
//  - the metric is averaged with the feature loop innermost (vectorised), heads summed in order;
//  - row norms are summed in double 8 rows at a time (independent chains, each in feature order);
//  - local matching copies blocks of A and B feature-major so that one window offset t is a
//    vector over consecutive a: s(a, a+t) = sum_c A[c][a] B[c][a+t]
//    keeps each pair's sequential sum over c; blocks of a run in parallel (results per a do not
//    depend on the split); the few a whose window is clipped at either end use the scalar loop;
//  - when a round merges all of A (r = |A|: every round of keep <= 1/2 but the last), the order
//    of A by similarity cannot change the plan, so the sort is skipped;
//  - the carry of metric and sizes runs with restrict pointers (vectorised over features).
#define LOCAL_BLOCK 64    // a per block of the vectorised local matcher
#define LOCAL_MAX_D 64    // stack copies of a block: d (2 LOCAL_BLOCK + LOCAL_MAX_W) floats <= 48 KiB
#define LOCAL_MAX_W 63    // (wider windows, or heads, use the scalar loop)
#define PAR_MIN_A 512     // below this many a the matcher stays on one thread

static void normalise_rows_fast(float *m, size_t n, size_t d) {
    // m (n,d); per row the same double sum in feature order as normalise_rows
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        double ss[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t c = 0; c < d; c++)
            for (size_t r = 0; r < 8; r++) ss[r] += (double)m[(i + r) * d + c] * m[(i + r) * d + c];
        for (size_t r = 0; r < 8; r++) {
            if (ss[r] > 0.0) {
                float inv = (float)(1.0 / sqrt(ss[r]));
                float *row = m + (i + r) * d;
                #pragma omp simd
                for (size_t c = 0; c < d; c++) row[c] *= inv;
            }
        }
    }
    for (; i < n; i++) {
        float *row = m + i * d;
        double ss = 0.0;
        for (size_t c = 0; c < d; c++) ss += (double)row[c] * row[c];
        if (ss > 0.0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (size_t c = 0; c < d; c++) row[c] *= inv;
        }
    }
    flops_elem(3.0 * (double)n * (double)d);
}

// match_local's result for a in [a0, a1), scalar (windows clipped at an end).
static double match_local_range(size_t *best_b, float *best_sim, const float *m, size_t nB,
                                size_t d, size_t w, size_t a0, size_t a1) {
    double pairs = 0.0;
    for (size_t a = a0; a < a1; a++) {
        size_t p = 2 * a;
        size_t lo = p > w + 1 ? (p - w) / 2 : 0;
        size_t hi = (p + w - 1) / 2;
        if (hi > nB - 1) hi = nB - 1;
        const float *ma = m + p * d;
        size_t bb = lo;
        float bs = -INFINITY;
        for (size_t b = lo; b <= hi; b++) {
            const float *mb = m + (2 * b + 1) * d;
            float s = 0.0f;
            for (size_t c = 0; c < d; c++) s += ma[c] * mb[c];
            if (s > bs) { bs = s; bb = b; }
        }
        best_b[a] = bb;
        best_sim[a] = bs;
        pairs += (double)(hi - lo + 1);
    }
    return pairs;
}

// Block blk of match_local_fast: LOCAL_BLOCK interior a from ia0 (blk < nblk), or the clipped a
// at either end (blk = nblk, nblk + 1). Returns the pairs compared.
static double match_local_block(size_t *best_b, float *best_sim, const float *m, size_t nA, size_t nB, size_t d,
                                size_t w, size_t ia0, size_t ia1, size_t nblk, size_t blk) {
    size_t tl = (w + 1) / 2, th = (w - 1) / 2;      // b = a - tl ... a + th
    if (blk == nblk) return match_local_range(best_b, best_sim, m, nB, d, w, 0, ia0);
    if (blk == nblk + 1) return match_local_range(best_b, best_sim, m, nB, d, w, ia1, nA);
    size_t a0 = ia0 + blk * LOCAL_BLOCK;
    size_t na = ia1 - a0 < LOCAL_BLOCK ? ia1 - a0 : LOCAL_BLOCK;
    size_t nb = na + tl + th, b0 = a0 - tl;   // B rows b0 .. b0 + nb - 1
    float At[d][LOCAL_BLOCK], Bt[d][LOCAL_BLOCK + LOCAL_MAX_W];
    for (size_t i = 0; i < na; i++)
        for (size_t c = 0; c < d; c++) At[c][i] = m[2 * (a0 + i) * d + c];
    for (size_t i = 0; i < nb; i++)
        for (size_t c = 0; c < d; c++) Bt[c][i] = m[(2 * (b0 + i) + 1) * d + c];
    float bs[LOCAL_BLOCK], sv[LOCAL_BLOCK];
    uint32_t bb[LOCAL_BLOCK];
    for (size_t i = 0; i < na; i++) { bs[i] = -INFINITY; bb[i] = (uint32_t)b0 + (uint32_t)i; }
    for (size_t t = 0; t <= tl + th; t++) {   // b = a - tl + t, ascending as in match_local
        #pragma omp simd
        for (size_t i = 0; i < na; i++) sv[i] = 0.0f;
        for (size_t c = 0; c < d; c++) {
            const float *x = At[c], *y = Bt[c] + t;
            #pragma omp simd
            for (size_t i = 0; i < na; i++) sv[i] += x[i] * y[i];
        }
        uint32_t bt = (uint32_t)(b0 + t);
        #pragma omp simd
        for (size_t i = 0; i < na; i++) {
            int gt = sv[i] > bs[i];
            bs[i] = gt ? sv[i] : bs[i];
            bb[i] = gt ? bt + (uint32_t)i : bb[i];
        }
    }
    for (size_t i = 0; i < na; i++) { best_b[a0 + i] = bb[i]; best_sim[a0 + i] = bs[i]; }
    return (double)na * (double)(tl + th + 1);
}

// match_local, same results. Interior a in blocks of LOCAL_BLOCK: the block's A rows and the B
// rows its windows reach are copied feature-major onto the stack (L1-sized: a global transposed
// copy with a power-of-two stride thrashed one cache set), then each window offset t is a vector
// over the block's a.
static void match_local_fast(size_t *best_b, float *best_sim, const float *m, size_t n, size_t d,
                             size_t w) {
    // m (n,d)
    size_t nA = (n + 1) / 2, nB = n / 2;
    // interior a: window unclipped, b = a + t for t in [-ceil(w/2), floor((w-1)/2)]
    //   lo unclipped: 2a > w + 1; hi unclipped: (2a + w - 1)/2 <= nB - 1
    size_t ia0 = (w + 3) / 2;                       // smallest a with 2a > w + 1
    size_t th = (w - 1) / 2;                        // b = a - (w + 1) / 2 ... a + th
    size_t ia1 = nB > th ? nB - th : 0;             // a + th <= nB - 1  <=>  a < nB - th
    if (ia1 > nA) ia1 = nA;
    double pairs = 0.0;
    if (ia0 > ia1 || ia1 - ia0 < LOCAL_BLOCK || d > LOCAL_MAX_D || w > LOCAL_MAX_W) {
        pairs = match_local_range(best_b, best_sim, m, nB, d, w, 0, nA);
    } else {
        size_t nblk = (ia1 - ia0 + LOCAL_BLOCK - 1) / LOCAL_BLOCK;
        if (nA >= PAR_MIN_A && !threads_in_parallel()) {
            #pragma omp parallel for schedule(static) reduction(+ : pairs)
            for (size_t blk = 0; blk < nblk + 2; blk++)
                pairs += match_local_block(best_b, best_sim, m, nA, nB, d, w, ia0, ia1, nblk, blk);
        } else {   // one thread, or inside the model's per-sample region: no OpenMP call at all
            for (size_t blk = 0; blk < nblk + 2; blk++)
                pairs += match_local_block(best_b, best_sim, m, nA, nB, d, w, ia0, ia1, nblk, blk);
        }
    }
    FlopCounter *fc = flops_active();
    if (fc && pairs > 0) { fc->macs += pairs * (double)d; fc->flops += 2.0 * pairs * (double)d + pairs; }
}

void ISA(merge_plan_build)(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N,
                           size_t D, size_t H, size_t n_target, MatchKind kind, size_t window,
                           size_t local_until, float threshold, float *work, size_t *iwork) {
    // k (N,D) stride ld (H heads of width d); s (N) or NULL (all 1); plan->dst (N)
    size_t d = D / H;
    if (!plan_begin(plan, N, &n_target, &window)) return;
    PlanWork w = plan_work(work, iwork, N, d);
    float *m = w.m, *m_next = w.m_next, *sz = w.sz, *sz_next = w.sz_next, *best_sim = w.best_sim;
    size_t *best_b = w.best_b, *order = w.order, *out = w.out;

    // metric: keys averaged over heads (summed in head order from 0), normalised
    float invH = 1.0f / (float)H;
    for (size_t i = 0; i < N; i++) {
        float *restrict mi = m + i * d;
        const float *ki = k + i * ld;
        #pragma omp simd
        for (size_t c = 0; c < d; c++) mi[c] = 0.0f;
        for (size_t h = 0; h < H; h++) {
            #pragma omp simd
            for (size_t c = 0; c < d; c++) mi[c] += ki[h * d + c];
        }
        #pragma omp simd
        for (size_t c = 0; c < d; c++) mi[c] *= invH;
        sz[i] = s ? s[i] : 1.0f;
    }
    flops_elem((double)N * (double)D);
    normalise_rows_fast(m, N, d);

    size_t n = N;
    while (n > n_target) {
        size_t nA = (n + 1) / 2, nB = n / 2;
        if (nB == 0) break;
        size_t r = n - n_target < nA ? n - n_target : nA;
        if (kind == MATCH_LOCAL && n > local_until)
            match_local_fast(best_b, best_sim, m, n, d, window);
        else
            match_global(best_b, best_sim, m, n, d, w.simblk);
        r = adaptive_r(r, best_sim, nA, threshold);
        if (r == 0) break;
        if (r < nA) sort_by_sim(order, w.tmp, best_sim, nA);
        else
            for (size_t t = 0; t < nA; t++) order[t] = t;   // all of A merges: order is moot
        size_t n_new = round_assign(out, order, best_b, n, r);   // >= nB >= 1: every b survives
        if (n_new == 0 || n_new > n) break;   // unreachable; bounds the memsets for the compiler
        weighted_sums(m_next, sz_next, m, sz, out, n, n_new, d);
        flops_elem(2.0 * (double)n * (double)d + (double)n);
        normalise_rows_fast(m_next, n_new, d);
        for (size_t i = 0; i < N; i++) plan->dst[i] = out[plan->dst[i]];
        float *t1 = m; m = m_next; m_next = t1;
        float *t2 = sz; sz = sz_next; sz_next = t2;
        n = n_new;
    }
    plan->n_out = n;
}

void ISA(merge_forward)(float *x_out, float *s_out, const float *x_in, const float *s_in,
                        const MergePlan *p, size_t D) {
    // x_in (n_in,D), s_in (n_in), x_out (n_out,D), s_out (n_out)
    weighted_sums(x_out, s_out, x_in, s_in, p->dst, p->n_in, p->n_out, D);
    for (size_t g = 0; g < p->n_out; g++) {
        float inv = 1.0f / s_out[g], *restrict xo = x_out + g * D;
        #pragma omp simd
        for (size_t c = 0; c < D; c++) xo[c] *= inv;
    }
    flops_elem((double)p->n_in * (2.0 * (double)D + 1.0) + (double)p->n_out * (double)(D + 1));
}

void ISA(merge_backward)(float *dx_in, const float *dx_out, const float *s_in, const float *s_out,
                         const MergePlan *p, size_t D) {
    // dx_out (n_out,D), s_in (n_in), s_out (n_out), dx_in (n_in,D) accumulated
    for (size_t i = 0; i < p->n_in; i++) {
        size_t g = p->dst[i];
        float w = s_in[i] / s_out[g], *restrict di = dx_in + i * D;
        const float *restrict dg = dx_out + g * D;
        #pragma omp simd
        for (size_t c = 0; c < D; c++) di[c] += w * dg[c];
    }
    flops_elem((double)p->n_in * (2.0 * (double)D + 1.0));
}
