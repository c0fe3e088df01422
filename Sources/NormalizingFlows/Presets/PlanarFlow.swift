/// `layers` planar layers (Rezende & Mohamed 2015), the classic flow for variational inference:
/// cheap to sample and to score its own samples; scoring other points solves a scalar equation
/// per layer (see ``Planar``).
public struct PlanarFlow: SerializablePlan {
    public var layers: Int

    public init(layers: Int = 32) { self.layers = layers }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard layers >= 1 else { throw FlowError.invalidConfiguration("PlanarFlow needs at least one layer") }
        return try Compose(Array(repeating: Planar(), count: layers)).makeBijector(for: spec, generator: &generator)
    }
}

/// `layers` radial layers (Rezende & Mohamed 2015).
public struct RadialFlow: SerializablePlan {
    public var layers: Int

    public init(layers: Int = 32) { self.layers = layers }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard layers >= 1 else { throw FlowError.invalidConfiguration("RadialFlow needs at least one layer") }
        return try Compose(Array(repeating: Radial(), count: layers)).makeBijector(for: spec, generator: &generator)
    }
}
