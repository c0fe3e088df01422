/// Whether flows are being trained: ``BatchNorm`` then normalises with batch statistics and
/// updates its running averages, and ``ActNorm`` initialises itself from the first batch.
/// ``fit(_:data:context:validation:validationContext:options:progress:)`` sets it for its training steps; evaluation,
/// sampling and file round trips run with it off, where every bijector is an exact bijection.
public enum FlowMode {
    @TaskLocal public static var isTraining = false

    /// Runs `body` in training mode.
    public static func training<R>(_ body: () throws -> R) rethrows -> R {
        try $isTraining.withValue(true) { try body() }
    }
}
