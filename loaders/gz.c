// Whole-file reads with transparent gzip (zlib), for loaders/text.c and loaders/timeseries.c.
#include "loaders/gz.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/media.h"

int gz_is_gzip(const unsigned char *in, size_t n) { return n >= 2 && in[0] == 0x1f && in[1] == 0x8b; }

// mem.h has no realloc: a new block, a copy, the old one freed.
static unsigned char *grow(unsigned char *old, size_t used, size_t cap) {
    unsigned char *p = mem_alloc(cap);
    if (p && old) memcpy(p, old, used);
    mem_free(old);
    return p;
}

int gz_inflate(const unsigned char *in, size_t n, size_t max_out, unsigned char **out,
               size_t *out_n, char *err, size_t errlen) {
    *out = NULL;
    *out_n = 0;
    if (!gz_is_gzip(in, n)) return mb_fail(err, errlen, MB_ERR_DATA, "byte 0: not a gzip stream");
    // The last 4 bytes hold the (last member's) size mod 2^32: a good first guess.
    size_t cap = 1 << 16;
    if (n >= 18) {
        size_t hint = (size_t)in[n - 4] | (size_t)in[n - 3] << 8 | (size_t)in[n - 2] << 16 |
                      (size_t)in[n - 1] << 24;
        if (hint + 1 > cap && hint < max_out && hint / 64 < n) cap = hint + 1;
    }
    if (cap > max_out + 1) cap = max_out + 1;  // room for max_out bytes and the NUL
    unsigned char *buf = mem_alloc(cap);
    if (!buf) return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory inflating %zu bytes", n);
    size_t used = 0, pos = 0;
    int rc = MB_OK;
    while (pos < n) {
        if (!gz_is_gzip(in + pos, n - pos)) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "byte %zu: unexpected bytes after the gzip stream", pos);
            goto fail;
        }
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, 15 + 16) != Z_OK) {
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "zlib could not start");
            goto fail;
        }
        size_t member = pos;
        int zr = Z_OK;
        while (zr != Z_STREAM_END) {
            if (used + 1 >= cap) {  // keep room for the NUL
                if (cap >= max_out + 1) {
                    inflateEnd(&zs);
                    rc = mb_fail(err, errlen, MB_ERR_DATA, "byte %zu: inflates to more than %zu bytes",
                                 pos, max_out);
                    goto fail;
                }
                size_t ncap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
                if (!(buf = grow(buf, used, ncap))) {
                    inflateEnd(&zs);
                    return mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory inflating to %zu bytes", ncap);
                }
                cap = ncap;
            }
            size_t in_chunk = n - pos > (1u << 30) ? (1u << 30) : n - pos;
            size_t out_chunk = cap - 1 - used > (1u << 30) ? (1u << 30) : cap - 1 - used;
            zs.next_in = (unsigned char *)in + pos;
            zs.avail_in = (uInt)in_chunk;
            zs.next_out = buf + used;
            zs.avail_out = (uInt)out_chunk;
            zr = inflate(&zs, Z_NO_FLUSH);
            pos += in_chunk - zs.avail_in;
            used += out_chunk - zs.avail_out;
            if (zr == Z_STREAM_END) break;
            if (zr == Z_BUF_ERROR || (zr == Z_OK && pos == n && zs.avail_out > 0)) {
                if (pos == n) {
                    inflateEnd(&zs);
                    rc = mb_fail(err, errlen, MB_ERR_DATA,
                                 "byte %zu: gzip stream cut short (member starting at byte %zu has no end)",
                                 pos, member);
                    goto fail;
                }
                continue;  // output full: grow and go on
            }
            if (zr != Z_OK) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "byte %zu: corrupt gzip data (%s)", pos,
                             zs.msg ? zs.msg : "zlib error");
                inflateEnd(&zs);
                goto fail;
            }
        }
        inflateEnd(&zs);
        // gzip pads with zeros sometimes (tape blocks); accept an all-zero tail.
        size_t z = pos;
        while (z < n && in[z] == 0) z++;
        if (z == n) break;
    }
    buf[used] = 0;
    *out = buf;
    *out_n = used;
    return MB_OK;
fail:
    mem_free(buf);
    return rc;
}

int gz_read_file(const char *path, unsigned char **buf, size_t *n, char *err, size_t errlen) {
    *buf = NULL;
    *n = 0;
    unsigned char *raw;
    size_t size;
    int rc = media_read_file(path, GZ_MAX_BYTES, &raw, &size, err, errlen);
    if (rc) return rc;
    if (!gz_is_gzip(raw, size)) {  // plain text: hand over the NUL-terminated buffer as is
        *buf = raw;
        *n = size;
        return MB_OK;
    }
    char e[256];
    rc = gz_inflate(raw, size, GZ_MAX_BYTES, buf, n, e, sizeof e);
    mem_free(raw);
    if (rc) return mb_fail(err, errlen, rc, "%s:%s", path, e);
    return MB_OK;
}

// ---- streaming reader ----

#define GZ_IN_CHUNK (1u << 16)

struct GzReader {
    FILE *f;
    char *path;
    int gzip, in_member, done;
    z_stream zs;
    unsigned char in[GZ_IN_CHUNK];
    size_t in_pos, in_n;   // unread input is in[in_pos, in_n)
    size_t consumed;       // compressed bytes before in[0]
    size_t member;         // where the current member started
    size_t out_total;
};

// Refills the input buffer when it is empty; returns bytes available (0 at end of file).
static size_t gz_fill(GzReader *r) {
    if (r->in_pos < r->in_n) return r->in_n - r->in_pos;
    r->consumed += r->in_n;
    r->in_pos = 0;
    r->in_n = fread(r->in, 1, sizeof r->in, r->f);
    return r->in_n;
}

int gz_open(const char *path, GzReader **out, char *err, size_t errlen) {
    *out = NULL;
    GzReader *r = mem_alloc(sizeof *r);
    if (!r) return mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", path);
    memset(r, 0, sizeof *r);
    r->path = strdup(path);
    r->f = fopen(path, "rb");
    if (!r->f || !r->path) {
        int rc = mb_fail(err, errlen, r->path ? MB_ERR_DATA : MB_ERR_NOMEM, "%s: cannot open: %s", path,
                         r->path ? strerror(errno) : "out of memory");
        gz_close(r);
        return rc;
    }
    gz_fill(r);
    r->gzip = gz_is_gzip(r->in, r->in_n);
    *out = r;
    return MB_OK;
}

int gz_read(GzReader *r, unsigned char *buf, size_t cap, size_t *got, char *err, size_t errlen) {
    *got = 0;
    if (cap > (1u << 30)) cap = 1u << 30;
    if (!r->gzip) {
        size_t n = 0;
        while (n < cap) {
            size_t a = gz_fill(r);
            if (!a) break;
            size_t k = a < cap - n ? a : cap - n;
            memcpy(buf + n, r->in + r->in_pos, k);
            r->in_pos += k;
            n += k;
        }
        if (ferror(r->f)) return mb_fail(err, errlen, MB_ERR_DATA, "%s: read error: %s", r->path, strerror(errno));
        r->out_total += n;
        if (r->out_total > GZ_MAX_BYTES)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s: larger than %zu bytes", r->path, (size_t)GZ_MAX_BYTES);
        *got = n;
        return MB_OK;
    }
    size_t n = 0;
    while (n < cap && !r->done) {
        if (!r->in_member) {
            // between members: the end, zero padding to the end, another member, or garbage
            size_t a = gz_fill(r);
            while (a && r->in[r->in_pos] == 0) {
                size_t z = r->in_pos;
                while (z < r->in_n && r->in[z] == 0) z++;
                if (z < r->in_n) break;   // a nonzero byte after zeros: garbage, reported below
                r->in_pos = z;
                a = gz_fill(r);
            }
            if (!a) { r->done = 1; break; }
            size_t at = r->consumed + r->in_pos;
            if (r->in[r->in_pos] != 0x1f || (a >= 2 && r->in[r->in_pos + 1] != 0x8b))
                return mb_fail(err, errlen, MB_ERR_DATA, "%s:byte %zu: unexpected bytes after the gzip stream", r->path, at);
            memset(&r->zs, 0, sizeof r->zs);
            if (inflateInit2(&r->zs, 15 + 16) != Z_OK) return mb_fail(err, errlen, MB_ERR_NOMEM, "zlib could not start");
            r->in_member = 1;
            r->member = at;
        }
        size_t a = gz_fill(r);
        r->zs.next_in = r->in + r->in_pos;
        r->zs.avail_in = (uInt)a;
        r->zs.next_out = buf + n;
        r->zs.avail_out = (uInt)(cap - n);
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        r->in_pos += a - r->zs.avail_in;
        n = cap - r->zs.avail_out;
        if (zr == Z_STREAM_END) {
            inflateEnd(&r->zs);
            r->in_member = 0;
            continue;
        }
        if (zr == Z_BUF_ERROR || (zr == Z_OK && a == 0)) {
            if (a == 0 && gz_fill(r) == 0) {
                inflateEnd(&r->zs);
                r->in_member = 0;
                return mb_fail(err, errlen, MB_ERR_DATA,
                               "%s:byte %zu: gzip stream cut short (member starting at byte %zu has no end)", r->path,
                               r->consumed + r->in_pos, r->member);
            }
            continue;
        }
        if (zr != Z_OK) {
            int rc = mb_fail(err, errlen, MB_ERR_DATA, "%s:byte %zu: corrupt gzip data (%s)", r->path,
                             r->consumed + r->in_pos, r->zs.msg ? r->zs.msg : "zlib error");
            inflateEnd(&r->zs);
            r->in_member = 0;
            return rc;
        }
    }
    if (ferror(r->f)) return mb_fail(err, errlen, MB_ERR_DATA, "%s: read error: %s", r->path, strerror(errno));
    r->out_total += n;
    if (r->out_total > GZ_MAX_BYTES)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: inflates to more than %zu bytes", r->path, (size_t)GZ_MAX_BYTES);
    *got = n;
    return MB_OK;
}

void gz_close(GzReader *r) {
    if (!r) return;
    if (r->in_member) inflateEnd(&r->zs);
    if (r->f) fclose(r->f);
    free(r->path);
    mem_free(r);
}
