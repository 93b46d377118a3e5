// WebP decoding through libwebp, reproducing Pillow 13's path (src/_webp.c, src/PIL/WebPImagePlugin.py):
// Pillow always decodes with WebPAnimDecoder created with default options (MODE_RGBA, not premultiplied,
// no threads), takes the first frame's canvas, and `.convert("RGB")` drops the alpha byte. Nothing is
// composited, so the RGB of transparent pixels is whatever the bitstream holds.
//
// WebPAnimDecoder allocates two full RGBA canvases (8 bytes per canvas pixel) before it decodes anything, so a
// few hundred bytes of animated WebP declaring a large canvas cost hundreds of MB. Its first frame is simple
// (WebPAnimDecoderGetNext: the canvas is zero-filled, the frame is decoded at its offset, there is no blending
// or disposal before it), so this file does the same without the canvases: the container is parsed with
// WebPDemux (which WebPAnimDecoderNew uses, so the same files are refused), the caller's RGB buffer is zeroed
// and the first frame is decoded straight into its rectangle of that buffer. Later frames are never decoded.
// libwebp has no allocator hook, so its working memory for the frame (the whole frame as ARGB for lossless,
// an alpha plane for lossy with alpha) is estimated from the frame header and checked against cc_limits first.
#include <stdio.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "CCodecs.h"
#include "common.h"

static uint32_t cc_le16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t cc_le24(const uint8_t *p) { return cc_le16(p) | ((uint32_t)p[2] << 16); }
static uint32_t cc_le32(const uint8_t *p) { return cc_le24(p) | ((uint32_t)p[3] << 24); }

/// Canvas size from the first chunk header, read the way Pillow's WebPImagePlugin._get_size does (so a
/// hand-made zero-sized VP8 header is reported as zero-sized rather than as a bitstream error).
static int cc_webp_header_size(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height) {
    if (size < 30) return 0;
    const uint8_t *fourcc = data + 12;
    if (memcmp(fourcc, "VP8 ", 4) == 0 && data[23] == 0x9D && data[24] == 0x01 && data[25] == 0x2A) {
        *width = cc_le16(data + 26) & 0x3FFF;
        *height = cc_le16(data + 28) & 0x3FFF;
        return 1;
    }
    if (memcmp(fourcc, "VP8X", 4) == 0) {
        *width = cc_le24(data + 24) + 1;
        *height = cc_le24(data + 27) + 1;
        return 1;
    }
    if (memcmp(fourcc, "VP8L", 4) == 0 && data[20] == 0x2F) {
        uint32_t bits = cc_le32(data + 21);
        *width = (bits & 0x3FFF) + 1;
        *height = ((bits >> 14) & 0x3FFF) + 1;
        return 1;
    }
    return 0;
}

static void cc_webp_status(VP8StatusCode code, cc_result *result) {
    switch (code) {
    case VP8_STATUS_OK:
        result->status = CC_OK;
        break;
    case VP8_STATUS_NOT_ENOUGH_DATA:
        result->status = CC_TRUNCATED;
        cc_set_message(result, "WebP data ends before the image is complete");
        break;
    case VP8_STATUS_OUT_OF_MEMORY:
        result->status = CC_NO_MEMORY;
        cc_set_message(result, "libwebp is out of memory");
        break;
    case VP8_STATUS_UNSUPPORTED_FEATURE:
        result->status = CC_UNSUPPORTED;
        cc_set_message(result, "unsupported WebP feature");
        break;
    default:
        result->status = CC_CORRUPT;
        snprintf(result->message, sizeof result->message, "invalid WebP bitstream (libwebp status %d)", (int)code);
        break;
    }
}

void cc_webp_info(const uint8_t *data, size_t size, cc_result *result) {
    cc_result_init(result);
    uint32_t header_width = 0, header_height = 0;
    if (cc_webp_header_size(data, size, &header_width, &header_height) && (header_width == 0 || header_height == 0)) {
        result->status = CC_ZERO_SIZE;
        cc_set_message(result, "WebP header declares a zero width or height");
        return;
    }
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(data, size, &features);
    cc_webp_status(code, result);
    if (code != VP8_STATUS_OK) return;
    if (features.width <= 0 || features.height <= 0) {
        result->status = CC_ZERO_SIZE;
        cc_set_message(result, "WebP declares a zero width or height");
        return;
    }
    result->width = (uint32_t)features.width;
    result->height = (uint32_t)features.height;
}

/// Why WebPAnimDecoderNew refused the data: an incomplete container is truncation, anything else corruption.
static void cc_webp_explain_container_failure(const uint8_t *data, size_t size, cc_result *result) {
    WebPData webp_data = {data, size};
    WebPDemuxState state = WEBP_DEMUX_PARSE_ERROR;
    WebPDemuxer *demux = WebPDemuxPartial(&webp_data, &state);
    if (demux != NULL) WebPDemuxDelete(demux);
    if (state == WEBP_DEMUX_PARSING_HEADER || state == WEBP_DEMUX_PARSED_HEADER) {
        result->status = CC_TRUNCATED;
        cc_set_message(result, "WebP data ends before the container is complete");
    } else {
        result->status = CC_CORRUPT;
        cc_set_message(result, "invalid WebP container");
    }
}

/// Bytes libwebp needs to decode a frame beyond the output: lossless (VP8L) keeps the whole frame as 32-bit ARGB
/// plus a few cache rows; lossy keeps a few macroblock rows of YUV and, with alpha, the whole alpha plane.
static size_t cc_webp_frame_memory(const WebPBitstreamFeatures *features) {
    size_t width = (size_t)features->width, height = (size_t)features->height;
    size_t rows = 64 * width * 4 + (1u << 20);
    if (features->format == 2) return width * height * 4 + rows;
    return (features->has_alpha ? width * height : 0) + rows;
}

void cc_webp_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                    cc_result *result) {
    cc_webp_info(data, size, result);
    if (result->status != CC_OK) return;
    size_t width = result->width, height = result->height;
    if (!cc_rgb_size_matches(width, height, out_size)) {
        result->status = CC_BAD_BUFFER;
        cc_set_message(result, "output buffer size does not match the WebP dimensions");
        return;
    }
    WebPData webp_data = {data, size};
    WebPDemuxer *demux = WebPDemux(&webp_data);
    if (demux == NULL) {
        cc_webp_explain_container_failure(data, size, result);
        return;
    }
    WebPIterator frame;
    if (WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH) != width || WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT) != height) {
        WebPDemuxDelete(demux);
        result->status = CC_CORRUPT;
        cc_set_message(result, "WebP canvas size disagrees with the bitstream header");
        return;
    }
    if (!WebPDemuxGetFrame(demux, 1, &frame)) {
        WebPDemuxDelete(demux);
        result->status = CC_CORRUPT;
        cc_set_message(result, "cannot decode the first WebP frame");
        return;
    }
    // The demuxer checked that the frame lies inside the canvas.
    WebPDecoderConfig config;
    VP8StatusCode code = VP8_STATUS_INVALID_PARAM;
    if (WebPInitDecoderConfig(&config)) {
        code = WebPGetFeatures(frame.fragment.bytes, frame.fragment.size, &config.input);
    }
    if (code == VP8_STATUS_OK) {
        size_t needed = cc_webp_frame_memory(&config.input);
        result->peak_memory = needed;
        if (limits != NULL && limits->max_memory != 0 && needed > limits->max_memory) {
            WebPDemuxReleaseIterator(&frame);
            WebPDemuxDelete(demux);
            result->status = CC_LIMIT_MEMORY;
            snprintf(result->message, sizeof result->message,
                     "the first frame (%dx%d) needs about %zu bytes to decode", config.input.width,
                     config.input.height, needed);
            return;
        }
        memset(out, 0, out_size);  // WebPAnimDecoder's zero-filled canvas, alpha dropped
        config.output.colorspace = MODE_RGB;
        config.output.is_external_memory = 1;
        config.output.u.RGBA.rgba = out + ((size_t)frame.y_offset * width + (size_t)frame.x_offset) * 3;
        config.output.u.RGBA.stride = (int)(width * 3);
        config.output.u.RGBA.size = out_size - ((size_t)frame.y_offset * width + (size_t)frame.x_offset) * 3;
        code = WebPDecode(frame.fragment.bytes, frame.fragment.size, &config);
        WebPFreeDecBuffer(&config.output);
    }
    WebPDemuxReleaseIterator(&frame);
    WebPDemuxDelete(demux);
    if (code != VP8_STATUS_OK) {
        cc_webp_status(code, result);
        if (result->status == CC_OK) result->status = CC_CORRUPT;
        return;
    }
    result->status = CC_OK;
    result->message[0] = 0;
}
