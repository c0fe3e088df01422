import Foundation

/// A learning rate as a function of the step number (0-based).
///
/// ```swift
/// let schedule = CosineAnnealing(base: 1e-3, totalSteps: 2000, warmupSteps: 100)
/// for step in 0..<2000 {
///     optimizer.learningRate = schedule.learningRate(atStep: step)
///     …
/// }
/// ```
public protocol LearningRateSchedule: Sendable {
    func learningRate(atStep step: Int) -> Double
}

/// The same rate at every step.
public struct ConstantLearningRate: LearningRateSchedule {
    public var base: Double
    public init(_ base: Double) { self.base = base }
    public func learningRate(atStep step: Int) -> Double { base }
}

/// Cosine annealing (Loshchilov & Hutter 2017, SGDR, without restarts) after an optional linear
/// warm-up: η(t) = η_min + ½(η₀ − η_min)(1 + cos(π·(t − w)/(T − w))) for w ≤ t ≤ T, and η₀·(t+1)/w during the
/// first w steps; η_min after T.
public struct CosineAnnealing: LearningRateSchedule {
    public var base: Double
    public var totalSteps: Int
    public var minimum: Double
    public var warmupSteps: Int

    public init(base: Double, totalSteps: Int, minimum: Double = 0, warmupSteps: Int = 0) {
        precondition(totalSteps > warmupSteps && warmupSteps >= 0,
            "CosineAnnealing: need 0 ≤ warmupSteps < totalSteps")
        self.base = base
        self.totalSteps = totalSteps
        self.minimum = minimum
        self.warmupSteps = warmupSteps
    }

    public func learningRate(atStep step: Int) -> Double {
        if step < warmupSteps { return base * Double(step + 1) / Double(warmupSteps) }
        if step >= totalSteps { return minimum }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        return minimum + 0.5 * (base - minimum) * (1 + cos(Double.pi * progress))
    }
}

/// Multiplies the rate by `factor` every `stepSize` steps: η(t) = η₀·factor^⌊t / stepSize⌋.
public struct StepDecay: LearningRateSchedule {
    public var base: Double
    public var stepSize: Int
    public var factor: Double

    public init(base: Double, stepSize: Int, factor: Double = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be positive")
        self.base = base
        self.stepSize = stepSize
        self.factor = factor
    }

    public func learningRate(atStep step: Int) -> Double {
        base * pow(factor, Double(step / stepSize))
    }
}
