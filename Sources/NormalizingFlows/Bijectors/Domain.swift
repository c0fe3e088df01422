/// The set of values a bijector accepts (its domain) or produces (its codomain), elementwise.
public enum Domain: Sendable, Equatable, CustomStringConvertible {
    /// All real numbers.
    case real
    /// x > 0.
    case positive
    /// 0 < x < 1.
    case unitInterval
    /// lower < x < upper.
    case open(lower: Double, upper: Double)
    /// x > lower.
    case greaterThan(Double)
    /// lower[k] < x < upper[k] for the k-th element of each event (row-major; ±∞ where
    /// unbounded): a different interval per element, as ``Bounds`` produces.
    case box(lower: [Double], upper: [Double])
    /// Angles: −π ≤ x < π, a circle on which −π and π are one point (circular splines and
    /// shifts, Rezende et al. 2020). Its lower end is −π rounded to the nearest float32, which
    /// lies just below the real −π, so that float32 data at −π count as inside.
    case circle

    /// The domain as a reader writes it: "ℝ", "(0, ∞)", "[−π, π)" or a box's intervals.
    public var description: String {
        switch self {
        case .real: "ℝ"
        case .positive: "(0, ∞)"
        case .unitInterval: "(0, 1)"
        case .open(let a, let b): "(\(a), \(b))"
        case .greaterThan(let a): "(\(a), ∞)"
        case .box(let lower, let upper): zip(lower, upper).map(Self.interval).joined(separator: " × ")
        case .circle: "[−π, π)"
        }
    }

    /// "(a, b)", with −∞ and ∞ for infinite ends.
    static func interval(_ a: Double, _ b: Double) -> String {
        "(\(a.isFinite ? "\(a)" : "−∞"), \(b.isFinite ? "\(b)" : "∞"))"
    }

    /// The open interval as bounds (−∞ and ∞ where unbounded); for a box, the smallest interval
    /// holding every element's (see ``bounds(ofElement:)``).
    public var bounds: (lower: Double, upper: Double) {
        switch self {
        case .real: (-.infinity, .infinity)
        case .positive: (0, .infinity)
        case .unitInterval: (0, 1)
        case .open(let a, let b): (a, b)
        case .greaterThan(let a): (a, .infinity)
        case .box(let lower, let upper): (lower.min() ?? -.infinity, upper.max() ?? .infinity)
        case .circle: (-.pi, .pi)
        }
    }

    /// The bounds of the element at flat index `index` of a tensor of events.
    public func bounds(ofElement index: Int) -> (lower: Double, upper: Double) {
        guard case .box(let lower, let upper) = self, !lower.isEmpty else { return bounds }
        return (lower[index % lower.count], upper[index % upper.count])
    }

    /// −π rounded to the nearest float32 (−3.1415927, below −π; `Float.pi` is rounded down).
    static let circleLowerEnd = -Double(Float(Double.pi))

    /// Whether `value` lies in the domain (NaN never does); for a box, in its element `index`'s interval.
    public func contains(_ value: Double, atElement index: Int = 0) -> Bool {
        if self == .circle { return value >= Self.circleLowerEnd && value < .pi }
        let (a, b) = bounds(ofElement: index)
        return value > a && value < b
    }

    /// Throws ``FlowError/outsideDomain(_:)`` naming `what` and the first offending value when any
    /// element of `x` lies outside the domain, and ``FlowError/nonFiniteValues(_:)`` for NaN.
    public func check(_ x: Tensor, _ what: @autoclosure () -> String) throws {
        if self == .real && x.isFinite { return }
        for (i, v) in x.doubles.enumerated() where !contains(v, atElement: i) {
            if v.isNaN { throw FlowError.nonFiniteValues("\(what()): element \(i) is NaN") }
            if case .box(let lower, _) = self {
                let (a, b) = bounds(ofElement: i)
                throw FlowError.outsideDomain("\(what()): element \(i) = \(v) (element \(i % lower.count) of its event) is not in \(Self.interval(a, b))")
            }
            throw FlowError.outsideDomain("\(what()): element \(i) = \(v) is not in \(self)")
        }
    }
}
