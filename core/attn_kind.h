// The attention kinds as rows of one table. The model (core/model.c, core/model_plan.c,
// core/model_params.c, core/checkpoint.c) reaches a kind only through its row: its per-layer
// parameters and buffers, how many floats one sample saves for backward (training), holds in
// inference and needs as backward scratch, and its three kernels. Each row adapts the kernels
// of core/attention.h; FLOPs are counted inside those kernels (core/flops.h), so a row adds none.
//
// HOW TO ADD A KIND (e.g. performer):
//   1. core/model.h: add ATTN_PERFORMER to AttnKind, before ATTN_KIND_COUNT (the enum value is
//      stored in checkpoints as maelre_coarse and indexes AttnUsage: append, never reorder).
//      Settings the kind owns (feature count, window, ...) become ModelConfig fields with a
//      default in model_config_default (core/model_config.c), a check in the row's `check`,
//      a slot in core/checkpoint.c's config record and, if users may set them, a field in
//      tasks/task.c.
//   2. core/attn_<kind>.c + its declarations in core/attention.h: the per-sample kernels
//      (forward, backward that accumulates, the plain reference beside any fast path).
//   3. core/kind_<kind>.c: one `const AttnKindRow attn_kind_<kind>` adapting those kernels to
//      the signatures below (look at core/kind_linformer.c for a kind with parameters).
//      Non-trainable per-layer tables (random features, random blocks) are `buffers`: drawn
//      from the model seed in init_buffers, saved in checkpoints, never updated.
//   4. core/attn_kind.c: one line in the table, and its extern below.
//   5. A method that uses it: one row in core/model_methods.c (see the comment there).
//   6. Tests: tests/test_attn_<kind>.c (finite differences in double for every new op, the
//      reference kernel, a FLOP hand formula, the kind's invariants); in tests/test_attn_kind.c
//      one branch in direct() calling the kernels (it then checks the row bit for bit against
//      them, and walks the row: pointers set, unique names, sizes > 0, finite differences
//      through the row); a PyTorch parity fixture for the method (tests/reference/).
#ifndef MAELRE_ATTN_KIND_H
#define MAELRE_ATTN_KIND_H
#include <stddef.h>
#include <stdint.h>
#include "core/model.h"

#define ATTN_MAX_TENSORS 4   // parameter (or buffer) tensors one kind owns per layer

// One per-layer tensor of a kind. Named "blk<b>.<name>" in the model's tensor table, so
// names must differ from the block's own (ln1_g, wqkv, ...) and from other kinds' names.
typedef struct {
    const char *name;
    size_t count;     // floats
    int decay;        // AdamW decays it (weights of linear maps); buffers: ignored
} AttnTensorSpec;

// One sample's attention call. q, k, v are (N, D) with row stride ld (3 D from the fused
// QKV projection); head h uses columns [h d, (h+1) d), d = D / H.
typedef struct {
    const float *q, *k, *v;
    size_t ld;
    const float *log_s;        // per-token log size (proportional attention) or NULL (all 1)
    size_t N, D, H;
    const float *const *par;   // this layer's parameter tensors of the kind, in params() order
    const float *const *buf;   // this layer's buffers of the kind, in buffers() order
    const ModelConfig *cfg;    // the kind's settings are its fields of the model config
} AttnCall;

typedef struct {
    const char *name;          // attn_kind_name(); also the value of maelre_coarse in task files
    const char *description;   // one line
    // Honours log_s (proportional attention), so it may run after merging: MAELRE's coarse
    // stage accepts only such kinds.
    int proportional;
    // Backward accumulates into this layer's parameter gradients, which every sample shares:
    // the model then runs the samples' backward one after another.
    int shared_grads;
    // Extra checks of the kind's own settings (model_config_check calls it for every kind a
    // method may use); MB_OK or MB_ERR_USAGE with a reason.
    int (*check)(const ModelConfig *c, char *err, size_t errlen);
    // Per-layer trainable parameters: fills out[], returns how many (0..ATTN_MAX_TENSORS).
    // init_params fills them from the model's parameter stream (called in block order after
    // the block's own weights, so existing layouts keep their numbers).
    size_t (*params)(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]);
    void (*init_params)(const ModelConfig *c, float *const *par, uint64_t *rng);
    // Per-layer non-trainable buffers, drawn from their own stream of the model seed
    // (one per block) at creation and saved in checkpoints.
    size_t (*buffers)(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]);
    void (*init_buffers)(const ModelConfig *c, float *const *buf, uint64_t *rng);
    // Floats per sample of N tokens: forward's save read by backward (training); what the
    // inference forward holds (its save or workspace); backward's scratch.
    size_t (*save_floats)(const ModelConfig *c, size_t N, size_t D, size_t H);
    size_t (*infer_floats)(const ModelConfig *c, size_t N, size_t D, size_t H);
    size_t (*work_floats)(const ModelConfig *c, size_t N, size_t D, size_t H);
    // out (N, D) stride D. save: save_floats() floats, read by backward.
    void (*forward)(float *out, float *save, const AttnCall *a);
    // The same output without anything for backward; save: infer_floats() floats.
    void (*forward_infer)(float *out, float *save, const AttnCall *a);
    // Accumulates (+=) into dq, dk, dv (stride a->ld) and dpar (this layer's parameter
    // gradients, params() order); dout (N, D) stride D; work: work_floats() floats.
    void (*backward)(float *dq, float *dk, float *dv, float *const *dpar, const float *dout,
                     const float *save, float *work, const AttnCall *a);
} AttnKindRow;

// Shared row entries for a kind without settings to check, parameters or buffers.
int attn_kind_check_nothing(const ModelConfig *c, char *err, size_t errlen);          // MB_OK
size_t attn_kind_no_tensors(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]);   // 0
void attn_kind_init_nothing(const ModelConfig *c, float *const *t, uint64_t *rng);

extern const AttnKindRow attn_kind_softmax;     // core/kind_softmax.c
extern const AttnKindRow attn_kind_linformer;   // core/kind_linformer.c
extern const AttnKindRow attn_kind_efficient;   // core/kind_efficient.c
extern const AttnKindRow attn_kind_linear;      // core/kind_linear.c
extern const AttnKindRow attn_kind_performer;   // core/kind_performer.c
extern const AttnKindRow attn_kind_nystrom;     // core/kind_nystrom.c
extern const AttnKindRow attn_kind_local;       // core/kind_local.c
extern const AttnKindRow attn_kind_bigbird;     // core/kind_bigbird.c

// The row of kind k (NULL when out of range); names: attn_kind_name/attn_kind_parse
// (core/model.h).                                          -- core/attn_kind.c
const AttnKindRow *attn_kind(AttnKind k);

#endif
