// Ctrl-C in the long-running commands (run, eval, profile): SIGINT sets a flag that the library
// polls between steps, so finished work is kept and the command exits 130 cleanly. SIGTERM (what
// Slurm and other schedulers send at a time limit) is handled the same way.
#include <signal.h>
#include <string.h>
#include "cli/commands.h"

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) { (void)sig; g_stop = 1; }

volatile sig_atomic_t *cli_stop_on_sigint(struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old);
    sigaction(SIGTERM, &sa, NULL);
    return &g_stop;
}
