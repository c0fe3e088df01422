/// Errors from user-facing entry points: bad shapes, values outside a domain, invalid settings.
public enum FlowError: Error, Equatable, CustomStringConvertible {
    /// A tensor's shape does not fit what the flow or bijector expects.
    case shapeMismatch(String)
    /// Values lie outside the domain of a bijector (or the support of a flow).
    case outsideDomain(String)
    /// NaN or ±∞ where finite numbers are required.
    case nonFiniteValues(String)
    /// A hyperparameter or option that cannot work.
    case invalidConfiguration(String)
    /// A saved state that does not match the model it is loaded into.
    case stateMismatch(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let m): "shape mismatch: \(m)"
        case .outsideDomain(let m): "outside the domain: \(m)"
        case .nonFiniteValues(let m): "non-finite values: \(m)"
        case .invalidConfiguration(let m): "invalid configuration: \(m)"
        case .stateMismatch(let m): "state mismatch: \(m)"
        }
    }
}
