import Foundation

/// The monotonic linear-rational spline of Dolatabadi, Erfani & Leckie (2020, "Invertible
/// Generative Modeling using Linear Rational Splines", AISTATS, §3 and Algorithm 1), on [−B, B]
/// with K bins and identity ("linear") tails outside: FlowTorch's and Pyro's default spline
/// (`Spline`, `SplineAutoregressive`, `SplineCoupling` with `order='linear'`).
///
/// Per element there are 4K − 1 raw parameters, in this order: K width logits, K height logits,
/// K − 1 interior knot derivatives and K λ raws. Widths and heights are softmax(c·)·(1 − K·m) + m
/// with a minimum bin size m and a logit scale c (``logitScale``), the knots are −B + 2B·(their
/// running sums), the interior derivatives are m_d + softplus(·) and the ends' derivatives are 1,
/// so the tails join smoothly; λₖ = m_λ + (1 − 2m_λ)·sigmoid(·) ∈ [m_λ, 1 − m_λ] places each
/// bin's intermediate point x_c = xₖ + λₖ wₖ.
///
/// Each bin [xₖ, xₖ₊₁] (width w, height h, slope s = h/w, end derivatives dₖ, dₖ₊₁) is
/// two linear-rational pieces, y = (w_a y_a (λ − φ) + w_c y_c φ)/(w_a (λ − φ) + w_c φ) for
/// φ = (x − xₖ)/w ≤ λ and y = (w_c y_c (1 − φ) + w_b y_b (φ − λ))/(w_c (1 − φ) + w_b (φ − λ))
/// above (the paper's eq. 8, with y_a = yₖ, y_b = yₖ₊₁), whose weights make y continuous and
/// its derivative dₖ at xₖ, dₖ₊₁ at xₖ₊₁ and continuous at x_c (eq. 9–10):
/// w_b/w_a = √(dₖ/dₖ₊₁), w_c = (λ w_a dₖ + (1 − λ) w_b dₖ₊₁)/s and
/// y_c = ((1 − λ) w_a y_a + λ w_b y_b)/((1 − λ) w_a + λ w_b). The kernel takes w_a = √dₖ₊₁,
/// w_b = √dₖ (the same spline: only the weights' ratios matter) and evaluates the pieces in the
/// equivalent form anchored at the nearer end e (xₖ below x_c, xₖ₊₁ above):
///
///     y = yₑ + dₑ (x − xₑ)/E,   log dy/dx = log dₑ − 2 log E,
///     E = (1 − τ) + cₑ τ,   τ = |x − xₑ|/(fₑ w),   cₑ = √dₑ ((1 − λ)√dₖ₊₁ + λ√dₖ)/s,
///
/// with fₑ = λ below x_c and 1 − λ above. The inverse is linear-rational too: with
/// r = |y − yₑ|/|y_c − yₑ| it is τ = r/G, G = cₑ (1 − r) + r, x = xₑ ± τ fₑ w, and
/// log dx/dy = 2 log(cₑ/G) − log dₑ; every sum in it adds terms of one sign, so nothing cancels.
/// Everything from the raw parameters to the output is one fused kernel with a hand-written
/// backward pass (`LinearRationalSplineKernel`). Inputs outside [−B, B], however far, take the
/// identity tails, so values and gradients stay finite at and beyond the bounds.
///
/// Unlike Pyro, whose end derivatives are 1 − m_d, this spline's are 1, as in
/// ``RationalQuadraticSplineTransform``; otherwise, at ``logitScale`` 1, it computes Pyro's
/// `_monotonic_rational_spline` with `order='linear'` and the same minimums (Pyro's bin search
/// also moves each knot up by 10⁻⁶).
public struct LinearRationalSplineTransform: ParametricElementwiseTransform, Codable, Equatable {
    /// K ≥ 2, the number of bins on [−B, B] (default 8).
    public var bins: Int
    /// B > 0: the spline maps [−B, B] onto itself and is the identity outside it (default 3).
    public var bound: Double
    /// The smallest bin width as a fraction of 2B, with K·m < 1 (default 10⁻³).
    public var minimumBinWidth: Double
    /// The smallest bin height as a fraction of 2B, with K·m < 1 (default 10⁻³).
    public var minimumBinHeight: Double
    /// m_d, the smallest interior knot derivative, in (0, 1) (default 10⁻³).
    public var minimumDerivative: Double
    /// m_λ: each intermediate point lies at least this fraction of its bin's width from both ends.
    public var minimumLambda: Double
    /// The factor c on the width and height logits before their softmaxes, as
    /// ``RationalQuadraticSplineTransform/logitScale``: splines fed by a network use
    /// 1/√(width of its last hidden layer).
    public var logitScale: Double

    /// A linear-rational spline transform; every default below is Pyro's.
    ///
    /// - Parameters:
    ///   - bins: K, the number of bins on [−B, B]; at least 2.
    ///   - bound: B, the half-width of the interval outside which the map is the identity.
    ///   - minimumBinWidth: m, the smallest width of a bin as a fraction of 2B (K·m < 1).
    ///   - minimumBinHeight: the smallest height of a bin as a fraction of 2B (K·m < 1).
    ///   - minimumDerivative: m_d, the smallest interior knot derivative, in (0, 1).
    ///   - minimumLambda: m_λ, the smallest λ and 1 − λ, in (0, 0.5); Pyro's 0.025 by default.
    ///   - logitScale: c, the factor on the width and height logits; positive.
    public init(bins: Int = 8, bound: Double = 3, minimumBinWidth: Double = 1e-3, minimumBinHeight: Double = 1e-3,
                minimumDerivative: Double = 1e-3, minimumLambda: Double = 0.025, logitScale: Double = 1) {
        self.bins = bins
        self.bound = bound
        self.minimumBinWidth = minimumBinWidth
        self.minimumBinHeight = minimumBinHeight
        self.minimumDerivative = minimumDerivative
        self.minimumLambda = minimumLambda
        self.logitScale = logitScale
    }

    /// 4K − 1 raw parameters per element: K width and K height logits, K − 1 interior derivatives, K λ raws.
    public var parameterCount: Int { 4 * bins - 1 }

    /// Equal bins, unit derivatives and λ = 1/2: all three weights are equal, so every piece is
    /// the identity.
    public var identityParameters: [Double] {
        [Double](repeating: 0, count: 2 * bins)
            + [Double](repeating: Foundation.log(Foundation.expm1(1 - minimumDerivative)), count: bins - 1)
            + [Double](repeating: 0, count: bins)
    }

    public func validate() throws {
        guard bins >= 2, bound > 0, bound.isFinite else {
            throw FlowError.invalidConfiguration(
                "linear-rational spline needs at least two bins and a positive finite bound, got \(bins) bins, bound \(bound)")
        }
        guard minimumBinWidth > 0, minimumBinHeight > 0, minimumBinWidth * Double(bins) < 1, minimumBinHeight * Double(bins) < 1,
              minimumDerivative > 0, minimumDerivative < 1 else {
            throw FlowError.invalidConfiguration(
                "linear-rational spline minimum bin sizes must be positive with K·minimum < 1, and 0 < minimum derivative < 1, "
                    + "got widths \(minimumBinWidth), heights \(minimumBinHeight), derivative \(minimumDerivative) for \(bins) bins")
        }
        guard minimumLambda > 0, minimumLambda < 0.5 else {
            throw FlowError.invalidConfiguration("linear-rational spline minimum λ must lie in (0, 0.5), got \(minimumLambda)")
        }
        guard logitScale > 0, logitScale.isFinite else {
            throw FlowError.invalidConfiguration("linear-rational spline logit scale must be positive and finite, got \(logitScale)")
        }
    }

    /// Raw parameters [N, P] for the N elements of a tensor of `shape` (they broadcast to `shape + [P]`).
    private func flatParameters(_ parameters: Tensor, shape: [Int]) -> Tensor {
        parameters.broadcast(to: shape + [parameterCount]).reshaped(to: [shape.reduce(1, *), parameterCount])
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let (y, logDerivative) = LinearRationalSplineKernel.evaluate(
            x.flattened(), parameters: flatParameters(parameters, shape: x.shape), spline: self, inverse: false)
        return (y.reshaped(to: x.shape), logDerivative.reshaped(to: x.shape))
    }

    public func inverse(_ y: Tensor, parameters: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let (x, logDerivative) = LinearRationalSplineKernel.evaluate(
            y.flattened(), parameters: flatParameters(parameters, shape: y.shape), spline: self, inverse: true)
        return (x.reshaped(to: y.shape), logDerivative.reshaped(to: y.shape))
    }
}

/// An elementwise linear-rational spline with its own free parameters per element (FlowTorch's
/// and Pyro's `Spline` with their default, linear order; Dolatabadi et al. 2020). ``Spline`` is the
/// rational-quadratic one.
public struct LinearRationalSpline: SerializablePlan {
    /// The spline's settings, shared by every element; each element has its own 4K − 1 parameters.
    public var transform: LinearRationalSplineTransform

    /// An elementwise linear-rational spline with free parameters, starting at the identity.
    ///
    /// - Parameters:
    ///   - bins: K, the number of bins on [−B, B].
    ///   - bound: B; outside [−B, B] the map is the identity.
    public init(bins: Int = 8, bound: Double = 3) {
        transform = LinearRationalSplineTransform(bins: bins, bound: bound)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// An autoregressive linear-rational spline (Pyro's `SplineAutoregressive` with `order='linear'`;
/// Dolatabadi et al. 2020): each dimension's 4K − 1 spline parameters come from a MADE network
/// fed the dimensions before it. `forward` takes one network pass, `inverse` D sequential steps;
/// ``Invert`` swaps them. ``SplineAutoregressive`` is the rational-quadratic one.
public struct LinearRationalSplineAutoregressive: SerializablePlan {
    /// The spline's settings (bins, bound, minimums, logit scale).
    public var transform: LinearRationalSplineTransform
    /// The MADE network that outputs each dimension's 4K − 1 spline parameters.
    public var conditioner: DenseAutoregressive

    /// The spline's logit scale is 1/√(the conditioner's last hidden width), as for
    /// ``SplineAutoregressive``.
    /// - Parameters:
    ///   - bins: K, the number of bins on [−B, B].
    ///   - bound: B; outside [−B, B] the map is the identity.
    ///   - conditioner: the MADE network that outputs each dimension's spline parameters.
    public init(bins: Int = 8, bound: Double = 3, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = LinearRationalSplineTransform(
            bins: bins, bound: bound, logitScale: RationalQuadraticSplineTransform.networkLogitScale(hiddenSizes: conditioner.hiddenSizes))
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}

/// A linear-rational spline coupling layer (Pyro's `SplineCoupling` with `order='linear'`;
/// Dolatabadi et al. 2020): the masked elements pass through and, through a dense network,
/// parameterise a linear-rational spline of the others. ``SplineCoupling`` is the
/// rational-quadratic one.
public struct LinearRationalSplineCoupling: SerializablePlan {
    /// Which elements condition the spline of the others and pass through unchanged.
    public var mask: CouplingMask
    /// The spline's settings (bins, bound, minimums, logit scale).
    public var transform: LinearRationalSplineTransform
    /// The network from the kept elements (and any context) to the spline parameters of the others.
    public var conditioner: CouplingNetwork

    /// The spline's logit scale is 1/√(the conditioner's last hidden width), as for ``SplineCoupling``.
    /// - Parameters:
    ///   - mask: which elements condition (and pass through unchanged).
    ///   - bins: K, the number of bins on [−B, B].
    ///   - bound: B; outside [−B, B] the map is the identity.
    ///   - conditioner: the network from the kept elements (and any context) to the spline parameters.
    public init(mask: CouplingMask = .alternating(parity: 0), bins: Int = 8, bound: Double = 5,
                conditioner: CouplingNetwork = CouplingNetwork()) {
        self.mask = mask
        transform = LinearRationalSplineTransform(
            bins: bins, bound: bound, logitScale: RationalQuadraticSplineTransform.networkLogitScale(hiddenSizes: conditioner.hiddenSizes))
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try CouplingBijector(transform: transform, mask: mask, conditioner: conditioner, spec: spec, generator: &generator)
    }
}
