// The two-tower head's combination and ReLU (see core/pair_head.h).
#include "core/pair_head.h"
#include "core/flops.h"

void pair_combine_forward(float *z, const float *e, size_t np, size_t D) {
    for (size_t i = 0; i < np; i++) {
        const float *a = e + 2 * i * D, *b = a + D;
        float *r = z + i * 4 * D;
        for (size_t j = 0; j < D; j++) {
            r[j] = a[j];
            r[D + j] = b[j];
            r[2 * D + j] = a[j] * b[j];
            r[3 * D + j] = a[j] - b[j];
        }
    }
    flops_elem(2.0 * (double)np * D);   // the product and the difference; the copies are free
}

void pair_combine_backward(float *de, const float *dz, const float *e, size_t np, size_t D) {
    for (size_t i = 0; i < np; i++) {
        const float *a = e + 2 * i * D, *b = a + D, *g = dz + i * 4 * D;
        float *da = de + 2 * i * D, *db = da + D;
        for (size_t j = 0; j < D; j++) {
            da[j] += g[j] + g[2 * D + j] * b[j] + g[3 * D + j];
            db[j] += g[D + j] + g[2 * D + j] * a[j] - g[3 * D + j];
        }
    }
    flops_elem(2.0 * 2.0 * (double)np * D);  // two gradient tensors, each as its forward
}

void relu_forward(float *out, const float *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
    flops_elem((double)n);
}

void relu_backward(float *din, const float *dout, const float *out, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
    flops_elem((double)n);
}
