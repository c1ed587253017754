#include "core/mem.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// A 64-byte header in front of each block remembers its size, so mem_free
// can account without a lookup table (and keeps the payload aligned).
#define HEADER 64

static _Atomic size_t g_current;
static _Atomic size_t g_peak;

void *mem_alloc(size_t bytes) {
    if (bytes > (size_t)-1 - 2 * HEADER) return NULL;
    size_t total = (bytes + HEADER + 63) & ~(size_t)63;
    unsigned char *raw = aligned_alloc(64, total);
    if (!raw) return NULL;
    memset(raw, 0, total);
    *(size_t *)raw = bytes;
    size_t now = atomic_fetch_add(&g_current, bytes) + bytes;
    size_t peak = atomic_load(&g_peak);
    while (now > peak && !atomic_compare_exchange_weak(&g_peak, &peak, now)) {}
    return raw + HEADER;
}

void mem_free(void *p) {
    if (!p) return;
    unsigned char *raw = (unsigned char *)p - HEADER;
    atomic_fetch_sub(&g_current, *(size_t *)raw);
    free(raw);
}

size_t mem_current(void) { return atomic_load(&g_current); }
size_t mem_peak(void) { return atomic_load(&g_peak); }
void mem_reset_peak(void) { atomic_store(&g_peak, atomic_load(&g_current)); }
