/// A fixed (parameter-free) bijection applied to every element independently.
///
/// A type conforming to this protocol is also a ``BijectorPlan``: the flow makes it concrete for
/// any event shape, and its log-determinant is the sum of the elementwise log-derivatives.
/// Writing one takes the function, its inverse and the log of the derivative:
///
/// ```swift
/// struct Cube: ElementwiseFunction {
///     func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
///         (x.pow(3), (x.square() * 3).log())
///     }
///     ...
/// }
/// ```
public protocol ElementwiseFunction: BijectorPlan {
    /// Where the function is defined; inputs of ``Flow/logProb(_:context:)`` outside it have no density.
    var domain: Domain { get }
    /// The image of the domain: the values the function's outputs take.
    var codomain: Domain { get }
    /// y = f(x) and log |f′(x)|, elementwise.
    func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor)
    /// x = f⁻¹(y) and log |(f⁻¹)′(y)|, elementwise.
    func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor)
    /// Throws when the settings cannot work (checked when the plan is made concrete).
    func validate() throws
}

extension ElementwiseFunction {
    /// All of ℝ, unless a conforming type says otherwise.
    public var domain: Domain { .real }
    /// All of ℝ, unless a conforming type says otherwise.
    public var codomain: Domain { .real }
    public func validate() throws {}

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try validate()
        return ElementwiseBijector(function: self, eventShape: spec.eventShape)
    }
}

/// An ``ElementwiseFunction`` made concrete for an event shape.
final class ElementwiseBijector<Function: ElementwiseFunction>: Bijector {
    let function: Function
    let eventShape: [Int]

    init(function: Function, eventShape: [Int]) {
        self.function = function
        self.eventShape = eventShape
    }

    var domain: Domain { function.domain }
    var codomain: Domain { function.codomain }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        _ = try leadingShape(of: x, "input")
        try function.domain.check(x, "input of \(Function.self).forward")
        let (y, d) = function.forward(x)
        return (y, sumOverEvent(d))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        _ = try leadingShape(of: y, "input")
        try function.codomain.check(y, "input of \(Function.self).inverse")
        let (x, d) = function.inverse(y)
        return (x, sumOverEvent(d))
    }
}

extension Tensor {
    /// Keeps values strictly inside (lower, upper) after rounding: a function whose exact values
    /// lie in an open interval can round onto its ends in Float32 (σ(20) rounds to 1).
    func keptInside(lower: Double, upper: Double) -> Tensor {
        let (lo, hi): (Double, Double) = dtype == .float32
            ? (Double(Float(lower).nextUp), Double(Float(upper).nextDown))
            : (lower.nextUp, upper.nextDown)
        return clamped(min: lo, max: hi)
    }
}
