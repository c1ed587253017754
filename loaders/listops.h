// ListOps (SPEC §7 lra-listops): LRA's generator grammar and file format, and its loader.
// Grammar (google-research/long-range-arena lra_benchmarks/data/listops.py): a node below depth
// 10 is an operator with probability 0.25 (else a digit 0-9) with 2-10 arguments; operators MIN,
// MAX, MED (median; of an even count, the mean of the middle two, truncated) and SM (sum mod 10);
// a tree is kept when it has 501-1999 tokens not counting parentheses, and every tree is
// distinct. Files: <dir>/basic_{train,val,test}.tsv, header "Source<TAB>Target", sources written
// the way LRA's to_string writes them: "( ( ( [MAX 2 ) 9 ) ] )" is MAX(2, 9).
//                                                                        -- loaders/listops.c
#ifndef MAELRE_LISTOPS_H
#define MAELRE_LISTOPS_H
#include <stddef.h>
#include <stdint.h>
#include "loaders/dataset.h"

// Fixed vocabulary: 0 pad, 1-10 digits 0-9, then [MIN [MAX [MED [SM ] ( ).
enum { LO_PAD = 0, LO_DIGIT0 = 1, LO_MIN = 11, LO_MAX, LO_MED, LO_SM, LO_END, LO_LPAREN, LO_RPAREN, LO_VOCAB };
#define LISTOPS_MIN_LEN 501    // tokens without parentheses, inclusive
#define LISTOPS_MAX_LEN 1999
#define LISTOPS_MAX_DEPTH 10
#define LISTOPS_MAX_ARGS 10

int listops_word_id(const char *w, size_t n);  // -1 when w is not in the vocabulary

typedef struct {
    size_t n, len_min, len_max, len_median;  // lengths in tokens without parentheses
    double len_mean;
    size_t label_count[10];
} ListopsSplitStats;

typedef struct {
    ListopsSplitStats split[3];  // train, val, test
    size_t trees_tried;          // trees drawn, kept or not (length filter, duplicates)
    size_t duplicates;
} ListopsStats;

// Writes <dir>/basic_{train,val,test}.tsv (creating dir), deterministic per seed. All three
// files appear together or none does (temporary files, renamed at the end). stats may be NULL.
// MB_ERR_IO when dir cannot be created or written.
int listops_generate(const char *dir, uint64_t seed, size_t n_train, size_t n_val, size_t n_test,
                     ListopsStats *stats, char *err, size_t errlen);

// Value of an expression given as words (parentheses are ignored), e.g. "[MED 1 2 3 4 ]" = 2.
// MB_ERR_DATA with the word index when it is malformed.
int listops_eval(const char *src, size_t n, int *value, char *err, size_t errlen);

// Parses a ListOps TSV from memory. Each source must be a well-formed expression whose value is
// its Target (a damaged file is refused with its line). keep_parens 0 drops "(" and ")" (the
// PyTorch LRA reproductions' tokenisation: a tree of 501-1999 tokens then fits max length 2000);
// 1 keeps them. vocab = LO_VOCAB, classes "0".."9". limit > 0: only the rows DataSpec.limit
// picks (media_pick_balanced over the targets) are tokenised and checked.
int listops_parse(const char *file, const unsigned char *buf, size_t n, int keep_parens,
                  size_t max_len, size_t limit, SeqSet *out, char *err, size_t errlen);

// source "listops" (parentheses dropped) or "listops-parens": <root>/<path>/basic_<split>.tsv.
int listops_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                         char *err, size_t errlen);

#endif
