import Foundation

/// The deep sigmoidal flow (DSF) transformer of Neural Autoregressive Flows (Huang, Krueger,
/// Lacoste & Courville 2018, "Neural Autoregressive Flows", ICML; the one-hidden-layer DSF
/// y = σ⁻¹(wᵀσ(a·x + b))): per element, with K units,
///
///     y = logit S(x),   S(x) = Σⱼ wⱼ σ(aⱼx + bⱼ),
///     aⱼ = softplus(αⱼ) > 0,   w = softmax(ω),
///
/// from 3K raw parameters per element, laid out [α₁…α_K, b₁…b_K, ω₁…ω_K] (Pyro's
/// `DeepSigmoid` order: pre-softplus slopes, offsets, pre-softmax weights). S increases from 0
/// to 1, so y increases over all of ℝ: a bijection of the real line. With zⱼ = aⱼx + bⱼ and
/// 1 − S = Σⱼ wⱼσ(−zⱼ) (the weights sum to 1), everything is computed in log space, so nothing
/// saturates however large |x| is (a plain logit of S rounds to ±∞ once S rounds to 0 or 1):
///
///     log S      = LSEⱼ(log wⱼ + log σ(zⱼ)),
///     log(1 − S) = LSEⱼ(log wⱼ + log σ(−zⱼ)),
///     y          = log S − log(1 − S),
///
/// and, as S′ = Σⱼ wⱼaⱼσ(zⱼ)σ(−zⱼ) and dy/dS = 1/(S(1 − S)),
///
///     log dy/dx = LSEⱼ(log wⱼ + log aⱼ + log σ(zⱼ) + log σ(−zⱼ)) − log S − log(1 − S),
///
/// LSE the log-sum-exp. The slopes' raw values are floored at −30 before the softplus
/// (aⱼ ≥ 9·10⁻¹⁴), so that log aⱼ stays finite; the floor is part of the map, used in y and in
/// its derivative alike. Raw (α, b, ω) = (log(e − 1), 0, 0) is the identity: every unit is σ(x).
///
/// Cost: the forward map is O(K) per element, recorded as composed tensor operations. The
/// inverse has no closed form and is found by ``MonotoneRootFinder`` (Chandrupatla's method to
/// 10⁻¹⁴·(1 + |x|) in Float64, 10⁻⁶·(1 + |x|) in Float32), a few dozen forward evaluations.
public struct DeepSigmoidalTransform: ParametricElementwiseTransform, Codable {
    /// K, the sigmoid units per element.
    public var units: Int

    /// The settings of a deep sigmoidal map: K sigmoid units (default 16, 3K raw parameters per
    /// element; more units give a more flexible map, at O(K) per element). Checked by
    /// ``validate()`` when a bijector is made: K ≥ 1.
    ///
    /// - Parameter units: K, the sigmoid units per element (Huang et al. and Pyro use 16).
    public init(units: Int = 16) { self.units = units }

    /// 3K raw parameters per element: K each for the slopes a (through softplus, first), the shifts b and the weights w (through softmax).
    public var parameterCount: Int { 3 * units }

    public var identityParameters: [Double] {
        [Double](repeating: Foundation.log(Foundation.expm1(1.0)), count: units) + [Double](repeating: 0, count: 2 * units)
    }

    public func validate() throws {
        guard units >= 1 else { throw FlowError.invalidConfiguration("a deep sigmoidal flow needs at least one unit, got \(units)") }
    }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let k = units
        let raw = parameters.broadcast(to: x.shape + [3 * k])
        let slopes = raw.slice(alongAxis: -1, 0..<k).clamped(min: -30).softplus()
        let logWeights = raw.slice(alongAxis: -1, (2 * k)..<(3 * k)).logSoftmax(alongAxis: -1)
        let z = slopes * x.unsqueezed(axis: -1) + raw.slice(alongAxis: -1, k..<(2 * k))
        let logUp = z.logSigmoid(), logDown = z.negated().logSigmoid()
        let logS = (logWeights + logUp).logSumExp(alongAxis: -1)
        let logComplement = (logWeights + logDown).logSumExp(alongAxis: -1)
        let logSlope = (logWeights + slopes.log() + logUp + logDown).logSumExp(alongAxis: -1)
        return (logS - logComplement, logSlope - logS - logComplement)
    }

    /// The root of `forward` (see ``MonotoneRootFinder``).
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the element whose root was not found.
    public func inverse(_ y: Tensor, parameters: Tensor) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        try monotoneInverse(y, parameters: parameters.broadcast(to: y.shape + [parameterCount]))
    }
}

/// An elementwise deep sigmoidal flow with its own free parameters per element
/// (``DeepSigmoidalTransform``; Huang et al. 2018).
public struct DeepSigmoidal: BijectorPlan, SerializablePlan {
    /// The deep sigmoidal map of every element (its K units).
    public var transform: DeepSigmoidalTransform

    /// An elementwise deep sigmoidal map of K units (default 16), each element with its own 3K
    /// parameters, starting as the identity.
    ///
    /// - Parameter units: K, the sigmoid units per element.
    public init(units: Int = 16) { transform = DeepSigmoidalTransform(units: units) }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
}

/// A neural autoregressive flow layer with the deep sigmoidal transformer (Huang et al. 2018):
/// y_i = DSF(x_i; θ_i(x_<i)), θ_i from a MADE network (``DenseAutoregressive``), with a context
/// when the flow has one. `forward` is one network pass; `inverse` takes D sequential steps,
/// each a root-finding of one dimension (``MonotoneRootFinder``). ``NAF`` uses it inverted,
/// so that the density is the one-pass direction.
public struct DeepSigmoidalAutoregressive: BijectorPlan, SerializablePlan {
    /// The deep sigmoidal map of every element (its K units).
    public var transform: DeepSigmoidalTransform
    /// The MADE network that gives each dimension's 3K raw parameters.
    public var conditioner: DenseAutoregressive

    /// A deep sigmoidal autoregressive layer of K units (default 16), its parameters from
    /// `conditioner` (default: two hidden layers of 64 ReLU units).
    ///
    /// - Parameters:
    ///   - units: K, the sigmoid units per element.
    ///   - conditioner: the MADE network that outputs each dimension's 3K raw parameters.
    public init(units: Int = 16, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        transform = DeepSigmoidalTransform(units: units)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try makeAutoregressive(transform, conditioner: conditioner, spec: spec, generator: &generator)
    }
}
