// Pathfinder / Path-X image generator (SPEC §10.1; Linsley et al. 2018 as LRA used it: the
// drewlinsley/pathfinder `snakes2` generator with the settings LRA's TFDS builders list).
// Promises: one image depends on (params, seed, index) only, so a dataset is the same bytes
// whatever the thread count; geometry (snakes, markers) is returned for tests; pf_generate writes
// LRA's released layout atomically per file and marks a finished dataset (PF_COMPLETE) so that a
// cut-short one is never taken for complete (PF_PARTIAL stays behind).       -- loaders/pathfinder_gen.c
// Geometry, in output pixels (x right, y down, pixel i covers [i, i+1)):
//   a snake is a chain of paddles (segments of paddle_length). From a paddle with pivot Q and
//   direction a, the next pivot is Q + (L + 2m)(cos a, sin a); the next paddle runs from
//   Q' + m u to Q' + (L + m) u, u the unit vector of the new direction b, which is drawn among
//   ceil(2 pi (L + m)) equally spaced directions (about one per pixel of arc, as the reference;
//   random phase) with weight cos^2(min(continuity |b - a|, pi/2)),
//   keeping only paddles that stay clear of what is drawn (segment distance >= thickness + 2m
//   to every other paddle except the snake's own previous one, and padding + m + thickness/2
//   from the image edge). Two target snakes start from seed paddles seed_distance apart, in the
//   middle of the image (>= 2 seed_distance from the edges), and grow alternately; when one
//   cannot grow, the pair is restarted. Distractor snakes start anywhere free; one that cannot be
//   completed is retried a few times, then left out (as the reference allows). Markers: a disk
//   on the first paddle's tail of target snake o (random) and one on the last paddle's head of
//   snake o (label 1) or of the other snake (label 0).
// Rendering: every paddle and marker is drawn at 2x (antialias_scale 2 as LRA), with a one-pixel
//   linear coverage ramp, downsampled with a separable Lanczos-2 filter, clipped at 0, scaled by
//   its contrast and combined with max; the image is finally scaled to 0-255 (min to max), as
//   scipy.misc.imsave did.
#ifndef MAELRE_PATHFINDER_GEN_H
#define MAELRE_PATHFINDER_GEN_H
#include <stddef.h>
#include <stdint.h>

#define PF_MAX_PADDLES 16      // per snake
#define PF_MAX_SNAKES 24       // distractor snakes
#define PF_PER_BATCH 1000      // images per imgs/<batch> folder and metadata/<batch>.npy
#define PF_COMPLETE "COMPLETE"  // written last into the difficulty folder (what was generated)
#define PF_PARTIAL "PARTIAL"    // written first, removed last

typedef enum { PF_EASY = 0, PF_INTERMEDIATE, PF_HARD } PfDifficulty;

typedef struct {
    int size;                 // image side in pixels (32, 64, 128)
    PfDifficulty difficulty;
    int contour_length;       // paddles per target snake (6, 9, 14)
    int distractor_length;    // paddles per distractor snake (contour_length / 3)
    int n_distractors;        // distractor snakes (LRA: 20, 22, 35 paddles / distractor_length)
    double paddle_length, thickness;
    int margin_lo, margin_hi; // margin drawn per image, uniformly from [lo, hi]
    int padding;              // border kept free (px)
    double seed_distance, marker_radius, continuity;
    double target_contrast, distractor_contrast, marker_contrast;
    int aa;                   // drawing scale (2)
    int max_paddle_retrial;   // reference's max_paddle_retrial (2): seed tries per free spot
    int max_distractor_retrial;  // attempts per distractor snake beyond the first (4)
} PfParams;

// LRA's settings for size 32/64/128 and a difficulty. MB_ERR_USAGE for another size.
int pf_params(PfParams *p, int size, PfDifficulty d);
const char *pf_difficulty_name(PfDifficulty d);  // "easy", "intermediate", "hard"
const char *pf_difficulty_dir(PfDifficulty d);   // "curv_baseline", "curv_contour_length_9", "..._14"
int pf_difficulty_parse(const char *s, PfDifficulty *d);    // name or folder; 0 when unknown
// "pathfinder<size>/<difficulty dir>" -> size and difficulty; 0 when it is not that form.
int pf_parse_path(const char *path, int *size, PfDifficulty *d);

typedef struct { double x0, y0, x1, y1; } PfPaddle;    // tail (near end) -> head (far end)
typedef struct { int n; PfPaddle p[PF_MAX_PADDLES]; } PfSnake;

typedef struct {
    int label;                 // 1: both markers on the same target snake
    int margin;                // the margin drawn for this image
    PfSnake target[2];
    int n_distractors;         // distractor snakes placed (<= params.n_distractors)
    PfSnake distractor[PF_MAX_SNAKES];
    double marker[2][2];       // (x, y): [0] origin tip, [1] terminal tip
    int marker_snake[2];       // the target snake each marker sits on
    unsigned restarts;         // target pairs discarded before this one
} PfSample;

// Image `index` of stream `seed`: geometry into *s (may be NULL), pixels into img (size*size,
// row-major, 0-255). MB_ERR_INTERNAL only if no target pair fits after many restarts.
int pf_sample(const PfParams *p, uint64_t seed, uint64_t index, PfSample *s, uint8_t *img,
              char *err, size_t errlen);

// 8-bit grayscale PNG of img (w x h, row-major) into a malloc'd buffer (*png, *len). MB_ERR_NOMEM.
int pf_png(const uint8_t *img, int w, int h, unsigned char **png, size_t *len);
// Writes bytes to path through a temporary file in the same folder and a rename. MB_ERR_IO.
int pf_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

typedef struct {
    size_t n, label1, batches;
    size_t png_bytes;          // sum of the PNG file sizes
    unsigned restarts;         // target pairs restarted over all images
    size_t distractors_short;  // distractor snakes left out
} PfStats;

// Writes <root>/pathfinder<size>/<difficulty dir>/: imgs/<b>/sample_<i>.png (i restarts at 0 in
// every batch of PF_PER_BATCH), metadata/<b>.npy text lines "imgs/<b> sample_<i>.png <i> <label>
// <continuity> <contour_length> <distractor_length> <paddle_length> <thickness> <margin> 1" (the
// reference's fields), each file through a temporary name and rename, a metadata file after its
// batch's images, then PF_COMPLETE; PF_PARTIAL marks the folder meanwhile. Earlier metadata files
// there are removed first. Images in parallel (OpenMP), bytes independent of the thread count.
// progress (may be NULL) is called after each batch. MB_ERR_IO naming the file on write errors.
int pf_generate(const char *root, int size, PfDifficulty d, size_t count, uint64_t seed,
                void (*progress)(void *ctx, size_t done, size_t total), void *ctx, PfStats *st,
                char *err, size_t errlen);

// A contact sheet: `rows` rows of `cols` images of label 0, then `rows` rows of label 1 (images
// index 0, 1, ... of stream seed, sorted by label), each pixel repeated `zoom` times, one-pixel
// gaps, and a strip on the left with the row's label written as a digit. *out is malloc'd
// (*w x *h, 8-bit gray). MB_ERR_NOMEM / MB_ERR_INTERNAL as pf_sample.
int pf_contact_sheet(const PfParams *p, uint64_t seed, int cols, int rows, int zoom, uint8_t **out,
                     int *w, int *h, char *err, size_t errlen);

// <root>/pathfinder<size>/<difficulty dir>
int pf_dataset_dir(char *buf, size_t n, const char *root, int size, PfDifficulty d);

#endif
