// The shared tokenizer/patcher (SPEC §2, §7): every modality's raw samples become a Sequence
// here, so all loaders feed core/ the same way. Truncation to max_len happens here (0 = none).
// Returns MB_OK or MB_ERR_NOMEM/MB_ERR_DATA with a reason.          -- loaders/tokenizer.c
#ifndef MAELRE_TOKENIZER_H
#define MAELRE_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "loaders/dataset.h"

#define TOK_BYTE_VOCAB 257   // id = byte + 1, 0 reserved
#define TOK_PIXEL_VOCAB 256  // one id per 8-bit intensity

int tok_bytes(Sequence *out, const unsigned char *bytes, size_t n, size_t max_len,
              char *err, size_t errlen);
// Discrete ids already mapped by the caller (e.g. ListOps words), copied and truncated; stored
// in the narrowest of uint8_t / uint16_t / int32_t that holds the largest of them.
int tok_ids(Sequence *out, const int32_t *ids, size_t n, size_t max_len, char *err, size_t errlen);
// Time series stored time-major (len x dims); z-normalised per series and per dimension
// (a constant dimension becomes 0); one token per time step, feat_dim = dims.
int tok_series(Sequence *out, const float *vals, size_t len, size_t dims, size_t max_len,
               char *err, size_t errlen);
// Mono waveform in [-1, 1]; max_len counts TOKENS; tokens are frames of `frame` samples
// (feat_dim = frame); a last partial frame is zero-filled inside the frame.
int tok_audio(Sequence *out, const float *samples, size_t n, size_t frame, size_t max_len,
              char *err, size_t errlen);
// 8-bit image, h x w x channels interleaved. grayscale: one id per pixel (ITU-R 601 luma),
// vocab 256. Otherwise RGB patches of patch x patch pixels, row-major patch order, values / 255,
// feat_dim = patch*patch*3 (gray input replicated to 3 channels).
int tok_image(Sequence *out, const unsigned char *pix, size_t w, size_t h, size_t channels,
              int grayscale, size_t patch, size_t max_len, char *err, size_t errlen);
void sequence_free(Sequence *s);

#endif
