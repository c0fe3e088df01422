/// A neural autoregressive flow (NAF; Huang et al. 2018): `layers` deep sigmoidal
/// autoregressive layers in the MAF direction (the density in one network pass per layer;
/// sampling root-finds each dimension in D sequential steps per layer), with reversed variable
/// orders between layers.
///
/// Unlike zuko's `NAF`, whose monotonic network is invertible only within [−10, 10] (zuko puts
/// a soft clip between layers), each DSF layer is a bijection of the whole real line, so no
/// clipping is needed.
public struct NAF: SerializablePlan {
    /// The number of deep sigmoidal layers (default 5).
    public var layers: Int
    /// K, the sigmoid units per element of each layer (default 16).
    public var units: Int
    /// Each layer's MADE network (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A NAF flow of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of deep sigmoidal autoregressive layers.
    ///   - units: K, the sigmoid units per element of each layer.
    ///   - conditioner: each layer's MADE network (each layer gets its own weights).
    public init(layers: Int = 5, units: Int = 16, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.units = units
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(DeepSigmoidalAutoregressive(units: units, conditioner: conditioner)), reversing: true, spec, &generator)
    }
}

/// An unconstrained neural autoregressive flow (UNAF; Wehenkel & Louppe 2019): `layers`
/// unconstrained monotonic autoregressive layers (``UnconstrainedMonotonicAutoregressive``) in
/// the MAF direction (the density in one network pass per layer, each element's integral by
/// Gauss–Legendre quadrature; sampling root-finds each dimension in D sequential steps per
/// layer), with reversed variable orders between layers.
///
/// Like zuko's `UNAF` in construction, but each layer is a bijection of the whole real line (the
/// integrand is at least 10⁻³ everywhere), so no soft clip sits between layers.
public struct UNAF: SerializablePlan {
    /// The number of unconstrained monotonic layers (default 5).
    public var layers: Int
    /// H, the hidden units of each element's integrand network (default 8).
    public var hiddenUnits: Int
    /// N, the Gauss–Legendre nodes of each integral (default 32).
    public var nodes: Int
    /// Each layer's MADE network (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A UNAF flow of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of unconstrained monotonic autoregressive layers.
    ///   - hiddenUnits: H, the hidden units of each element's integrand network.
    ///   - nodes: N, the Gauss–Legendre nodes of each integral.
    ///   - conditioner: each layer's MADE network (each layer gets its own weights).
    public init(layers: Int = 5, hiddenUnits: Int = 8, nodes: Int = 32, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.hiddenUnits = hiddenUnits
        self.nodes = nodes
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(UnconstrainedMonotonicAutoregressive(hiddenUnits: hiddenUnits, nodes: nodes, conditioner: conditioner)),
                  reversing: true, spec, &generator)
    }
}

/// A sum-of-squares polynomial flow (SOSPF; Jaini, Selby & Yu 2019): `layers` sum-of-squares
/// polynomial autoregressive layers (``SumOfSquaresPolynomialAutoregressive``) in the MAF
/// direction (the density in one network pass per layer, each element's integral in closed
/// form; sampling root-finds each dimension in D sequential steps per layer), with reversed
/// variable orders between layers.
///
/// Each layer's polynomials act on x/B inside [−B, B] and the layer is linear outside, so the
/// stack grows linearly in its input rather than as a polynomial of degree (2L + 1)ⁿ; zuko's
/// `SOSPF` scales by the same B = 10 and instead puts a soft clip between layers.
public struct SOSPF: SerializablePlan {
    /// The number of sum-of-squares polynomial layers (default 5).
    public var layers: Int
    /// K, the squared polynomials per element (default 3).
    public var polynomials: Int
    /// L, each polynomial's degree (default 4).
    public var degree: Int
    /// B, the half-width of the interval each layer's polynomials act on (default 10; linear
    /// outside); `nil` for polynomials over the whole line.
    public var bound: Double?
    /// Each layer's MADE network (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A SOSPF flow of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of sum-of-squares polynomial autoregressive layers.
    ///   - polynomials: K, the squared polynomials per element.
    ///   - degree: L, each polynomial's degree.
    ///   - bound: B, the half-width of the interval each layer's polynomials act on (linear
    ///     outside); `nil` for polynomials over the whole line.
    ///   - conditioner: each layer's MADE network (each layer gets its own weights).
    public init(layers: Int = 5, polynomials: Int = 3, degree: Int = 4, bound: Double? = 10,
                conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.polynomials = polynomials
        self.degree = degree
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        let layer = SumOfSquaresPolynomialAutoregressive(polynomials: polynomials, degree: degree, bound: bound, conditioner: conditioner)
        return try stack(layers, Invert(layer), reversing: true, spec, &generator)
    }
}

/// A Bernstein polynomial flow (BPF; Ramasinghe et al. 2021): `layers` Bernstein polynomial
/// autoregressive layers (``BernsteinPolynomialAutoregressive``) in the MAF direction (the
/// density in one network pass per layer; sampling root-finds each dimension in D sequential
/// steps per layer), with reversed variable orders between layers.
public struct BPF: SerializablePlan {
    /// The number of Bernstein polynomial layers (default 5).
    public var layers: Int
    /// M, each polynomial's degree (default 16).
    public var degree: Int
    /// B, the half-width of the interval each polynomial acts on (default 5; linear outside).
    public var bound: Double
    /// Each layer's MADE network (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// A BPF flow of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: the number of Bernstein polynomial autoregressive layers.
    ///   - degree: M, each polynomial's degree.
    ///   - bound: B, the half-width of the interval each polynomial acts on (linear outside).
    ///   - conditioner: each layer's MADE network (each layer gets its own weights).
    public init(layers: Int = 5, degree: Int = 16, bound: Double = 5, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.degree = degree
        self.bound = bound
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Invert(BernsteinPolynomialAutoregressive(degree: degree, bound: bound, conditioner: conditioner)),
                  reversing: true, spec, &generator)
    }
}
