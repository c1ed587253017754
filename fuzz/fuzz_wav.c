// libFuzzer harness: one audio file in memory -> the audio loader's decode path (RIFF walk,
// libsndfile through sf_open_virtual, mixdown, libsamplerate to 8 kHz) -> tok_audio.
// Beyond "no crash, no leak, no UB", it checks the loader's promises and aborts when one breaks:
// success means > 0 samples, all finite and in [-1, 1], at most the requested count; failure
// means a reason was written. Build: make fuzz; run: build/fuzz/fuzz_wav CORPUS (fuzz/README.md).
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/audio.h"
#include "loaders/tokenizer.h"

#define FUZZ_MAX_SAMPLES 8000  // one FSDD second: bounds the resampler's work per input

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *s = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = audio_decode("<fuzz>", data, size, 8000, FUZZ_MAX_SAMPLES, &s, &n, NULL, err, sizeof err);
    if (rc != MB_OK) {
        if (err[0] == '\0' || s != NULL) abort();
        return 0;
    }
    if (n == 0 || n > FUZZ_MAX_SAMPLES || !s) abort();
    for (size_t i = 0; i < n; i++)
        if (!isfinite(s[i]) || s[i] < -1.0f || s[i] > 1.0f) abort();
    Sequence seq;
    if (tok_audio(&seq, s, n, 4, 0, err, sizeof err) != MB_OK) abort();
    if (seq.len != (n + 3) / 4) abort();
    sequence_free(&seq);
    mem_free(s);
    return 0;
}
