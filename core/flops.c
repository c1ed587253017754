#include "core/flops.h"

// Thread-local: a thread that installs a counter counts only its own ops, so a parallel
// region can give each worker a private counter and sum them in a fixed order afterwards.
static _Thread_local FlopCounter *g_counter;

void flops_install(FlopCounter *c) { g_counter = c; }
FlopCounter *flops_active(void) { return g_counter; }

void flops_matmul(size_t m, size_t n, size_t k) {
    if (!g_counter) return;
    double macs = (double)m * (double)n * (double)k;
    g_counter->macs += macs;
    g_counter->flops += 2.0 * macs;
}

void flops_elem(double n) {
    if (g_counter) g_counter->flops += n;
}
