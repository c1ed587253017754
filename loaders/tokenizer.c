// The shared tokenizer/patcher: raw samples of every modality -> Sequence (loaders/tokenizer.h).
// Decisions the header leaves open, in one place:
//  - An empty sample (0 bytes/ids/steps/samples/pixels) is refused with MB_ERR_DATA: a 0-token
//    sequence cannot be pooled. Callers prefix the reason with "<file>:<line>: ".
//  - Buffers come from mem_alloc (core/mem.h) like every big buffer, so loaded data shows in
//    mem_current(); the runner measures peaks relative to what it holds before training.
//  - Ids are stored in the narrowest type that holds them (Sequence.id_bytes): bytes (vocab
//    257) as uint16_t, pixels (256) as uint8_t; tok_ids by the largest id it is given (ListOps'
//    18 words: uint8_t). Batches widen them to int32 (seq_ids_to_i32).
//  - tok_series normalises with the statistics of the whole input series (in double), then
//    truncates; non-finite values are refused (loaders fill missing values before calling).
//  - tok_image: a w or h not divisible by `patch` gives zero-filled edge patches (like the last
//    audio frame); grayscale of 2-channel (gray+alpha) input uses channel 0, of 4-channel input
//    ignores alpha. Luma is ITU-R 601, rounded: (299 R + 587 G + 114 B + 500) / 1000.
#include "loaders/tokenizer.h"
#include <math.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"

static size_t cap(size_t n, size_t max_len) { return (max_len && n > max_len) ? max_len : n; }

// len ids of `bytes` bytes each (1, 2, 4: uint8_t, uint16_t, int32_t).
static int alloc_ids(Sequence *out, size_t len, unsigned bytes, char *err, size_t errlen) {
    out->ids = NULL;
    out->feats = NULL;
    out->len = 0;
    out->id_bytes = bytes;
    if (len > ((size_t)-1) / sizeof(int32_t))
        return mb_fail(err, errlen, MB_ERR_NOMEM, "sequence of %zu tokens is too large", len);
    out->ids = mem_alloc(len * bytes);
    if (!out->ids) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu token ids", len);
    out->len = len;
    return MB_OK;
}

static int alloc_feats(Sequence *out, size_t len, size_t dim, char *err, size_t errlen) {
    out->ids = NULL;
    out->feats = NULL;
    out->len = 0;
    if (dim == 0 || len > ((size_t)-1) / sizeof(float) / dim)
        return mb_fail(err, errlen, MB_ERR_NOMEM, "sequence of %zu x %zu values is too large", len, dim);
    out->feats = mem_alloc(len * dim * sizeof(float));
    if (!out->feats)
        return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu x %zu values", len, dim);
    out->len = len;
    return MB_OK;
}

int tok_bytes(Sequence *out, const unsigned char *bytes, size_t n, size_t max_len,
              char *err, size_t errlen) {
    // bytes (n) -> ids (min(n, max_len)), id = byte + 1
    if (n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "empty sample (0 bytes)");
    size_t len = cap(n, max_len);
    int rc = alloc_ids(out, len, seq_id_bytes_for(TOK_BYTE_VOCAB), err, errlen);
    if (rc) return rc;
    uint16_t *o = out->ids;
    for (size_t i = 0; i < len; i++) o[i] = (uint16_t)(bytes[i] + 1);
    return MB_OK;
}

int tok_ids(Sequence *out, const int32_t *ids, size_t n, size_t max_len, char *err, size_t errlen) {
    // ids (n) -> ids (min(n, max_len))
    if (n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "empty sample (0 tokens)");
    int32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) return mb_fail(err, errlen, MB_ERR_DATA, "token %zu has negative id %d", i, ids[i]);
        if (ids[i] > top) top = ids[i];
    }
    size_t len = cap(n, max_len);
    int rc = alloc_ids(out, len, seq_id_bytes_for((size_t)top + 1), err, errlen);
    if (rc) return rc;
    for (size_t i = 0; i < len; i++) {
        if (out->id_bytes == 1) ((uint8_t *)out->ids)[i] = (uint8_t)ids[i];
        else if (out->id_bytes == 2) ((uint16_t *)out->ids)[i] = (uint16_t)ids[i];
        else ((int32_t *)out->ids)[i] = ids[i];
    }
    return MB_OK;
}

int tok_series(Sequence *out, const float *vals, size_t len, size_t dims, size_t max_len,
               char *err, size_t errlen) {
    // vals (len, dims) time-major -> feats (min(len, max_len), dims), z-normalised per dimension
    if (dims == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "time series with 0 dimensions");
    if (len == 0) return mb_fail(err, errlen, MB_ERR_DATA, "empty series (0 time steps)");
    for (size_t i = 0; i < len * dims; i++)
        if (!isfinite(vals[i]))
            return mb_fail(err, errlen, MB_ERR_DATA, "time step %zu, dimension %zu is not a finite number",
                           i / dims, i % dims);
    size_t keep = cap(len, max_len);
    int rc = alloc_feats(out, keep, dims, err, errlen);
    if (rc) return rc;
    for (size_t d = 0; d < dims; d++) {
        double mean = 0, var = 0;
        for (size_t t = 0; t < len; t++) mean += vals[t * dims + d];
        mean /= (double)len;
        for (size_t t = 0; t < len; t++) {
            double z = vals[t * dims + d] - mean;
            var += z * z;
        }
        double sd = sqrt(var / (double)len);
        // A constant dimension (sd ~ 0 relative to its magnitude) carries no information: all 0.
        int constant = !(sd > 1e-12 * (fabs(mean) + 1.0));
        for (size_t t = 0; t < keep; t++)
            out->feats[t * dims + d] = constant ? 0.0f : (float)((vals[t * dims + d] - mean) / sd);
    }
    return MB_OK;
}

int tok_audio(Sequence *out, const float *samples, size_t n, size_t frame, size_t max_len,
              char *err, size_t errlen) {
    // samples (n) -> feats (min(ceil(n / frame), max_len), frame)
    if (frame == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "audio frame of 0 samples");
    if (n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "empty recording (0 samples)");
    size_t tokens = cap(n / frame + (n % frame != 0), max_len);
    int rc = alloc_feats(out, tokens, frame, err, errlen);
    if (rc) return rc;
    size_t copy = tokens * frame < n ? tokens * frame : n;  // the rest stays zero (mem_alloc zeroes)
    memcpy(out->feats, samples, copy * sizeof(float));
    return MB_OK;
}

static int luma(const unsigned char *p, size_t channels) {
    if (channels < 3) return p[0];
    return (299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000;
}

int tok_image(Sequence *out, const unsigned char *pix, size_t w, size_t h, size_t channels,
              int grayscale, size_t patch, size_t max_len, char *err, size_t errlen) {
    // pix (h, w, channels) -> ids (h*w) when grayscale, else feats (patches, patch*patch*3)
    if (channels < 1 || channels > 4)
        return mb_fail(err, errlen, MB_ERR_DATA, "image with %zu channels (expected 1-4)", channels);
    if (w == 0 || h == 0) return mb_fail(err, errlen, MB_ERR_DATA, "empty image (%zu x %zu)", w, h);
    if (w > ((size_t)-1) / h) return mb_fail(err, errlen, MB_ERR_DATA, "image %zu x %zu is too large", w, h);
    if (grayscale) {
        size_t len = cap(w * h, max_len);
        int rc = alloc_ids(out, len, seq_id_bytes_for(TOK_PIXEL_VOCAB), err, errlen);
        if (rc) return rc;
        uint8_t *o = out->ids;
        for (size_t i = 0; i < len; i++) o[i] = (uint8_t)luma(pix + i * channels, channels);
        return MB_OK;
    }
    if (patch == 0) return mb_fail(err, errlen, MB_ERR_USAGE, "image patch side of 0 pixels");
    size_t ph = h / patch + (h % patch != 0), pw = w / patch + (w % patch != 0);
    size_t dim = patch * patch * 3;
    size_t len = cap(ph * pw, max_len);
    int rc = alloc_feats(out, len, dim, err, errlen);
    if (rc) return rc;
    for (size_t k = 0; k < len; k++) {
        size_t py = k / pw, px = k % pw;
        float *dst = out->feats + k * dim;
        for (size_t y = 0; y < patch; y++) {
            size_t iy = py * patch + y;
            if (iy >= h) break;  // zero-filled edge
            for (size_t x = 0; x < patch; x++) {
                size_t ix = px * patch + x;
                if (ix >= w) break;
                const unsigned char *p = pix + (iy * w + ix) * channels;
                float *q = dst + (y * patch + x) * 3;
                for (int c = 0; c < 3; c++) q[c] = (channels < 3 ? p[0] : p[c]) / 255.0f;
            }
        }
    }
    return MB_OK;
}

void sequence_free(Sequence *s) {
    if (!s) return;
    mem_free(s->ids);
    mem_free(s->feats);
    mem_free(s->bytes);
    s->ids = NULL;
    s->feats = NULL;
    s->bytes = NULL;
    s->len = s->len2 = 0;
}
