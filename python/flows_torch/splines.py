"""The spline transforms of the Swift library, formula for formula, and the circular shift.

- :class:`SplineTransform`: the rational-quadratic spline of Durkan, Bekasov, Murray &
  Papamakarios (2019, "Neural Spline Flows", eq. 4–8) with identity tails
  (RationalQuadraticSpline.swift, RationalQuadraticSplineKernel.swift), or with the circular
  boundary of Rezende et al. (2020, "Normalizing Flows on Tori and Spheres", ICML, §3.2).
- :class:`LinearRationalSplineTransform`: the linear-rational spline of Dolatabadi, Erfani &
  Leckie (2020, "Invertible Generative Modeling using Linear Rational Splines", AISTATS, §3)
  (LinearRationalSpline.swift, LinearRationalSplineKernel.swift).
- :class:`CircularShiftTransform` and :class:`FixedCircularShift`: rotations of the circle
  (CircularShift.swift).

Both splines place their knots alike (:func:`spline_knots`) and find the bin of a point alike
(:func:`bin_corners`). Transforms take one raw parameter row ``[..., P]`` per element and return
``(value, log|derivative|)`` elementwise; autograd differentiates them.
"""

import math

import torch
import torch.nn.functional as F

from .bijectors import Bijector, MappingError, soft_clip


def wrap_angle(z, bound=math.pi):
    """z wrapped into [−B, B): z − 2B·⌊(z + B)/2B⌋, and −B when rounding lands a step outside
    (Swift ``wrapAngle``), in z's dtype (B rounded to it, as Swift's ``T(Double.pi)``); NaN
    for ±∞. The derivative is 1, also where the rounding guard applies."""
    period = 2 * bound
    wrapped = z - period * torch.floor((z + bound) / period)
    outside = (wrapped < -bound) | (wrapped >= bound)
    # −B in value, slope 1 in z.
    return torch.where(outside, wrapped - (wrapped + bound).detach(), wrapped)


def spline_knots(logits, bins, bound, minimum, logit_scale=1.0):
    """The K + 1 knots of a spline on [−B, B] from K logits: knot j (0 < j < K) is
    −B + 2B(j·m + (1 − K·m)·Σ_{i<j} softmax(c·logits)_i), knots 0 and K are ∓B."""
    softmax = torch.softmax(logit_scale * logits, dim=-1)
    sums = torch.cumsum(softmax, dim=-1)[..., : bins - 1]
    j = torch.arange(1, bins, dtype=logits.dtype, device=logits.device)
    interior = -bound + 2 * bound * (j * minimum + (1 - bins * minimum) * sums)
    ends = logits.new_full(interior.shape[:-1] + (1,), bound)
    return torch.cat([-ends, interior, ends], dim=-1)


def bin_corners(u, xs, ys, ds, inverse):
    """The bin b of each point u (knot_b ≤ u < knot_{b+1} among the x knots, or the y knots for the
    inverse; u = B falls in the last bin) and its corners: ``(b, x_b, x_{b+1}, y_b, y_{b+1},
    d_b, d_{b+1})``, b with a trailing axis of 1 for further gathers."""
    bins = xs.shape[-1] - 1
    knots = ys if inverse else xs
    b = (knots[..., 1:bins] <= u.unsqueeze(-1)).sum(dim=-1, keepdim=True)

    def pair(values):
        return values.gather(-1, b).squeeze(-1), values.gather(-1, b + 1).squeeze(-1)

    return (b, *pair(xs), *pair(ys), *pair(ds))


class _Spline:
    """The settings both splines share: K bins on [−B, B], minimum bin sizes and the logit scale."""

    name = "spline"

    def _read_common(self, options):
        self.bins = int(options["bins"])
        self.bound = float(options["bound"])
        self.min_width = float(options["minimumBinWidth"])
        self.min_height = float(options["minimumBinHeight"])
        self.min_derivative = float(options["minimumDerivative"])
        self.logit_scale = float(options.get("logitScale", 1.0))

    def _check_common(self):
        if self.bins < 2 or not 0 < self.bound < math.inf:
            raise MappingError(f"{self.name} needs ≥ 2 bins and a positive finite bound, got {self.bins}, {self.bound}")

    def _check_minimums(self):
        k = self.bins
        if not (0 < self.min_width and 0 < self.min_height and self.min_width * k < 1 and self.min_height * k < 1
                and 0 < self.min_derivative < 1):
            raise MappingError(f"{self.name} minimum bin sizes must be positive with K·minimum < 1 and 0 < minimum "
                               f"derivative < 1, got {self.min_width}, {self.min_height}, {self.min_derivative}")
        if not 0 < self.logit_scale < math.inf:
            raise MappingError(f"{self.name} logit scale must be positive and finite, got {self.logit_scale}")

    def _knot_grid(self, raw, clip=None):
        """x and y knots [..., K + 1] from the first 2K raw values (logits soft-clipped by ``clip``)."""
        k = self.bins
        widths, heights = raw[..., :k], raw[..., k: 2 * k]
        if clip is not None:
            widths, heights = soft_clip(widths, clip), soft_clip(heights, clip)
        return (spline_knots(widths, k, self.bound, self.min_width, self.logit_scale),
                spline_knots(heights, k, self.bound, self.min_height, self.logit_scale))

    def forward(self, x, raw):
        return self._apply(x, raw, inverse=False)

    def inverse(self, y, raw):
        return self._apply(y, raw, inverse=True)


class SplineTransform(_Spline):
    """The rational-quadratic spline of Durkan et al. (2019) as the Swift kernel computes it
    (RationalQuadraticSplineKernel.swift), on [−B, B] with identity tails outside.

    Raw parameters per element: K width logits, K height logits, K − 1 derivative raws.
    Knot j (0 < j < K) is −B + 2B(j·m + (1 − K·m)·Σ_{i<j} softmax(c·logits)_i), knots 0 and K are
    ∓B; interior derivatives are m_d + softplus(raw), the end derivatives 1. In bin k with
    ξ = (x − x_k)/w, s = h/w: y = y_k + h(sξ² + d_k ξ(1−ξ)) / (s + (d_{k+1} + d_k − 2s)ξ(1−ξ)),
    log dy/dx = log(s² (d_{k+1}ξ² + 2sξ(1−ξ) + d_k(1−ξ)²) / D²). The inverse takes the root
    2c/(−b − √(b² − 4ac)) of the quadratic in ξ. Points with |v| ≤ B use the spline.

    With the parameterization ``{"softClipped": {"slope": σ}}`` (zuko's ``MonotonicRQSTransform``)
    the logits are soft-clipped, s/(1 + |s|/b) with b = −log(σ)/2, and softmaxed with no minimum
    size (m = 0, c = 1), and the interior derivatives are exp(r/(1 + |r|/(−log σ))). Without the
    key (older files) or with ``{"minimumSizes": {}}`` it is the parameterization above.

    With ``"boundary": "circular"`` (bound π) it is the circular spline of Rezende et al. (2020,
    §3.2), a map of the circle [−π, π): 3K raw parameters, the last the derivative shared by both
    ends, d_0 = d_K (mapped as the interior ones); inputs are wrapped into [−π, π) first
    (:func:`wrap_angle`) and outputs after, so π becomes −π; there are no tails.
    """

    name = "spline"

    def __init__(self, options):
        try:
            self._read_common(options)
            parameterization = options.get("parameterization", {"minimumSizes": {}})
            (kind, value), = parameterization.items()
            self.slope = float(value["slope"]) if kind == "softClipped" else None
            boundary = options.get("boundary", "linearTails")
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise MappingError(f"RationalQuadraticSplineTransform options {options!r} are incomplete: {error}") from None
        if kind not in ("minimumSizes", "softClipped"):
            raise MappingError(f"spline parameterization '{kind}' is not mapped (minimumSizes, softClipped)")
        if boundary not in ("linearTails", "circular"):
            raise MappingError(f"spline boundary '{boundary}' is not mapped (linearTails, circular)")
        self.circular = boundary == "circular"
        self._check_common()
        if self.circular and self.bound != math.pi:
            raise MappingError(f"a circular spline maps angles in [−π, π): its bound must be π, got {self.bound}")
        if self.slope is not None:
            if not 0 < self.slope < 1:
                raise MappingError(f"soft-clipped spline slope must lie in (0, 1), got {self.slope}")
            self.min_width = self.min_height = self.min_derivative = 0.0
            self.logit_scale = 1.0
        else:
            self._check_minimums()
        self.parameter_count = 3 * self.bins - 1 + (1 if self.circular else 0)

    @staticmethod
    def options(bins, bound, logit_scale, minimum=1e-3):
        return {"bins": bins, "bound": bound, "minimumBinWidth": minimum, "minimumBinHeight": minimum,
                "minimumDerivative": minimum, "logitScale": logit_scale}

    def identity(self):
        derivative = 0.0 if self.slope is not None else math.log(math.expm1(1 - self.min_derivative))
        return [0.0] * (2 * self.bins) + [derivative] * (self.parameter_count - 2 * self.bins)

    def _derivatives(self, raw):
        if self.slope is not None:
            return torch.exp(soft_clip(raw, -math.log(self.slope)))
        return self.min_derivative + F.softplus(raw)

    def _apply(self, v, raw, inverse):
        k, bound = self.bins, self.bound
        raw = raw.expand(v.shape + (self.parameter_count,))
        xs, ys = self._knot_grid(raw, None if self.slope is None else -math.log(self.slope) / 2)
        derivatives = self._derivatives(raw[..., 2 * k:])
        if self.circular:
            end = derivatives[..., k - 1:]
            ds = torch.cat([end, derivatives[..., : k - 1], end], dim=-1)
            angle = wrap_angle(v, bound)
        else:
            one = raw.new_ones(raw.shape[:-1] + (1,))
            ds = torch.cat([one, derivatives, one], dim=-1)
            angle = v
        inside = (angle >= -bound) & (angle <= bound)
        u = angle.clamp(-bound, bound)
        _, x0, x1, y0, y1, d0, d1 = bin_corners(u, xs, ys, ds, inverse)
        w, h = x1 - x0, y1 - y0
        s = h / w
        curvature = d0 + d1 - 2 * s
        if inverse:
            offset = u - y0
            a = h * (s - d0) + offset * curvature
            bq = h * d0 - offset * curvature
            c = -s * offset
            discriminant = (bq * bq - 4 * a * c).clamp(min=0)
            xi = 2 * c / (-bq - discriminant.sqrt())
        else:
            xi = (u - x0) / w
        xi = torch.where(torch.isnan(xi), torch.zeros_like(xi), xi.clamp(0, 1))
        one_minus = 1 - xi
        xi1 = xi * one_minus
        denominator = s + curvature * xi1
        ratio = (s * xi * xi + d0 * xi1) / denominator
        numerator = d1 * xi * xi + 2 * s * xi1 + d0 * one_minus * one_minus
        s_over_d = s / denominator
        log = torch.log(s_over_d * s_over_d * numerator)
        out = x0 + xi * w if inverse else y0 + h * ratio
        if self.circular:
            out = wrap_angle(out, bound)
        log = -log if inverse else log
        return torch.where(inside, out, v), torch.where(inside, log, torch.zeros_like(log))


class LinearRationalSplineTransform(_Spline):
    """The monotonic linear-rational spline of Dolatabadi, Erfani & Leckie (2020, §3, Algorithm 1)
    as the Swift kernel computes it (LinearRationalSplineKernel.swift), on [−B, B] with identity
    tails outside.

    Raw parameters per element, 4K − 1: K width logits, K height logits, K − 1 interior derivative
    raws, K λ raws. Knots as :class:`SplineTransform`'s (minimum sizes, logit scale c); interior
    derivatives m_d + softplus(raw), end derivatives 1; λ_k = m_λ + (1 − 2m_λ)·sigmoid(raw) places
    bin k's intermediate point x_k + λ_k w_k. With w, h, s = h/w, d_k, d_{k+1} of the bin and
    N = λ√d_k + (1 − λ)√d_{k+1}, the half of the bin that holds the point is anchored at its
    nearer end e (x_k below the intermediate point, x_{k+1} above; f_e = λ or 1 − λ) and

        y = y_e + d_e δ/E,  δ = x − x_e,  E = (1 − τ) + c_e τ,  τ = |δ|/(f_e w),  c_e = √d_e N/s,
        log dy/dx = log(d_e/E²)

    (the paper's eq. 8–10 with weights w_a = √d_{k+1}, w_b = √d_k). The inverse is
    r = |y − y_e|/(d_e f_e w/c_e) clamped to [0, 1], τ = r/(c_e(1 − r) + r), x = x_e ± τ f_e w,
    E = c_e/(c_e(1 − r) + r); the lower half holds y when y − y_k ≤ λ√d_k h/N.
    """

    name = "linear-rational spline"

    def __init__(self, options):
        try:
            self._read_common(options)
            self.min_lambda = float(options["minimumLambda"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise MappingError(f"LinearRationalSplineTransform options {options!r} are incomplete: {error}") from None
        self._check_common()
        self._check_minimums()
        if not 0 < self.min_lambda < 0.5:
            raise MappingError(f"linear-rational spline minimum λ must lie in (0, 0.5), got {self.min_lambda}")
        self.parameter_count = 4 * self.bins - 1

    @staticmethod
    def options(bins, bound, logit_scale, minimum=1e-3, minimum_lambda=0.025):
        """Swift ``LinearRationalSplineTransform(bins:bound:logitScale:)`` with its defaults."""
        return {"bins": bins, "bound": bound, "minimumBinWidth": minimum, "minimumBinHeight": minimum,
                "minimumDerivative": minimum, "minimumLambda": minimum_lambda, "logitScale": logit_scale}

    def identity(self):
        """Equal bins, unit derivatives and λ = 1/2: every piece is the identity."""
        return ([0.0] * (2 * self.bins) + [math.log(math.expm1(1 - self.min_derivative))] * (self.bins - 1)
                + [0.0] * self.bins)

    def _apply(self, v, raw, inverse):
        k, bound = self.bins, self.bound
        raw = raw.expand(v.shape + (self.parameter_count,))
        xs, ys = self._knot_grid(raw)
        one = raw.new_ones(raw.shape[:-1] + (1,))
        ds = torch.cat([one, self.min_derivative + F.softplus(raw[..., 2 * k: 3 * k - 1]), one], dim=-1)
        inside = (v >= -bound) & (v <= bound)
        u = v.clamp(-bound, bound)
        b, x0, x1, y0, y1, d0, d1 = bin_corners(u, xs, ys, ds, inverse)
        lam = self.min_lambda + (1 - 2 * self.min_lambda) * torch.sigmoid(raw[..., 3 * k - 1:].gather(-1, b).squeeze(-1))
        w, h = x1 - x0, y1 - y0
        s = h / w
        root_lower, root_upper = d0.sqrt(), d1.sqrt()
        n = lam * root_lower + (1 - lam) * root_upper
        lower = (u - y0 <= lam * root_lower * h / n) if inverse else (u - x0 <= lam * w)
        xe, ye = torch.where(lower, x0, x1), torch.where(lower, y0, y1)
        de = torch.where(lower, d0, d1)
        root = torch.where(lower, root_lower, root_upper)
        span = torch.where(lower, lam, 1 - lam) * w
        c = root * n / s
        if inverse:
            height = de * span / c
            r = ((u - ye).abs() / height).clamp(0, 1)
            g = c * (1 - r) + r
            tau = r / g
            e = c / g
            out = xe + torch.where(lower, tau * span, -(tau * span))
        else:
            delta = u - xe
            e = (1 - delta.abs() / span) + c * (delta.abs() / span)
            out = ye + de * delta / e
        log = torch.log(de / (e * e))
        log = -log if inverse else log
        return torch.where(inside, out, v), torch.where(inside, log, torch.zeros_like(log))


class CircularShiftTransform:
    """A learned rotation of the circle (Swift ``CircularShiftTransform``): y = wrap(x + s) on
    angles in [−π, π) with one raw parameter s per element, x = wrap(y − s); log|dy/dx| = 0
    (zuko's ``CircularShiftTransform``; Rezende et al. 2020, §3.2)."""

    parameter_count = 1

    def identity(self):
        return [0.0]

    def forward(self, x, raw):
        return wrap_angle(x + raw[..., 0]), torch.zeros_like(x)

    def inverse(self, y, raw):
        return wrap_angle(y - raw[..., 0]), torch.zeros_like(y)


class FixedCircularShift(Bijector):
    """A rotation of the circle by a fixed angle a, y = wrap(x + a), x = wrap(y − a), no
    parameters (Swift ``CircularShift(.fixed(a))``; ``NCSF`` puts a half turn between its splines)."""

    def __init__(self, angle):
        super().__init__()
        self.angle = float(angle)
        if not math.isfinite(self.angle):
            raise MappingError(f"a circular shift must be a finite angle, got {self.angle}")

    def _forward(self, x, context):
        return wrap_angle(x + self.angle), x.new_zeros(x.shape[:-1])

    def _inverse(self, y, context):
        return wrap_angle(y - self.angle), y.new_zeros(y.shape[:-1])
