// Bipartite soft matching token merging (SPEC §4), per sample.             -- core/merge.c
// A plan is an assignment: input token i goes to output row dst[i]. Groups keep the
// relative order of their surviving (B) token, so dst is non-decreasing over survivors.
// Several rounds (keep ratio < 1/2) compose into one plan, because a size-weighted mean of
// size-weighted means is the size-weighted mean over the whole group.
#ifndef MAELRE_MERGE_H
#define MAELRE_MERGE_H
#include <stddef.h>
#include "core/model.h"   // MatchKind

typedef struct {
    size_t n_in, n_out;
    size_t *dst;          // n_in entries (caller-provided storage of at least n_in)
} MergePlan;

// Plans merging N tokens down to n_target (<= N) tokens using the metric of SPEC §4: the block's
// keys (stride ld, H heads of width D/H) averaged over heads and L2-normalised; s holds current sizes
// (needed to carry the metric across rounds as size-weighted means). Each round removes
// r = min(N_cur - n_target, |A|) tokens; round kind: `kind`, except that with MATCH_LOCAL a round
// whose current N <= local_until uses global matching (MAELRE: local while N > D).
// threshold > 0 makes the amount adaptive: each round merges only the A tokens whose best
// similarity is at least threshold (at most the r above), and the rounds stop when none does, so
// n_target becomes a floor and plan->n_out (>= n_target) depends on the keys; <= 0: fixed amount.
// Ties are broken by lower index, deterministically. work: merge_plan_work_floats(N, D, H) floats.
size_t merge_plan_work_floats(size_t N, size_t D, size_t H);
size_t merge_plan_work_sizes(size_t N);
void merge_plan_build(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N,
                      size_t D, size_t H, size_t n_target, MatchKind kind, size_t window,
                      size_t local_until, float threshold, float *work, size_t *iwork);
// The plain planner: the same plan (bit for bit, ties included) with straightforward loops; the
// oracle merge_plan_build is tested against. Same arguments and work sizes.
void merge_plan_build_plain(MergePlan *plan, const float *k, size_t ld, const float *s, size_t N,
                            size_t D, size_t H, size_t n_target, MatchKind kind, size_t window,
                            size_t local_until, float threshold, float *work, size_t *iwork);

// x_out[g] = sum_{i->g} s_i x_i / sum s_i ; s_out[g] = sum s_i.   x (n, D) rows.
void merge_forward(float *x_out, float *s_out, const float *x_in, const float *s_in,
                   const MergePlan *p, size_t D);
// dx_in[i] += dx_out[dst[i]] * s_i / s_out[dst[i]]  (matching treated as constant).
void merge_backward(float *dx_in, const float *dx_out, const float *s_in, const float *s_out,
                    const MergePlan *p, size_t D);

#endif
