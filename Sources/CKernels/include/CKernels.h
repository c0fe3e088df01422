#ifndef CKERNELS_H
#define CKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// C = alpha * op(A) * op(B) + beta * C for row-major matrices, single-threaded and thread-safe.
/// op(X) = X^T when transX != 0. With beta == 0, C is overwritten without being read.
void ck_sgemm(int transA, int transB, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

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

/// 1 when the AVX2+FMA micro-kernel is in use on this CPU, 0 for the portable one.
int ck_uses_fma_kernel(void);

#ifdef __cplusplus
}
#endif

#endif
