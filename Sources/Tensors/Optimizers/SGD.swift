/// Stochastic gradient descent with optional momentum (heavy-ball or Nesterov) and L2 weight decay.
///
/// With gradient g (plus λθ for weight decay λ), momentum μ and velocity b:
///
///     b ← μb + g,   θ ← θ − η·b              (heavy ball)
///     b ← μb + g,   θ ← θ − η·(g + μb)       (Nesterov)
///     θ ← θ − η·g                            (without momentum)
///
/// This is PyTorch's `SGD` convention (no dampening).
public final class SGD: Optimizer {
    /// The parameters this optimizer updates, in the order of its velocity buffers.
    public let parameters: [Parameter]
    /// The step size η; a ``LearningRateSchedule`` may set it before each step.
    public var learningRate: Double
    /// The momentum μ (0 for plain gradient descent).
    public var momentum: Double
    /// Whether the step uses Nesterov's look-ahead g + μb instead of the velocity b.
    public var nesterov: Bool
    /// The L2 weight decay λ, added to the gradient as λθ (0 for none).
    public var weightDecay: Double
    private var velocities: [[Tensor]]

    /// An optimizer for `parameters` with zeroed velocities.
    ///
    /// ```swift
    /// var generator = RandomGenerator(seed: 0)
    /// let layer = Linear(3, 1, generator: &generator)
    /// let sgd = SGD(layer.parameters, learningRate: 0.1, momentum: 0.9)
    /// ```
    /// - Parameters:
    ///   - parameters: the parameters to update, usually a module's ``Module/parameters``.
    ///   - learningRate: the step size η (no default: a good one depends on the problem).
    ///   - momentum: μ; 0 gives plain gradient descent.
    ///   - nesterov: use Nesterov momentum; needs `momentum > 0`.
    ///   - weightDecay: the L2 coefficient λ added to the gradient as λθ.
    public init(
        _ parameters: [Parameter], learningRate: Double, momentum: Double = 0, nesterov: Bool = false,
        weightDecay: Double = 0
    ) {
        precondition(learningRate >= 0 && momentum >= 0 && weightDecay >= 0,
            "SGD: learning rate, momentum and weight decay must be non-negative")
        precondition(!nesterov || momentum > 0, "SGD: Nesterov momentum needs momentum > 0")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.velocities = parameters.map { [Tensor.zeros($0.shape, dtype: $0.dtype)] }
    }

    /// Applies one update to every parameter with a gradient; parameters without one are left alone.
    public func step() {
        for (i, p) in parameters.enumerated() {
            updateInPlace(p, state: &velocities[i],
                float: { p, g, s, n in self.kernel(p, g, s[0], n) },
                double: { p, g, s, n in self.kernel(p, g, s[0], n) })
        }
    }

    @inline(__always)
    private func kernel<T: TensorScalar>(
        _ p: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ b: UnsafeMutablePointer<T>, _ n: Int
    ) {
        let lr = T(learningRate), mu = T(momentum), wd = T(weightDecay)
        for i in 0..<n {
            let gi = g[i] + wd * p[i]
            if momentum == 0 {
                p[i] -= lr * gi
            } else {
                let bi = mu * b[i] + gi
                b[i] = bi
                p[i] -= lr * (nesterov ? gi + mu * bi : bi)
            }
        }
    }
}
