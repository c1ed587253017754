// Counter-based dropout masks (core/dropout.h).
#include "core/dropout.h"
#include "core/flops.h"

#define G 0x9e3779b97f4a7c15ull
#define PAR_MIN 32768   // elements below which a site runs on one thread

uint64_t dropout_base(uint64_t seed, uint64_t step, uint64_t sample, uint32_t layer, uint32_t site) {
    uint64_t z = dropout_mix(seed + G);
    z = dropout_mix(z + step);
    z = dropout_mix(z + sample);
    return dropout_mix(z + ((uint64_t)layer << 8 | site));
}

uint32_t dropout_threshold(float p) {
    if (!(p > 0.0f)) return 0;
    double t = (double)p * 65536.0;
    return t >= 65536.0 ? 65536u : (uint32_t)t;
}

void dropout_apply(float *y, const float *x, const size_t *o, size_t n, size_t W, const DropKey *k,
                   uint32_t layer, uint32_t site) {
    uint32_t thr = dropout_threshold(k->p);
    float scale = 1.0f / (1.0f - k->p);
    for (size_t i = 0; i < n; i++) {
        uint64_t base = dropout_base(k->seed, k->step, k->index ? k->index[i] : i, layer, site);
        size_t cnt = (o[i + 1] - o[i]) * W, groups = (cnt + 3) / 4;
        const float *xi = x + o[i] * W;
        float *yi = y + o[i] * W;
        // each element's mask is a function of its index alone: any schedule gives the same bits
        #pragma omp parallel for schedule(static) if (cnt >= PAR_MIN)
        for (size_t j = 0; j < groups; j++) {
            uint64_t h = dropout_mix(base + (j + 1) * G);
            size_t e0 = 4 * j, e1 = e0 + 4 < cnt ? e0 + 4 : cnt;
            for (size_t e = e0; e < e1; e++, h >>= 16)
                yi[e] = (h & 0xffffu) >= thr ? xi[e] * scale : 0.0f;
        }
    }
    flops_elem((double)o[n] * (double)W);
}
