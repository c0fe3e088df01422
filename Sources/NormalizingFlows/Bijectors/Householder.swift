/// A product of Householder reflections (Tomczak & Welling 2016): y = H_K⋯H₁x on events
/// flattened to vectors, H = I − 2vvᵀ/‖v‖². Orthogonal, so log |det J| = 0; the inverse
/// applies the reflections in reverse order. O(KD) per point both ways.
public struct Householder: SerializablePlan {
    /// K; by default the event size.
    public var reflections: Int?

    public init(reflections: Int? = nil) { self.reflections = reflections }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        let k = reflections ?? spec.eventSize
        guard k >= 1 else { throw FlowError.invalidConfiguration("Householder needs at least one reflection") }
        return HouseholderBijector(reflections: k, spec: spec, generator: &generator)
    }
}

final class HouseholderBijector: Bijector {
    let eventShape: [Int]
    let vectors: Parameter

    init(reflections k: Int, spec: BijectorSpec, generator: inout RandomGenerator) {
        eventShape = spec.eventShape
        vectors = Parameter(.randn([k, spec.eventSize], generator: &generator, dtype: spec.dtype), name: "vectors")
    }

    private func reflect(_ x: Tensor, order: [Int]) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: x, "input")
        var h = x.reshaped(to: leading + [vectors.shape[1]])
        for i in order {
            let v = vectors.value.select(alongAxis: 0, index: i)
            h = h - ((h * v).sum(alongAxis: -1, keepingDimensions: true) * v) * (2 / (v.square().sum() + 1e-30))
        }
        return (h.reshaped(to: x.shape), Tensor.zeros(leading, dtype: x.dtype))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try reflect(x, order: Array(0..<vectors.shape[0]))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try reflect(y, order: Array((0..<vectors.shape[0]).reversed()))
    }
}
