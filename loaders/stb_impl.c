// The one translation unit that compiles stb_image (STYLE: exactly one defines
// STB_IMAGE_IMPLEMENTATION), from Debian's libstb-dev (2.27), never a vendored copy.
// Fuzzing found two faults in 2.27's JPEG decoder (fuzz/README.md): a Huffman table with more
// than 256 codes (loaders/image.c refuses it before stb runs) and a bit-reader shift by >= 32
// when entropy data ends at a marker mid-code. The shift is undefined behaviour but harmless on
// the machines we build for (the garbage bits decode to a garbage image, no memory is touched;
// ASan agrees), and it cannot be detected without decoding, so this one file is built with
// -fno-sanitize=shift (Makefile) rather than patching Debian's header. Only the formats the image
// loader promises are built, which keeps
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
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
