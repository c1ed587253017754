// Audio datasets through libsndfile (+ libsamplerate when rates differ).    -- loaders/audio.c
// Promises: whatever libsndfile decodes among WAV (RIFF/RIFX/RF64: PCM 8/16/24/32-bit, float,
// and the other codecs libsndfile reads inside WAV), FLAC, AIFF and AU becomes mono (channels averaged) float samples in [-1, 1] at the task's
// rate (DataSpec.sample_rate, 0 means 8000 Hz), resampled with libsamplerate (sinc, medium
// quality) when the file's rate differs. Tokens are frames of DataSpec.frame samples (0 means 4)
// through tok_audio, at most DataSpec.max_len of them; only the samples those tokens need are
// decoded. A WAV whose chunks run past the end of the file is refused (libsndfile alone would
// quietly read what is there), as is a stream that decodes fewer frames than its header says.
#ifndef MAELRE_AUDIO_H
#define MAELRE_AUDIO_H
#include <stddef.h>
#include "loaders/dataset.h"

#define AUDIO_DEFAULT_RATE 8000
#define AUDIO_DEFAULT_FRAME 4
#define AUDIO_MAX_FILE_BYTES ((size_t)256 << 20)
#define AUDIO_MAX_SAMPLES ((size_t)1 << 26)   // per clip, mono, before and after resampling

// source "fsdd": <root>/<spec->path>/recordings/<digit>_<speaker>_<take>.wav (or .flac), label =
// digit, takes 0-4 test, 5-49 (and above) train. SPLIT_VAL returns the test split: FSDD has no
// official validation split. Files with other extensions are ignored; a .wav/.flac whose name does
// not follow the pattern is refused.
int audio_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen);

// Decodes one audio file held in memory (read through libsndfile's virtual I/O) to mono samples
// at `rate` Hz (0 keeps the file's rate), at most max_samples of them (0 = all, up to
// AUDIO_MAX_SAMPLES). *samples comes from mem_alloc (free with mem_free), *n_samples > 0 on
// success; *file_rate (may be NULL) gets the file's own rate. `name` labels messages.
int audio_decode(const char *name, const unsigned char *bytes, size_t n, int rate,
                 size_t max_samples, float **samples, size_t *n_samples, int *file_rate,
                 char *err, size_t errlen);

#endif
