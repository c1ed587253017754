// One knob for OpenMP and OpenBLAS thread counts (--threads). 0 means all cores.
#ifndef MAELRE_THREADS_H
#define MAELRE_THREADS_H
int threads_set(int n);   // returns the count in effect
int threads_get(void);
// Whether the caller runs inside an OpenMP parallel region (0 without OpenMP). Loops that are
// also called from inside the model's per-sample and per-chunk regions test this to take their
// serial form in C: a nested or if(false) region still costs a libgomp call (0.3-0.5 us).
int threads_in_parallel(void);
#endif
