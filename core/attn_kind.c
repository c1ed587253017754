// The table of attention kinds (core/attn_kind.h): one row per kind, indexed by AttnKind.
#include "core/attn_kind.h"
#include <string.h>
#include "core/status.h"

static const AttnKindRow *const KINDS[ATTN_KIND_COUNT] = {
    [ATTN_SOFTMAX] = &attn_kind_softmax,
    [ATTN_LINFORMER] = &attn_kind_linformer,
    [ATTN_EFFICIENT] = &attn_kind_efficient,
    [ATTN_LINEAR] = &attn_kind_linear,
    [ATTN_PERFORMER] = &attn_kind_performer,
    [ATTN_NYSTROM] = &attn_kind_nystrom,
    [ATTN_LOCAL] = &attn_kind_local,
    [ATTN_BIGBIRD] = &attn_kind_bigbird,
};

int attn_kind_check_nothing(const ModelConfig *c, char *err, size_t errlen) { return MB_OK; }
size_t attn_kind_no_tensors(const ModelConfig *c, AttnTensorSpec out[ATTN_MAX_TENSORS]) { return 0; }
void attn_kind_init_nothing(const ModelConfig *c, float *const *t, uint64_t *rng) {}

const AttnKindRow *attn_kind(AttnKind k) { return (unsigned)k < ATTN_KIND_COUNT ? KINDS[k] : NULL; }

const char *attn_kind_name(AttnKind k) { return (unsigned)k < ATTN_KIND_COUNT ? KINDS[k]->name : "?"; }

int attn_kind_parse(const char *s, AttnKind *out) {
    for (int k = 0; k < ATTN_KIND_COUNT; k++)
        if (s && !strcmp(s, KINDS[k]->name)) { *out = (AttnKind)k; return 0; }
    return -1;
}
