// Fused d = 32 softmax-attention kernels for AVX2 + FMA (core/attn_softmax_fused.h): the
// AVX-512 kernels' structure (core/attn_softmax_avx512.c) on 8 lanes and 16 ymm registers.
// Compiled with -mavx2 -mfma (Makefile) and entered only when core/kernels.h chose the avx2
// set. Tiles, sized so that accumulators, operands and one broadcast fit 16 registers:
//  kA (scores):    6 rows x 16 columns of a 64-column chunk (12 accumulators), as an AVX2 sgemm
//                  micro-kernel; the AVX-512 tile is 4 x 64;
//  kB (P V, dS K): 6 rows x 16 of the 32 output columns, the two halves one after the other
//                  over the same 128-row slice of V (AVX-512: 8 x 32);
//  kC (P^T dO, dS^T Q, transposed): 4 of the 32 rows x 16 columns (AVX-512: 4 x 64).
// Tails past N use vmaskmov loads and stores (no fault on masked lanes). Every sum runs over
// its index in order, as on AVX-512, so results are deterministic and independent of threads.
#include "core/attn_softmax_fused.h"
#include "core/threads.h"
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(__AVX2__) || !defined(__FMA__)
#error "core/attn_softmax_avx2.c needs -mavx2 -mfma (see the Makefile)"
#endif

#define FD FUSED_D
#define CHUNK FUSED_CHUNK
#define ROW_BLOCK FUSED_ROWS
#define PAR_MIN_ELEMS 65536  // score elements worth an OpenMP region (as core/attn_softmax.c)

static const int32_t MASK_TAB[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
// Lanes [0, min(left, 8)) set.
static inline __m256i tail_mask(size_t left) {
    return _mm256_loadu_si256((const __m256i *)(MASK_TAB + 8 - (left >= 8 ? 8 : left)));
}
static inline __m256 load_m(const float *p, __m256i m, int full) { return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m); }
static inline void store_m(float *p, __m256i m, int full, __m256 v) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, m, v);
}
static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, 1)));
}

// ops_expf's algorithm (core/ops.h: Cody-Waite reduction, Cephes degree-6 polynomial) on 8
// lanes with FMAs, 2^k through the exponent bits. The upper clamp is 88.3 rather than 88.7 so
// that k <= 127 (AVX-512's scalef has no such limit); the kernels only pass x <= 0 (scores
// minus their row maximum). Accuracy: the d = 32 comparisons with the double reference
// (tests/test_softmax_attn.c), run with this set forced.
static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3f)), _mm256_set1_ps(-87.3f));
    __m256 kf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(kf), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// What kA does to a finished tile of scores before it leaves registers.
enum { EPI_NONE, EPI_MAX, EPI_EXP };

// S[r][j] = alpha sum_c X[r][c] YT[c][j] for r < nr, j < N; YT packed in chunks of 64 columns
// (core/attn_softmax_fused.h). Epilogues (with + log_s[j] first when log_s is given): EPI_MAX
// raises st[r] to the row maximum; EPI_EXP replaces the scores by exp(S - st[r]) * st2[r].
// One tile: R rows x 16 columns starting at Yc (a 16-column slice of a chunk, rows CHUNK apart).
static inline __attribute__((always_inline)) void kA_tile(float *S, size_t lds, const float *X, size_t ldx,
                                                          const float *Yc, const __m256i *m, int full,
                                                          float alpha, const float *ls, int epi, float *st,
                                                          const float *st2, int R) {
    __m256 acc[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        if (r >= R) break;
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    for (size_t c = 0; c < FD; c++) {
        __m256 y0 = _mm256_loadu_ps(Yc + c * CHUNK), y1 = _mm256_loadu_ps(Yc + c * CHUNK + 8);
        #pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            if (r >= R) break;
            __m256 x = _mm256_set1_ps(X[r * ldx + c]);
            acc[r][0] = _mm256_fmadd_ps(x, y0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, y1, acc[r][1]);
        }
    }
    __m256 a = _mm256_set1_ps(alpha), l[2], ninf = _mm256_set1_ps(-INFINITY);
    for (int v = 0; v < 2; v++) l[v] = ls ? load_m(ls + 8 * v, m[v], full) : _mm256_setzero_ps();
    #pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        if (r >= R) break;
        __m256 mx = ninf;
        __m256 mr = epi == EPI_EXP ? _mm256_set1_ps(st[r]) : mx, iv = epi == EPI_EXP ? _mm256_set1_ps(st2[r]) : mx;
        for (int v = 0; v < 2; v++) {
            __m256 o = _mm256_mul_ps(a, acc[r][v]);
            if (ls) o = _mm256_add_ps(o, l[v]);
            if (epi == EPI_EXP) o = _mm256_mul_ps(exp256(_mm256_sub_ps(o, mr)), iv);
            store_m(S + r * lds + 8 * v, m[v], full, o);
            if (epi == EPI_MAX) mx = _mm256_max_ps(mx, full ? o : _mm256_blendv_ps(ninf, o, _mm256_castsi256_ps(m[v])));
        }
        if (epi == EPI_MAX) {
            float t = hmax(mx);
            if (t > st[r]) st[r] = t;
        }
    }
}

static inline __attribute__((always_inline)) void kA_rows(float *S, size_t lds, const float *X, size_t ldx,
                                                          const float *Yc, const __m256i *m, int full, size_t nr,
                                                          float alpha, const float *ls, int epi, float *st,
                                                          const float *st2) {
    size_t r = 0;
    for (; r + 6 <= nr; r += 6) kA_tile(S + r * lds, lds, X + r * ldx, ldx, Yc, m, full, alpha, ls, epi, st + r, st2 + r, 6);
    if (nr - r >= 4) {
        kA_tile(S + r * lds, lds, X + r * ldx, ldx, Yc, m, full, alpha, ls, epi, st + r, st2 + r, 4);
        r += 4;
    }
    for (; r < nr; r++) kA_tile(S + r * lds, lds, X + r * ldx, ldx, Yc, m, full, alpha, ls, epi, st + r, st2 + r, 1);
}

static void kA(float *S, size_t lds, const float *X, size_t ldx, const float *YT, size_t nr, size_t N,
               float alpha, const float *log_s, int epi, float *st, const float *st2) {
    // X (nr, 32) stride ldx; YT (32, pad_n(N)) in chunks; S (nr, N) stride lds; st, st2 (nr)
    for (size_t j0 = 0; j0 < N; j0 += CHUNK) {
        const float *Yc = YT + j0 * FD;
        for (size_t s = 0; s < CHUNK && j0 + s < N; s += 16) {
            size_t j = j0 + s;
            __m256i m[2] = {tail_mask(N - j), j + 8 < N ? tail_mask(N - j - 8) : _mm256_setzero_si256()};
            const float *ls = log_s ? log_s + j : NULL;
            if (j + 16 <= N) kA_rows(S + j, lds, X, ldx, Yc + s, m, 1, nr, alpha, ls, epi, st, st2);
            else kA_rows(S + j, lds, X, ldx, Yc + s, m, 0, nr, alpha, ls, epi, st, st2);
        }
    }
}

// C[r][0:32] (= or +=) alpha rs[r] sum_j P[r][j] Y[j][0:32] (rs NULL: 1); P (nr, N) stride ldp,
// Y (N, 32) stride ldy, nr <= ROW_BLOCK. j runs in slices of KB_J rows of Y (16 KiB, stays in
// L1 for all row tiles and both column halves); partial sums wait in accb between slices, so
// every sum still runs over j in order. One tile: R rows x 16 columns (accb rows FD apart).
#define KB_J 128
static inline __attribute__((always_inline)) void kB_tile(float *accb, const float *P, size_t ldp,
                                                          const float *Y, size_t ldy, size_t j0, size_t j1,
                                                          int R) {
    __m256 acc[6][2];
    #pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        if (r >= R) break;
        acc[r][0] = _mm256_load_ps(accb + r * FD);
        acc[r][1] = _mm256_load_ps(accb + r * FD + 8);
    }
    for (size_t j = j0; j < j1; j++) {
        __m256 y0 = _mm256_loadu_ps(Y + j * ldy), y1 = _mm256_loadu_ps(Y + j * ldy + 8);
        #pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            if (r >= R) break;
            __m256 p = _mm256_set1_ps(P[r * ldp + j]);
            acc[r][0] = _mm256_fmadd_ps(p, y0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(p, y1, acc[r][1]);
        }
    }
    #pragma GCC unroll 6
    for (int r = 0; r < 6; r++) {
        if (r >= R) break;
        _mm256_store_ps(accb + r * FD, acc[r][0]);
        _mm256_store_ps(accb + r * FD + 8, acc[r][1]);
    }
}

static void kB(float *C, size_t ldc, const float *P, size_t ldp, const float *Y, size_t ldy, size_t nr,
               size_t N, float alpha, const float *rs, int accumulate) {
    // P (nr, N) stride ldp; Y (N, 32) stride ldy; C (nr, 32) stride ldc; nr <= ROW_BLOCK
    _Alignas(32) float accb[ROW_BLOCK * FD];
    memset(accb, 0, nr * FD * sizeof(float));
    for (size_t j0 = 0; j0 < N; j0 += KB_J) {
        size_t j1 = N - j0 < KB_J ? N : j0 + KB_J;
        for (size_t hf = 0; hf < FD; hf += 16) {
            size_t r = 0;
            for (; r + 6 <= nr; r += 6) kB_tile(accb + r * FD + hf, P + r * ldp, ldp, Y + hf, ldy, j0, j1, 6);
            if (nr - r >= 4) {
                kB_tile(accb + r * FD + hf, P + r * ldp, ldp, Y + hf, ldy, j0, j1, 4);
                r += 4;
            }
            for (; r < nr; r++) kB_tile(accb + r * FD + hf, P + r * ldp, ldp, Y + hf, ldy, j0, j1, 1);
        }
    }
    for (size_t r = 0; r < nr; r++) {
        float s = alpha * (rs ? rs[r] : 1.0f), *c = C + r * ldc;
        for (size_t t = 0; t < FD; t++) c[t] = (accumulate ? c[t] : 0.0f) + s * accb[r * FD + t];
    }
}

// CT[c][j] += alpha sum_{r < nr} X[r][c] P[r][j] for c < 32, j < N: the transpose of P^T X, so
// that P is read along its rows. CT (32, N) stride ldct; P (nr, N) stride ldp; X (nr, 32)
// stride ldx. Per tile of 4 c x 16 j, the block's sum over r is formed in registers and then
// added (scaled) to CT, so each CT element is a sum over blocks in block order.
static inline __attribute__((always_inline)) void kC_tile(float *CT, size_t ldct, const float *P, size_t ldp,
                                                          const float *X, size_t ldx, size_t nr,
                                                          const __m256i *m, int full, float alpha) {
    __m256 acc[4][2];
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    for (size_t r = 0; r < nr; r++) {
        __m256 p0 = load_m(P + r * ldp, m[0], full), p1 = load_m(P + r * ldp + 8, m[1], full);
        #pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256 x = _mm256_set1_ps(X[r * ldx + c]);
            acc[c][0] = _mm256_fmadd_ps(x, p0, acc[c][0]);
            acc[c][1] = _mm256_fmadd_ps(x, p1, acc[c][1]);
        }
    }
    __m256 a = _mm256_set1_ps(alpha);
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        for (int v = 0; v < 2; v++) {
            float *o = CT + c * ldct + 8 * v;
            store_m(o, m[v], full, _mm256_fmadd_ps(a, acc[c][v], load_m(o, m[v], full)));
        }
}

static void kC(float *CT, size_t ldct, const float *P, size_t ldp, const float *X, size_t ldx, size_t nr,
               size_t N, float alpha) {
    // P (nr, N) stride ldp; X (nr, 32) stride ldx; CT (32, N) stride ldct, accumulated
    for (size_t j0 = 0; j0 < N; j0 += CHUNK)
        for (size_t j = j0; j < j0 + CHUNK && j < N; j += 16) {
            __m256i m[2] = {tail_mask(N - j), j + 8 < N ? tail_mask(N - j - 8) : _mm256_setzero_si256()};
            int full = j + 16 <= N;
            for (size_t c0 = 0; c0 < FD; c0 += 4) {
                if (full) kC_tile(CT + c0 * ldct + j, ldct, P + j, ldp, X + c0, ldx, nr, m, 1, alpha);
                else kC_tile(CT + c0 * ldct + j, ldct, P + j, ldp, X + c0, ldx, nr, m, 0, alpha);
            }
        }
}

// In place: dS = P * (dP - rowsum(P * dP)) for nr rows (dS holds dP on entry); the dot runs
// in 8 lane sums over j, then across lanes in a fixed order.
static inline void ds_row(float *dS, const float *P, size_t lds, size_t i, size_t N) {
    const float *p = P + i * lds;
    float *g = dS + i * lds;
    __m256 acc = _mm256_setzero_ps();
    for (size_t j = 0; j < N; j += 8) {
        __m256i k = tail_mask(N - j);
        acc = _mm256_fmadd_ps(load_m(p + j, k, j + 8 <= N), load_m(g + j, k, j + 8 <= N), acc);
    }
    __m256 dot = _mm256_set1_ps(hsum(acc));
    for (size_t j = 0; j < N; j += 8) {
        __m256i k = tail_mask(N - j);
        int full = j + 8 <= N;
        store_m(g + j, k, full, _mm256_mul_ps(load_m(p + j, k, full), _mm256_sub_ps(load_m(g + j, k, full), dot)));
    }
}

static void ds_rows(float *dS, const float *P, size_t lds, size_t nr, size_t N) {
    if (nr * N >= PAR_MIN_ELEMS && !threads_in_parallel()) {
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nr; i++) ds_row(dS, P, lds, i, N);
    } else {   // inside the model's per-sample region: no OpenMP call at all
        for (size_t i = 0; i < nr; i++) ds_row(dS, P, lds, i, N);
    }
}

static void forward_block(float *out, size_t ldo, float *P, size_t lp, const float *q, size_t ld,
                          const float *KT, const float *VR, const float *log_s, size_t nb, size_t N,
                          float scale, float *mx, float *inv) {
    // S + log s with the row maxima (kA), exp and sums (one pass), O = (1/l) E V (kB)
    for (size_t i = 0; i < nb; i++) mx[i] = -INFINITY;
    kA(P, lp, q, ld, KT, nb, N, scale, log_s, EPI_MAX, mx, NULL);
    for (size_t i = 0; i < nb; i++) {
        float *r = P + i * lp;
        __m256 m = _mm256_set1_ps(mx[i]), sum = _mm256_setzero_ps();
        for (size_t j = 0; j < N; j += 8) {
            __m256i k = tail_mask(N - j);
            int full = j + 8 <= N;
            __m256 e = exp256(_mm256_sub_ps(load_m(r + j, k, full), m));
            if (!full) e = _mm256_and_ps(e, _mm256_castsi256_ps(k));
            store_m(r + j, k, full, e);
            sum = _mm256_add_ps(sum, e);
        }
        inv[i] = 1.0f / hsum(sum);
    }
    kB(out, ldo, P, lp, VR, FD, nb, N, 1.0f, inv, 0);
}

static void backward_block(float *dq, size_t ldq, float *dKT, float *dVT, float *P, float *dS, size_t lp,
                           const float *q, size_t ld, const float *dO, size_t ldo, const float *KT,
                           const float *VT, const float *KR, const float *log_s, size_t nb, size_t N,
                           float scale, const float *mx, const float *inv) {
    kA(P, lp, q, ld, KT, nb, N, scale, log_s, EPI_EXP, (float *)mx, inv);  // P_b from (m, 1/l)
    kC(dVT, N, P, lp, dO, ldo, nb, N, 1.0f);                             // dV_h^T += (P_b^T dO_b)^T
    kA(dS, lp, dO, ldo, VT, nb, N, 1.0f, NULL, EPI_NONE, NULL, NULL);    // dP_b = dO_b V_h^T
    ds_rows(dS, P, lp, nb, N);
    kB(dq, ldq, dS, lp, KR, FD, nb, N, scale, NULL, 1);                   // dQ_b += scale dS K_h
    kC(dKT, N, dS, lp, q, ld, nb, N, scale);                             // dK_h^T += scale (dS^T Q_b)^T
}

const AttnFusedKernels attn_fused_avx2 = {forward_block, backward_block};
