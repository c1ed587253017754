// Status codes shared by library code and the CLI. Library functions return one
// of these and fill a caller-provided reason string (char *err, size_t errlen);
// they never print and never exit. The CLI uses the same numbers as exit codes.
#ifndef MAELRE_STATUS_H
#define MAELRE_STATUS_H
#include <stddef.h>

enum {
    MB_OK = 0,
    MB_ERR_INTERNAL = 1,   // a bug or an unexpected system failure
    MB_ERR_USAGE = 2,      // bad command line, config or argument
    MB_ERR_DATA = 3,       // malformed or missing input data (file and position in the reason)
    MB_ERR_IO = 4,         // cannot read/write a file the user named (output dir, checkpoint)
    MB_ERR_NOMEM = 5,      // allocation failed / over the memory limit
    MB_ERR_INTERRUPTED = 130,  // stopped by SIGINT; finished work is kept
};

// snprintf into err when err is non-NULL; returns code, so `return mb_fail(err, n, MB_ERR_DATA, "...")`.
int mb_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
