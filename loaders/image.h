// Image datasets through stb_image: folder-per-class and CIFAR-10 binary.   -- loaders/image.c
// (stb_image is Debian's libstb-dev 2.27; see loaders/stb_impl.c for the faults fuzzing found in it.)
// Promises: PNG, JPEG and BMP of any channel count (1-4, 8 or 16 bit; 16-bit is reduced to 8) are
// decoded; each image's size is checked against the limits below from its header (stbi_info)
// BEFORE any pixel is decoded; a file cut short is refused with the byte offset where it ends
// (the container is walked first: PNG chunks to IEND, JPEG segments to EOI, BMP pixel array
// size), not silently padded the way stb_image pads JPEG/BMP data. Tokens come from tok_image:
// grayscale -> one id per pixel (vocab 256), else RGB patches of DataSpec.frame pixels per side
// (frame 0 means 1). SPLIT_VAL reads <split>="val" when that folder exists, else the test split
// (neither the CIFAR-10 folders nor the binary release has a validation split).
#ifndef MAELRE_IMAGE_H
#define MAELRE_IMAGE_H
#include <stddef.h>
#include "loaders/dataset.h"

#define IMAGE_MAX_SIDE 16384                 // pixels per side
#define IMAGE_MAX_PIXELS ((size_t)1 << 24)   // width * height: 16 Mpx (4096 x 4096)
#define IMAGE_MAX_FILE_BYTES ((size_t)64 << 20)

// source "cifar10"/"images": <root>/<path>/<split>/<class>/<file>, class = index in the sorted
// union of the class folders of every split folder present (so train and test agree); every
// regular, non-hidden file in a class folder must be an image. "cifar10-bin":
// <root>/<path>/{data_batch_1..5.bin | test_batch.bin} (or the tarball's cifar-10-batches-bin/
// inside it), class names from batches.meta.txt when present, else CIFAR-10's ten names.
int image_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen);

// One decoded image, h x w x channels interleaved 8-bit (pixels owned by stb_image).
typedef struct {
    unsigned char *pix;
    size_t w, h, channels;
} Image;

// Decodes one PNG/JPEG/BMP held in memory. `name` only labels messages ("<name>:<offset>: ...").
// Order: format sniffed from the magic bytes, container checked for being cut short, size read
// from the header and checked against the limits, then decoded. MB_ERR_DATA on any bad input.
int image_decode(const char *name, const unsigned char *bytes, size_t n, Image *out, char *err,
                 size_t errlen);
void image_free(Image *img);

#endif
