// Exact softmax attention per sample (SPEC §3): softmax(Q K^T / sqrt(d) + log s_j) V.
// Work goes a block of query rows at a time per head: S = Q K^T for the block, the row
// softmax in place, then O = P V. P is never stored whole: save keeps, per head and row, the
// row maximum m_i and the inverse row sum 1/l_i (2 H N floats), and backward recomputes each
// block of P = exp(S - m) / l from Q K^T with the forward's own score arithmetic,
// flash-attention style. Storing P (H N^2 floats, 128 MiB per sample and block at N = 4096)
// made the activations of a batch-8 training step at N = 4096 about 4.8 GB.
// Two implementations of the products, chosen by head width and the run-time kernel set
// (core/kernels.h):
//  - d = 32 with the avx512 or avx2 set (the default model, D = 64, H = 2): the fused kernels
//    of core/attn_softmax_avx512.c / core/attn_softmax_avx2.c (core/attn_softmax_fused.h).
//    They read Q, K, V, dO in place and K^T, V^T from copies made once per forward call and
//    kept in save for backward, so nothing is re-packed per row block; the log s add, the row
//    maximum and backward's exp run on each tile of scores while it is in registers, and
//    forward's 1/l is applied to O instead of P.
//  - any other d, or the plain set: CBLAS sgemms per block plus plain softmax loops (the
//    oracle the fused sets are tested against, with the double reference at the end).
// Forward needs one block x N scratch per thread (the tail of save for the first); backward
// 2 blocks x N in work (P and dS), and the fused path 2 N d more from mem_alloc.
// attn_softmax_forward_infer is the same forward for callers that never run backward: the
// fused path packs only what forward reads (K^T and the V_h copy), 2 D pad_n(N) floats less
// save; the sgemm path packs nothing either way. Which matrices are packed, and where, is one
// SaveLayout table that both forwards and backward read, so there is one forward code path.
// FLOPs per head: Q K^T and P V as matrix products, plus 2 per score element (exp and
// normalisation; the log s add is a third when sizes are given). Backward: four matrix
// products plus 2 per score element. Backward's recomputation of Q K^T is not counted: the
// count is of the algorithm, not of this implementation's memory/time trade.
#include "core/attention.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/attn_softmax_fused.h"
#include "core/flops.h"
#include "core/kernels.h"
#include "core/mem.h"
#include "core/ops.h"
#include "core/rows_isa.h"
#include "core/threads.h"
#ifdef _OPENMP
#include <omp.h>
#endif


// Rows of the score matrix handled per step: S, P and dS are produced and consumed a block of
// rows at a time, so the block stays in cache between the sgemm that writes it, the row
// softmax, and the sgemm that reads it.
#define ROW_BLOCK 64
#define PAR_MIN_ELEMS 65536  // score elements worth an OpenMP region
#define FD FUSED_D
#define CHUNK FUSED_CHUNK
_Static_assert(FUSED_ROWS <= ROW_BLOCK, "fused blocks use the ROW_BLOCK-sized scratch");
static size_t pad_n(size_t N) { return (N + CHUNK - 1) / CHUNK * CHUNK; }
// Row stride of the S/P/dS blocks: N plus 16 floats, so that the rows of a block (N = 4096:
// 16 KiB apart) do not all fall into the same L1 set when a kernel walks down a column.
static size_t row_ld(size_t N) { return N + 16; }

// ---- fused d = 32 kernels: one translation unit per instruction set (core/attn_softmax_fused.h),
// the set chosen at run time (core/kernels.h); NULL = the plain set (the sgemm path below).
static const AttnFusedKernels *fused_kernels(void) {
    switch (kernels_active()) {
    case KERNELS_AVX512: return &attn_fused_avx512;
    case KERNELS_AVX2: return &attn_fused_avx2;
    default: return NULL;
    }
}

static int fused_ok(size_t d) { return d == FD && fused_kernels() != NULL; }

static size_t blk_rows(size_t N) { return N < ROW_BLOCK ? N : ROW_BLOCK; }

// The per-head copies the fused kernels read from save: K^T and V^T in chunks (kA), K_h and
// V_h row-major contiguous (kB). A SaveLayout gives each its slot after the statistics and
// the scratch (slot s, head h at (s H + h) d pad_n(N) floats), or -1 when it is not packed.
enum { PK_KT, PK_VT, PK_KR, PK_VR, PK_COUNT };
typedef struct {
    int slot[PK_COUNT];
    size_t n;  // slots used
} SaveLayout;
// forward + backward: all four, in the order K^T, V^T, K_h, V_h
static const SaveLayout SAVE_TRAIN = {{0, 1, 2, 3}, 4};
// forward only: K^T (kA's scores) and V_h (kB's P V)
static const SaveLayout SAVE_INFER = {{0, -1, -1, 1}, 2};

static size_t save_floats(size_t N, size_t D, size_t H, const SaveLayout *L) {
    return 2 * H * N + blk_rows(N) * row_ld(N) + (fused_ok(D / H) ? L->n * D * pad_n(N) : 0);
}
// (m, 1/l) per head and row, one block of scratch, and K^T, V^T, K_h, V_h for the fused kernels
size_t attn_softmax_save_floats(size_t N, size_t D, size_t H) { return save_floats(N, D, H, &SAVE_TRAIN); }
// the same without V^T and K_h (backward's): 2 D pad_n(N) floats less on the fused path
size_t attn_softmax_infer_save_floats(size_t N, size_t D, size_t H) { return save_floats(N, D, H, &SAVE_INFER); }
// Where packed matrix m (PK_*) of head h starts in save under layout L (m must be packed there).
// Fused kernels only.
static size_t kt_off(size_t N, size_t d, size_t H, const SaveLayout *L, int m, size_t h) {
    return 2 * H * N + blk_rows(N) * row_ld(N) + ((size_t)L->slot[m] * H + h) * d * pad_n(N);
}
size_t attn_softmax_work_floats(size_t N) { return 2 * blk_rows(N) * row_ld(N); }

// In place: each of the nr rows of S (width N, already scaled) becomes softmax_j(S_ij + log_s_j);
// the row maximum and inverse sum go to mx[i], inv[i] when those are given. Starts from the row
// maximum. The sums run in 16 fixed partial sums (core/rows_isa.h), so every kernel set's copy
// gives the same numbers (deterministic). Shared with the dense kernel
// (core/attn_softmax_dense.c), so both compute P with the same arithmetic.
void attn_softmax_rows(float *S, size_t lds, float *mx_out, float *inv_out, const float *log_s,
                       size_t nr, size_t N, int par) {
    const RowKernels *rk = rows_active();
    if (rk) rk->softmax_rows(S, lds, mx_out, inv_out, log_s, nr, N, par);
    else rows_softmax_body(S, lds, mx_out, inv_out, log_s, nr, N, par);
}

// Backward's recomputation (sgemm path): the same element operations as softmax_rows with the
// saved statistics, so P comes out bitwise equal to forward's.
static void softmax_rows_saved(float *S, size_t lds, const float *mx, const float *inv,
                               const float *log_s, size_t nr, size_t N) {
    const RowKernels *rk = rows_active();
    if (rk) rk->softmax_rows_saved(S, lds, mx, inv, log_s, nr, N);
    else rows_softmax_saved_body(S, lds, mx, inv, log_s, nr, N);
}

// One row block of one head: P = softmax(scale Q_b K_h^T) in scratch P (nb, N), O_b = P V_h.
static void forward_block(float *out, float *save, float *P, const float *q, const float *k,
                          const float *v, size_t ld, const float *log_s, size_t N, size_t D,
                          size_t d, size_t h, size_t i0, float scale, int par_rows, const SaveLayout *L) {
    // q,k,v (N, ld); out (N, D); save (m, 1/l) (2, H, N); P (nb, N); rows [i0, i0 + nb) of head h
    size_t H = D / d, rb = fused_ok(d) ? FUSED_ROWS : ROW_BLOCK, nb = N - i0 < rb ? N - i0 : rb, lp = row_ld(N);
    const AttnFusedKernels *fk = d == FD ? fused_kernels() : NULL;
    if (fk) {
        fk->forward(out + i0 * D + h * d, D, P, lp, q + i0 * ld + h * d, ld, save + kt_off(N, d, H, L, PK_KT, h),
                    save + kt_off(N, d, H, L, PK_VR, h), log_s, nb, N, scale, save + h * N + i0,
                    save + (H + h) * N + i0);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)N, (int)d, scale,
                q + i0 * ld + h * d, (int)ld, k + h * d, (int)ld, 0.0f, P, (int)lp);
    attn_softmax_rows(P, lp, save + h * N + i0, save + (H + h) * N + i0, log_s, nb, N, par_rows);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)N, 1.0f, P,
                (int)lp, v + h * d, (int)ld, 0.0f, out + i0 * D + h * d, (int)D);
}

// One (N, d) head of x (stride ld) transposed into T in chunks of CHUNK columns ((d, CHUNK)
// contiguous), zero padded to pad_n(N); or copied row-major contiguous into R.
static void pack_head_t(float *T, const float *x, size_t ld, size_t N, size_t d) {
    // x (N, ld) at the head's first column; T (pad_n(N) / CHUNK, d, CHUNK)
    for (size_t j = 0, np = pad_n(N); j < np; j++) {
        size_t at = (j / CHUNK) * CHUNK * d + j % CHUNK;
        for (size_t c = 0; c < d; c++) T[at + c * CHUNK] = j < N ? x[j * ld + c] : 0.0f;
    }
}
static void pack_head_r(float *R, const float *x, size_t ld, size_t N, size_t d) {
    // x (N, ld) at the head's first column; R (N, d)
    for (size_t j = 0; j < N; j++)
        for (size_t c = 0; c < d; c++) R[j * d + c] = x[j * ld + c];
}

// The matrices layout L packs, for every head, into save after the statistics and the
// scratch: K^T and V^T chunked (kA reads them), K_h and V_h as contiguous (N, d) copies (kB
// streams them; rows ld apart stalled it).
static void pack_transposed(float *save, const float *k, const float *v, size_t ld, size_t N,
                            size_t D, size_t H, const SaveLayout *L) {
    // k,v (N, ld); per head h and packed matrix: (pad_n(N) / CHUNK, d, CHUNK) or (N, d)
    size_t d = D / H;
    for (size_t h = 0; h < H; h++) {
        if (L->slot[PK_KT] >= 0) pack_head_t(save + kt_off(N, d, H, L, PK_KT, h), k + h * d, ld, N, d);
        if (L->slot[PK_VT] >= 0) pack_head_t(save + kt_off(N, d, H, L, PK_VT, h), v + h * d, ld, N, d);
        if (L->slot[PK_KR] >= 0) pack_head_r(save + kt_off(N, d, H, L, PK_KR, h), k + h * d, ld, N, d);
        if (L->slot[PK_VR] >= 0) pack_head_r(save + kt_off(N, d, H, L, PK_VR, h), v + h * d, ld, N, d);
    }
}

// Row blocks are independent, so when this runs outside a parallel region with several threads
// (one sample at a time: batch 1, or a caller that does not parallelise samples), the blocks of
// all heads are spread over OpenMP threads with single-threaded BLAS inside. Alternating
// OpenMP regions (softmax) with multi-threaded OpenBLAS calls 64 rows at a time made two
// thread pools hand over thousands of times per pass: 12x slower than one thread at N = 1024
// on the shared 2-core box. Every block is computed the same way either way (same numbers).
// The extra threads' scratch comes from mem_alloc; if that fails, the blocks run in sequence.
// L says what the fused path packs into save (SAVE_TRAIN for backward, SAVE_INFER for forward
// only); the numbers are the same either way.
static void forward_impl(float *out, float *save, const float *q, const float *k, const float *v,
                         size_t ld, const float *log_s, size_t N, size_t D, size_t H, const SaveLayout *L) {
    // q,k,v (N, ld) head h at cols [h*d,(h+1)*d); out (N, D); save (m, 1/l) (2, H, N) + scratch (nb, N) + packed
    size_t d = D / H, rb = fused_ok(d) ? FUSED_ROWS : ROW_BLOCK, nblk = (N + rb - 1) / rb, sc = blk_rows(N) * row_ld(N);
    float scale = 1.0f / sqrtf((float)d), *P0 = save + 2 * H * N, *extra = NULL;
    int nthr = threads_get(), spread = 0;
    if (fused_ok(d)) pack_transposed(save, k, v, ld, N, D, H, L);
#ifdef _OPENMP
    spread = nthr > 1 && !omp_in_parallel() && H * nblk > 1;
    if (spread) extra = mem_alloc((size_t)(nthr - 1) * sc * sizeof(float));
    if (!extra) spread = 0;
#endif
    if (spread) {
        openblas_set_num_threads(1);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(nthr)
        for (size_t it = 0; it < H * nblk; it++) {
            int t = 0;
#ifdef _OPENMP
            t = omp_get_thread_num();
#endif
            float *P = t == 0 ? P0 : extra + (size_t)(t - 1) * sc;
            forward_block(out, save, P, q, k, v, ld, log_s, N, D, d, it / nblk, (it % nblk) * rb, scale, 0, L);
        }
        openblas_set_num_threads(nthr);
        mem_free(extra);
    } else {
        for (size_t h = 0; h < H; h++)
            for (size_t b = 0; b < nblk; b++)
                forward_block(out, save, P0, q, k, v, ld, log_s, N, D, d, h, b * rb, scale, 1, L);
    }
    for (size_t h = 0; h < H; h++) {
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_elem((log_s ? 3.0 : 2.0) * (double)N * N);
    }
}

void attn_softmax_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N, ld); out (N, D); save attn_softmax_save_floats(N, D, H), read by backward
    forward_impl(out, save, q, k, v, ld, log_s, N, D, H, &SAVE_TRAIN);
}

void attn_softmax_forward_infer(float *out, float *save, const float *q, const float *k,
                                const float *v, size_t ld, const float *log_s, size_t N,
                                size_t D, size_t H) {
    // q,k,v (N, ld); out (N, D); save attn_softmax_infer_save_floats(N, D, H), not for backward
    forward_impl(out, save, q, k, v, ld, log_s, N, D, H, &SAVE_INFER);
}

// In place: dS = P * (dP - rowsum(P * dP)) for nr rows of width N (dS holds dP on entry).
// Shared with the dense kernel (core/attn_softmax_dense.c).
void attn_softmax_ds_rows(float *dS, const float *P, size_t lds, size_t nr, size_t N) {
    const RowKernels *rk = rows_active();
    if (rk) rk->ds_rows(dS, P, lds, nr, N);
    else rows_ds_body(dS, P, lds, nr, N);
}

void attn_softmax_backward_ws(float *dq, float *dk, float *dv, const float *dout, const float *save,
                              const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H, float *work) {
    // dout (N, D); save (m, 1/l) (2, H, N); dq,dk,dv (N, ld) accumulate; work (2, min(N, ROW_BLOCK), N)
    // no gradient flows through log s (sizes are constants); it only shapes P
    size_t d = D / H, rb = fused_ok(d) ? FUSED_ROWS : ROW_BLOCK;
    float scale = 1.0f / sqrtf((float)d);
    size_t lp = row_ld(N);
    float *P = work, *dS = work + blk_rows(N) * lp, *acc = NULL;
    // dK_h^T, dV_h^T gathered as (32, N) over the row blocks, then added to dk, dv (the fused
    // kernels accumulate along rows of P and dS). Without this memory: the sgemm path (its
    // scores differ from the fused forward's by rounding only).
    const AttnFusedKernels *fk = d == FD ? fused_kernels() : NULL;
    if (fk) acc = mem_alloc(2 * N * FD * sizeof(float));
    for (size_t h = 0; h < H; h++) {
        float *dKT = acc, *dVT = acc ? acc + N * FD : NULL;
        if (acc) memset(acc, 0, 2 * N * FD * sizeof(float));
        for (size_t i0 = 0; i0 < N; i0 += rb) {
            size_t nb = N - i0 < rb ? N - i0 : rb;
            const float *dO = dout + i0 * D + h * d, *qb = q + i0 * ld + h * d;
            const float *mx = save + h * N + i0, *inv = save + (H + h) * N + i0;
            if (acc) {
                fk->backward(dq + i0 * ld + h * d, ld, dKT, dVT, P, dS, lp, qb, ld, dO, D,
                             save + kt_off(N, d, H, &SAVE_TRAIN, PK_KT, h), save + kt_off(N, d, H, &SAVE_TRAIN, PK_VT, h),
                             save + kt_off(N, d, H, &SAVE_TRAIN, PK_KR, h), log_s, nb, N, scale, mx, inv);
                continue;
            }
            // P_b recomputed exactly as forward made it
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)N, (int)d, scale,
                        qb, (int)ld, k + h * d, (int)ld, 0.0f, P, (int)lp);
            softmax_rows_saved(P, lp, mx, inv, log_s, nb, N);
            // dV_h += P_b^T dO_b
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)nb, 1.0f, P,
                        (int)lp, dO, (int)D, 1.0f, dv + h * d, (int)ld);
            // dP_b = dO_b V_h^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)N, (int)d, 1.0f, dO,
                        (int)D, v + h * d, (int)ld, 0.0f, dS, (int)lp);
            attn_softmax_ds_rows(dS, P, lp, nb, N);
            // dQ_b += scale dS K_h ; dK_h += scale dS^T Q_b
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)N, scale, dS,
                        (int)lp, k + h * d, (int)ld, 1.0f, dq + i0 * ld + h * d, (int)ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)nb, scale, dS,
                        (int)lp, qb, (int)ld, 1.0f, dk + h * d, (int)ld);
        }
        if (acc)
            for (size_t j = 0; j < N; j++)
                for (size_t c = 0; c < d; c++) {
                    dk[j * ld + h * d + c] += dKT[c * N + j];
                    dv[j * ld + h * d + c] += dVT[c * N + j];
                }
        flops_matmul(N, d, N);
        flops_matmul(N, N, d);
        flops_matmul(N, d, N);
        flops_matmul(N, d, N);
        flops_elem(2.0 * (double)N * N);
    }
    mem_free(acc);
}

void attn_softmax_backward(float *dq, float *dk, float *dv, const float *dout, const float *save,
                           const float *q, const float *k, const float *v, size_t ld,
                           const float *log_s, size_t N, size_t D, size_t H) {
    float *work = mem_alloc(attn_softmax_work_floats(N) * sizeof(float));
    if (!work) abort();  // void contract: callers that cannot afford this use the _ws form
    attn_softmax_backward_ws(dq, dk, dv, dout, save, q, k, v, ld, log_s, N, D, H, work);
    mem_free(work);
}

// ---- plain reference kernels (tests only): direct formulas, double accumulation ----

void attn_softmax_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, size_t N, size_t D, size_t H) {
    // q,k,v (N, ld), out (N, D)
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(N * sizeof(double));
    if (!p) abort();
    for (size_t h = 0; h < H; h++) {
        for (size_t i = 0; i < N; i++) {
            double mx = -INFINITY;
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t c = 0; c < d; c++) s += (double)q[i * ld + h * d + c] * k[j * ld + h * d + c];
                p[j] = s * scale + (log_s ? log_s[j] : 0.0);
                if (p[j] > mx) mx = p[j];
            }
            double sum = 0;
            for (size_t j = 0; j < N; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            for (size_t c = 0; c < d; c++) {
                double o = 0;
                for (size_t j = 0; j < N; j++) o += p[j] / sum * v[j * ld + h * d + c];
                out[i * D + h * d + c] = (float)o;
            }
        }
    }
    free(p);
}

void attn_softmax_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, size_t ld, const float *log_s,
                               size_t N, size_t D, size_t H) {
    // dout (N, D); dq,dk,dv (N, ld) accumulate
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc(N * sizeof(double)), *dp = malloc(N * sizeof(double));
    if (!p || !dp) abort();
    for (size_t h = 0; h < H; h++) {
        for (size_t i = 0; i < N; i++) {
            double mx = -INFINITY, sum = 0;
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t c = 0; c < d; c++) s += (double)q[i * ld + h * d + c] * k[j * ld + h * d + c];
                p[j] = s * scale + (log_s ? log_s[j] : 0.0);
                if (p[j] > mx) mx = p[j];
            }
            for (size_t j = 0; j < N; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
            double dot = 0;
            for (size_t j = 0; j < N; j++) {
                p[j] /= sum;
                double g = 0;
                for (size_t c = 0; c < d; c++) g += (double)dout[i * D + h * d + c] * v[j * ld + h * d + c];
                dp[j] = g;
                dot += p[j] * g;
            }
            for (size_t j = 0; j < N; j++) {
                double ds = p[j] * (dp[j] - dot) * scale;
                for (size_t c = 0; c < d; c++) {
                    dq[i * ld + h * d + c] += (float)(ds * k[j * ld + h * d + c]);
                    dk[j * ld + h * d + c] += (float)(ds * q[i * ld + h * d + c]);
                    dv[j * ld + h * d + c] += (float)(p[j] * dout[i * D + h * d + c]);
                }
            }
        }
    }
    free(p);
    free(dp);
}
