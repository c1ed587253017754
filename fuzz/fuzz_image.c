// libFuzzer harness: one image file in memory -> the image loader's decode path (magic sniffing,
// PNG/JPEG/BMP container walk, stbi_info size limit, stbi_load_from_memory) -> tok_image, both
// as grayscale ids and as 4x4 RGB patches. Beyond "no crash, no leak, no UB", it aborts when a
// promise breaks: a decoded image is within IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS with 1-4 channels,
// grayscale ids are in [0, 256), and a failure always comes with a reason.
#include <stdint.h>
#include <stdlib.h>
#include "core/status.h"
#include "loaders/image.h"
#include "loaders/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Image img;
    char err[512] = "";
    int rc = image_decode("<fuzz>", data, size, &img, err, sizeof err);
    if (rc != MB_OK) {
        if (err[0] == '\0' || img.pix != NULL) abort();
        return 0;
    }
    if (!img.pix || img.w == 0 || img.h == 0 || img.w > IMAGE_MAX_SIDE || img.h > IMAGE_MAX_SIDE ||
        img.w * img.h > IMAGE_MAX_PIXELS || img.channels < 1 || img.channels > 4)
        abort();
    Sequence seq;
    if (tok_image(&seq, img.pix, img.w, img.h, img.channels, 1, 1, 1024, err, sizeof err) != MB_OK) abort();
    for (size_t i = 0; i < seq.len; i++)
        if (seq_id(&seq, i) < 0 || seq_id(&seq, i) > 255) abort();
    sequence_free(&seq);
    if (tok_image(&seq, img.pix, img.w, img.h, img.channels, 0, 4, 256, err, sizeof err) != MB_OK) abort();
    sequence_free(&seq);
    image_free(&img);
    return 0;
}
