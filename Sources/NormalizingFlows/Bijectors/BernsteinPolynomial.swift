import Foundation

/// A monotonic Bernstein polynomial (Ramasinghe, Fernando, Khan & Barnes 2021, "Robust
/// normalizing flows using Bernstein-type polynomials", BMVC): on [−B, B], with u = (x + B)/(2B),
///
///     y = Σₖ βₖ bₖ(u),   bₖ(u) = C(M, k) uᵏ(1 − u)ᴹ⁻ᵏ  (k = 0…M),
///
/// which increases when the coefficients do: dy/dx = (M/(2B)) Σₖ (βₖ₊₁ − βₖ) bₖ,ₘ₋₁(u) > 0
/// (the derivative of a Bernstein polynomial is the Bernstein polynomial of its differences).
/// The coefficients are β₀ = raw₀ and βₖ = βₖ₋₁ + softplus(rawₖ) (cumulative softplus, the
/// raws floored at −30 so that every step is at least 9·10⁻¹⁴), M + 1 raw parameters per element.
/// Outside [−B, B] the map continues linearly with its slope at the nearer end (as zuko's `BPF`
/// does), so it is a bijection of the real line with a continuous derivative; with x̄ the input
/// clamped to [−B, B] and ū its u,
///
///     y = Σₖ βₖ bₖ(ū) + (x − x̄)·y′(ū),
///     log |dy/dx| = log((M/(2B)) Σₖ (βₖ₊₁ − βₖ) bₖ,ₘ₋₁(ū)).
///
/// βₖ = −B + 2Bk/M (raw₀ = −B, rawₖ = softplus⁻¹(2B/M)) is the identity. Cost: O(M) per element
/// forward (composed tensor operations); the inverse is found by ``MonotoneRootFinder``.
public struct BernsteinPolynomialTransform: ParametricElementwiseTransform, Codable {
    /// M, the polynomial's degree.
    public var degree: Int
    /// B: the polynomial acts on [−B, B], linear outside.
    public var bound: Double

    /// The settings of a Bernstein polynomial map: degree M (default 16, M + 1 raw parameters per
    /// element) on [−B, B] (default B = 5, in the data's units; linear outside). Checked by
    /// ``validate()`` when a bijector is made: 1 ≤ M ≤ 64 and B positive and finite.
    ///
    /// - Parameters:
    ///   - degree: M, the polynomial's degree.
    ///   - bound: B, the half-width of the interval the polynomial acts on.
    public init(degree: Int = 16, bound: Double = 5) {
        self.degree = degree
        self.bound = bound
    }

    public var parameterCount: Int { degree + 1 }

    public var identityParameters: [Double] {
        [-bound] + [Double](repeating: Foundation.log(Foundation.expm1(2 * bound / Double(degree))), count: degree)
    }

    public func validate() throws {
        guard degree >= 1, degree <= 64, bound > 0, bound.isFinite else {
            throw FlowError.invalidConfiguration("a Bernstein polynomial needs a degree from 1 to 64 and a positive finite bound, got degree \(degree), bound \(bound)")
        }
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let (m, e) = (degree, x.count)
        let raw = parameters.broadcast(to: x.shape + [m + 1]).reshaped(to: [e, m + 1])
        let steps = raw.slice(alongAxis: -1, 1..<(m + 1)).clamped(min: -30).softplus()          // βₖ₊₁ − βₖ, [e, M]
        let coefficients = Tensor.concatenate(
            [raw.slice(alongAxis: -1, 0..<1), raw.slice(alongAxis: -1, 0..<1) + steps.cumulativeSum(alongAxis: -1)], alongAxis: -1)
        let flat = x.reshaped(to: [e, 1])
        let clamped = flat.clamped(min: -bound, max: bound)
        let u = (clamped + bound) / (2 * bound)
        let basis = bernsteinBasis(u, degree: m), lower = bernsteinBasis(u, degree: m - 1)   // [e, M + 1], [e, M]
        let slope = (steps * lower).sum(alongAxis: -1) * (Double(m) / (2 * bound))             // dy/dx at ū
        let y = (coefficients * basis).sum(alongAxis: -1) + (flat - clamped).squeezed(axis: 1) * slope
        return (y.reshaped(to: x.shape), slope.log().reshaped(to: x.shape))
    }

    /// The Bernstein basis bₖ,ₙ(u) = C(n, k) uᵏ(1 − u)ⁿ⁻ᵏ for k = 0…n, from u [e, 1]: shape [e, n + 1].
    private func bernsteinBasis(_ u: Tensor, degree n: Int) -> Tensor {
        let v = 1 - u
        var up = [Tensor.ones(u.shape, dtype: u.dtype)], down = up
        for _ in 0..<n {
            up.append(up[up.count - 1] * u)
            down.append(down[down.count - 1] * v)
        }
        var binomial = 1.0
        var terms: [Tensor] = []
        for k in 0...n {
            terms.append(up[k] * down[n - k] * binomial)
            binomial = binomial * Double(n - k) / Double(k + 1)
        }
        return Tensor.concatenate(terms, alongAxis: -1)
    }

    /// The root of `forward` (see ``MonotoneRootFinder``).
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the element whose root was not found.
    public func inverse(_ y: Tensor, parameters: Tensor) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        try monotoneInverse(y, parameters: parameters.broadcast(to: y.shape + [parameterCount]))
    }
}

/// An elementwise monotonic Bernstein polynomial with its own free parameters per element
/// (``BernsteinPolynomialTransform``; Ramasinghe et al. 2021).
public struct BernsteinPolynomial: BijectorPlan, SerializablePlan {
    /// The Bernstein polynomial of every element: its degree M (default 16) and the bound B
    /// (default 5) outside which it continues linearly; each element has its own M + 1 parameters.
    public var transform: BernsteinPolynomialTransform

    /// An elementwise Bernstein polynomial of degree M (default 16) on [−B, B] (default B = 5,
    /// linear outside), each element with its own M + 1 coefficients, starting as the identity.
    ///
    /// - Parameters:
    ///   - degree: M, the polynomial's degree.
    ///   - bound: B, the half-width of the interval the polynomial acts on.
    public init(degree: Int = 16, bound: Double = 5) {
        transform = BernsteinPolynomialTransform(degree: degree, bound: bound)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// A Bernstein polynomial autoregressive layer (Ramasinghe et al. 2021): each dimension's M + 1
/// coefficients come from a MADE network (``DenseAutoregressive``) fed the dimensions before it,
/// with a context when the flow has one. `forward` is one network pass; `inverse` takes D
/// sequential root-finding steps. ``BPF`` uses it inverted.
public struct BernsteinPolynomialAutoregressive: BijectorPlan, SerializablePlan {
    /// The Bernstein polynomial of every dimension: its degree M (default 16) and the bound B
    /// (default 5) outside which it continues linearly.
    public var transform: BernsteinPolynomialTransform
    /// The MADE network that gives each dimension's M + 1 raw coefficients from the dimensions
    /// before it (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A Bernstein polynomial autoregressive layer of degree M (default 16) on [−B, B] (default
    /// B = 5, linear outside), its coefficients from `conditioner` (default: two hidden layers of
    /// 64 ReLU units).
    ///
    /// - Parameters:
    ///   - degree: M, the polynomial's degree.
    ///   - bound: B, the half-width of the interval the polynomial acts on.
    ///   - conditioner: the MADE network that outputs each dimension's M + 1 raw parameters.
    public init(degree: Int = 16, bound: Double = 5, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = BernsteinPolynomialTransform(degree: degree, bound: bound)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}
