/// `layers` planar layers (Rezende & Mohamed 2015), the classic flow for variational inference:
/// cheap to sample and to score its own samples; scoring other points solves a scalar equation
/// per layer (see ``Planar``).
///
/// Its layers start near the identity and move points by bounded amounts, so they train slowly at
/// the default learning rate of 1e-3 (``FitOptions``, ``VariationalOptions``): use about 1e-2, the
/// default of `flows fit` and `flows vi` for this family (fitted to two moons for 2,000 steps:
/// held-out NLL 0.924 at 1e-3, 0.476 at 1e-2; a Gaussian 1.884).
public struct PlanarFlow: SerializablePlan {
    /// The number of planar layers (default 32).
    public var layers: Int
    /// Each layer's ``Planar/invertibilityMargin``; plans saved before it existed read as 0.
    public var invertibilityMargin: Double

    /// A stack of planar layers.
    /// - Parameters:
    ///   - layers: the number of layers (default 32).
    ///   - invertibilityMargin: each layer's ε in wᵀû ≥ −1 + ε, in [0, 1) (default ``Planar/defaultInvertibilityMargin``).
    public init(layers: Int = 32, invertibilityMargin: Double = Planar.defaultInvertibilityMargin) {
        self.layers = layers
        self.invertibilityMargin = invertibilityMargin
    }

    /// Reads a saved plan; a plan without `invertibilityMargin` (saved before it existed) reads as margin 0.
    /// - Parameter decoder: the decoder of the model file's plan.
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
///
/// Its layers start near the identity and move points by bounded amounts, so they train slowly at
/// the default learning rate of 1e-3 (``FitOptions``, ``VariationalOptions``): use about 1e-2, the
/// default of `flows fit` and `flows vi` for this family (fitted to two moons for 2,000 steps:
/// held-out NLL 1.123 at 1e-3, 0.450 at 1e-2; a Gaussian 1.884).
public struct RadialFlow: SerializablePlan {
    /// The number of radial layers (default 32).
    public var layers: Int

    /// A stack of radial layers.
    /// - Parameter layers: the number of layers (default 32).
    public init(layers: Int = 32) { self.layers = layers }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Radial(), spec, &generator)
    }
}
