import Foundation

/// Maps ℝᴰ onto a box of open intervals, element by element of the event, so that a flow on ℝᴰ
/// becomes a proper density on the data's support: put it last in a flow's plan (the data side).
///
/// For element k with bounds (a, b), w = b − a:
///
/// | bounds   | y = f(x)                | log f′(x)                   | x = f⁻¹(y)              |
/// |----------|-------------------------|-----------------------------|-------------------------|
/// | (a, b)   | a + w·σ(x)              | log w + log σ(x) + log σ(−x) | log(y − a) − log(b − y) |
/// | (a, ∞)   | a + softplus(x)         | log σ(x)                    | v + log(−expm1(−v)), v = y − a |
/// | (−∞, b)  | b − softplus(−x)        | log σ(−x)                   | −(v + log(−expm1(−v))), v = b − y |
/// | ℝ        | x                       | 0                           | y                       |
///
/// The inverse works from the distances to the bounds (y − a, b − y), which are exact near the
/// bounds, rather than from (y − a)/w, which rounds to 1 in Float32 short of b. A density on
/// the box is then log p(y) = log p_flow(f⁻¹(y)) + Σₖ log (f⁻¹)′(yₖ); points outside the box
/// are refused (``Domain/box(lower:upper:)`` is the codomain). This is the change of variables
/// that Stan and Pyro (`biject_to`) use for constrained parameters, applied to data.
///
/// ```swift
/// // Column 0 in (0, 1), column 1 positive, column 2 unbounded.
/// let plan = Compose([MAF(layers: 5), Bounds(lower: [0, 0, -.infinity], upper: [1, .infinity, .infinity])])
/// ```
public struct Bounds: BijectorPlan, Sendable, Equatable {
    /// Each element's lower bound (−∞ where unbounded below), in the event's row-major order.
    public var lower: [Double]
    /// Each element's upper bound (∞ where unbounded above).
    public var upper: [Double]

    /// Per-element bounds; the map chosen for each element depends on which bounds are finite.
    /// - Parameters:
    ///   - lower: each element's lower bound (−∞ where unbounded below), one per event element.
    ///   - upper: each element's upper bound (∞ where unbounded above), above `lower`.
    public init(lower: [Double], upper: [Double]) {
        self.lower = lower
        self.upper = upper
    }

    /// Throws unless there is one finite-or-infinite pair per element with lower < upper.
    public func validate(eventSize: Int) throws {
        guard lower.count == eventSize, upper.count == eventSize else {
            throw FlowError.invalidConfiguration("Bounds needs one lower and one upper bound per element of the event (\(eventSize)), got \(lower.count) and \(upper.count)")
        }
        for k in 0..<eventSize {
            let (a, b) = (lower[k], upper[k])
            guard !a.isNaN, !b.isNaN, a < b, a != .infinity, b != -.infinity else {
                throw FlowError.invalidConfiguration("Bounds: element \(k) has lower bound \(a) and upper bound \(b); each needs lower < upper, lower < ∞ and upper > −∞")
            }
        }
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try validate(eventSize: spec.eventSize)
        return BoundsBijector(lower: lower, upper: upper, eventShape: spec.eventShape, dtype: spec.dtype)
    }
}

extension Bounds: SerializablePlan {
    private enum CodingKeys: String, CodingKey { case lower, upper }

    /// Infinite bounds are written as `null`, which JSON can hold.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lower.map { $0.isFinite ? $0 : nil }, forKey: .lower)
        try container.encode(upper.map { $0.isFinite ? $0 : nil }, forKey: .upper)
    }

    /// Reads bounds written by ``encode(to:)``, with `null` read back as an infinite bound.
    /// - Parameter decoder: the decoder of the model file's plan.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        lower = try container.decode([Double?].self, forKey: .lower).map { $0 ?? -.infinity }
        upper = try container.decode([Double?].self, forKey: .upper).map { $0 ?? .infinity }
    }
}

/// ``Bounds`` made concrete: the bounds as constant tensors of the event's shape, and which
/// formula each element takes.
final class BoundsBijector: Bijector {
    let eventShape: [Int]
    let lower: [Double], upper: [Double]
    /// 1 where the element has both bounds, only a lower one, only an upper one.
    private let bothBounds: Tensor, lowerOnly: Tensor, upperOnly: Tensor
    /// The finite bounds (0 where infinite), log w (0 where not both finite), and the bounds
    /// moved one step inward in the dtype (±∞ where infinite), which outputs are kept within.
    private let a: Tensor, b: Tensor, logWidth: Tensor, inwardLower: Tensor, inwardUpper: Tensor

    init(lower: [Double], upper: [Double], eventShape: [Int], dtype: DType) {
        self.eventShape = eventShape
        self.lower = lower
        self.upper = upper
        func constant(_ values: [Double]) -> Tensor { Tensor(values, shape: eventShape, dtype: dtype) }
        let pairs = Array(zip(lower, upper))
        bothBounds = constant(pairs.map { $0.isFinite && $1.isFinite ? 1 : 0 })
        lowerOnly = constant(pairs.map { $0.isFinite && !$1.isFinite ? 1 : 0 })
        upperOnly = constant(pairs.map { !$0.isFinite && $1.isFinite ? 1 : 0 })
        a = constant(lower.map { $0.isFinite ? $0 : 0 })
        b = constant(upper.map { $0.isFinite ? $0 : 0 })
        logWidth = constant(pairs.map { $0.isFinite && $1.isFinite ? Foundation.log($1 - $0) : 0 })
        let float = dtype == .float32
        inwardLower = constant(lower.map { !$0.isFinite ? $0 : float ? Double(Float($0).nextUp) : $0.nextUp })
        inwardUpper = constant(upper.map { !$0.isFinite ? $0 : float ? Double(Float($0).nextDown) : $0.nextDown })
    }

    var codomain: Domain { .box(lower: lower, upper: upper) }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        _ = try leadingShape(of: x, "input")
        let logSigmoid = x.logSigmoid(), logSigmoidOfNegative = x.negated().logSigmoid()
        let y = `where`(bothBounds, a + (b - a) * x.sigmoid(),
                `where`(lowerOnly, a + x.softplus(),
                `where`(upperOnly, b - x.negated().softplus(), x)))
        let logDerivative = `where`(bothBounds, logWidth + logSigmoid + logSigmoidOfNegative,
                            `where`(lowerOnly, logSigmoid,
                            `where`(upperOnly, logSigmoidOfNegative, Tensor.zeros(like: x))))
        // σ(x) rounds to 1 from x ≈ 17 in Float32: outputs are kept strictly inside the box.
        return (minimum(maximum(y, inwardLower), inwardUpper), sumOverEvent(logDerivative))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        _ = try leadingShape(of: y, "input")
        try codomain.check(y, "input of Bounds.inverse")
        // The distances to each finite bound, 1 where that formula does not apply, so that no
        // unused branch takes the log of a negative number.
        let aboveLower = `where`(bothBounds + lowerOnly, y - a, Tensor.ones(like: y))
        let belowUpper = `where`(bothBounds + upperOnly, b - y, Tensor.ones(like: y))
        let logAbove = aboveLower.log(), logBelow = belowUpper.log()
        // softplus⁻¹(v) = v + log(−expm1(−v)), and log (softplus⁻¹)′(v) = −log σ(softplus⁻¹(v)).
        let fromLower = aboveLower + aboveLower.negated().expm1().negated().log()
        let fromUpper = (belowUpper + belowUpper.negated().expm1().negated().log()).negated()
        let x = `where`(bothBounds, logAbove - logBelow,
                `where`(lowerOnly, fromLower,
                `where`(upperOnly, fromUpper, y)))
        let logDerivative = `where`(bothBounds, logWidth - logAbove - logBelow,
                            `where`(lowerOnly, fromLower.logSigmoid().negated(),
                            `where`(upperOnly, fromUpper.negated().logSigmoid().negated(), Tensor.zeros(like: y))))
        return (x, sumOverEvent(logDerivative))
    }
}
