// Fused d = 32 softmax-attention kernels for AVX-512 (core/attn_softmax_fused.h): 16 lanes,
// masked tails. Compiled with -mavx512f -mavx512dq -mavx2 -mfma (Makefile) and entered only
// when core/kernels.h chose the avx512 set.
// Why by hand: with d = 32 every product here is skinny (inner or outer size 32), and OpenBLAS
// re-packed the N x 32 operand and the 64 x N block for every 64-row block (22 % of a training
// step at N = 4096). These kernels read Q, K, V, dO in place (row stride ld), K^T and V^T from
// a copy made once per head, and S, P, dS in place. Each sum runs over its index in order
// (deterministic, independent of threads).
#include "core/attn_softmax_fused.h"
#include "core/threads.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__FMA__)
#error "core/attn_softmax_avx512.c needs -mavx512f -mavx512dq -mfma (see the Makefile)"
#endif

#define FD FUSED_D
#define CHUNK FUSED_CHUNK
#define ROW_BLOCK FUSED_ROWS
#define PAR_MIN_ELEMS 65536  // score elements worth an OpenMP region (as core/attn_softmax.c)
static inline __mmask16 tail_mask(size_t left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

// ops_expf's algorithm (core/ops.h: Cody-Waite reduction, Cephes degree-6 polynomial, same
// clamping) on 16 lanes with FMAs: GCC vectorises ops_expf to 8 lanes and, in ISO C mode,
// without contracting its multiply-adds. Its accuracy is
// checked through the d = 32 comparisons with the double reference (tests/test_softmax_attn.c).
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-87.3f));
    __m512 kf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, kf);
}

// What kA does to a finished tile of scores before it leaves L1.
enum { EPI_NONE, EPI_MAX, EPI_EXP };

// S[r][j] = alpha sum_c X[r][c] YT[c][j] for r < nr, j < N. YT is packed in column chunks of
// 64: chunk t holds YT[0:32][64t : 64t+64] contiguously (8 KiB, zero padded past N), so a
// chunk stays in L1 while every row tile of the block uses it. Epilogues (with + log_s[j]
// first when log_s is given): EPI_MAX raises st[r] to the row maximum; EPI_EXP replaces the
// scores by exp(S - st[r]) * st2[r] (P from the saved statistics, as softmax_rows_saved).
static inline __attribute__((always_inline)) void kA_tile(float *S, size_t lds, const float *X, size_t ldx,
                                                          const float *Yc, const __mmask16 *m,
                                                          float alpha, const float *ls, int epi, float *st,
                                                          const float *st2, int R) {
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    for (size_t c = 0; c < FD; c++) {
        __m512 y[4];
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) y[v] = _mm512_loadu_ps(Yc + c * CHUNK + 16 * v);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r >= R) break;
            __m512 x = _mm512_set1_ps(X[r * ldx + c]);
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(x, y[v], acc[r][v]);
        }
    }
    __m512 a = _mm512_set1_ps(alpha), l[4];
    #pragma GCC unroll 4
    for (int v = 0; v < 4; v++) l[v] = ls ? _mm512_maskz_loadu_ps(m[v], ls + 16 * v) : _mm512_setzero_ps();
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        if (r >= R) break;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        __m512 mr = epi == EPI_EXP ? _mm512_set1_ps(st[r]) : mx, iv = epi == EPI_EXP ? _mm512_set1_ps(st2[r]) : mx;
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512 o = _mm512_mul_ps(a, acc[r][v]);
            if (ls) o = _mm512_add_ps(o, l[v]);
            if (epi == EPI_EXP) o = _mm512_mul_ps(exp512(_mm512_sub_ps(o, mr)), iv);
            _mm512_mask_storeu_ps(S + r * lds + 16 * v, m[v], o);
            if (epi == EPI_MAX) mx = _mm512_mask_max_ps(mx, m[v], mx, o);
        }
        if (epi == EPI_MAX) {
            float t = _mm512_reduce_max_ps(mx);
            if (t > st[r]) st[r] = t;
        }
    }
}

static void kA(float *S, size_t lds, const float *X, size_t ldx, const float *YT, size_t nr, size_t N,
               float alpha, const float *log_s, int epi, float *st, const float *st2) {
    // X (nr, 32) stride ldx; YT (32, pad_n(N)) in chunks; S (nr, N) stride lds; st, st2 (nr)
    for (size_t j0 = 0; j0 < N; j0 += CHUNK) {
        const float *Yc = YT + j0 * FD, *ls = log_s ? log_s + j0 : NULL;
        __mmask16 m[4];
        for (int v = 0; v < 4; v++) m[v] = j0 + 16 * (size_t)v < N ? tail_mask(N - j0 - 16 * (size_t)v) : 0;
        size_t r = 0;
        for (; r + 4 <= nr; r += 4)
            kA_tile(S + r * lds + j0, lds, X + r * ldx, ldx, Yc, m, alpha, ls, epi, st + r, st2 + r, 4);
        for (; r < nr; r++)
            kA_tile(S + r * lds + j0, lds, X + r * ldx, ldx, Yc, m, alpha, ls, epi, st + r, st2 + r, 1);
    }
}

// C[r][0:32] (= or +=) alpha rs[r] sum_j P[r][j] Y[j][0:32] (rs NULL: 1); P (nr, N) stride ldp,
// Y (N, 32) stride ldy, nr <= ROW_BLOCK. j runs in chunks of KB_J rows of Y (16 KiB, stays in
// L1 for all row tiles); partial sums wait in acc_buf between chunks, so every sum still runs
// over j in order.
#define KB_J 128
static inline __attribute__((always_inline)) void kB_tile(float *accb, const float *P, size_t ldp,
                                                          const float *Y, size_t ldy, size_t j0, size_t j1,
                                                          int R) {
    __m512 acc[8][2];
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if (r >= R) break;
        acc[r][0] = _mm512_load_ps(accb + r * FD);
        acc[r][1] = _mm512_load_ps(accb + r * FD + 16);
    }
    for (size_t j = j0; j < j1; j++) {
        __m512 y0 = _mm512_loadu_ps(Y + j * ldy), y1 = _mm512_loadu_ps(Y + j * ldy + 16);
        #pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (r >= R) break;
            __m512 p = _mm512_set1_ps(P[r * ldp + j]);
            acc[r][0] = _mm512_fmadd_ps(p, y0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(p, y1, acc[r][1]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if (r >= R) break;
        _mm512_store_ps(accb + r * FD, acc[r][0]);
        _mm512_store_ps(accb + r * FD + 16, acc[r][1]);
    }
}

static void kB(float *C, size_t ldc, const float *P, size_t ldp, const float *Y, size_t ldy, size_t nr,
               size_t N, float alpha, const float *rs, int accumulate) {
    // P (nr, N) stride ldp; Y (N, 32) stride ldy; C (nr, 32) stride ldc; nr <= ROW_BLOCK
    _Alignas(64) float accb[ROW_BLOCK * FD];
    memset(accb, 0, nr * FD * sizeof(float));
    for (size_t j0 = 0; j0 < N; j0 += KB_J) {
        size_t j1 = N - j0 < KB_J ? N : j0 + KB_J, r = 0;
        for (; r + 8 <= nr; r += 8) kB_tile(accb + r * FD, P + r * ldp, ldp, Y, ldy, j0, j1, 8);
        for (; r < nr; r++) kB_tile(accb + r * FD, P + r * ldp, ldp, Y, ldy, j0, j1, 1);
    }
    for (size_t r = 0; r < nr; r++) {
        float s = alpha * (rs ? rs[r] : 1.0f), *c = C + r * ldc;
        for (size_t t = 0; t < FD; t++) c[t] = (accumulate ? c[t] : 0.0f) + s * accb[r * FD + t];
    }
}

// CT[c][j] += alpha sum_{r < nr} X[r][c] P[r][j] for c < 32, j < N: the transpose of P^T X,
// so that P is read along its rows. CT (32, N) stride ldct; P (nr, N) stride ldp; X (nr, 32)
// stride ldx. Per tile of 4 c x 64 j, the block's sum over r is formed in registers and then
// added (scaled) to CT, so each CT element is a sum over blocks in block order.
static inline __attribute__((always_inline)) void kC_tile(float *CT, size_t ldct, const float *P, size_t ldp,
                                                          const float *X, size_t ldx, size_t nr,
                                                          const __mmask16 *m, float alpha) {
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) acc[c][v] = _mm512_setzero_ps();
    for (size_t r = 0; r < nr; r++) {
        __m512 p[4];
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) p[v] = _mm512_maskz_loadu_ps(m[v], P + r * ldp + 16 * v);
        #pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512 x = _mm512_set1_ps(X[r * ldx + c]);
            #pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[c][v] = _mm512_fmadd_ps(x, p[v], acc[c][v]);
        }
    }
    __m512 a = _mm512_set1_ps(alpha);
    #pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        #pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            float *o = CT + c * ldct + 16 * v;
            _mm512_mask_storeu_ps(o, m[v], _mm512_fmadd_ps(a, acc[c][v], _mm512_maskz_loadu_ps(m[v], o)));
        }
}

static void kC(float *CT, size_t ldct, const float *P, size_t ldp, const float *X, size_t ldx, size_t nr,
               size_t N, float alpha) {
    // P (nr, N) stride ldp; X (nr, 32) stride ldx; CT (32, N) stride ldct, accumulated
    for (size_t j0 = 0; j0 < N; j0 += CHUNK) {
        __mmask16 m[4];
        for (int v = 0; v < 4; v++) m[v] = j0 + 16 * (size_t)v < N ? tail_mask(N - j0 - 16 * (size_t)v) : 0;
        for (size_t c0 = 0; c0 < FD; c0 += 4) kC_tile(CT + c0 * ldct + j0, ldct, P + j0, ldp, X + c0, ldx, nr, m, alpha);
    }
}

// In place: dS = P * (dP - rowsum(P * dP)) for nr rows (dS holds dP on entry); the dot runs
// in 16 lane sums over j, then across lanes in a fixed order.
static inline void ds_row(float *dS, const float *P, size_t lds, size_t i, size_t N) {
    const float *p = P + i * lds;
    float *g = dS + i * lds;
    __m512 acc = _mm512_setzero_ps();
    for (size_t j = 0; j < N; j += 16) {
        __mmask16 k = tail_mask(N - j);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + j), _mm512_maskz_loadu_ps(k, g + j), acc);
    }
    __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
    for (size_t j = 0; j < N; j += 16) {
        __mmask16 k = tail_mask(N - j);
        __m512 gv = _mm512_maskz_loadu_ps(k, g + j);
        _mm512_mask_storeu_ps(g + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + j), _mm512_sub_ps(gv, dot)));
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
        __m512 m = _mm512_set1_ps(mx[i]), sum = _mm512_setzero_ps();
        for (size_t j = 0; j < N; j += 16) {
            __mmask16 k = tail_mask(N - j);
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + j), m));
            _mm512_mask_storeu_ps(r + j, k, e);
            sum = _mm512_mask_add_ps(sum, k, sum, e);
        }
        inv[i] = 1.0f / _mm512_reduce_add_ps(sum);
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

const AttnFusedKernels attn_fused_avx512 = {forward_block, backward_block};
