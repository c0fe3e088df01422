import Foundation
import NormalizingFlows

// The code of the DocC tutorial "Variational Inference": the article's Swift listings are lines
// of this file, the tests run it with few steps, and `flows docs-figures` runs it in full and
// draws its pictures.

/// A banana: z₁ ~ N(0, 2²) and z₂ | z₁ ~ N(z₁²/4 − 1, 0.5²), written without its normalising
/// constant, so ∫ exp(banana) = 2π·2·0.5 and log Z = log 2π.
func banana(_ z: Tensor) -> Tensor {
    let z1 = z.select(alongAxis: -1, index: 0), z2 = z.select(alongAxis: -1, index: 1)
    return (z1 / 2).square() * -0.5 + ((z2 - z1.square() / 4 + 1) / 0.5).square() * -0.5
}

/// Two round Gaussians of standard deviation 0.6, one at the origin and one at (4, 4), equally
/// weighted and unnormalised: log Z = log(2·2π·0.6²).
func twoModes(_ z: Tensor) -> Tensor {
    let z1 = z.select(alongAxis: -1, index: 0), z2 = z.select(alongAxis: -1, index: 1)
    let near = (z1.square() + z2.square()) * (-0.5 / 0.36)
    let far = ((z1 - 4).square() + (z2 - 4).square()) * (-0.5 / 0.36)
    return Tensor.stack([near, far], alongAxis: -1).logSumExp(alongAxis: -1)
}

/// The ELBO, E_q[log p̃(z) − log q(z)] = log Z − KL(q ‖ p), from 20,000 samples of q.
/// `klDivergence` estimates E_q[log q − log p̃] + log Z, so with log Z = 0 it is −ELBO.
func evidenceLowerBound(_ flow: Flow, logDensity: (Tensor) -> Tensor) throws -> Double {
    -(try klDivergence(flow, logDensity: logDensity, logNormalizer: 0, samples: 20_000))
}

/// One variational fit of the tutorial: the flow, its ELBO and, where known, log Z.
struct VariationalFit {
    var flow: Flow
    var elbo: Double
    var logNormalizer: Double
    var samples: Tensor
}

/// What the variational-inference tutorial found for the banana and the funnel.
struct VariationalOutcome {
    var banana: VariationalFit
    var funnel: VariationalFit
    /// The funnel's mass below z₂ = −2 (its neck) under q and under the target, Φ(−2/3).
    var funnelNeck: (flow: Double, target: Double)
}

/// The variational-inference tutorial: an inverse autoregressive flow fitted by reverse KL to a
/// banana and to Neal's funnel, with the ELBO of each.
func variationalTutorial(steps: Int) throws -> VariationalOutcome {
    var options = VariationalOptions()
    options.steps = steps                   // 3000 for the pictures
    options.learningRate = 3e-3
    options.learningRatePolicy = .cosine

    let q = try Flow(base: Normal.standard([2]), plan: IAF(layers: 5), seed: 1)
    try fitVariational(q, logDensity: banana, options: options)
    let elbo = try evidenceLowerBound(q, logDensity: banana)
    print("banana: ELBO \(elbo), log Z \(log(2 * Double.pi))")

    let funnel = try Flow(base: Normal.standard([2]), plan: IAF(layers: 5), seed: 1)
    try fitVariational(funnel, logDensity: Energy.funnel.logDensity, options: options)
    let funnelELBO = try evidenceLowerBound(funnel, logDensity: Energy.funnel.logDensity)   // log Z = 0: normalised
    var generator = RandomGenerator(seed: 2)
    let funnelSamples = try funnel.sample(20_000, generator: &generator)
    let neck = Double(funnelSamples.select(alongAxis: -1, index: 1).doubles.filter { $0 < -2 }.count) / 20_000
    print("funnel: ELBO \(funnelELBO); mass below z₂ = −2: flow \(neck), target \(0.5 * erfc(2 / 3 / 2.0.squareRoot()))")

    return VariationalOutcome(
        banana: .init(flow: q, elbo: elbo, logNormalizer: log(2 * Double.pi), samples: try q.sample(2000, generator: &generator)),
        funnel: .init(flow: funnel, elbo: funnelELBO, logNormalizer: 0, samples: funnelSamples),
        funnelNeck: (neck, 0.5 * erfc(2 / 3 / 2.0.squareRoot())))
}

/// What the mode-seeking part of the tutorial found: the two-mode target fitted by reverse KL
/// (`fitVariational`) and by maximum likelihood on the target's samples (forward KL), and the
/// fraction of each flow's samples nearer the far mode (4, 4) than the origin, z₁ + z₂ > 4
/// (the target's is ½).
struct ModeSeekingOutcome {
    var reverseKL: VariationalFit
    var forwardKL: VariationalFit
    var farModeMass: (reverse: Double, forward: Double)
}

/// Reverse KL on ``twoModes`` beside forward KL, with the same flow and the same number of steps.
func modeSeekingTutorial(steps: Int) throws -> ModeSeekingOutcome {
    var options = VariationalOptions()
    options.steps = steps
    options.learningRate = 3e-3
    options.learningRatePolicy = .cosine
    let reverse = try Flow(base: Normal.standard([2]), plan: IAF(layers: 5), seed: 1)
    try fitVariational(reverse, logDensity: twoModes, options: options)

    // Forward KL: maximum likelihood on samples of the target, which variational inference
    // usually cannot draw; here they are easy.
    var generator = RandomGenerator(seed: 3)
    let centres = Tensor((0..<20_000).flatMap { _ in generator.nextUniform() < 0.5 ? [0, 0] : [4, 4] } as [Double], shape: [20_000, 2])
    let targetSamples = centres + Tensor.randn([20_000, 2], generator: &generator) * 0.6
    let forward = try Flow(base: Normal.standard([2]), plan: IAF(layers: 5), seed: 1)
    var maximumLikelihood = FitOptions()
    maximumLikelihood.steps = steps
    maximumLikelihood.learningRate = 3e-3
    maximumLikelihood.learningRatePolicy = .cosine
    try fit(forward, data: targetSamples, options: maximumLikelihood)

    let logZ = log(2 * 2 * Double.pi * 0.36)
    let reverseSamples = try reverse.sample(20_000, generator: &generator)
    let forwardSamples = try forward.sample(20_000, generator: &generator)
    func farFraction(_ samples: Tensor) -> Double {
        Double(samples.sum(alongAxis: -1).doubles.filter { $0 > 4 }.count) / Double(samples.shape[0])
    }
    print("reverse KL: mass near (4, 4) \(farFraction(reverseSamples)); forward KL: \(farFraction(forwardSamples)); the target's 0.5")
    return ModeSeekingOutcome(
        reverseKL: .init(flow: reverse, elbo: try evidenceLowerBound(reverse, logDensity: twoModes), logNormalizer: logZ, samples: reverseSamples),
        forwardKL: .init(flow: forward, elbo: try evidenceLowerBound(forward, logDensity: twoModes), logNormalizer: logZ, samples: forwardSamples),
        farModeMass: (farFraction(reverseSamples), farFraction(forwardSamples)))
}
