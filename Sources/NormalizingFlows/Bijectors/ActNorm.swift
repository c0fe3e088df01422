/// Activation normalisation (Kingma & Dhariwal 2018, Glow): y = x·eˢ + t per element with
/// learnable s and t; log |det J| = Σ s.
///
/// Data-dependent initialisation: the first inverse (data → noise) call in training mode
/// (``Flow/isTraining``) with at least two rows sets t to the batch mean and s to the log of the batch
/// standard deviation, so that batch leaves the layer standardised. The `initialized` buffer is
/// saved with the model, so a loaded model is not initialised again.
public struct ActNorm: SerializablePlan {
    /// An ActNorm plan; the parameters s and t are created at zero (the identity) and set from the
    /// first training batch.
    public init() {}

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        ActNormBijector(spec: spec)
    }
}

final class ActNormBijector: Bijector {
    let eventShape: [Int]
    let logScale: Parameter, shift: Parameter
    /// 1 once the data-dependent initialisation has run (saved, so a loaded model keeps it).
    let initialized = Buffer(Tensor([0], dtype: .float64))
    private var isTraining = false
    private var isInitialized: Bool { initialized.value.doubles[0] != 0 }

    init(spec: BijectorSpec) {
        eventShape = spec.eventShape
        logScale = Parameter(.zeros(spec.eventShape, dtype: spec.dtype), name: "log_scale")
        shift = Parameter(.zeros(spec.eventShape, dtype: spec.dtype), name: "shift")
    }

    /// The first training batch sets the parameters.
    var rowsAreIndependent: Bool { isInitialized }

    func trainingModeDidChange(_ isTraining: Bool) { self.isTraining = isTraining }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        return (x * logScale.value.exp() + shift.value, logScale.value.sum().broadcast(to: leading))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let rows = leading.reduce(1, *)
        if isTraining && rows >= 2 && !isInitialized {
            withoutGradients {
                let flat = y.reshaped(to: [rows] + eventShape)
                let mean = flat.mean(alongAxis: 0)
                let variance = (flat - mean).square().mean(alongAxis: 0)
                shift.value = mean
                logScale.value = (variance + 1e-12).log() * 0.5
            }
            initialized.value = Tensor([1], dtype: .float64)
        }
        return ((y - shift.value) * logScale.value.negated().exp(), logScale.value.sum().negated().broadcast(to: leading))
    }
}
