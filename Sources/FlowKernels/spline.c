// The rational-quadratic spline of Neural Spline Flows (Durkan, Bekasov, Murray & Papamakarios
// 2019, eq. 4–8) for float32, eight elements at a time (one per AVX lane): the same formulas as
// RationalQuadraticSplineKernel.swift, which documents them and remains the portable and float64
// path. Per block of eight elements:
//   - the raw parameters are gathered into lanes; widths and heights are softmaxes of the scaled
//     logits, the knots their running sums;
//   - the bin b is the number of interior knots at or below the input, and the bin's knots,
//     running sums and raw derivative parameters are selected by b lane by lane;
//   - only the two derivatives the bin uses go through softplus (and sigmoid, their slope);
//   - with zuko's parameterization (logit_clip > 0) the logits are soft-clipped before the
//     softmax and the two derivatives are exponentials of soft-clipped raws; the saved widths
//     and heights are then multiplied by the clip's slope, so the backward pass is the same;
//   - the rational function (or the root of its quadratic for the inverse), its log-derivative
//     and their partials with respect to (v, x_b, x_{b+1}, y_b, y_{b+1}, d_b, d_{b+1}) follow in
//     closed form; inputs outside [−B, B] take the identity;
//   - a circular spline (circular != 0) wraps its input and its output into [−B, B) and uses one
//     shared end derivative d_0 = d_K from the raw parameter 3K − 1 (the same map as the interior
//     ones) instead of 1 at both ends.
// The backward pass chains the saved partials through the running sums and the softmaxes.

#include "FlowKernels.h"

long fk_spline_state_stride(long bins) { return 19 + 2 * bins; }

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define VECTOR __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) VECTOR

typedef float f8 __attribute__((ext_vector_type(8)));
typedef int i8 __attribute__((ext_vector_type(8)));

// Saved state per element (one row of eight lanes each): [0] ∂y/∂v, [1] ∂log/∂v; then pairs
// (output, log-derivative) of the factors of the chain rule: [2, 3] lower width knot, [4, 5]
// upper width knot, [6, 7] lower height knot, [8, 9] upper height knot, [10, 11] Σ softmax·(their
// width weights), [12, 13] the same for heights, [14, 15] lower derivative, [16, 17] upper
// derivative; [18] the bin; [19, 19 + K) widths, [19 + K, 19 + 2K) heights (softmaxes).
enum { S_DV = 0, S_WLOWER = 2, S_WUPPER = 4, S_HLOWER = 6, S_HUPPER = 8, S_WDOT = 10, S_HDOT = 12,
       S_DLOWER = 14, S_DUPPER = 16, S_BIN = 18, S_WIDTHS = 19 };

INLINE f8 load(const float *p) { return (f8)_mm256_loadu_ps(p); }
INLINE void store(float *p, f8 v) { _mm256_storeu_ps(p, (__m256)v); }
/// a where m, else b (m lanes all ones or all zeros).
INLINE f8 choose(i8 m, f8 a, f8 b) { return (f8)(((i8)a & m) | ((i8)b & ~m)); }
/// a where m, else 0.
INLINE f8 keep(i8 m, f8 a) { return (f8)((i8)a & m); }
INLINE f8 larger(f8 a, f8 b) { return choose(a > b, a, b); }

/// eˣ as in VectorMath.swift's simdExp: x = n·ln 2 + r, Cephes degree-6 polynomial for eʳ, 2ⁿ in
/// the exponent bits (as 2^⌊n/2⌋·2^⌈n/2⌉); +∞ above 88.72, 0 below −87.34, NaN kept.
INLINE f8 vexp(f8 x) {
    const float hi = 88.72283f, lo = -87.33654f, magic = 12582912.0f;   // 1.5·2²³
    f8 v = choose(x > hi, (f8)hi, x);
    v = choose(v < lo, (f8)lo, v);
    f8 shifted = v * 1.44269504f + magic;
    f8 n = shifted - magic;
    f8 r = (v - n * 0.693359375f) - n * -2.12194440e-4f;
    f8 z = r * r;
    f8 p = r * 1.98756915e-4f + 1.39819995e-3f;
    p = p * r + 8.33345190e-3f;
    p = p * r + 4.16657960e-2f;
    p = p * r + 1.66666655e-1f;
    p = p * r + 5.00000010e-1f;
    p = p * z + r + 1.0f;
    i8 n32 = (i8)shifted - 0x4B400000;
    i8 half = n32 >> 1;
    f8 y = p * (f8)((half + 127) << 23) * (f8)((n32 - half + 127) << 23);
    y = choose(x > hi, (f8)INFINITY, y);
    y = keep(~(x < lo), y);
    return choose(x != x, x, y);
}

/// log x for x > 0 as in VectorMath.swift's simdLog: x = m·2ᵉ with m in [√½, √2), Cephes
/// polynomial in f = m − 1, e·ln 2 in two parts. The callers pass positive normal numbers or +∞.
INLINE f8 vlog(f8 x) {
    i8 b = (i8)x;
    f8 e = (f8)(((b >> 23) & 0xFF) + 0x4B400000) - (12582912.0f + 126.0f);
    f8 m = (f8)((b & 0x007FFFFF) | 0x3F000000);   // in [0.5, 1)
    i8 small = m < 0.70710678f;
    e = choose(small, e - 1.0f, e);
    m = choose(small, m + m, m);
    f8 f = m - 1.0f, z = f * f;
    f8 p = f * 7.0376836e-2f - 1.1514610e-1f;
    p = p * f + 1.1676999e-1f;
    p = p * f - 1.2420141e-1f;
    p = p * f + 1.4249323e-1f;
    p = p * f - 1.6668058e-1f;
    p = p * f + 2.0000715e-1f;
    p = p * f - 2.4999994e-1f;
    p = p * f + 3.3333331e-1f;
    f8 y = p * f * z;
    y = y + e * -2.12194440e-4f;
    y = y - z * 0.5f;
    y = f + y + e * 0.693359375f;
    y = choose(x == 0.0f, (f8)-INFINITY, y);
    y = choose(x == INFINITY, (f8)INFINITY, y);
    return choose(x != x, x, y);
}

/// softplus(z) = max(z, 0) + log1p(e^{−|z|}) and its slope σ(z), sharing e^{−|z|}. log1p(e) =
/// log u − ((u − 1) − e)/u with u = 1 + e rounded (Goldberg 1991, Theorem 4).
INLINE void softplus_sigmoid(f8 z, f8 *softplus, f8 *sigmoid) {
    i8 positive = z >= 0.0f;
    f8 e = vexp(choose(positive, -z, z));
    f8 u = 1.0f + e;
    *softplus = keep(positive, z) + (vlog(u) - ((u - 1.0f) - e) / u);
    *sigmoid = choose(positive, (f8)1.0f, e) / u;
}

/// z wrapped into [−B, B): z − 2B·⌊(z + B)/2B⌋, −B where rounding leaves it a step outside
/// (wrapAngle in RationalQuadraticSplineKernel.swift); NaN stays NaN, ±∞ becomes NaN.
INLINE f8 wrap(f8 z, float bound) {
    const float period = 2 * bound;
    f8 wrapped = z - period * (f8)_mm256_floor_ps((__m256)((z + bound) / period));
    return choose((wrapped < -bound) | (wrapped >= bound), (f8)-bound, wrapped);
}

/// s/(1 + |s|/b) (zuko's soft clip; softClip in AffineTransformKernel.swift) and its slope 1/(1 + |s|/b)².
INLINE f8 soft_clip(f8 s, float b) { return s / (1.0f + (f8)((i8)s & 0x7FFFFFFF) / b); }
INLINE f8 soft_clip_slope(f8 s, float b) {
    f8 denominator = 1.0f + (f8)((i8)s & 0x7FFFFFFF) / b;
    return 1.0f / (denominator * denominator);
}

/// An interior derivative from its raw parameter r and its slope in r: m_d + softplus(r) and
/// sigmoid(r), or, when `clipped`, e^{clip(r)} and e^{clip(r)}·clip′(r).
INLINE void derivative_and_slope(f8 r, int clipped, float bound, float minimum, f8 *value, f8 *slope) {
    if (clipped) {
        *value = vexp(soft_clip(r, bound));
        *slope = *value * soft_clip_slope(r, bound);
    } else {
        f8 softplus;
        softplus_sigmoid(r, &softplus, slope);
        *value = minimum + softplus;
    }
}

/// One block of eight elements: x[8], raw[8][p], outputs[8], log-derivatives[8], state (or NULL);
/// `clipped` (a constant in each caller) selects zuko's parameterization.
INLINE void forward_block(const fk_spline *spline, const float *x, const float *raw, float *output, float *log_out,
                          float *state, const int clipped) {
    const long k = spline->bins, circular = spline->circular, p = 3 * k - 1 + circular;
    const int inverse = spline->inverse;
    const float bound = spline->bound, minimum_derivative = spline->minimum_derivative, c = spline->logit_scale;
    const float minimum_width = spline->minimum_width, minimum_height = spline->minimum_height;
    const float width_scale = 1 - minimum_width * (float)k, height_scale = 1 - minimum_height * (float)k;
    f8 r[3 * FK_SPLINE_MAX_BINS], widths[FK_SPLINE_MAX_BINS], heights[FK_SPLINE_MAX_BINS];
    f8 x_knots[FK_SPLINE_MAX_BINS + 1], y_knots[FK_SPLINE_MAX_BINS + 1];
    f8 width_sums[FK_SPLINE_MAX_BINS], height_sums[FK_SPLINE_MAX_BINS];

    const __m256i rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)p));
    for (long m = 0; m < p; m++) r[m] = (f8)_mm256_i32gather_ps(raw + m, rows, 4);
    const f8 v = circular ? wrap(load(x), spline->bound) : load(x);

    // Softmaxes of the scaled (or soft-clipped) width and height logits.
    f8 largest_width = r[0], largest_height = r[k];
    for (long m = 1; m < k; m++) {
        largest_width = larger(largest_width, r[m]);
        largest_height = larger(largest_height, r[k + m]);
    }
    f8 width_total = 0.0f, height_total = 0.0f;
    if (clipped) {
        // The clip is increasing: the largest clipped logit is the clipped largest.
        const float b = spline->logit_clip;
        largest_width = soft_clip(largest_width, b);
        largest_height = soft_clip(largest_height, b);
        for (long m = 0; m < k; m++) {
            widths[m] = vexp(soft_clip(r[m], b) - largest_width);
            heights[m] = vexp(soft_clip(r[k + m], b) - largest_height);
            width_total += widths[m];
            height_total += heights[m];
        }
    } else {
        for (long m = 0; m < k; m++) {
            widths[m] = vexp(c * (r[m] - largest_width));
            heights[m] = vexp(c * (r[k + m] - largest_height));
            width_total += widths[m];
            height_total += heights[m];
        }
    }
    const f8 width_normalizer = 1.0f / width_total, height_normalizer = 1.0f / height_total;
    for (long m = 0; m < k; m++) {
        widths[m] *= width_normalizer;
        heights[m] *= height_normalizer;
    }

    // Knot j is −B + 2B (j·m + scale·Σ_{m<j} softmax_m); the bin counts the interior knots ≤ v.
    f8 bin = 0.0f, width_sum = 0.0f, height_sum = 0.0f;
    x_knots[0] = -bound;
    y_knots[0] = -bound;
    width_sums[0] = 0.0f;
    height_sums[0] = 0.0f;
    for (long j = 1; j < k; j++) {
        width_sum += widths[j - 1];
        height_sum += heights[j - 1];
        width_sums[j] = width_sum;
        height_sums[j] = height_sum;
        x_knots[j] = -bound + 2 * bound * ((float)j * minimum_width + width_scale * width_sum);
        y_knots[j] = -bound + 2 * bound * ((float)j * minimum_height + height_scale * height_sum);
        bin += keep((inverse ? y_knots[j] : x_knots[j]) <= v, (f8)1.0f);
    }
    x_knots[k] = bound;
    y_knots[k] = bound;

    f8 x0 = 0.0f, x1 = 0.0f, y0 = 0.0f, y1 = 0.0f, lower_width_sum = 0.0f, lower_height_sum = 0.0f;
    f8 bin_width = 0.0f, bin_height = 0.0f, lower_raw = 0.0f, upper_raw = 0.0f;
    for (long j = 0; j < k; j++) {
        i8 at = bin == (float)j;
        x0 = choose(at, x_knots[j], x0);
        x1 = choose(at, x_knots[j + 1], x1);
        y0 = choose(at, y_knots[j], y0);
        y1 = choose(at, y_knots[j + 1], y1);
        lower_width_sum = choose(at, width_sums[j], lower_width_sum);
        lower_height_sum = choose(at, height_sums[j], lower_height_sum);
        bin_width = choose(at, widths[j], bin_width);
        bin_height = choose(at, heights[j], bin_height);
        // A circular spline's outer bins take the shared end derivative (raw 3K − 1).
        if (j >= 1 || circular) lower_raw = choose(at, r[j >= 1 ? 2 * k + j - 1 : 3 * k - 1], lower_raw);
        if (j <= k - 2 || circular) upper_raw = choose(at, r[j <= k - 2 ? 2 * k + j : 3 * k - 1], upper_raw);
    }
    const i8 inside = (v >= -bound) & (v <= bound);
    const i8 lower_interior = inside & (bin >= 1.0f), upper_interior = inside & (bin <= (float)(k - 2));
    // Whether the bin's end derivatives are learned: interior ones, and both ends of a circular spline.
    const i8 lower_learned = circular ? inside : lower_interior, upper_learned = circular ? inside : upper_interior;
    f8 lower_derivative, lower_slope, upper_derivative, upper_slope;
    derivative_and_slope(lower_raw, clipped, spline->derivative_clip, minimum_derivative, &lower_derivative, &lower_slope);
    derivative_and_slope(upper_raw, clipped, spline->derivative_clip, minimum_derivative, &upper_derivative, &upper_slope);
    const f8 d0 = circular ? lower_derivative : choose(bin >= 1.0f, lower_derivative, (f8)1.0f);
    const f8 d1 = circular ? upper_derivative : choose(bin <= (float)(k - 2), upper_derivative, (f8)1.0f);

    // The bin's rational function (BinDerivatives in RationalQuadraticSplineKernel.swift).
    const f8 w = x1 - x0, h = y1 - y0, s = h / w;
    const f8 curvature = d0 + d1 - 2.0f * s;
    f8 xi;
    if (inverse) {
        f8 offset = v - y0;
        f8 a = h * (s - d0) + offset * curvature;
        f8 b = h * d0 - offset * curvature;
        f8 cq = -s * offset;
        f8 discriminant = larger(b * b - 4.0f * a * cq, (f8)0.0f);
        xi = 2.0f * cq / (-b - (f8)_mm256_sqrt_ps((__m256)discriminant));
    } else {
        xi = (v - x0) / w;
    }
    const i8 unclamped = (xi >= 0.0f) & (xi <= 1.0f);
    xi = choose(unclamped, xi, keep(xi > 1.0f, (f8)1.0f));
    const f8 one_minus = 1.0f - xi, xi1 = xi * one_minus;
    const f8 denominator = s + curvature * xi1;
    const f8 ratio = (s * xi * xi + d0 * xi1) / denominator;
    const f8 numerator = d1 * xi * xi + 2.0f * s * xi1 + d0 * one_minus * one_minus;
    const f8 s_over_d = s / denominator;
    const f8 log = vlog(s_over_d * s_over_d * numerator);
    const f8 result = inverse ? x0 + xi * w : y0 + h * ratio;
    // f(±B) = ±B: a circular output of B (or just above, by rounding) is −B. Outside, the identity.
    store(output, choose(inside, circular ? wrap(result, bound) : result, load(x)));
    store(log_out, keep(inside, inverse ? -log : log));
    if (!state) return;

    // Partials with respect to u = (v, x_b, x_{b+1}, y_b, y_{b+1}, d_b, d_{b+1}).
    const f8 inverse_w = 1.0f / w, inverse_denominator = 1.0f / denominator, inverse_numerator = 1.0f / numerator;
    const f8 s_partial[5] = {0.0f, s * inverse_w, -s * inverse_w, -inverse_w, inverse_w};
    const f8 two_xi_minus = 1.0f - 2.0f * xi;
    const f8 d_denominator_d_xi = curvature * two_xi_minus;
    const f8 r_xi = (2.0f * s * xi + d0 * two_xi_minus - ratio * d_denominator_d_xi) * inverse_denominator;
    const f8 r_s = (xi * xi - ratio * (1.0f - 2.0f * xi1)) * inverse_denominator;
    const f8 r_d0 = xi1 * (1.0f - ratio) * inverse_denominator, r_d1 = -ratio * xi1 * inverse_denominator;
    const f8 l_xi = (2.0f * d1 * xi + 2.0f * s * two_xi_minus - 2.0f * d0 * one_minus) * inverse_numerator
        - 2.0f * d_denominator_d_xi * inverse_denominator;
    const f8 l_s = 2.0f / s + 2.0f * xi1 * inverse_numerator - 2.0f * (1.0f - 2.0f * xi1) * inverse_denominator;
    const f8 l_d0 = one_minus * one_minus * inverse_numerator - 2.0f * xi1 * inverse_denominator;
    const f8 l_d1 = xi * xi * inverse_numerator - 2.0f * xi1 * inverse_denominator;
    const f8 h_r_s = h * r_s;
    const f8 y_fixed[7] = {0.0f, h_r_s * s_partial[1], h_r_s * s_partial[2], h_r_s * s_partial[3] + 1.0f - ratio,
                           h_r_s * s_partial[4] + ratio, h * r_d0, h * r_d1};
    const f8 l_fixed[7] = {0.0f, l_s * s_partial[1], l_s * s_partial[2], l_s * s_partial[3], l_s * s_partial[4], l_d0, l_d1};
    const f8 y_xi = h * r_xi;
    f8 xi_partial[7], out_partial[7], log_partial[7];
    if (inverse) {
        const f8 inverse_y_xi = 1.0f / y_xi;
        for (int j = 0; j < 7; j++) xi_partial[j] = keep(unclamped, ((j == 0 ? 1.0f : 0.0f) - y_fixed[j]) * inverse_y_xi);
        for (int j = 0; j < 7; j++) {
            out_partial[j] = w * xi_partial[j] + (j == 1 ? one_minus : (j == 2 ? xi : (f8)0.0f));
            log_partial[j] = -(l_xi * xi_partial[j] + l_fixed[j]);
        }
    } else {
        const f8 forward_partial[7] = {inverse_w, (xi - 1.0f) * inverse_w, -xi * inverse_w, 0.0f, 0.0f, 0.0f, 0.0f};
        for (int j = 0; j < 7; j++) {
            xi_partial[j] = keep(unclamped, forward_partial[j]);
            out_partial[j] = y_xi * xi_partial[j] + y_fixed[j];
            log_partial[j] = l_xi * xi_partial[j] + l_fixed[j];
        }
    }

    // Knot j (0 < j < K) moves with softmax_m for m < j by 2B·scale; the logit scale joins the
    // factor. The bin's outer knots are fixed at ±B, and its end derivatives at 1.
    const float width_factor = 2 * bound * width_scale * c, height_factor = 2 * bound * height_scale * c;
    const f8 upper_width_sum = lower_width_sum + bin_width, upper_height_sum = lower_height_sum + bin_height;
    store(state + 8 * S_DV, choose(inside, out_partial[0], (f8)1.0f));
    store(state + 8 * (S_DV + 1), keep(inside, log_partial[0]));
    for (int q = 0; q < 2; q++) {
        const f8 *partial = q == 0 ? out_partial : log_partial;
        f8 w_lower = keep(lower_interior, width_factor * partial[1]), w_upper = keep(upper_interior, width_factor * partial[2]);
        f8 h_lower = keep(lower_interior, height_factor * partial[3]), h_upper = keep(upper_interior, height_factor * partial[4]);
        store(state + 8 * (S_WLOWER + q), w_lower);
        store(state + 8 * (S_WUPPER + q), w_upper);
        store(state + 8 * (S_HLOWER + q), h_lower);
        store(state + 8 * (S_HUPPER + q), h_upper);
        store(state + 8 * (S_WDOT + q), w_lower * lower_width_sum + w_upper * upper_width_sum);
        store(state + 8 * (S_HDOT + q), h_lower * lower_height_sum + h_upper * upper_height_sum);
        store(state + 8 * (S_DLOWER + q), keep(lower_learned, partial[5] * lower_slope));
        store(state + 8 * (S_DUPPER + q), keep(upper_learned, partial[6] * upper_slope));
    }
    store(state + 8 * S_BIN, bin);
    for (long m = 0; m < k; m++) {
        // The backward pass multiplies by softmax_m times the slope of the softmax's input in raw_m.
        f8 width_weight = widths[m], height_weight = heights[m];
        if (clipped) {
            width_weight *= soft_clip_slope(r[m], spline->logit_clip);
            height_weight *= soft_clip_slope(r[k + m], spline->logit_clip);
        }
        store(state + 8 * (S_WIDTHS + m), keep(inside, width_weight));
        store(state + 8 * (S_WIDTHS + k + m), keep(inside, height_weight));
    }
}

/// forward_block for each parameterization, each compiled with its branch decided.
VECTOR static void forward_block_minimum_sizes(const fk_spline *spline, const float *x, const float *raw, float *output,
                                               float *log_out, float *state) {
    forward_block(spline, x, raw, output, log_out, state, 0);
}
VECTOR static void forward_block_soft_clipped(const fk_spline *spline, const float *x, const float *raw, float *output,
                                              float *log_out, float *state) {
    forward_block(spline, x, raw, output, log_out, state, 1);
}

/// One block: ∂L/∂x into g_x[8] and ∂L/∂raw into rows [count][p] (each skipped when NULL).
/// Through the softmax, ∂/∂raw_m = softmax_m (g_m − Σ_j softmax_j g_j), where g_m is the sum of
/// the knot factors whose knots move with softmax_m (m < b for the lower, m ≤ b for the upper).
/// A circular spline's end derivative (raw 3K − 1) takes the lower derivative's factor in bin 0
/// and the upper one's in bin K − 1.
VECTOR static void backward_block(long k, long circular, const float *g_output, const float *g_log, const float *state,
                                  long count, float *g_x, float *g_raw) {
    const long p = 3 * k - 1 + circular;
    const f8 go = load(g_output), gl = load(g_log);
#define CHAIN(i) (go * load(state + 8 * (i)) + gl * load(state + 8 * ((i) + 1)))
    if (g_x) {
        float lanes[8] __attribute__((aligned(32)));
        store(lanes, CHAIN(S_DV));
        for (long l = 0; l < count; l++) g_x[l] = lanes[l];
    }
    if (!g_raw) return;
    const f8 w_lower = CHAIN(S_WLOWER), w_upper = CHAIN(S_WUPPER), h_lower = CHAIN(S_HLOWER), h_upper = CHAIN(S_HUPPER);
    const f8 w_dot = CHAIN(S_WDOT), h_dot = CHAIN(S_HDOT), d_lower = CHAIN(S_DLOWER), d_upper = CHAIN(S_DUPPER);
#undef CHAIN
    const f8 bin = load(state + 8 * S_BIN);
    float gradient[3 * FK_SPLINE_MAX_BINS * 8] __attribute__((aligned(32)));
    for (long m = 0; m < k; m++) {
        i8 below = (float)m < bin, within = (float)m <= bin;
        store(gradient + 8 * m, load(state + 8 * (S_WIDTHS + m)) * (keep(below, w_lower) + keep(within, w_upper) - w_dot));
        store(gradient + 8 * (k + m),
              load(state + 8 * (S_WIDTHS + k + m)) * (keep(below, h_lower) + keep(within, h_upper) - h_dot));
    }
    for (long j = 0; j < k - 1; j++)
        store(gradient + 8 * (2 * k + j), keep(bin == (float)(j + 1), d_lower) + keep(bin == (float)j, d_upper));
    if (circular) store(gradient + 8 * (3 * k - 1), keep(bin == 0.0f, d_lower) + keep(bin == (float)(k - 1), d_upper));
    for (long l = 0; l < count; l++)
        for (long m = 0; m < p; m++) g_raw[l * p + m] = gradient[8 * m + l];
}

int fk_spline_available(void) {
    static int available = -1;
    int known = __atomic_load_n(&available, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    __builtin_cpu_init();
    known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    __atomic_store_n(&available, known, __ATOMIC_RELAXED);
    return known;
}

void fk_spline_forward(const fk_spline *spline, const float *x, const float *raw, long n, long start, long end,
                       float *output, float *log_derivative, float *state) {
    const long p = 3 * spline->bins - 1 + spline->circular, stride = fk_spline_state_stride(spline->bins);
    void (*const block)(const fk_spline *, const float *, const float *, float *, float *, float *) =
        spline->logit_clip > 0 ? forward_block_soft_clipped : forward_block_minimum_sizes;
    for (long i = start; i < end; i += 8) {
        float *block_state = state ? state + i * stride : 0;
        if (i + 8 <= n) {
            block(spline, x + i, raw + i * p, output + i, log_derivative + i, block_state);
            continue;
        }
        // The last, partial block runs on zero-padded copies.
        const long count = n - i;
        float x_pad[8] = {0}, out_pad[8], log_pad[8], raw_pad[8 * 3 * FK_SPLINE_MAX_BINS] = {0};
        for (long l = 0; l < count; l++) {
            x_pad[l] = x[i + l];
            for (long m = 0; m < p; m++) raw_pad[l * p + m] = raw[(i + l) * p + m];
        }
        block(spline, x_pad, raw_pad, out_pad, log_pad, block_state);
        for (long l = 0; l < count; l++) {
            output[i + l] = out_pad[l];
            log_derivative[i + l] = log_pad[l];
        }
    }
}

void fk_spline_backward(const fk_spline *spline, const float *g_output, const float *g_log, const float *state,
                        long n, long start, long end, float *g_x, float *g_raw) {
    const long k = spline->bins, p = 3 * k - 1 + spline->circular, stride = fk_spline_state_stride(k);
    for (long i = start; i < end; i += 8) {
        const long count = n - i < 8 ? n - i : 8;
        float go_pad[8] = {0}, gl_pad[8] = {0};
        const float *go = g_output + i, *gl = g_log + i;
        if (count < 8) {
            for (long l = 0; l < count; l++) {
                go_pad[l] = go[l];
                gl_pad[l] = gl[l];
            }
            go = go_pad;
            gl = gl_pad;
        }
        backward_block(k, spline->circular, go, gl, state + i * stride, count, g_x ? g_x + i : 0, g_raw ? g_raw + i * p : 0);
    }
}

#else

int fk_spline_available(void) { return 0; }

void fk_spline_forward(const fk_spline *spline, const float *x, const float *raw, long n, long start, long end,
                       float *output, float *log_derivative, float *state) {
    (void)spline; (void)x; (void)raw; (void)n; (void)start; (void)end; (void)output; (void)log_derivative; (void)state;
}

void fk_spline_backward(const fk_spline *spline, const float *g_output, const float *g_log, const float *state,
                        long n, long start, long end, float *g_x, float *g_raw) {
    (void)spline; (void)g_output; (void)g_log; (void)state; (void)n; (void)start; (void)end; (void)g_x; (void)g_raw;
}

#endif
