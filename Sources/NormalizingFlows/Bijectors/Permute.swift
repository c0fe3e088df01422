/// Reorders the elements of each event (flattened to a vector): y_k = x_π(k); volume
/// preserving, so the log-determinant is zero.
///
/// Put it between autoregressive layers so each layer conditions in a different order. A random
/// permutation is drawn when the plan is made concrete and saved with the model as a buffer
/// (FlowTorch 0.8 lost it on save and load).
public struct Permute: BijectorPlan {
    /// The permutation to apply (default ``VariableOrder/random``, drawn when the plan is made concrete).
    public var order: VariableOrder

    /// A permutation plan.
    /// - Parameter order: the permutation (default: random, drawn once and saved with the model).
    public init(_ order: VariableOrder = .random) { self.order = order }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        PermuteBijector(permutation: try order.permutation(spec.eventSize, generator: &generator), eventShape: spec.eventShape)
    }
}

final class PermuteBijector: Bijector {
    /// The permutation as Float64 values, so model files keep a random one.
    let permutation: Buffer
    private var order: [Int]
    private var inverseOrder: [Int]
    let eventShape: [Int]

    init(permutation: [Int], eventShape: [Int]) {
        self.permutation = Buffer(Tensor(permutation.map(Double.init), dtype: .float64))
        self.order = permutation
        self.inverseOrder = Self.invert(permutation)
        self.eventShape = eventShape
    }

    private static func invert(_ p: [Int]) -> [Int] {
        var inverse = [Int](repeating: 0, count: p.count)
        for (k, i) in p.enumerated() { inverse[i] = k }
        return inverse
    }

    func buffersDidLoad() throws {
        order = try permutation.value.permutation(of: order.count, "permutation")
        inverseOrder = Self.invert(order)
    }

    private func apply(_ p: [Int], _ x: Tensor) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: x, "input")
        let flat = x.reshaped(to: leading + [order.count])
        return (flat.indexSelect(alongAxis: -1, p).reshaped(to: x.shape), Tensor.zeros(leading, dtype: x.dtype))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try apply(order, x)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try apply(inverseOrder, y)
    }
}

extension Permute: SerializablePlan {}

extension Tensor {
    /// The values as a permutation of 0..<n, checked without trusting them: each must be a whole
    /// number in range (a saved buffer may hold anything, 1e300 included) and none may repeat.
    /// - Throws: ``FlowError/stateMismatch(_:)`` naming the buffer.
    func permutation(of n: Int, _ name: String) throws -> [Int] {
        let values = doubles
        var seen = [Bool](repeating: false, count: n)
        let valid = values.count == n && values.allSatisfy { v in
            guard v >= 0, v < Double(n), v == v.rounded(), !seen[Int(v)] else { return false }
            seen[Int(v)] = true
            return true
        }
        guard valid else { throw FlowError.stateMismatch("the buffer '\(name)' does not hold a permutation of 0..<\(n)") }
        return values.map { Int($0) }
    }
}
