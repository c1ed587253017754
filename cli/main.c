// maelre-bench: dispatches to one subcommand. Exit codes are documented in README.md
// and core/status.h: 0 ok, 1 internal, 2 usage, 3 bad data, 4 I/O, 5 memory, 130 interrupted.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cblas.h>
#include "cli/commands.h"
#include "core/kernels.h"
#include "core/status.h"

enum { OPENBLAS_BUILD_OPENMP = 2 };  // openblas_get_parallel(): 0 serial, 1 pthreads, 2 OpenMP

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} Command;

static const Command commands[] = {
    {"run", cmd_run, "train and evaluate methods on a task, write results.{csv,json}"},
    {"list", cmd_list, "list tasks (with data presence) and methods"},
    {"eval", cmd_eval, "evaluate a checkpoint on a task's test split"},
    {"report", cmd_report, "merge run/profile outputs into tables and plots"},
    {"profile", cmd_profile, "FLOPs, peak memory and speed per method and sequence length"},
    {"data", cmd_data, "data listops | pathfinder | aan-synthetic (generate data) | data check (validate a task's data)"},
    {"sweep", cmd_sweep, "tasks x methods x seeds (x --grid) as `run` jobs, over MPI ranks (mpirun/srun)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: maelre-bench <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`maelre-bench <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    // OpenMP waiting. With Debian's OpenMP build of OpenBLAS (the Makefile links it when
    // installed) BLAS calls and our own loops share one libgomp pool, and libgomp's default
    // (spin briefly, then sleep) is fastest: passive waiting puts every one of the many small
    // parallel regions of a step through a futex wake-up (measured 2026-11-30, 2 threads,
    // N = 1024, batch 8: MAELRE training 1.95 -> 1.52 ms/sample, inference 0.85 -> 0.54; at
    // batch 1, 2 threads were slower than 1 with passive waiting, 1.7x faster without).
    // OpenBLAS's pthread build keeps its own pool, whose workers and spinning OpenMP threads
    // fight over the cores (batch-1 vanilla training 131 against 63 ms/step, 2026-11-22), so with
    // that build only we re-exec once with passive waiting, unless the user chose a policy. Must
    // happen before libgomp initialises; on failure carry on.
    if (openblas_get_parallel() != OPENBLAS_BUILD_OPENMP && !getenv("OMP_WAIT_POLICY") &&
        setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
        execv("/proc/self/exe", argv);
    // The kernel set (core/kernels.h), once, before any thread: MAELRE_KERNELS naming a set this
    // CPU lacks is a usage error, not an illegal instruction later.
    char kerr[256];
    if (kernels_init(kerr, sizeof kerr) != MB_OK) {
        fprintf(stderr, "maelre-bench: %s\n", kerr);
        return MB_ERR_USAGE;
    }
    if (argc < 2) { usage(stderr); return MB_ERR_USAGE; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return MB_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "maelre-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return MB_ERR_USAGE;
}
