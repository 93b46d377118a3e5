// JPEG decoding through the libjpeg API (libjpeg-turbo), reproducing Pillow 13's JPEG path:
//   Pillow src/PIL/JpegImagePlugin.py picks the mode from the SOF component count (1 -> "L", 3 -> "RGB",
//   4 -> "CMYK" with rawmode "CMYK;I", i.e. Adobe-inverted, always), and src/libImaging/JpegDecode.c asks
//   libjpeg for that output colour space while keeping every other libjpeg default (JDCT_ISLOW, fancy
//   upsampling, libjpeg's own guess of the stored colour space, so YCCK is converted to CMYK by libjpeg).
//   `.convert("RGB")` then replicates L, and for CMYK applies src/libImaging/Convert.c cmyk2rgb.
// Pillow ignores libjpeg warnings, but its suspending data source turns running out of data into
// "image file is truncated"; libjpeg's memory source instead warns JWRN_JPEG_EOF and pads with a fake EOI,
// so that warning is turned into a truncation error here while the image is still incomplete.
// Cost limits (hostile files; see cc_limits in CCodecs.h), as libjpeg-turbo's own documentation advises for
// untrusted input (djpeg -maxscans, TJPARAM_SCANLIMIT, TJPARAM_MAXMEMORY):
//   - A progressive file may hold thousands of tiny scans, each a pass over the whole coefficient buffer (libjpeg
//     only warns about bogus progressions), so a few hundred KB can cost minutes. A progress monitor counts the
//     SOS markers and the blocks their components cover, and refuses the file past cc_limits.max_scans scans or
//     cc_limits.max_scan_passes whole-image passes.
//   - The memory manager's max_memory_to_use bounds the whole-image coefficient buffer of progressive and
//     multi-scan files (the only allocation that grows with the image beyond a few rows); with no backing store
//     a file that needs more fails with JERR_NO_BACKING_STORE, reported as CC_LIMIT_MEMORY.
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "CCodecs.h"
#include "common.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    /// Set when the data ran out while pixels were still missing.
    int truncated;
    /// Whether running out of data is fatal (it is not once every scanline has been produced).
    int eof_is_fatal;
    /// Progress monitor that enforces the scan limit (0: none); set when the limit refused the file.
    struct jpeg_progress_mgr progress;
    uint32_t max_scans;
    uint32_t max_scan_passes;
    /// The scan the monitor last saw, and the blocks all scans so far cover.
    int seen_scan;
    uint64_t scan_blocks;
    /// 1: too many scans, 2: too many passes.
    int scan_limit_hit;
    /// The memory manager's request_virt_barray, wrapped to add up the coefficient buffer libjpeg asks for.
    jvirt_barray_ptr (*request_virt_barray)(j_common_ptr, int, boolean, JDIMENSION, JDIMENSION, JDIMENSION);
    size_t coefficient_bytes;
} cc_jpeg_error_mgr;

/// Called by libjpeg between units of work (markers, iMCU rows); input_scan_number counts the SOS markers read.
static void cc_jpeg_progress(j_common_ptr cinfo) {
    cc_jpeg_error_mgr *err = (cc_jpeg_error_mgr *)cinfo->err;
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number <= 0 || dinfo->input_scan_number == err->seen_scan) return;
    err->seen_scan = dinfo->input_scan_number;
    if (err->max_scans != 0 && (uint32_t)dinfo->input_scan_number > err->max_scans) {
        err->scan_limit_hit = 1;
        longjmp(err->jump, 1);
    }
    // The new scan's components are set up once its SOS has been read, which is when the number changes.
    uint64_t image_blocks = 0;
    for (int ci = 0; ci < dinfo->num_components; ci++) {
        image_blocks += (uint64_t)dinfo->comp_info[ci].width_in_blocks * dinfo->comp_info[ci].height_in_blocks;
    }
    for (int i = 0; i < dinfo->comps_in_scan && i < MAX_COMPS_IN_SCAN; i++) {
        const jpeg_component_info *comp = dinfo->cur_comp_info[i];
        if (comp != NULL) err->scan_blocks += (uint64_t)comp->width_in_blocks * comp->height_in_blocks;
    }
    if (err->max_scan_passes != 0 && err->scan_blocks > (uint64_t)err->max_scan_passes * image_blocks) {
        err->scan_limit_hit = 2;
        longjmp(err->jump, 1);
    }
}

static jvirt_barray_ptr cc_jpeg_request_virt_barray(j_common_ptr cinfo, int pool_id, boolean pre_zero,
                                                    JDIMENSION blocksperrow, JDIMENSION numrows,
                                                    JDIMENSION maxaccess) {
    cc_jpeg_error_mgr *err = (cc_jpeg_error_mgr *)cinfo->err;
    err->coefficient_bytes += (size_t)blocksperrow * numrows * sizeof(JBLOCK);
    return err->request_virt_barray(cinfo, pool_id, pre_zero, blocksperrow, numrows, maxaccess);
}

/// Installs the limits on a freshly created decompressor.
static void cc_jpeg_apply_limits(j_decompress_ptr cinfo, cc_jpeg_error_mgr *err, const cc_limits *limits) {
    if (limits == NULL) return;
    err->max_scans = limits->max_scans;
    err->max_scan_passes = limits->max_scan_passes;
    err->progress.progress_monitor = cc_jpeg_progress;
    cinfo->progress = &err->progress;
    cinfo->mem->max_memory_to_use = limits->max_memory > (size_t)LONG_MAX ? LONG_MAX : (long)limits->max_memory;
    err->request_virt_barray = cinfo->mem->request_virt_barray;
    cinfo->mem->request_virt_barray = cc_jpeg_request_virt_barray;
}

static void cc_jpeg_error_exit(j_common_ptr cinfo) {
    cc_jpeg_error_mgr *err = (cc_jpeg_error_mgr *)cinfo->err;
    longjmp(err->jump, 1);
}

static void cc_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    cc_jpeg_error_mgr *err = (cc_jpeg_error_mgr *)cinfo->err;
    if (msg_level < 0) {
        err->pub.num_warnings++;
        if (err->pub.msg_code == JWRN_JPEG_EOF && err->eof_is_fatal) {
            err->truncated = 1;
            longjmp(err->jump, 1);
        }
        // Other warnings ("corrupt JPEG data: ...") are ignored, as Pillow does: libjpeg recovers.
    }
}

static void cc_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void cc_jpeg_setup(struct jpeg_decompress_struct *cinfo, cc_jpeg_error_mgr *err) {
    cinfo->err = jpeg_std_error(&err->pub);
    err->pub.error_exit = cc_jpeg_error_exit;
    err->pub.emit_message = cc_jpeg_emit_message;
    err->pub.output_message = cc_jpeg_output_message;
    err->truncated = 0;
    err->eof_is_fatal = 1;
    memset(&err->progress, 0, sizeof err->progress);
    err->max_scans = 0;
    err->max_scan_passes = 0;
    err->seen_scan = 0;
    err->scan_blocks = 0;
    err->scan_limit_hit = 0;
    err->request_virt_barray = NULL;
    err->coefficient_bytes = 0;
}

static void cc_jpeg_report(j_decompress_ptr cinfo, cc_jpeg_error_mgr *err, cc_result *result) {
    char buffer[JMSG_LENGTH_MAX];
    buffer[0] = 0;
    (*err->pub.format_message)((j_common_ptr)cinfo, buffer);
    cc_set_message(result, buffer);
    result->width = cinfo->image_width;
    result->height = cinfo->image_height;
    result->scans = cinfo->input_scan_number > 0 ? (uint32_t)cinfo->input_scan_number : 0;
    result->peak_memory = err->coefficient_bytes;
    if (err->scan_limit_hit) {
        result->status = err->scan_limit_hit == 1 ? CC_LIMIT_SCANS : CC_LIMIT_SCAN_PASSES;
        if (err->scan_limit_hit == 1) {
            snprintf(result->message, sizeof result->message, "more than %u progressive scans", err->max_scans);
        } else {
            snprintf(result->message, sizeof result->message, "scans cover the image more than %u times",
                     err->max_scan_passes);
        }
        return;
    }
    if (err->truncated) {
        result->status = CC_TRUNCATED;
        return;
    }
    switch (err->pub.msg_code) {
    case JERR_EMPTY_IMAGE:
        result->status = CC_ZERO_SIZE;
        break;
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        result->status = CC_TOO_LARGE;
        break;
    case JERR_OUT_OF_MEMORY:
        result->status = CC_NO_MEMORY;
        break;
    case JERR_NO_BACKING_STORE:  // the coefficient buffer does not fit in max_memory_to_use
        result->status = CC_LIMIT_MEMORY;
        snprintf(result->message, sizeof result->message, "needs %zu bytes of coefficient buffer",
                 err->coefficient_bytes);
        break;
    case JERR_BAD_PRECISION:
    case JERR_NOTIMPL:
    case JERR_CONVERSION_NOTIMPL:
        result->status = CC_UNSUPPORTED;
        break;
    default:
        result->status = CC_CORRUPT;
        break;
    }
}

/// Output colour space for a component count, as Pillow maps it; JCS_UNKNOWN when Pillow refuses the file.
static J_COLOR_SPACE cc_jpeg_output_space(int components) {
    switch (components) {
    case 1: return JCS_GRAYSCALE;
    case 3: return JCS_RGB;
    case 4: return JCS_CMYK;
    default: return JCS_UNKNOWN;
    }
}

static int cc_jpeg_check_header(j_decompress_ptr cinfo, cc_result *result) {
    result->width = cinfo->image_width;
    result->height = cinfo->image_height;
    if (cinfo->data_precision != 8) {
        result->status = CC_UNSUPPORTED;
        snprintf(result->message, sizeof result->message, "cannot handle %d-bit samples", cinfo->data_precision);
        return 0;
    }
    if (cc_jpeg_output_space(cinfo->num_components) == JCS_UNKNOWN) {
        result->status = CC_UNSUPPORTED;
        snprintf(result->message, sizeof result->message, "cannot handle %d-component images", cinfo->num_components);
        return 0;
    }
    if (cinfo->image_width == 0 || cinfo->image_height == 0) {
        result->status = CC_ZERO_SIZE;
        cc_set_message(result, "zero-sized JPEG image");
        return 0;
    }
    return 1;
}

/// Pillow's MULDIV255: a * b / 255, rounded, in integer arithmetic (src/libImaging/ImagingUtils.h).
static inline int cc_muldiv255(int a, int b) {
    int tmp = a * b + 128;
    return ((tmp >> 8) + tmp) >> 8;
}

static inline uint8_t cc_clip8(int v) { return v < 0 ? 0 : (v > 255 ? 255 : (uint8_t)v); }

/// One row of libjpeg CMYK output -> RGB: Pillow first unpacks "CMYK;I" (inverts every channel), then
/// Convert.c cmyk2rgb computes channel = (255 - K) - C * (255 - K) / 255 with MULDIV255 rounding.
static void cc_cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, size_t width) {
    for (size_t x = 0; x < width; x++, in += 4, out += 3) {
        int c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], k = 255 - in[3];
        int nk = 255 - k;
        out[0] = cc_clip8(nk - cc_muldiv255(c, nk));
        out[1] = cc_clip8(nk - cc_muldiv255(m, nk));
        out[2] = cc_clip8(nk - cc_muldiv255(y, nk));
    }
}

/// Expands `width` gray bytes at the start of `row` to RGB in place (back to front so nothing is overwritten
/// before it is read); this is Pillow's L -> RGB conversion.
static void cc_gray_row_to_rgb_in_place(uint8_t *row, size_t width) {
    for (size_t x = width; x-- > 0;) {
        uint8_t v = row[x];
        row[3 * x] = v;
        row[3 * x + 1] = v;
        row[3 * x + 2] = v;
    }
}

/// Reads the header and, when `out` is not NULL, decodes the pixels into it as RGB. One function for both so the
/// libjpeg error recovery (the setjmp frame must stay alive while libjpeg runs) is written once.
static void cc_jpeg_read(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                         cc_result *result) {
    struct jpeg_decompress_struct cinfo;
    cc_jpeg_error_mgr err;
    cc_result_init(result);
    cc_jpeg_setup(&cinfo, &err);
    if (setjmp(err.jump)) {
        cc_jpeg_report(&cinfo, &err, result);
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    jpeg_create_decompress(&cinfo);
    cc_jpeg_apply_limits(&cinfo, &err, limits);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (!cc_jpeg_check_header(&cinfo, result)) {
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    if (out == NULL) {  // header only
        result->status = CC_OK;
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    size_t width = cinfo.image_width, height = cinfo.image_height;
    if (!cc_rgb_size_matches(width, height, out_size)) {
        result->status = CC_BAD_BUFFER;
        cc_set_message(result, "output buffer size does not match the JPEG dimensions");
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    J_COLOR_SPACE space = cc_jpeg_output_space(cinfo.num_components);
    cinfo.out_color_space = space;
    jpeg_start_decompress(&cinfo);
    int expected_components = space == JCS_CMYK ? 4 : (space == JCS_RGB ? 3 : 1);
    if (cinfo.output_width != width || cinfo.output_height != height ||
        cinfo.output_components != expected_components) {
        result->status = CC_UNSUPPORTED;
        cc_set_message(result, "libjpeg output does not match the header");
        jpeg_destroy_decompress(&cinfo);
        return;
    }
    JSAMPROW cmyk_row = NULL;
    if (space == JCS_CMYK) {
        // Pool memory is released by jpeg_destroy_decompress, also on the error path.
        cmyk_row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)(width * 4), 1)[0];
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *row = out + (size_t)cinfo.output_scanline * width * 3;
        JSAMPROW target = space == JCS_CMYK ? cmyk_row : row;
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            // Cannot happen with a memory source (it never suspends); refuse rather than loop.
            result->status = CC_CORRUPT;
            cc_set_message(result, "libjpeg returned no scanline");
            jpeg_destroy_decompress(&cinfo);
            return;
        }
        if (space == JCS_CMYK) {
            cc_cmyk_row_to_rgb(cmyk_row, row, width);
        } else if (space == JCS_GRAYSCALE) {
            cc_gray_row_to_rgb_in_place(row, width);
        }
    }
    // Every pixel is there: like Pillow, a missing EOI after the last scan is not an error, but a
    // broken marker segment after the image still is.
    err.eof_is_fatal = 0;
    jpeg_finish_decompress(&cinfo);
    result->scans = (uint32_t)cinfo.input_scan_number;
    result->peak_memory = err.coefficient_bytes;
    jpeg_destroy_decompress(&cinfo);
    result->status = CC_OK;
    result->message[0] = 0;
}

void cc_jpeg_info(const uint8_t *data, size_t size, cc_result *result) {
    cc_jpeg_read(data, size, NULL, 0, NULL, result);
}

void cc_jpeg_decode(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, const cc_limits *limits,
                    cc_result *result) {
    if (out == NULL) {
        cc_result_init(result);
        result->status = CC_BAD_BUFFER;
        cc_set_message(result, "no output buffer");
        return;
    }
    cc_jpeg_read(data, size, out, out_size, limits, result);
}
