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
    /// An iterative computation (an inverse without closed form, an orthogonalisation) that did
    /// not reach its tolerance: no approximate value is returned in its place. `row` is the index
    /// of the point (counting events in the input's order) whose iteration failed, `nil` when the
    /// iteration is on the parameters.
    case notConverged(row: Int?, String)

    /// The message for the case, prefixed by its kind ("shape mismatch: …"), for `error:` lines.
    public var description: String {
        switch self {
        case .shapeMismatch(let m): "shape mismatch: \(m)"
        case .outsideDomain(let m): "outside the domain: \(m)"
        case .nonFiniteValues(let m): "non-finite values: \(m)"
        case .invalidConfiguration(let m): "invalid configuration: \(m)"
        case .stateMismatch(let m): "state mismatch: \(m)"
        case .notConverged(let row?, let m): "not converged at row \(row): \(m)"
        case .notConverged(nil, let m): "not converged: \(m)"
        }
    }
}
