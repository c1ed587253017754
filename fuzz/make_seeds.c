// Writes small seed inputs for the fuzz harnesses: audio (WAV PCM 8/16/24/32-bit, float, double,
// stereo, 44.1 kHz, mu-law, IMA ADPCM, FLAC, AIFF, AU) into <dir>/wav and images (PNG gray/gray+alpha/
// RGB/RGBA, BMP, JPEG) into <dir>/image. Built and run by fuzz/run.sh; see fuzz/README.md.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <math.h>
#include <sndfile.h>
#include <stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>

static int write_audio(const char *path, int format, int channels, int rate, int frames) {
    SF_INFO info = {0};
    info.channels = channels;
    info.samplerate = rate;
    info.format = format;
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) { fprintf(stderr, "make_seeds: %s: %s\n", path, sf_strerror(NULL)); return 1; }
    float *buf = malloc(sizeof(float) * (size_t)frames * (size_t)channels);
    for (int i = 0; i < frames; i++)
        for (int c = 0; c < channels; c++)
            buf[i * channels + c] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / (float)rate + (float)c);
    sf_writef_float(f, buf, frames);
    free(buf);
    sf_close(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: make_seeds DIR (DIR/wav and DIR/image must exist)\n"); return 2; }
    char p[4096];
    const char *d = argv[1];
    struct { const char *name; int format, channels, rate; } a[] = {
        {"u8.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1, 8000},
        {"s16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 8000},
        {"s24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1, 8000},
        {"s32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1, 8000},
        {"f32.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 1, 8000},
        {"f64.wav", SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 1, 8000},
        {"stereo.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2, 8000},
        {"rate44k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, 44100},
        {"ulaw.wav", SF_FORMAT_WAV | SF_FORMAT_ULAW, 1, 8000},
        {"adpcm.wav", SF_FORMAT_WAV | SF_FORMAT_IMA_ADPCM, 1, 8000},
        {"s16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1, 8000},
        {"s24_stereo.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 2, 16000},
        {"s16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 1, 8000},
        {"s16.au", SF_FORMAT_AU | SF_FORMAT_PCM_16, 1, 8000},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        snprintf(p, sizeof p, "%s/wav/%s", d, a[i].name);
        bad |= write_audio(p, a[i].format, a[i].channels, a[i].rate, 300);
    }
    unsigned char px[8 * 6 * 4];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (unsigned char)(i * 37 + 11);
    for (int c = 1; c <= 4; c++) {
        snprintf(p, sizeof p, "%s/image/c%d.png", d, c);
        bad |= !stbi_write_png(p, 8, 6, c, px, 8 * c);
    }
    snprintf(p, sizeof p, "%s/image/rgb.bmp", d);
    bad |= !stbi_write_bmp(p, 8, 6, 3, px);
    snprintf(p, sizeof p, "%s/image/rgba.bmp", d);
    bad |= !stbi_write_bmp(p, 8, 6, 4, px);
    snprintf(p, sizeof p, "%s/image/rgb.jpg", d);
    bad |= !stbi_write_jpg(p, 8, 6, 3, px, 90);
    snprintf(p, sizeof p, "%s/image/gray.jpg", d);
    bad |= !stbi_write_jpg(p, 8, 6, 1, px, 50);
    return bad;
}
