// Result tables: named columns, one row per (task, method) or (method, seq_len), written as
// CSV and JSON whole or not at all (temp file in the same folder, fsync, rename). Numbers are
// printed exactly (%.17g, integers without a fraction); strings are CSV-quoted when needed.
// Columns added with table_set_json are JSON-only (e.g. the full config).   -- results/table.c
#ifndef MAELRE_TABLE_H
#define MAELRE_TABLE_H
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct Table Table;

Table *table_new(const char *const *columns, size_t n_columns);  // CSV column order
void table_free(Table *t);
size_t table_add_row(Table *t);                                   // returns the row index
size_t table_rows(const Table *t);
int table_set_str(Table *t, size_t row, const char *column, const char *value);
int table_set_num(Table *t, size_t row, const char *column, double value);
int table_set_json(Table *t, size_t row, const char *column, cJSON *owned);  // JSON-only column
const char *table_get_str(const Table *t, size_t row, const char *column);  // NULL if unset/numeric
int table_get_num(const Table *t, size_t row, const char *column, double *out);  // 0 if numeric
// Columns in order (CSV columns and JSON-only ones), for code that walks a table it did not build.
size_t table_columns(const Table *t);
const char *table_column(const Table *t, size_t i);              // NULL past the end
int table_column_is_json(const Table *t, size_t i);              // 1 for a JSON-only column
const cJSON *table_get_json(const Table *t, size_t row, const char *column);  // NULL if not JSON
size_t table_row_line(const Table *t, size_t row);  // line a row read by table_read_csv starts on; else 0
// Reading back what table_write_* wrote (report merges runs): MB_OK or MB_ERR_DATA/IO.
int table_read_csv(Table **out, const char *path, char *err, size_t errlen);
int table_read_json(Table **out, const char *path, char *err, size_t errlen);

int table_write_csv(const Table *t, const char *path, char *err, size_t errlen);
int table_write_json(const Table *t, const char *path, char *err, size_t errlen);  // array of objects
// Any bytes, atomically (used by the writers above and by plots/markdown).
int write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

#endif
