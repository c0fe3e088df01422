/// y = xᵖ on (0, ∞); log |f′(x)| = log |p| + (p − 1) log x.
public struct Power: ElementwiseFunction {
    public var exponent: Double

    public init(exponent: Double = 2) { self.exponent = exponent }

    public var domain: Domain { .positive }
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
