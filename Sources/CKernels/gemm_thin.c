// Thin single-precision products: C = alpha·op(A)·op(B) + beta·C when C has at most THIN_MAX
// rows or columns (the output layer of a small MADE, the first layer's input gradient, and the
// weight gradients of both). The packed 6×16 kernel would pad such a product to whole tiles and
// spend most of its multiply-adds on zeros; here the thin operand is copied into S contiguous
// vectors of length k and the product runs as one of two loops over the wide operand:
//
//   dot:  out(t, s) = Σ_p wide[t·ldw + p] · thin[s·k + p]   (wide rows contiguous along k)
//   axpy: out(t, s) = Σ_p wide[p·ldw + t] · thin[s·k + p]   (wide rows contiguous along t)
//
// and out(t, s) is written to c[t·ct + s·cs], so one loop serves C and Cᵀ.

#include "gemm_internal.h"
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { THIN_MAX = 4 };

static inline void store(float *c, float value, float alpha, float beta) {
    *c = alpha * value + (beta == 0.0f ? 0.0f : beta * *c);
}

static void dot_portable(long t_count, long s_count, long k, const float *wide, long ldw, const float *thin,
                         float *c, long ct, long cs, float alpha, float beta) {
    for (long t = 0; t < t_count; t++) {
        const float *w = wide + t * ldw;
        for (long s = 0; s < s_count; s++) {
            const float *v = thin + s * k;
            float sum = 0;
            for (long p = 0; p < k; p++) sum += w[p] * v[p];
            store(c + t * ct + s * cs, sum, alpha, beta);
        }
    }
}

static void axpy_portable(long t_count, long s_count, long k, const float *wide, long ldw, const float *thin,
                          float *c, long ct, long cs, float alpha, float beta) {
    enum { W = 64 };
    float acc[THIN_MAX][W];
    for (long t0 = 0; t0 < t_count; t0 += W) {
        long width = t_count - t0 < W ? t_count - t0 : W;
        for (long s = 0; s < s_count; s++)
            for (long t = 0; t < width; t++) acc[s][t] = 0;
        for (long p = 0; p < k; p++) {
            const float *w = wide + p * ldw + t0;
            for (long s = 0; s < s_count; s++) {
                float v = thin[s * k + p];
                for (long t = 0; t < width; t++) acc[s][t] += v * w[t];
            }
        }
        for (long s = 0; s < s_count; s++)
            for (long t = 0; t < width; t++) store(c + (t0 + t) * ct + s * cs, acc[s][t], alpha, beta);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static float horizontal_sum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

// The AVX2 loops are written for a fixed S so that the accumulators stay in registers.
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_avx2_fixed(const long S, long t_count, long k, const float *wide, long ldw, const float *thin,
                                  float *c, long ct, long cs, float alpha, float beta) {
    long k8 = k / 8 * 8;
    for (long t = 0; t < t_count; t++) {
        const float *w = wide + t * ldw;
        __m256 acc[THIN_MAX];
        for (long s = 0; s < S; s++) acc[s] = _mm256_setzero_ps();
        for (long p = 0; p < k8; p += 8) {
            __m256 wv = _mm256_loadu_ps(w + p);
            for (long s = 0; s < S; s++) acc[s] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(thin + s * k + p), acc[s]);
        }
        for (long s = 0; s < S; s++) {
            float sum = horizontal_sum(acc[s]);
            for (long p = k8; p < k; p++) sum += w[p] * thin[s * k + p];
            store(c + t * ct + s * cs, sum, alpha, beta);
        }
    }
}

__attribute__((target("avx2,fma"), always_inline))
static inline void axpy_avx2_fixed(const long S, long t_count, long k, const float *wide, long ldw, const float *thin,
                                   float *c, long ct, long cs, float alpha, float beta) {
    long t16 = t_count / 16 * 16;
    for (long t0 = 0; t0 < t16; t0 += 16) {
        __m256 lo[THIN_MAX], hi[THIN_MAX];
        for (long s = 0; s < S; s++) lo[s] = hi[s] = _mm256_setzero_ps();
        for (long p = 0; p < k; p++) {
            const float *w = wide + p * ldw + t0;
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
            for (long s = 0; s < S; s++) {
                __m256 v = _mm256_broadcast_ss(thin + s * k + p);
                lo[s] = _mm256_fmadd_ps(v, w0, lo[s]);
                hi[s] = _mm256_fmadd_ps(v, w1, hi[s]);
            }
        }
        float out[16] __attribute__((aligned(32)));
        for (long s = 0; s < S; s++) {
            _mm256_store_ps(out, lo[s]);
            _mm256_store_ps(out + 8, hi[s]);
            for (long t = 0; t < 16; t++) store(c + (t0 + t) * ct + s * cs, out[t], alpha, beta);
        }
    }
    if (t16 < t_count)
        axpy_portable(t_count - t16, S, k, wide + t16, ldw, thin, c + t16 * ct, ct, cs, alpha, beta);
}

// The thin count S (1…4) as a compile-time constant of the fixed-S loop.
#define WITH_FIXED_S(kernel, s_count, ...)                                                          \
    switch (s_count) {                                                                              \
    case 1: kernel(1, __VA_ARGS__); break;                                                          \
    case 2: kernel(2, __VA_ARGS__); break;                                                          \
    case 3: kernel(3, __VA_ARGS__); break;                                                          \
    default: kernel(4, __VA_ARGS__); break;                                                         \
    }

__attribute__((target("avx2,fma")))
static void dot_avx2(long t_count, long s_count, long k, const float *wide, long ldw, const float *thin,
                     float *c, long ct, long cs, float alpha, float beta) {
    WITH_FIXED_S(dot_avx2_fixed, s_count, t_count, k, wide, ldw, thin, c, ct, cs, alpha, beta)
}

__attribute__((target("avx2,fma")))
static void axpy_avx2(long t_count, long s_count, long k, const float *wide, long ldw, const float *thin,
                      float *c, long ct, long cs, float alpha, float beta) {
    WITH_FIXED_S(axpy_avx2_fixed, s_count, t_count, k, wide, ldw, thin, c, ct, cs, alpha, beta)
}
#endif

typedef void (*thin_fn)(long, long, long, const float *, long, const float *, float *, long, long, float, float);

// The AVX2 loops wherever the GEMM micro-kernel runs its AVX2+FMA version.
static thin_fn dot_kernel(void) {
#if defined(__x86_64__)
    if (ck_uses_fma_kernel()) return dot_avx2;
#endif
    return dot_portable;
}

static thin_fn axpy_kernel(void) {
#if defined(__x86_64__)
    if (ck_uses_fma_kernel()) return axpy_avx2;
#endif
    return axpy_portable;
}

// Per-thread copy of the thin operand, grown on demand.
static _Thread_local float *thin_buffer = 0;
static _Thread_local size_t thin_capacity = 0;

static float *thin_storage(size_t count) {
    if (count > thin_capacity) {
        free(thin_buffer);
        thin_capacity = count < 4096 ? 4096 : count;
        thin_buffer = (float *)malloc(thin_capacity * sizeof(float));
    }
    return thin_buffer;
}

int ck_sgemm_thin(int transA, int transB, long m, long n, long k, float alpha,
                  const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    if (k <= 0 || (n > THIN_MAX && m > THIN_MAX)) return 0;
    float *thin = thin_storage((size_t)THIN_MAX * (size_t)k);
    if (!thin) return 0;
    if (n <= THIN_MAX) {
        // thin[j][p] = op(B)(p, j); t runs over C's rows.
        for (long j = 0; j < n; j++)
            for (long p = 0; p < k; p++) thin[j * k + p] = transB ? b[j * ldb + p] : b[p * ldb + j];
        (transA ? axpy_kernel() : dot_kernel())(m, n, k, a, lda, thin, c, ldc, 1, alpha, beta);
    } else {
        // thin[i][p] = op(A)(i, p); t runs over C's columns.
        for (long i = 0; i < m; i++)
            for (long p = 0; p < k; p++) thin[i * k + p] = transA ? a[p * lda + i] : a[i * lda + p];
        (transB ? dot_kernel() : axpy_kernel())(n, m, k, b, ldb, thin, c, 1, ldc, alpha, beta);
    }
    return 1;
}
