// Block-sparse exact softmax attention engine shared by the sparse kinds (core/attn_local.c,
// core/attn_bigbird.c); internal, not a kind of its own. Per head, queries go a block of
// `rows` rows at a time. A kind's plan says, for one query block, which keys it may see: a
// list of key runs [k0, k1) (ascending, disjoint) whose columns are laid side by side in a
// score block S (nb x width, width = total run length), and per row r a column range
// [lo[r], hi[r]) of S that row attends (a sliding window is a band inside one run; a block
// pattern is every column). The engine forms S = Q_b K_runs^T / sqrt(d) with one sgemm per run,
// the row softmax (+ log s_j) over each row's range through attn_softmax_rows, zeroes the rest
// of the row, and O_b = P V_runs (one sgemm per run). Forward saves the row maximum and 1/sum
// (2 H N floats, as core/attn_softmax.c); backward recomputes each P block from them with the
// same arithmetic, flash-attention style. Nothing larger than one score block per thread exists.
// FLOPs are counted by the kinds (from the pairs inside the pattern), not here.
#ifndef MAELRE_ATTN_SPARSE_H
#define MAELRE_ATTN_SPARSE_H
#include <stddef.h>

// Fills run (2 * nruns: k0, k1 pairs), lo, hi (nb each) for query rows [i0, i0 + nb) of head h;
// returns nruns (at most max_runs).
typedef size_t (*AttnSparsePlan)(const void *ctx, size_t h, size_t i0, size_t nb, size_t *run,
                                 size_t *lo, size_t *hi);
typedef struct {
    size_t N, D, H;
    size_t rows;      // query rows per block (> 0)
    size_t wmax;      // the largest width any block's runs may have (<= N)
    size_t max_runs;  // the most runs a plan returns
    AttnSparsePlan plan;
    const void *ctx;
} AttnSparse;

// Scratch of one thread: forward one score block and its gathered log s; backward two blocks.
size_t attn_sparse_fwd_scratch(const AttnSparse *A);   // rows' * wmax + wmax (rows' = min(rows, N))
size_t attn_sparse_bwd_scratch(const AttnSparse *A);   // 2 rows' * wmax + wmax
// stats: (2, H, N) row max and 1/sum for backward, or NULL (inference). scratch: one forward
// scratch. With several threads outside a parallel region, the (head, block) items are spread
// over OpenMP threads with single-threaded BLAS (extra scratch from core/mem.h; in sequence if
// that fails); every item is computed the same way either way.
void attn_sparse_forward(const AttnSparse *A, float *out, float *stats, float *scratch,
                         const float *q, const float *k, const float *v, size_t ld,
                         const float *log_s);
// Accumulates (+=) into dq, dk, dv (stride ld). work: one backward scratch. With several threads
// outside a parallel region and H > 1, heads run on separate threads (their columns are
// disjoint; extra scratch from core/mem.h, in sequence if that fails).
void attn_sparse_backward(const AttnSparse *A, float *dq, float *dk, float *dv, const float *dout,
                          const float *stats, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, float *work);
#endif
