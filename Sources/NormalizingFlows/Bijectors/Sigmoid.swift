/// y = σ(x) = 1/(1 + e⁻ˣ), from ℝ onto (0, 1); log σ′(x) = log σ(x) + log σ(−x).
///
/// Outputs are kept strictly inside (0, 1) after rounding, so they stay in the codomain.
public struct Sigmoid: ElementwiseFunction {
    /// The logistic sigmoid; it has no settings.
    public init() {}
    /// (0, 1).
    public var codomain: Domain { .unitInterval }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x.sigmoid().keptInside(lower: 0, upper: 1), x.logSigmoid() + x.negated().logSigmoid())
    }

    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let logY = y.log(), log1mY = y.negated().log1p()
        return (logY - log1mY, -(logY + log1mY))
    }
}

extension Sigmoid: SerializablePlan {}
