// Exact scan kernels; see include/CVectorScan.h for the guarantees.
//
// Layout of the arithmetic, identical for every row in a given ISA: two vector accumulators per row, fed alternately
// with full vector-width chunks, then one more full chunk into the first if it fits, then a masked (zero-filled) tail
// into the second, then acc0 + acc1 reduced horizontally. The four-row and the one-row paths use this same per-row
// arithmetic.
//
// Which rows go together: a call over n rows splits them into four equal quarters and scores row r of each quarter
// together (rows r, r + n/4, r + 2n/4, r + 3n/4), then the n % 4 left-over rows one at a time. The scan is
// memory-bound; four long sequential streams keep more cache-line requests in flight than one, while four adjacent
// rows (short interleaved streams) defeated the hardware prefetcher at 512-d. Timed on the 2-core EPYC dev machine
// (AVX-512, aligned rows, 4 KiB pages, one thread): 100k x 512 took 18.3 ms with adjacent rows, 10.9 ms one row at a
// time, 10.0 ms with quarters; 10k x 4096 took 9.0, 10.5 and 8.2 ms. Software prefetch on top gained nothing clear.
#include "CVectorScan.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define VS_X86 1
#include <immintrin.h>
#endif

// MARK: scalar (any CPU)

#define VS_SCALAR_LANES 8

static inline float scalar_row(const float *a, const float *q, size_t dim, int l2) {
    float acc[VS_SCALAR_LANES] = {0};
    size_t i = 0;
    for (; i + VS_SCALAR_LANES <= dim; i += VS_SCALAR_LANES) {
        for (int j = 0; j < VS_SCALAR_LANES; j++) {
            float t = l2 ? (a[i + j] - q[i + j]) : a[i + j];
            float u = l2 ? t : q[i + j];
            acc[j] += t * u;
        }
    }
    for (int j = 0; i < dim; i++, j++) {
        float t = l2 ? (a[i] - q[i]) : a[i];
        float u = l2 ? t : q[i];
        acc[j] += t * u;
    }
    float s0 = (acc[0] + acc[4]) + (acc[2] + acc[6]);
    float s1 = (acc[1] + acc[5]) + (acc[3] + acc[7]);
    return s0 + s1;
}

static void scalar_dot(const float *m, size_t rows, size_t dim, const float *q, float *out) {
    for (size_t r = 0; r < rows; r++) out[r] = scalar_row(m + r * dim, q, dim, 0);
}

static void scalar_l2(const float *m, size_t rows, size_t dim, const float *q, float *out) {
    for (size_t r = 0; r < rows; r++) out[r] = scalar_row(m + r * dim, q, dim, 1);
}

#ifdef VS_X86

// MARK: AVX2 + FMA

__attribute__((target("avx2,fma"))) static inline float avx2_hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehl_ps(s, s);
    s = _mm_add_ps(s, sh);
    sh = _mm_shuffle_ps(s, s, 0x55);
    s = _mm_add_ss(s, sh);
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma"))) static inline __m256i avx2_tail_mask(size_t n) {
    // Lanes 0..<n set (n < 8).
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

// R rows at a time (R is 4 or 1 after inlining); L2 selects squared euclidean instead of dot.
#define AVX2_STEP(acc, ptr, qv, L2)                                        \
    do {                                                                   \
        __m256 x_ = (ptr);                                                 \
        if (L2) {                                                          \
            __m256 d_ = _mm256_sub_ps(x_, (qv));                           \
            (acc) = _mm256_fmadd_ps(d_, d_, (acc));                        \
        } else {                                                           \
            (acc) = _mm256_fmadd_ps(x_, (qv), (acc));                      \
        }                                                                  \
    } while (0)

// R rows (4 or 1 after inlining) that are `gap` rows apart: m, m + gap*dim, ...; results to out, out + gap, ...
__attribute__((target("avx2,fma"))) static inline void avx2_rows(const float *m, size_t R, size_t gap, size_t dim,
                                                                 const float *q, float *out, int l2) {
    const size_t step = gap * dim;
    __m256 a0[4], a1[4];
    for (size_t r = 0; r < R; r++) { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); }
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 q0 = _mm256_loadu_ps(q + i), q1 = _mm256_loadu_ps(q + i + 8);
        for (size_t r = 0; r < R; r++) {
            const float *a = m + r * step + i;
            AVX2_STEP(a0[r], _mm256_loadu_ps(a), q0, l2);
            AVX2_STEP(a1[r], _mm256_loadu_ps(a + 8), q1, l2);
        }
    }
    if (i + 8 <= dim) {
        __m256 q0 = _mm256_loadu_ps(q + i);
        for (size_t r = 0; r < R; r++) AVX2_STEP(a0[r], _mm256_loadu_ps(m + r * step + i), q0, l2);
        i += 8;
    }
    if (i < dim) {
        __m256i mask = avx2_tail_mask(dim - i);
        __m256 q0 = _mm256_maskload_ps(q + i, mask);
        for (size_t r = 0; r < R; r++) AVX2_STEP(a1[r], _mm256_maskload_ps(m + r * step + i, mask), q0, l2);
    }
    for (size_t r = 0; r < R; r++) out[r * gap] = avx2_hsum(_mm256_add_ps(a0[r], a1[r]));
}

__attribute__((target("avx2,fma"))) static void avx2_scan(const float *m, size_t rows, size_t dim, const float *q,
                                                          float *out, int l2) {
    const size_t quarter = rows / 4;
    if (l2) {
        for (size_t r = 0; r < quarter; r++) avx2_rows(m + r * dim, 4, quarter, dim, q, out + r, 1);
        for (size_t r = 4 * quarter; r < rows; r++) avx2_rows(m + r * dim, 1, 0, dim, q, out + r, 1);
    } else {
        for (size_t r = 0; r < quarter; r++) avx2_rows(m + r * dim, 4, quarter, dim, q, out + r, 0);
        for (size_t r = 4 * quarter; r < rows; r++) avx2_rows(m + r * dim, 1, 0, dim, q, out + r, 0);
    }
}

// MARK: AVX-512F

#define AVX512_STEP(acc, ptr, qv, L2)                                      \
    do {                                                                   \
        __m512 x_ = (ptr);                                                 \
        if (L2) {                                                          \
            __m512 d_ = _mm512_sub_ps(x_, (qv));                           \
            (acc) = _mm512_fmadd_ps(d_, d_, (acc));                        \
        } else {                                                           \
            (acc) = _mm512_fmadd_ps(x_, (qv), (acc));                      \
        }                                                                  \
    } while (0)

// As avx2_rows: R rows `gap` rows apart.
__attribute__((target("avx512f"))) static inline void avx512_rows(const float *m, size_t R, size_t gap, size_t dim,
                                                                  const float *q, float *out, int l2) {
    const size_t step = gap * dim;
    __m512 a0[4], a1[4];
    for (size_t r = 0; r < R; r++) { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 q0 = _mm512_loadu_ps(q + i), q1 = _mm512_loadu_ps(q + i + 16);
        for (size_t r = 0; r < R; r++) {
            const float *a = m + r * step + i;
            AVX512_STEP(a0[r], _mm512_loadu_ps(a), q0, l2);
            AVX512_STEP(a1[r], _mm512_loadu_ps(a + 16), q1, l2);
        }
    }
    if (i + 16 <= dim) {
        __m512 q0 = _mm512_loadu_ps(q + i);
        for (size_t r = 0; r < R; r++) AVX512_STEP(a0[r], _mm512_loadu_ps(m + r * step + i), q0, l2);
        i += 16;
    }
    if (i < dim) {
        __mmask16 mask = (__mmask16)((1u << (dim - i)) - 1u);
        __m512 q0 = _mm512_maskz_loadu_ps(mask, q + i);
        for (size_t r = 0; r < R; r++) AVX512_STEP(a1[r], _mm512_maskz_loadu_ps(mask, m + r * step + i), q0, l2);
    }
    for (size_t r = 0; r < R; r++) out[r * gap] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
}

__attribute__((target("avx512f"))) static void avx512_scan(const float *m, size_t rows, size_t dim, const float *q,
                                                           float *out, int l2) {
    const size_t quarter = rows / 4;
    if (l2) {
        for (size_t r = 0; r < quarter; r++) avx512_rows(m + r * dim, 4, quarter, dim, q, out + r, 1);
        for (size_t r = 4 * quarter; r < rows; r++) avx512_rows(m + r * dim, 1, 0, dim, q, out + r, 1);
    } else {
        for (size_t r = 0; r < quarter; r++) avx512_rows(m + r * dim, 4, quarter, dim, q, out + r, 0);
        for (size_t r = 4 * quarter; r < rows; r++) avx512_rows(m + r * dim, 1, 0, dim, q, out + r, 0);
    }
}

// MARK: many queries (AVX-512F)

// One row against Q <= 4 queries, each pair with exactly the per-row arithmetic of avx512_rows: the same two
// accumulators fed with the same chunks in the same order, the same masked tail and the same final reduction. So
// every pair's result is bit-identical to what the one-query scan gives for it; only the row's loads are shared.
__attribute__((target("avx512f"))) static inline void avx512_row_queries(const float *a, size_t dim,
                                                                         const float *const *qs, size_t Q,
                                                                         float *const *outs, size_t r, int l2) {
    __m512 a0[4], a1[4];
    for (size_t j = 0; j < Q; j++) { a0[j] = _mm512_setzero_ps(); a1[j] = _mm512_setzero_ps(); }
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 x0 = _mm512_loadu_ps(a + i), x1 = _mm512_loadu_ps(a + i + 16);
        for (size_t j = 0; j < Q; j++) {
            AVX512_STEP(a0[j], x0, _mm512_loadu_ps(qs[j] + i), l2);
            AVX512_STEP(a1[j], x1, _mm512_loadu_ps(qs[j] + i + 16), l2);
        }
    }
    if (i + 16 <= dim) {
        __m512 x0 = _mm512_loadu_ps(a + i);
        for (size_t j = 0; j < Q; j++) AVX512_STEP(a0[j], x0, _mm512_loadu_ps(qs[j] + i), l2);
        i += 16;
    }
    if (i < dim) {
        __mmask16 mask = (__mmask16)((1u << (dim - i)) - 1u);
        __m512 x0 = _mm512_maskz_loadu_ps(mask, a + i);
        for (size_t j = 0; j < Q; j++) AVX512_STEP(a1[j], x0, _mm512_maskz_loadu_ps(mask, qs[j] + i), l2);
    }
    for (size_t j = 0; j < Q; j++) outs[j][r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j]));
}

// As avx2_rows for one row, against Q <= 4 queries (see avx512_row_queries).
__attribute__((target("avx2,fma"))) static inline void avx2_row_queries(const float *a, size_t dim,
                                                                        const float *const *qs, size_t Q,
                                                                        float *const *outs, size_t r, int l2) {
    __m256 a0[4], a1[4];
    for (size_t j = 0; j < Q; j++) { a0[j] = _mm256_setzero_ps(); a1[j] = _mm256_setzero_ps(); }
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);
        for (size_t j = 0; j < Q; j++) {
            AVX2_STEP(a0[j], x0, _mm256_loadu_ps(qs[j] + i), l2);
            AVX2_STEP(a1[j], x1, _mm256_loadu_ps(qs[j] + i + 8), l2);
        }
    }
    if (i + 8 <= dim) {
        __m256 x0 = _mm256_loadu_ps(a + i);
        for (size_t j = 0; j < Q; j++) AVX2_STEP(a0[j], x0, _mm256_loadu_ps(qs[j] + i), l2);
        i += 8;
    }
    if (i < dim) {
        __m256i mask = avx2_tail_mask(dim - i);
        __m256 x0 = _mm256_maskload_ps(a + i, mask);
        for (size_t j = 0; j < Q; j++) AVX2_STEP(a1[j], x0, _mm256_maskload_ps(qs[j] + i, mask), l2);
    }
    for (size_t j = 0; j < Q; j++) outs[j][r] = avx2_hsum(_mm256_add_ps(a0[j], a1[j]));
}

#endif  // VS_X86

// MARK: dispatch

int vs_isa_supported(vs_isa isa) {
    switch (isa) {
    case VS_ISA_SCALAR: return 1;
#ifdef VS_X86
    // __builtin_cpu_supports also checks that the OS saves the wide registers (XGETBV), not only CPUID bits.
    case VS_ISA_AVX2_FMA: __builtin_cpu_init(); return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case VS_ISA_AVX512F: __builtin_cpu_init(); return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

static _Atomic int selected_isa = -1;

vs_isa vs_selected_isa(void) {
    int isa = atomic_load_explicit(&selected_isa, memory_order_relaxed);
    if (isa >= 0) return (vs_isa)isa;
    // Same answer from every thread, so a race here only repeats the work.
    if (vs_isa_supported(VS_ISA_AVX512F)) isa = VS_ISA_AVX512F;
    else if (vs_isa_supported(VS_ISA_AVX2_FMA)) isa = VS_ISA_AVX2_FMA;
    else isa = VS_ISA_SCALAR;
    atomic_store_explicit(&selected_isa, isa, memory_order_relaxed);
    return (vs_isa)isa;
}

const char *vs_isa_name(vs_isa isa) {
    switch (isa) {
    case VS_ISA_AVX2_FMA: return "avx2+fma";
    case VS_ISA_AVX512F: return "avx512f";
    default: return "scalar";
    }
}

static void scan(vs_isa isa, const float *m, size_t rows, size_t dim, const float *q, float *out, int l2) {
    if (!vs_isa_supported(isa)) isa = vs_selected_isa();
    switch (isa) {
#ifdef VS_X86
    case VS_ISA_AVX512F: avx512_scan(m, rows, dim, q, out, l2); return;
    case VS_ISA_AVX2_FMA: avx2_scan(m, rows, dim, q, out, l2); return;
#endif
    default:
        if (l2) scalar_l2(m, rows, dim, q, out);
        else scalar_dot(m, rows, dim, q, out);
        return;
    }
}

void vs_dot_rows(const float *m, size_t rows, size_t dim, const float *q, float *out) {
    vs_isa isa = vs_selected_isa();
#ifdef VS_X86
    if (isa == VS_ISA_AVX512F) { avx512_scan(m, rows, dim, q, out, 0); return; }
    if (isa == VS_ISA_AVX2_FMA) { avx2_scan(m, rows, dim, q, out, 0); return; }
#endif
    scalar_dot(m, rows, dim, q, out);
}

void vs_l2sq_rows(const float *m, size_t rows, size_t dim, const float *q, float *out) {
    vs_isa isa = vs_selected_isa();
#ifdef VS_X86
    if (isa == VS_ISA_AVX512F) { avx512_scan(m, rows, dim, q, out, 1); return; }
    if (isa == VS_ISA_AVX2_FMA) { avx2_scan(m, rows, dim, q, out, 1); return; }
#endif
    scalar_l2(m, rows, dim, q, out);
}

void vs_dot_rows_isa(vs_isa isa, const float *m, size_t rows, size_t dim, const float *q, float *out) {
    scan(isa, m, rows, dim, q, out, 0);
}

void vs_l2sq_rows_isa(vs_isa isa, const float *m, size_t rows, size_t dim, const float *q, float *out) {
    scan(isa, m, rows, dim, q, out, 1);
}

// MARK: matrix memory

// With 4 KiB pages a scan needs a new TLB entry every 4 KiB and the TLB covers only a few MiB, so the scan of a larger
// matrix waits on page walks: on the EPYC dev machine (transparent huge pages in `madvise` mode) one-thread scans went
// from 9.5 to 7.6 ms at 100k x 512 and from 3.7 to 3.3 ms at 10k x 2048 with huge pages. Where the OS has no
// transparent huge pages this is a plain aligned allocation.
#define VS_HUGE_PAGE ((size_t)2 << 20)

void *vs_matrix_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t align = 64;
    if (bytes >= VS_HUGE_PAGE) {
        align = VS_HUGE_PAGE;
        bytes = (bytes + VS_HUGE_PAGE - 1) & ~(VS_HUGE_PAGE - 1);
    }
    void *p = NULL;
    if (posix_memalign(&p, align, bytes) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Advice only: refused or unsupported, the memory is still good.
    if (align == VS_HUGE_PAGE) (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

void vs_matrix_free(void *matrix) { free(matrix); }

// MARK: many queries

// Rows per block: a block is read from memory once and then served from the core's L2 cache to every query, which
// turns a memory-bound scan into a compute-bound one (the point of scoring a batch of new vectors together).
#define VS_MULTI_BLOCK_BYTES ((size_t)192 << 10)

static void multi_scan(const float *m, size_t rows, size_t dim, const float *queries, size_t nq, float *out, int l2) {
    vs_isa isa = vs_selected_isa();
    size_t block = VS_MULTI_BLOCK_BYTES / (dim * sizeof(float));
    if (block < 4) block = 4;
    for (size_t start = 0; start < rows; start += block) {
        size_t end = start + block < rows ? start + block : rows;
        for (size_t q0 = 0; q0 < nq; q0 += 4) {
            size_t Q = nq - q0 < 4 ? nq - q0 : 4;
            const float *qs[4];
            float *outs[4];
            for (size_t j = 0; j < Q; j++) { qs[j] = queries + (q0 + j) * dim; outs[j] = out + (q0 + j) * rows; }
            for (size_t r = start; r < end; r++) {
                const float *a = m + r * dim;
#ifdef VS_X86
                if (isa == VS_ISA_AVX512F) { avx512_row_queries(a, dim, qs, Q, outs, r, l2); continue; }
                if (isa == VS_ISA_AVX2_FMA) { avx2_row_queries(a, dim, qs, Q, outs, r, l2); continue; }
#endif
                for (size_t j = 0; j < Q; j++) outs[j][r] = scalar_row(a, qs[j], dim, l2);
            }
        }
    }
}

void vs_dot_rows_multi(const float *m, size_t rows, size_t dim, const float *queries, size_t nq, float *out) {
    multi_scan(m, rows, dim, queries, nq, out, 0);
}

void vs_l2sq_rows_multi(const float *m, size_t rows, size_t dim, const float *queries, size_t nq, float *out) {
    multi_scan(m, rows, dim, queries, nq, out, 1);
}
