// One Adam step over a float32 parameter (see Adam.swift for the rule):
//   g' = g + l2·p,  m ← b1·m + (1 − b1)·g',  v ← b2·v + (1 − b2)·g'²,
//   p ← shrink·p − lr·(m·bc1) / (√v·sqrtC2 + eps).
// In C because Swift's SIMD square root calls the scalar one lane by lane; here it is one
// vsqrtps per eight lanes.
//
// The x86 path runs with denormals flushed to zero (MXCSR FTZ and DAZ, restored afterwards).
// Where a gradient stays zero (a dead unit, a masked weight) m decays by b1 each step and
// reaches the denormal range within a thousand steps, and each denormal operand of the
// multiply, square root and divide costs a microcode assist of ~100 cycles: in `first-flow`
// this one loop took ten times as long as it does on normal numbers. Moments below
// FLT_MIN ≈ 1.2e-38 change the step by less than that, far under eps.

#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline void adam_scalar(float *p, const float *g, float *m, float *v, long i, const ck_adam_coefficients *c) {
    float gi = g[i] + c->l2 * p[i];
    float mi = c->b1 * m[i] + (1 - c->b1) * gi;
    float vi = c->b2 * v[i] + (1 - c->b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c->shrink - c->lr * (mi * c->bc1) / (__builtin_sqrtf(vi) * c->sqrtC2 + c->eps);
}

static void adam_portable(float *p, const float *g, float *m, float *v, long n, const ck_adam_coefficients *c) {
    for (long i = 0; i < n; i++) adam_scalar(p, g, m, v, i, c);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void adam_avx2(float *p, const float *g, float *m, float *v, long n, const ck_adam_coefficients *c) {
    const __m256 b1 = _mm256_set1_ps(c->b1), a1 = _mm256_set1_ps(1 - c->b1);
    const __m256 b2 = _mm256_set1_ps(c->b2), a2 = _mm256_set1_ps(1 - c->b2);
    const __m256 l2 = _mm256_set1_ps(c->l2), shrink = _mm256_set1_ps(c->shrink);
    const __m256 step = _mm256_set1_ps(c->lr * c->bc1), sqrtC2 = _mm256_set1_ps(c->sqrtC2), eps = _mm256_set1_ps(c->eps);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 pi = _mm256_loadu_ps(p + i);
        __m256 gi = _mm256_fmadd_ps(l2, pi, _mm256_loadu_ps(g + i));
        __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(a1, gi));
        __m256 vi = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(_mm256_mul_ps(a2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denominator = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), sqrtC2, eps);
        _mm256_storeu_ps(p + i, _mm256_fmsub_ps(pi, shrink, _mm256_div_ps(_mm256_mul_ps(step, mi), denominator)));
    }
    for (; i < n; i++) adam_scalar(p, g, m, v, i, c);
}
#endif

void ck_adam_step(float *p, const float *g, float *m, float *v, long n, const ck_adam_coefficients *c) {
#if defined(__x86_64__)
    if (ck_uses_fma_kernel()) {
        const unsigned int saved = _mm_getcsr();
        _mm_setcsr(saved | 0x8040);  // FTZ (bit 15) and DAZ (bit 6)
        adam_avx2(p, g, m, v, n, c);
        _mm_setcsr(saved);
        return;
    }
#endif
    adam_portable(p, g, m, v, n, c);
}
