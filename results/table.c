// Result tables (results/table.h): cells are unset, a string, a number or (JSON-only columns) a
// cJSON tree. Decisions the header leaves open, made here:
// - Setting a column the table does not have appends it (CSV order: creation order, then first
//   use), so readers can build tables from whatever a file holds. A column is either a CSV column
//   or a JSON-only one; table_set_json on a CSV column (or a scalar on a JSON-only one) is refused.
// - Numbers are printed in the shortest of %.15g/%.16g/%.17g that reads back bit-exactly, so
//   integers have no fraction and every double round-trips. NaN/inf print as nan/inf in CSV;
//   JSON has no NaN, so there they are null (and read back unset). JSON numbers are printed by
//   us, not cJSON (whose %.15g is only epsilon-close).
// - CSV (RFC 4180, '\n' line ends): a string is quoted when it holds , " CR LF, leading/trailing
//   blanks, is empty, or would read back as a number; so on reading, an unquoted field that parses
//   as a number is a number, any other field a string, and an empty unquoted field unset.
// - JSON: an array of objects, every column in every object (unset -> null).
// - Table memory is bookkeeping, not model state: plain malloc, kept out of mem.h's peak count.
#include "results/table.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/status.h"

typedef enum { CELL_NONE, CELL_STR, CELL_NUM, CELL_JSON } CellKind;

typedef struct {
    CellKind kind;
    double num;
    char *str;
    cJSON *json;
} Cell;

typedef struct {
    char *name;
    int json_only;
} Column;

typedef struct {
    Cell *cells;  // cells[0..len) ; columns past len are unset
    size_t len;
    size_t line;  // 1-based line the row starts on when read from CSV; 0 otherwise
} Row;

struct Table {
    Column *cols;
    size_t ncols, capcols;
    Row *rows;
    size_t nrows, caprows;
};

// ---------------------------------------------------------------------------------------------
// Building and querying

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static void cell_clear(Cell *c) {
    free(c->str);
    cJSON_Delete(c->json);
    memset(c, 0, sizeof *c);
}

static long find_col(const Table *t, const char *name) {
    for (size_t i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i].name, name)) return (long)i;
    return -1;
}

static long add_col(Table *t, const char *name, int json_only) {
    if (t->ncols == t->capcols) {
        size_t cap = t->capcols ? 2 * t->capcols : 16;
        Column *c = realloc(t->cols, cap * sizeof *c);
        if (!c) return -1;
        t->cols = c;
        t->capcols = cap;
    }
    char *n = dup_str(name);
    if (!n) return -1;
    t->cols[t->ncols].name = n;
    t->cols[t->ncols].json_only = json_only;
    return (long)t->ncols++;
}

Table *table_new(const char *const *columns, size_t n_columns) {
    Table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    for (size_t i = 0; i < n_columns; i++) {
        if (!columns[i] || find_col(t, columns[i]) >= 0 || add_col(t, columns[i], 0) < 0) {
            table_free(t);
            return NULL;
        }
    }
    return t;
}

void table_free(Table *t) {
    if (!t) return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->rows[r].len; c++) cell_clear(&t->rows[r].cells[c]);
        free(t->rows[r].cells);
    }
    for (size_t c = 0; c < t->ncols; c++) free(t->cols[c].name);
    free(t->rows);
    free(t->cols);
    free(t);
}

size_t table_add_row(Table *t) {
    if (t->nrows == t->caprows) {
        size_t cap = t->caprows ? 2 * t->caprows : 16;
        Row *r = realloc(t->rows, cap * sizeof *r);
        if (!r) return SIZE_MAX;
        t->rows = r;
        t->caprows = cap;
    }
    t->rows[t->nrows].cells = NULL;
    t->rows[t->nrows].len = 0;
    t->rows[t->nrows].line = 0;
    return t->nrows++;
}

size_t table_rows(const Table *t) { return t->nrows; }

size_t table_row_line(const Table *t, size_t row) { return row < t->nrows ? t->rows[row].line : 0; }

size_t table_columns(const Table *t) { return t->ncols; }

const char *table_column(const Table *t, size_t i) { return i < t->ncols ? t->cols[i].name : NULL; }

int table_column_is_json(const Table *t, size_t i) { return i < t->ncols && t->cols[i].json_only; }

// The cell for (row, column), creating the column (with json_only) and growing the row as needed.
static Cell *cell_for_write(Table *t, size_t row, const char *column, int json_only, int *code) {
    *code = MB_ERR_USAGE;
    if (!t || !column || row >= t->nrows) return NULL;
    long c = find_col(t, column);
    if (c < 0) {
        c = add_col(t, column, json_only);
        if (c < 0) { *code = MB_ERR_NOMEM; return NULL; }
    } else if (t->cols[c].json_only != json_only) {
        return NULL;
    }
    Row *r = &t->rows[row];
    if ((size_t)c >= r->len) {
        size_t len = t->ncols;
        Cell *cells = realloc(r->cells, len * sizeof *cells);
        if (!cells) { *code = MB_ERR_NOMEM; return NULL; }
        memset(cells + r->len, 0, (len - r->len) * sizeof *cells);
        r->cells = cells;
        r->len = len;
    }
    return &r->cells[c];
}

static const Cell *cell_for_read(const Table *t, size_t row, const char *column) {
    if (!t || !column || row >= t->nrows) return NULL;
    long c = find_col(t, column);
    if (c < 0 || (size_t)c >= t->rows[row].len) return NULL;
    return &t->rows[row].cells[c];
}

int table_set_str(Table *t, size_t row, const char *column, const char *value) {
    int code;
    Cell *cell = cell_for_write(t, row, column, 0, &code);
    if (!cell) return code;
    char *s = NULL;
    if (value && !(s = dup_str(value))) return MB_ERR_NOMEM;
    cell_clear(cell);
    if (s) { cell->kind = CELL_STR; cell->str = s; }
    return MB_OK;
}

int table_set_num(Table *t, size_t row, const char *column, double value) {
    int code;
    Cell *cell = cell_for_write(t, row, column, 0, &code);
    if (!cell) return code;
    cell_clear(cell);
    cell->kind = CELL_NUM;
    cell->num = value;
    return MB_OK;
}

// Takes ownership of `owned` whatever happens (freed on error).
int table_set_json(Table *t, size_t row, const char *column, cJSON *owned) {
    int code;
    Cell *cell = cell_for_write(t, row, column, 1, &code);
    if (!cell) { cJSON_Delete(owned); return code; }
    cell_clear(cell);
    if (owned) { cell->kind = CELL_JSON; cell->json = owned; }
    return MB_OK;
}

const char *table_get_str(const Table *t, size_t row, const char *column) {
    const Cell *c = cell_for_read(t, row, column);
    return c && c->kind == CELL_STR ? c->str : NULL;
}

int table_get_num(const Table *t, size_t row, const char *column, double *out) {
    const Cell *c = cell_for_read(t, row, column);
    if (!c || c->kind != CELL_NUM) return MB_ERR_DATA;
    if (out) *out = c->num;
    return MB_OK;
}

const cJSON *table_get_json(const Table *t, size_t row, const char *column) {
    const Cell *c = cell_for_read(t, row, column);
    return c && c->kind == CELL_JSON ? c->json : NULL;
}

// ---------------------------------------------------------------------------------------------
// Growable byte buffer

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// ---------------------------------------------------------------------------------------------
// Numbers

// Shortest %.Ng (N = 15..17) that strtod reads back to the same bits.
static void fmt_num(char *out, size_t n, double v) {
    if (isnan(v)) { snprintf(out, n, "nan"); return; }
    if (isinf(v)) { snprintf(out, n, v > 0 ? "inf" : "-inf"); return; }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

// Whole string is a number (no surrounding blanks) -> 1 and *v.
static int parse_num(const char *s, double *v) {
    if (!*s || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        return 0;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (*end) return 0;
    *v = d;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// Atomic file write: temp file in the target's folder, write, fsync, rename; temp removed on error.

static atomic_uint tmp_counter;

int write_file_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    if (!path || !*path) return mb_fail(err, errlen, MB_ERR_USAGE, "write: empty output path");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 64);
    if (!tmp) return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
    // "<dir>/.<base>.tmp-<pid>-<n>": same folder (rename stays in one filesystem), hidden.
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        unsigned k = atomic_fetch_add(&tmp_counter, 1u);
        snprintf(tmp, plen + 64, "%.*s.%s.tmp-%ld-%u", (int)dirlen, path, path + dirlen,
                 (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                       path, strerror(e));
    }
    const char *p = data;
    size_t left = n;
    int e = 0;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        unlink(tmp);
        free(tmp);
        return mb_fail(err, errlen, MB_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    // Make the rename itself durable (best effort: some filesystems refuse fsync on a folder).
    if (dirlen) {
        tmp[0] = 0;
        snprintf(tmp, plen + 64, "%.*s", (int)dirlen, path);
    } else {
        snprintf(tmp, plen + 64, ".");
    }
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    return MB_OK;
}

// ---------------------------------------------------------------------------------------------
// CSV writer

static int csv_needs_quotes(const char *s) {
    if (!*s) return 1;  // "" is an empty string; an empty unquoted field is unset
    double v;
    if (parse_num(s, &v)) return 1;  // a string that looks like a number stays a string
    if (s[0] == ' ' || s[0] == '\t' || s[strlen(s) - 1] == ' ' || s[strlen(s) - 1] == '\t') return 1;
    return strpbrk(s, ",\"\r\n") != NULL;
}

static void csv_put_str(Buf *b, const char *s) {
    if (!csv_needs_quotes(s)) { buf_puts(b, s); return; }
    buf_put(b, "\"", 1);
    for (const char *q = s; *q; q++) {
        if (*q == '"') buf_put(b, "\"\"", 2);
        else buf_put(b, q, 1);
    }
    buf_put(b, "\"", 1);
}

int table_write_csv(const Table *t, const char *path, char *err, size_t errlen) {
    Buf b = {0};
    int first = 1;
    for (size_t c = 0; c < t->ncols; c++) {
        if (t->cols[c].json_only) continue;
        if (!first) buf_put(&b, ",", 1);
        csv_put_str(&b, t->cols[c].name);
        first = 0;
    }
    buf_put(&b, "\n", 1);
    for (size_t r = 0; r < t->nrows; r++) {
        first = 1;
        for (size_t c = 0; c < t->ncols; c++) {
            if (t->cols[c].json_only) continue;
            if (!first) buf_put(&b, ",", 1);
            first = 0;
            if (c >= t->rows[r].len) continue;
            const Cell *cell = &t->rows[r].cells[c];
            if (cell->kind == CELL_STR) {
                csv_put_str(&b, cell->str);
            } else if (cell->kind == CELL_NUM) {
                char num[64];
                fmt_num(num, sizeof num, cell->num);
                buf_puts(&b, num);
            }
        }
        buf_put(&b, "\n", 1);
    }
    if (b.oom) {
        free(b.p);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory formatting the table", path);
    }
    int rc = write_file_atomic(path, b.p, b.n, err, errlen);
    free(b.p);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// JSON writer

int table_write_json(const Table *t, const char *path, char *err, size_t errlen) {
    cJSON *arr = cJSON_CreateArray();
    int oom = !arr;
    for (size_t r = 0; !oom && r < t->nrows; r++) {
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToArray(arr, obj)) { cJSON_Delete(obj); oom = 1; break; }
        for (size_t c = 0; c < t->ncols; c++) {
            const Cell *cell = c < t->rows[r].len ? &t->rows[r].cells[c] : NULL;
            cJSON *v;
            if (!cell || cell->kind == CELL_NONE) v = cJSON_CreateNull();
            else if (cell->kind == CELL_STR) v = cJSON_CreateString(cell->str);
            else if (cell->kind == CELL_NUM && !isfinite(cell->num)) v = cJSON_CreateNull();
            else if (cell->kind == CELL_NUM) {
                // cJSON prints %.15g unless that is off by more than an epsilon: not exact.
                char num[64];
                fmt_num(num, sizeof num, cell->num);
                v = cJSON_CreateRaw(num);
            }
            else if (cJSON_IsNumber(cell->json) && isfinite(cell->json->valuedouble)) {
                char num[64];   // a bare number in a JSON-only column: exact as well
                fmt_num(num, sizeof num, cell->json->valuedouble);
                v = cJSON_CreateRaw(num);
            } else v = cJSON_Duplicate(cell->json, 1);
            if (!v || !cJSON_AddItemToObject(obj, t->cols[c].name, v)) {
                cJSON_Delete(v);
                oom = 1;
                break;
            }
        }
    }
    char *text = oom ? NULL : cJSON_Print(arr);
    cJSON_Delete(arr);
    if (!text) return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory formatting JSON", path);
    size_t n = strlen(text);
    // cJSON_Print has no trailing newline; files end with one.
    char *withnl = malloc(n + 2);
    if (!withnl) {
        cJSON_free(text);
        return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory formatting JSON", path);
    }
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    withnl[n + 1] = 0;
    cJSON_free(text);
    int rc = write_file_atomic(path, withnl, n + 1, err, errlen);
    free(withnl);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Readers

static int read_whole(const char *path, char **out, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return mb_fail(err, errlen, errno == ENOENT ? MB_ERR_DATA : MB_ERR_IO,
                           "%s: cannot open: %s", path, strerror(errno));
    Buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&b, chunk, got);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(b.p); return mb_fail(err, errlen, MB_ERR_IO, "%s: read error", path); }
    if (b.oom) { free(b.p); return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); }
    if (!b.p) buf_put(&b, "", 0);  // empty file: still a valid empty string
    if (b.oom) return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
    *out = b.p;
    *n = b.n;
    return MB_OK;
}

typedef struct {
    char *text;
    int quoted;
} Field;

typedef struct {
    Field *f;
    size_t n, cap;
} Record;

static void record_clear(Record *r) {
    for (size_t i = 0; i < r->n; i++) free(r->f[i].text);
    r->n = 0;
}

static int record_push(Record *r, Buf *field, int quoted) {
    if (field->oom) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        Field *f = realloc(r->f, cap * sizeof *f);
        if (!f) return 0;
        r->f = f;
        r->cap = cap;
    }
    char *s = field->p ? field->p : dup_str("");
    if (!s) return 0;
    r->f[r->n].text = s;
    r->f[r->n].quoted = quoted;
    r->n++;
    *field = (Buf){0};
    return 1;
}

// Parses one record starting at *pos; *line is the 1-based line the record starts on and is
// advanced past it. Returns MB_OK, or an error naming the file and line.
static int csv_record(const char *path, const char *s, size_t n, size_t *pos, size_t *line,
                      Record *rec, char *err, size_t errlen) {
    size_t i = *pos, start_line = *line;
    Buf field = {0};
    int quoted = 0;
    record_clear(rec);
    for (;;) {
        // Start of a field.
        quoted = 0;
        if (i < n && s[i] == '"') {
            quoted = 1;
            i++;
            size_t qline = *line;
            for (;;) {
                if (i >= n) {
                    free(field.p);
                    return mb_fail(err, errlen, MB_ERR_DATA,
                                   "%s:%zu: quoted field never closed (missing '\"')", path, qline);
                }
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') { buf_put(&field, "\"", 1); i += 2; continue; }
                    i++;
                    break;
                }
                if (s[i] == '\n') (*line)++;
                if (s[i] == 0) {
                    free(field.p);
                    return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: NUL byte in a field", path, *line);
                }
                buf_put(&field, s + i, 1);
                i++;
            }
            if (i < n && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                && !(s[i] == '\r' && i + 1 == n)) {
                free(field.p);
                return mb_fail(err, errlen, MB_ERR_DATA,
                               "%s:%zu: unexpected character after a closing quote", path, *line);
            }
        } else {
            size_t from = i;
            while (i < n && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
                if (s[i] == '"') {
                    free(field.p);
                    return mb_fail(err, errlen, MB_ERR_DATA,
                                   "%s:%zu: '\"' inside an unquoted field (quote the field and double "
                                   "the quote)", path, *line);
                }
                if (s[i] == 0) {
                    free(field.p);
                    return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: NUL byte in a field", path, *line);
                }
                i++;
            }
            buf_put(&field, s + from, i - from);
            if (i < n && s[i] == '\r' && !(i + 1 < n && s[i + 1] == '\n') && i + 1 != n) {
                free(field.p);
                return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: bare carriage return", path, *line);
            }
        }
        if (!record_push(rec, &field, quoted)) {
            free(field.p);
            return mb_fail(err, errlen, MB_ERR_NOMEM, "%s:%zu: out of memory", path, start_line);
        }
        if (i >= n) break;
        if (s[i] == ',') { i++; continue; }
        if (s[i] == '\r') i++;
        if (i < n && s[i] == '\n') i++;
        (*line)++;
        break;
    }
    *pos = i;
    return MB_OK;
}

static int record_is_blank(const Record *r) { return r->n == 1 && !r->f[0].quoted && !r->f[0].text[0]; }

int table_read_csv(Table **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    char *s;
    size_t n;
    int rc = read_whole(path, &s, &n, err, errlen);
    if (rc) return rc;
    size_t pos = 0, line = 1;
    if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) pos = 3;  // UTF-8 byte-order mark
    Record rec = {0};
    Table *t = NULL;
    if (pos >= n) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:1: empty file, expected a header line", path);
        goto done;
    }
    rc = csv_record(path, s, n, &pos, &line, &rec, err, errlen);
    if (rc) goto done;
    t = table_new(NULL, 0);
    if (!t) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (size_t c = 0; c < rec.n; c++) {
        if (!rec.f[c].text[0]) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:1: column %zu has an empty name", path, c + 1);
            goto done;
        }
        if (find_col(t, rec.f[c].text) >= 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:1: column '%s' appears twice", path,
                         rec.f[c].text);
            goto done;
        }
        if (add_col(t, rec.f[c].text, 0) < 0) {
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    size_t ncols = t->ncols;
    while (pos < n) {
        size_t rec_line = line;
        rc = csv_record(path, s, n, &pos, &line, &rec, err, errlen);
        if (rc) goto done;
        if (ncols > 1 && record_is_blank(&rec)) continue;  // tolerate blank lines
        if (rec.n != ncols) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: %zu field%s, but the header has %zu",
                         path, rec_line, rec.n, rec.n == 1 ? "" : "s", ncols);
            goto done;
        }
        size_t r = table_add_row(t);
        if (r == SIZE_MAX) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
        t->rows[r].line = rec_line;
        for (size_t c = 0; c < ncols; c++) {
            const Field *f = &rec.f[c];
            double v;
            int set = MB_OK;
            if (f->quoted) set = table_set_str(t, r, t->cols[c].name, f->text);
            else if (!f->text[0]) continue;
            else if (parse_num(f->text, &v)) set = table_set_num(t, r, t->cols[c].name, v);
            else set = table_set_str(t, r, t->cols[c].name, f->text);
            if (set) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
        }
    }
    rc = MB_OK;
done:
    record_clear(&rec);
    free(rec.f);
    free(s);
    if (rc) table_free(t);
    else *out = t;
    return rc;
}

int table_read_json(Table **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    char *s;
    size_t n;
    int rc = read_whole(path, &s, &n, err, errlen);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    Table *t = NULL;
    if (!root) {
        // cJSON reports where it stopped: turn that into a line number.
        size_t off = end && end >= s && end <= s + n ? (size_t)(end - s) : 0, line = 1;
        for (size_t i = 0; i < off; i++) line += s[i] == '\n';
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: malformed JSON (byte %zu)", path, line, off);
        goto done;
    }
    for (const char *q = end; q && q < s + n; q++) {
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
            size_t off = (size_t)(q - s), line = 1;
            for (size_t i = 0; i < off; i++) line += s[i] == '\n';
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: trailing data after the JSON value", path, line);
            goto done;
        }
    }
    if (!cJSON_IsArray(root)) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: expected an array of objects (one per row)", path);
        goto done;
    }
    t = table_new(NULL, 0);
    if (!t) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
    // Pass 1: columns in order of first appearance; JSON-only if any value is not a scalar.
    size_t idx = 0;
    for (const cJSON *o = root->child; o; o = o->next, idx++) {
        if (!cJSON_IsObject(o)) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: element %zu of the array is not an object",
                         path, idx);
            goto done;
        }
        for (const cJSON *v = o->child; v; v = v->next) {
            int scalar = cJSON_IsNumber(v) || cJSON_IsString(v) || cJSON_IsNull(v);
            if (!v->string) continue;
            long c = find_col(t, v->string);
            if (c < 0 && (c = add_col(t, v->string, !scalar)) < 0) {
                rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            if (!scalar) t->cols[c].json_only = 1;
        }
    }
    // Pass 2: cells.
    for (const cJSON *o = root->child; o; o = o->next) {
        size_t r = table_add_row(t);
        if (r == SIZE_MAX) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
        for (const cJSON *v = o->child; v; v = v->next) {
            if (!v->string || cJSON_IsNull(v)) continue;
            long c = find_col(t, v->string);
            int set;
            if (t->cols[c].json_only) {
                cJSON *d = cJSON_Duplicate(v, 1);
                set = d ? table_set_json(t, r, v->string, d) : MB_ERR_NOMEM;
            } else if (cJSON_IsNumber(v)) {
                set = table_set_num(t, r, v->string, v->valuedouble);
            } else {
                set = table_set_str(t, r, v->string, v->valuestring);
            }
            if (set) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path); goto done; }
        }
    }
    rc = MB_OK;
done:
    cJSON_Delete(root);
    free(s);
    if (rc) table_free(t);
    else *out = t;
    return rc;
}
