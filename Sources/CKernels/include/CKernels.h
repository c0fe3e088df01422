#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices, single-threaded and thread-safe.
/// op(X) = X^T when transX != 0. With beta == 0, C is overwritten without being read.
void ck_sgemm(int transA, int transB, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

/// The number of floats ck_sgemm_pack writes for op(B) [k, n] with the given panel depths.
long ck_sgemm_packed_count(long k, long n, const long *depth);

/// Packs op(B) [k, n] (op(B) = B^T when transB != 0) once for many products with ck_sgemm_packed:
/// column panels of 16, panel j holding the first depth[j] rows of its 16 columns (all k when
/// depth is NULL; the rest are taken as zero), the last panel zero-padded.
void ck_sgemm_pack(int transB, long k, long n, const float *b, long ldb, const long *depth, float *packed);

/// C = alpha * A * B + beta * C for row-major A [m, k] and B packed by ck_sgemm_pack with the
/// same k, n and depths, or C = alpha * A * B + bias in every row when `bias` (n values) is not
/// NULL (C is then not read); with rectify != 0, C = max(C, 0) afterwards (NaN stays).
/// Single-threaded and thread-safe.
void ck_sgemm_packed(long m, long n, long k, float alpha, const float *a, long lda, const float *packed,
                     const long *depth, float beta, const float *bias, int rectify, float *c, long ldc);

/// The double-precision counterpart (a cache-blocked loop; used for reference checks).
void ck_dgemm(int transA, int transB, long m, long n, long k, double alpha,
              const double *a, long lda, const double *b, long ldb, double beta, double *c, long ldc);

/// An item of a parallel loop: `task(context, index)`.
typedef void (*ck_pool_task)(void *context, long index);

/// Runs task(context, i) for i in 0..<count on the calling thread and the pool's spinning
/// workers, and returns when all have run. Items are claimed dynamically. Nested or concurrent
/// calls run serially on their own thread.
void ck_pool_run(long count, ck_pool_task task, void *context);

/// The threads a pool job can use: the workers plus the caller.
int ck_pool_threads(void);

/// 1 on a thread that is running a pool job's items (where a nested ck_pool_run runs serially).
int ck_pool_in_job(void);

/// A lock word (0: free) for critical sections of a few microseconds that the threads of one job
/// tend to enter together: a waiter spins with pause, yielding its core after a few thousand
/// spins, instead of sleeping in the kernel, whose wake-up costs tens of microseconds.
void ck_spin_lock(int *lock);
void ck_spin_unlock(int *lock);

/// 1 when this CPU runs the AVX2+FMA kernels (GEMM, thin products, Adam, normal deviates), 0 when
/// they fall back to portable C.
int ck_uses_fma_kernel(void);

/// The GEMM micro-kernels in use: 0 portable, 1 AVX2+FMA (6×16 tiles), 2 AVX-512 (6×32 and 12×32).
int ck_gemm_kernel_level(void);

/// Runs GEMM with kernels of at most the given level from then on (as far as the CPU has them) and
/// returns the level now in use; for tests and comparisons. Products already running keep theirs.
int ck_set_gemm_kernel_level(int cap);

/// The coefficients of one Adam step (see ck_adam_step).
typedef struct ck_adam_coefficients {
    float b1, b2, eps, lr, l2, shrink, bc1, sqrtC2;
} ck_adam_coefficients;

/// One Adam step over n float32 elements, in place on p, m and v:
/// g' = g + l2·p, m ← b1·m + (1 − b1)·g', v ← b2·v + (1 − b2)·g'²,
/// p ← shrink·p − lr·(m·bc1) / (√v·sqrtC2 + eps). Thread-safe on disjoint ranges.
void ck_adam_step(float *p, const float *g, float *m, float *v, long n, const ck_adam_coefficients *c);

/// s[i] ← √(−2·log(s[i]) / s[i]) for 0 < s[i] < 1, the factor of Marsaglia's polar method, with
/// log computed as portableLog in Random.swift: IEEE-exact operations only, in the same order, so
/// every CPU and path gives the same bits as that function.
void ck_polar_factors(double *s, long n);

/// Buffers of at least this many bytes are mapped pages that go through a cache.
#define CK_BUFFER_CACHED_FROM ((size_t)1 << 16)

/// A cache of freed large buffers, reused for requests of the same page-rounded size.
/// All functions are thread-safe.
typedef struct ck_buffer_cache ck_buffer_cache;

/// The cache behind tensor storage (limit 1 GiB).
ck_buffer_cache *ck_shared_buffer_cache(void);
/// A separate cache (for tests); destroy unmaps what it holds.
ck_buffer_cache *ck_buffer_cache_create(size_t limit);
void ck_buffer_cache_destroy(ck_buffer_cache *cache);

/// A 64-byte aligned buffer of at least `bytes` bytes, or NULL when memory is exhausted.
/// A large request the cache cannot serve first unmaps the cached blocks that no request has
/// taken for 4096 large requests, so that sizes no longer used do not accumulate.
void *ck_buffer_allocate(ck_buffer_cache *cache, size_t bytes);
/// Returns a buffer from ck_buffer_allocate with the same `bytes`; a large one is kept for reuse
/// unless the cache would exceed its limit.
void ck_buffer_release(ck_buffer_cache *cache, void *pointer, size_t bytes);
/// Unmaps every cached buffer.
void ck_buffer_clear(ck_buffer_cache *cache);
size_t ck_buffer_cached_bytes(ck_buffer_cache *cache);
size_t ck_buffer_limit(ck_buffer_cache *cache);
void ck_buffer_set_limit(ck_buffer_cache *cache, size_t limit);

#ifdef __cplusplus
}
#endif

#endif
