// PLACEHOLDER until its owner lands it: refuses with a clear message rather than pretending.
#include <stdio.h>
#include "cli/commands.h"
#include "core/status.h"

int cmd_data(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "maelre-bench: 'data' is not built yet\n");
    return MB_ERR_INTERNAL;
}
