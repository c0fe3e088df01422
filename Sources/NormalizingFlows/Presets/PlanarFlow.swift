/// `layers` planar layers (Rezende & Mohamed 2015), the classic flow for variational inference:
/// cheap to sample and to score its own samples; scoring other points solves a scalar equation
/// per layer (see ``Planar``).
public struct PlanarFlow: SerializablePlan {
    public var layers: Int
    /// Each layer's ``Planar/invertibilityMargin``; plans saved before it existed read as 0.
    public var invertibilityMargin: Double

    public init(layers: Int = 32, invertibilityMargin: Double = Planar.defaultInvertibilityMargin) {
        self.layers = layers
        self.invertibilityMargin = invertibilityMargin
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        layers = try container.decode(Int.self, forKey: .layers)
        invertibilityMargin = try container.decodeIfPresent(Double.self, forKey: .invertibilityMargin) ?? 0
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Planar(invertibilityMargin: invertibilityMargin), spec, &generator)
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
