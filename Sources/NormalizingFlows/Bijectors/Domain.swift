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

    public var description: String {
        switch self {
        case .real: "ℝ"
        case .positive: "(0, ∞)"
        case .unitInterval: "(0, 1)"
        case .open(let a, let b): "(\(a), \(b))"
        case .greaterThan(let a): "(\(a), ∞)"
        }
    }

    /// The open interval as bounds (−∞ and ∞ where unbounded).
    public var bounds: (lower: Double, upper: Double) {
        switch self {
        case .real: (-.infinity, .infinity)
        case .positive: (0, .infinity)
        case .unitInterval: (0, 1)
        case .open(let a, let b): (a, b)
        case .greaterThan(let a): (a, .infinity)
        }
    }

    /// Whether `value` lies in the domain (NaN never does).
    public func contains(_ value: Double) -> Bool {
        let (a, b) = bounds
        return value > a && value < b
    }

    /// Throws ``FlowError/outsideDomain(_:)`` naming `what` and the first offending value when any
    /// element of `x` lies outside the domain, and ``FlowError/nonFiniteValues(_:)`` for NaN.
    public func check(_ x: Tensor, _ what: @autoclosure () -> String) throws {
        if self == .real && x.isFinite { return }
        for (i, v) in x.doubles.enumerated() where !contains(v) {
            if v.isNaN { throw FlowError.nonFiniteValues("\(what()): element \(i) is NaN") }
            throw FlowError.outsideDomain("\(what()): element \(i) = \(v) is not in \(self)")
        }
    }
}
