// Declarations shared by the GEMM sources (not part of the module's interface).
#ifndef CKERNELS_GEMM_INTERNAL_H
#define CKERNELS_GEMM_INTERNAL_H

#include "CKernels.h"

/// C = alpha·op(A)·op(B) + beta·C when m or n is at most 4 (and k > 0); returns 0, doing
/// nothing, for other shapes.
int ck_sgemm_thin(int transA, int transB, long m, long n, long k, float alpha,
                  const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc);

#endif
