/// RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): `layers` affine coupling layers whose masks
/// alternate, so every element is transformed in every other layer.
public struct RealNVP: SerializablePlan {
    public var layers: Int
    public var conditioner: CouplingNetwork

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
    public var layers: Int
    public var bins: Int
    public var bound: Double
    public var conditioner: CouplingNetwork

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
    public var layers: Int
    public var bins: Int
    public var bound: Double
    public var conditioner: CouplingNetwork

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
