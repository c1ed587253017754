// The project's own allocator: 64-byte aligned blocks with byte accounting.
// Every buffer the model, optimizer and runner hold goes through it, so that
// mem_peak() is SPEC §6's peak_mem_bytes (parameters, gradients, optimizer
// state, activations, workspace). Thread-safe counters.
#ifndef MAELRE_MEM_H
#define MAELRE_MEM_H
#include <stddef.h>

void *mem_alloc(size_t bytes);            // zeroed, 64-byte aligned; NULL on failure
void mem_free(void *p);                   // NULL is fine
size_t mem_current(void);                 // bytes held now
size_t mem_peak(void);                    // high-water mark since last reset
void mem_reset_peak(void);                // peak := current

#endif
