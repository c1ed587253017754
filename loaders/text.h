// Text datasets (SPEC §7 lra-text): label + text tables (TSV, or CSV with RFC 4180 quotes;
// plain or gzip; header optional) and the aclImdb folder layout, tokenised as bytes
// (id = byte + 1, 0 reserved). Every malformed input is MB_ERR_DATA naming file and line.
//                                                                          -- loaders/text.c
#ifndef MAELRE_TEXT_H
#define MAELRE_TEXT_H
#include <stddef.h>
#include "loaders/dataset.h"

// One row of a table: the label and text fields, unquoted, with the line the row starts on.
typedef int (*TextRowFn)(void *ctx, const char *file, size_t line, const char *label,
                         size_t label_n, const unsigned char *text, size_t text_n,
                         char *err, size_t errlen);

// Walks a 2-column table in memory. delim '\t' (no quoting: LRA/IMDb style) or ',' (fields may
// be quoted with "..." and "" for a quote, newlines allowed inside quotes). A leading UTF-8 BOM
// and completely empty lines are skipped; CRLF is fine. Header: the first row is one when both
// its fields are known column names (label/target/class/y/sentiment/category and
// text/source/review/sentence/content/input); its names then choose the columns. Without a
// header the label is the first column unless only the second one holds an integer (LRA's
// Source<TAB>Target). Errors: empty input, a row without exactly 2 fields, an unterminated quote.
// `file` only names the input in messages.
int text_table_walk(const char *file, const unsigned char *buf, size_t n, char delim,
                    TextRowFn fn, void *ctx, char *err, size_t errlen);

// The same walk over a file (plain or gzip) read a piece of whole rows at a time (4 MiB, more
// while one row is longer), so the file's text is never held whole. Same rows, lines and errors
// as text_table_walk over gz_read_file's buffer; `path` names the file in messages.
int text_table_walk_file(const char *path, char delim, TextRowFn fn, void *ctx, char *err, size_t errlen);

// A table -> SeqSet of byte tokens. Labels are class names from `classes` (exact match) or
// integers in [0, n_classes); anything else is an error naming the line. `out` gets the classes.
int text_parse_table(const char *file, const unsigned char *buf, size_t n, char delim,
                     const char *const *classes, size_t n_classes, size_t max_len, SeqSet *out,
                     char *err, size_t errlen);

// The distinct labels of a table, as classes: all integers -> "0".."max"; otherwise the distinct
// strings sorted by strcmp. *names: malloc'd array of malloc'd strings (free both).
int text_table_classes(const char *file, const unsigned char *buf, size_t n, char delim,
                       char ***names, size_t *n_names, char *err, size_t errlen);

// source "imdb": <root>/<path>/{train,test}.tsv[.gz], else the aclImdb layout
// ({train,test}/{neg,pos}/*.txt) at <root>/<path>/, <root>/<path>/aclImdb/ or <root>/aclImdb/.
// Classes neg (0), pos (1). There is no validation split: SPLIT_VAL gives an empty set.
int text_imdb_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                   char *err, size_t errlen);

// source "tsv": <root>/<path>/{train,val,test}.{tsv,csv}[.gz]; classes from the train file; a
// missing val file gives an empty set.
int text_tsv_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                  char *err, size_t errlen);

#endif
