/// Batch normalisation as a bijector (Dinh, Sohl-Dickstein & Bengio 2017; Papamakarios et al.
/// 2017), in the normalising (inverse, data → noise) direction:
/// x = (y − m)/√(v + ε)·e^γ + β per element, log |det ∂x/∂y| = Σ (γ − ½ log(v + ε)).
///
/// In training mode (``Flow/isTraining``) the inverse uses the batch mean m and variance v (gradients
/// flow through them) and updates running averages with `momentum`; otherwise both directions
/// use the running averages, and the layer is an exact bijection. The running averages are
/// buffers saved with the model.
public struct BatchNorm: SerializablePlan {
    /// The weight of each batch in the running averages, r ← (1 − momentum)·r + momentum·batch, in
    /// (0, 1] (default 0.1, PyTorch's).
    public var momentum: Double
    /// ε > 0 added to the variance before the square root, so a constant element does not divide by
    /// zero (default 10⁻⁵).
    public var epsilon: Double

    /// A batch-normalisation plan; γ and β start at the identity (log γ = β = 0), the running mean at
    /// 0 and the running variance at 1.
    /// - Parameters:
    ///   - momentum: the batch's weight in the running averages, in (0, 1] (default 0.1).
    ///   - epsilon: ε > 0 added to the variance (default 10⁻⁵).
    public init(momentum: Double = 0.1, epsilon: Double = 1e-5) {
        self.momentum = momentum
        self.epsilon = epsilon
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard momentum > 0 && momentum <= 1, epsilon > 0 else {
            throw FlowError.invalidConfiguration("BatchNorm needs 0 < momentum ≤ 1 and ε > 0")
        }
        return BatchNormBijector(plan: self, spec: spec)
    }
}

final class BatchNormBijector: Bijector {
    let eventShape: [Int]
    let plan: BatchNorm
    let logGamma: Parameter, beta: Parameter
    let runningMean: Buffer, runningVariance: Buffer
    private var isTraining = false

    init(plan: BatchNorm, spec: BijectorSpec) {
        self.plan = plan
        eventShape = spec.eventShape
        logGamma = Parameter(.zeros(spec.eventShape, dtype: spec.dtype), name: "log_gamma")
        beta = Parameter(.zeros(spec.eventShape, dtype: spec.dtype), name: "beta")
        runningMean = Buffer(.zeros(spec.eventShape, dtype: spec.dtype))
        runningVariance = Buffer(.ones(spec.eventShape, dtype: spec.dtype))
    }

    /// Training normalises by the batch's statistics and updates the running ones.
    var rowsAreIndependent: Bool { false }

    func trainingModeDidChange(_ isTraining: Bool) { self.isTraining = isTraining }

    func buffersDidLoad() throws {
        guard runningVariance.value.doubles.allSatisfy({ $0 > 0 }) else {
            throw FlowError.stateMismatch("BatchNorm running variance must be positive")
        }
    }

    private func logDet(_ variance: Tensor, leading: [Int]) -> Tensor {
        (logGamma.value - (variance + plan.epsilon).log() * 0.5).sum().broadcast(to: leading)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let y = (x - beta.value) * logGamma.value.negated().exp() * (runningVariance.value + plan.epsilon).sqrt() + runningMean.value
        return (y, logDet(runningVariance.value, leading: leading).negated())
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let rows = leading.reduce(1, *)
        var mean = runningMean.value, variance = runningVariance.value
        if isTraining && rows >= 2 {
            let flat = y.reshaped(to: [rows] + eventShape)
            mean = flat.mean(alongAxis: 0)
            variance = (flat - mean).square().mean(alongAxis: 0)
            withoutGradients {
                let unbiased = variance.detached() * (Double(rows) / Double(rows - 1))
                runningMean.value = runningMean.value * (1 - plan.momentum) + mean.detached() * plan.momentum
                runningVariance.value = runningVariance.value * (1 - plan.momentum) + unbiased * plan.momentum
            }
        }
        let x = (y - mean) / (variance + plan.epsilon).sqrt() * logGamma.value.exp() + beta.value
        return (x, logDet(variance, leading: leading))
    }
}
