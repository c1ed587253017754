// Speed, FLOPs and memory of one (method, sequence length) on random tokens (issues 2 and 3).
// The model is SPEC §5's default (model_config_default: D=64, H=2, M=128, 4 blocks) over
// discrete ids of a given vocabulary with max_len = the sequence length. For each pair it
// measures one inference pass and, when asked, one training step (zero grads, forward,
// cross-entropy, backward, AdamW with clipping):
//  - FLOPs/MACs: a core/flops.h counter installed around one forward (inference) and one
//    forward + loss + backward (training; the optimizer's element-wise update is not counted),
//    divided by the batch size.
//  - peak memory: mem_reset_peak()/mem_peak() around model (and optimizer) creation plus all
//    passes, minus what was held before: parameters, whatever buffers the model allocates at
//    creation (gradients included if it allocates them eagerly), AdamW moments (training),
//    activations, attention/merge workspace, and the batch's own ids/offsets/logits buffers.
//  - time: one warm-up pass excluded, then passes repeated until both min_time seconds and
//    min_reps repetitions on CLOCK_MONOTONIC; median (and min/max) per sample.
// Pairs whose computed need (model_bytes_needed * batch) exceeds mem_limit are not run.
// Library code: returns core/status.h codes with a reason, never prints.
#ifndef MAELRE_PROFILE_H
#define MAELRE_PROFILE_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "core/kernels.h"
#include "core/model.h"
#include "results/table.h"

typedef struct {
    size_t vocab;          // random ids in [0, vocab); 257 (bytes + 1)
    size_t classes;        // 2
    size_t batch;          // samples per pass, all of the same length
    int train;             // also measure a training step
    int threads;           // the count in effect (recorded only; the caller sets it)
    size_t mem_limit;      // bytes; 0 = no limit
    uint64_t seed;
    double min_time;       // seconds of timed repetitions per measurement (1.0)
    size_t min_reps;       // and at least this many timed repetitions (3)
    volatile sig_atomic_t *stop;   // set (e.g. by SIGINT) to stop between repetitions; may be NULL
    void (*progress)(void *ctx, const char *msg);   // optional progress lines (the CLI prints them)
    void *progress_ctx;
    SoftmaxImpl softmax_impl;   // how softmax blocks are computed (tiled; dense = textbook N x N)
    // Optional: adjust the default config before use (e.g. MAELRE stages); may be NULL.
    void (*configure)(void *ctx, ModelConfig *cfg);
    void *configure_ctx;
} ProfileOptions;

typedef enum {
    PROFILE_OK = 0,          // everything asked for ran
    PROFILE_SKIPPED,         // over mem_limit: nothing ran
    PROFILE_TRAIN_SKIPPED,   // inference ran, the training step is over mem_limit
    PROFILE_NOMEM,           // an allocation failed while running
} ProfileStatus;

typedef struct {
    Method method;
    SoftmaxImpl softmax_impl;
    size_t seq_len, batch;
    int threads, trained;       // trained: a training step was measured
    size_t params;
    double flops_infer, flops_train, macs_infer, macs_train;   // per sample
    size_t peak_mem_infer, peak_mem_train;   // measured bytes, or the computed need when skipped
    size_t need_infer, need_train;           // model_bytes_needed(cfg, n, .) * batch
    double infer_ms, infer_ms_min, infer_ms_max;   // per sample: median, min, max
    double train_ms, train_ms_min, train_ms_max;
    size_t infer_reps, train_reps;
    double gflops_infer, gflops_train;       // analytic FLOPs / median time
    double blocks_softmax, blocks_efficient, blocks_linformer;   // mean per sample
    double blocks_linear, blocks_performer, blocks_nystromformer; // mean per sample (SPEC §9 kinds)
    double blocks_local, blocks_bigbird;                          // mean per sample (SPEC §9.4, §9.5)
    ProfileStatus status;
    KernelSet kernels;          // the kernel set that ran (core/kernels.h)
} ProfileResult;

void profile_options_default(ProfileOptions *o);
const char *profile_status_name(ProfileStatus s);   // "ok", "skipped", "train-skipped", "out-of-memory"

// Measures one (method, n). MB_OK also for skipped/out-of-memory rows (see r->status);
// MB_ERR_INTERRUPTED when *o->stop was set; other codes with a reason on real failures.
int profile_measure(const ProfileOptions *o, Method method, size_t n, ProfileResult *r,
                    char *err, size_t errlen);

// The output table: the columns of `maelre-bench profile` (CSV order), one row per result.
// `variant` names the series: the method, with "-dense" appended when its softmax blocks ran
// the dense implementation (e.g. "vanilla-dense"); `softmax_impl` is empty for linformer.
Table *profile_table_new(void);
// The row's variant name into buf (at least 32 bytes): "vanilla", "vanilla-dense", ...
const char *profile_variant(const ProfileResult *r, char *buf, size_t n);
int profile_table_add(Table *t, const ProfileResult *r, size_t mem_limit);

// Bytes of physical memory (0 if unknown).
size_t profile_physical_memory(void);

#endif
