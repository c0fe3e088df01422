/// y = tanh x, from ℝ onto (−1, 1); log f′(x) = log(1 − tanh² x) = 2(log 2 − x − softplus(−2x)),
/// which stays finite where 1 − tanh² x underflows.
///
/// Outputs are kept strictly inside (−1, 1) after rounding.
public struct Tanh: ElementwiseFunction {
    /// The hyperbolic tangent; it has no settings.
    public init() {}
    /// (−1, 1).
    public var codomain: Domain { .open(lower: -1, upper: 1) }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let logDerivative = ((x + (x * -2).softplus()) * -2) + 2 * Foundation.log(2.0)
        return (x.tanh().keptInside(lower: -1, upper: 1), logDerivative)
    }

    /// x = atanh y = ½(log1p(y) − log1p(−y)); log (f⁻¹)′(y) = −log(1 − y²).
    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let a = y.log1p(), b = y.negated().log1p()
        return ((a - b) * 0.5, (a + b).negated())
    }
}

import Foundation

extension Tanh: SerializablePlan {}
