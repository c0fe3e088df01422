import Foundation

/// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization"), optionally with
/// decoupled weight decay (AdamW, Loshchilov & Hutter 2019).
///
/// With gradient g at step t:
///   m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,
///   θ ← θ − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε).
/// Weight decay λ adds λθ to g (L2, the PyTorch `Adam` convention) or, when `decoupled`, subtracts
/// ηλθ from θ directly (PyTorch `AdamW`).
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    public var weightDecay: Double
    public var decoupledWeightDecay: Bool
    /// Steps taken so far.
    public private(set) var stepCount = 0
    private var moments: [[Tensor]]

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

    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let c1 = 1 / (1 - Foundation.pow(beta1, t))
        let c2 = 1 / (1 - Foundation.pow(beta2, t))
        for (i, p) in parameters.enumerated() {
            updateInPlace(p, state: &moments[i],
                float: { p, g, s, n in self.kernel(p, g, s[0], s[1], n, c1, c2) },
                double: { p, g, s, n in self.kernel(p, g, s[0], s[1], n, c1, c2) })
        }
    }

    @inline(__always)
    private func kernel<T: TensorScalar>(
        _ p: UnsafeMutablePointer<T>, _ g: UnsafePointer<T>, _ m: UnsafeMutablePointer<T>,
        _ v: UnsafeMutablePointer<T>, _ n: Int, _ c1: Double, _ c2: Double
    ) {
        let b1 = T(beta1), b2 = T(beta2), eps = T(epsilon), lr = T(learningRate)
        let l2 = decoupledWeightDecay ? 0 : T(weightDecay)
        let shrink = decoupledWeightDecay ? 1 - T(learningRate * weightDecay) : 1
        let bc1 = T(c1), sqrtC2 = T(c2.squareRoot())
        // Large parameters (a 256×1472 output layer) are split over the cores. Each chunk runs eight
        // lanes at a time (the scalar square root is a call that keeps a plain loop scalar), then
        // the tail.
        Parallel.chunks(n, threshold: 1 << 16) { start, end in
            var i = start
            let raw = (p: UnsafeMutableRawPointer(p), g: UnsafeRawPointer(g), m: UnsafeMutableRawPointer(m),
                       v: UnsafeMutableRawPointer(v))
            let size = MemoryLayout<T>.stride
            while i + 8 <= end {
                let offset = i * size
                let pi = raw.p.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self)
                let gi = raw.g.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self) + l2 * pi
                let mi = b1 * raw.m.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self) + (1 - b1) * gi
                let vi = b2 * raw.v.loadUnaligned(fromByteOffset: offset, as: SIMD8<T>.self) + (1 - b2) * gi * gi
                raw.m.storeBytes(of: mi, toByteOffset: offset, as: SIMD8<T>.self)
                raw.v.storeBytes(of: vi, toByteOffset: offset, as: SIMD8<T>.self)
                let step = lr * (mi * bc1) / (vi.squareRoot() * sqrtC2 + eps)
                raw.p.storeBytes(of: pi * shrink - step, toByteOffset: offset, as: SIMD8<T>.self)
                i += 8
            }
            for i in i..<end {
                let gi = g[i] + l2 * p[i]
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] = p[i] * shrink - lr * (mi * bc1) / (vi.squareRoot() * sqrtC2 + eps)
            }
        }
    }
}
