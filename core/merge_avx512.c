// core/merge_isa.h (the fast merge planner and the merge) for the avx512 kernel set: compiled with
// that set's flags (Makefile), entered only when core/kernels.h chose avx512.
#define MERGE_SUFFIX avx512
#include "core/merge_isa.h"
