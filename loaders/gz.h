// Whole-file input for the text and time-series loaders: a file (plain or gzip, recognised by
// its magic bytes, not its name) becomes one NUL-terminated buffer from mem_alloc. A damaged or
// short gzip stream is MB_ERR_DATA with the compressed byte offset where it went wrong.
// Library code: status + reason, never prints.                               -- loaders/gz.c
#ifndef MAELRE_GZ_H
#define MAELRE_GZ_H
#include <stddef.h>

#define GZ_MAX_BYTES ((size_t)1 << 32)   // refuse inputs (or their inflated size) above 4 GiB

// Inflates one or more concatenated gzip members from memory. *out (mem_alloc, NUL-terminated,
// *out_n bytes before the NUL) on MB_OK. Errors: "byte N: <what>" (caller prefixes the file).
int gz_inflate(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
               size_t *out_n, char *err, size_t errlen);
int gz_is_gzip(const unsigned char *in, size_t n);

// Reads `path` whole, inflating gzip. Errors name the file: "<path>: cannot open: <why>" or
// "<path>:byte N: gzip stream cut short". Free *buf with mem_free.
int gz_read_file(const char *path, unsigned char **buf, size_t *n, char *err, size_t errlen);

// Streaming form of gz_read_file: the same bytes (plain or inflated gzip, concatenated members,
// zero padding after the stream accepted), read a piece at a time, so that a large file is never
// held whole. Errors name the file and the compressed byte offset, as gz_read_file's do.
typedef struct GzReader GzReader;
int gz_open(const char *path, GzReader **r, char *err, size_t errlen);
// Up to cap bytes into buf; *got = 0 only at the end of the data.
int gz_read(GzReader *r, unsigned char *buf, size_t cap, size_t *got, char *err, size_t errlen);
void gz_close(GzReader *r);

#endif
