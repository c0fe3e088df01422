/// Why training stopped abnormally.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The loss became NaN or infinite: the step it happened at and its value. Steps count from
    /// 1, as ``TrainingProgress/step`` and the progress lines do: step 1 is the first step, whose
    /// loss is computed before any update.
    case nonFiniteLoss(step: Int?, value: Double)
    /// The validation NLL was NaN or infinite at an evaluation: a held-out row has zero (or no)
    /// density under the flow, so no step can be judged best.
    case nonFiniteValidation(step: Int, value: Double)
    /// The data cannot be used (too few rows, wrong shape…).
    case invalidData(String)
    /// An option is out of range.
    case invalidOption(String)

    /// What went wrong and, for a non-finite loss, what to try.
    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let value):
            "the loss became \(Self.spelled(value))\(step.map { " at step \($0)" } ?? ""); "
                + "try a lower learning rate or gradient clipping, and check the data's scale (standardise each column)"
        case .nonFiniteValidation(let step, let value):
            "the validation NLL became \(Self.spelled(value)) at step \(step): a held-out row has zero density under the flow"
        case .invalidData(let m): "invalid data: \(m)"
        case .invalidOption(let m): "invalid option: \(m)"
        }
    }

    /// A non-finite value as "NaN", "+inf" or "-inf" (Swift prints a NaN with its sign bit as "-nan").
    static func spelled(_ value: Double) -> String {
        value.isNaN ? "NaN" : value.isInfinite ? (value > 0 ? "+inf" : "-inf") : "\(value)"
    }
}

/// A snapshot of training progress, passed to the progress callback.
public struct TrainingProgress: Sendable {
    /// Steps completed so far.
    public var step: Int
    /// The steps the run was asked for.
    public var totalSteps: Int
    /// The training loss of the last step (negative log-likelihood, or reverse KL up to log Z).
    public var loss: Double
    /// The validation negative log-likelihood, when evaluated at this step.
    public var validationNLL: Double?
    /// The learning rate the schedule set for the last step.
    public var learningRate: Double
    /// Wall-clock seconds since training started.
    public var elapsedSeconds: Double
    /// `step / elapsedSeconds`, 0 before any time has passed.
    public var stepsPerSecond: Double { elapsedSeconds > 0 ? Double(step) / elapsedSeconds : 0 }
    /// An estimate of the remaining time, (totalSteps − step) / stepsPerSecond, 0 before the rate is known.
    public var secondsLeft: Double { stepsPerSecond > 0 ? Double(totalSteps - step) / stepsPerSecond : 0 }
}

/// How the learning rate evolves during training.
public enum LearningRatePolicy: String, Sendable, CaseIterable {
    /// The same learning rate at every step (the default).
    case constant
    /// Cosine decay to 0 over the run (`CosineAnnealing`).
    case cosine

    func schedule(base: Double, steps: Int) -> any LearningRateSchedule {
        switch self {
        case .constant: ConstantLearningRate(base)
        case .cosine: CosineAnnealing(base: base, totalSteps: Swift.max(steps, 1))
        }
    }
}
