// PNG decoding through libpng, reproducing what Pillow 13 gives for `Image.open(f).convert("RGB")`.
// Pillow decodes PNG itself (src/PIL/PngImagePlugin.py + its zlib decoder and unpackers); observed behaviour
// that this file reproduces with libpng transforms:
//   - 16-bit RGB / RGBA / gray+alpha keep the high byte of each sample (rawmodes "RGB;16B", "RGBA;16B", ...),
//     which is libpng's png_set_strip_16 (truncation, not rounding).
//   - 16-bit gray opens as mode "I;16" and I;16 -> RGB clips each value to 0..255 (Convert.c), so it is read
//     at 16 bits here and clipped by hand.
//   - 1/2/4-bit gray scale by 255/85/17 (png_set_expand_gray_1_2_4_to_8 does the same).
//   - palette images map through the PLTE entries; indices past the end of PLTE give black (libpng 1.6 keeps
//     a zero-filled 256-entry palette, which matches).
//   - alpha and tRNS are dropped, never composited.
//   - Pillow verifies the CRC of every chunk before the first IDAT and rejects the file on a mismatch, but does
//     not check IDAT's CRC or anything after the image data; IEND may be missing. libpng's own CRC checks are
//     therefore switched off and the pre-IDAT chunks are validated here, and png_read_end is never called.
// Cost limits (hostile files; see cc_limits in CCodecs.h):
//   - Every ancillary chunk except tRNS is skipped unread (png_set_keep_unknown_chunks NEVER, -1): none of them
//     changes the pixels Pillow gives, and by default libpng inflates zTXt/iTXt/iCCP (up to 8 MB each) and keeps
//     up to 1000 of them until the reader is destroyed, i.e. gigabytes from a few hundred KB.
//   - libpng allocates through a counting allocator that refuses to go past cc_limits.max_memory, so whatever a
//     file asks for, libpng's working memory stays under the budget (row buffers and zlib state need ~100 KB).
//   - Nothing after the image data is inflated: libpng stops at the last row, and the error-path check of where
//     the zlib stream ends reads only the IDAT run and stops after the bytes the image can use.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <zlib.h>

#include "CCodecs.h"
#include "common.h"

static const uint8_t cc_png_signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

static uint32_t cc_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/// CRC-32 (ISO 3309, as PNG uses it) over the chunk type and data; zlib's table-driven crc32 keeps files made
/// of many tiny chunks cheap.
static uint32_t cc_crc32(const uint8_t *bytes, size_t count) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (count > 0) {
        uInt n = count > 0x40000000u ? 0x40000000u : (uInt)count;
        crc = crc32(crc, bytes, n);
        bytes += n;
        count -= n;
    }
    return (uint32_t)crc;
}

/// Walks the chunks before the image data. With `through_idat` it validates every chunk up to the first IDAT
/// (framing and CRC, as Pillow does while opening); without it, only the signature and IHDR.
static int cc_png_scan(const uint8_t *data, size_t size, int through_idat, cc_result *result) {
    if (size < 8 || memcmp(data, cc_png_signature, 8) != 0) {
        result->status = size < 8 ? CC_TRUNCATED : CC_CORRUPT;
        cc_set_message(result, "not a PNG signature");
        return 0;
    }
    size_t pos = 8;
    int index = 0;
    for (;;) {
        if (size - pos < 8) {
            result->status = CC_TRUNCATED;
            cc_set_message(result, "PNG data ends inside a chunk header");
            return 0;
        }
        uint32_t length = cc_be32(data + pos);
        const uint8_t *type = data + pos + 4;
        if (length > 0x7FFFFFFFu) {
            result->status = CC_CORRUPT;
            cc_set_message(result, "PNG chunk length out of range");
            return 0;
        }
        int is_idat = memcmp(type, "IDAT", 4) == 0;
        if (index == 0 && (memcmp(type, "IHDR", 4) != 0 || length != 13)) {
            result->status = CC_CORRUPT;
            cc_set_message(result, "PNG does not start with an IHDR chunk");
            return 0;
        }
        if (is_idat) return 1;  // IDAT's own CRC is not checked (Pillow does not check it).
        if ((size_t)length + 4 > size - pos - 8) {
            result->status = CC_TRUNCATED;
            cc_set_message(result, "PNG data ends inside a chunk");
            return 0;
        }
        const uint8_t *body = data + pos + 8;
        uint32_t stored_crc = cc_be32(body + length);
        if (cc_crc32(type, (size_t)length + 4) != stored_crc) {
            result->status = CC_CORRUPT;
            snprintf(result->message, sizeof result->message, "bad CRC in PNG chunk %c%c%c%c",
                     type[0], type[1], type[2], type[3]);
            return 0;
        }
        if (index == 0) {
            result->width = cc_be32(body);
            result->height = cc_be32(body + 4);
            if (!through_idat) return 1;
        }
        if (memcmp(type, "IEND", 4) == 0) {
            result->status = CC_CORRUPT;
            cc_set_message(result, "PNG has no image data (IEND before IDAT)");
            return 0;
        }
        pos += 12 + (size_t)length;
        index++;
    }
}

void cc_png_info(const uint8_t *data, size_t size, cc_result *result) {
    cc_result_init(result);
    if (!cc_png_scan(data, size, 0, result)) return;
    if (result->width == 0 || result->height == 0) {
        result->status = CC_ZERO_SIZE;
        cc_set_message(result, "PNG IHDR declares a zero width or height");
        return;
    }
    if (result->width > 0x7FFFFFFFu || result->height > 0x7FFFFFFFu) {
        result->status = CC_CORRUPT;
        cc_set_message(result, "PNG IHDR dimensions out of range");
        return;
    }
    result->status = CC_OK;
}

typedef struct {
    jmp_buf jump;
    const uint8_t *data;
    size_t size;
    size_t pos;
    /// The reader asked for bytes past the end of the data.
    int hit_end;
    /// Rows (or interlace-pass rows) fully decoded so far, counted by a no-op user transform.
    size_t rows_decoded;
    png_bytep *rows;
    // Image facts the error path needs; kept here (not in locals) because locals changed after setjmp are
    // indeterminate after longjmp.
    int interlaced;
    int gray16;
    /// Output colour of a pixel the decoder never reached: Pillow's image starts zeroed, so sample 0, i.e.
    /// palette entry 0 for palette images.
    uint8_t fill[3];
    char message[200];
    /// The counting allocator's budget (0: none), bytes held now, the most held at once, and whether it refused.
    size_t memory_budget;
    size_t memory_in_use;
    size_t memory_peak;
    int memory_refused;
} cc_png_context;

/// Every libpng allocation carries its size in front of it, so the free function can count it back.
typedef union {
    size_t size;
    max_align_t align;
} cc_png_block_header;

static png_voidp cc_png_malloc(png_structp png, png_alloc_size_t size) {
    cc_png_context *ctx = (cc_png_context *)png_get_mem_ptr(png);
    if (size > SIZE_MAX - sizeof(cc_png_block_header) ||
        (ctx->memory_budget != 0 && size > ctx->memory_budget - ctx->memory_in_use)) {
        // libpng turns NULL into an "out of memory" error (or a warning and a skipped chunk): no abort.
        ctx->memory_refused = 1;
        return NULL;
    }
    cc_png_block_header *block = (cc_png_block_header *)malloc(sizeof(cc_png_block_header) + size);
    if (block == NULL) return NULL;
    block->size = size;
    ctx->memory_in_use += size;
    if (ctx->memory_in_use > ctx->memory_peak) ctx->memory_peak = ctx->memory_in_use;
    return block + 1;
}

static void cc_png_free(png_structp png, png_voidp pointer) {
    if (pointer == NULL) return;
    cc_png_context *ctx = (cc_png_context *)png_get_mem_ptr(png);
    cc_png_block_header *block = (cc_png_block_header *)pointer - 1;
    ctx->memory_in_use -= block->size;
    free(block);
}

static void cc_png_error_fn(png_structp png, png_const_charp message) {
    cc_png_context *ctx = (cc_png_context *)png_get_error_ptr(png);
    size_t n = strlen(message);
    if (n >= sizeof ctx->message) n = sizeof ctx->message - 1;
    memcpy(ctx->message, message, n);
    ctx->message[n] = 0;
    longjmp(ctx->jump, 1);
}

static void cc_png_warning_fn(png_structp png, png_const_charp message) {
    // Benign problems (bad Adler-32 after the last row, extra data, odd ancillary chunks) are ignored:
    // Pillow stops reading the zlib stream once it has every row.
    (void)png;
    (void)message;
}

static void cc_png_read_fn(png_structp png, png_bytep out, size_t count) {
    cc_png_context *ctx = (cc_png_context *)png_get_io_ptr(png);
    if (count > ctx->size - ctx->pos) {
        ctx->hit_end = 1;
        png_error(png, "PNG data ends unexpectedly");
    }
    memcpy(out, ctx->data + ctx->pos, count);
    ctx->pos += count;
}

/// Called by libpng once per decoded row (per interlace-pass row), before the row is stored in the output.
static void cc_png_count_row(png_structp png, png_row_infop row_info, png_bytep data) {
    (void)row_info;
    (void)data;
    cc_png_context *ctx = (cc_png_context *)png_get_error_ptr(png);
    ctx->rows_decoded++;
}

/// Number of row decodes libpng performs for the image: one per row, or one per row of each non-empty Adam7 pass.
static size_t cc_png_expected_rows(size_t width, size_t height, int interlaced) {
    if (!interlaced) return height;
    size_t total = 0;
    for (int pass = 0; pass < 7; pass++) {
        if (PNG_PASS_COLS(width, pass) > 0) total += PNG_PASS_ROWS(height, pass);
    }
    return total;
}

/// Bytes of filtered scanlines (a filter byte per row plus packed samples) the image data inflates to; zlib
/// data beyond this can only be surplus.
static size_t cc_png_raw_size(const uint8_t *ihdr_body, size_t width, size_t height) {
    static const int channels_by_color_type[7] = {1, 0, 3, 1, 2, 0, 4};
    int depth = ihdr_body[8], color_type = ihdr_body[9], interlaced = ihdr_body[12] != 0;
    int channels = color_type <= 6 ? channels_by_color_type[color_type] : 0;
    size_t bits_per_pixel = (size_t)(channels > 0 ? channels : 4) * (size_t)(depth > 0 && depth <= 16 ? depth : 16);
    size_t total = 0;
    for (int pass = 0; pass < (interlaced ? 7 : 1); pass++) {
        size_t cols = interlaced ? PNG_PASS_COLS(width, pass) : width;
        size_t rows = interlaced ? PNG_PASS_ROWS(height, pass) : height;
        if (cols > 0) total += rows * (1 + (cols * bits_per_pixel + 7) / 8);
    }
    return total;
}

/// libpng says "Not enough image data" both when the IDAT chunks run out (Pillow: "image file is truncated")
/// and when the zlib stream inside them ends before the last row (Pillow accepts that and leaves the rest of
/// the image at pixel value 0). Tell them apart by inflating the image data: true when the zlib stream ends
/// properly. Like libpng and Pillow, only the run of consecutive IDAT chunks is image data; inflating stops
/// after `raw_size` bytes (a stream that long did not end early), so compressed data after the image costs nothing.
static int cc_png_zlib_stream_ends(const uint8_t *data, size_t size, size_t raw_size) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit(&stream) != Z_OK) return 0;
    uint8_t sink[4096];
    int status = Z_OK;
    int in_idat_run = 0;
    size_t pos = 8;
    while (status == Z_OK && size - pos >= 12 && stream.total_out <= raw_size) {
        uint32_t length = cc_be32(data + pos);
        if ((size_t)length > size - pos - 12) break;
        if (memcmp(data + pos + 4, "IDAT", 4) == 0) {
            in_idat_run = 1;
            stream.next_in = (Bytef *)(data + pos + 8);
            stream.avail_in = length;
            while (status == Z_OK && stream.avail_in > 0 && stream.total_out <= raw_size) {
                stream.next_out = sink;
                stream.avail_out = sizeof sink;
                status = inflate(&stream, Z_NO_FLUSH);
            }
        } else if (in_idat_run) {
            break;  // the image data ended with the IDAT run
        }
        pos += 12 + (size_t)length;
    }
    int ended = status == Z_STREAM_END && stream.total_out <= raw_size;
    inflateEnd(&stream);
    return ended;
}

/// Pillow opens 16-bit gray as "I;16", and I;16 -> RGB clips each value to 255. The rows hold big-endian 16-bit
/// samples at the start of each 3*width-byte row; expand them in place, back to front.
static void cc_png_finish_gray16(uint8_t *out, size_t width, size_t height, int gray16) {
    if (!gray16) return;
    for (size_t y = 0; y < height; y++) {
        uint8_t *row = out + y * width * 3;
        for (size_t x = width; x-- > 0;) {
            unsigned v = ((unsigned)row[2 * x] << 8) | row[2 * x + 1];
            uint8_t g = v > 255 ? 255 : (uint8_t)v;
            row[3 * x] = g;
            row[3 * x + 1] = g;
            row[3 * x + 2] = g;
        }
    }
}

void cc_png_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                   cc_result *result) {
    cc_result_init(result);
    if (!cc_png_scan(data, size, 1, result)) return;
    size_t width = result->width, height = result->height;
    if (width == 0 || height == 0) {
        result->status = CC_ZERO_SIZE;
        cc_set_message(result, "PNG IHDR declares a zero width or height");
        return;
    }
    if (!cc_rgb_size_matches(width, height, out_size)) {
        result->status = CC_BAD_BUFFER;
        cc_set_message(result, "output buffer size does not match the PNG dimensions");
        return;
    }

    cc_png_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.size = size;
    ctx.memory_budget = limits != NULL ? limits->max_memory : 0;
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &ctx, cc_png_error_fn, cc_png_warning_fn,
                                               &ctx, cc_png_malloc, cc_png_free);
    if (png == NULL) {
        result->status = ctx.memory_refused ? CC_LIMIT_MEMORY : CC_NO_MEMORY;
        cc_set_message(result, "cannot create libpng reader");
        return;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        result->status = ctx.memory_refused ? CC_LIMIT_MEMORY : CC_NO_MEMORY;
        cc_set_message(result, "cannot create libpng info");
        return;
    }
    if (setjmp(ctx.jump)) {
        size_t expected = cc_png_expected_rows(width, height, ctx.interlaced);
        int complete = ctx.rows != NULL && ctx.rows_decoded >= expected;
        int stream_ended_early = ctx.rows != NULL && !ctx.hit_end &&
            strstr(ctx.message, "Not enough image data") != NULL &&
            cc_png_zlib_stream_ends(data, size, cc_png_raw_size(data + 16, width, height));
        if (complete || stream_ended_early) {
            // Every row is in the output (the error came from reading past the image data, which Pillow never
            // does), or the zlib stream ended early and Pillow keeps what it has.
            if (!complete && !ctx.interlaced) {
                for (size_t y = ctx.rows_decoded; y < height; y++) {
                    uint8_t *row = out + y * width * 3;
                    for (size_t x = 0; x < width; x++) memcpy(row + 3 * x, ctx.fill, 3);
                }
            }
            free(ctx.rows);
            png_destroy_read_struct(&png, &info, NULL);
            cc_png_finish_gray16(out, width, height, ctx.gray16);
            result->peak_memory = ctx.memory_peak;
            result->status = CC_OK;
            result->message[0] = 0;
            return;
        }
        free(ctx.rows);
        png_destroy_read_struct(&png, &info, NULL);
        cc_set_message(result, ctx.message);
        result->peak_memory = ctx.memory_peak;
        if (ctx.memory_refused) {
            result->status = CC_LIMIT_MEMORY;
        } else if (ctx.hit_end || strstr(ctx.message, "Not enough image data") != NULL) {
            result->status = CC_TRUNCATED;
        } else if (strstr(ctx.message, "Insufficient memory") != NULL || strstr(ctx.message, "out of memory") != NULL) {
            result->status = CC_NO_MEMORY;
        } else {
            result->status = CC_CORRUPT;
        }
        return;
    }
    png_set_read_fn(png, &ctx, cc_png_read_fn);
    // Size limits are the caller's (checked before this call); allow anything the format allows.
    png_set_user_limits(png, 0x7FFFFFFF, 0x7FFFFFFF);
    // Skip every ancillary chunk but tRNS without reading it into memory (see the top of this file). The chunk
    // limits are a second line should a future libpng handle some chunk anyway: no chunk over 1 MB, at most 32
    // stored ancillary chunks.
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_chunk_malloc_max(png, 1u << 20);
    png_set_chunk_cache_max(png, 32);
    // CRCs before IDAT were checked by cc_png_scan; the rest are ignored as Pillow ignores them.
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_read_info(png, info);

    png_uint_32 png_width = 0, png_height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &png_width, &png_height, &bit_depth, &color_type, NULL, NULL, NULL);
    if (png_width != width || png_height != height) {
        png_error(png, "IHDR changed between reads");
    }
    ctx.gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    ctx.interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp palette = NULL;
        int palette_size = 0;
        if (png_get_PLTE(png, info, &palette, &palette_size) && palette_size > 0) {
            ctx.fill[0] = palette[0].red;
            ctx.fill[1] = palette[0].green;
            ctx.fill[2] = palette[0].blue;
        }
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (bit_depth == 16 && !ctx.gray16) {
        png_set_strip_16(png);
    }
    if ((color_type & PNG_COLOR_MASK_ALPHA) != 0 || color_type == PNG_COLOR_TYPE_PALETTE) {
        // Palette expansion would add an alpha channel from tRNS; strip it too.
        png_set_strip_alpha(png);
    }
    if ((color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) && !ctx.gray16) {
        png_set_gray_to_rgb(png);
    }
    png_set_interlace_handling(png);
    png_set_read_user_transform_fn(png, cc_png_count_row);
    png_read_update_info(png, info);

    size_t expected_row_bytes = ctx.gray16 ? width * 2 : width * 3;
    int expected_channels = ctx.gray16 ? 1 : 3;
    if (png_get_rowbytes(png, info) != expected_row_bytes || png_get_channels(png, info) != expected_channels) {
        png_error(png, "unexpected libpng row layout after transforms");
    }
    ctx.rows = (png_bytep *)malloc(height * sizeof(png_bytep));
    if (ctx.rows == NULL) {
        png_error(png, "out of memory for row pointers");
    }
    for (size_t y = 0; y < height; y++) ctx.rows[y] = out + y * width * 3;
    if (ctx.interlaced) {
        // Passes only write their own pixels; start from the "never reached" colour in case the stream ends early.
        for (size_t i = 0; i < width * height; i++) memcpy(out + 3 * i, ctx.fill, 3);
    }
    png_read_image(png, ctx.rows);
    cc_png_finish_gray16(out, width, height, ctx.gray16);
    free(ctx.rows);
    ctx.rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    result->peak_memory = ctx.memory_peak;
    result->status = CC_OK;
    result->message[0] = 0;
}
