"""The monotonic neural transformers of the Swift library, formula for formula: the deep
sigmoidal flow (NAF), the unconstrained monotonic network (UNAF), the sum-of-squares
polynomial (SOSPF) and the Bernstein polynomial (BPF).

Each is an elementwise transform in the sense of :mod:`flows_torch.bijectors` (``parameter_count``,
``identity()``, ``forward(x, raw)`` and ``inverse(y, raw)``, both returning the value and
log|dy/dx| elementwise), so the existing ``Autoregressive`` (MADE conditioner) and
``FreeElementwise`` bijectors carry them. The raw parameters are laid out in the last axis as
the Swift transforms lay them out (Bijectors/DeepSigmoidal.swift, UnconstrainedMonotonic.swift,
SumOfSquaresPolynomial.swift, BernsteinPolynomial.swift).

The forward maps are closed-form tensor expressions (differentiable in x and in the raw
parameters). None has a closed-form inverse: ``monotone_inverse`` finds the root with
Chandrupatla's bracketing method (Swift ``MonotoneRootFinder``, MonotoneInverse.swift) to
10⁻¹⁴·(1 + |x|) in float64 and 10⁻⁶·(1 + |x|) in float32, and raises :class:`NotConverged`
naming the row that failed, never an approximation.
"""

import functools
import math

import torch
from torch.nn import functional as F

from .bijectors import MappingError


class NotConverged(MappingError):
    """A monotone inverse whose root was not found (no bracket, NaN, or too many steps)."""


def softplus(s):
    """log(1 + eˢ) as the Swift kernel computes it, max(s, 0) + log1p(e^{−|s|}) (torch's
    ``F.softplus`` returns s itself above 20, 2·10⁻⁹ off)."""
    return s.clamp(min=0) + torch.log1p(torch.exp(-s.abs()))


# ---------------------------------------------------------------------------------------------
# Root finding


def _first(mask):
    return int(mask.reshape(-1).nonzero()[0])


def chandrupatla(evaluate, targets, tolerance, maximum_iterations=100, maximum_expansions=64, what="the map"):
    """The x with f(x) = ``targets`` elementwise for an f increasing in each element
    (Chandrupatla 1997, "A new hybrid quadratic/bisection algorithm for finding the zero of a
    nonlinear function without using derivatives"), as Swift's ``MonotoneRootFinder.solve``.

    ``evaluate(x)`` is f at one trial point per element (float64 in, float64 out, all elements
    at once). 1. Bracket: from [y − 1, y + 1], an end whose f lies on the wrong side of the target
    moves outward by twice the bracket's width, at most ``maximum_expansions`` times. 2. Narrow:
    with a the newest point, b the end of opposite sign and c the point dropped last,
    ξ = (a − b)/(c − b) and Φ = (f_a − f_b)/(f_c − f_b); when Φ² < ξ and (1 − Φ)² < 1 − ξ the
    inverse quadratic interpolation t = f_a/(f_b − f_a)·f_c/(f_b − f_c) + (c − a)/(b − a)·f_a/(f_c − f_a)·f_b/(f_c − f_b)
    is taken, else t = ½; the next point is a + t(b − a) with t kept in [τ, 1 − τ],
    τ = tol/|b − a|. 3. Stop when |b − a| ≤ 2·tol, tol = ``tolerance``·(1 + |x|), when the
    residual is 0 or when a and b are neighbouring doubles; the answer is the end with the smaller
    residual. A non-finite target gives NaN. Raises :class:`NotConverged` with the element's
    flat index for an element that cannot be bracketed, meets NaN or does not narrow in
    ``maximum_iterations`` steps.
    """
    y = targets.detach().double().reshape(-1)
    active = torch.isfinite(y)
    result = torch.full_like(y, math.nan)

    def fail(i, reason):
        return NotConverged(f"inverting {what}: element {i} (y = {float(y[i])!r}): {reason}")

    # 1. Bracket: lo < hi with f(lo) ≤ y ≤ f(hi).
    lo = torch.where(active, y, torch.zeros_like(y)) - 1
    hi = lo + 2
    f_lo, f_hi = evaluate(lo), evaluate(hi)
    for expansion in range(maximum_expansions + 1):
        nan = active & (torch.isnan(f_lo) | torch.isnan(f_hi))
        if bool(nan.any()):
            i = _first(nan)
            raise fail(i, f"the map is NaN at x = {float(lo[i] if torch.isnan(f_lo[i]) else hi[i])!r}")
        width = hi - lo
        down = active & (f_lo > y)
        up = active & ~down & (f_hi < y)
        if not bool((down | up).any()):
            break
        if expansion == maximum_expansions:
            i = _first(down | up)
            raise fail(i, f"no bracket within {maximum_expansions} doublings (f ranges over [{float(f_lo[i])!r}, "
                          f"{float(f_hi[i])!r}] on [{float(lo[i])!r}, {float(hi[i])!r}])")
        # The end that moves becomes the other end; the trial lies twice the width beyond it.
        hi, f_hi, lo, f_lo = (torch.where(down, lo, hi), torch.where(down, f_lo, f_hi),
                              torch.where(up, hi, lo), torch.where(up, f_hi, f_lo))
        trial = torch.where(down, lo - 2 * width, torch.where(up, hi + 2 * width, lo))
        values = evaluate(trial)
        lo, f_lo = torch.where(down, trial, lo), torch.where(down, values, f_lo)
        hi, f_hi = torch.where(up, trial, hi), torch.where(up, values, f_hi)
    # 2. Chandrupatla's iteration on residuals r = f − y; a is the newest point.
    a, b, c = hi.clone(), lo.clone(), hi.clone()
    ra, rb = f_hi - y, f_lo - y
    rc = ra.clone()
    exact = active & ((ra == 0) | (rb == 0))
    result = torch.where(exact, torch.where(ra == 0, a, b), result)
    active = active & ~exact
    t = torch.full_like(y, 0.5)
    for _ in range(maximum_iterations):
        if not bool(active.any()):
            return result
        trial = torch.where(active, a + t * (b - a), a)
        r = evaluate(trial) - y
        nan = active & torch.isnan(r)
        if bool(nan.any()):
            i = _first(nan)
            raise fail(i, f"the map is NaN at x = {float(trial[i])!r}")
        same = (r > 0) == (ra > 0)
        c, rc = torch.where(same, a, b), torch.where(same, ra, rb)
        b, rb = torch.where(same, b, a), torch.where(same, rb, ra)
        a, ra = trial, r
        a_better = ra.abs() < rb.abs()
        x, residual = torch.where(a_better, a, b), torch.where(a_better, ra, rb)
        tol = tolerance * (1 + x.abs())
        limit = tol / (b - a).abs()
        low, high = torch.minimum(a, b), torch.maximum(a, b)
        done = active & ((residual == 0) | (limit > 0.5) | (torch.nextafter(low, torch.full_like(low, math.inf)) >= high))
        result = torch.where(done, x, result)
        active = active & ~done
        xi, phi = (a - b) / (c - b), (ra - rb) / (rc - rb)
        quadratic = (ra / (rb - ra) * rc / (rb - rc)
                     + (c - a) / (b - a) * ra / (rc - ra) * rb / (rc - rb))
        safe = (phi * phi < xi) & ((1 - phi) * (1 - phi) < 1 - xi) & torch.isfinite(quadratic)
        step = torch.where(safe, quadratic, torch.full_like(quadratic, 0.5))
        t = torch.where(active, torch.minimum(1 - limit, torch.maximum(limit, step)), t)
    if bool(active.any()):
        i = _first(active)
        raise fail(i, f"the bracket [{float(torch.minimum(a, b)[i])!r}, {float(torch.maximum(a, b)[i])!r}] did not "
                      f"narrow to {tolerance}·(1 + |x|) in {maximum_iterations} Chandrupatla steps")
    return result


def root_tolerance(dtype):
    """Swift ``MonotoneRootFinder(dtype:)``: 10⁻¹⁴ in float64, 10⁻⁶ in float32 (relative to 1 + |x|)."""
    return 1e-14 if dtype == torch.float64 else 1e-6


def monotone_inverse(transform, y, raw):
    """x = f⁻¹(y; θ) and log|dx/dy| = −log f′(x) for a transform increasing in x (Swift
    ``ParametricElementwiseTransform.monotoneInverse``): the root by :func:`chandrupatla`,
    f evaluated in ``y``'s dtype, without gradients; when gradients are recorded, one Newton
    step on the tape, x = x* − (g − ḡ)/ḡ′ with g = f(x*; θ) − y and ḡ, ḡ′ held fixed, whose value
    is x* and whose derivatives are the implicit-function ones (∂x/∂y = 1/f′,
    ∂x/∂θ = −(∂f/∂θ)/f′). Raises :class:`NotConverged` naming the row (and element) that failed."""
    raw = raw.expand(y.shape + (transform.parameter_count,))
    fixed = raw.detach()
    with torch.no_grad():
        def evaluate(trial):
            return transform.forward(trial.to(y.dtype).reshape(y.shape), fixed)[0].double().reshape(-1)
        try:
            roots = chandrupatla(evaluate, y, root_tolerance(y.dtype), what=type(transform).__name__)
        except NotConverged as error:
            raise NotConverged(_name_row(str(error), y.shape)) from None
    solved = roots.to(y.dtype).reshape(y.shape)
    if not torch.is_grad_enabled():
        return solved, -transform.forward(solved, fixed)[1]
    image, log_derivative = transform.forward(solved, raw)
    g = image - y
    x = solved - (g - g.detach()) / log_derivative.detach().exp()
    return x, -transform.forward(x, raw)[1]


def _name_row(message, shape):
    """The finder's flat element index as the row (and column) of ``shape``."""
    prefix, rest = message.split(": element ", 1)
    index, rest = rest.split(" ", 1)
    index = int(index)
    if len(shape) >= 2:
        columns = shape[-1]
        return f"{prefix}: row {index // columns}, element {index % columns} {rest}"
    return f"{prefix}: row {index} {rest}"


class MonotoneTransform:
    """An elementwise transform increasing in x whose inverse is :func:`monotone_inverse`."""

    def inverse(self, y, raw):
        return monotone_inverse(self, y, raw)


# ---------------------------------------------------------------------------------------------
# Deep sigmoidal flow (Huang et al. 2018)


class DeepSigmoidalTransform(MonotoneTransform):
    """The deep sigmoidal flow of Huang, Krueger, Lacoste & Courville (2018, "Neural
    Autoregressive Flows"), Swift ``DeepSigmoidalTransform``: with K units,

        y = logit S(x),  S(x) = Σⱼ wⱼ σ(aⱼx + bⱼ),  aⱼ = softplus(max(αⱼ, −30)),  w = softmax(ω),

    raw parameters [α₁…α_K, b₁…b_K, ω₁…ω_K]. In log space with zⱼ = aⱼx + bⱼ:
    log S = LSEⱼ(log wⱼ + log σ(zⱼ)), log(1 − S) = LSEⱼ(log wⱼ + log σ(−zⱼ)), y = log S − log(1 − S),
    log dy/dx = LSEⱼ(log wⱼ + log aⱼ + log σ(zⱼ) + log σ(−zⱼ)) − log S − log(1 − S).
    """

    def __init__(self, units):
        self.units = int(units)
        if self.units < 1:
            raise MappingError(f"a deep sigmoidal flow needs at least one unit, got {units}")
        self.parameter_count = 3 * self.units

    def identity(self):
        return [math.log(math.expm1(1.0))] * self.units + [0.0] * (2 * self.units)

    def forward(self, x, raw):
        k = self.units
        raw = raw.expand(x.shape + (3 * k,))
        slopes = softplus(raw[..., :k].clamp(min=-30))
        log_weights = torch.log_softmax(raw[..., 2 * k:], dim=-1)
        z = slopes * x.unsqueeze(-1) + raw[..., k:2 * k]
        log_up, log_down = F.logsigmoid(z), F.logsigmoid(-z)
        log_s = torch.logsumexp(log_weights + log_up, dim=-1)
        log_complement = torch.logsumexp(log_weights + log_down, dim=-1)
        log_slope = torch.logsumexp(log_weights + torch.log(slopes) + log_up + log_down, dim=-1)
        return log_s - log_complement, log_slope - log_s - log_complement


# ---------------------------------------------------------------------------------------------
# Unconstrained monotonic network (Wehenkel & Louppe 2019)


@functools.lru_cache(maxsize=None)
def gauss_legendre_rule(n):
    """The n-point Gauss–Legendre rule on [−1, 1] as Swift's ``gaussLegendreRule`` computes it:
    the roots ξᵢ of Pₙ by Newton's method from Tricomi's estimate cos(π(i + ¾)/(n + ½)), Pₙ and
    Pₙ′ by the recurrence kPₖ = (2k − 1)ξPₖ₋₁ − (k − 1)Pₖ₋₂, weights 2/((1 − ξᵢ²)Pₙ′(ξᵢ)²).
    Exact for polynomials of degree up to 2n − 1. Returns (nodes, weights) as tuples of floats."""
    nodes, weights = [0.0] * n, [0.0] * n

    def legendre(xi):
        previous, current = 1.0, xi
        for k in range(2, n + 1):
            previous, current = current, ((2 * k - 1) * xi * current - (k - 1) * previous) / k
        return current, n * (xi * current - previous) / (xi * xi - 1)

    for i in range((n + 1) // 2):
        xi = 0.0 if n == 1 else math.cos(math.pi * (i + 0.75) / (n + 0.5))
        if n > 1:
            for _ in range(100):
                value, derivative = legendre(xi)
                step = value / derivative
                xi -= step
                if abs(step) <= 1e-16:
                    break
        derivative = 1.0 if n == 1 else legendre(xi)[1]
        weight = 2 / ((1 - xi * xi) * derivative * derivative)
        nodes[i], nodes[n - 1 - i] = -xi, xi
        weights[i], weights[n - 1 - i] = weight, weight
    return tuple(nodes), tuple(weights)


class UnconstrainedMonotonicTransform(MonotoneTransform):
    """The unconstrained monotonic transformer of UMNN (Wehenkel & Louppe 2019, "Unconstrained
    Monotonic Neural Networks"), Swift ``UnconstrainedMonotonicTransform``: with H hidden units,

        y = β + ∫₀ˣ g(t) dt,  g(t) = softplus(c + Σₖ vₖ tanh(aₖt + bₖ)) + 10⁻³,  log dy/dx = log g(x),

    raw parameters [a₁…a_H, b₁…b_H, v₁…v_H, c, β]. The integral is the N-point Gauss–Legendre
    rule on [0, x] (:func:`gauss_legendre_rule`, nodes x(1 + ξᵢ)/2, weights ωᵢ/2 times x), the
    same nodes and weights as the Swift code.
    """

    floor = 1e-3

    def __init__(self, hidden_units, nodes):
        self.hidden_units, self.nodes = int(hidden_units), int(nodes)
        if self.hidden_units < 1 or not 1 <= self.nodes <= 256:
            raise MappingError(f"an unconstrained monotonic transform needs at least one hidden unit and 1 to 256 "
                               f"quadrature nodes, got {hidden_units} units, {nodes} nodes")
        self.parameter_count = 3 * self.hidden_units + 2
        rule_nodes, rule_weights = gauss_legendre_rule(self.nodes)
        # The rule on [0, 1], and x itself with weight 0, where log g is read off.
        self._fractions = [(1 + v) / 2 for v in rule_nodes] + [1.0]
        self._weights = [w / 2 for w in rule_weights] + [0.0]

    def identity(self):
        h = self.hidden_units
        offsets = [0.0 if h == 1 else -2 + 4 * i / (h - 1) for i in range(h)]
        return [1.0] * h + offsets + [0.0] * h + [math.log(math.expm1(1 - self.floor)), 0.0]

    def forward(self, x, raw):
        h = self.hidden_units
        raw = raw.expand(x.shape + (self.parameter_count,))
        fractions = torch.tensor(self._fractions, dtype=x.dtype, device=x.device)
        weights = torch.tensor(self._weights, dtype=x.dtype, device=x.device)
        points = (x.unsqueeze(-1) * fractions).unsqueeze(-1)                        # [..., N + 1, 1]
        slopes, offsets = raw[..., :h].unsqueeze(-2), raw[..., h:2 * h].unsqueeze(-2)
        outputs = raw[..., 2 * h:3 * h].unsqueeze(-2)
        hidden = torch.tanh(slopes * points + offsets)                              # [..., N + 1, H]
        g = softplus((hidden * outputs).sum(-1) + raw[..., 3 * h:3 * h + 1]) + self.floor
        y = (g * weights).sum(-1) * x + raw[..., 3 * h + 1]
        return y, torch.log(g[..., -1])


# ---------------------------------------------------------------------------------------------
# Sum-of-squares polynomial (Jaini, Selby & Yu 2019)


class SumOfSquaresPolynomialTransform(MonotoneTransform):
    """The sum-of-squares polynomial transformer (Jaini, Selby & Yu 2019, "Sum-of-Squares
    Polynomial Flow"), Swift ``SumOfSquaresPolynomialTransform``: K polynomials of degree L,

        S(t) = (1/K) Σₖ pₖ(t)²,  pₖ(t) = 1 + Σₗ aₖₗ tˡ,  P(t) = ∫₀ᵗ S = (1/K) Σₗ,ₘ Gₗₘ tˡ⁺ᵐ⁺¹/(l + m + 1),

    raw parameters [a₁₀…a₁_L, …, a_K0…a_KL, c], qₖ the coefficients of pₖ, Gₗₘ = Σₖ qₖₗqₖₘ,
    ε = 10⁻³. With a bound B the polynomials act on t̄ = x̄/B, x̄ the input clamped to [−B, B], and
    the map continues linearly outside:

        y = c + εx + (1 − ε)(B·P(t̄) + (x − x̄)·S(t̄)),  log dy/dx = log(ε + (1 − ε) S(t̄));

    without one (``bound`` None, a file without the key) y = c + εx + (1 − ε) P(x).
    """

    floor = 1e-3

    def __init__(self, polynomials, degree, bound=None):
        self.polynomials, self.degree = int(polynomials), int(degree)
        if self.polynomials < 1 or not 0 <= self.degree <= 16:
            raise MappingError(f"a sum-of-squares polynomial transform needs at least one polynomial and a degree from 0 "
                               f"to 16, got {polynomials} polynomials of degree {degree}")
        if bound is not None and not (math.isfinite(float(bound)) and float(bound) > 0):
            raise MappingError(f"a sum-of-squares polynomial transform needs a positive finite bound, got {bound}")
        self.bound = None if bound is None else float(bound)
        self.parameter_count = self.polynomials * (self.degree + 1) + 1

    def identity(self):
        return [0.0] * self.parameter_count

    def forward(self, x, raw):
        k, terms = self.polynomials, self.degree + 1
        raw = raw.expand(x.shape + (self.parameter_count,))
        one = torch.zeros(terms, dtype=x.dtype, device=x.device)
        one[0] = 1
        q = raw[..., :k * terms].unflatten(-1, (k, terms)) + one                      # [..., K, L + 1]
        clamped = x if self.bound is None else x.clamp(-self.bound, self.bound)      # x̄
        t = clamped if self.bound is None else clamped / self.bound                  # t̄
        powers = [torch.ones_like(t)]
        for _ in range(2 * terms):
            powers.append(powers[-1] * t)
        power = torch.stack(powers, dim=-1)                                          # [..., 2L + 2]
        p = (q * power[..., :terms].unsqueeze(-2)).sum(-1)                           # [..., K]
        squares = (p * p).sum(-1) / k                                                # S(t̄)
        pairs = [l + m for l in range(terms) for m in range(terms)]
        divisors = torch.tensor([1 / (s + 1) for s in pairs], dtype=x.dtype, device=x.device).reshape(terms, terms)
        moments = power[..., [s + 1 for s in pairs]].unflatten(-1, (terms, terms)) * divisors
        gram = (q.unsqueeze(-1) * q.unsqueeze(-2)).sum(-3)                           # [..., L + 1, L + 1]
        antiderivative = (gram * moments).sum((-2, -1)) / k                          # P(t̄)
        if self.bound is not None:
            antiderivative = antiderivative * self.bound + (x - clamped) * squares
        y = antiderivative * (1 - self.floor) + x * self.floor + raw[..., k * terms]
        return y, torch.log(squares * (1 - self.floor) + self.floor)


# ---------------------------------------------------------------------------------------------
# Bernstein polynomial (Ramasinghe et al. 2021)


def bernstein_basis(u, n):
    """bₖ,ₙ(u) = C(n, k) uᵏ(1 − u)ⁿ⁻ᵏ for k = 0…n, stacked in the last axis (u of any shape)."""
    v = 1 - u
    up, down = [torch.ones_like(u)], [torch.ones_like(u)]
    for _ in range(n):
        up.append(up[-1] * u)
        down.append(down[-1] * v)
    binomial, terms = 1.0, []
    for k in range(n + 1):
        terms.append(up[k] * down[n - k] * binomial)
        binomial = binomial * (n - k) / (k + 1)
    return torch.stack(terms, dim=-1)


class BernsteinPolynomialTransform(MonotoneTransform):
    """A monotonic Bernstein polynomial (Ramasinghe, Fernando, Khan & Barnes 2021, "Robust
    normalizing flows using Bernstein-type polynomials"), Swift ``BernsteinPolynomialTransform``:
    of degree M on [−B, B], u = (x̄ + B)/(2B) with x̄ = clamp(x, −B, B),

        y = Σₖ βₖ bₖ,ₘ(ū) + (x − x̄)·y′(ū),  y′(ū) = (M/(2B)) Σₖ (βₖ₊₁ − βₖ) bₖ,ₘ₋₁(ū),  log dy/dx = log y′(ū),

    β₀ = raw₀, βₖ = βₖ₋₁ + softplus(max(rawₖ, −30)): M + 1 raw parameters. Linear outside
    [−B, B] with the slope at the nearer end.
    """

    def __init__(self, degree, bound):
        self.degree, self.bound = int(degree), float(bound)
        if not 1 <= self.degree <= 64 or not 0 < self.bound < math.inf:
            raise MappingError(f"a Bernstein polynomial needs a degree from 1 to 64 and a positive finite bound, got "
                               f"degree {degree}, bound {bound}")
        self.parameter_count = self.degree + 1

    def identity(self):
        return [-self.bound] + [math.log(math.expm1(2 * self.bound / self.degree))] * self.degree

    def forward(self, x, raw):
        m, bound = self.degree, self.bound
        raw = raw.expand(x.shape + (m + 1,))
        steps = softplus(raw[..., 1:].clamp(min=-30))                                 # βₖ₊₁ − βₖ
        coefficients = torch.cat([raw[..., :1], raw[..., :1] + torch.cumsum(steps, dim=-1)], dim=-1)
        clamped = x.clamp(-bound, bound)
        u = (clamped + bound) / (2 * bound)
        slope = (steps * bernstein_basis(u, m - 1)).sum(-1) * (m / (2 * bound))
        y = (coefficients * bernstein_basis(u, m)).sum(-1) + (x - clamped) * slope
        return y, torch.log(slope)
