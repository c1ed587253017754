// Kernel-set selection (core/kernels.h). Only this file asks the CPU what it supports; the ISA
// translation units are entered only through the set chosen here.
#include "core/kernels.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/status.h"

static const char *const NAMES[KERNELS_COUNT] = {"plain", "avx2", "avx512"};
static const char *const NEEDS[KERNELS_COUNT] = {"", "AVX2 and FMA", "AVX-512F and AVX-512DQ (with AVX2 and FMA)"};

static _Atomic int g_active = -1;

const char *kernels_name(KernelSet k) { return (unsigned)k < KERNELS_COUNT ? NAMES[k] : "?"; }

unsigned kernels_cpu_mask(void) {
    unsigned m = 1u << KERNELS_PLAIN;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) m |= 1u << KERNELS_AVX2;
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) m |= 1u << KERNELS_AVX512;
#endif
    return m;
}

int kernels_choose(const char *request, unsigned cpu_mask, KernelSet *out, char *err, size_t errlen) {
    cpu_mask |= 1u << KERNELS_PLAIN;
    if (!request || !*request) {
        int k = KERNELS_COUNT - 1;
        while (!(cpu_mask & (1u << k))) k--;
        *out = (KernelSet)k;
        return MB_OK;
    }
    for (int k = 0; k < KERNELS_COUNT; k++) {
        if (strcmp(request, NAMES[k])) continue;
        if (!(cpu_mask & (1u << k)))
            return mb_fail(err, errlen, MB_ERR_USAGE,
                           "MAELRE_KERNELS=%s: this CPU lacks %s; it can run:%s%s%s", request, NEEDS[k],
                           cpu_mask & (1u << KERNELS_AVX512) ? " avx512" : "",
                           cpu_mask & (1u << KERNELS_AVX2) ? " avx2" : "", " plain");
        *out = (KernelSet)k;
        return MB_OK;
    }
    return mb_fail(err, errlen, MB_ERR_USAGE, "MAELRE_KERNELS=%s: unknown kernel set (avx512, avx2 or plain)",
                   request);
}

int kernels_init(char *err, size_t errlen) {
    KernelSet k;
    int rc = kernels_choose(getenv("MAELRE_KERNELS"), kernels_cpu_mask(), &k, err, errlen);
    if (rc == MB_OK) atomic_store(&g_active, (int)k);
    return rc;
}

KernelSet kernels_active(void) {
    int k = atomic_load(&g_active);
    if (k >= 0) return (KernelSet)k;
    char err[256];
    if (kernels_init(err, sizeof err) != MB_OK) {
        fprintf(stderr, "maelre-bench: %s\n", err);
        exit(MB_ERR_USAGE);
    }
    return (KernelSet)atomic_load(&g_active);
}

int kernels_force(KernelSet k, char *err, size_t errlen) {
    if ((unsigned)k >= KERNELS_COUNT) return mb_fail(err, errlen, MB_ERR_USAGE, "kernel set %d does not exist", (int)k);
    KernelSet got;
    int rc = kernels_choose(NAMES[k], kernels_cpu_mask(), &got, err, errlen);
    if (rc == MB_OK) atomic_store(&g_active, (int)got);
    return rc;
}
