/// y = xᵖ on (0, ∞); log |f′(x)| = log |p| + (p − 1) log x.
public struct Power: ElementwiseFunction {
    /// p, finite and non-zero (default 2); negative p reverses the order on (0, ∞).
    public var exponent: Double

    /// y = xᵖ on (0, ∞).
    /// - Parameter exponent: p, finite and non-zero (default 2).
    public init(exponent: Double = 2) { self.exponent = exponent }

    /// (0, ∞), where xᵖ is defined and invertible for every p.
    public var domain: Domain { .positive }
    /// (0, ∞).
    public var codomain: Domain { .positive }

    public func validate() throws {
        guard exponent != 0, exponent.isFinite else {
            throw FlowError.invalidConfiguration("Power needs a finite non-zero exponent, got \(exponent)")
        }
    }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x.pow(exponent), x.log() * (exponent - 1) + Foundation.log(Swift.abs(exponent)))
    }

    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let q = 1 / exponent
        return (y.pow(q), y.log() * (q - 1) + Foundation.log(Swift.abs(q)))
    }
}

import Foundation

extension Power: SerializablePlan {}
