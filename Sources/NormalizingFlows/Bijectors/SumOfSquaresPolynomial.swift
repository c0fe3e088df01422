import Foundation

/// The sum-of-squares polynomial transformer (Jaini, Selby & Yu 2019, "Sum-of-Squares
/// Polynomial Flow", ICML): the integral of a sum of squared polynomials, which is nonnegative,
/// so the map is monotonic. On [−B, B], with t = x/B,
///
///     y = c + ∫₀ˣ g(s) ds,   g(x) = ε + (1 − ε) S(x/B),
///     S(t) = (1/K) Σₖ pₖ(t)²,   pₖ(t) = 1 + Σₗ aₖₗ tˡ  (l = 0…L),
///
/// with K polynomials of degree L and ε = 10⁻³, from K(L + 1) + 1 raw parameters per element laid
/// out [a₁₀…a₁_L, …, a_K0…a_KL, c]. As in zuko's `SOSPolynomialTransform`, each polynomial is
/// 1 plus its raw coefficients, acts on x/B, and the squares are averaged, so all-zero raw
/// parameters are the identity (g ≡ 1); the floor ε (not in Jaini et al.) keeps g > 0 where every
/// pₖ vanishes at once, so the map is strictly increasing and log g finite everywhere.
///
/// Outside [−B, B] the map continues linearly with its slope at the nearer end (as
/// ``BernsteinPolynomialTransform`` does): a polynomial of degree 2L + 1 left unbounded grows like
/// x²ᴸ⁺¹, and a stack of such layers like x raised to (2L + 1)ⁿ, which overflows Float32 within a few
/// training steps on data of scale π (degree 7⁵ after five layers). With x̄ the input clamped to
/// [−B, B], t̄ = x̄/B, and the integral of S in closed form (Gₗₘ = Σₖ qₖₗqₖₘ, qₖ the
/// coefficients of pₖ),
///
///     P(t) = ∫₀ᵗ S = (1/K) Σₗ,ₘ Gₗₘ tˡ⁺ᵐ⁺¹/(l + m + 1),
///     y = c + εx + (1 − ε)(B·P(t̄) + (x − x̄)·S(t̄)),
///     log dy/dx = log(ε + (1 − ε) S(t̄)),
///
/// so y and its derivative are continuous at ±B. Without a bound (`bound` nil) the polynomial
/// acts on x itself over the whole line, as in Jaini et al.: y = c + εx + (1 − ε) P(x).
///
/// Cost: O(K·L²) per element forward (composed tensor operations); the inverse has no closed form
/// for L ≥ 1 and is found by ``MonotoneRootFinder``.
public struct SumOfSquaresPolynomialTransform: ParametricElementwiseTransform, Codable {
    /// K, the squared polynomials.
    public var polynomials: Int
    /// L, each polynomial's degree.
    public var degree: Int
    /// B: the polynomials act on x/B inside [−B, B], and the map is linear outside; `nil`: the
    /// polynomials act on x over the whole line.
    public var bound: Double?

    /// ε, the floor under g.
    static let floor = 1e-3

    /// The settings of a sum-of-squares polynomial map: K squared polynomials (default 3) of degree
    /// L (default 4), K(L + 1) + 1 raw parameters per element, on [−B, B] (default B = 10, in the
    /// data's units; linear outside). Checked by ``validate()`` when a bijector is made: K ≥ 1,
    /// 0 ≤ L ≤ 16 and B positive and finite.
    ///
    /// - Parameters:
    ///   - polynomials: K, the squared polynomials (zuko's `SOSPF` uses 3).
    ///   - degree: L, each polynomial's degree (zuko's uses 4).
    ///   - bound: B, the half-width of the interval the polynomials act on, scaled to [−1, 1]
    ///     (zuko's scales by 10); `nil` for polynomials in x over the whole line.
    public init(polynomials: Int = 3, degree: Int = 4, bound: Double? = 10) {
        self.polynomials = polynomials
        self.degree = degree
        self.bound = bound
    }

    public var parameterCount: Int { polynomials * (degree + 1) + 1 }
    public var identityParameters: [Double] { [Double](repeating: 0, count: parameterCount) }

    public func validate() throws {
        guard polynomials >= 1, degree >= 0, degree <= 16 else {
            throw FlowError.invalidConfiguration(
                "a sum-of-squares polynomial transform needs at least one polynomial and a degree from 0 to 16, got \(polynomials) polynomials of degree \(degree)")
        }
        if let bound, !(bound > 0 && bound.isFinite) {
            throw FlowError.invalidConfiguration("a sum-of-squares polynomial transform needs a positive finite bound, got \(bound)")
        }
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let (k, terms, e) = (polynomials, degree + 1, x.count)
        let raw = parameters.broadcast(to: x.shape + [parameterCount]).reshaped(to: [e, parameterCount])
        let one = Tensor([1] + [Double](repeating: 0, count: terms - 1), shape: [1, 1, terms], dtype: x.dtype)
        let q = raw.slice(alongAxis: -1, 0..<(k * terms)).reshaped(to: [e, k, terms]) + one   // [e, K, L + 1]
        let flat = x.reshaped(to: [e, 1])
        let clamped = bound.map { flat.clamped(min: -$0, max: $0) } ?? flat                     // x̄
        let t = bound.map { clamped / $0 } ?? flat                                              // t̄
        // tʲ for j = 0…2L + 1.
        var powers = [Tensor.ones([e, 1], dtype: x.dtype)]
        for _ in 0..<(2 * terms) { powers.append(powers[powers.count - 1] * t) }
        let power = Tensor.concatenate(powers, alongAxis: -1)                                  // [e, 2L + 2]
        // S(t̄) = (1/K) Σₖ pₖ(t̄)².
        let p = (q * power.slice(alongAxis: -1, 0..<terms).unsqueezed(axis: 1)).sum(alongAxis: -1)   // [e, K]
        let squares = p.square().sum(alongAxis: -1) * (1 / Double(k))
        // ∫₀ᵗ sˡ⁺ᵐ ds = tˡ⁺ᵐ⁺¹/(l + m + 1), arranged as an (L + 1)×(L + 1) matrix per element.
        let pairs = (0..<terms).flatMap { l in (0..<terms).map { l + $0 } }
        let divisors = Tensor(pairs.map { 1 / Double($0 + 1) }, shape: [1, terms, terms], dtype: x.dtype)
        let moments = power.indexSelect(alongAxis: -1, pairs.map { $0 + 1 }).reshaped(to: [e, terms, terms]) * divisors
        let gram = (q.unsqueezed(axis: -1) * q.unsqueezed(axis: -2)).sum(alongAxis: 1)       // [e, L + 1, L + 1]
        let antiderivative = (gram * moments).sum(alongAxes: [1, 2]) * (1 / Double(k))        // P(t̄)
        let flatX = flat.squeezed(axis: 1)
        let polynomialPart = bound.map { antiderivative * $0 + (flatX - clamped.squeezed(axis: 1)) * squares } ?? antiderivative
        let y = polynomialPart * (1 - Self.floor) + flatX * Self.floor + raw.select(alongAxis: -1, index: k * terms)
        let g = squares * (1 - Self.floor) + Self.floor
        return (y.reshaped(to: x.shape), g.log().reshaped(to: x.shape))
    }

    /// The root of `forward` (see ``MonotoneRootFinder``).
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the element whose root was not found.
    public func inverse(_ y: Tensor, parameters: Tensor) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        try monotoneInverse(y, parameters: parameters.broadcast(to: y.shape + [parameterCount]))
    }
}

/// An elementwise sum-of-squares polynomial transform with its own free parameters per element
/// (``SumOfSquaresPolynomialTransform``; Jaini et al. 2019).
public struct SumOfSquaresPolynomial: BijectorPlan, SerializablePlan {
    /// The sum-of-squares map of every element: K squared polynomials (default 3) of degree L
    /// (default 4) on [−B, B] (default B = 10, linear outside); each element has its own
    /// K(L + 1) + 1 parameters.
    public var transform: SumOfSquaresPolynomialTransform

    /// An elementwise sum-of-squares polynomial map of K squared polynomials (default 3) of degree
    /// L (default 4) on [−B, B] (default B = 10, linear outside), each element with its own
    /// K(L + 1) + 1 parameters, starting as the identity.
    ///
    /// - Parameters:
    ///   - polynomials: K, the squared polynomials.
    ///   - degree: L, each polynomial's degree.
    ///   - bound: B, the half-width of the interval the polynomials act on (linear outside);
    ///     `nil` for polynomials over the whole line.
    public init(polynomials: Int = 3, degree: Int = 4, bound: Double? = 10) {
        transform = SumOfSquaresPolynomialTransform(polynomials: polynomials, degree: degree, bound: bound)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// A sum-of-squares polynomial autoregressive layer (Jaini et al. 2019): each dimension's
/// polynomial coefficients come from a MADE network (``DenseAutoregressive``) fed the dimensions
/// before it, with a context when the flow has one. `forward` is one network pass; `inverse`
/// takes D sequential root-finding steps. ``SOSPF`` uses it inverted.
public struct SumOfSquaresPolynomialAutoregressive: BijectorPlan, SerializablePlan {
    /// The sum-of-squares map of every dimension: K squared polynomials (default 3) of degree L
    /// (default 4) on [−B, B] (default B = 10, linear outside).
    public var transform: SumOfSquaresPolynomialTransform
    /// The MADE network that gives each dimension's K(L + 1) + 1 raw parameters from the
    /// dimensions before it (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A sum-of-squares polynomial autoregressive layer of K squared polynomials (default 3) of
    /// degree L (default 4) on [−B, B] (default B = 10, linear outside), its coefficients from
    /// `conditioner` (default: two hidden layers of 64 ReLU units).
    ///
    /// - Parameters:
    ///   - polynomials: K, the squared polynomials.
    ///   - degree: L, each polynomial's degree.
    ///   - bound: B, the half-width of the interval the polynomials act on (linear outside);
    ///     `nil` for polynomials over the whole line.
    ///   - conditioner: the MADE network that outputs each dimension's K(L + 1) + 1 raw parameters.
    public init(polynomials: Int = 3, degree: Int = 4, bound: Double? = 10,
                conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = SumOfSquaresPolynomialTransform(polynomials: polynomials, degree: degree, bound: bound)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}
