/// `layers` planar layers (Rezende & Mohamed 2015), the classic flow for variational inference:
/// cheap to sample and to score its own samples; scoring other points solves a scalar equation
/// per layer (see ``Planar``).
public struct PlanarFlow: SerializablePlan {
    public var layers: Int

    public init(layers: Int = 32) { self.layers = layers }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Planar(), spec, &generator)
    }
}

/// `layers` radial layers (Rezende & Mohamed 2015).
public struct RadialFlow: SerializablePlan {
    public var layers: Int

    public init(layers: Int = 32) { self.layers = layers }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Radial(), spec, &generator)
    }
}
