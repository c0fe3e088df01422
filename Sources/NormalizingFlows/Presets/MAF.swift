/// A masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017): `layers` affine
/// autoregressive layers in the MAF direction (density evaluation in one network pass per
/// layer, sampling in D sequential steps that cost one pass in all), with reversed variable
/// orders between layers.
public struct MAF: SerializablePlan {
    /// The number of affine autoregressive layers (default 5).
    public var layers: Int
    /// The MADE network of every layer (default: two hidden layers of 64 ReLU units, natural order).
    public var conditioner: DenseAutoregressive
    /// How each layer's raw log-scale becomes log σ (default ``AffineScale/exp``: log σ = s).
    public var scale: AffineScale

    /// A MAF of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of layers, at least 1 (default 5).
    ///   - conditioner: the MADE network of every layer (default `DenseAutoregressive()`).
    ///   - scale: the log-scale map of every layer (default ``AffineScale/default``).
    public init(layers: Int = 5, conditioner: DenseAutoregressive = DenseAutoregressive(), scale: AffineScale = .default) {
        self.layers = layers
        self.conditioner = conditioner
        self.scale = scale
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(AffineAutoregressive(conditioner: conditioner, scale: scale)), reversing: true, spec, &generator)
    }
}

/// An inverse autoregressive flow (Kingma et al. 2016): like ``MAF`` but in the sampling
/// direction (one pass per layer to sample and to score its own samples; D sequential steps to
/// score data, one pass's work in all when no gradients are recorded).
///
/// Its log-scale is softly bounded by default, log σ = s/(1 + |s|/log 1000)
/// (``AffineScale/iafDefault``, zuko's choice; Kingma et al. bound σ with a sigmoid,
/// ``AffineScale/sigmoid(bias:)``). Scoring data runs each layer's inverse, x = (y − μ)/σ, in
/// D sequential steps, μ and σ computed from the x's already reconstructed: a point away from
/// the data gives the network inputs it never saw, and an unbounded log-scale let such points
/// compound small σ through the steps and layers until training overflowed (see
/// ``AffineScale/iafDefault``). For density estimation ``MAF`` (the same layers the other way
/// round, its networks fed the data itself) is faster and steadier.
public struct IAF: SerializablePlan {
    /// The number of affine autoregressive layers (default 5).
    public var layers: Int
    /// The MADE network of every layer (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive
    /// How each layer's raw log-scale becomes log σ (default ``AffineScale/iafDefault``, soft-clipped at log 1000).
    public var scale: AffineScale

    /// An IAF of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of layers, at least 1 (default 5).
    ///   - conditioner: the MADE network of every layer (default `DenseAutoregressive()`).
    ///   - scale: the log-scale map of every layer (default ``AffineScale/iafDefault``).
    public init(layers: Int = 5, conditioner: DenseAutoregressive = DenseAutoregressive(), scale: AffineScale = .iafDefault) {
        self.layers = layers
        self.conditioner = conditioner
        self.scale = scale
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, AffineAutoregressive(conditioner: conditioner, scale: scale), reversing: true, spec, &generator)
    }
}

/// A neural spline flow, autoregressive variant (Durkan et al. 2019): `layers` rational-quadratic
/// spline layers in the MAF direction with reversed orders between them.
public struct NSF: SerializablePlan {
    /// The number of spline layers (default 5).
    public var layers: Int
    /// K, the number of bins of each spline on [−B, B] (default 8).
    public var bins: Int
    /// B (default 5): outside [−B, B] each spline is the identity, so values beyond it keep the
    /// base's shape; standardise data that reach past it.
    public var bound: Double
    /// The MADE network of every layer (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// An NSF of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of spline layers, at least 1 (default 5).
    ///   - bins: K ≥ 2, the number of bins (default 8).
    ///   - bound: B > 0, the half-width of the splines' interval (default 5).
    ///   - conditioner: the MADE network of every layer (default `DenseAutoregressive()`).
    public init(layers: Int = 5, bins: Int = 8, bound: Double = 5, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.bins = bins
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(SplineAutoregressive(bins: bins, bound: bound, conditioner: conditioner)), reversing: true, spec, &generator)
    }
}

/// A linear-rational spline flow, autoregressive variant (Dolatabadi, Erfani & Leckie 2020):
/// `layers` linear-rational spline layers (``LinearRationalSplineAutoregressive``) in the MAF
/// direction with reversed orders between them; ``NSF`` with the rational-quadratic spline.
public struct LRS: SerializablePlan {
    /// The number of spline layers (default 5).
    public var layers: Int
    /// K, the number of bins of each spline on [−B, B] (default 8).
    public var bins: Int
    /// B (default 5): outside [−B, B] each spline is the identity.
    public var bound: Double
    /// The MADE network of every layer (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// An LRS flow of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of spline layers.
    ///   - bins: K, the number of bins of each spline on [−B, B].
    ///   - bound: B; outside [−B, B] each spline is the identity.
    ///   - conditioner: the MADE network of every layer.
    public init(layers: Int = 5, bins: Int = 8, bound: Double = 5, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.bins = bins
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(LinearRationalSplineAutoregressive(bins: bins, bound: bound, conditioner: conditioner)),
                  reversing: true, spec, &generator)
    }
}

extension BijectorPlan {
    /// A preset's bijector: `count` layers composed, `layer(i)` for layer i, with ``Permute``
    /// reversals between them when `reversing`.
    func stack(_ count: Int, reversing: Bool = false, _ spec: BijectorSpec, _ generator: inout RandomGenerator,
               layer: (Int) -> any BijectorPlan) throws -> any Bijector {
        guard count >= 1 else { throw FlowError.invalidConfiguration("\(Self.self) needs at least one layer, got \(count)") }
        let parts = (0..<count).flatMap { i in (reversing && i > 0 ? [Permute(.reversed)] : []) + [layer(i)] }
        return try Compose(parts).makeBijector(for: spec, generator: &generator)
    }

    /// The same, with one layer plan for every layer.
    func stack(_ count: Int, _ layer: any BijectorPlan, reversing: Bool = false, _ spec: BijectorSpec,
               _ generator: inout RandomGenerator) throws -> any Bijector {
        try stack(count, reversing: reversing, spec, &generator) { _ in layer }
    }
}
