#ifndef FLOWKERNELS_H
#define FLOWKERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/// A rational-quadratic spline (see RationalQuadraticSpline.swift): K bins on [−bound, bound],
/// raw parameters per element [K width logits, K height logits, K − 1 derivative parameters].
/// With logit_clip > 0 (zuko's parameterization) the logits are soft-clipped, s/(1 + |s|/logit_clip),
/// before the softmax, and interior derivatives are exp(r/(1 + |r|/derivative_clip)) (give zero
/// minimum sizes and derivative and logit scale 1); with 0, derivatives are
/// minimum_derivative + softplus(r). With circular != 0 the spline is a circle map: inputs and
/// outputs are wrapped into [−bound, bound), and the raw parameters have one more column (3K
/// in all), the shared end derivative d_0 = d_K, mapped like the interior ones (instead of 1).
typedef struct {
    long bins;
    float bound;
    float minimum_width;
    float minimum_height;
    float minimum_derivative;
    float logit_scale;
    int inverse;
    float logit_clip;
    float derivative_clip;
    long circular;
} fk_spline;

/// The largest bin count the vector kernel takes.
#define FK_SPLINE_MAX_BINS 64

/// Non-zero when this CPU runs the vector spline kernel (x86-64 with AVX2 and FMA).
int fk_spline_available(void);

/// Floats per element of the saved state the backward pass reads: 19 + 2K.
long fk_spline_state_stride(long bins);

/// Outputs and log-derivatives of elements [start, end) of n (start a multiple of 8), from inputs
/// x [n] and raw parameters [n, 3K − 1] (3K when circular). When `state` is not NULL it receives, per block of 8
/// elements, the derivatives the backward pass needs (⌈n/8⌉·8·stride floats in all).
/// Single-threaded and thread-safe.
void fk_spline_forward(const fk_spline *spline, const float *x, const float *raw, long n, long start, long end,
                       float *output, float *log_derivative, float *state);

/// ∂L/∂x [n] and ∂L/∂raw [n, 3K − 1] (3K when circular; each skipped when NULL) of elements [start, end) (start a
/// multiple of 8) from ∂L/∂output, ∂L/∂log-derivative and the forward pass's state.
void fk_spline_backward(const fk_spline *spline, const float *g_output, const float *g_log, const float *state,
                        long n, long start, long end, float *g_x, float *g_raw);

#ifdef __cplusplus
}
#endif

#endif
