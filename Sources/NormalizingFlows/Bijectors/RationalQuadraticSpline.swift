import Foundation

/// The monotonic rational-quadratic spline of Neural Spline Flows (Durkan, Bekasov, Murray &
/// Papamakarios 2019, eq. 4–6), on [−B, B] with K bins and identity ("linear") tails outside.
///
/// Per element there are 3K − 1 raw parameters: K width logits, K height logits and K − 1
/// interior knot derivatives. Widths and heights are softmax(·)·(1 − K·m) + m with a minimum
/// bin size m; derivatives are m_d + softplus(·), and 1 at ±B so the tails join smoothly.
/// In bin k with ξ = (x − x_k)/w_k, s_k = h_k/w_k:
///
///   y = y_k + h_k (s_k ξ² + d_k ξ(1−ξ)) / (s_k + (d_{k+1} + d_k − 2s_k) ξ(1−ξ)),
///   dy/dx = s_k² (d_{k+1}ξ² + 2s_k ξ(1−ξ) + d_k(1−ξ)²) / (s_k + (d_{k+1} + d_k − 2s_k) ξ(1−ξ))².
///
/// The inverse solves the quadratic for ξ with the cancellation-free root 2c / (−b − √(b² − 4ac)).
/// Inputs are clipped to [−B, B] before the spline is evaluated and the tails are selected
/// afterwards, so inputs at or far beyond ±B give finite values and gradients.
public struct RationalQuadraticSplineTransform: ElementwiseTransform, Codable {
    public var bins: Int
    public var bound: Double
    public var minimumBinWidth: Double
    public var minimumBinHeight: Double
    public var minimumDerivative: Double

    public init(bins: Int = 8, bound: Double = 3, minimumBinWidth: Double = 1e-3,
                minimumBinHeight: Double = 1e-3, minimumDerivative: Double = 1e-3) {
        self.bins = bins
        self.bound = bound
        self.minimumBinWidth = minimumBinWidth
        self.minimumBinHeight = minimumBinHeight
        self.minimumDerivative = minimumDerivative
    }

    public var parameterCount: Int { 3 * bins - 1 }

    /// Equal bins and unit derivatives: the identity map.
    public var identityParameters: [Double] {
        [Double](repeating: 0, count: 2 * bins)
            + [Double](repeating: Foundation.log(Foundation.expm1(1 - minimumDerivative)), count: bins - 1)
    }

    public func validate() throws {
        // One bin with unit end derivatives is the identity, whatever its parameters.
        guard bins >= 2, bound > 0, bound.isFinite else {
            throw FlowError.invalidConfiguration("spline needs at least two bins and a positive finite bound, got \(bins) bins, bound \(bound)")
        }
        guard minimumBinWidth > 0, minimumBinHeight > 0, minimumBinWidth * Double(bins) < 1, minimumBinHeight * Double(bins) < 1,
              minimumDerivative > 0, minimumDerivative < 1 else {
            throw FlowError.invalidConfiguration("spline minimum bin sizes must be positive with K·minimum < 1, and 0 < minimum derivative < 1")
        }
    }

    /// Knot positions [..., K+1] on [−B, B] and bin sizes [..., K] from logits [..., K].
    private func knots(_ logits: Tensor, minimum: Double) -> (positions: Tensor, sizes: Tensor) {
        let k = logits.shape[logits.rank - 1]
        let fractions = logits.softmax(alongAxis: -1) * (1 - minimum * Double(k)) + minimum
        let cumulative = fractions.cumulativeSum(alongAxis: -1)
        var ends = logits.shape
        ends[ends.count - 1] = 1
        let interior = [cumulative.slice(alongAxis: -1, 0..<(k - 1))]
        let unit = Tensor.concatenate([Tensor.zeros(ends, dtype: logits.dtype)] + interior + [Tensor.ones(ends, dtype: logits.dtype)], alongAxis: -1)
        let positions = unit * (2 * bound) - bound
        let sizes = positions.slice(alongAxis: -1, 1..<(k + 1)) - positions.slice(alongAxis: -1, 0..<k)
        return (positions, sizes)
    }

    /// The spline's pieces for each element, selected in the bin that holds `value` (on the x or y knots).
    private struct Bin {
        var x, width, y, height, d0, d1: Tensor
        var slope: Tensor { height / width }
    }

    private func bin(_ parameters: Tensor, shape: [Int], locating value: Tensor, onOutputKnots: Bool) -> Bin {
        let k = bins
        let p = parameters.broadcast(to: shape + [parameterCount])
        let (xKnots, widths) = knots(p.slice(alongAxis: -1, 0..<k), minimum: minimumBinWidth)
        let (yKnots, heights) = knots(p.slice(alongAxis: -1, k..<(2 * k)), minimum: minimumBinHeight)
        var ends = shape
        ends.append(1)
        let ones = Tensor.ones(ends, dtype: parameters.dtype)
        let interior = [p.slice(alongAxis: -1, (2 * k)..<(3 * k - 1)).softplus() + minimumDerivative]
        let derivatives = Tensor.concatenate([ones] + interior + [ones], alongAxis: -1)

        let located = searchSorted(onOutputKnots ? yKnots : xKnots, value.unsqueezed(axis: -1), right: true)
        let lower = IndexTensor(shape: located.shape, indices: located.indices.map { Swift.min(Swift.max($0 - 1, 0), k - 1) })
        let upper = IndexTensor(shape: lower.shape, indices: lower.indices.map { $0 + 1 })
        func pick(_ t: Tensor, _ i: IndexTensor) -> Tensor { t.gathering(alongAxis: -1, indices: i).squeezed(axis: -1) }
        return Bin(x: pick(xKnots, lower), width: pick(widths, lower), y: pick(yKnots, lower),
                   height: pick(heights, lower), d0: pick(derivatives, lower), d1: pick(derivatives, upper))
    }

    /// log dy/dx at ξ in bin `b`.
    private func logDerivative(_ b: Bin, _ xi: Tensor) -> Tensor {
        let s = b.slope
        let xi1 = xi * (1 - xi)
        let denominator = s + (b.d1 + b.d0 - 2 * s) * xi1
        let numerator = b.d1 * xi.square() + 2 * s * xi1 + b.d0 * (1 - xi).square()
        return 2 * s.log() + numerator.log() - 2 * denominator.log()
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let inside = x.isGreaterOrEqual(to: -bound) * x.isLessOrEqual(to: bound)
        let clipped = x.clamped(min: -bound, max: bound)
        let b = bin(parameters, shape: x.shape, locating: clipped.detached(), onOutputKnots: false)
        let xi = ((clipped - b.x) / b.width).clamped(min: 0, max: 1)
        let s = b.slope
        let xi1 = xi * (1 - xi)
        let y = b.y + b.height * (s * xi.square() + b.d0 * xi1) / (s + (b.d1 + b.d0 - 2 * s) * xi1)
        return (`where`(inside, y, x), `where`(inside, logDerivative(b, xi), Tensor.zeros(x.shape, dtype: x.dtype)))
    }

    public func inverse(_ y: Tensor, parameters: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let inside = y.isGreaterOrEqual(to: -bound) * y.isLessOrEqual(to: bound)
        let clipped = y.clamped(min: -bound, max: bound)
        let b = bin(parameters, shape: y.shape, locating: clipped.detached(), onOutputKnots: true)
        let s = b.slope
        let offset = clipped - b.y
        let curvature = b.d1 + b.d0 - 2 * s
        let qa = b.height * (s - b.d0) + offset * curvature
        let qb = b.height * b.d0 - offset * curvature
        let qc = s.negated() * offset
        let discriminant = (qb.square() - 4 * qa * qc).clamped(min: 0)
        let xi = ((2 * qc) / (qb.negated() - discriminant.sqrt())).clamped(min: 0, max: 1)
        let x = xi * b.width + b.x
        return (`where`(inside, x, y), `where`(inside, logDerivative(b, xi).negated(), Tensor.zeros(y.shape, dtype: y.dtype)))
    }
}

/// An elementwise rational-quadratic spline with its own free parameters per element
/// (FlowTorch's `Spline` with the quadratic order; Durkan et al. 2019).
public struct Spline: BijectorPlan {
    public var transform: RationalQuadraticSplineTransform

    public init(bins: Int = 8, bound: Double = 3) {
        transform = RationalQuadraticSplineTransform(bins: bins, bound: bound)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// An autoregressive rational-quadratic spline (the NSF-AR layer; Durkan et al. 2019):
/// each dimension's spline parameters come from a MADE network fed the dimensions before it.
/// `forward` takes one network pass, `inverse` D passes; ``Invert`` swaps them.
public struct SplineAutoregressive: BijectorPlan {
    public var transform: RationalQuadraticSplineTransform
    public var conditioner: DenseAutoregressive

    public init(bins: Int = 8, bound: Double = 3, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = RationalQuadraticSplineTransform(bins: bins, bound: bound)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try transform.validate()
        if spec.eventSize == 1 && spec.contextSize == 0 {
            return try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
        }
        let network = try conditioner.makeNetwork(
            inputSize: spec.eventSize, contextSize: spec.contextSize, outputsPerDimension: transform.parameterCount,
            outputBias: transform.identityParameters, dtype: spec.dtype, generator: &generator)
        return AutoregressiveBijector(transform: transform, network: network, spec: spec)
    }
}

extension Spline: SerializablePlan {
    public static var typeName: String { "Spline" }
}

extension SplineAutoregressive: SerializablePlan {
    public static var typeName: String { "SplineAutoregressive" }
}
