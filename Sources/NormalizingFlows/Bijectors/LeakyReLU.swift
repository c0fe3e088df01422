/// y = x for x > 0 and slope·x otherwise; log f′(x) = 0 or log slope.
public struct LeakyReLU: ElementwiseFunction {
    /// The slope for x ≤ 0, positive so the map is invertible (default 0.01).
    public var negativeSlope: Double

    /// A leaky ReLU bijection of ℝ.
    /// - Parameter negativeSlope: the slope for x ≤ 0, positive and finite (default 0.01).
    public init(negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope }

    public func validate() throws {
        guard negativeSlope > 0, negativeSlope.isFinite else {
            throw FlowError.invalidConfiguration("LeakyReLU needs a positive slope to be invertible, got \(negativeSlope)")
        }
    }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x.leakyRelu(negativeSlope: negativeSlope), (1 - x.isGreater(than: 0)) * Foundation.log(negativeSlope))
    }

    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        (y.leakyRelu(negativeSlope: 1 / negativeSlope), (1 - y.isGreater(than: 0)) * -Foundation.log(negativeSlope))
    }
}

import Foundation

extension LeakyReLU: SerializablePlan {}
