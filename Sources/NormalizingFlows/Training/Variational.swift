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

    /// Options with every default listed on the properties: 5000 steps of 256 samples at learning rate
    /// 10⁻³ (constant), gradient norm clipped at 10, a report every 500 steps, seed 0.
    public init() {}
}

/// What ``fitVariational(_:logDensity:context:optimizer:options:progress:)`` did.
public struct VariationalReport: Sendable {
    /// The optimizer steps run.
    public var stepsTaken: Int
    /// The last step's loss: E_q[log q(z) − log p̃(z)] = KL(q‖p) − log Z.
    public var finalLoss: Double
    /// The wall-clock duration of the whole fit, in seconds.
    public var seconds: Double
}

/// Fits `flow` to the unnormalised density p̃ = exp(`logDensity`) by minimising the reverse KL
/// divergence, i.e. maximising the ELBO (Rezende & Mohamed 2015):
/// loss = E_q[log q(z) − log p̃(z)] = KL(q ‖ p) − log Z, estimated with reparameterised
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
    try variationalSteps(flow, optimizer: optimizer, options: options, progress: progress) { optimizer, generator in
        try optimizer.step(minimizingReverseKLOf: flow, to: logDensity, samples: options.samplesPerStep, context: context,
                           generator: &generator, clipNorm: options.gradientClipNorm)
    }
}

/// Amortised variational inference: fits a conditional flow q(z | c) to the unnormalised
/// densities p̃(z | c) of a whole distribution of contexts at once, so that after training one
/// flow gives the approximate posterior for any context without further fitting (the amortised
/// inference of Kingma & Welling 2014 and of neural posterior estimation, Papamakarios & Murray
/// 2016, here by reverse KL).
///
/// Each step draws `samplesPerStep` contexts c₁…c_n from `contexts` and one reparameterised
/// zᵢ ∼ q(· | cᵢ) per context, and minimises (1/n) Σᵢ log q(zᵢ | cᵢ) − log p̃(zᵢ | cᵢ): an estimate
/// of E_c[KL(q(· | c) ‖ p(· | c))] − E_c[log Z(c)], whose gradient is that of the expected KL.
///
/// - Parameters:
///   - flow: a conditional flow (``Flow/contextSize`` C > 0).
///   - logDensity: log p̃(z | c) for samples z [n] + event shape and their contexts c [n, C],
///     returning [n]; built from tensor operations so gradients reach the samples.
///   - contexts: draws the contexts of one step, shape [samplesPerStep, C] (for simulation-based
///     inference, observations simulated from the prior predictive).
///   - optimizer: the optimizer for `flow.parameters`; by default Adam at `options.learningRate`.
///   - options: steps, samples (and contexts) per step, learning rate and the other settings.
///   - progress: called every `reportInterval` steps and at the end.
/// - Throws: ``TrainingError/invalidOption(_:)`` when the flow is not conditional or `contexts`
///   returns another shape, and what ``fitVariational(_:logDensity:context:optimizer:options:progress:)`` throws.
@discardableResult
public func fitVariational(
    _ flow: Flow, logDensity: (_ z: Tensor, _ context: Tensor) -> Tensor, contexts: (inout RandomGenerator) -> Tensor,
    optimizer: (any Optimizer)? = nil, options: VariationalOptions = VariationalOptions(), progress: ((TrainingProgress) -> Void)? = nil
) throws -> VariationalReport {
    guard flow.contextSize > 0 else {
        throw TrainingError.invalidOption("amortised inference needs a conditional flow (context size > 0); this flow takes no context")
    }
    return try variationalSteps(flow, optimizer: optimizer, options: options, progress: progress) { optimizer, generator in
        let c = contexts(&generator)
        guard c.shape == [options.samplesPerStep, flow.contextSize], c.dtype == flow.dtype else {
            throw TrainingError.invalidOption("contexts must return shape [\(options.samplesPerStep), \(flow.contextSize)] (samples per step, context size) in \(flow.dtype), got \(c.shape) in \(c.dtype)")
        }
        return try optimizer.step(minimizingReverseKLOf: flow, to: { logDensity($0, c) }, samples: options.samplesPerStep, context: c,
                                  generator: &generator, clipNorm: options.gradientClipNorm)
    }
}

/// The loop both ``fitVariational(_:logDensity:context:optimizer:options:progress:)`` forms run:
/// the options checked, the schedule set before each `step`, divergence named by step, progress
/// reported every `reportInterval` steps and at the end.
private func variationalSteps(
    _ flow: Flow, optimizer: (any Optimizer)?, options: VariationalOptions, progress: ((TrainingProgress) -> Void)?,
    step: (any Optimizer, inout RandomGenerator) throws -> Double
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
    for index in 0..<options.steps {
        optimizer.learningRate = schedule.learningRate(atStep: index)
        loss = try divergenceReported(atStep: index + 1) { try step(optimizer, &generator) }
        if (index + 1) % options.reportInterval == 0 || index + 1 == options.steps {
            progress?(TrainingProgress(step: index + 1, totalSteps: options.steps, loss: loss, validationNLL: nil,
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
