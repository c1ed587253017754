// The one translation unit that compiles stb_image (STYLE: exactly one defines
// STB_IMAGE_IMPLEMENTATION). It is the copy in loaders/vendor/: Debian's 2.27 with the JPEG
// bit-reader and Huffman-table fixes fuzzing showed it needs (listed at the top of that file). Only the formats the image loader promises are built, which keeps
// the decoder surface (and the fuzzing target) small: PNG, JPEG, BMP. Every loader call goes
// through memory (stbi_*_from_memory), so stdio support is left out. The dimension cap here sits
// above loaders/image.c's own limit (IMAGE_MAX_SIDE, checked on stbi_info's answer before any
// decoding) so that an oversized header is reported with its size rather than as "corrupt".
#include "loaders/image.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS (1 << 20)

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include "loaders/vendor/stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
