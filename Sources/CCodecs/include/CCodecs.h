// C glue over libjpeg-turbo, libpng and libwebp (jpeg.c, png.c, webp.c).
//
// libjpeg and libpng report fatal errors by longjmp, which Swift cannot catch, so every entry point here
// does its own setjmp and turns failures into a status code plus a message. Nothing in this file aborts,
// prints, or keeps global state; all functions are safe to call concurrently on different inputs.
//
// Every format has two calls:
//   cc_*_info    reads only the header: fills width/height (or an error) without allocating pixel memory, so
//                the caller can refuse decompression bombs before anything big is allocated.
//   cc_*_decode  decodes into a caller-provided buffer of exactly width*height*3 bytes, 8-bit RGB, rows top to
//                bottom, with the same pixel values Pillow 13's `Image.open(f).convert("RGB")` produces.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Outcome of a codec call.
typedef enum {
    CC_OK = 0,
    /// The data ends before the image is complete.
    CC_TRUNCATED = 1,
    /// The data is malformed (bad markers, CRC, entropy/zlib data, ...).
    CC_CORRUPT = 2,
    /// A valid file the decoder (or Pillow) does not handle, e.g. 12-bit JPEG or a 2-channel JPEG.
    CC_UNSUPPORTED = 3,
    /// The header declares a zero width or height.
    CC_ZERO_SIZE = 4,
    /// The header declares dimensions beyond what the library supports; width/height are filled when known.
    CC_TOO_LARGE = 5,
    /// Memory allocation failed.
    CC_NO_MEMORY = 6,
    /// The caller's buffer does not match the image (programmer error or a header that changed between calls).
    CC_BAD_BUFFER = 7,
} cc_status;

typedef struct {
    /// One of cc_status.
    int status;
    /// Image dimensions from the header (0 when unknown).
    uint32_t width;
    uint32_t height;
    /// Human-readable detail from the library (NUL-terminated, possibly empty).
    char message[200];
} cc_result;

void cc_jpeg_info(const uint8_t *data, size_t size, cc_result *result);
void cc_jpeg_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, cc_result *result);

void cc_png_info(const uint8_t *data, size_t size, cc_result *result);
void cc_png_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, cc_result *result);

void cc_webp_info(const uint8_t *data, size_t size, cc_result *result);
void cc_webp_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, cc_result *result);

#ifdef __cplusplus
}
#endif
