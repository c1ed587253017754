// One knob for OpenMP and OpenBLAS thread counts (--threads). 0 means all cores.
#ifndef MAELRE_THREADS_H
#define MAELRE_THREADS_H
int threads_set(int n);   // returns the count in effect
int threads_get(void);
#endif
