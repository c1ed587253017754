// Pathfinder / Path-X datasets in LRA's released layout (SPEC §10.1), whoever made them (LRA's
// release or loaders/pathfinder_gen.c): <dir>/metadata/<batch>.npy, text lines
// "imgs/<batch> sample_<i>.png <i> <label> ..." (field 3 the label, 0/1), images at
// <dir>/<field 0>/<field 1>, 8-bit grayscale PNG, one token per pixel (id = intensity, vocab 256;
// 0 is a real pixel, not padding). A zero-byte image is skipped (LRA's release has one).
// Splits: the rows of every metadata file (files in numeric order, lines in order) are shuffled
// with a fixed seed (PF_SPLIT_SEED) and cut 80/10/10 into train/val/test; DataSpec.limit then
// picks a class-balanced subset of the split before any image is read.   -- loaders/pathfinder.c
#ifndef MAELRE_PATHFINDER_H
#define MAELRE_PATHFINDER_H
#include <stddef.h>
#include "loaders/dataset.h"

#define PF_SPLIT_SEED 20180521u   // fixed: the same split for every run and every method

// The folder holding DataSpec.path: <root>/<path>, else <root>/lra_release/<path>. MB_OK when
// one has a metadata/ folder and no PARTIAL marker (an interrupted generation); otherwise
// MB_ERR_DATA saying what is missing or incomplete (dir gets <root>/<path> then).
int pathfinder_find(const char *root, const char *path, char *dir, size_t n, char *err, size_t errlen);

// source "pathfinder": one split. Bad metadata (too few fields, a label not 0/1, a path with
// "..") is MB_ERR_DATA "<file>:<line>: ..."; a bad or missing image names the image.
int pathfinder_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                            char *err, size_t errlen);

#endif
