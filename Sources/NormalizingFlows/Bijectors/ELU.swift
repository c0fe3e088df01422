/// y = x for x > 0 and α(eˣ − 1) otherwise (Clevert et al. 2016), from ℝ onto (−α, ∞);
/// log f′(x) = 0 for x > 0 and log α + x otherwise.
public struct ELU: ElementwiseFunction {
    /// α > 0, the negative saturation value −α and the slope α at 0⁻ (default 1).
    public var alpha: Double

    /// An ELU bijection onto (−α, ∞).
    /// - Parameter alpha: α > 0 (default 1, where the derivative is continuous at 0).
    public init(alpha: Double = 1) { self.alpha = alpha }

    /// (−α, ∞): the ELU never reaches −α.
    public var codomain: Domain { .greaterThan(-alpha) }

    public func validate() throws {
        guard alpha > 0, alpha.isFinite else {
            throw FlowError.invalidConfiguration("ELU needs α > 0, got \(alpha)")
        }
    }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        let positive = x.isGreater(than: 0)
        let negativePart = x.clamped(max: 0)
        return (x.elu(alpha: alpha), negativePart + Foundation.log(alpha) * (1 - positive))
    }

    /// x = y for y > 0 and log(1 + y/α) otherwise; log (f⁻¹)′(y) = −log(y + α) for y ≤ 0.
    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let positive = y.isGreater(than: 0)
        let negativePart = y.clamped(max: 0)
        let x = `where`(positive, y, (negativePart / alpha).log1p())
        return (x, (negativePart + alpha).log().negated() * (1 - positive))
    }
}

import Foundation

extension ELU: SerializablePlan {}
