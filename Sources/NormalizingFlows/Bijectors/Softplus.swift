/// y = log(1 + eˣ), from ℝ onto (0, ∞); log f′(x) = log σ(x).
public struct Softplus: ElementwiseFunction {
    /// The softplus map; it has no settings.
    public init() {}
    /// (0, ∞).
    public var codomain: Domain { .positive }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x.softplus(), x.logSigmoid())
    }

    /// x = y + log(1 − e⁻ʸ) = y + log(−expm1(−y)); log (f⁻¹)′(y) = −log σ(x).
    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let x = y + y.negated().expm1().negated().log()
        return (x, x.logSigmoid().negated())
    }
}

extension Softplus: SerializablePlan {}
