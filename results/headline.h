// One sentence per task saying what a report's table shows, computed from its summaries: which
// method is most accurate, by how much against the majority class (in standard errors), and
// where each other method stands. `report` prints it after writing report.md, so that a run
// ends with its outcome in words (README: `make run`).          -- results/headline.c
#ifndef MAELRE_HEADLINE_H
#define MAELRE_HEADLINE_H
#include <stddef.h>
#include "results/table.h"

// Writes the sentences (one line per task, each ending in '\n') into buf; returns MB_OK, or
// an error code of core/status.h with a reason in err (a table without runs gives an empty buf).
int report_headline(const Table *runs, char *buf, size_t len, char *err, size_t errlen);

#endif
