/// Stochastic gradient descent with optional momentum (heavy-ball or Nesterov) and L2 weight decay.
///
/// With gradient g (plus λθ for weight decay λ), momentum μ and velocity b:
///   b ← μb + g;  θ ← θ − η·b,  or for Nesterov θ ← θ − η·(g + μb);  without momentum θ ← θ − η·g.
/// This is PyTorch's `SGD` convention (no dampening).
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public var momentum: Double
    public var nesterov: Bool
    public var weightDecay: Double
    private var velocities: [[Tensor]]

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
