// Exact scan kernels for the vector store: one query against many rows of a row-major Float32 matrix.
//
// Swift compiles for baseline x86-64 (SSE2), so the wide-vector variants live here, compiled per ISA with
// `__attribute__((target(...)))` and chosen once at run time with `__builtin_cpu_supports` (the same idea as faiss's
// run-time AVX2/AVX-512 dispatch, written independently).
//
// Guarantees: every row's result is computed with the same arithmetic (same accumulators, same order, same final
// reduction) whether the row is processed in a group or alone, and whichever thread or chunk processes it, so equal
// rows always give bit-identical results within one process (exact ties stay exact). Different ISAs may differ in the
// last bits. Pointers must be valid for rows*dim (matrix), dim (query) and rows (out) floats; nothing is allocated.
#ifndef CVECTORSCAN_H
#define CVECTORSCAN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which kernel family `vs_dot_rows` / `vs_l2sq_rows` use on this machine.
typedef enum {
    VS_ISA_SCALAR = 0,
    VS_ISA_AVX2_FMA = 1,
    VS_ISA_AVX512F = 2,
} vs_isa;

/// The kernel family picked at first use (CPU features and OS support checked once).
vs_isa vs_selected_isa(void);

/// A short name of the selected kernel family ("scalar", "avx2+fma", "avx512f").
const char *vs_isa_name(vs_isa isa);

/// out[r] = dot(matrix[r*dim ..< (r+1)*dim], query) for r in 0..<rows.
void vs_dot_rows(const float *matrix, size_t rows, size_t dim, const float *query, float *out);

/// out[r] = sum_i (matrix[r*dim + i] - query[i])^2 for r in 0..<rows (squared euclidean distance).
void vs_l2sq_rows(const float *matrix, size_t rows, size_t dim, const float *query, float *out);

/// Many queries at once: out[j*rows + r] = the result of `vs_dot_rows` (or `vs_l2sq_rows`) for row r and query j
/// (queries: nq rows of dim floats). Bit-identical to the one-query kernels pair by pair; reads each matrix row from
/// memory once for all the queries, so it is compute-bound where the one-query scan is memory-bound.
void vs_dot_rows_multi(const float *matrix, size_t rows, size_t dim, const float *queries, size_t nq, float *out);
void vs_l2sq_rows_multi(const float *matrix, size_t rows, size_t dim, const float *queries, size_t nq, float *out);
/// The same kernels with an explicit ISA, for benchmarks and tests; an ISA the CPU lacks falls back to the
/// selected one.
void vs_dot_rows_isa(vs_isa isa, const float *matrix, size_t rows, size_t dim, const float *query, float *out);
void vs_l2sq_rows_isa(vs_isa isa, const float *matrix, size_t rows, size_t dim, const float *query, float *out);

/// Whether this CPU (and OS) can run `isa`.
int vs_isa_supported(vs_isa isa);

/// Memory for a matrix the kernels will scan: `bytes`, uninitialised, 64-byte aligned, NULL if out of memory. From
/// 2 MiB up it is 2 MiB aligned, rounded up to whole 2 MiB pages and (on Linux) advised to use transparent huge pages.
/// Free with `vs_matrix_free`.
void *vs_matrix_alloc(size_t bytes);
void vs_matrix_free(void *matrix);

#ifdef __cplusplus
}
#endif

#endif
