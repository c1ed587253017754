// libFuzzer harness: UCR tables (label first, then values; tab or comma) -> ts_parse_ucr, with
// the classes discovered from the input (first byte even) or fixed (odd). Aborts when a promise
// breaks: success means > 0 series, labels in range, finite values, lengths within max_len;
// failure means a reason and nothing handed out. Build: make fuzz; run: build/fuzz/fuzz_csv DIR.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/status.h"
#include "loaders/timeseries.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0];
    static const char *const classes[] = {"1", "2", "-1", "a"};
    char err[512] = "";
    SeqSet s;
    size_t max_len = (mode & 4) ? 8 : 0;
    int rc = ts_parse_ucr("<fuzz>", data + 1, size - 1, (mode & 2) ? ',' : '\t', (mode & 1) ? classes : NULL,
                          (mode & 1) ? 4 : 0, max_len, &s, err, sizeof err);
    if (rc != MB_OK) {
        if (err[0] == '\0' || s.items || s.n || s.class_names) abort();
        return 0;
    }
    if (s.n == 0 || s.feat_dim != 1 || s.n_classes == 0) abort();
    for (size_t i = 0; i < s.n; i++) {
        const Sequence *q = &s.items[i];
        if (q->label < 0 || (size_t)q->label >= s.n_classes || q->len == 0 || !q->feats) abort();
        if (max_len && q->len > max_len) abort();
        for (size_t k = 0; k < q->len; k++)
            if (!isfinite(q->feats[k])) abort();
    }
    seqset_free(&s);
    return 0;
}
