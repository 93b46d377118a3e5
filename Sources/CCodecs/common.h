// Small helpers shared by the codec glue files (private to CCodecs).
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "CCodecs.h"

static inline void cc_result_init(cc_result *result) {
    result->status = CC_CORRUPT;
    result->width = 0;
    result->height = 0;
    result->message[0] = 0;
    result->scans = 0;
    result->peak_memory = 0;
}

static inline void cc_set_message(cc_result *result, const char *message) {
    size_t n = strlen(message);
    if (n >= sizeof result->message) n = sizeof result->message - 1;
    memcpy(result->message, message, n);
    result->message[n] = 0;
}

/// Whether `out_size` is exactly width * height * 3, computed without overflow.
static inline int cc_rgb_size_matches(size_t width, size_t height, size_t out_size) {
    if (width == 0 || height == 0) return 0;
    if (width > SIZE_MAX / 3 / height) return 0;
    return width * height * 3 == out_size;
}
