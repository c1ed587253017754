// `bigbird` attention (SPEC §9.5, the ITC form as in LRA), per sample. Tokens are grouped in
// blocks of b (default 64; the last block of a sample may be short), nblk = ceil(N / b). Query
// block i attends, in one joint softmax (1/sqrt(d) scale, + log s_j), to the keys of:
//   key blocks i-1, i, i+1 (window), blocks 0 and nblk-1 (global), and r (default 3) random
//   blocks drawn from the others, without repeats;
// query blocks 0 and nblk-1 attend to every key; and if N <= (5 + r) b every query attends to
// every key (the kind equals `softmax`, core/attention.h).
// Random blocks: a table per layer and head, (M, r) int32, drawn once for M = ceil(max_len / b)
// blocks by attn_bigbird_draw_table (row i: r distinct blocks of {0..M-1} minus {0, M-1, i-1,
// i, i+1}, ascending, -1 where fewer exist; rows 0 and M-1 all -1) and used for the first nblk
// rows in every sample (nblk <= M). In a sample with nblk < M a pick may not exist or may be
// one of the sample's window/global blocks; attn_bigbird_row_blocks then maps it, depending only
// on (table row, i, nblk), so the same for every batch:
//   1. picks that are valid in this sample (p < nblk, not in {0, nblk-1, i-1, i, i+1}, not
//      already taken) are kept, in table order;
//   2. each other pick p goes to the candidate list C (the sample's valid blocks, ascending,
//      |C| = c > r whenever the pattern is sparse) at index (p mod c) (p < 0: index 0), moving
//      on cyclically to the next candidate not yet taken.
// With nblk = M every pick is valid and used as drawn. We draw from the whole sequence (LRA
// limits random blocks to the first 1,024 tokens).
// Conventions as core/attention.h: q, k, v row stride ld (fused QKV: 3D), head h columns
// [h*d, (h+1)*d); out (N, D); log_s or NULL; backward accumulates (+=); no gradient flows
// through log s. `table` holds all heads: (H, M, r), head h at h M r.
// Memory: queries go one block (b rows) at a time; the key blocks' rows are not copied: the
// scores are formed by one sgemm per run of consecutive key blocks. save is 2 H N floats (row
// max, 1/sum) plus one b x N score block and N floats; backward recomputes the scores.
// FLOPs per head: pairs = sum over query blocks of (rows x keys attended) (attn_bigbird_pairs);
// forward 2 pairs d MACs plus 2 per pair (3 with log s); backward 4 pairs d MACs plus 2 per pair.
#ifndef MAELRE_ATTN_BIGBIRD_H
#define MAELRE_ATTN_BIGBIRD_H
#include <stddef.h>
#include <stdint.h>

#define ATTN_BIGBIRD_BLOCK 64   // SPEC §9.5's b
#define ATTN_BIGBIRD_RANDOM 3   // SPEC §9.5's r

// Draws one head's table (M, r) from *rng (core/rng.h).
void attn_bigbird_draw_table(int32_t *table, uint64_t *rng, size_t M, size_t r);
// The key blocks of query block i in a sample of nblk blocks, ascending, into blocks (nblk
// entries suffice); returns their count. trow: the head's table row i (r entries).
size_t attn_bigbird_row_blocks(size_t *blocks, const int32_t *trow, size_t r, size_t i, size_t nblk);
// (query, key) pairs of one head (the FLOP count's unit).
double attn_bigbird_pairs(const int32_t *table_h, size_t M, size_t N, size_t b, size_t r);

size_t attn_bigbird_save_floats(size_t N, size_t D, size_t H, size_t b);
void attn_bigbird_forward(float *out, float *save, const float *q, const float *k, const float *v,
                          size_t ld, const float *log_s, const int32_t *table, size_t M, size_t N,
                          size_t D, size_t H, size_t b, size_t r);
size_t attn_bigbird_work_floats(size_t N, size_t D, size_t H, size_t b);
void attn_bigbird_backward_ws(float *dq, float *dk, float *dv, const float *dout,
                              const float *save, const float *q, const float *k, const float *v,
                              size_t ld, const float *log_s, const int32_t *table, size_t M,
                              size_t N, size_t D, size_t H, size_t b, size_t r, float *work);
// Inference form: the same output as attn_bigbird_forward, bit for bit, same FLOP count,
// nothing kept for backward; work is one score block (attn_bigbird_infer_work_floats).
size_t attn_bigbird_infer_work_floats(size_t N, size_t D, size_t H, size_t b);
void attn_bigbird_forward_infer(float *out, float *work, const float *q, const float *k,
                                const float *v, size_t ld, const float *log_s,
                                const int32_t *table, size_t M, size_t N, size_t D, size_t H,
                                size_t b, size_t r);

// Plain reference (tests' oracle): one head's explicit (N, N) mask, and the masked reference
// of core/attn_mask_ref.h over all heads' masks.
void attn_bigbird_mask(uint8_t *mask, const int32_t *table_h, size_t M, size_t N, size_t b, size_t r);
void attn_bigbird_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                              const float *log_s, const int32_t *table, size_t M, size_t N,
                              size_t D, size_t H, size_t b, size_t r);
void attn_bigbird_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, size_t ld, const float *log_s,
                               const int32_t *table, size_t M, size_t N, size_t D, size_t H,
                               size_t b, size_t r);
#endif
