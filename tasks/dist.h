// The ranks of an MPI job (SPEC §12) behind one small interface, so that no other file needs an
// #ifdef. Built with MPI (`make`, -DMAELRE_MPI, Open MPI) MPI is initialised only when a launcher
// started this process (mpirun/mpiexec, or srun with PMI/PMIx: OMPI_COMM_WORLD_SIZE, PMIX_RANK,
// PMI_RANK or PMI_SIZE in the environment; MAELRE_MPI=0 refuses, MAELRE_MPI=1 forces a singleton
// init). A plain `maelre-bench ...` is therefore one process with no MPI at all, also as root.
// Built without MPI (`make MPI=0`) every call describes a single rank and the messaging calls
// fail with MB_ERR_INTERNAL (they are never reached with one rank).
// Messages are small arrays of 64-bit integers, point to point, blocking except dist_probe.
// Library code: returns core/status.h codes with a reason, never prints.   -- tasks/dist.c
#ifndef MAELRE_DIST_H
#define MAELRE_DIST_H
#include <stddef.h>
#include <stdint.h>

// Initialises MPI when launched as described above (call once, early). MB_OK also when MPI is
// not used. Safe to call twice (the second call does nothing).
int dist_init(int *argc, char ***argv, char *err, size_t errlen);
int dist_active(void);        // 1 when MPI was initialised by dist_init
int dist_rank(void);          // 0 when not active
int dist_size(void);          // 1 when not active
int dist_local_size(void);    // ranks on this node (MPI_COMM_TYPE_SHARED); 1 when not active
const char *dist_backend(void);   // "Open MPI v4.1.4 ..." (first line), "MPI off (launcher not detected)" or "built without MPI"

// Sends n values to rank dest with tag; receives n values from src (-1 = any rank) with tag,
// *from = the sender (may be NULL). dist_probe: 1 when a message with tag is waiting (from any
// rank; *from = its sender), 0 when not, negative on error.
int dist_send_i64(int dest, int tag, const int64_t *v, int n);
int dist_recv_i64(int src, int tag, int64_t *v, int n, int *from);
int dist_probe(int tag, int *from);
void dist_barrier(void);

// Collectives over all ranks, in place (data-parallel training, SPEC §12). With one rank (not
// active, or built without MPI) they leave v as it is and return MB_OK; MB_ERR_INTERNAL when MPI
// fails. dist_sum_f32 is a reduction to rank 0 followed by a broadcast, so every rank holds the
// bit-identical sum (MPI_Allreduce does not promise that for floats), which keeps the weights
// of the ranks identical after the same AdamW step.
typedef enum { DIST_SUM, DIST_MIN, DIST_MAX } DistOp;
int dist_allreduce_f64(double *v, int n, DistOp op);
int dist_allreduce_i64(int64_t *v, int n, DistOp op);
int dist_allreduce_i32(int32_t *v, size_t n, DistOp op);
int dist_sum_f32(float *v, size_t n);

void dist_finalize(void);        // MPI_Finalize when active (idempotent)
void dist_abort(int code);       // MPI_Abort when active, else nothing

// 1 when a launcher's variables say this process is an MPI rank (see above).
int dist_launched(void);
// 1 when built with MPI (`make`), 0 for `make MPI=0`. Such a build started by a launcher with
// more than one rank refuses in dist_init (MB_ERR_USAGE): K copies would each run everything.
int dist_built_with_mpi(void);
// Removes the launcher's variables (OMPI_*, PMIX_*, PMI_*) from this process's environment, for
// a child that must start as a plain process (e.g. a sweep job) rather than as a copy of a rank.
void dist_clear_launcher_env(void);

#endif
