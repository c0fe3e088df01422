/// A bijection of events whose Jacobian determinant is ±1, given as a pair of functions; the
/// log-determinant is zero in both directions (FlowTorch's `VolumePreserving`). ``Permute`` is
/// one; a rotation or a fixed shift are others.
///
/// ```swift
/// let rotate = VolumePreserving(name: "rotation",
///     forward: { matmul($0, rotation, transposeB: true) },
///     inverse: { matmul($0, rotation) })
/// ```
public struct VolumePreserving: BijectorPlan {
    /// A name for the map, used in error messages (a map that changes the shape is reported by it).
    public var name: String
    /// y = f(x) for events of shape [..., event shape]; it must keep the shape and |det ∂f/∂x| = 1.
    public var forward: @Sendable (Tensor) -> Tensor
    /// x = f⁻¹(y), the exact inverse of ``forward``.
    public var inverse: @Sendable (Tensor) -> Tensor

    /// A volume-preserving plan from a function and its inverse (neither is checked).
    /// - Parameters:
    ///   - name: a name for the map.
    ///   - forward: y = f(x); shape-preserving, with |det ∂f/∂x| = 1.
    ///   - inverse: x = f⁻¹(y).
    public init(name: String, forward: @escaping @Sendable (Tensor) -> Tensor, inverse: @escaping @Sendable (Tensor) -> Tensor) {
        self.name = name
        self.forward = forward
        self.inverse = inverse
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        VolumePreservingBijector(plan: self, eventShape: spec.eventShape)
    }
}

final class VolumePreservingBijector: Bijector {
    let plan: VolumePreserving
    let eventShape: [Int]

    init(plan: VolumePreserving, eventShape: [Int]) {
        self.plan = plan
        self.eventShape = eventShape
    }

    private func apply(_ f: (Tensor) -> Tensor, _ x: Tensor) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: x, "input")
        let y = f(x)
        guard y.shape == x.shape else {
            throw FlowError.shapeMismatch("volume-preserving map '\(plan.name)' changed shape \(x.shape) to \(y.shape)")
        }
        return (y, Tensor.zeros(leading, dtype: x.dtype))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try apply(plan.forward, x)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try apply(plan.inverse, y)
    }
}
