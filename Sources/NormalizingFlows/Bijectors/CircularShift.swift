import Foundation

/// A rotation of the circle, y = (x + s + π) mod 2π − π, on angles in [−π, π) with one raw
/// parameter s per element: the circular shift that zuko composes with its circular splines
/// (`CircularShiftTransform`) and that Rezende et al. (2020, "Normalizing Flows on Tori and
/// Spheres", ICML, section 3.2) compose with circular splines so that the points ±π, which a
/// circular spline keeps fixed, can move. A rotation preserves length: log |dy/dx| = 0.
///
/// The result is wrapped into [−π, π) exactly (see ``Domain/circle``); the wrap does not move the
/// derivative, ∂y/∂x = ∂y/∂s = 1. Inputs outside [−π, π) are refused by the bijectors built on it.
public struct CircularShiftTransform: ParametricElementwiseTransform, Codable {
    /// The shift transform; its one parameter per element is the angle s.
    public init() {}

    /// One raw parameter per element: the angle s, in radians.
    public var parameterCount: Int { 1 }
    /// s = 0, the identity.
    public var identityParameters: [Double] { [0] }
    /// Angles: ``Domain/circle``, [−π, π).
    public var domain: Domain { .circle }

    /// y = (x + s + π) mod 2π − π, and log |dy/dx| = 0.
    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        ((x + parameters.parameter(0)).wrappedAngles(), Tensor.zeros(like: x))
    }

    /// x = (y − s + π) mod 2π − π, and log |dx/dy| = 0.
    public func inverse(_ y: Tensor, parameters: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        ((y - parameters.parameter(0)).wrappedAngles(), Tensor.zeros(like: y))
    }
}

/// A circular shift of every element: by a fixed angle, or by a learned one per element (with a
/// context, the learned shift plus a linear map of the context, as for ``Affine``), see
/// ``CircularShiftTransform``. ``NCSF`` turns its splines' fixed points by a fixed half turn.
public struct CircularShift: SerializablePlan {
    /// Where the shift comes from.
    public enum Shift: Sendable, Equatable, Codable {
        /// The same angle for every element, in radians; no parameters.
        case fixed(Double)
        /// A learned angle per element, starting near 0.
        case learned
    }

    /// The shift: a fixed angle or a learned one per element (default learned).
    public var shift: Shift

    /// A circular shift of every element.
    /// - Parameter shift: a fixed angle or a learned one per element (default ``Shift/learned``).
    public init(_ shift: Shift = .learned) { self.shift = shift }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        switch shift {
        case .fixed(let angle):
            guard angle.isFinite else { throw FlowError.invalidConfiguration("a circular shift must be a finite angle, got \(angle)") }
            return try FixedCircularShift(angle: angle).makeBijector(for: spec, generator: &generator)
        case .learned:
            return try ParametricElementwiseBijector(transform: CircularShiftTransform(), spec: spec, generator: &generator)
        }
    }
}

/// ``CircularShiftTransform``'s map with a fixed angle, as a parameter-free function.
struct FixedCircularShift: ElementwiseFunction {
    var angle: Double
    var domain: Domain { .circle }
    var codomain: Domain { .circle }

    func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        ((x + angle).wrappedAngles(), Tensor.zeros(like: x))
    }

    func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        ((y - angle).wrappedAngles(), Tensor.zeros(like: y))
    }
}

extension Tensor {
    /// Each element z wrapped into [−π, π): z − 2π⌊(z + π)/2π⌋ (`wrapAngle`), recorded with
    /// derivative 1, which it has wherever it is continuous.
    func wrappedAngles() -> Tensor {
        func wrap<T: TensorScalar>(_: T.Type) -> Tensor {
            Tensor(shape: shape, as: T.self) { out in
                withUnsafeBufferPointer(as: T.self) { z in
                    // π rounded to nearest, as the spline kernels' bound (T.pi is rounded down).
                    let bound = T(Double.pi)
                    for i in 0..<z.count { out[i] = wrapAngle(z[i], bound: bound) }
                }
            }
        }
        let wrapped = switch dtype {
        case .float32: wrap(Float.self)
        case .float64: wrap(Double.self)
        }
        guard Tensor.recordsOperation(on: [self]) else { return wrapped }
        return Tensor.recordOperation("wrapAngles", output: wrapped, inputs: [self]) { g, _ in [g] }
    }
}
