// Audio loader: every sample format libsndfile writes round-trips, stereo is mixed down, other
// rates are resampled, FSDD's layout/split/labels/limit hold, and bad files are refused with the
// file and offset named (no partial output). Files are written here with libsndfile.
#include <math.h>
#include <sndfile.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "core/mem.h"
#include "core/status.h"
#include "loaders/audio.h"
#include "loaders/media.h"
#include "media_util.h"

static char err[1024];
static const double PI = 3.14159265358979323846;

static float tone(size_t i, int rate, int channel) {
    return (float)(0.6 * sin(2 * PI * 440.0 * (double)i / rate) * (channel ? -0.5 : 1.0));
}

// Writes frames of tone() with libsndfile; returns the path.
static const char *write_clip(const char *rel, int format, int channels, int rate, size_t frames) {
    const char *path = tmp_path(rel);
    SF_INFO info = {.channels = channels, .samplerate = rate, .format = format};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    cr_assert_not_null(f, "%s: %s", path, sf_strerror(NULL));
    float *buf = malloc(frames * (size_t)channels * sizeof(float));
    for (size_t i = 0; i < frames; i++)
        for (int c = 0; c < channels; c++) buf[i * (size_t)channels + (size_t)c] = tone(i, rate, c);
    cr_assert_eq(sf_writef_float(f, buf, (sf_count_t)frames), (sf_count_t)frames);
    free(buf);
    sf_close(f);
    return path;
}

static int decode_file(const char *path, int rate, size_t max, float **s, size_t *n, int *file_rate) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    int rc = audio_decode(path, b, len, rate, max, s, n, file_rate, err, sizeof err);
    free(b);
    return rc;
}

TestSuite(audio, .init = tmp_setup, .fini = tmp_teardown);

Test(audio, every_pcm_width_float_and_flac_round_trip) {
    struct { const char *name; int format; double tol; } cases[] = {
        {"u8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 2.0 / 128},
        {"s16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2.0 / 32768},
        {"s24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 2.0 / 8388608},
        {"s32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1e-6},
        {"f32.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0},
        {"s16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2.0 / 32768},
        {"s24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 2.0 / 8388608},
        {"s16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 2.0 / 32768},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = write_clip(cases[k].name, cases[k].format, 1, 8000, 1001);
        float *s;
        size_t n;
        int fr = 0;
        cr_assert_eq(decode_file(p, 8000, 0, &s, &n, &fr), MB_OK, "%s: %s", cases[k].name, err);
        cr_assert_eq(n, 1001, "%s: %zu samples", cases[k].name, n);
        cr_assert_eq(fr, 8000);
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(s[i] - tone(i, 8000, 0)));
        cr_assert(worst <= cases[k].tol, "%s: max error %g > %g", cases[k].name, worst, cases[k].tol);
        mem_free(s);
    }
}

Test(audio, stereo_is_mixed_down_to_the_channel_mean) {
    const char *p = write_clip("st.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2, 8000, 500);
    float *s;
    size_t n;
    cr_assert_eq(decode_file(p, 8000, 0, &s, &n, NULL), MB_OK, "%s", err);
    cr_assert_eq(n, 500);
    for (size_t i = 0; i < n; i++)
        cr_assert_float_eq(s[i], 0.5f * (tone(i, 8000, 0) + tone(i, 8000, 1)), 1e-6, "frame %zu", i);
    mem_free(s);
}

Test(audio, other_rates_are_resampled_to_the_task_rate) {
    const char *p = write_clip("hi.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 22050, 22050);
    float *s;
    size_t n;
    int fr = 0;
    cr_assert_eq(decode_file(p, 8000, 0, &s, &n, &fr), MB_OK, "%s", err);
    cr_assert_eq(fr, 22050);
    cr_assert(n >= 7999 && n <= 8001, "1 s at 22.05 kHz gave %zu samples at 8 kHz", n);
    double worst = 0;  // away from the edges the 440 Hz tone survives resampling
    for (size_t i = 200; i < n - 200; i++) worst = fmax(worst, fabs(s[i] - tone(i, 8000, 0)));
    cr_assert(worst < 0.01, "resampled tone off by %g", worst);
    mem_free(s);
    // rate 0 keeps the file's own rate; max_samples keeps a prefix.
    cr_assert_eq(decode_file(p, 0, 100, &s, &n, NULL), MB_OK, "%s", err);
    cr_assert_eq(n, 100);
    cr_assert_float_eq(s[37], tone(37, 22050, 0), 1e-7);
    mem_free(s);
}

Test(audio, bad_files_are_refused_with_file_and_offset) {
    float *s = (float *)1;
    size_t n;
    // Truncated WAV: the data chunk runs past the end.
    const char *p = write_clip("cut.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 8000, 1000);
    truncate_to(p, file_size(p) / 2);
    cr_assert_eq(decode_file(p, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert_null(s);
    cr_assert(strstr(err, p) && strstr(err, ":36: WAV chunk 'data' declares 2000 bytes") &&
              strstr(err, "cut short"), "%s", err);
    // Cut inside the header.
    truncate_to(p, 30);
    cr_assert_eq(decode_file(p, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert(strstr(err, p), "%s", err);
    // Text named .wav, empty file, Ogg.
    const char *t = tmp_path("text.wav");
    write_bytes(t, "hello, this is not audio\n", 25);
    cr_assert_eq(decode_file(t, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert(strstr(err, t) && strstr(err, ":0: not an audio file"), "%s", err);
    const char *e = tmp_path("empty.wav");
    write_bytes(e, "", 0);
    cr_assert_eq(decode_file(e, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert(strstr(err, e) && strstr(err, ":0: empty file"), "%s", err);
    // Truncated FLAC: fewer frames decode than STREAMINFO declares.
    const char *f = write_clip("cut.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, 8000, 20000);
    truncate_to(f, file_size(f) * 6 / 10);
    cr_assert_eq(decode_file(f, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert(strstr(err, f) && strstr(err, "of 20000 frames") && strstr(err, "cut short"), "%s", err);
    // Non-finite float samples.
    const char *nf = tmp_path("nan.wav");
    SF_INFO info = {.channels = 1, .samplerate = 8000, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *w = sf_open(nf, SFM_WRITE, &info);
    float v[4] = {0.1f, NAN, 0.2f, 0.3f};
    sf_command(w, SFC_SET_NORM_FLOAT, NULL, SF_FALSE);
    sf_writef_float(w, v, 4);
    sf_close(w);
    cr_assert_eq(decode_file(nf, 8000, 0, &s, &n, NULL), MB_ERR_DATA);
    cr_assert(strstr(err, "frame 1 is not a finite number"), "%s", err);
}

static void regression(const char *path) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    float *s;
    size_t n;
    err[0] = '\0';
    int rc = audio_decode(path, b, len, 8000, 8000, &s, &n, NULL, err, sizeof err);
    cr_assert(rc == MB_OK || rc == MB_ERR_DATA, "%s: rc %d", path, rc);
    if (rc == MB_OK) mem_free(s);
    else cr_assert(strstr(err, path), "%s: reason does not name the file: %s", path, err);
    free(b);
}

Test(audio, fuzz_regressions_do_not_crash_or_leak) {
    size_t before = mem_current();
    cr_assert_gt(for_each_regression("wav-", regression), 0);
    cr_assert_eq(mem_current(), before);
}

// ---- FSDD layout

static DataSpec fsdd_spec(void) {
    DataSpec s = {0};
    strcpy(s.source, "fsdd");
    strcpy(s.path, "fsdd");
    s.frame = 4;
    s.sample_rate = 8000;
    return s;
}

// digits 0-2, speakers a/b, takes 0-6: per digit 10 test (takes 0-4) and 4 train (takes 5-6).
// Clip length encodes the file: 40 + 4 * (digit * 100 + speaker * 10 + take) samples.
static void make_fsdd(void) {
    for (int d = 0; d < 3; d++)
        for (int sp = 0; sp < 2; sp++)
            for (int t = 0; t < 7; t++) {
                char rel[128];
                snprintf(rel, sizeof rel, "fsdd/recordings/%d_%s_%d.wav", d, sp ? "bob" : "ann", t);
                write_clip(rel, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 8000, 40 + 4 * (d * 100 + sp * 10 + t));
            }
    write_bytes(tmp_path("fsdd/recordings/README.md"), "ignored\n", 8);
}

Test(audio, fsdd_layout_split_labels_and_truncation) {
    make_fsdd();
    DataSpec spec = fsdd_spec();
    SeqSet tr, te, va;
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_VAL, &va, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.n, 12);
    cr_assert_eq(te.n, 30);
    cr_assert_eq(va.n, te.n, "val is the test split");
    cr_assert_eq(tr.n_classes, 10);
    cr_assert_str_eq(tr.class_names[7], "7");
    cr_assert_eq(tr.feat_dim, 4);
    cr_assert_eq(tr.vocab, 0);
    // Sorted by name: 0_ann_5, 0_ann_6, 0_bob_5, ... ; length 40 + 4 * (...) samples = 10 + ... tokens.
    cr_assert_eq(tr.items[0].label, 0);
    cr_assert_eq(tr.items[0].len, 10 + 5);
    cr_assert_eq(tr.items[3].len, 10 + 16);
    cr_assert_eq(tr.items[11].label, 2);
    cr_assert_eq(tr.items[11].len, 10 + 216);
    cr_assert_float_eq(tr.items[0].feats[5], tone(5, 8000, 0), 2.0 / 32768);
    for (size_t i = 0; i < te.n; i++) cr_assert_eq(te.items[i].label, (int)(i / 10));
    seqset_free(&tr);
    seqset_free(&te);
    seqset_free(&va);
    spec.max_len = 20;  // tokens
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(tr.items[0].len, 15, "short clips stay short");
    cr_assert_eq(tr.items[11].len, 20, "long clips are truncated to max_len tokens");
    seqset_free(&tr);
}

Test(audio, limit_is_balanced_deterministic_and_skips_unused_files) {
    make_fsdd();
    DataSpec spec = fsdd_spec();
    spec.limit = 6;
    SeqSet a, b;
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &a, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n, 6);
    int per[3] = {0};
    for (size_t i = 0; i < a.n; i++) per[a.items[i].label]++;
    cr_assert(per[0] == 2 && per[1] == 2 && per[2] == 2, "%d %d %d", per[0], per[1], per[2]);
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &b, err, sizeof err), MB_OK, "%s", err);
    for (size_t i = 0; i < a.n; i++) cr_assert_eq(a.items[i].len, b.items[i].len, "same subset twice");
    seqset_free(&b);
    // Corrupt a test clip the subset does not use: the limited load must not open it.
    int used[30] = {0};
    for (size_t i = 0; i < a.n; i++) {
        size_t len = a.items[i].len - 10;  // = d*100 + sp*10 + t
        used[(len / 100) * 10 + (len / 10 % 10) * 5 + len % 10] = 1;
    }
    seqset_free(&a);
    int victim = 0;
    while (used[victim]) victim++;
    char rel[128];
    snprintf(rel, sizeof rel, "fsdd/recordings/%d_%s_%d.wav", victim / 10, (victim / 5) % 2 ? "bob" : "ann",
             victim % 5);
    write_bytes(tmp_path(rel), "garbage", 7);
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &a, err, sizeof err), MB_OK, "%s", err);
    seqset_free(&a);
    spec.limit = 0;
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &a, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, rel), "%s", err);
    cr_assert_eq(a.n, 0);
    cr_assert_null(a.items, "no partial output");
}

Test(audio, dataset_errors_name_the_first_bad_file_whatever_the_threads) {
    make_fsdd();
    write_bytes(tmp_path("fsdd/recordings/2_bob_3.wav"), "", 0);
    write_bytes(tmp_path("fsdd/recordings/1_ann_2.wav"), "RIFF....WAVEjunk", 16);
    DataSpec spec = fsdd_spec();
    size_t before = mem_current();
    for (int threads = 1; threads <= 3; threads++) {
#ifdef _OPENMP
        omp_set_num_threads(threads);
#endif
        SeqSet s;
        cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
        cr_assert(strstr(err, "recordings/1_ann_2.wav:16: WAV has no 'fmt ' or 'data' chunk"), "%s", err);
        cr_assert_null(strstr(err, "2_bob_3"), "%s", err);
        cr_assert_eq(s.n, 0);
    }
    cr_assert_eq(mem_current(), before, "everything loaded before the failure was released");
    // A badly named file and a missing folder.
    write_bytes(tmp_path("fsdd/recordings/seven_x.wav"), "x", 1);
    SeqSet s;
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "seven_x.wav: name does not follow"), "%s", err);
    strcpy(spec.path, "nowhere");
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &s, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "nowhere/recordings: not found") && strstr(err, "free-spoken-digit-dataset"), "%s", err);
}

Test(audio, parallel_load_matches_serial_load) {
    make_fsdd();
    DataSpec spec = fsdd_spec();
    SeqSet a, b;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &a, err, sizeof err), MB_OK, "%s", err);
#ifdef _OPENMP
    omp_set_num_threads(3);
#endif
    cr_assert_eq(audio_dataset_load(&spec, g_tmp, SPLIT_TEST, &b, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        cr_assert_eq(a.items[i].label, b.items[i].label);
        cr_assert_eq(a.items[i].len, b.items[i].len);
        cr_assert_eq(memcmp(a.items[i].feats, b.items[i].feats, a.items[i].len * 4 * sizeof(float)), 0);
    }
    seqset_free(&a);
    seqset_free(&b);
}

Test(audio, real_fsdd_counts_match_its_readme) {
    if (!media_is_dir(SHARED_DATA "/fsdd/recordings")) cr_skip_test("no " SHARED_DATA "/fsdd (real data absent)");
    DataSpec spec = fsdd_spec();
    spec.max_len = 2000;
    SeqSet tr, te;
    cr_assert_eq(audio_dataset_load(&spec, SHARED_DATA, SPLIT_TRAIN, &tr, err, sizeof err), MB_OK, "%s", err);
    cr_assert_eq(audio_dataset_load(&spec, SHARED_DATA, SPLIT_TEST, &te, err, sizeof err), MB_OK, "%s", err);
    // README: 10 digits x 6 speakers x 50 takes, takes 0-4 test -> 300 test, 2,700 train. (The
    // brief's "2500/500" does not follow from that rule or from the files; the README does.)
    cr_assert_eq(tr.n, 2700);
    cr_assert_eq(te.n, 300);
    size_t per[10] = {0}, shortest = (size_t)-1, longest = 0;
    for (size_t i = 0; i < te.n; i++) {
        per[te.items[i].label]++;
        shortest = te.items[i].len < shortest ? te.items[i].len : shortest;
        longest = te.items[i].len > longest ? te.items[i].len : longest;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(per[c], 30, "digit %d: %zu test clips", c, per[c]);
    // README: 1,148-18,262 samples per clip -> 287 tokens at least, capped at max_len 2000.
    cr_assert_geq(shortest, 287);
    cr_assert_eq(longest, 2000);
    seqset_free(&tr);
    seqset_free(&te);
}
