/// A masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017): `layers` affine
/// autoregressive layers in the MAF direction (density evaluation in one network pass per
/// layer, sampling in D sequential steps that cost one pass in all), with reversed variable
/// orders between layers.
public struct MAF: SerializablePlan {
    public var layers: Int
    public var conditioner: DenseAutoregressive
    public var scale: AffineScale

    public init(layers: Int = 5, conditioner: DenseAutoregressive = DenseAutoregressive(), scale: AffineScale = .default) {
        self.layers = layers
        self.conditioner = conditioner
        self.scale = scale
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard layers >= 1 else { throw FlowError.invalidConfiguration("MAF needs at least one layer") }
        let layer = Invert(AffineAutoregressive(conditioner: conditioner, scale: scale))
        return try Compose(interleavedWithReversal(layer, count: layers)).makeBijector(for: spec, generator: &generator)
    }
}

/// An inverse autoregressive flow (Kingma et al. 2016): like ``MAF`` but in the sampling
/// direction (one pass per layer to sample and to score its own samples; D sequential steps to
/// score data, one pass's work in all when no gradients are recorded).
public struct IAF: SerializablePlan {
    public var layers: Int
    public var conditioner: DenseAutoregressive
    public var scale: AffineScale

    public init(layers: Int = 5, conditioner: DenseAutoregressive = DenseAutoregressive(), scale: AffineScale = .default) {
        self.layers = layers
        self.conditioner = conditioner
        self.scale = scale
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard layers >= 1 else { throw FlowError.invalidConfiguration("IAF needs at least one layer") }
        let layer = AffineAutoregressive(conditioner: conditioner, scale: scale)
        return try Compose(interleavedWithReversal(layer, count: layers)).makeBijector(for: spec, generator: &generator)
    }
}

/// A neural spline flow, autoregressive variant (Durkan et al. 2019): `layers` rational-quadratic
/// spline layers in the MAF direction with reversed orders between them.
public struct NSF: SerializablePlan {
    public var layers: Int
    public var bins: Int
    public var bound: Double
    public var conditioner: DenseAutoregressive

    public init(layers: Int = 5, bins: Int = 8, bound: Double = 5, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.bins = bins
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard layers >= 1 else { throw FlowError.invalidConfiguration("NSF needs at least one layer") }
        let layer = Invert(SplineAutoregressive(bins: bins, bound: bound, conditioner: conditioner))
        return try Compose(interleavedWithReversal(layer, count: layers)).makeBijector(for: spec, generator: &generator)
    }
}

/// `count` copies of `layer` with ``Permute`` reversals between them.
func interleavedWithReversal(_ layer: any BijectorPlan, count: Int) -> [any BijectorPlan] {
    var parts: [any BijectorPlan] = []
    for i in 0..<count {
        if i > 0 { parts.append(Permute(.reversed)) }
        parts.append(layer)
    }
    return parts
}
