// Which instruction-set kernels run (issue 12): the library is built for a portable x86-64
// baseline, and the hand-written kernels for wider vector units live in their own translation
// units compiled with per-file flags (core/attn_softmax_avx512.c, core/attn_softmax_avx2.c).
// One kernel set is chosen once, from the CPU's features, before any of them runs:
//   avx512  AVX-512F + AVX-512DQ (+ AVX2, FMA)   16-wide fused softmax kernels
//   avx2    AVX2 + FMA                            8-wide fused softmax kernels
//   plain   baseline code only                    CBLAS sgemm path, the oracle
// The environment variable MAELRE_KERNELS=avx512|avx2|plain forces a set; a set the CPU lacks
// (or an unknown name) is refused. Default: the widest set the CPU supports.
#ifndef MAELRE_KERNELS_H
#define MAELRE_KERNELS_H
#include <stddef.h>

typedef enum { KERNELS_PLAIN = 0, KERNELS_AVX2 = 1, KERNELS_AVX512 = 2, KERNELS_COUNT } KernelSet;

const char *kernels_name(KernelSet k);   // "plain", "avx2", "avx512"
// Bit (1 << k) for every set this CPU can run (KERNELS_PLAIN always).
unsigned kernels_cpu_mask(void);
// The pure decision: request (NULL or "" = the widest set in cpu_mask; else a set's name) against
// the sets in cpu_mask. MB_OK with *out, or MB_ERR_USAGE with a reason naming MAELRE_KERNELS.
int kernels_choose(const char *request, unsigned cpu_mask, KernelSet *out, char *err, size_t errlen);
// Chooses from MAELRE_KERNELS and this CPU and makes the choice active. Call once at startup,
// before threads (the CLI does, and exits 2 on failure). MB_OK or MB_ERR_USAGE with a reason.
int kernels_init(char *err, size_t errlen);
// The active set. If kernels_init was not called, the first call makes the same choice; a
// refused MAELRE_KERNELS then prints the reason to stderr and exits with status 2 (MB_ERR_USAGE),
// since no kernel may run on a CPU that lacks its instructions.
KernelSet kernels_active(void);
// Tests: switch to set k (single-threaded, between calls). MB_OK, or MB_ERR_USAGE when the CPU
// lacks it (nothing changes).
int kernels_force(KernelSet k, char *err, size_t errlen);

#endif
