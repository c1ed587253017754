// What the files of the model share (not for callers: they use core/model.h).
//   core/model_config.c   defaults, checks, names
//   core/model_methods.c  the method table: which kind each block uses, which blocks merge, how
//   core/attn_kind.c      the attention-kind table (core/attn_kind.h), one core/kind_*.c per row
//   core/model_params.c   parameter and buffer layout (tensor tables), init, decay mask, accessors
//   core/model_plan.c     batch planning: token counts, kinds, arena layouts; model_bytes_needed
//   core/model.c          forward (training and inference), backward, dispatch through the tables
//   core/checkpoint.c     model_save / model_load
#ifndef MAELRE_MODEL_INTERNAL_H
#define MAELRE_MODEL_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "core/attn_kind.h"
#include "core/model.h"

#define NONE ((size_t)-1)
#define ALIGN_F 16  // floats per 64 bytes

// A method: one row (core/model_methods.c). Adding a method = an enum value in core/model.h
// (appended: its value is stored in checkpoints) and one row; the row's functions may be the
// shared helpers of that file (no merging, ToMe's and MAELRE's schedules).
typedef struct {
    const char *name;          // method_name(); the --method value
    const char *description;   // one line for `list`
    // Attention kind of block `block` for a sample of n tokens entering it.
    AttnKind (*kind)(const ModelConfig *c, size_t block, size_t n);
    // Bit k set when some block may use kind k: their parameters and buffers are laid out in
    // every block, in kind order.
    unsigned (*kinds_used)(const ModelConfig *c);
    // Merging: does block `block`'s merge point merge, to how many tokens (from n), and how
    // tokens are matched (merge_plan_build's kind and `until`). A threshold > 0 makes the amount
    // adaptive (merge_plan_build's threshold): merge_target is then a floor, and the token count
    // after the block is known only once its keys are (the plan holds room for all n).
    int (*merges)(const ModelConfig *c, size_t block);
    size_t (*merge_target)(const ModelConfig *c, size_t block, size_t n);
    void (*match)(const ModelConfig *c, MatchKind *mk, size_t *until);
    float (*merge_threshold)(const ModelConfig *c, size_t block);
    // The method's own config checks (the kinds' checks run as well); MB_OK or MB_ERR_USAGE.
    int (*check)(const ModelConfig *c, char *err, size_t errlen);
} MethodRow;

const MethodRow *method_row(Method m);   // NULL when out of range
size_t model_switch_threshold(const ModelConfig *c);   // switch_threshold, 0 meaning D

typedef struct {
    char name[32];
    size_t off, count;
    uint8_t decay;
} Tensor;

typedef struct {
    size_t ln1_g, ln1_b, wqkv, bqkv, wo, bo, ln2_g, ln2_b, w1, b1, w2, b2;
    size_t kpar[ATTN_KIND_COUNT][ATTN_MAX_TENSORS];   // offsets of the kinds' parameters (params)
    size_t kbuf[ATTN_KIND_COUNT][ATTN_MAX_TENSORS];   // offsets of the kinds' buffers (buffers)
} BlockParams;

// Float offsets into the activation arena for one block (level b = tokens entering block b).
typedef struct {
    size_t x, s, logs;                       // level b: x (T_b, D), sizes, log sizes (T_b)
    size_t ln1_m, ln1_r, a, qkv, att, xmid;  // (T_b, ...)
    size_t xm;                               // (T_{b+1}, D); == xmid when the block does not merge
    size_t ln2_m, ln2_r, c, h, g;            // (T_{b+1}, ...)
    size_t mwork;                            // merge planner work (nthr slots of Plan.mwork_stride)
    size_t rt;                               // inference: W_o / W_2 output of one row chunk
} BlockLayout;

typedef struct {
    size_t n, blocks;
    // size_t arena offsets
    size_t off;       // (blocks + 1) x (n + 1) token offsets per level
    size_t kind;      // blocks x n attention kinds
    size_t save;      // blocks x n float offsets of attention saves
    size_t sstride;   // blocks x 1: per-thread stride of the save region (0 when kept per sample)
    size_t dst;       // blocks x 1: offset of this block's merge assignment (T_b entries) or NONE
    size_t iwork;     // merge planner size_t work, one slot of iwork_stride per thread
    size_t iwork_stride, mwork_stride;  // per-thread strides of the planner's size_t and float work
    size_t ix_total;
    // float arena
    size_t pooled, lnf_m, lnf_r, pln;
    size_t np, pz, ph;  // pairs (cfg.pairs): pair count, [e1,e2,e1*e2,e1-e2] (np, 4D), ReLU(head1) (np, M)
    size_t act_total;
    // backward arena
    size_t g_dx0, g_dx1, g_dg, g_dh, g_dc, g_datt, g_dqkv, g_da, g_work, g_dpool, g_dpln;
    size_t g_dpz, g_dph;   // pairs: d z (np, 4D); d ReLU output and d head1 output (2 x up(np M))
    size_t gw_total;
    size_t t_max, n_max, work_max, nthr;   // work_max: largest attention backward scratch
    size_t chunk;     // inference: rows per chunk of the row-wise ops
    size_t rows_thr, rows_stride;  // inference: threads running chunks, floats of one thread's chunk scratch
} Plan;

struct Model {
    ModelConfig cfg;
    size_t n_params, n_tensors;
    Tensor *tensors;
    float *params, *grads;
    uint8_t *decay;
    size_t n_buffers, n_btensors;
    Tensor *btensors;
    float *buffers;
    size_t kpar_n[ATTN_KIND_COUNT], kbuf_n[ATTN_KIND_COUNT];  // tensors per block of each kind
    size_t tok_emb, patch_w, patch_b, pos, lnf_g, lnf_b, head_w, head_b;
    size_t head1_w, head1_b, head2_w, head2_b;   // pairs head (NONE otherwise; head_w/_b NONE then)
    BlockParams *bp;
    uint8_t *merges;      // per block: does this block's merge point merge
    BlockLayout *bl;      // blocks + 1 (the last only uses x, s, logs)
    Plan plan;
    float *act;  size_t act_cap;
    size_t *ix;  size_t ix_cap;
    float *gw;   size_t gw_cap;
    float *wt;            // the blocks' linear weights packed for this forward (linear_pack), at
                          // their parameter offsets; NULL when the kernel set does not pack
    int kept;             // last forward kept activations
    uint64_t drop_seed, drop_step;  // dropout masks of training forwards/backwards
    const size_t *drop_index;       // (model_set_dropout_step)
    AttnUsage usage;
};

// core/model_params.c
// Builds the tensor tables (when m != NULL) and returns the parameter count; *n_buffers (when
// non-NULL) gets the buffer float count. Order (the checkpoint and fixture layout):
// embeddings, blocks (own tensors, then each used kind's), final LayerNorm, head (pairs:
// head1_w, head1_b, head2_w, head2_b).
size_t model_layout(const ModelConfig *c, Model *m, size_t *n_buffers);
size_t model_count_tensors(const ModelConfig *c, size_t *n_btensors);
int model_ensure_grads(Model *m);

// core/model_plan.c
static inline size_t model_up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }
// Plans token counts, kinds and arena layouts for samples of the given lengths. When ix is
// NULL only the totals are computed. keep: training layout (every block's activations kept +
// backward arena); otherwise the per-block temporaries of successive blocks share one region.
int model_plan_batch(const ModelConfig *c, const uint8_t *merges, size_t n, const size_t *len,
                     int keep, Plan *P, BlockLayout *bl, size_t *ix);
// After an adaptive merge point has written the real counts of level `level` (ix's offsets),
// rewrites what follows from them: the offsets of levels level+1..blocks, and the kinds and
// (training) save offsets of blocks level..blocks-1. Fits inside the room model_plan_batch left.
void model_plan_tail(const ModelConfig *c, const uint8_t *merges, int keep, const Plan *P, size_t *ix, size_t level);
int model_grow(void **buf, size_t *cap, size_t need, size_t elem);

#endif
