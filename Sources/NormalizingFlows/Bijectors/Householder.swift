/// A product of Householder reflections (Tomczak & Welling 2016): y = H_K⋯H₁x on events
/// flattened to vectors, H = I − 2vvᵀ/‖v‖². Orthogonal, so log |det J| = 0; the inverse
/// applies the reflections in reverse order. O(KD) per point both ways.
///
/// **Conditional.** In a flow with a context (Pyro's `ConditionalHouseholder`), the vectors are
/// shifted by a dense network of the context (``contextNetwork``): v_k(c) = v_k + g_k(c), so
/// each context gets its own orthogonal map. The network starts at zero: a new conditional layer
/// is the unconditional one.
public struct Householder: SerializablePlan {
    /// K; by default the event size.
    public var reflections: Int?
    /// The hidden sizes and activation of the network from the context to the shifts of the
    /// vectors, in a flow with a context; `nil` (the default) for two hidden layers of 10·D
    /// units. Unused without a context.
    public var contextNetwork: CouplingNetwork?

    /// A product of K Householder reflections I − 2vvᵀ/‖v‖², volume preserving.
    ///
    /// - Parameters:
    ///   - reflections: K ≥ 1; `nil` for the event size.
    ///   - contextNetwork: the network from a context to the shifts of the vectors; `nil` for two
    ///     hidden layers of 10·D units.
    public init(reflections: Int? = nil, contextNetwork: CouplingNetwork? = nil) {
        self.reflections = reflections
        self.contextNetwork = contextNetwork
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        let k = reflections ?? spec.eventSize
        guard k >= 1 else { throw FlowError.invalidConfiguration("Householder needs at least one reflection") }
        return try HouseholderBijector(reflections: k, spec: spec, contextNetwork: contextNetwork, generator: &generator)
    }
}

final class HouseholderBijector: Bijector {
    let eventShape: [Int]
    let vectors: Parameter
    /// With a context: the network that shifts the vectors.
    let contextNetwork: ContextParameterNetwork?

    init(reflections k: Int, spec: BijectorSpec, contextNetwork: CouplingNetwork?, generator: inout RandomGenerator) throws {
        eventShape = spec.eventShape
        vectors = Parameter(.randn([k, spec.eventSize], generator: &generator, dtype: spec.dtype), name: "vectors")
        self.contextNetwork = spec.contextSize > 0
            ? try ContextParameterNetwork(contextSize: spec.contextSize, shifting: [[k, spec.eventSize]],
                                          shape: contextNetwork ?? .contextNetworkDefault(eventSize: spec.eventSize),
                                          dtype: spec.dtype, generator: &generator)
            : nil
    }

    private func reflect(_ x: Tensor, context: Tensor?, reversed: Bool) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: x, "input")
        let vectors = try contextNetwork.shifting([vectors.value], for: context, eventsLeading: leading)[0]
        var h = x.reshaped(to: leading + [self.vectors.shape[1]])
        let k = self.vectors.shape[0]
        for i in reversed ? Array((0..<k).reversed()) : Array(0..<k) {
            let v = vectors.select(alongAxis: vectors.rank - 2, index: i)
            h = h - ((h * v).sum(alongAxis: -1, keepingDimensions: true) * v)
                * (2 / (v.square().sum(alongAxis: -1, keepingDimensions: true) + 1e-30))
        }
        return (h.reshaped(to: x.shape), Tensor.zeros(leading, dtype: x.dtype))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try reflect(x, context: context, reversed: false)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try reflect(y, context: context, reversed: true)
    }
}
