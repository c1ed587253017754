// The shared tokenizer/patcher: ids, truncation, normalisation, frames, patches and refusals.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>
#include "core/mem.h"
#include "core/status.h"
#include "loaders/tokenizer.h"

static char err[256];

Test(tokenizer, bytes_are_shifted_by_one_and_truncated) {
    const unsigned char b[] = {0, 'a', 255, 7};
    Sequence s = {.label = 5};
    cr_assert_eq(tok_bytes(&s, b, 4, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 4);
    cr_assert_null(s.feats);
    cr_assert_eq(seq_id(&s, 0), 1);
    cr_assert_eq(seq_id(&s, 1), 'a' + 1);
    cr_assert_eq(seq_id(&s, 2), 256);
    cr_assert_eq(seq_id(&s, 3), 8);
    cr_assert_eq(s.label, 5, "label is the caller's");
    sequence_free(&s);
    cr_assert_null(s.ids);
    cr_assert_eq(tok_bytes(&s, b, 4, 3, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 3);
    cr_assert_eq(seq_id(&s, 2), 256);
    sequence_free(&s);
    cr_assert_eq(tok_bytes(&s, b, 4, 10, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 4, "shorter inputs stay short");
    sequence_free(&s);
}

Test(tokenizer, buffers_are_accounted_and_released) {
    size_t before = mem_current();
    int32_t ids[1000];
    for (int i = 0; i < 1000; i++) ids[i] = i % 17;
    Sequence s = {0};
    cr_assert_eq(tok_ids(&s, ids, 1000, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.id_bytes, 1, "ids < 17 fit uint8_t");
    cr_assert_eq(mem_current() - before, 1000 * sizeof(uint8_t));
    for (int i = 0; i < 1000; i++) cr_assert_eq(seq_id(&s, (size_t)i), ids[i]);
    sequence_free(&s);
    cr_assert_eq(mem_current(), before);
}

Test(tokenizer, empty_and_negative_inputs_are_refused) {
    Sequence s = {0};
    const unsigned char b[1] = {0};
    err[0] = 0;
    cr_assert_eq(tok_bytes(&s, b, 0, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "empty"), "reason: %s", err);
    int32_t bad[3] = {1, -2, 3};
    cr_assert_eq(tok_ids(&s, bad, 3, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "token 1"), "reason: %s", err);
    float v[2] = {0, 0};
    cr_assert_eq(tok_series(&s, v, 0, 1, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert_eq(tok_series(&s, v, 2, 0, 0, err, sizeof err), MB_ERR_USAGE);
    cr_assert_eq(tok_audio(&s, v, 2, 0, 0, err, sizeof err), MB_ERR_USAGE);
    cr_assert_eq(tok_audio(&s, v, 0, 4, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert_eq(tok_image(&s, b, 0, 1, 1, 1, 1, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert_eq(tok_image(&s, b, 1, 1, 5, 1, 1, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert_eq(tok_image(&s, b, 1, 1, 1, 0, 0, 0, err, sizeof err), MB_ERR_USAGE);
    cr_assert_null(s.ids);
    cr_assert_null(s.feats);
}

Test(tokenizer, series_is_z_normalised_per_dimension) {
    // 4 steps x 2 dims; dim 0 = 1,2,3,4 (mean 2.5, sd sqrt(1.25)), dim 1 constant 7 -> 0.
    const float v[] = {1, 7, 2, 7, 3, 7, 4, 7};
    Sequence s = {0};
    cr_assert_eq(tok_series(&s, v, 4, 2, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 4);
    cr_assert_null(s.ids);
    double sd = sqrt(1.25);
    for (int t = 0; t < 4; t++) {
        cr_assert_float_eq(s.feats[t * 2], (t + 1 - 2.5) / sd, 1e-6);
        cr_assert_eq(s.feats[t * 2 + 1], 0.0f);
    }
    sequence_free(&s);
    // Truncation keeps the normalisation of the whole series.
    cr_assert_eq(tok_series(&s, v, 4, 2, 2, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 2);
    cr_assert_float_eq(s.feats[2], (2 - 2.5) / sd, 1e-6);
    sequence_free(&s);
    const float nanv[] = {1, NAN, 3};
    cr_assert_eq(tok_series(&s, nanv, 3, 1, 0, err, sizeof err), MB_ERR_DATA);
    cr_assert(strstr(err, "time step 1"), "reason: %s", err);
}

Test(tokenizer, audio_frames_zero_fill_the_last_one) {
    const float w[] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, -0.5f};
    Sequence s = {0};
    cr_assert_eq(tok_audio(&s, w, 6, 4, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 2);
    cr_assert_eq(s.feats[4], 0.5f);
    cr_assert_eq(s.feats[5], -0.5f);
    cr_assert_eq(s.feats[6], 0.0f);
    cr_assert_eq(s.feats[7], 0.0f);
    sequence_free(&s);
    cr_assert_eq(tok_audio(&s, w, 6, 4, 1, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 1, "max_len counts tokens");
    cr_assert_eq(s.feats[3], 0.4f);
    sequence_free(&s);
}

Test(tokenizer, image_grayscale_is_601_luma) {
    // 2 x 1 RGB: pure red, white.
    const unsigned char px[] = {255, 0, 0, 255, 255, 255};
    Sequence s = {0};
    cr_assert_eq(tok_image(&s, px, 2, 1, 3, 1, 1, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 2);
    cr_assert_eq(seq_id(&s, 0), 76);  // 0.299 * 255 = 76.2
    cr_assert_eq(seq_id(&s, 1), 255);
    sequence_free(&s);
    const unsigned char g[] = {3, 9, 200};
    cr_assert_eq(tok_image(&s, g, 3, 1, 1, 1, 1, 2, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 2);
    cr_assert_eq(seq_id(&s, 1), 9);
    sequence_free(&s);
}

Test(tokenizer, image_patches_are_row_major_with_zero_edges) {
    // 3 x 3 gray image, patch 2 -> 2 x 2 patches, the right/bottom ones partly zero.
    const unsigned char g[] = {0, 51, 102, 153, 204, 255, 10, 20, 30};
    Sequence s = {0};
    cr_assert_eq(tok_image(&s, g, 3, 3, 1, 0, 2, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.len, 4);
    cr_assert_null(s.ids);
    // patch 0 pixel (0,1) = 51 in all 3 channels
    cr_assert_float_eq(s.feats[0 * 12 + 1 * 3 + 2], 51 / 255.0f, 1e-7);
    // patch 0 pixel (1,1) = 204
    cr_assert_float_eq(s.feats[0 * 12 + 3 * 3 + 0], 204 / 255.0f, 1e-7);
    // patch 1 (top right): pixel (0,0) = 102, pixel (0,1) outside -> 0, pixel (1,0) = 255
    cr_assert_float_eq(s.feats[1 * 12 + 0], 102 / 255.0f, 1e-7);
    cr_assert_eq(s.feats[1 * 12 + 3], 0.0f);
    cr_assert_float_eq(s.feats[1 * 12 + 6], 1.0f, 1e-7);
    // patch 3 (bottom right): pixel (0,0) = 30, rest 0
    cr_assert_float_eq(s.feats[3 * 12 + 0], 30 / 255.0f, 1e-7);
    for (int i = 3; i < 12; i++) cr_assert_eq(s.feats[3 * 12 + i], 0.0f);
    sequence_free(&s);
    // RGB keeps channels apart.
    const unsigned char rgb[] = {10, 20, 30};
    cr_assert_eq(tok_image(&s, rgb, 1, 1, 3, 0, 1, 0, err, sizeof err), MB_OK);
    cr_assert_float_eq(s.feats[1], 20 / 255.0f, 1e-7);
    cr_assert_float_eq(s.feats[2], 30 / 255.0f, 1e-7);
    sequence_free(&s);
}

// Ids are stored in the narrowest type that holds them (issue 12, lean data): bytes (vocab 257)
// as uint16_t, pixels as uint8_t, tok_ids by its largest id; seq_ids_to_i32 widens them back
// exactly, and seqset_data_bytes counts what they hold.
Test(tokenizer, ids_are_stored_compactly_and_widen_back) {
    const unsigned char b[] = {0, 254, 255};
    Sequence s = {0};
    cr_assert_eq(tok_bytes(&s, b, 3, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.id_bytes, 2);
    int32_t w[4] = {-1, -1, -1, -1};
    seq_ids_to_i32(&s, w);
    cr_assert(w[0] == 1 && w[1] == 255 && w[2] == 256 && w[3] == -1, "%d %d %d %d", w[0], w[1], w[2], w[3]);
    sequence_free(&s);
    const unsigned char px[] = {0, 128, 255};
    cr_assert_eq(tok_image(&s, px, 3, 1, 1, 1, 1, 0, err, sizeof err), MB_OK);
    cr_assert_eq(s.id_bytes, 1);
    seq_ids_to_i32(&s, w);
    cr_assert(w[0] == 0 && w[1] == 128 && w[2] == 255);
    sequence_free(&s);
    static const int32_t widths[][2] = {{255, 1}, {256, 2}, {65535, 2}, {65536, 4}, {2000000000, 4}};
    for (size_t k = 0; k < 5; k++) {
        int32_t ids[3] = {0, widths[k][0], 7};
        size_t before = mem_current();
        cr_assert_eq(tok_ids(&s, ids, 3, 0, err, sizeof err), MB_OK);
        cr_assert_eq(s.id_bytes, (unsigned)widths[k][1], "largest id %d", widths[k][0]);
        cr_assert_eq(mem_current() - before, 3 * (size_t)widths[k][1]);
        seq_ids_to_i32(&s, w);
        for (int i = 0; i < 3; i++) cr_assert_eq(w[i], ids[i]);
        SeqSet set = {.items = &s, .n = 1, .vocab = 1};
        cr_assert_eq(seqset_data_bytes(&set), 3 * (size_t)widths[k][1]);
        sequence_free(&s);
    }
    cr_assert_eq(seq_id_bytes_for(256), 1);
    cr_assert_eq(seq_id_bytes_for(257), 2);
    cr_assert_eq(seq_id_bytes_for(65537), 4);
}
