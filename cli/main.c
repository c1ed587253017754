// maelre-bench: dispatches to one subcommand. Exit codes are documented in README.md
// and core/status.h: 0 ok, 1 internal, 2 usage, 3 bad data, 4 I/O, 5 memory, 130 interrupted.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/commands.h"
#include "core/kernels.h"
#include "core/status.h"

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
    // OpenMP regions (row ops, softmax) alternate with multi-threaded OpenBLAS calls; libgomp's
    // default spin-waiting then keeps both thread pools busy on the same cores (measured on the
    // 2-core box: batch-1 MAELRE training 7x, vanilla 6x slower with 2 threads than with 1).
    // Passive waiting must be set before libgomp initialises, i.e. before this process started:
    // re-exec once with it unless the user chose a policy. On failure, carry on as we are.
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0)
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
