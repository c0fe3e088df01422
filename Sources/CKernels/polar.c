// The factor √(−2·log s / s) of Marsaglia & Bray's polar method for many s at once. log s is
// portableLog's (Random.swift): s = 2ᵉ·m with m in [√½, √2), log m = 2·atanh(f) with
// f = (m − 1)/(m + 1) as the odd series 2f·Σ f^(2k)/(2k + 1), k ≤ 11, plus e·ln 2 in two parts.
// Only +, −, ×, ÷ and √ in the same order and without contraction into FMAs: the same bits as
// the Swift function on every CPU, and four lanes at a time with AVX2.

#include "CKernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const double ln2_high = 0.693147180369123816490, ln2_low = 1.90821492927058770002e-10;
static const double sqrt_half_bound = 1.4142135623730951;
/// The series' coefficients after its first, 1/23, in Horner order: 1/(2k + 1) for k = 10…0.
static const double series_coefficients[11] = {1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11,
                                               1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3, 1.0 / 1};

static double polar_factor(double s) {
#pragma clang fp contract(off)
    uint64_t bits;
    memcpy(&bits, &s, sizeof bits);
    double e = (double)(int64_t)((bits >> 52) & 0x7FF) - 1023.0;
    uint64_t significand_bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double m;
    memcpy(&m, &significand_bits, sizeof m);
    if (m > sqrt_half_bound) {
        m *= 0.5;
        e += 1.0;
    }
    double f = (m - 1) / (m + 1), f2 = f * f;
    double series = 1.0 / 23;
    for (int k = 0; k < 11; k++) series = series * f2 + series_coefficients[k];
    double log = e * ln2_high + (2 * f * series + e * ln2_low);
    return __builtin_sqrt(-2 * log / s);
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void polar_factors_avx2(double *s, long n) {
#pragma clang fp contract(off)
    const __m256d one = _mm256_set1_pd(1), half = _mm256_set1_pd(0.5), bound = _mm256_set1_pd(sqrt_half_bound);
    // The biased exponent as a double, exactly: (2⁵² + e) − (2⁵² + 1023).
    const __m256i exponent_bits = _mm256_set1_epi64x(0x4330000000000000ll);
    const __m256d exponent_offset = _mm256_set1_pd(4503599627370496.0 + 1023.0);
    const __m256i significand_mask = _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll), one_bits = _mm256_set1_epi64x(0x3FF0000000000000ll);
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d x = _mm256_loadu_pd(s + i);
        __m256i bits = _mm256_castpd_si256(x);
        __m256i biased = _mm256_and_si256(_mm256_srli_epi64(bits, 52), _mm256_set1_epi64x(0x7FF));
        __m256d e = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(biased, exponent_bits)), exponent_offset);
        __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(bits, significand_mask), one_bits));
        __m256d big = _mm256_cmp_pd(m, bound, _CMP_GT_OQ);
        m = _mm256_blendv_pd(m, _mm256_mul_pd(m, half), big);
        e = _mm256_blendv_pd(e, _mm256_add_pd(e, one), big);
        __m256d f = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one)), f2 = _mm256_mul_pd(f, f);
        __m256d series = _mm256_set1_pd(1.0 / 23);
        for (int k = 0; k < 11; k++) series = _mm256_add_pd(_mm256_mul_pd(series, f2), _mm256_set1_pd(series_coefficients[k]));
        __m256d log_m = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(2), f), series);
        __m256d log = _mm256_add_pd(_mm256_mul_pd(e, _mm256_set1_pd(ln2_high)),
                                    _mm256_add_pd(log_m, _mm256_mul_pd(e, _mm256_set1_pd(ln2_low))));
        __m256d ratio = _mm256_div_pd(_mm256_mul_pd(_mm256_set1_pd(-2), log), x);
        _mm256_storeu_pd(s + i, _mm256_sqrt_pd(ratio));
    }
    for (; i < n; i++) s[i] = polar_factor(s[i]);
}
#endif

void ck_polar_factors(double *s, long n) {
#if defined(__x86_64__)
    if (ck_uses_fma_kernel()) {
        polar_factors_avx2(s, n);
        return;
    }
#endif
    for (long i = 0; i < n; i++) s[i] = polar_factor(s[i]);
}
