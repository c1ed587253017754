// Time-series datasets (SPEC §7 ts-<name>): UEA/sktime .ts files and UCR .tsv/.csv tables, one
// token per time step (all dimensions), z-normalised per series and dimension (tok_series).
// Missing values ('?' or NaN) are filled by linear interpolation between the nearest observed
// values of the same dimension; a leading or trailing gap copies the nearest observed value; a
// dimension with no observed value at all becomes 0. In UCR tables, trailing NaNs are padding
// (the series is shorter), not missing values.                          -- loaders/timeseries.c
#ifndef MAELRE_TIMESERIES_H
#define MAELRE_TIMESERIES_H
#include <stddef.h>
#include "loaders/dataset.h"

// .ts from memory: '#' comments, '@key value' header lines (keys in any case), '@data', then one
// series per line, dimensions separated by ':', values by ',', the class label last. Classes are
// the @classLabel list in its order. Refused (MB_ERR_DATA, "<file>:<line>: ..."): no @data or
// @classLabel, @timeStamps true, a dimension count differing from @dimensions/@univariate (or
// from the first series), dimensions of one series with different lengths, a length differing
// from @seriesLength when @equalLength is true, a value that is not a number, an undeclared label.
int ts_parse_ts(const char *file, const unsigned char *buf, size_t n, size_t max_len, SeqSet *out,
                char *err, size_t errlen);

// UCR table from memory: label first, then the values, separated by delim ('\t' or ','); an
// optional header row (a row whose values are not numbers). Univariate. classes NULL: the
// distinct labels of this file (numeric order when all are numbers, else strcmp order);
// otherwise labels must match one of them (as text, or as equal numbers). Ragged rows refused.
int ts_parse_ucr(const char *file, const unsigned char *buf, size_t n, char delim,
                 const char *const *classes, size_t n_classes, size_t max_len, SeqSet *out,
                 char *err, size_t errlen);

// source "ucr", path "ucr/<Name>": <Name> matched case-insensitively against the folders of
// <root>/ucr; files <Folder>_TRAIN / _TEST with .ts, .tsv or .csv (case-insensitive). No
// validation split: SPLIT_VAL gives an empty set (with the classes and feat_dim).
int ts_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                    char *err, size_t errlen);

// Folder names under <root>/ucr that hold a TRAIN file, sorted. Free each and the array (free).
// A missing <root>/ucr is not an error: *n = 0.
int ts_list_ucr(const char *data_root, char ***names, size_t *n, char *err, size_t errlen);

// The folder under <root>/ucr whose name equals `name` ignoring case, into folder (cap bytes).
// MB_ERR_DATA naming the folder searched when there is none.
int ts_resolve_ucr(const char *data_root, const char *name, char *folder, size_t cap,
                   char *err, size_t errlen);

#endif
