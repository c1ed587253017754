// Checkpoints: model_save / model_load. Layout (version 3, little-endian as written):
//   "MAELRECK" | u32 version | config record | u64 buffer floats | u64 parameter floats |
//   parameters (f32) | buffers (f32) | u32 zlib crc32 of every byte before it.
// Saving writes a temporary file in the same folder, syncs it and renames it over the target.
// Loading checks magic and version, then (when the file has the size its header promises) the
// checksum before it builds anything, so any changed byte is refused (MB_ERR_DATA, the file
// named); a cut or extended file is refused with what is missing or extra. Version 1 files
// (no checksum) are refused with a hint; version 2 (a config record without the settings of the
// performer, nystromformer, local and bigbird kinds) is refused as another version.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "core/model_internal.h"
#include "core/status.h"

#define CKPT_MAGIC "MAELRECK"
#define CKPT_VERSION 3u   // 3: the attention kinds' settings joined the config record

// The config is stored field by field (fixed widths), so struct padding never leaks in.
// softmax_impl is not stored: it does not change the function the model computes.
// u slots: 0 vocab, 1 feat_dim, 2 max_len, 3 dim, 4 heads, 5 mlp, 6 blocks, 7 classes, 8 method,
// 9 linformer_k, 10 linformer_share_ef, 11 n_stages, 12 switch_threshold, 13 local_window,
// 14 maelre_coarse; the kinds' own settings: 15 performer_features, 16 nystrom_landmarks,
// 17 nystrom_conv, 18 local_attn_window, 19 bigbird_block, 20 bigbird_random; 21 pairs (the two-tower head);
// 22 merge_threshold's float bits (0 in files written before it: fixed keep ratios); 23..31 zero
// (room for later settings without another layout change). f: 0 ln_eps, 1 tome_r_frac.
typedef struct { uint64_t u[32]; float f[2]; uint64_t stage_blocks[MODEL_MAX_STAGES]; float stage_keep[MODEL_MAX_STAGES]; } CkptConfig;

static void cfg_pack(const ModelConfig *c, CkptConfig *k) {
    memset(k, 0, sizeof *k);
    uint64_t u[32] = {c->vocab, c->feat_dim, c->max_len, c->dim, c->heads, c->mlp, c->blocks, c->classes,
                      (uint64_t)c->method, c->linformer_k, (uint64_t)c->linformer_share_ef, c->n_stages,
                      c->switch_threshold, c->local_window, (uint64_t)c->maelre_coarse,
                      c->performer_features, c->nystrom_landmarks, c->nystrom_conv,
                      c->local_attn_window, c->bigbird_block, c->bigbird_random,
                      (uint64_t)c->pairs};
    memcpy(k->u, u, sizeof u);
    uint32_t bits;
    memcpy(&bits, &c->merge_threshold, sizeof bits);
    k->u[22] = bits;
    k->f[0] = c->ln_eps;
    k->f[1] = c->tome_r_frac;
    for (size_t i = 0; i < MODEL_MAX_STAGES; i++) { k->stage_blocks[i] = c->stages[i].blocks; k->stage_keep[i] = c->stages[i].keep; }
}

static void cfg_unpack(const CkptConfig *k, ModelConfig *c) {
    memset(c, 0, sizeof *c);
    c->vocab = k->u[0]; c->feat_dim = k->u[1]; c->max_len = k->u[2]; c->dim = k->u[3];
    c->heads = k->u[4]; c->mlp = k->u[5]; c->blocks = k->u[6]; c->classes = k->u[7];
    c->method = (Method)k->u[8]; c->linformer_k = k->u[9]; c->linformer_share_ef = (int)k->u[10];
    c->n_stages = k->u[11]; c->switch_threshold = k->u[12]; c->local_window = k->u[13];
    c->maelre_coarse = (AttnKind)k->u[14];
    c->performer_features = k->u[15]; c->nystrom_landmarks = k->u[16]; c->nystrom_conv = k->u[17];
    c->local_attn_window = k->u[18]; c->bigbird_block = k->u[19]; c->bigbird_random = k->u[20];
    c->pairs = (int)k->u[21];   // the two-tower head (SPEC §10.2)
    uint32_t bits = (uint32_t)k->u[22];
    memcpy(&c->merge_threshold, &bits, sizeof bits);
    c->ln_eps = k->f[0]; c->tome_r_frac = k->f[1];
    for (size_t i = 0; i < MODEL_MAX_STAGES; i++) { c->stages[i].blocks = k->stage_blocks[i]; c->stages[i].keep = k->stage_keep[i]; }
}

// zlib's crc32 takes 32-bit lengths: feed large blocks in pieces.
static uint32_t crc_add(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        crc = (uint32_t)crc32(crc, b, (uInt)k);
        b += k; n -= k;
    }
    return crc;
}

static int put(FILE *f, uint32_t *crc, const void *p, size_t n) {
    *crc = crc_add(*crc, p, n);
    return n == 0 || fwrite(p, 1, n, f) == n;
}

int model_save(const Model *m, const char *path, char *err, size_t errlen) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { int rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create checkpoint", tmp); free(tmp); return rc; }
    CkptConfig k;
    cfg_pack(&m->cfg, &k);
    uint32_t ver = CKPT_VERSION, crc = (uint32_t)crc32(0L, Z_NULL, 0);
    uint64_t nb = m->n_buffers, np = m->n_params;
    int ok = put(f, &crc, CKPT_MAGIC, 8) && put(f, &crc, &ver, sizeof ver) && put(f, &crc, &k, sizeof k) &&
             put(f, &crc, &nb, sizeof nb) && put(f, &crc, &np, sizeof np) &&
             put(f, &crc, m->params, m->n_params * sizeof(float)) &&
             put(f, &crc, m->buffers, m->n_buffers * sizeof(float));
    ok = ok && fwrite(&crc, sizeof crc, 1, f) == 1;
    ok = (fflush(f) == 0) && ok;
    ok = ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        int rc = mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write checkpoint", path);
        free(tmp);
        return rc;
    }
    free(tmp);
    return MB_OK;
}

// crc32 of the first n bytes of f (read from the start).
static int crc_of_prefix(FILE *f, long n, uint32_t *out) {
    unsigned char buf[1 << 16];
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    if (fseek(f, 0, SEEK_SET) != 0) return -1;
    while (n > 0) {
        size_t want = n > (long)sizeof buf ? sizeof buf : (size_t)n;
        if (fread(buf, 1, want, f) != want) return -1;
        crc = crc_add(crc, buf, want);
        n -= (long)want;
    }
    *out = crc;
    return 0;
}

int model_load(Model **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot open checkpoint", path);
    char magic[8];
    uint32_t ver;
    CkptConfig k;
    uint64_t nb, np;
    int rc = MB_OK;
    const long hdr = (long)(8 + sizeof ver + sizeof k + sizeof nb + sizeof np);
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:0: not a maelre-bench checkpoint (bad magic); hint: pass a file written by maelre-bench's model_save", path);
    } else if (fread(&ver, sizeof ver, 1, f) != 1) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:8: truncated checkpoint (no version); hint: the file was cut short, save it again", path);
    } else if (ver == 1) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:8: checkpoint version 1 (no checksum), this build reads version %u; hint: train again "
                     "(`run` writes version %u), or evaluate it with the build that wrote it", path, CKPT_VERSION, CKPT_VERSION);
    } else if (ver != CKPT_VERSION) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:8: checkpoint version %u, this build reads version %u; hint: retrain, or use the build that wrote it", path, ver, CKPT_VERSION);
    } else if (fread(&k, sizeof k, 1, f) != 1 || fread(&nb, sizeof nb, 1, f) != 1 || fread(&np, sizeof np, 1, f) != 1) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:12: truncated checkpoint header; hint: the file was cut short, save it again", path);
    }
    if (rc) { fclose(f); return rc; }
    // The checksum first, when the file is as long as its header says: nothing else is trusted
    // (a corrupt config could ask for any amount of memory). Otherwise the checks below name
    // what is cut or extra.
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size > hdr && np < (uint64_t)size && nb < (uint64_t)size &&
        (uint64_t)hdr + (np + nb) * sizeof(float) + sizeof(uint32_t) == (uint64_t)size) {
        uint32_t got, want;
        if (crc_of_prefix(f, size - 4, &got) != 0 || fread(&want, sizeof want, 1, f) != 1) {
            fclose(f);
            return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot read checkpoint", path);
        }
        if (got != want) {
            fclose(f);
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: checksum mismatch (stored crc32 %08x, bytes 0-%ld give %08x): "
                           "the file changed after it was written; hint: the file is corrupt, restore a copy or train again",
                           path, size - 4, (unsigned)want, size - 5, (unsigned)got);
        }
    }
    if (fseek(f, hdr, SEEK_SET) != 0) { fclose(f); return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot read checkpoint", path); }
    ModelConfig cfg;
    cfg_unpack(&k, &cfg);
    char why[256];
    if (model_config_check(&cfg, why, sizeof why) != MB_OK) {
        fclose(f);
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:12: checkpoint holds an invalid config (%s); hint: the file is corrupt", path, why);
    }
    Model *m;
    rc = model_create(&m, &cfg, 0, err, errlen);
    if (rc) { fclose(f); return rc; }
    uint32_t stored;
    if (np != m->n_params) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: checkpoint holds %llu parameters but its config needs %zu; hint: the file is corrupt or from another build",
                     path, hdr - (long)sizeof np, (unsigned long long)np, m->n_params);
    } else if (nb != m->n_buffers) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: checkpoint holds %llu buffer floats but its config needs %zu; hint: the file is corrupt or from another build",
                     path, hdr - (long)(sizeof np + sizeof nb), (unsigned long long)nb, m->n_buffers);
    } else {
        size_t got = fread(m->params, sizeof(float), m->n_params, f);
        size_t gotb = got == m->n_params && m->n_buffers ? fread(m->buffers, sizeof(float), m->n_buffers, f) : 0;
        long end = hdr + (long)((m->n_params + m->n_buffers) * sizeof(float));
        if (got != m->n_params)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: truncated checkpoint: %zu of %zu parameters; hint: the file was cut short, save it again",
                         path, hdr + (long)(got * sizeof(float)), got, m->n_params);
        else if (gotb != m->n_buffers)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: truncated checkpoint: %zu of %zu buffer floats; hint: the file was cut short, save it again",
                         path, hdr + (long)((got + gotb) * sizeof(float)), gotb, m->n_buffers);
        else if (fread(&stored, sizeof stored, 1, f) != 1)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: truncated checkpoint: the checksum is missing; hint: the file was cut short, save it again",
                         path, end);
        else if (fgetc(f) != EOF)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%ld: trailing bytes after the checksum; hint: the file is corrupt or not a checkpoint",
                         path, end + 4);
        // Here the file has exactly the promised size, so its checksum was verified above.
    }
    fclose(f);
    if (rc) { model_destroy(m); return rc; }
    *out = m;
    return MB_OK;
}
