// `maelre-bench report INPUT... --out DIR [--no-plots]`: merges run outputs (results.json or
// results.csv, SPEC §8) and profile outputs (profile.json or profile.csv) into DIR/results.{csv,json},
// DIR/profile.{csv,json}, DIR/report.md and DIR/plots/*.png; with several seeds, mean +- sample
// std over seeds, and per method the paired comparison with vanilla (McNemar, bootstrap) from the
// predictions files beside each run's results; learning curves from its curves files.
// - INPUT is a folder (its results.* and profile.* are read; JSON preferred when both formats are
//   there, because it also holds the full config) or one of those files.
// - Every input is read and checked before anything is written: bad input writes nothing.
// - Same run (task, method, seed) or profile point (method, seq_len, batch, threads) twice: the
//   input named later wins (also within one file: the later row); each replacement is noted on
//   stderr and counted in report.md. A `source` column records where each merged row came from.
// Exit codes: 0 ok (also when gnuplot is missing: a warning, no plots), 1 gnuplot failed (tables
// and report.md still written), 2 usage, 3 bad input (file and line named), 4 I/O, 5 memory.
// Reading, merging, statistics and writing live in results/report.c; this file parses and prints.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/status.h"
#include "results/headline.h"
#include "results/report.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: maelre-bench report INPUT... --out DIR [--no-plots]\n"
            "\n"
            "Merges `run` outputs (results.json/results.csv) and `profile` outputs\n"
            "(profile.json/profile.csv) into DIR: results.csv, results.json, profile.csv,\n"
            "profile.json, report.md (one table per task, one profile table per sequence\n"
            "length) and plots/*.png (gnuplot). INPUT is a folder or one of those files.\n"
            "The same (task, method, seed) or (method, seq_len, batch, threads) twice: the\n"
            "input named later wins. Several seeds of a method: mean +- sample std over\n"
            "seeds. Beside a run's results, predictions/<method>-seed<S>.csv give each\n"
            "method's paired comparison with vanilla of the same seed (McNemar's exact test,\n"
            "paired bootstrap 95%% interval of the accuracy difference), and\n"
            "curves/<method>-seed<S>.csv the learning-curve plots.\n"
            "\n"
            "  --out DIR     output folder (created)\n"
            "  --no-plots    tables and report.md only\n"
            "  env MAELRE_GNUPLOT  gnuplot binary to use (default: gnuplot in PATH)\n"
            "\n"
            "exit: 0 ok (gnuplot missing: warning, no plots), 1 gnuplot failed, 2 usage,\n"
            "      3 bad input data, 4 I/O, 5 memory\n");
}

static int fail(int code, const char *msg) {
    fprintf(stderr, "maelre-bench: %s\n", msg);
    return code;
}

// The reason first (one line), then where to look.
static int usage_error(const char *msg) {
    fprintf(stderr, "maelre-bench: report: %s\n"
                    "usage: maelre-bench report INPUT... --out DIR [--no-plots]  (--help for more)\n", msg);
    return MB_ERR_USAGE;
}

// What the table shows, in one sentence per task (results/headline.h), from the merged results
// report_build just wrote; a failure here only loses the sentence.
static void print_headline(const char *out) {
    char path[4096], err[512], text[8192];
    snprintf(path, sizeof path, "%s/results.json", out);
    Table *t = NULL;
    if (table_read_json(&t, path, err, sizeof err) == MB_OK &&
        report_headline(t, text, sizeof text, err, sizeof err) == MB_OK)
        fputs(text, stdout);
    table_free(t);
}

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    int plots = 1;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    size_t nargs = 0;
    if (!args) return fail(MB_ERR_NOMEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); free(args); return MB_OK; }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) { free(args); return usage_error("--out needs a folder"); }
            out = argv[++i];
        } else if (!strncmp(argv[i], "--out=", 6)) {
            out = argv[i] + 6;
        } else if (!strcmp(argv[i], "--no-plots")) {
            plots = 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown option '%.200s'", argv[i]);
            free(args);
            return usage_error(msg);
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (!out || !*out || !nargs) {
        free(args);
        return usage_error(!nargs ? "no input folders" : "--out DIR is required");
    }
    ReportOptions o = {(const char *const *)args, nargs, out, plots, 0, stderr};
    ReportOutcome res;
    char err[4096] = "";
    int rc = report_build(&o, &res, err, sizeof err);
    if (res.written)
        printf("report: %zu run row%s (%zu task%s, %zu paired comparison%s), %zu profile row%s, "
               "%zu plot%s -> %s/report.md\n",
               res.run_rows, res.run_rows == 1 ? "" : "s", res.tasks, res.tasks == 1 ? "" : "s",
               res.comparisons, res.comparisons == 1 ? "" : "s", res.profile_rows,
               res.profile_rows == 1 ? "" : "s", res.plots, res.plots == 1 ? "" : "s", out);
    if (!rc && res.run_rows) print_headline(out);
    if (rc) fprintf(stderr, "maelre-bench: %s\n", err);
    free(args);
    return rc;
}
