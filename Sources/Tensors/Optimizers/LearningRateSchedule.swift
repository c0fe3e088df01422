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
    /// The learning rate to use for step `step`.
    /// - Parameter step: the 0-based step number.
    func learningRate(atStep step: Int) -> Double
}

/// The same rate at every step.
public struct ConstantLearningRate: LearningRateSchedule {
    /// The learning rate returned for every step.
    public var base: Double
    /// A schedule that always returns `base`.
    /// - Parameter base: the learning rate.
    public init(_ base: Double) { self.base = base }
    /// Returns ``base`` whatever the step.
    public func learningRate(atStep step: Int) -> Double { base }
}

/// Cosine annealing (Loshchilov & Hutter 2017, SGDR, without restarts) after an optional linear
/// warm-up: η(t) = η_min + ½(η₀ − η_min)(1 + cos(π·(t − w)/(T − w))) for w ≤ t ≤ T, and η₀·(t+1)/w during the
/// first w steps; η_min after T.
public struct CosineAnnealing: LearningRateSchedule {
    /// The peak rate η₀, reached at the end of the warm-up.
    public var base: Double
    /// T, the step at which the rate reaches ``minimum``.
    public var totalSteps: Int
    /// η_min, the rate at and after step T.
    public var minimum: Double
    /// w, the number of linear warm-up steps (0 for none).
    public var warmupSteps: Int

    /// A cosine schedule from `base` down to `minimum` over `totalSteps`, after `warmupSteps` of linear warm-up.
    /// - Parameters:
    ///   - base: the peak rate η₀, reached at the end of the warm-up.
    ///   - totalSteps: T, the step at which the rate reaches `minimum`; must exceed `warmupSteps`.
    ///   - minimum: η_min, the rate at and after step T.
    ///   - warmupSteps: w, the number of warm-up steps (0 for none).
    public init(base: Double, totalSteps: Int, minimum: Double = 0, warmupSteps: Int = 0) {
        precondition(totalSteps > warmupSteps && warmupSteps >= 0,
            "CosineAnnealing: need 0 ≤ warmupSteps < totalSteps")
        self.base = base
        self.totalSteps = totalSteps
        self.minimum = minimum
        self.warmupSteps = warmupSteps
    }

    /// The rate for step `step`, by the formula in the type's description.
    public func learningRate(atStep step: Int) -> Double {
        if step < warmupSteps { return base * Double(step + 1) / Double(warmupSteps) }
        if step >= totalSteps { return minimum }
        let progress = Double(step - warmupSteps) / Double(totalSteps - warmupSteps)
        return minimum + 0.5 * (base - minimum) * (1 + cos(Double.pi * progress))
    }
}

/// Multiplies the rate by `factor` every `stepSize` steps: η(t) = η₀·factor^⌊t / stepSize⌋.
public struct StepDecay: LearningRateSchedule {
    /// The initial rate η₀.
    public var base: Double
    /// The number of steps between decays.
    public var stepSize: Int
    /// The multiplier applied at each decay.
    public var factor: Double

    /// A schedule that multiplies `base` by `factor` every `stepSize` steps.
    /// - Parameters:
    ///   - base: the initial rate η₀.
    ///   - stepSize: the number of steps between decays; must be positive.
    ///   - factor: the multiplier applied at each decay (0.1 divides the rate by ten).
    public init(base: Double, stepSize: Int, factor: Double = 0.1) {
        precondition(stepSize > 0, "StepDecay: stepSize must be positive")
        self.base = base
        self.stepSize = stepSize
        self.factor = factor
    }

    /// The rate for step `step`, by the formula in the type's description.
    public func learningRate(atStep step: Int) -> Double {
        base * pow(factor, Double(step / stepSize))
    }
}
