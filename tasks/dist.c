// MPI ranks or one process (tasks/dist.h).
#include "tasks/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/status.h"

#ifdef MAELRE_MPI
#include <mpi.h>
#endif

extern char **environ;

static int g_active, g_rank, g_size = 1, g_local = 1, g_done;
static char g_backend[160] = "MPI off (launcher not detected)";

static int env_set(const char *k) {
    const char *v = getenv(k);
    return v && *v;
}

int dist_launched(void) {
    return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") || env_set("PMI_SIZE");
}

void dist_clear_launcher_env(void) {
    for (;;) {
        char name[256] = "";
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "OMPI_", 5) && strncmp(*e, "PMIX_", 5) && strncmp(*e, "PMI_", 4)) continue;
            const char *eq = strchr(*e, '=');
            size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
            if (n >= sizeof name) continue;
            memcpy(name, *e, n);
            name[n] = 0;
            break;
        }
        if (!name[0] || unsetenv(name)) return;
    }
}

#ifdef MAELRE_MPI

int dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    if (g_active || g_done) return MB_OK;
    const char *force = getenv("MAELRE_MPI");
    int want = force && *force ? strcmp(force, "0") != 0 : dist_launched();
    if (!want) {
        if (force && !strcmp(force, "0")) snprintf(g_backend, sizeof g_backend, "MPI off (MAELRE_MPI=0)");
        return MB_OK;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS)
        return mb_fail(err, errlen, MB_ERR_INTERNAL, "MPI_Init failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &g_local);
        MPI_Comm_free(&node);
    }
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (MPI_Get_library_version(lib, &n) == MPI_SUCCESS) {
        lib[n < (int)sizeof lib ? n : (int)sizeof lib - 1] = 0;
        char *nl = strpbrk(lib, "\n,");
        if (nl) *nl = 0;
        snprintf(g_backend, sizeof g_backend, "%.150s", lib);
    } else {
        snprintf(g_backend, sizeof g_backend, "MPI");
    }
    g_active = 1;
    return MB_OK;
}

int dist_send_i64(int dest, int tag, const int64_t *v, int n) {
    if (!g_active) return MB_ERR_INTERNAL;
    return MPI_Send(v, n, MPI_INT64_T, dest, tag, MPI_COMM_WORLD) == MPI_SUCCESS ? MB_OK : MB_ERR_INTERNAL;
}

int dist_recv_i64(int src, int tag, int64_t *v, int n, int *from) {
    if (!g_active) return MB_ERR_INTERNAL;
    MPI_Status st;
    if (MPI_Recv(v, n, MPI_INT64_T, src < 0 ? MPI_ANY_SOURCE : src, tag, MPI_COMM_WORLD, &st) != MPI_SUCCESS)
        return MB_ERR_INTERNAL;
    if (from) *from = st.MPI_SOURCE;
    return MB_OK;
}

int dist_probe(int tag, int *from) {
    if (!g_active) return -1;
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) return -1;
    if (flag && from) *from = st.MPI_SOURCE;
    return flag;
}

void dist_barrier(void) {
    if (g_active) MPI_Barrier(MPI_COMM_WORLD);
}

static MPI_Op mpi_op(DistOp op) { return op == DIST_MIN ? MPI_MIN : op == DIST_MAX ? MPI_MAX : MPI_SUM; }

// MPI counts are int: large buffers go in chunks.
static int allreduce_chunks(void *v, size_t n, size_t size, MPI_Datatype t, DistOp op) {
    if (!g_active || g_size == 1) return MB_OK;
    for (size_t at = 0; at < n;) {
        int k = n - at > (size_t)1 << 30 ? 1 << 30 : (int)(n - at);
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)v + at * size, k, t, mpi_op(op), MPI_COMM_WORLD) != MPI_SUCCESS)
            return MB_ERR_INTERNAL;
        at += (size_t)k;
    }
    return MB_OK;
}

int dist_allreduce_f64(double *v, int n, DistOp op) { return allreduce_chunks(v, (size_t)n, sizeof *v, MPI_DOUBLE, op); }
int dist_allreduce_i64(int64_t *v, int n, DistOp op) { return allreduce_chunks(v, (size_t)n, sizeof *v, MPI_INT64_T, op); }
int dist_allreduce_i32(int32_t *v, size_t n, DistOp op) { return allreduce_chunks(v, n, sizeof *v, MPI_INT32_T, op); }

int dist_sum_f32(float *v, size_t n) {
    if (!g_active || g_size == 1) return MB_OK;
    for (size_t at = 0; at < n;) {
        int k = n - at > (size_t)1 << 30 ? 1 << 30 : (int)(n - at);
        void *send = g_rank == 0 ? MPI_IN_PLACE : v + at;
        if (MPI_Reduce(send, v + at, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Bcast(v + at, k, MPI_FLOAT, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return MB_ERR_INTERNAL;
        at += (size_t)k;
    }
    return MB_OK;
}

void dist_finalize(void) {
    if (g_active) MPI_Finalize();
    g_active = 0;
    g_done = 1;
}

void dist_abort(int code) {
    if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
}

int dist_built_with_mpi(void) { return 1; }

#else   // built without MPI: one rank

int dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    (void)argc; (void)argv;
    snprintf(g_backend, sizeof g_backend, "built without MPI");
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n || !*n) n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return mb_fail(err, errlen, MB_ERR_USAGE,
                       "this binary was built without MPI (make MPI=0) but started as one of %d ranks; "
                       "build it with `make` (Open MPI), or start it without mpirun/srun", atoi(n));
    return MB_OK;
}
int dist_built_with_mpi(void) { return 0; }
int dist_send_i64(int dest, int tag, const int64_t *v, int n) { (void)dest; (void)tag; (void)v; (void)n; return MB_ERR_INTERNAL; }
int dist_recv_i64(int src, int tag, int64_t *v, int n, int *from) {
    (void)src; (void)tag; (void)v; (void)n; (void)from;
    return MB_ERR_INTERNAL;
}
int dist_probe(int tag, int *from) { (void)tag; (void)from; return -1; }
void dist_barrier(void) {}
int dist_allreduce_f64(double *v, int n, DistOp op) { (void)v; (void)n; (void)op; return MB_OK; }
int dist_allreduce_i64(int64_t *v, int n, DistOp op) { (void)v; (void)n; (void)op; return MB_OK; }
int dist_allreduce_i32(int32_t *v, size_t n, DistOp op) { (void)v; (void)n; (void)op; return MB_OK; }
int dist_sum_f32(float *v, size_t n) { (void)v; (void)n; return MB_OK; }
void dist_finalize(void) { g_done = 1; }
void dist_abort(int code) { (void)code; }

#endif

int dist_active(void) { return g_active; }
int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local; }
const char *dist_backend(void) { return g_backend; }
