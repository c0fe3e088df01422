import CKernels
import Foundation

/// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), optionally with
/// decoupled weight decay (AdamW, Loshchilov & Hutter 2019).
///
/// With gradient g at step t:
///
///     m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,
///     θ ← θ − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε).
///
/// Weight decay λ adds λθ to g (L2, the PyTorch `Adam` convention) or, when `decoupled`, subtracts
/// ηλθ from θ directly (PyTorch `AdamW`).
///
/// Float32 steps on x86 flush denormal moments to zero: they cost a microcode assist per
/// operation, and the moments of a gradient that stays zero decay into that range.
public final class Adam: Optimizer {
    /// The parameters this optimizer updates, in the order of its moment buffers.
    public let parameters: [Parameter]
    /// The step size η; a ``LearningRateSchedule`` may set it before each step.
    public var learningRate: Double
    /// β₁, the decay of the first-moment (mean) estimate m.
    public var beta1: Double
    /// β₂, the decay of the second-moment estimate v.
    public var beta2: Double
    /// ε, added to √v̂ so that the step stays bounded where gradients vanish.
    public var epsilon: Double
    /// The weight decay λ (0 for none).
    public var weightDecay: Double
    /// Whether λ shrinks θ directly (AdamW) instead of being added to the gradient as λθ.
    public var decoupledWeightDecay: Bool
    /// Steps taken so far.
    public private(set) var stepCount = 0
    private var moments: [[Tensor]]

    /// An optimizer for `parameters` with zeroed moments; the defaults are PyTorch's.
    ///
    /// ```swift
    /// var generator = RandomGenerator(seed: 0)
    /// let net = MLP([2, 32, 1], generator: &generator)
    /// let adam = Adam(net.parameters, learningRate: 1e-3)
    /// let x = Tensor.randn([64, 2], generator: &generator)
    /// let loss = adam.step(minimizing: net(x).square().mean())
    /// ```
    /// - Parameters:
    ///   - parameters: the parameters to update, usually a module's ``Module/parameters``.
    ///   - learningRate: the step size η.
    ///   - beta1: β₁ in [0, 1), the decay of the mean of the gradients.
    ///   - beta2: β₂ in [0, 1), the decay of the mean of their squares.
    ///   - epsilon: ε > 0 in the denominator √v̂ + ε.
    ///   - weightDecay: λ ≥ 0; 0 for none.
    ///   - decoupledWeightDecay: `true` for AdamW's θ ← θ(1 − ηλ), `false` for L2 (λθ added to g).
    public init(
        _ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9,
        beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0,
        decoupledWeightDecay: Bool = false
    ) {
        precondition(learningRate >= 0, "Adam: negative learning rate \(learningRate)")
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "Adam: betas must lie in [0, 1)")
        precondition(epsilon > 0 && weightDecay >= 0, "Adam: epsilon must be positive and weight decay non-negative")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.moments = parameters.map { [Tensor.zeros($0.shape, dtype: $0.dtype), Tensor.zeros($0.shape, dtype: $0.dtype)] }
    }

    /// Applies one Adam update to every parameter with a gradient; parameters without one keep their value and moments.
    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let c1 = 1 / (1 - Foundation.pow(beta1, t))
        let c2 = 1 / (1 - Foundation.pow(beta2, t))
        // The step's constants, once for both precisions.
        let l2 = decoupledWeightDecay ? 0 : weightDecay
        let shrink = decoupledWeightDecay ? 1 - learningRate * weightDecay : 1
        let sqrtC2 = c2.squareRoot()
        let coefficients = ck_adam_coefficients(
            b1: Float(beta1), b2: Float(beta2), eps: Float(epsilon), lr: Float(learningRate),
            l2: Float(l2), shrink: Float(shrink), bc1: Float(c1), sqrtC2: Float(sqrtC2))
        for (i, p) in parameters.enumerated() {
            updateInPlace(p, state: &moments[i],
                float: { p, g, s, n in
                    // Large parameters (a 256×1472 output layer) are split over the cores.
                    Parallel.chunks(n, threshold: 1 << 16) { start, end in
                        withUnsafePointer(to: coefficients) {
                            ck_adam_step(p + start, g + start, s[0] + start, s[1] + start, end - start, $0)
                        }
                    }
                },
                double: { p, g, s, n in self.update(p, g, s[0], s[1], n, l2: l2, shrink: shrink, c1: c1, sqrtC2: sqrtC2) })
        }
    }

    /// The update in Double, element by element.
    private func update(
        _ p: UnsafeMutablePointer<Double>, _ g: UnsafePointer<Double>, _ m: UnsafeMutablePointer<Double>,
        _ v: UnsafeMutablePointer<Double>, _ n: Int, l2: Double, shrink: Double, c1: Double, sqrtC2: Double
    ) {
        let (b1, b2, lr) = (beta1, beta2, learningRate)
        for i in 0..<n {
            let gi = g[i] + l2 * p[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            p[i] = p[i] * shrink - lr * (m[i] * c1) / (v[i].squareRoot() * sqrtC2 + epsilon)
        }
    }
}
