// Image datasets through stb_image: folder-per-class and CIFAR-10 binary.   -- loaders/image.c
#ifndef MAELRE_IMAGE_H
#define MAELRE_IMAGE_H
#include "loaders/dataset.h"
// source "cifar10"/"images": <root>/<path>/<split>/<class>/<file>; "cifar10-bin": data_batch_*.bin.
int image_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen);
#endif
