// Audio datasets: FSDD recordings through libsndfile, resampled with libsamplerate.
// See loaders/audio.h for what is promised; decisions the header does not spell out:
//  - Each file is read whole (capped at AUDIO_MAX_FILE_BYTES) and decoded from memory through
//    sf_open_virtual, the same path the fuzz harness drives (fuzz/fuzz_wav.c).
//  - Formats are sniffed from their magic bytes first (WAV, FLAC, AIFF, AU), so a text file
//    named .wav is refused at byte 0 and libsndfile's many headerless/raw guessers never run.
//    Ogg is refused on purpose: fuzzing found corrupt Ogg Vorbis streams leaking memory inside
//    libvorbis (through libsndfile), which this project cannot fix
//    (tests/fuzz-regressions/wav-leak-ogg-vorbis.bin).
//  - RIFF WAV chunks are walked before libsndfile sees the file: a chunk that runs past the end
//    is reported with its byte offset. Exception: a data size of 0 or 0xFFFFFFFF (streaming
//    writers that never patched the header) is accepted and libsndfile reads what is there.
//  - Non-finite float samples are refused; finite ones outside [-1, 1] (float WAVs, sinc
//    overshoot after resampling) are clipped.
//  - Only ceil(max_samples / ratio) + 64 source frames are decoded (64 frames feed the sinc
//    filter past the end of the kept part); the rest of the file is not read.
#include "loaders/audio.h"
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/media.h"
#include "loaders/tokenizer.h"

// ---------------------------------------------------------------- libsndfile over memory

typedef struct {
    const unsigned char *data;
    sf_count_t n, pos;
} MemFile;

static sf_count_t vio_len(void *u) { return ((MemFile *)u)->n; }
static sf_count_t vio_tell(void *u) { return ((MemFile *)u)->pos; }
static sf_count_t vio_seek(sf_count_t off, int whence, void *u) {
    MemFile *m = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->n;
    if ((off > 0 && base > INT64_MAX - off)) return -1;
    sf_count_t to = base + off;
    if (to < 0) return -1;
    m->pos = to;  // past the end is allowed (reads then return 0), as with lseek
    return to;
}
static sf_count_t vio_read(void *dst, sf_count_t count, void *u) {
    MemFile *m = u;
    if (count <= 0 || m->pos >= m->n) return 0;
    sf_count_t k = m->n - m->pos < count ? m->n - m->pos : count;
    memcpy(dst, m->data + m->pos, (size_t)k);
    m->pos += k;
    return k;
}
static sf_count_t vio_write(const void *src, sf_count_t count, void *u) {
    (void)src; (void)count; (void)u;
    return 0;  // read-only
}

// ---------------------------------------------------------------- RIFF walk

static uint32_t rd32(const unsigned char *p, int big) {
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int check_riff(const char *name, const unsigned char *b, size_t n, int big, char *err,
                      size_t errlen) {
    // RIFF header (12 bytes), then chunks: id (4), size (4), data (size, padded to even).
    if (n < 12) return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: RIFF header is cut short", name, n);
    if (memcmp(b + 8, "WAVE", 4) != 0)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:8: RIFF file is not WAVE audio", name);
    size_t off = 12;
    int have_fmt = 0;
    while (n - off >= 8) {
        uint32_t size = rd32(b + off + 4, big);
        char id[5];
        for (int i = 0; i < 4; i++) id[i] = (b[off + i] >= 32 && b[off + i] < 127) ? (char)b[off + i] : '?';
        id[4] = '\0';
        int is_data = memcmp(b + off, "data", 4) == 0;
        if (memcmp(b + off, "fmt ", 4) == 0) have_fmt = 1;
        if (is_data && !have_fmt)
            return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: 'data' chunk before the 'fmt ' chunk", name, off);
        if (is_data && (size == 0 || size == 0xFFFFFFFFu)) return MB_OK;  // streaming writer
        if ((uint64_t)size > (uint64_t)(n - off - 8))
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:%zu: WAV chunk '%s' declares %u bytes, the file ends at byte %zu (cut short)",
                           name, off, id, size, n);
        if (is_data) return MB_OK;  // what follows the samples is libsndfile's business
        off += 8 + (size_t)size + (size & 1);
        if (off > n) break;  // a missing pad byte at the very end is tolerated
    }
    return mb_fail(err, errlen, MB_ERR_DATA, "%s:%zu: WAV has no %s chunk (cut short?)", name, n,
                   have_fmt ? "'data'" : "'fmt ' or 'data'");
}

// ---------------------------------------------------------------- decode

// A growable mem_alloc'd float buffer.
static int grow(float **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    float *nb = mem_alloc(nc * sizeof(float));
    if (!nb) return 0;
    if (*buf) memcpy(nb, *buf, *cap * sizeof(float));
    mem_free(*buf);
    *buf = nb;
    *cap = nc;
    return 1;
}

int audio_decode(const char *name, const unsigned char *b, size_t n, int rate, size_t max_samples,
                 float **samples, size_t *n_samples, int *file_rate, char *err, size_t errlen) {
    *samples = NULL;
    *n_samples = 0;
    if (n == 0) return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: empty file (not audio)", name);
    if (n > AUDIO_MAX_FILE_BYTES)
        return mb_fail(err, errlen, MB_ERR_DATA, "%s:0: file of %zu bytes is over the %zu-byte limit", name,
                       n, AUDIO_MAX_FILE_BYTES);
    if (rate < 0) return mb_fail(err, errlen, MB_ERR_USAGE, "negative sample rate %d", rate);
    int rc = MB_OK;
    if (n >= 4 && (memcmp(b, "RIFF", 4) == 0 || memcmp(b, "RIFX", 4) == 0)) {
        if ((rc = check_riff(name, b, n, b[3] == 'X', err, errlen))) return rc;
    } else if (!(n >= 4 && (memcmp(b, "RF64", 4) == 0 || memcmp(b, "fLaC", 4) == 0 ||
                            memcmp(b, "FORM", 4) == 0 || memcmp(b, ".snd", 4) == 0))) {
        if (n >= 4 && memcmp(b, "OggS", 4) == 0)
            return mb_fail(err, errlen, MB_ERR_DATA,
                           "%s:0: Ogg audio is not supported (convert it to WAV or FLAC)", name);
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s:0: not an audio file (no WAV, FLAC, AIFF or AU signature)", name);
    }
    MemFile mf = {b, (sf_count_t)n, 0};
    SF_VIRTUAL_IO vio = {vio_len, vio_seek, vio_read, vio_write, vio_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &mf);
    if (!sf) {
        // sf_strerror(NULL) reads libsndfile's global error; the number maps to a fixed string.
        return mb_fail(err, errlen, MB_ERR_DATA, "%s: libsndfile cannot read it: %s", name,
                       sf_error_number(sf_error(NULL)));
    }
    float *mono = NULL, *tmp = NULL, *out = NULL;
    size_t got = 0, cap = 0;
    if (info.channels < 1 || info.channels > 1024 || info.samplerate <= 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: header gives %d channels at %d Hz", name, info.channels,
                     info.samplerate);
        goto done;
    }
    if (file_rate) *file_rate = info.samplerate;
    double ratio = (rate == 0 || rate == info.samplerate) ? 1.0 : (double)rate / info.samplerate;
    if (ratio != 1.0 && !src_is_valid_ratio(ratio)) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: cannot resample %d Hz to %d Hz (ratio outside 1/256..256)",
                     name, info.samplerate, rate);
        goto done;
    }
    // Source frames needed: enough for max_samples output plus the filter's look-ahead; without
    // max_samples, one more than the limit, so that an over-long file is noticed, not cut.
    size_t need = AUDIO_MAX_SAMPLES + 1;
    if (max_samples) {
        double need_d = ceil((double)max_samples / ratio) + (ratio != 1.0 ? 64 : 0);
        if (need_d < (double)need) need = (size_t)need_d;
    }
    const size_t chunk = 4096;
    tmp = mem_alloc(chunk * (size_t)info.channels * sizeof(float));
    if (!tmp) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", name); goto done; }
    int hit_need = 0;
    while (got < need) {
        size_t ask = need - got < chunk ? need - got : chunk;
        sf_count_t k = sf_readf_float(sf, tmp, (sf_count_t)ask);
        if (k <= 0) break;
        if (!grow(&mono, &cap, got + (size_t)k)) {
            rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory for %zu samples", name, got + (size_t)k);
            goto done;
        }
        for (sf_count_t i = 0; i < k; i++) {
            double s = 0;
            for (int c = 0; c < info.channels; c++) s += tmp[(size_t)i * (size_t)info.channels + (size_t)c];
            s /= info.channels;
            if (!isfinite(s)) {
                rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: sample frame %zu is not a finite number", name,
                             got + (size_t)i);
                goto done;
            }
            mono[got + (size_t)i] = (float)(s > 1.0 ? 1.0 : s < -1.0 ? -1.0 : s);
        }
        got += (size_t)k;
    }
    hit_need = got >= need;
    if (sf_error(sf) != SF_ERR_NO_ERROR) {
        if (info.frames > 0 && info.frames != SF_COUNT_MAX)
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: decoding failed after %zu of %lld frames (cut short "
                         "or corrupt): %s", name, got, (long long)info.frames, sf_strerror(sf));
        else
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: decoding failed after %zu frames: %s", name, got,
                         sf_strerror(sf));
        goto done;
    }
    if (!hit_need && info.frames > 0 && info.frames != SF_COUNT_MAX && (sf_count_t)got < info.frames) {
        rc = mb_fail(err, errlen, MB_ERR_DATA,
                     "%s: header declares %lld sample frames, only %zu could be decoded (cut short)", name,
                     (long long)info.frames, got);
        goto done;
    }
    if (got == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no sample frames", name);
        goto done;
    }
    if (got > AUDIO_MAX_SAMPLES) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: more than %zu sample frames (over the limit)", name,
                     AUDIO_MAX_SAMPLES);
        goto done;
    }
    if (ratio == 1.0) {
        out = mono;
        mono = NULL;
    } else {
        double cap_d = ceil((double)got * ratio) + 16;
        if (cap_d > (double)AUDIO_MAX_SAMPLES + 16) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: %zu frames at %d Hz are over %zu samples at %d Hz",
                         name, got, info.samplerate, AUDIO_MAX_SAMPLES, rate);
            goto done;
        }
        size_t ocap = (size_t)cap_d;
        out = mem_alloc(ocap * sizeof(float));
        if (!out) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "%s: out of memory", name); goto done; }
        SRC_DATA d;
        memset(&d, 0, sizeof d);
        d.data_in = mono;
        d.input_frames = (long)got;
        d.data_out = out;
        d.output_frames = (long)ocap;
        d.src_ratio = ratio;
        int e = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1);
        if (e) {
            rc = mb_fail(err, errlen, MB_ERR_INTERNAL, "%s: resampling %d Hz to %d Hz failed: %s", name,
                         info.samplerate, rate, src_strerror(e));
            goto done;
        }
        got = (size_t)d.output_frames_gen;
        if (got == 0) {
            rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: too short to resample (no output samples)", name);
            goto done;
        }
        for (size_t i = 0; i < got; i++) out[i] = out[i] > 1.0f ? 1.0f : out[i] < -1.0f ? -1.0f : out[i];
    }
    if (max_samples && got > max_samples) got = max_samples;
    *samples = out;
    *n_samples = got;
    out = NULL;
done:
    sf_close(sf);
    mem_free(tmp);
    mem_free(mono);
    mem_free(out);
    return rc;
}

// ---------------------------------------------------------------- FSDD

typedef struct {
    const DataSpec *spec;
    int rate;
    size_t frame;
    char **paths;
    int32_t *labels;
    const size_t *pick;
} AudioCtx;

static int load_clip(void *vctx, size_t i, Sequence *out, char *err, size_t errlen) {
    AudioCtx *ctx = vctx;
    size_t k = ctx->pick[i];
    const char *path = ctx->paths[k];
    unsigned char *bytes;
    size_t n;
    int rc = media_read_file(path, AUDIO_MAX_FILE_BYTES, &bytes, &n, err, errlen);
    if (rc) return rc;
    float *s;
    size_t ns;
    size_t max_samples = ctx->spec->max_len ? ctx->spec->max_len * ctx->frame : 0;
    rc = audio_decode(path, bytes, n, ctx->rate, max_samples, &s, &ns, NULL, err, errlen);
    mem_free(bytes);
    if (rc) return rc;
    char e[256];
    rc = tok_audio(out, s, ns, ctx->frame, ctx->spec->max_len, e, sizeof e);
    mem_free(s);
    if (rc) return mb_fail(err, errlen, rc, "%s: %s", path, e);
    out->label = ctx->labels[k];
    return MB_OK;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

// "<digit>_<speaker>_<take>.<ext>": 1 and the digit/take, 0 when the name does not match.
static int parse_fsdd_name(const char *name, int *digit, long *take) {
    const char *dot = strrchr(name, '.'), *u1 = strchr(name, '_'), *u2 = strrchr(name, '_');
    if (!dot || !u1 || u2 == u1 || u2 > dot) return 0;
    if (u1 - name != 1 || name[0] < '0' || name[0] > '9') return 0;
    if (u2 - u1 < 2) return 0;  // empty speaker
    if (dot - u2 < 2 || dot - u2 > 10) return 0;
    long t = 0;
    for (const char *p = u2 + 1; p < dot; p++) {
        if (*p < '0' || *p > '9') return 0;
        t = t * 10 + (*p - '0');
    }
    *digit = name[0] - '0';
    *take = t;
    return 1;
}

int audio_dataset_load(const DataSpec *spec, const char *data_root, Split split, SeqSet *out,
                       char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (strcmp(spec->source, "fsdd") != 0)
        return mb_fail(err, errlen, MB_ERR_USAGE, "audio loader: unknown source \"%s\"", spec->source);
    AudioCtx ctx = {spec, spec->sample_rate ? spec->sample_rate : AUDIO_DEFAULT_RATE,
                    spec->frame ? spec->frame : AUDIO_DEFAULT_FRAME, NULL, NULL, NULL};
    if (ctx.rate < 0) return mb_fail(err, errlen, MB_ERR_USAGE, "negative sample rate %d", ctx.rate);
    if (spec->max_len && spec->max_len > AUDIO_MAX_SAMPLES / ctx.frame)
        return mb_fail(err, errlen, MB_ERR_USAGE, "max_len %zu x frame %zu is over %zu samples", spec->max_len,
                       ctx.frame, AUDIO_MAX_SAMPLES);
    char dir[1100];
    int l = snprintf(dir, sizeof dir, "%s/%s/recordings", data_root, spec->path);
    if (l < 0 || (size_t)l >= sizeof dir)
        return mb_fail(err, errlen, MB_ERR_USAGE, "data path too long: %s/%s", data_root, spec->path);
    if (!media_is_dir(dir))
        return mb_fail(err, errlen, MB_ERR_DATA,
                       "%s: not found; get the Free Spoken Digit Dataset from "
                       "https://github.com/Jakobovski/free-spoken-digit-dataset and put its recordings/ "
                       "folder under %s/%s", dir, data_root, spec->path);
    char **names = NULL;
    size_t n_names = 0, n = 0, n_pick = 0;
    int rc = media_list_dir(dir, 'f', &names, &n_names, err, errlen);
    if (rc) return rc;
    size_t *pick = NULL;
    Sequence *items = NULL;
    char **cn = NULL;
    ctx.paths = calloc(n_names ? n_names : 1, sizeof(char *));
    ctx.labels = malloc((n_names ? n_names : 1) * sizeof(int32_t));
    pick = malloc((n_names ? n_names : 1) * sizeof(size_t));
    if (!ctx.paths || !ctx.labels || !pick) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n_names; i++) {
        if (!ends_with(names[i], ".wav") && !ends_with(names[i], ".flac")) continue;
        int digit;
        long take;
        if (!parse_fsdd_name(names[i], &digit, &take)) {
            rc = mb_fail(err, errlen, MB_ERR_DATA,
                         "%s/%s: name does not follow <digit>_<speaker>_<take>.wav", dir, names[i]);
            goto done;
        }
        int test = take <= 4;
        if ((split == SPLIT_TRAIN) == test) continue;
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        if (!(ctx.paths[n] = malloc(len))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
        snprintf(ctx.paths[n], len, "%s/%s", dir, names[i]);
        ctx.labels[n++] = digit;
    }
    if (n == 0) {
        rc = mb_fail(err, errlen, MB_ERR_DATA, "%s: no recordings for the %s split (takes %s)", dir,
                     split == SPLIT_TRAIN ? "train" : "test", split == SPLIT_TRAIN ? "5-49" : "0-4");
        goto done;
    }
    if ((rc = media_pick_balanced(ctx.labels, n, 10, spec->limit, pick, &n_pick, err, errlen))) goto done;
    ctx.pick = pick;
    items = mem_alloc(n_pick * sizeof(Sequence));
    cn = calloc(10, sizeof(char *));
    if (!items || !cn) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory for %zu clips", n_pick); goto done; }
    for (int c = 0; c < 10; c++) {
        char s[2] = {(char)('0' + c), '\0'};
        if (!(cn[c] = media_strdup(s))) { rc = mb_fail(err, errlen, MB_ERR_NOMEM, "out of memory"); goto done; }
    }
    if ((rc = media_load_all(n_pick, load_clip, &ctx, items, err, errlen))) goto done;
    out->items = items;
    out->n = n_pick;
    out->vocab = 0;
    out->feat_dim = ctx.frame;
    out->n_classes = 10;
    out->class_names = cn;
    items = NULL;
    cn = NULL;
done:
    media_free_items(items, 0);
    media_free_names(cn, cn ? 10 : 0);
    media_free_names(ctx.paths, n);
    media_free_names(names, n_names);
    free(ctx.labels);
    free(pick);
    return rc;
}
