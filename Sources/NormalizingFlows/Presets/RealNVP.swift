/// RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): `layers` affine coupling layers whose masks
/// alternate, so every element is transformed in every other layer.
public struct RealNVP: SerializablePlan {
    /// The number of affine coupling layers (default 6).
    public var layers: Int
    /// The coupling network of every layer (default two hidden layers of 64 ReLU units).
    public var conditioner: CouplingNetwork

    /// A RealNVP plan; layer l conditions on the elements of parity l mod 2.
    /// - Parameters:
    ///   - layers: the number of coupling layers (default 6).
    ///   - conditioner: the network of every layer (default two hidden layers of 64 ReLU units).
    public init(layers: Int = 6, conditioner: CouplingNetwork = CouplingNetwork()) {
        self.layers = layers
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, spec, &generator) { AffineCoupling(mask: .alternating(parity: $0 % 2), conditioner: conditioner) }
    }
}

/// Neural spline flow, coupling variant (NSF-C, Durkan et al. 2019): `layers` rational-quadratic
/// spline coupling layers with alternating masks. Sampling and density both take one pass per layer.
public struct NSFCoupling: SerializablePlan {
    /// The number of spline coupling layers (default 6).
    public var layers: Int
    /// K, the number of bins of each spline (default 8).
    public var bins: Int
    /// B: each spline maps [−B, B] onto itself and is the identity outside it (default 5).
    public var bound: Double
    /// The coupling network of every layer (default two hidden layers of 64 ReLU units).
    public var conditioner: CouplingNetwork

    /// An NSF coupling plan; layer l conditions on the elements of parity l mod 2.
    /// - Parameters:
    ///   - layers: the number of coupling layers (default 6).
    ///   - bins: K, the bins of each rational-quadratic spline (default 8).
    ///   - bound: B; outside [−B, B] each spline is the identity (default 5).
    ///   - conditioner: the network of every layer (default two hidden layers of 64 ReLU units).
    public init(layers: Int = 6, bins: Int = 8, bound: Double = 5, conditioner: CouplingNetwork = CouplingNetwork()) {
        self.layers = layers
        self.bins = bins
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, spec, &generator) {
            SplineCoupling(mask: .alternating(parity: $0 % 2), bins: bins, bound: bound, conditioner: conditioner)
        }
    }
}

/// A linear-rational spline flow, coupling variant (Dolatabadi, Erfani & Leckie 2020): `layers`
/// linear-rational spline coupling layers (``LinearRationalSplineCoupling``) with alternating
/// masks; ``NSFCoupling`` with the rational-quadratic spline. Sampling and density both take one
/// pass per layer.
public struct LRSCoupling: SerializablePlan {
    /// The number of linear-rational spline coupling layers (default 6).
    public var layers: Int
    /// K, the number of bins of each spline (default 8).
    public var bins: Int
    /// B: each spline maps [−B, B] onto itself and is the identity outside it (default 5).
    public var bound: Double
    /// The coupling network of every layer (default two hidden layers of 64 ReLU units).
    public var conditioner: CouplingNetwork

    /// An LRS coupling plan; layer l conditions on the elements of parity l mod 2 (defaults: 6 layers, K = 8, B = 5).
    ///
    /// - Parameters:
    ///   - layers: the number of coupling layers.
    ///   - bins: K, the number of bins of each spline on [−B, B].
    ///   - bound: B; outside [−B, B] each spline is the identity.
    ///   - conditioner: the coupling network of every layer.
    public init(layers: Int = 6, bins: Int = 8, bound: Double = 5, conditioner: CouplingNetwork = CouplingNetwork()) {
        self.layers = layers
        self.bins = bins
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, spec, &generator) {
            LinearRationalSplineCoupling(mask: .alternating(parity: $0 % 2), bins: bins, bound: bound, conditioner: conditioner)
        }
    }
}
