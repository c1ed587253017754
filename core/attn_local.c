// `local` (sliding-window) attention, SPEC §9.4; the contract is in core/attn_local.h.
// Query blocks of LOCAL_ROWS rows run through the block-sparse engine (core/attn_sparse.c):
// block [i0, i0 + nb) has one key run, the union of its rows' windows
// [lo(i0), hi(i0 + nb - 1)), at most nb - 1 + 2 (w/2) keys; each row attends its own band
// inside it. One sgemm per block computes the whole span (the band's corners are wasted work,
// (LOCAL_ROWS - 1) / w of the useful scores: 12 % at w = 512); the FLOP count is of the band.
#include "core/attn_local.h"
#include <stdlib.h>
#include "core/attn_mask_ref.h"
#include "core/attn_sparse.h"
#include "core/flops.h"
#include "core/mem.h"

#define LOCAL_ROWS 64  // query rows per block (as core/attn_softmax.c's ROW_BLOCK)

void attn_local_window(size_t i, size_t N, size_t w, size_t *lo, size_t *hi) {
    size_t hw = w / 2;
    *lo = i + 1 > hw ? i + 1 - hw : 0;          // j > i - w/2
    *hi = i + hw + 1 < N ? i + hw + 1 : N;      // j <= i + w/2
}

double attn_local_pairs(size_t N, size_t w) {
    double n = 0;
    for (size_t i = 0, lo, hi; i < N; i++) {
        attn_local_window(i, N, w, &lo, &hi);
        n += (double)(hi - lo);
    }
    return n;
}

static size_t span_max(size_t N, size_t w) {
    size_t s = LOCAL_ROWS - 1 + 2 * (w / 2);
    return s < N ? s : N;
}

// One key run per block, each row its band inside it.
static size_t plan(const void *ctx, size_t h, size_t i0, size_t nb, size_t *run, size_t *lo, size_t *hi) {
    size_t N = ((const size_t *)ctx)[0], w = ((const size_t *)ctx)[1], a, b, l, e;
    attn_local_window(i0, N, w, &a, &e);
    attn_local_window(i0 + nb - 1, N, w, &l, &b);
    run[0] = a;
    run[1] = b;
    for (size_t r = 0; r < nb; r++) {
        attn_local_window(i0 + r, N, w, &l, &e);
        lo[r] = l - a;
        hi[r] = e - a;
    }
    return 1;
}

static AttnSparse engine(const size_t *ctx, size_t N, size_t D, size_t H, size_t w) {
    if (w < 2) abort();  // an empty window; the model's config validation rejects it
    AttnSparse A = {N, D, H, LOCAL_ROWS, span_max(N, w), 1, plan, ctx};
    return A;
}

static void count_forward(size_t N, size_t D, size_t H, size_t w, int has_log_s) {
    double pairs = attn_local_pairs(N, w);
    for (size_t h = 0; h < H; h++) {
        flops_matmul((size_t)pairs, 1, D / H);  // Q K^T over the band
        flops_matmul((size_t)pairs, 1, D / H);  // P V
        flops_elem((has_log_s ? 3.0 : 2.0) * pairs);
    }
}

size_t attn_local_save_floats(size_t N, size_t D, size_t H, size_t w) {
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    return 2 * H * N + attn_sparse_fwd_scratch(&A);
}

void attn_local_forward(float *out, float *save, const float *q, const float *k, const float *v,
                        size_t ld, const float *log_s, size_t N, size_t D, size_t H, size_t w) {
    // q,k,v (N, ld); out (N, D); save: (max, 1/sum) (2, H, N) then one score block
    if (N == 0) return;
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    attn_sparse_forward(&A, out, save, save + 2 * H * N, q, k, v, ld, log_s);
    count_forward(N, D, H, w, log_s != NULL);
}

size_t attn_local_infer_work_floats(size_t N, size_t D, size_t H, size_t w) {
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    return attn_sparse_fwd_scratch(&A);
}

void attn_local_forward_infer(float *out, float *work, const float *q, const float *k,
                              const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                              size_t H, size_t w) {
    // q,k,v (N, ld); out (N, D); work one score block
    if (N == 0) return;
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    attn_sparse_forward(&A, out, NULL, work, q, k, v, ld, log_s);
    count_forward(N, D, H, w, log_s != NULL);
}

size_t attn_local_work_floats(size_t N, size_t D, size_t H, size_t w) {
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    return attn_sparse_bwd_scratch(&A);
}

void attn_local_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                            const float *q, const float *k, const float *v, size_t ld,
                            const float *log_s, size_t N, size_t D, size_t H, size_t w,
                            float *work) {
    // dout (N, D); save as forward; dq,dk,dv (N, ld) accumulate; work two score blocks
    if (N == 0) return;
    size_t ctx[2] = {N, w};
    AttnSparse A = engine(ctx, N, D, H, w);
    attn_sparse_backward(&A, dq, dk, dv, dout, save, q, k, v, ld, log_s, work);
    double pairs = attn_local_pairs(N, w);
    for (size_t h = 0; h < H; h++) {
        for (int m = 0; m < 4; m++) flops_matmul((size_t)pairs, 1, D / H);  // dV, dP, dQ, dK
        flops_elem(2.0 * pairs);
    }
}

// ---- plain reference (tests only) ----

void attn_local_mask(uint8_t *mask, size_t N, size_t w) {
    // mask (N, N)
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            mask[i * N + j] = (double)j > (double)i - (double)(w / 2) && j <= i + w / 2;
}

void attn_local_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                            const float *log_s, size_t N, size_t D, size_t H, size_t w) {
    uint8_t *m = malloc(N * N + 1);
    if (!m) abort();
    attn_local_mask(m, N, w);
    attn_masked_forward_ref(out, q, k, v, ld, log_s, m, 0, N, D, H);
    free(m);
}

void attn_local_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, size_t ld, const float *log_s,
                             size_t N, size_t D, size_t H, size_t w) {
    uint8_t *m = malloc(N * N + 1);
    if (!m) abort();
    attn_local_mask(m, N, w);
    attn_masked_backward_ref(dq, dk, dv, dout, q, k, v, ld, log_s, m, 0, N, D, H);
    free(m);
}
