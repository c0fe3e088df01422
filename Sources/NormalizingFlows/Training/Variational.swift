import Foundation

/// Settings for ``fitVariational(_:logDensity:context:optimizer:options:progress:)``.
public struct VariationalOptions: Sendable {
    /// Optimizer steps (default 5000).
    public var steps = 5000
    /// Monte Carlo samples per step (default 256).
    public var samplesPerStep = 256
    /// The learning rate of the default Adam (default 1e-3), set by the schedule before every step.
    public var learningRate = 1e-3
    /// How the learning rate moves over the steps (default: constant).
    public var learningRatePolicy = LearningRatePolicy.constant
    /// Gradient-norm clipping bound, or `nil` for none (default 10).
    public var gradientClipNorm: Double? = 10
    /// Steps between progress reports (default 500).
    public var reportInterval = 500
    /// Seeds the samples (default 0).
    public var seed: UInt64 = 0

    public init() {}
}

/// What ``fitVariational(_:logDensity:context:optimizer:options:progress:)`` did.
public struct VariationalReport: Sendable {
    public var stepsTaken: Int
    /// The last step's loss: E_q[log q(z) − log p̃(z)] = KL(q‖p) − log Z.
    public var finalLoss: Double
    public var seconds: Double
}

/// Fits `flow` to the unnormalised density p̃ = exp(`logDensity`) by minimising the reverse KL
/// divergence, i.e. maximising the ELBO (Rezende & Mohamed 2015):
/// loss = E_{z∼q}[log q(z) − log p̃(z)] = KL(q ‖ p) − log Z, estimated with reparameterised
/// samples drawn through the flow's forward direction (one pass, no inverse), each step being
/// `optimizer.step(minimizingReverseKLOf:)`.
///
/// - Parameters:
///   - flow: the flow to train; its parameters are updated in place.
///   - logDensity: log p̃ for samples of shape [n] + event shape, returning shape [n]; built
///     from tensor operations so gradients reach the flow's samples.
///   - context: for a conditional flow, the context every sample is drawn for (one row [1, C],
///     or one per sample [samplesPerStep, C]): amortised inference fits q(z | c) to p̃(z | c),
///     with `logDensity` reading the same context.
///   - optimizer: the optimizer for `flow.parameters`; by default Adam at `options.learningRate`.
///   - options: steps, samples per step, learning rate and the other settings.
///   - progress: called every `reportInterval` steps and at the end.
/// - Throws: ``TrainingError/nonFiniteLoss(step:value:)`` naming the step where the loss became
///   NaN or infinite.
@discardableResult
public func fitVariational(
    _ flow: Flow, logDensity: (Tensor) -> Tensor, context: Tensor? = nil, optimizer: (any Optimizer)? = nil,
    options: VariationalOptions = VariationalOptions(), progress: ((TrainingProgress) -> Void)? = nil
) throws -> VariationalReport {
    guard options.steps >= 1, options.samplesPerStep >= 1, options.reportInterval >= 1, options.learningRate > 0 else {
        throw TrainingError.invalidOption("steps, samples per step and report interval must be at least 1 and the learning rate positive")
    }
    var generator = RandomGenerator(seed: options.seed)
    let optimizer = optimizer ?? Adam(flow.parameters, learningRate: options.learningRate)
    let schedule = options.learningRatePolicy.schedule(base: options.learningRate, steps: options.steps)
    let start = DispatchTime.now().uptimeNanoseconds
    func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    var loss = Double.nan
    for step in 0..<options.steps {
        optimizer.learningRate = schedule.learningRate(atStep: step)
        loss = try divergenceReported(atStep: step + 1) {
            try optimizer.step(minimizingReverseKLOf: flow, to: logDensity, samples: options.samplesPerStep, context: context,
                               generator: &generator, clipNorm: options.gradientClipNorm)
        }
        if (step + 1) % options.reportInterval == 0 || step + 1 == options.steps {
            progress?(TrainingProgress(step: step + 1, totalSteps: options.steps, loss: loss, validationNLL: nil,
                                       learningRate: optimizer.learningRate, elapsedSeconds: elapsed()))
        }
    }
    return VariationalReport(stepsTaken: options.steps, finalLoss: loss, seconds: elapsed())
}

/// KL(q ‖ p) estimated as E_q[log q(z) − log p̃(z)] + log Z with `samples` draws (in chunks).
public func klDivergence(_ flow: Flow, logDensity: (Tensor) -> Tensor, logNormalizer: Double, samples: Int = 100_000, seed: UInt64 = 1) throws -> Double {
    var generator = RandomGenerator(seed: seed)
    var total = 0.0
    var remaining = samples
    try withoutGradients {
        while remaining > 0 {
            let n = Swift.min(remaining, 10_000)
            let (z, logQ) = try flow.sampleAndLogProb(n, generator: &generator)
            total += (logQ - logDensity(z)).sum().item
            remaining -= n
        }
    }
    return total / Double(samples) + logNormalizer
}
