// Audio datasets through libsndfile (+ libsamplerate when rates differ).    -- loaders/audio.c
#ifndef MAELRE_AUDIO_H
#define MAELRE_AUDIO_H
#include "loaders/dataset.h"
// source "fsdd": <root>/<spec->path>/recordings/<digit>_<speaker>_<take>.wav, takes 0-4 test.
int audio_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen);
#endif
