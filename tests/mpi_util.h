// Running the CLI binary under test, with or without `mpirun`, for the MPI tests (test_sweep,
// test_data_parallel): one spawn that builds `[mpirun --oversubscribe -n K] BIN ARGS`, sends its
// stdout/stderr to files and sets the environment root needs for Open MPI (CI runs as root), one
// wait, and the check that the binary was built with MPI and mpirun is installed.
#ifndef MAELRE_TEST_MPI_UTIL_H
#define MAELRE_TEST_MPI_UTIL_H
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/file_util.h"

typedef struct {
    const char *bin;      // the CLI binary (test_cli_bin())
    const char *mpirun;   // set by mpi_find_mpirun
    const char *out, *err;   // files receiving stdout / stderr
    int own_group;        // the child leads its own process group (a test signals the group)
} MpiCli;

// Runs `[mpirun --oversubscribe -n ranks] bin ARGS` (ranks 0: no launcher); returns the pid.
static inline pid_t mpi_spawn(const MpiCli *c, int ranks, const char *const *args) {
    const char *argv[64];
    size_t n = 0;
    char nb[16];
    if (ranks > 0) {
        snprintf(nb, sizeof nb, "%d", ranks);
        argv[n++] = c->mpirun;
        argv[n++] = "--oversubscribe";
        argv[n++] = "-n";
        argv[n++] = nb;
    }
    argv[n++] = c->bin;
    for (size_t i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (c->own_group) setpgid(0, 0);
        int o = open(c->out, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);          // CI runs as root
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
        setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
        if (ranks > 0) {
            // Sanitizer builds: Open MPI's own allocations from MPI_Init (in dlopen'ed components,
            // "unknown module") are reported as leaks at exit. Our code is leak-checked by the
            // one-process tests; under mpirun only the leak check is off.
            const char *a = getenv("ASAN_OPTIONS");
            char buf[512];
            snprintf(buf, sizeof buf, "%s%sdetect_leaks=0", a ? a : "", a && *a ? ":" : "");
            setenv("ASAN_OPTIONS", buf, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

// The exit status of pid (fails the test when it died of a signal).
static inline int mpi_wait(pid_t pid) {
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

// `sweep --help` says whether the binary was built with MPI (`make MPI=0` builds without).
static inline int mpi_built_with_mpi(const MpiCli *c) {
    cr_assert_eq(mpi_wait(mpi_spawn(c, 0, (const char *[]){"sweep", "--help", NULL})), 0);
    char *o = slurp(c->out);
    int yes = o && strstr(o, "This binary: built with MPI") != NULL;
    free(o);
    return yes;
}

// 1 and c->mpirun set when the binary has MPI and an mpirun is installed; else 0.
static inline int mpi_find_mpirun(MpiCli *c) {
    if (!mpi_built_with_mpi(c)) return 0;
    static char path[512];
    const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/mpirun", dirs[i]);
        if (access(path, X_OK) == 0) { c->mpirun = path; return 1; }
    }
    return 0;
}

#endif
