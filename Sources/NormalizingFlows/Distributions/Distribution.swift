import Foundation

/// A probability distribution over events of a fixed shape, possibly batched and conditional.
///
/// Samples have shape `[n] + batchShape + eventShape`; log-densities have shape
/// `[n] + batchShape` (the leading dimensions of their input).
public protocol Distribution {
    /// The shape of one event.
    var eventShape: [Int] { get }
    /// Independent distributions stacked together, before the event dimensions.
    var batchShape: [Int] { get }
    /// The dtype of samples and densities.
    var dtype: DType { get }
    /// The length of the context vector the distribution is conditioned on (0, the default, for
    /// an unconditional one, which ignores any context it is given).
    var contextSize: Int { get }

    /// `n` reparameterized samples: gradients flow from them to the distribution's parameters.
    func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor
    /// log p(x) for each event in `x`.
    /// - Throws: ``FlowError`` when `x` has the wrong shape, non-finite values, or (for flows)
    ///   values outside the support's domain.
    func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor
    /// Samples and their log-densities in one pass (no inverse needed for flows).
    func rsampleAndLogProb(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> (samples: Tensor, logProbs: Tensor)
}

extension Distribution {
    public var contextSize: Int { 0 }

    public func rsampleAndLogProb(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> (samples: Tensor, logProbs: Tensor) {
        let x = try rsample(n, context: context, generator: &generator)
        return (x, try logProb(x, context: context))
    }

    /// `n` samples without gradients.
    public func sample(_ n: Int, context: Tensor? = nil, generator: inout RandomGenerator) throws -> Tensor {
        try withoutGradients { try rsample(n, context: context, generator: &generator) }
    }

    /// `n` samples without gradients, from the shared default generator (see ``DefaultGenerator``).
    public func sample(_ n: Int, context: Tensor? = nil) throws -> Tensor {
        try DefaultGenerator.use { try sample(n, context: context, generator: &$0) }
    }

    /// `n` reparameterized samples from the shared default generator.
    public func rsample(_ n: Int, context: Tensor? = nil) throws -> Tensor {
        try DefaultGenerator.use { try rsample(n, context: context, generator: &$0) }
    }

    /// Samples and log-densities without gradients, from the given generator.
    public func sampleAndLogProb(_ n: Int, context: Tensor? = nil, generator: inout RandomGenerator) throws -> (samples: Tensor, logProbs: Tensor) {
        try withoutGradients { try rsampleAndLogProb(n, context: context, generator: &generator) }
    }

    /// Samples and log-densities without gradients, from the shared default generator.
    public func sampleAndLogProb(_ n: Int, context: Tensor? = nil) throws -> (samples: Tensor, logProbs: Tensor) {
        try DefaultGenerator.use { try sampleAndLogProb(n, context: context, generator: &$0) }
    }

    /// log p(x) without a context.
    public func logProb(_ x: Tensor) throws -> Tensor { try logProb(x, context: nil) }

    /// The number of dimensions of `batchShape + eventShape`.
    var fullShape: [Int] { batchShape + eventShape }

    /// Checks that `x` is `[...] + batchShape + eventShape`, finite and of this dtype; returns the
    /// sample dimensions.
    func checkInput(_ x: Tensor) throws -> [Int] {
        let full = fullShape
        guard x.rank >= full.count, Array(x.shape.suffix(full.count)) == full else {
            throw FlowError.shapeMismatch("expected values of shape [..., \(full.map(String.init).joined(separator: ", "))], got \(x.shape)")
        }
        guard x.dtype == dtype else {
            throw FlowError.shapeMismatch("expected \(dtype) values, got \(x.dtype)")
        }
        guard x.isFinite else {
            let index = x.doubles.firstIndex { !$0.isFinite }!
            throw FlowError.nonFiniteValues("element \(index) of the input is \(x.doubles[index])")
        }
        return Array(x.shape.dropLast(full.count))
    }
}

/// A process-wide random generator for calls that take none, like `torch.manual_seed` sets
/// PyTorch's. Access is serialized by a lock; pass your own `RandomGenerator` for
/// reproducible work in concurrent code.
public enum DefaultGenerator {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var generator = RandomGenerator(seed: 0)

    /// Restarts the default generator from `seed`.
    public static func seed(_ seed: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        generator = RandomGenerator(seed: seed)
    }

    /// Runs `body` with exclusive access to the default generator.
    public static func use<R>(_ body: (inout RandomGenerator) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&generator)
    }
}

/// How the one shape that all of a distribution's parameters share (Normal's μ and σ, say)
/// splits into batch dimensions and the last `eventRank` event dimensions.
struct ParameterLayout: Sendable {
    let shape: [Int]
    let eventRank: Int

    /// The last `eventRank` dimensions of `shape` form the event (all of them when `nil`);
    /// `name` names the distribution in the message when that is impossible.
    init(_ shape: [Int], eventRank: Int?, _ name: String) {
        let rank = eventRank ?? shape.count
        precondition(rank >= 0 && rank <= shape.count, "\(name): eventRank \(rank) exceeds the rank of \(shape)")
        self.shape = shape
        self.eventRank = rank
    }

    var eventShape: [Int] { Array(shape.suffix(eventRank)) }
    var batchShape: [Int] { Array(shape.dropLast(eventRank)) }

    /// The shape of `n` samples.
    func sampleShape(_ n: Int) throws -> [Int] {
        guard n >= 0 else { throw FlowError.invalidConfiguration("sample count must be non-negative, got \(n)") }
        return [n] + shape
    }

    /// Elementwise log-densities summed over the event dimensions.
    func sumOverEvent(_ elementwise: Tensor) -> Tensor { elementwise.summedOverTrailingAxes(eventRank) }
}
