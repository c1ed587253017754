// LRA Retrieval (SPEC §10.2): the ACL Anthology Network pairs of LRA's release,
// new_aan_pairs.{train,eval,test}.tsv. Each row: label (0/1, maybe written as a float such as
// "1.0"), id1, id2, text1, text2, tab-separated, no header, no quoting (quotes are literal
// bytes; LRA's texts are Python bytes literals like b'...' and are tokenised as written, as
// LRA's byte encoder does). Each text: its first max_len bytes (4,000 in the task), id = byte + 1.
// A pair is one Sequence: ids of text1 then text2 (len = both, len2 = text2's), stored one byte
// per token in Sequence.bytes; the SeqSet has pairs = 1.              -- loaders/aan.c
#ifndef MAELRE_AAN_H
#define MAELRE_AAN_H
#include <stddef.h>
#include <stdint.h>
#include "loaders/dataset.h"

// The folder holding the three files: <root>/<path>/ (the task's path, "aan"), else
// <root>/lra_release/tsv_data/, else <root>/lra_release/lra_release/tsv_data/ (the release
// unpacked one level deeper). Writes the first that has new_aan_pairs.train.tsv into buf and
// returns 1; 0 (buf = the first candidate) when none has.
int aan_find_dir(const char *data_root, const char *path, char *buf, size_t n);

// source "aan": one split (train, eval = SPLIT_VAL, test). spec->limit > 0 keeps a class-balanced
// subset chosen from the labels of the whole file (media_pick_balanced) in file order, holding
// only those texts in memory. Errors (MB_ERR_DATA, "<file>:<line>: ..."): a row without exactly
// five fields (a file cut short mid-row included), a label that is not 0 or 1, an empty text;
// a missing file says where LRA's release is and where to put it. Completely empty lines and a
// final line without newline are fine; a trailing \r is dropped (CRLF).
int aan_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                     char *err, size_t errlen);

// Writes <dir>/new_aan_pairs.{train,eval,test}.tsv with n_train, n_eval, n_test generated pairs
// of a learnable relation (for smoke tests without the real data): each document is random
// lowercase words of length len_min..len_max bytes with one topic marker word "T<k>" (k < 8)
// placed at a random position; label 1 when both documents carry the same marker. Labels are
// balanced, written as "1.0"/"0.0" like LRA's. Same seed, same bytes. MB_OK or MB_ERR_IO.
int aan_write_synthetic(const char *dir, size_t n_train, size_t n_eval, size_t n_test,
                        size_t len_min, size_t len_max, uint64_t seed, char *err, size_t errlen);

#endif
