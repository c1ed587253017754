// Masked softmax attention, plain reference (see core/attn_mask_ref.h): the same loops as
// attn_softmax_forward_ref / attn_softmax_backward_ref in core/attn_softmax.c, with the keys a
// row may see given by an explicit mask. Masked keys take no part in the row maximum, the sum
// or the products (not -inf arithmetic: nothing is computed for them).
#include "core/attn_mask_ref.h"
#include <math.h>
#include <stdlib.h>

// Softmax row i of head h over the allowed keys into p (N doubles, 0 where masked).
static void masked_row(double *p, const float *q, const float *k, size_t ld, const float *log_s,
                       const uint8_t *m, size_t N, size_t d, size_t h, size_t i) {
    // q,k (N, ld); m (N) the row's mask; p (N)
    double scale = 1.0 / sqrt((double)d), mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < N; j++) {
        if (!m[j]) continue;
        double s = 0;
        for (size_t c = 0; c < d; c++) s += (double)q[i * ld + h * d + c] * k[j * ld + h * d + c];
        p[j] = s * scale + (log_s ? log_s[j] : 0.0);
        if (p[j] > mx) mx = p[j];
    }
    for (size_t j = 0; j < N; j++) {
        p[j] = m[j] ? exp(p[j] - mx) : 0.0;
        sum += p[j];
    }
    for (size_t j = 0; j < N; j++) p[j] /= sum;
}

void attn_masked_forward_ref(float *out, const float *q, const float *k, const float *v, size_t ld,
                             const float *log_s, const uint8_t *mask, size_t mask_head_stride,
                             size_t N, size_t D, size_t H) {
    // q,k,v (N, ld); mask (H or 1, N, N); out (N, D)
    size_t d = D / H;
    double *p = malloc((N ? N : 1) * sizeof(double));
    if (!p) abort();
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < N; i++) {
            masked_row(p, q, k, ld, log_s, mask + h * mask_head_stride + i * N, N, d, h, i);
            for (size_t c = 0; c < d; c++) {
                double o = 0;
                for (size_t j = 0; j < N; j++) o += p[j] * v[j * ld + h * d + c];
                out[i * D + h * d + c] = (float)o;
            }
        }
    free(p);
}

void attn_masked_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, size_t ld, const float *log_s,
                              const uint8_t *mask, size_t mask_head_stride, size_t N, size_t D,
                              size_t H) {
    // dout (N, D); mask (H or 1, N, N); dq,dk,dv (N, ld) accumulate
    size_t d = D / H;
    double scale = 1.0 / sqrt((double)d);
    double *p = malloc((N ? N : 1) * sizeof(double)), *dp = malloc((N ? N : 1) * sizeof(double));
    if (!p || !dp) abort();
    for (size_t h = 0; h < H; h++)
        for (size_t i = 0; i < N; i++) {
            const uint8_t *m = mask + h * mask_head_stride + i * N;
            masked_row(p, q, k, ld, log_s, m, N, d, h, i);
            double dot = 0;
            for (size_t j = 0; j < N; j++) {
                dp[j] = 0;
                if (!m[j]) continue;
                for (size_t c = 0; c < d; c++) dp[j] += (double)dout[i * D + h * d + c] * v[j * ld + h * d + c];
                dot += p[j] * dp[j];
            }
            for (size_t j = 0; j < N; j++) {
                if (!m[j]) continue;
                double ds = p[j] * (dp[j] - dot) * scale;
                for (size_t c = 0; c < d; c++) {
                    dq[i * ld + h * d + c] += (float)(ds * k[j * ld + h * d + c]);
                    dk[j * ld + h * d + c] += (float)(ds * q[i * ld + h * d + c]);
                    dv[j * ld + h * d + c] += (float)(p[j] * dout[i * D + h * d + c]);
                }
            }
        }
    free(p);
    free(dp);
}
