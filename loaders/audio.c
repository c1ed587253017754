// PLACEHOLDER until its owner lands it: refuses rather than pretending.
#include "loaders/audio.h"
#include "core/status.h"
int audio_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                      char *err, size_t errlen) {
    (void)spec; (void)data_root; (void)split; (void)out;
    return mb_fail(err, errlen, MB_ERR_INTERNAL, "audio loader not built yet");
}
