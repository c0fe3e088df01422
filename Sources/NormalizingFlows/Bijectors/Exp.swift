/// y = eˣ, from ℝ onto (0, ∞); log |f′(x)| = x.
public struct Exp: ElementwiseFunction {
    /// The exponential map; it has no settings.
    public init() {}
    /// (0, ∞).
    public var codomain: Domain { .positive }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) { (x.exp(), x) }

    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        let x = y.log()
        return (x, -x)
    }
}

extension Exp: SerializablePlan {}
