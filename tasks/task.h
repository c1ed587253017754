// Task definitions (SPEC §7): tasks/<name>.json -> data source (DataSpec), model shape and
// method knobs (ModelConfig), optimizer (AdamWConfig) and two budgets ("quick", "full").
// Parsing is strict: an unknown field or a wrong type is MB_ERR_USAGE naming the file and the
// field ("<file>: model.dim: expected a positive integer"). A --config FILE is applied over the
// task file field by field with the same checks; the merged JSON is kept for the results.
// Library code: returns core/status.h codes with a reason, never prints.   -- tasks/task.c
#ifndef MAELRE_TASK_H
#define MAELRE_TASK_H
#include <stddef.h>
#include <cjson/cJSON.h>
#include "core/model.h"
#include "core/optim.h"
#include "loaders/dataset.h"

typedef struct {
    size_t steps;         // optimizer steps per method (used when time_budget == 0 and epochs == 0)
    double epochs;        // > 0: passes over the training split instead of steps (small data sets)
    size_t patience;      // early stopping: evaluations without improvement on validation (0 = off)
    double time_budget;   // seconds of training per method (0 = train for `steps`)
    size_t batch;         // samples per step (training and inference)
    size_t train_limit;   // DataSpec.limit for the train split (0 = all)
    size_t test_limit;    // DataSpec.limit for the test split (0 = all)
    char note[512];       // what the budget is for and what it costs on the reference machine
} Budget;

typedef struct {
    char name[64];          // task name as resolved, e.g. "lra-listops", "ts-gunpoint"
    char file[1024];        // the task file it came from (+ " + <config>" when overridden)
    char modality[32];      // "text", "image", "time-series", "audio"
    char description[256];
    char download[512];     // where users get the data (a missing dataset's message)
    size_t classes;         // expected class count (0 = whatever the data says)
    DataSpec data;          // data.max_len == 0: the model's max_len is the longest loaded sample
    ModelConfig model;      // shape + method knobs; input/method fields are filled per run
    int maelre_keep_auto;   // ts template: keep chosen per dataset so N < D before the last stage
    AdamWConfig optim;      // warmup_steps/total_steps filled per run from warmup_frac
    float warmup_frac;      // warm-up length as a fraction of the run's steps
    Budget quick, full;
    cJSON *json;            // the task file with --config merged over it (owned)
} Task;

// Folder holding the shipped task files: $MAELRE_TASKS, else the first "tasks/" with ts.json found
// walking up from the executable's folder, else "./tasks".
const char *tasks_dir(void);

// Loads task `name` ("lra-listops", "ts-<dataset>", or a path to a .json file) and applies
// config_file over it (NULL = none). data_root resolves ts-<name> to <root>/ucr/<Folder>
// case-insensitively. MB_OK, MB_ERR_USAGE (unknown task, bad field), MB_ERR_IO (unreadable file).
int task_load(Task *t, const char *name, const char *config_file, const char *data_root,
              char *err, size_t errlen);
// Parses one JSON document over *t (fields present override, others stay). `file` names it in
// errors. Does not check cross-field consistency: task_validate does.
int task_apply_json(Task *t, const cJSON *json, const char *file, char *err, size_t errlen);
int task_validate(const Task *t, char *err, size_t errlen);
void task_defaults(Task *t);   // SPEC §5 model, lr 5e-4 AdamW, no data
void task_free(Task *t);

// The model one method runs on this task, given what the data turned out to be. Applies the
// per-dataset rules: linformer k capped at max_len; maelre_keep_auto keeps.
ModelConfig task_model_config(const Task *t, Method method, size_t vocab, size_t feat_dim,
                              size_t max_len, size_t classes);

// 1 when the task's data folder exists under data_root (cheap: no loading).
int task_data_present(const Task *t, const char *data_root);
// Full path of the task's data folder.
void task_data_path(const Task *t, const char *data_root, char *buf, size_t n);

// Names of the shipped tasks (tasks/*.json except the ts template), sorted; ts-<folder> for each
// folder under <data_root>/ucr. Caller frees each name and the array.
int task_names(char ***names, size_t *n, const char *data_root, char *err, size_t errlen);
void task_names_free(char **names, size_t n);

// Deep merge: objects merge key by key, anything else in `over` replaces. Returns a new tree.
cJSON *json_merge(const cJSON *base, const cJSON *over);
// Reads and parses a JSON file; parse errors give "<file>:<line>: <what>" (MB_ERR_USAGE).
int json_read_file(cJSON **out, const char *path, char *err, size_t errlen);

#endif
