/// Reorders the elements of each event (flattened to a vector): y_k = x_{π(k)}; volume
/// preserving, so the log-determinant is zero.
///
/// Put it between autoregressive layers so each layer conditions in a different order. A random
/// permutation is drawn when the plan is made concrete and saved with the model as a buffer
/// (FlowTorch 0.8 lost it on save and load).
public struct Permute: BijectorPlan {
    public var order: VariableOrder

    public init(_ order: VariableOrder = .random) { self.order = order }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        PermuteBijector(permutation: try order.permutation(spec.eventSize, generator: &generator), eventShape: spec.eventShape)
    }
}

final class PermuteBijector: Bijector {
    private(set) var permutation: [Int]
    private(set) var inversePermutation: [Int]
    let eventShape: [Int]

    init(permutation: [Int], eventShape: [Int]) {
        self.permutation = permutation
        self.inversePermutation = Self.invert(permutation)
        self.eventShape = eventShape
    }

    private static func invert(_ p: [Int]) -> [Int] {
        var inverse = [Int](repeating: 0, count: p.count)
        for (k, i) in p.enumerated() { inverse[i] = k }
        return inverse
    }

    var namedBuffers: [(name: String, value: Tensor)] { [("permutation", Tensor(permutation.map(Double.init), dtype: .float64))] }

    func loadBuffer(named name: String, _ value: Tensor) throws {
        let p = value.doubles.map { Int($0) }
        guard name == "permutation", p.sorted() == Array(0..<permutation.count) else {
            throw FlowError.stateMismatch("'\(name)' = \(value.doubles) is not a permutation buffer of size \(permutation.count)")
        }
        permutation = p
        inversePermutation = Self.invert(p)
    }

    private func apply(_ p: [Int], _ x: Tensor) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: x, "input")
        let flat = x.reshaped(to: leading + [permutation.count])
        return (flat.indexSelect(alongAxis: -1, p).reshaped(to: x.shape), Tensor.zeros(leading, dtype: x.dtype))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try apply(permutation, x)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try apply(inversePermutation, y)
    }
}

extension Permute: SerializablePlan {
    public static var typeName: String { "Permute" }
}
