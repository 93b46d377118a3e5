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
//
// Hostile files can cost far more than their size (ancillary PNG chunks that inflate to gigabytes, progressive
// JPEGs with thousands of scans, huge animation canvases), so decoding runs under cc_limits: the library's own
// working memory (beyond the caller's buffer) and the number of JPEG scans are capped, and a file over a cap
// fails with CC_LIMIT_MEMORY or CC_LIMIT_SCANS instead of costing seconds or gigabytes.
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
    /// The decoder would need more working memory than cc_limits.max_memory allows.
    CC_LIMIT_MEMORY = 8,
    /// A progressive JPEG has more scans than cc_limits.max_scans.
    CC_LIMIT_SCANS = 9,
    /// A JPEG's scans cover the image more than cc_limits.max_scan_passes times.
    CC_LIMIT_SCAN_PASSES = 10,
} cc_status;

/// What one decode may cost. Zero in a field means "no limit" (only for tests that measure the uncapped cost).
typedef struct {
    /// Bytes the codec library may hold at once besides the caller's output buffer (libpng: every allocation,
    /// through a counting allocator; libjpeg: its memory manager's max_memory_to_use, which bounds the
    /// whole-image coefficient buffer of progressive files; libwebp: the first frame's decode buffers, estimated
    /// from its header before decoding since libwebp has no allocator hook).
    size_t max_memory;
    /// Largest number of JPEG scans (SOS markers) read before the file is refused.
    uint32_t max_scans;
    /// Largest total of the JPEG scans' coverage, in whole-image passes: each scan adds the blocks of its components
    /// divided by the blocks of the image (a scan of every component adds 1, of one component of three about 1/3).
    /// Decoding time grows with this, not with the scan count alone: 400 near-empty scans over a 4 MP image cost
    /// 1.5 s under a 500-scan cap. Real progressive files total under 6.
    uint32_t max_scan_passes;
} cc_limits;

typedef struct {
    /// One of cc_status.
    int status;
    /// Image dimensions from the header (0 when unknown).
    uint32_t width;
    uint32_t height;
    /// Human-readable detail from the library (NUL-terminated, possibly empty).
    char message[200];
    /// What the decode cost, for tests and logs: JPEG scans started (SOS markers read).
    uint32_t scans;
    /// The most bytes the codec library held at once (libpng: measured by the counting allocator; libjpeg: the
    /// coefficient buffer it asked for; libwebp: the estimate checked against max_memory).
    size_t peak_memory;
} cc_result;

void cc_jpeg_info(const uint8_t *data, size_t size, cc_result *result);
void cc_jpeg_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                  cc_result *result);

void cc_png_info(const uint8_t *data, size_t size, cc_result *result);
void cc_png_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                  cc_result *result);

void cc_webp_info(const uint8_t *data, size_t size, cc_result *result);
void cc_webp_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                  cc_result *result);

#ifdef __cplusplus
}
#endif
