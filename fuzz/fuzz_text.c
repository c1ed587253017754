// libFuzzer harness: text tables and gzip. The first byte picks the path: a label/text table
// (TSV or CSV) with fixed classes, its class discovery, or the ListOps parser; a gzip input is
// inflated first (capped at 1 MiB). Beyond "no crash, no leak, no UB" it checks the loaders'
// promises and aborts when one breaks: success means > 0 samples, labels and ids in range,
// lengths within max_len; failure means a reason was written and nothing was handed out.
// Build: make fuzz; run: build/fuzz/fuzz_text CORPUS_DIR.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/gz.h"
#include "loaders/listops.h"
#include "loaders/text.h"
#include "loaders/tokenizer.h"

static void check(int rc, const SeqSet *s, const char *err, size_t max_len) {
    if (rc != MB_OK) {
        if (err[0] == '\0' || s->items || s->n || s->class_names) abort();
        return;
    }
    if (s->n == 0 || s->n_classes == 0 || s->vocab == 0 || !s->class_names) abort();
    for (size_t i = 0; i < s->n; i++) {
        const Sequence *q = &s->items[i];
        if (q->label < 0 || (size_t)q->label >= s->n_classes || q->len == 0 || !q->ids) abort();
        if (max_len && q->len > max_len) abort();
        for (size_t t = 0; t < q->len; t++)
            if (seq_id(q, t) <= 0 || (size_t)seq_id(q, t) >= s->vocab) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned mode = data[0];
    const unsigned char *buf = data + 1;
    size_t n = size - 1;
    unsigned char *inflated = NULL;
    char err[512] = "";
    if (gz_is_gzip(buf, n)) {
        size_t m;
        int rc = gz_inflate(buf, n, (size_t)1 << 20, &inflated, &m, err, sizeof err);
        if (rc != MB_OK) {
            if (err[0] == '\0' || inflated) abort();
            return 0;
        }
        if (inflated[m] != 0) abort();
        buf = inflated;
        n = m;
        err[0] = 0;
    }
    static const char *const classes[] = {"neg", "pos", "other"};
    size_t max_len = (mode & 4) ? 16 : 0;
    SeqSet s;
    memset(&s, 0, sizeof s);
    int rc;
    switch (mode & 3) {
    case 0:
    case 1:
        rc = text_parse_table("<fuzz>", buf, n, (mode & 1) ? ',' : '\t', classes, 3, max_len, &s, err, sizeof err);
        check(rc, &s, err, max_len);
        seqset_free(&s);
        break;
    case 2: {
        char **names = NULL;
        size_t k = 0;
        rc = text_table_classes("<fuzz>", buf, n, (mode & 8) ? ',' : '\t', &names, &k, err, sizeof err);
        if (rc == MB_OK && (k == 0 || !names)) abort();
        if (rc != MB_OK && (err[0] == '\0' || names)) abort();
        for (size_t i = 0; i < k; i++) free(names[i]);
        free(names);
        break;
    }
    default:
        rc = listops_parse("<fuzz>", buf, n, (mode >> 3) & 1, max_len, (mode & 16) ? 3 : 0, &s, err, sizeof err);
        check(rc, &s, err, max_len);
        if (rc == MB_OK && s.vocab != LO_VOCAB) abort();
        seqset_free(&s);
        break;
    }
    mem_free(inflated);
    return 0;
}
