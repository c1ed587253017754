// libFuzzer harness: UEA/sktime .ts text -> ts_parse_ts. Beyond "no crash, no leak, no UB" it
// checks the promises and aborts when one breaks: success means > 0 series, labels within the
// declared classes, feat_dim > 0, every value finite and within max_len; failure means a reason.
// Build: make fuzz; run: build/fuzz/fuzz_ts CORPUS_DIR.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/status.h"
#include "loaders/timeseries.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512] = "";
    SeqSet s;
    size_t max_len = (size & 1) ? 8 : 0;
    int rc = ts_parse_ts("<fuzz>", data, size, max_len, &s, err, sizeof err);
    if (rc != MB_OK) {
        if (err[0] == '\0' || s.items || s.n || s.class_names) abort();
        return 0;
    }
    if (s.n == 0 || s.feat_dim == 0 || s.n_classes == 0 || s.vocab != 0) abort();
    for (size_t i = 0; i < s.n; i++) {
        const Sequence *q = &s.items[i];
        if (q->label < 0 || (size_t)q->label >= s.n_classes || q->len == 0 || !q->feats || q->ids) abort();
        if (max_len && q->len > max_len) abort();
        for (size_t k = 0; k < q->len * s.feat_dim; k++)
            if (!isfinite(q->feats[k])) abort();
    }
    seqset_free(&s);
    return 0;
}
