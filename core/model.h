// The shared transformer classifier of SPEC §2 and the methods of SPEC §5 and §9.
// embed -> blocks (pre-LN: x += Attn(LN(x)); merge point; x += MLP(LN(x))) -> size-weighted
// mean pool -> LayerNorm -> Linear(D, classes). Owns its parameters, gradients and activation
// buffers (all through core/mem.h). Knows nothing of files except its own checkpoints.
//
// Contract for callers (tasks/, cli/, tests/): this header is stable; implementations may
// add fields/functions but not change the meaning of these.
//
// Implementation choices (core/model*.c, core/kind_*.c): GELU is the tanh approximation; linear weights are
// (out, in) like PyTorch and initialised N(0, 1/in), token/position embeddings N(0, 0.02^2),
// Linformer E/F Xavier-normal, LayerNorm gains 1, biases 0. Weight decay (model_decay_mask)
// applies to the weights of linears: QKV, output, MLP, head, the patch projection and
// Linformer's E/F; not to biases, LayerNorms, token or position embeddings, nor to Nystromformer's
// conv kernels (per-head filters along the tokens, initialised U(-1/sqrt(taps), 1/sqrt(taps)));
// Performer's random features are buffers (never trained). Attention runs
// per sample; with threads_get() > 1 and several samples, samples run in parallel (one
// thread each, BLAS single-threaded inside), otherwise one after another with threaded
// BLAS; numbers are the same run to run for a fixed thread count. TOME merges in every
// block (r = floor(frac * N), at least 1 token left); MAELRE merges at each stage's last
// block to round(keep * N) (at least 1), or with merge_threshold as far as the keys allow. model_forward refuses samples longer than max_len
// (callers truncate) and empty samples.
#ifndef MAELRE_MODEL_H
#define MAELRE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "core/batch.h"

typedef enum {
    METHOD_VANILLA = 0, METHOD_LINFORMER, METHOD_TOME, METHOD_MAELRE,
    METHOD_PERFORMER, METHOD_NYSTROMFORMER, METHOD_LINEAR, METHOD_EFFICIENT, METHOD_MAELRE_EXACT,
    METHOD_LOCAL, METHOD_BIGBIRD,
    METHOD_COUNT
} Method;
typedef enum {
    ATTN_SOFTMAX = 0, ATTN_LINFORMER, ATTN_EFFICIENT,
    ATTN_LINEAR, ATTN_PERFORMER, ATTN_NYSTROM,
    ATTN_LOCAL, ATTN_BIGBIRD,
    ATTN_KIND_COUNT
} AttnKind;
typedef enum { MATCH_GLOBAL = 0, MATCH_LOCAL } MatchKind;
// How exact softmax attention is computed (same function, same FLOP count, different memory):
// tiled (default) never holds N x N scores; dense materialises and saves P of every head
// (H N^2 floats per sample and block), the textbook form PyTorch autograd runs.
typedef enum { SOFTMAX_TILED = 0, SOFTMAX_DENSE, SOFTMAX_IMPL_COUNT } SoftmaxImpl;

#define MODEL_MAX_STAGES 16

typedef struct {
    size_t blocks;   // blocks in this stage; merging happens at the last one's merge point
    float keep;      // fraction of tokens kept after the stage (1 = no merging; < 1/2 = several rounds)
} MaelreStage;

typedef struct {
    // input
    size_t vocab;          // > 0: discrete ids in [0, vocab) through a lookup table
    size_t feat_dim;       // > 0: continuous patches of this width through a linear projection
    size_t max_len;        // learned position embeddings for positions [0, max_len)
    // shape (same for every method: SPEC §5)
    size_t dim;            // D
    size_t heads;          // H, D % H == 0
    size_t mlp;            // M
    size_t blocks;         // depth
    size_t classes;
    float ln_eps;          // 1e-5
    int pairs;             // 1: two-tower pairs (SPEC §10.2): a batch of n samples holds 2n
                           // documents (2i, 2i+1 = pair i's), each encoded and pooled -> lnf ->
                           // e1, e2; head [e1, e2, e1*e2, e1-e2] -> head1 (M) -> ReLU -> head2
    // method
    Method method;
    size_t linformer_k;    // default 128
    int linformer_share_ef;// E = F
    float tome_r_frac;     // tome: r = floor(frac * N_in) tokens removed per block (default 0.25)
    size_t n_stages;       // maelre: stages; sum of blocks == blocks
    MaelreStage stages[MODEL_MAX_STAGES];
    size_t switch_threshold;  // maelre: efficient while N > threshold (0 means D)
    size_t local_window;      // maelre: local matching window w (default 8)
    float merge_threshold;    // maelre, maelre-exact: 0 (default) merges to each stage's keep
                              // ratio; in (0, 1] the amount is adaptive: every round merges the
                              // A tokens whose best similarity is >= it, until none is or the
                              // keep ratio (now a floor) is reached (core/merge.h)
    AttnKind maelre_coarse;   // maelre: the kind while N > threshold (default efficient; also
                              // linear or performer: SPEC §9.6)
    size_t performer_features;   // performer: random features m (default 128)
    size_t nystrom_landmarks;    // nystromformer: landmarks m (default 64)
    size_t nystrom_conv;         // nystromformer: conv skip taps (default 35, 0 = off)
    size_t local_attn_window; // kind local: attention window w (SPEC §9.4, default 512, >= 2);
                              // not local_window, which is MAELRE's merge-matching window
    size_t bigbird_block;     // kind bigbird: block size b (SPEC §9.5, default 64)
    size_t bigbird_random;    // kind bigbird: random blocks r per query block (default 3)
    SoftmaxImpl softmax_impl; // implementation of every softmax block (default tiled); not a
                              // property of the trained function, so not stored in checkpoints
    float dropout;            // p in [0, 1) (default 0): training forwards only (core/dropout.h);
                              // not stored in checkpoints (a loaded model evaluates, p = 0)
} ModelConfig;

// Fills the SPEC §5 defaults (D=64, H=2, M=128, 4 blocks, maelre 4 stages of 1 block keep 1/4).
void model_config_default(ModelConfig *c, Method method, size_t vocab, size_t feat_dim,
                          size_t max_len, size_t classes);
// Validates a config; MB_OK or MB_ERR_USAGE with a reason.
int model_config_check(const ModelConfig *c, char *err, size_t errlen);
const char *method_name(Method m);           // "vanilla", "linformer", "tome", "maelre", ... (the method table)
const char *method_description(Method m);    // one line (the method table, core/model_methods.c)
int method_parse(const char *s, Method *out); // 0 on success
// 1 when some block of method m (default settings) runs the softmax kind, so that the softmax
// implementation (tiled/dense) matters for it; 0 for methods that never run it (linformer,
// performer, nystromformer, linear, efficient).
int method_has_softmax(Method m);
const char *attn_kind_name(AttnKind k);      // "softmax", "linformer", "efficient", ... (core/attn_kind.c)
int attn_kind_parse(const char *s, AttnKind *out); // 0 on success
const char *softmax_impl_name(SoftmaxImpl s);      // "tiled", "dense"
int softmax_impl_parse(const char *s, SoftmaxImpl *out); // 0 on success

typedef struct Model Model;

int model_create(Model **out, const ModelConfig *cfg, uint64_t seed, char *err, size_t errlen);
void model_destroy(Model *m);
const ModelConfig *model_config(const Model *m);
// Chooses how a (loaded) model computes its softmax blocks; the function it computes is the same.
void model_set_softmax_impl(Model *m, SoftmaxImpl s);

// Flat parameter/gradient vectors sharing one layout (SPEC: one allocation per role).
size_t model_num_params(const Model *m);
float *model_params(Model *m);
// Gradients are allocated (zeroed) by the first forward that keeps activations or the first
// model_grads call, so an inference-only model never holds them; NULL when that allocation fails.
float *model_grads(Model *m);
// The named tensors of that layout, in order (checkpoints, fixtures and tests use the names:
// "tok_emb" | "patch_w","patch_b"; "pos"; "blk<b>.{ln1_g,ln1_b,wqkv,bqkv,wo,bo,ln2_g,ln2_b,w1,b1,
// w2,b2[,E[,F]]}"; "lnf_g","lnf_b","head_w","head_b", with pairs "head1_w","head1_b" (M, 4D),
// "head2_w","head2_b" (classes, M) instead of head_w, head_b). Linear weights are (out, in) row-major;
// wqkv stacks Q, K, V rows. NULL when i is out of range.
size_t model_num_tensors(const Model *m);
const char *model_tensor(const Model *m, size_t i, size_t *offset, size_t *count);
// Per-parameter weight-decay mask layout: 1 where AdamW decays (weights of linears), else 0.
const uint8_t *model_decay_mask(const Model *m);
// Non-trainable per-layer tables of attention kinds (random features, random blocks): drawn
// from the seed at creation, saved in checkpoints, never updated; named "blk<b>.<name>" like
// the parameters. None of today's kinds has any (count 0). Writable so that fixtures can
// hand a table over.
size_t model_num_buffers(const Model *m);
float *model_buffers(Model *m);
size_t model_num_buffer_tensors(const Model *m);
const char *model_buffer_tensor(const Model *m, size_t i, size_t *offset, size_t *count);

// Dropout (cfg.dropout > 0) runs in forwards that keep activations (training) and never in
// others (evaluation, inference). Its masks are those of (seed, step, each sample's index in the
// step's global batch, layer, site) (core/dropout.h), so a data-parallel share of a global batch
// draws the masks the whole batch would. The training loop sets them before each step's forward;
// index[i] is the global index of the batch's sample i (NULL: i itself), read by the forwards and
// backwards until the next call (the caller keeps it alive). model_backward regenerates the
// forward's masks (no mask memory). Before any call: seed 0, step 0, index NULL.
void model_set_dropout_step(Model *m, uint64_t seed, uint64_t step, const size_t *index);

// Forward over a packed batch; logits is n x classes. With cfg.pairs, b->n counts documents
// (even; 2i and 2i+1 form pair i), b->labels holds b->n / 2 pair labels, and logits (as
// dlogits in backward and the loss's n) are (b->n / 2) x classes. With keep_for_backward the activations
// are kept for model_backward. Without it (inference) only the running residual stream, the
// current block's QKV and attention output and a chunk of row-op scratch are held; the logits
// are the same either way. Grows activation buffers as needed (MB_ERR_NOMEM on failure).
int model_forward(Model *m, const Batch *b, int keep_for_backward, float *logits,
                  char *err, size_t errlen);
// Mean softmax cross-entropy over the batch; writes dloss/dlogits when dlogits != NULL.
float model_loss(const float *logits, const int32_t *labels, size_t n, size_t classes,
                 float *dlogits);
// Backward from dlogits (n x classes) of the last forward; accumulates (+=) into grads.
void model_backward(Model *m, const Batch *b, const float *dlogits);
void model_zero_grad(Model *m);

// How many (sample, block) pairs of the last forward used each attention kind.
typedef struct { size_t count[ATTN_KIND_COUNT]; size_t samples; } AttnUsage;
AttnUsage model_last_usage(const Model *m);

// Bytes model_forward/backward would hold for one sample of n tokens (with pairs: one pair of
// two documents of n tokens each) (params, grads and optimizer state included when training):
// computed, not measured, for --mem-limit. Dropout adds nothing (its masks are regenerated in
// backward, core/dropout.h).
size_t model_bytes_needed(const ModelConfig *c, size_t n_tokens, int training);

// Checkpoints (core/checkpoint.c): magic + version + config + params + buffers + zlib crc32
// of everything before it. A bad magic, another version, a cut or extended file or a checksum
// mismatch (any byte changed) is refused with MB_ERR_DATA naming the file and a hint.
int model_save(const Model *m, const char *path, char *err, size_t errlen);
int model_load(Model **out, const char *path, char *err, size_t errlen);

#endif
