// Bipartite soft matching (SPEC §4, after ToMe) with order kept and rounds composed into one plan.
//
// Metric: per token the keys averaged over heads, L2-normalised. Across rounds a merged token's
// metric is the size-weighted mean of its members' (normalised) metric rows, re-normalised; a
// token that did not merge keeps its row. Sizes follow the plan (s_b <- sum s).
// One round on n tokens: A = even positions (ceil(n/2)), B = odd positions (floor(n/2)); every a
// finds its most similar b (cosine; global: all of B through sgemm in blocks of A rows; local: the
// b within `window` positions), ties to the lower b; the r tokens of A with the highest best
// similarity (ties to the lower a) merge into their partners. Survivors keep their order.
//
// FLOP convention (core/flops.h): similarities are matrix products (2 per multiply-add); 1 per
// element for the argmax comparisons, metric averaging, normalisation and size-weighted sums.
// The fast planner and the merge live in core/merge_isa.h, compiled once per kernel set; this
// file holds the plain oracle and the dispatch.
#define MERGE_SUFFIX base   // the plain set's copy (merge_plan_build_plain is the oracle)
#include "core/merge_isa.h"
#include "core/kernels.h"

// the metric and its next round (N x d each), sizes twice, best similarities, one similarity block
size_t merge_plan_work_floats(size_t N, size_t D, size_t H) { return 2 * N * (D / H) + 3 * N + SIM_BLOCK * N; }
size_t merge_plan_work_sizes(size_t N) { return 4 * N; }

// L2-normalise n rows of width d in place (a zero row stays zero).
static void normalise_rows(float *m, size_t n, size_t d) {
    // m (n,d)
    for (size_t i = 0; i < n; i++) {
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

// Best partner in B for every a in A among the b within `w` positions (|pos_b - pos_a| <= w,
// w >= 1 so every a has a neighbour when B is not empty). O(n w d). Hand-written rather than one
// sgemv per a: a window is at most ~w rows of d floats, where a BLAS call costs more than the
// work, and a fixed sequential sum lets tests/reference/methods_ref.py mirror it bit for bit.
static void match_local(size_t *best_b, float *best_sim, const float *m, size_t n, size_t d,
                        size_t w) {
    // m (n,d)
    size_t nA = (n + 1) / 2, nB = n / 2;
    double pairs = 0.0;
    for (size_t a = 0; a < nA; a++) {
        size_t p = 2 * a;
        // b with |2b+1 - p| <= w: 2b+1 >= p-w and 2b+1 <= p+w
        size_t lo = p > w + 1 ? (p - w) / 2 : 0;   // ceil((p - w - 1) / 2), clamped at 0
        size_t hi = (p + w - 1) / 2;                       // floor((p + w - 1) / 2)
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
    if (pairs > 0) {
        FlopCounter *fc = flops_active();
        if (fc) { fc->macs += pairs * (double)d; fc->flops += 2.0 * pairs * (double)d + pairs; }
    }
}

void merge_plan_build_plain(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N,
                            size_t D, size_t H, size_t n_target, MatchKind kind, size_t window,
                            size_t local_until, float threshold, float *work, size_t *iwork) {
    // k (N,D) stride ld (H heads of width d); s (N) or NULL (all 1); plan->dst (N)
    size_t d = D / H;
    if (!plan_begin(plan, N, &n_target, &window)) return;
    PlanWork w = plan_work(work, iwork, N, d);
    float *m = w.m, *m_next = w.m_next, *sz = w.sz, *sz_next = w.sz_next, *best_sim = w.best_sim;
    size_t *best_b = w.best_b, *order = w.order, *out = w.out;

    // metric: keys averaged over heads, normalised
    float invH = 1.0f / (float)H;
    for (size_t i = 0; i < N; i++) {
        for (size_t c = 0; c < d; c++) {
            float acc = 0.0f;
            for (size_t h = 0; h < H; h++) acc += k[i * ld + h * d + c];
            m[i * d + c] = acc * invH;
        }
        sz[i] = s ? s[i] : 1.0f;
    }
    flops_elem((double)N * (double)D);
    normalise_rows(m, N, d);

    size_t n = N;
    while (n > n_target) {
        size_t nA = (n + 1) / 2, nB = n / 2;
        if (nB == 0) break;
        size_t r = n - n_target < nA ? n - n_target : nA;
        if (kind == MATCH_LOCAL && n > local_until)
            match_local(best_b, best_sim, m, n, d, window);
        else
            match_global(best_b, best_sim, m, n, d, w.simblk);
        r = adaptive_r(r, best_sim, nA, threshold);
        if (r == 0) break;
        sort_by_sim(order, w.tmp, best_sim, nA);
        size_t n_new = round_assign(out, order, best_b, n, r);   // >= nB >= 1: every b survives
        if (n_new == 0 || n_new > n) break;   // unreachable; bounds the memsets for the compiler
        // carry sizes and metric: size-weighted mean of member rows, re-normalised
        memset(sz_next, 0, n_new * sizeof(float));
        memset(m_next, 0, n_new * d * sizeof(float));
        for (size_t p = 0; p < n; p++) {
            size_t o = out[p];
            sz_next[o] += sz[p];
            for (size_t c = 0; c < d; c++) m_next[o * d + c] += sz[p] * m[p * d + c];
        }
        flops_elem(2.0 * (double)n * (double)d + (double)n);
        normalise_rows(m_next, n_new, d);
        for (size_t i = 0; i < N; i++) plan->dst[i] = out[plan->dst[i]];
        float *t1 = m; m = m_next; m_next = t1;
        float *t2 = sz; sz = sz_next; sz_next = t2;
        n = n_new;
    }
    plan->n_out = n;
}


// ---------------------------------------------------------------- dispatch
void merge_plan_build_avx2(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N, size_t D, size_t H,
                           size_t n_target, MatchKind kind, size_t window, size_t local_until, float threshold,
                           float *work, size_t *iwork);
void merge_plan_build_avx512(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N, size_t D, size_t H,
                             size_t n_target, MatchKind kind, size_t window, size_t local_until, float threshold,
                             float *work, size_t *iwork);
void merge_forward_avx2(float *x_out, float *s_out, const float *x_in, const float *s_in, const MergePlan *p, size_t D);
void merge_forward_avx512(float *x_out, float *s_out, const float *x_in, const float *s_in, const MergePlan *p, size_t D);
void merge_backward_avx2(float *dx_in, const float *dx_out, const float *s_in, const float *s_out, const MergePlan *p,
                         size_t D);
void merge_backward_avx512(float *dx_in, const float *dx_out, const float *s_in, const float *s_out, const MergePlan *p,
                           size_t D);

void merge_plan_build(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N, size_t D, size_t H,
                      size_t n_target, MatchKind kind, size_t window, size_t local_until, float threshold,
                      float *work, size_t *iwork) {
    KernelSet ks = kernels_active();
    void (*fn)(MergePlan *, const float *, size_t, const float *, size_t, size_t, size_t, size_t, MatchKind, size_t,
               size_t, float, float *, size_t *) =
        ks == KERNELS_AVX512 ? merge_plan_build_avx512 : ks == KERNELS_AVX2 ? merge_plan_build_avx2 : merge_plan_build_base;
    fn(plan, k, ld, s, N, D, H, n_target, kind, window, local_until, threshold, work, iwork);
}

void merge_forward(float *x_out, float *s_out, const float *x_in, const float *s_in, const MergePlan *p, size_t D) {
    KernelSet ks = kernels_active();
    (ks == KERNELS_AVX512 ? merge_forward_avx512 : ks == KERNELS_AVX2 ? merge_forward_avx2 : merge_forward_base)(
        x_out, s_out, x_in, s_in, p, D);
}

void merge_backward(float *dx_in, const float *dx_out, const float *s_in, const float *s_out, const MergePlan *p,
                    size_t D) {
    KernelSet ks = kernels_active();
    (ks == KERNELS_AVX512 ? merge_backward_avx512 : ks == KERNELS_AVX2 ? merge_backward_avx2 : merge_backward_base)(
        dx_in, dx_out, s_in, s_out, p, D);
}
