// Allocator accounting, RNG determinism and FLOP counting: the plumbing every metric rests on.
#include <criterion/criterion.h>
#include <stdint.h>
#include "core/flops.h"
#include "core/mem.h"
#include "core/rng.h"

Test(mem, tracks_current_and_peak) {
    size_t base = mem_current();
    mem_reset_peak();
    void *a = mem_alloc(1000), *b = mem_alloc(3000);
    cr_assert(a && b);
    cr_assert_eq(((uintptr_t)a) % 64, 0);
    cr_assert_eq(((uintptr_t)b) % 64, 0);
    cr_assert_eq(mem_current() - base, 4000);
    mem_free(a);
    cr_assert_eq(mem_current() - base, 3000);
    cr_assert_eq(mem_peak() - base, 4000);
    mem_free(b);
    cr_assert_eq(mem_current(), base);
    mem_reset_peak();
    cr_assert_eq(mem_peak(), base);
}

Test(rng, deterministic_and_in_range) {
    uint64_t s1 = 42, s2 = 42, s3 = 43;
    for (int i = 0; i < 100; i++) cr_assert_eq(rng_next(&s1), rng_next(&s2));
    cr_assert_neq(rng_next(&s1), rng_next(&s3));
    double sum = 0, sq = 0;
    uint64_t s = 7;
    for (int i = 0; i < 20000; i++) {
        float u = rng_uniform(&s);
        cr_assert(u >= 0.0f && u < 1.0f);
        float z = rng_normal(&s);
        sum += z; sq += (double)z * z;
    }
    cr_assert_float_eq(sum / 20000, 0.0, 0.05);
    cr_assert_float_eq(sq / 20000, 1.0, 0.05);
    cr_assert_neq(rng_derive(1, 0), rng_derive(1, 1));
}

Test(flops, counts_only_when_installed) {
    FlopCounter c = {0};
    flops_matmul(3, 4, 5);  // not installed: ignored
    flops_install(&c);
    flops_matmul(3, 4, 5);
    flops_elem(7);
    flops_install(NULL);
    cr_assert_float_eq(c.macs, 60.0, 1e-9);
    cr_assert_float_eq(c.flops, 127.0, 1e-9);
}
