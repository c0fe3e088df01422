import Foundation

/// The unconstrained monotonic transformer of UMNN (Wehenkel & Louppe 2019, "Unconstrained
/// Monotonic Neural Networks", NeurIPS): a map that is monotonic because it is the
/// integral of a positive function,
///
///     y = β + ∫₀ˣ g(t) dt,
///     g(t) = softplus(c + Σₖ vₖ tanh(aₖt + bₖ)) + 10⁻³ > 0,
///
/// so dy/dx = g(x) and log |dy/dx| = log g(x) in closed form. The integrand is a network with
/// one hidden layer of H units whose weights are all raw parameters of the element, 3H + 2 of
/// them laid out [a₁…a_H, b₁…b_H, v₁…v_H, c, β]. In Wehenkel & Louppe (and zuko's `UNAF`) the
/// integrand is one shared network fed t and an embedding h of x_<i; here every weight comes from
/// the conditioner, which holds that construction (the input layer's offsets bₖ are a linear
/// map of h, folded into the conditioner's output layer) and lets the slopes and output weights
/// vary with x_<i too.
///
/// The integral is the N-point Gauss–Legendre rule on [0, x] (``nodes``, 32 by default), so y
/// is a polynomial-exact quadrature of an analytic integrand: the integrand is smooth (tanh
/// inside, softplus outside, where UMNN's ELU + 1 output has a kink in its second derivative
/// that slows the rule's convergence to algebraic), and the rule's error falls geometrically
/// with N. The log-determinant is log g(x), the derivative of the exact integral; the
/// quadrature's y differs from the exact integral by the rule's error, which the tests measure
/// against a fine composite Simpson rule (within 10⁻¹⁰ for |x| ≤ 4 with 32 nodes). The same
/// holds for the inverse's recorded derivatives (``ParametricElementwiseTransform/monotoneInverse(_:parameters:finder:)``
/// takes dx/dy = 1/g(x)): with 16 nodes at |x| ≤ 3.5 they differed from finite differences of
/// the computed inverse by 3·10⁻⁶ (relative), with 32 by less than 10⁻⁶. Raw (a, b, v, c, β) = (1, spread offsets, 0,
/// softplus⁻¹(1 − 10⁻³), 0) is the identity, g ≡ 1, with the hidden units' offsets spread over
/// [−2, 2] so that they start different.
///
/// Cost: forward O(N·H) per element (recorded as composed tensor operations); the inverse has
/// no closed form and is found by ``MonotoneRootFinder``.
public struct UnconstrainedMonotonicTransform: ParametricElementwiseTransform, Codable {
    /// H, the integrand network's hidden units.
    public var hiddenUnits: Int
    /// N, the Gauss–Legendre nodes of the integral.
    public var nodes: Int

    /// The floor under the integrand: g ≥ 10⁻³, so log g stays finite.
    static let integrandFloor = 1e-3

    /// The settings of a UMNN map: H hidden units in the integrand (default 8, 3H + 2 raw
    /// parameters per element) and N Gauss–Legendre nodes (default 32; the rule's error falls
    /// geometrically with N, at N forward evaluations of the integrand per element). Checked by
    /// ``validate()`` when a bijector is made: H ≥ 1 and 1 ≤ N ≤ 256.
    ///
    /// - Parameters:
    ///   - hiddenUnits: H, the integrand network's hidden units.
    ///   - nodes: N, the Gauss–Legendre nodes of the integral.
    public init(hiddenUnits: Int = 8, nodes: Int = 32) {
        self.hiddenUnits = hiddenUnits
        self.nodes = nodes
    }

    public var parameterCount: Int { 3 * hiddenUnits + 2 }

    public var identityParameters: [Double] {
        let h = hiddenUnits
        let offsets = (0..<h).map { h == 1 ? 0 : -2 + 4 * Double($0) / Double(h - 1) }
        let c = Foundation.log(Foundation.expm1(1 - Self.integrandFloor))
        return [Double](repeating: 1, count: h) + offsets + [Double](repeating: 0, count: h) + [c, 0]
    }

    public func validate() throws {
        guard hiddenUnits >= 1, nodes >= 1, nodes <= 256 else {
            throw FlowError.invalidConfiguration(
                "an unconstrained monotonic transform needs at least one hidden unit and 1 to 256 quadrature nodes, got \(hiddenUnits) units, \(nodes) nodes")
        }
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let (h, n, e) = (hiddenUnits, nodes, x.count)
        let raw = parameters.broadcast(to: x.shape + [parameterCount]).reshaped(to: [e, parameterCount])
        let flat = x.reshaped(to: [e, 1])
        // The rule on [0, 1] (nodes (1 + ξ)/2, weights ω/2), and x itself with weight 0, where
        // the log-derivative is read off.
        let rule = gaussLegendreRule(n)
        let fractions = Tensor(rule.nodes.map { (1 + $0) / 2 } + [1], shape: [1, n + 1], dtype: x.dtype)
        let weights = Tensor(rule.weights.map { $0 / 2 } + [0], shape: [1, n + 1], dtype: x.dtype)
        let points = (flat * fractions).unsqueezed(axis: -1)                       // [e, n + 1, 1]
        let slopes = raw.slice(alongAxis: -1, 0..<h).unsqueezed(axis: 1)           // [e, 1, h]
        let offsets = raw.slice(alongAxis: -1, h..<(2 * h)).unsqueezed(axis: 1)
        let outputs = raw.slice(alongAxis: -1, (2 * h)..<(3 * h)).unsqueezed(axis: 1)
        let bias = raw.slice(alongAxis: -1, (3 * h)..<(3 * h + 1))                 // [e, 1]
        let shift = raw.select(alongAxis: -1, index: 3 * h + 1)                    // [e]
        let hidden = (slopes * points + offsets).tanh()                            // [e, n + 1, h]
        let g = ((hidden * outputs).sum(alongAxis: -1) + bias).softplus() + Self.integrandFloor   // [e, n + 1]
        let y = (g * weights).sum(alongAxis: -1) * flat.squeezed(axis: 1) + shift
        let logDerivative = g.select(alongAxis: -1, index: n).log()
        return (y.reshaped(to: x.shape), logDerivative.reshaped(to: x.shape))
    }

    /// The root of `forward` (see ``MonotoneRootFinder``).
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the element whose root was not found.
    public func inverse(_ y: Tensor, parameters: Tensor) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        try monotoneInverse(y, parameters: parameters.broadcast(to: y.shape + [parameterCount]))
    }
}

/// The n-point Gauss–Legendre rule on [−1, 1]: the roots ξᵢ of the Legendre polynomial Pₙ by
/// Newton's method from Tricomi's estimate cos(π(i + ¾)/(n + ½)), Pₙ and Pₙ′ by the three-term
/// recurrence kPₖ = (2k − 1)ξPₖ₋₁ − (k − 1)Pₖ₋₂, and weights 2/((1 − ξᵢ²)Pₙ′(ξᵢ)²). Exact for
/// polynomials of degree up to 2n − 1.
func gaussLegendreRule(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n), weights = [Double](repeating: 0, count: n)
    /// Pₙ(ξ) and Pₙ′(ξ).
    func legendre(_ xi: Double) -> (value: Double, derivative: Double) {
        var (previous, current) = (1.0, xi)
        for k in stride(from: 2, through: n, by: 1) {
            (previous, current) = (current, (Double(2 * k - 1) * xi * current - Double(k - 1) * previous) / Double(k))
        }
        return (current, Double(n) * (xi * current - previous) / (xi * xi - 1))
    }
    for i in 0..<((n + 1) / 2) {
        var xi = n == 1 ? 0 : Foundation.cos(Double.pi * (Double(i) + 0.75) / (Double(n) + 0.5))
        for _ in 0..<100 where n > 1 {
            let (value, derivative) = legendre(xi)
            let step = value / derivative
            xi -= step
            if Swift.abs(step) <= 1e-16 { break }
        }
        let derivative = n == 1 ? 1 : legendre(xi).derivative
        let weight = 2 / ((1 - xi * xi) * derivative * derivative)
        (nodes[i], nodes[n - 1 - i]) = (-xi, xi)
        (weights[i], weights[n - 1 - i]) = (weight, weight)
    }
    return (nodes, weights)
}

/// An elementwise unconstrained monotonic transform with its own free parameters per element
/// (``UnconstrainedMonotonicTransform``; Wehenkel & Louppe 2019).
public struct UnconstrainedMonotonic: BijectorPlan, SerializablePlan {
    /// The monotonic integral map of every element: its integrand's hidden units H (default 8)
    /// and Gauss–Legendre nodes N (default 32); each element has its own 3H + 2 parameters.
    public var transform: UnconstrainedMonotonicTransform

    /// An elementwise UMNN map of H hidden units (default 8) integrated with N nodes (default
    /// 32), each element with its own 3H + 2 parameters, starting as the identity.
    ///
    /// - Parameters:
    ///   - hiddenUnits: H, the integrand network's hidden units.
    ///   - nodes: N, the Gauss–Legendre nodes of the integral.
    public init(hiddenUnits: Int = 8, nodes: Int = 32) {
        transform = UnconstrainedMonotonicTransform(hiddenUnits: hiddenUnits, nodes: nodes)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// An unconstrained monotonic neural network layer (UMNN; Wehenkel & Louppe 2019):
/// yᵢ = βᵢ + ∫ g(t; θᵢ(x₁, …, xᵢ₋₁)) dt over t from 0 to xᵢ, with θᵢ from a MADE network
/// (``DenseAutoregressive``), with a context when the flow has one. `forward` is one network pass; `inverse` takes D
/// sequential steps, each a root-finding of one dimension (``MonotoneRootFinder``). ``UNAF``
/// uses it inverted, so that the density is the one-pass direction.
public struct UnconstrainedMonotonicAutoregressive: BijectorPlan, SerializablePlan {
    /// The monotonic integral map of every dimension: its integrand's hidden units H (default 8)
    /// and Gauss–Legendre nodes N (default 32).
    public var transform: UnconstrainedMonotonicTransform
    /// The MADE network that gives each dimension's 3H + 2 raw parameters from the dimensions
    /// before it (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A UMNN autoregressive layer of H hidden units per integrand (default 8) and N nodes
    /// (default 32), its parameters from `conditioner` (default: two hidden layers of 64 ReLU units).
    ///
    /// - Parameters:
    ///   - hiddenUnits: H, the integrand network's hidden units.
    ///   - nodes: N, the Gauss–Legendre nodes of the integral.
    ///   - conditioner: the MADE network that outputs each dimension's 3H + 2 raw parameters.
    public init(hiddenUnits: Int = 8, nodes: Int = 32, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = UnconstrainedMonotonicTransform(hiddenUnits: hiddenUnits, nodes: nodes)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}
