// core/merge_isa.h (the fast merge planner and the merge) for the avx2 kernel set: compiled with
// that set's flags (Makefile), entered only when core/kernels.h chose avx2.
#define MERGE_SUFFIX avx2
#include "core/merge_isa.h"
