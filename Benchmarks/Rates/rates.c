// What this CPU can do, measured rather than read from a data sheet (issues 16 and 17):
// 1. One core's throughput of the multiply-add instructions the engine's precisions rest on: fp32 FMA
//    (vfmadd231ps), bf16 dot products with fp32 accumulation (vdpbf16ps, what oneDNN's bf16 kernels use when the
//    CPU has no AMX) and int8 dot products (vpdpbusd, VNNI). Twelve independent accumulators per loop, more than
//    any of these instructions' latency times its issue rate, so the figure is issue-bound, not latency-bound.
// 2. oneDNN's GEMMs at the shapes the neighbour-list screen runs (queries × rows × dimension, rows transposed),
//    on the threads oneDNN is given (OMP_NUM_THREADS), fastest of `rounds`.
// Build and run: `make bench-rates` (2 threads for the GEMMs).
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LOOPS 50000000L
#define INSTRUCTIONS (LOOPS * 12.0)

// Each returns operations per second on one core, counting a multiply-add as two.
__attribute__((target("avx512f"), noinline)) static double fp32_fma(float *sink) {
#define DECLARE(i) __m512 a##i = _mm512_set1_ps((float)i * 1e-3f);
    TWELVE(DECLARE)
    const __m512 x = _mm512_set1_ps(0.5f), y = _mm512_set1_ps(0.25f);
    double t = seconds();
    for (long k = 0; k < LOOPS; k++) {
#define STEP(i) a##i = _mm512_fmadd_ps(x, a##i, y);
        TWELVE(STEP)
    }
    t = seconds() - t;
#define SINK(i) *sink += _mm512_reduce_add_ps(a##i);
    TWELVE(SINK)
    return INSTRUCTIONS * 16 * 2 / t;
#undef STEP
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static double bf16_dot(float *sink) {
    TWELVE(DECLARE)
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f00), y = (__m512bh)_mm512_set1_epi16(0x3e80);
    double t = seconds();
    for (long k = 0; k < LOOPS; k++) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
        TWELVE(STEP)
    }
    t = seconds() - t;
    TWELVE(SINK)
    return INSTRUCTIONS * 32 * 2 / t;
#undef STEP
#undef DECLARE
#undef SINK
}

__attribute__((target("avx512f,avx512vnni"), noinline)) static double int8_dot(float *sink) {
#define DECLARE(i) __m512i a##i = _mm512_set1_epi32(i);
    TWELVE(DECLARE)
    const __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
    double t = seconds();
    for (long k = 0; k < LOOPS; k++) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
        TWELVE(STEP)
    }
    t = seconds() - t;
#define SINK(i) *sink += (float)_mm512_reduce_add_epi32(a##i);
    TWELVE(SINK)
    return INSTRUCTIONS * 64 * 2 / t;
}

/// Fastest of `rounds` of C[m×n] = A[m×k]·B[n×k]ᵀ in fp32 and in u8×s8→s32; operations per second of each.
static void gemms(long m, long n, long k, int rounds, double *fp32, double *int8) {
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
    uint8_t *au = malloc(m * k);
    int8_t *bs = malloc(n * k);
    int32_t *ci = malloc(sizeof(int32_t) * m * n), offset = 0;
    if (!a || !b || !c || !au || !bs || !ci) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (long i = 0; i < m * k; i++) { a[i] = (float)(i % 7) * 0.1f; au[i] = (uint8_t)(i % 200); }
    for (long i = 0; i < n * k; i++) { b[i] = (float)(i % 5) * 0.1f; bs[i] = (int8_t)(i % 200 - 100); }
    double best32 = 1e30, best8 = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t = seconds();
        if (dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n) != dnnl_success) exit(2);
        t = seconds() - t;
        if (t < best32) best32 = t;
        t = seconds();
        if (dnnl_gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.0f, au, k, 0, bs, k, 0, 0.0f, ci, n, &offset) != dnnl_success)
            exit(2);
        t = seconds() - t;
        if (t < best8) best8 = t;
    }
    *fp32 = 2.0 * m * n * k / best32;
    *int8 = 2.0 * m * n * k / best8;
    free(a); free(b); free(c); free(au); free(bs); free(ci);
}

int main(void) {
    float sink = 0;
    double f = fp32_fma(&sink), b = bf16_dot(&sink), i = int8_dot(&sink);
    printf("one core, issue-bound (12 independent accumulators), G operations/s:\n");
    printf("  fp32 vfmadd231ps %7.1f\n  bf16 vdpbf16ps   %7.1f  (%.2fx fp32)\n  int8 vpdpbusd    %7.1f  (%.2fx fp32)\n",
           f / 1e9, b / 1e9, b / f, i / 1e9, i / f);
    printf("\noneDNN GEMM, C = A * B^T (queries x rows x dimension), fastest of 3, G operations/s:\n");
    printf("  %-22s %9s %9s %7s\n", "shape", "sgemm", "u8s8s32", "ratio");
    const long shapes[][3] = {{64, 100000, 4096}, {256, 100000, 4096}, {64, 100000, 512}, {256, 100000, 512},
                              {8, 100000, 4096}};
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double g32, g8;
        gemms(shapes[s][0], shapes[s][1], shapes[s][2], 3, &g32, &g8);
        char name[64];
        snprintf(name, sizeof name, "%ldx%ldx%ld", shapes[s][0], shapes[s][1], shapes[s][2]);
        printf("  %-22s %9.1f %9.1f %7.2f\n", name, g32 / 1e9, g8 / 1e9, g8 / g32);
    }
    if (sink == 12345.0f) printf("%f\n", sink);
    return 0;
}
