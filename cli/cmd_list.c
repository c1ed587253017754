// `maelre-bench list`: the tasks (modality, classes, max length, data present?) and the methods.
#include <stdio.h>
#include <string.h>
#include "cli/commands.h"
#include "core/model.h"
#include "core/status.h"
#include "tasks/runner.h"
#include "tasks/task.h"

int cmd_list(int argc, char **argv) {
    const char *root_flag = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: maelre-bench list [--data-root DIR]\n\nLists the tasks (modality, classes, max length, "
                   "whether the data is under the data root) and the methods.\n");
            return MB_OK;
        }
        if (!strcmp(argv[i], "--data-root") && i + 1 < argc) { root_flag = argv[++i]; continue; }
        fprintf(stderr, "maelre-bench: list: unknown option '%s' (see `maelre-bench list --help`)\n", argv[i]);
        return MB_ERR_USAGE;
    }
    const char *root = runner_data_root(root_flag);
    char err[2048];
    char **names;
    size_t n;
    int rc = task_names(&names, &n, root, err, sizeof err);
    if (rc) { fprintf(stderr, "maelre-bench: %s\n", err); return rc; }
    printf("tasks (data root: %s; task files: %s)\n", root, tasks_dir());
    printf("  %-20s %-12s %7s %8s  %-7s %s\n", "task", "modality", "classes", "max_len", "data", "description");
    int any_ts = 0;
    for (size_t i = 0; i < n; i++) {
        Task t;
        if (task_load(&t, names[i], NULL, root, err, sizeof err)) {
            printf("  %-20s (broken task file: %s)\n", names[i], err);
            task_free(&t);
            continue;
        }
        any_ts |= !strncmp(names[i], "ts-", 3);
        int present = task_data_present(&t, root);
        int generated = !strncmp(t.data.source, "listops", 7) || !strcmp(t.data.source, "pathfinder");
        size_t classes = t.classes, max_len = t.data.max_len;
        if (present && (!classes || !max_len)) {
            // ts-<name>: classes and series length come from the files (small: load both splits).
            size_t longest = 0;
            for (int sp = 0; sp < 2; sp++) {
                SeqSet s;
                if (runner_load_split(&t, root, sp ? SPLIT_TEST : SPLIT_TRAIN, 0, 0, &s, err, sizeof err) != MB_OK) continue;
                if (!classes) classes = s.n_classes;
                for (size_t k = 0; k < s.n; k++) if (s.items[k].len > longest) longest = s.items[k].len;
                seqset_free(&s);
            }
            if (!max_len) max_len = longest;
        }
        char cl[24] = "?", ml[24] = "?";
        if (classes) snprintf(cl, sizeof cl, "%zu", classes);
        if (max_len) snprintf(ml, sizeof ml, "%zu", max_len);
        printf("  %-20s %-12s %7s %8s  %-7s %s\n", t.name, t.modality, cl, ml,
               present ? "yes" : generated ? "gen" : "missing", t.description);
        task_free(&t);
    }
    if (!any_ts)
        printf("  %-20s %-12s %7s %8s  %-7s %s\n", "ts-<name>", "time-series", "file", "series", "missing",
               "any UCR/UEA dataset folder under <root>/ucr/");
    printf("  (data: yes = present; gen = generated on first `run`; missing = see `run` for where to get it)\n\n");
    printf("methods (same D, H, M, depth and head for all)\n");
    for (int m = 0; m < METHOD_COUNT; m++) printf("  %-13s %s\n", method_name((Method)m), method_description((Method)m));
    task_names_free(names, n);
    return MB_OK;
}
