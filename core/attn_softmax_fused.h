// The fused d = 32 softmax-attention kernels (core/attn_softmax.c's fast path), one translation
// unit per instruction set, each compiled with its own flags (Makefile): attn_softmax_avx512.c
// (16 lanes) and attn_softmax_avx2.c (8 lanes, AVX2 + FMA). core/attn_softmax.c picks one
// through core/kernels.h and never calls into a set the CPU lacks. Both sets compute the same
// functions with the same loop orders per lane; only the vector width and tiling differ.
// Layouts (made by core/attn_softmax.c's pack_head_t / pack_head_r, kept in save):
//  KT, VT: one head's K^T / V^T in chunks of FUSED_CHUNK columns, chunk t = the (32, 64) block
//          [0:32][64t : 64t+64] contiguous, zero padded past N;
//  KR, VR: one head's K_h / V_h as contiguous (N, 32).
// Scores P, dS: (nb, N) with row stride lp >= N, nb <= FUSED_ROWS. Every sum runs over its
// index in order (deterministic, independent of threads).
#ifndef MAELRE_ATTN_SOFTMAX_FUSED_H
#define MAELRE_ATTN_SOFTMAX_FUSED_H
#include <stddef.h>

#define FUSED_D 32       // the head width these kernels are written for
#define FUSED_CHUNK 64   // columns per packed chunk of K^T, V^T
#define FUSED_ROWS 64    // rows per block (measured on AVX-512: 16, 32, 64 -> 64 fastest)

typedef struct {
    // One block of nb query rows of one head: S = scale Q_b K^T (+ log s), row maxima to mx,
    // P = exp(S - mx) in P, inv = 1 / row sums, out_b = inv * (P V). q (nb, 32) stride ld,
    // out (nb, 32) stride ldo; mx, inv (nb).
    void (*forward)(float *out, size_t ldo, float *P, size_t lp, const float *q, size_t ld,
                    const float *KT, const float *VR, const float *log_s, size_t nb, size_t N,
                    float scale, float *mx, float *inv);
    // Backward of the same block: P recomputed from (mx, inv); dVT += (P^T dO)^T;
    // dS = P * (dO V^T - rowsum(P * dO V^T)); dq += scale dS K; dKT += scale (dS^T Q_b)^T.
    // dO (nb, 32) stride ldo; dq (nb, 32) stride ldq; dKT, dVT (32, N) stride N.
    void (*backward)(float *dq, size_t ldq, float *dKT, float *dVT, float *P, float *dS, size_t lp,
                     const float *q, size_t ld, const float *dO, size_t ldo, const float *KT,
                     const float *VT, const float *KR, const float *log_s, size_t nb, size_t N,
                     float scale, const float *mx, const float *inv);
} AttnFusedKernels;

extern const AttnFusedKernels attn_fused_avx512;   // core/attn_softmax_avx512.c
extern const AttnFusedKernels attn_fused_avx2;     // core/attn_softmax_avx2.c

#endif
