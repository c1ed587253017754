// The runner: trains and evaluates methods on one task and measures them (SPEC §6, §8, §11).
// Split by job: tasks/run_data.{h,c} (splits with validation, batches, sampler, data present),
// tasks/train.{h,c} (one method: training with validation, model selection, saved state,
// evaluation), tasks/run_schema.{h,c} (RunSpec, RunRow and the one results column list), and
// tasks/runner.c (here): every (method, seed) in its own forked process, so peak_rss_bytes is
// that run's own, with resume. Library code: no exit; the only output is the progress stream.
//
// Files in <out> per (method, seed) S: .<method>-seed<S>.json (the finished row, written
// atomically by the child: its presence means finished), .<method>-seed<S>.state (the saved
// training state while unfinished), <method>-seed<S>.ckpt (best-validation weights),
// curves/<method>-seed<S>.csv, predictions/<method>-seed<S>.csv; and results.{json,csv} with
// every finished row in <out> whose settings (seed aside) match this run's.
//
// Conventions (also in the README): FLOPs are analytic, 1 multiply-add = 2 FLOPs = 1 MAC,
// 1 FLOP per element-wise op; inference FLOPs are the mean over the test set of the eval
// forward passes; training FLOPs per sample are forward + backward over all training steps
// divided by the samples trained. Throughput excludes warm-up (inference: one extra batch
// first; training: the first steps). Peak memory is bytes held through core/mem.h above what
// was held before (data excluded), for training and inference (a fresh model loaded from the
// checkpoint) separately.
#ifndef MAELRE_RUNNER_H
#define MAELRE_RUNNER_H
#include "tasks/run_data.h"
#include "tasks/run_schema.h"
#include "tasks/train.h"

// Runs each (method, seed) in a forked child (methods outer, seeds inner; resume/force as above),
// then writes <out>/results.{json,csv}. The child dies with its parent (PR_SET_PDEATHSIG) and
// stops like the parent when *rs->stop is set (the parent forwards SIGINT). *results (optional)
// receives the table. Returns MB_OK, the first failing run's code, or MB_ERR_INTERRUPTED.
int runner_run(const Task *t, const char *data_root, const RunSpec *rs, const Method *methods,
               size_t n_methods, const uint64_t *seeds, size_t n_seeds, const char *out_dir, int force,
               Table **results, char *err, size_t errlen);

#endif
