// One function per subcommand; each parses its own arguments (argv[0] is the subcommand)
// and returns the process exit code (core/status.h numbers).
#ifndef MAELRE_COMMANDS_H
#define MAELRE_COMMANDS_H
#include <signal.h>
int cmd_run(int argc, char **argv);      // tasks/ runner: train + eval every method, write results
int cmd_list(int argc, char **argv);     // tasks and methods
int cmd_eval(int argc, char **argv);     // evaluate a checkpoint on a task's test split
int cmd_report(int argc, char **argv);   // merge runs into tables and plots
int cmd_profile(int argc, char **argv);  // FLOPs, memory and speed per (method, seq_len)
int cmd_data(int argc, char **argv);     // data listops | data check | data aan-synthetic
int cmd_data_aan_synthetic(int argc, char **argv);   // cli/cmd_data_aan.c
int cmd_sweep(int argc, char **argv);    // tasks x methods x seeds as jobs, over MPI ranks

// Installs the SIGINT handler (the previous action into *old unless NULL) and returns the flag
// it sets, for the library's stop pointers.                               -- cli/sigint.c
volatile sig_atomic_t *cli_stop_on_sigint(struct sigaction *old);
#endif
