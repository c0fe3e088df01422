import Foundation

/// The monotonic rational-quadratic spline of Neural Spline Flows (Durkan, Bekasov, Murray &
/// Papamakarios 2019, eq. 4–6), on [−B, B] with K bins and identity ("linear") tails outside.
///
/// Per element there are 3K − 1 raw parameters: K width logits, K height logits and K − 1
/// interior knot derivatives. How they become bins and derivatives is the ``parameterization``:
/// by default (``Parameterization/minimumSizes``) widths and heights are softmax(c·)·(1 − K·m) + m
/// with a minimum bin size m and a logit scale c (``logitScale``) and derivatives are
/// m_d + softplus(·); zuko's parameterization (``Parameterization/softClipped(slope:)``) is also
/// available. The derivatives are 1 at ±B so the tails join smoothly.
/// In bin k with ξ = (x − xₖ)/wₖ, sₖ = hₖ/wₖ:
///
///     y = yₖ + hₖ (sₖ ξ² + dₖ ξ(1−ξ)) / (sₖ + (dₖ₊₁ + dₖ − 2sₖ) ξ(1−ξ)),
///     dy/dx = sₖ² (dₖ₊₁ξ² + 2sₖ ξ(1−ξ) + dₖ(1−ξ)²) / (sₖ + (dₖ₊₁ + dₖ − 2sₖ) ξ(1−ξ))².
///
/// The inverse solves the quadratic for ξ with the cancellation-free root 2c / (−b − √(b² − 4ac)).
/// Everything from the raw parameters to the output (knots, bin search, rational function,
/// tails) is one fused kernel with a hand-written backward pass (`RationalQuadraticSplineKernel`).
/// Inputs outside [−B, B], however far, take the identity tails, and ξ is kept in [0, 1], so
/// values and gradients stay finite at and beyond the bounds.
///
/// With ``Boundary/circular`` it is instead the circular spline of Rezende et al. (2020,
/// "Normalizing Flows on Tori and Spheres", ICML, section 3.2): a map of the circle [−π, π),
/// with no tails (see ``Boundary``).
public struct RationalQuadraticSplineTransform: ParametricElementwiseTransform, Codable {
    /// How the 3K − 1 raw parameters of an element become its bin widths, heights and interior
    /// knot derivatives. The knots are −B + 2B·(running sums of the widths or heights) either way.
    public enum Parameterization: Sendable, Equatable, Codable {
        /// Widths and heights softmax(c·s)·(1 − K·m) + m with minimum sizes m (``minimumBinWidth``,
        /// ``minimumBinHeight``) and logit scale c (``logitScale``); interior derivatives
        /// m_d + softplus(s) (``minimumDerivative``). The parameterization of Durkan et al.'s (2019)
        /// reference code and of nflows; the default.
        case minimumSizes
        /// zuko's `MonotonicRQSTransform` (zuko 1.x, <https://github.com/probabilists/zuko>), whose
        /// `NSF` uses slope 10⁻³: width and height logits are soft-clipped to s/(1 + |s|/b) with
        /// b = −log(slope)/2 and then softmaxed with no minimum size; derivative raws are clipped
        /// with b = −log slope and the interior derivatives are their exponentials, which lie in
        /// (slope, 1/slope). ``minimumBinWidth``, ``minimumBinHeight``, ``minimumDerivative`` and
        /// ``logitScale`` do not apply.
        case softClipped(slope: Double)
    }

    /// What the spline does at and beyond ±B.
    public enum Boundary: String, Sendable, Equatable, Codable {
        /// Derivatives 1 at ±B and the identity outside [−B, B] (Durkan et al. 2019): a bijection of ℝ.
        case linearTails
        /// A diffeomorphism of the circle [−π, π) (B = π; Rezende et al. 2020, section 3.2):
        /// f(−π) = −π and f(π) = π as always, and the derivatives at the two ends are one learned
        /// value d_0 = d_K, so that f is smooth where −π and π meet. It takes 3K raw parameters per
        /// element: the K − 1 interior derivatives are followed by the end derivative, mapped like
        /// them (m_d + softplus, or exp(clip(s)) for ``Parameterization/softClipped(slope:)``).
        /// Inputs are angles: any real x is read as x − 2π⌊(x + π)/2π⌋ in [−π, π), and outputs
        /// are given in [−π, π) (π, which f reaches only from π, becomes −π), in both directions.
        /// ``ParametricElementwiseTransform/domain`` is ``Domain/circle``, so flows refuse data
        /// outside [−π, π) with an error before they reach the spline.
        case circular
    }

    /// K, the number of bins on [−B, B] (default 8).
    public var bins: Int
    /// B, the half-width of the spline's interval (default 3): outside [−B, B] the map is the
    /// identity (linear tails); π for a circular spline.
    public var bound: Double
    /// Linear tails (the default; files written before it existed read so) or a circle map.
    public var boundary: Boundary
    /// The map from raw parameters to bins and derivatives; model files written before it
    /// existed read as ``Parameterization/minimumSizes``.
    public var parameterization: Parameterization
    /// m, the smallest bin width as a fraction of 2B (default 10⁻³; ``Parameterization/minimumSizes`` only).
    public var minimumBinWidth: Double
    /// The smallest bin height as a fraction of 2B (default 10⁻³; ``Parameterization/minimumSizes`` only).
    public var minimumBinHeight: Double
    /// m_d, the smallest interior knot derivative (default 10⁻³; ``Parameterization/minimumSizes`` only).
    public var minimumDerivative: Double
    /// The factor c on the width and height logits before their softmaxes.
    ///
    /// Splines whose parameters come from a network use c = 1/√(width of its last hidden layer),
    /// as in the reference implementation of Durkan et al. (2019): the bins start near-uniform
    /// and their logits move more slowly than the derivatives. On the nsf-digits benchmark this
    /// takes the test NLL from about 107 to about 64 nats per image.
    public var logitScale: Double

    /// A spline of `bins` bins on [−bound, bound].
    ///
    /// - Parameters:
    ///   - bins: K ≥ 2 (default 8).
    ///   - bound: B > 0 (default 3; π for a circular spline).
    ///   - minimumBinWidth: m (default 10⁻³).
    ///   - minimumBinHeight: the smallest bin height (default 10⁻³).
    ///   - minimumDerivative: m_d (default 10⁻³).
    ///   - logitScale: c (default 1; the autoregressive and coupling plans set 1/√(last hidden width)).
    ///   - parameterization: how raw parameters become bins (default ``Parameterization/minimumSizes``).
    ///   - boundary: linear tails (default) or a circle map.
    public init(bins: Int = 8, bound: Double = 3, minimumBinWidth: Double = 1e-3,
                minimumBinHeight: Double = 1e-3, minimumDerivative: Double = 1e-3, logitScale: Double = 1,
                parameterization: Parameterization = .minimumSizes, boundary: Boundary = .linearTails) {
        self.bins = bins
        self.bound = bound
        self.boundary = boundary
        self.parameterization = parameterization
        self.minimumBinWidth = minimumBinWidth
        self.minimumBinHeight = minimumBinHeight
        self.minimumDerivative = minimumDerivative
        self.logitScale = logitScale
    }

    /// The logit scale for parameters produced by a network with these hidden layer sizes.
    static func networkLogitScale(hiddenSizes: [Int]) -> Double {
        1 / Double(Swift.max(hiddenSizes.last ?? 1, 1)).squareRoot()
    }

    private enum CodingKeys: String, CodingKey {
        case bins, bound, minimumBinWidth, minimumBinHeight, minimumDerivative, logitScale, parameterization, boundary
    }

    /// Model files written before ``logitScale`` existed used c = 1, and those written before
    /// ``parameterization`` existed use ``Parameterization/minimumSizes``; without ``boundary``, the
    /// spline has linear tails.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        bins = try container.decode(Int.self, forKey: .bins)
        bound = try container.decode(Double.self, forKey: .bound)
        minimumBinWidth = try container.decode(Double.self, forKey: .minimumBinWidth)
        minimumBinHeight = try container.decode(Double.self, forKey: .minimumBinHeight)
        minimumDerivative = try container.decode(Double.self, forKey: .minimumDerivative)
        logitScale = try container.decodeIfPresent(Double.self, forKey: .logitScale) ?? 1
        parameterization = try container.decodeIfPresent(Parameterization.self, forKey: .parameterization) ?? .minimumSizes
        boundary = try container.decodeIfPresent(Boundary.self, forKey: .boundary) ?? .linearTails
    }

    /// 3K − 1, and one more (the shared end derivative) for a circular spline.
    public var parameterCount: Int { 3 * bins - 1 + (boundary == .circular ? 1 : 0) }

    /// ℝ, or the circle [−π, π) for a circular spline.
    public var domain: Domain { boundary == .circular ? .circle : .real }

    /// Equal bins and unit derivatives: the identity map.
    public var identityParameters: [Double] {
        let derivative = switch parameterization {
        case .minimumSizes: Foundation.log(Foundation.expm1(1 - minimumDerivative))
        case .softClipped: 0.0
        }
        return [Double](repeating: 0, count: 2 * bins) + [Double](repeating: derivative, count: parameterCount - 2 * bins)
    }

    public func validate() throws {
        // One bin with unit end derivatives is the identity, whatever its parameters.
        guard bins >= 2, bound > 0, bound.isFinite else {
            throw FlowError.invalidConfiguration("spline needs at least two bins and a positive finite bound, got \(bins) bins, bound \(bound)")
        }
        guard boundary == .linearTails || bound == .pi else {
            throw FlowError.invalidConfiguration("a circular spline maps angles in [−π, π): its bound must be π, got \(bound)")
        }
        if case .softClipped(let slope) = parameterization {
            guard slope > 0, slope < 1 else {
                throw FlowError.invalidConfiguration("soft-clipped spline slope must lie in (0, 1), got \(slope)")
            }
            return
        }
        guard minimumBinWidth > 0, minimumBinHeight > 0, minimumBinWidth * Double(bins) < 1, minimumBinHeight * Double(bins) < 1,
              minimumDerivative > 0, minimumDerivative < 1 else {
            throw FlowError.invalidConfiguration("spline minimum bin sizes must be positive with K·minimum < 1, and 0 < minimum derivative < 1")
        }
        guard logitScale > 0, logitScale.isFinite else {
            throw FlowError.invalidConfiguration("spline logit scale must be positive and finite, got \(logitScale)")
        }
    }

    /// Raw parameters [N, P] for the N elements of a tensor of `shape` (they broadcast to `shape + [P]`).
    private func flatParameters(_ parameters: Tensor, shape: [Int]) -> Tensor {
        parameters.broadcast(to: shape + [parameterCount]).reshaped(to: [shape.reduce(1, *), parameterCount])
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let (y, logDerivative) = RationalQuadraticSplineKernel.evaluate(
            x.flattened(), parameters: flatParameters(parameters, shape: x.shape), spline: self, inverse: false)
        return (y.reshaped(to: x.shape), logDerivative.reshaped(to: x.shape))
    }

    public func inverse(_ y: Tensor, parameters: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let (x, logDerivative) = RationalQuadraticSplineKernel.evaluate(
            y.flattened(), parameters: flatParameters(parameters, shape: y.shape), spline: self, inverse: true)
        return (x.reshaped(to: y.shape), logDerivative.reshaped(to: y.shape))
    }
}

/// An elementwise rational-quadratic spline with its own free parameters per element
/// (FlowTorch's `Spline` with the quadratic order; Durkan et al. 2019); with a
/// ``RationalQuadraticSplineTransform/Boundary/circular`` boundary and bound π, a learned
/// circular spline of each angle (Rezende et al. 2020).
public struct Spline: BijectorPlan {
    /// The spline of every element (bins, bound, parameterization, boundary).
    public var transform: RationalQuadraticSplineTransform

    /// An elementwise spline, initialised at the identity (plus N(0, 10⁻⁶) noise).
    ///
    /// - Parameters:
    ///   - bins: K ≥ 2 (default 8).
    ///   - bound: B > 0 (default 3; π with a circular boundary).
    ///   - parameterization: how raw parameters become bins (default ``RationalQuadraticSplineTransform/Parameterization/minimumSizes``).
    ///   - boundary: linear tails (default) or a circle map.
    public init(bins: Int = 8, bound: Double = 3, parameterization: RationalQuadraticSplineTransform.Parameterization = .minimumSizes,
                boundary: RationalQuadraticSplineTransform.Boundary = .linearTails) {
        transform = RationalQuadraticSplineTransform(bins: bins, bound: bound, parameterization: parameterization, boundary: boundary)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// An autoregressive rational-quadratic spline (the NSF-AR layer; Durkan et al. 2019):
/// each dimension's spline parameters come from a MADE network fed the dimensions before it.
/// `forward` takes one network pass, `inverse` D sequential steps; ``Invert`` swaps them.
/// With a ``RationalQuadraticSplineTransform/Boundary/circular`` boundary (bound π) it is the
/// autoregressive circular spline of ``NCSF``; the network is fed the angles themselves, as zuko's.
public struct SplineAutoregressive: BijectorPlan {
    /// The spline of every dimension.
    public var transform: RationalQuadraticSplineTransform
    /// The MADE network that gives each dimension's spline parameters (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// An autoregressive spline layer. The spline's logit scale is 1/√(the conditioner's last
    /// hidden width) (see ``RationalQuadraticSplineTransform/logitScale``).
    ///
    /// - Parameters:
    ///   - bins: K ≥ 2 (default 8).
    ///   - bound: B > 0 (default 3).
    ///   - conditioner: the MADE network (default `DenseAutoregressive()`).
    ///   - parameterization: how raw parameters become bins (default ``RationalQuadraticSplineTransform/Parameterization/minimumSizes``).
    ///   - boundary: linear tails (default) or a circle map.
    public init(bins: Int = 8, bound: Double = 3, conditioner: DenseAutoregressive = DenseAutoregressive(),
                parameterization: RationalQuadraticSplineTransform.Parameterization = .minimumSizes,
                boundary: RationalQuadraticSplineTransform.Boundary = .linearTails) {
        transform = RationalQuadraticSplineTransform(
            bins: bins, bound: bound, logitScale: RationalQuadraticSplineTransform.networkLogitScale(hiddenSizes: conditioner.hiddenSizes),
            parameterization: parameterization, boundary: boundary)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}

extension Spline: SerializablePlan {}

extension SplineAutoregressive: SerializablePlan {}
