// `bigbird` block-sparse attention, SPEC §9.5; the contract is in core/attn_bigbird.h.
// Query blocks of b rows run through the block-sparse engine (core/attn_sparse.c): a block's
// key blocks (attn_bigbird_row_blocks) are merged into runs of consecutive blocks (the window
// i-1..i+1 is one run), each run one sgemm into the block's score rows; every row of the block
// attends every column (one joint softmax over window, global and random blocks).
#include "core/attn_bigbird.h"
#include <stdlib.h>
#include <string.h>
#include "core/attn_mask_ref.h"
#include "core/attn_sparse.h"
#include "core/flops.h"
#include "core/rng.h"

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void attn_bigbird_draw_table(int32_t *table, uint64_t *rng, size_t M, size_t r) {
    // table (M, r)
    size_t cand[M ? M : 1];
    for (size_t i = 0; i < M; i++) {
        int32_t *row = table + i * r;
        for (size_t t = 0; t < r; t++) row[t] = -1;
        if (i == 0 || i + 1 == M) continue;  // global rows see every block
        size_t c = 0;
        for (size_t j = 1; j + 1 < M; j++)
            if (j + 1 < i || j > i + 1) cand[c++] = j;
        size_t take = c < r ? c : r;
        for (size_t t = 0; t < take; t++) {  // partial Fisher-Yates: r distinct candidates
            size_t u = t + rng_below(rng, c - t), x = cand[t];
            cand[t] = cand[u];
            cand[u] = x;
            row[t] = (int32_t)cand[t];
        }
        qsort(row, take, sizeof *row, cmp_i32);
    }
}

size_t attn_bigbird_row_blocks(size_t *blocks, const int32_t *trow, size_t r, size_t i, size_t nblk) {
    size_t n = 0;
    if (nblk <= 5 + r || i == 0 || i + 1 == nblk) {  // full rows (and short samples: softmax)
        for (size_t j = 0; j < nblk; j++) blocks[n++] = j;
        return n;
    }
    // 1 <= i <= nblk - 2 and nblk >= 6 + r: at most 5 blocks excluded, so c >= r + 1 candidates
    uint8_t fixed[nblk], taken[nblk], kept[r ? r : 1];
    size_t cand[nblk], c = 0;
    memset(fixed, 0, nblk);
    memset(taken, 0, nblk);
    fixed[0] = fixed[nblk - 1] = fixed[i - 1] = fixed[i] = fixed[i + 1] = 1;
    for (size_t j = 0; j < nblk; j++)
        if (!fixed[j]) cand[c++] = j;
    for (size_t t = 0; t < r; t++) {  // 1. picks valid in this sample, as drawn
        int32_t p = trow[t];
        kept[t] = p >= 0 && (size_t)p < nblk && !fixed[p] && !taken[p];
        if (kept[t]) taken[p] = 1;
    }
    for (size_t t = 0; t < r; t++) {  // 2. the others: candidate p mod c, then the next free one
        if (kept[t]) continue;
        size_t at = trow[t] < 0 ? 0 : (size_t)trow[t] % c;
        while (taken[cand[at]]) at = (at + 1) % c;
        taken[cand[at]] = 1;
    }
    for (size_t j = 0; j < nblk; j++)
        if (fixed[j] || taken[j]) blocks[n++] = j;
    return n;
}

typedef struct {
    const int32_t *table;
    size_t M, N, b, r;
} Ctx;

static size_t plan(const void *ctxp, size_t h, size_t i0, size_t nb, size_t *run, size_t *lo, size_t *hi) {
    const Ctx *c = ctxp;
    size_t nblk = (c->N + c->b - 1) / c->b, blocks[nblk], nruns = 0, width = 0;
    size_t n = attn_bigbird_row_blocks(blocks, c->table + (h * c->M + i0 / c->b) * c->r, c->r, i0 / c->b, nblk);
    for (size_t t = 0; t < n; t++) {
        size_t k0 = blocks[t] * c->b, k1 = k0 + c->b < c->N ? k0 + c->b : c->N;
        if (nruns && run[2 * nruns - 1] == k0) run[2 * nruns - 1] = k1;  // extends the run
        else { run[2 * nruns] = k0; run[2 * nruns + 1] = k1; nruns++; }
        width += k1 - k0;
    }
    for (size_t t = 0; t < nb; t++) { lo[t] = 0; hi[t] = width; }
    return nruns;
}

static AttnSparse engine(const Ctx *c, size_t N, size_t D, size_t H) {
    if (c->b == 0 || (N + c->b - 1) / c->b > (c->M ? c->M : 1)) abort();  // table too short: caller error
    AttnSparse A = {N, D, H, c->b, N, 5 + c->r, plan, c};
    return A;
}

double attn_bigbird_pairs(const int32_t *table_h, size_t M, size_t N, size_t b, size_t r) {
    size_t nblk = (N + b - 1) / b, blocks[nblk ? nblk : 1];
    double pairs = 0;
    for (size_t i = 0; i < nblk; i++) {
        size_t n = attn_bigbird_row_blocks(blocks, table_h + i * r, r, i, nblk), keys = 0;
        for (size_t t = 0; t < n; t++) keys += blocks[t] + 1 == nblk ? N - blocks[t] * b : b;
        pairs += (double)keys * (double)((i + 1) * b < N ? b : N - i * b);
    }
    return pairs;
}

static void count(const int32_t *table, size_t M, size_t N, size_t D, size_t H, size_t b, size_t r,
                  int backward, int has_log_s) {
    for (size_t h = 0; h < H; h++) {
        double pairs = attn_bigbird_pairs(table + h * M * r, M, N, b, r);
        for (int m = 0; m < (backward ? 4 : 2); m++) flops_matmul((size_t)pairs, 1, D / H);
        flops_elem((backward ? 2.0 : has_log_s ? 3.0 : 2.0) * pairs);
    }
}

size_t attn_bigbird_save_floats(size_t N, size_t D, size_t H, size_t b) {
    AttnSparse A = {N, D, H, b, N, 1, plan, NULL};
    return 2 * H * N + attn_sparse_fwd_scratch(&A);
}
size_t attn_bigbird_infer_work_floats(size_t N, size_t D, size_t H, size_t b) {
    AttnSparse A = {N, D, H, b, N, 1, plan, NULL};
    return attn_sparse_fwd_scratch(&A);
}
size_t attn_bigbird_work_floats(size_t N, size_t D, size_t H, size_t b) {
    AttnSparse A = {N, D, H, b, N, 1, plan, NULL};
    return attn_sparse_bwd_scratch(&A);
}

void attn_bigbird_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, const int32_t *table, size_t M, size_t N,
                          size_t D, size_t H, size_t b, size_t r) {
    // q,k,v (N, ld); table (H, M, r); out (N, D); save (max, 1/sum) (2, H, N) then one score block
    if (N == 0) return;
    Ctx c = {table, M, N, b, r};
    AttnSparse A = engine(&c, N, D, H);
    attn_sparse_forward(&A, out, save, save + 2 * H * N, q, k, v, ld, log_s);
    count(table, M, N, D, H, b, r, 0, log_s != NULL);
}

void attn_bigbird_forward_infer(float *out, float *work, const float *q, const float *k,
                                const float *v, size_t ld, const float *log_s,
                                const int32_t *table, size_t M, size_t N, size_t D, size_t H,
                                size_t b, size_t r) {
    // q,k,v (N, ld); table (H, M, r); out (N, D); work one score block
    if (N == 0) return;
    Ctx c = {table, M, N, b, r};
    AttnSparse A = engine(&c, N, D, H);
    attn_sparse_forward(&A, out, NULL, work, q, k, v, ld, log_s);
    count(table, M, N, D, H, b, r, 0, log_s != NULL);
}

void attn_bigbird_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                              const float *save, const float *q, const float *k, const float *v,
                              size_t ld, const float *log_s, const int32_t *table, size_t M,
                              size_t N, size_t D, size_t H, size_t b, size_t r, float *work) {
    // dout (N, D); save as forward; dq,dk,dv (N, ld) accumulate; work two score blocks
    if (N == 0) return;
    Ctx c = {table, M, N, b, r};
    AttnSparse A = engine(&c, N, D, H);
    attn_sparse_backward(&A, dq, dk, dv, dout, save, q, k, v, ld, log_s, work);
    count(table, M, N, D, H, b, r, 1, 0);
}

// ---- plain reference (tests only) ----

void attn_bigbird_mask(uint8_t *mask, const int32_t *table_h, size_t M, size_t N, size_t b, size_t r) {
    // mask (N, N): token-level expansion of each query block's key blocks
    size_t nblk = (N + b - 1) / b, blocks[nblk ? nblk : 1];
    memset(mask, 0, N * N);
    for (size_t i = 0; i < nblk; i++) {
        size_t n = attn_bigbird_row_blocks(blocks, table_h + i * r, r, i, nblk);
        for (size_t t = 0; t < n; t++)
            for (size_t qi = i * b; qi < N && qi < (i + 1) * b; qi++)
                for (size_t kj = blocks[t] * b; kj < N && kj < (blocks[t] + 1) * b; kj++) mask[qi * N + kj] = 1;
    }
}

static uint8_t *masks(const int32_t *table, size_t M, size_t N, size_t H, size_t b, size_t r) {
    uint8_t *m = malloc(H * N * N + 1);
    if (!m) abort();
    for (size_t h = 0; h < H; h++) attn_bigbird_mask(m + h * N * N, table + h * M * r, M, N, b, r);
    return m;
}

void attn_bigbird_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, const int32_t *table, size_t M, size_t N,
                              size_t D, size_t H, size_t b, size_t r) {
    uint8_t *m = masks(table, M, N, H, b, r);
    attn_masked_forward_ref(out, q, k, v, ld, log_s, m, N * N, N, D, H);
    free(m);
}

void attn_bigbird_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, size_t ld, const float *log_s,
                               const int32_t *table, size_t M, size_t N, size_t D, size_t H,
                               size_t b, size_t r) {
    uint8_t *m = masks(table, M, N, H, b, r);
    attn_masked_backward_ref(dq, dk, dv, dout, q, k, v, ld, log_s, m, N * N, N, D, H);
    free(m);
}
