/// What a bijector plan is made concrete for: the event shape of its input, the size of an
/// optional context vector, and the dtype of its parameters.
public struct BijectorSpec: Sendable, Equatable {
    /// The shape of one event, e.g. `[2]` for points in the plane, `[2, 3]` for matrices.
    public var eventShape: [Int]
    /// The length of the context vector for conditional flows (0 for none).
    public var contextSize: Int
    /// The dtype of parameters and computations.
    public var dtype: DType

    /// A specification for plans to be made concrete.
    /// - Parameters:
    ///   - eventShape: the shape of one event.
    ///   - contextSize: the length of the context vector (default 0: an unconditional flow).
    ///   - dtype: the parameters' dtype (default Float32).
    public init(eventShape: [Int], contextSize: Int = 0, dtype: DType = .float32) {
        self.eventShape = eventShape
        self.contextSize = contextSize
        self.dtype = dtype
    }

    /// The number of elements in one event.
    public var eventSize: Int { eventShape.reduce(1, *) }
}

/// A bijector plan: hyperparameters only, no shapes, no weights (FlowTorch's lazy bijector).
///
/// A ``Flow`` makes the plan concrete for its base distribution's event shape, which creates the
/// parameters. The same plan can be made concrete many times; each result has its own parameters.
///
/// ```swift
/// let plan = Compose([AffineAutoregressive(), Permute(.reversed), AffineAutoregressive()])
/// let flow = try Flow(base: Normal.standard([2]), plan: plan)
/// ```
public protocol BijectorPlan: Sendable {
    /// Creates a concrete bijector with fresh parameters.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` when the plan cannot work for `spec`.
    func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector
}

/// A concrete, invertible, differentiable map y = f(x) on events of a fixed shape.
///
/// Directions follow FlowTorch: `forward` maps base noise x to data y; `inverse` maps data back
/// to noise. Inputs have shape `leading + eventShape` for any leading (sample and batch)
/// dimensions; the log-determinants are summed over the event, so they have shape `leading`.
///
/// log p_Y(y) = log p_X(f⁻¹(y)) + log |det ∂f⁻¹/∂y| = log p_X(x) − log |det ∂f/∂x|.
///
/// A bijector is a `Module`: its parameters and buffers (`Module/namedParameters`) are found in
/// its stored properties, so a new bijector declares them as properties and nothing else.
public protocol Bijector: Module {
    /// The event shape this bijector was made for (input and output alike).
    var eventShape: [Int] { get }
    /// Where inputs of `forward` must lie, elementwise.
    var domain: Domain { get }
    /// Where outputs of `forward` (inputs of `inverse`) lie, elementwise.
    var codomain: Domain { get }
    /// Whether, in training mode, each row's output depends on that row alone and nothing is
    /// updated from the batch, so that a batch can be split across threads
    /// (``Flow/backwardNegativeLogLikelihood(_:context:)``). False for batch normalisation and
    /// for ActNorm before its data-dependent initialisation; true by default.
    var rowsAreIndependent: Bool { get }

    /// y = f(x) and log |det ∂f/∂x|, summed over the event.
    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor)
    /// x = f⁻¹(y) and log |det ∂f⁻¹/∂y| (= −log |det ∂f/∂x|), summed over the event.
    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor)
}

extension Bijector {
    public var domain: Domain { .real }
    public var codomain: Domain { .real }
    public var rowsAreIndependent: Bool { true }

    /// The number of trailing dimensions that form one event.
    public var eventRank: Int { eventShape.count }

    /// The leading (sample and batch) shape of `x`, after checking that it ends with the event
    /// shape. Values are not checked here: a ``Flow`` checks what a user passes once, at its
    /// boundary, and turns an overflow inside a trained flow into a log-density of −∞.
    func leadingShape(of x: Tensor, _ what: String) throws -> [Int] {
        guard x.rank >= eventRank, Array(x.shape.suffix(eventRank)) == eventShape else {
            throw FlowError.shapeMismatch(
                "\(what) of \(type(of: self)) needs shape [..., \(eventShape.map(String.init).joined(separator: ", "))], got \(x.shape)")
        }
        return Array(x.shape.dropLast(eventRank))
    }

    /// Sums an elementwise log-det over the event dimensions.
    func sumOverEvent(_ elementwise: Tensor) -> Tensor { elementwise.summedOverTrailingAxes(eventRank) }
}

extension Tensor {
    /// The sum over the last `count` axes (the tensor itself when `count` is 0): elementwise
    /// log-densities and log-determinants summed over an event.
    func summedOverTrailingAxes(_ count: Int) -> Tensor {
        count == 0 ? self : sum(alongAxes: Array((rank - count)..<rank))
    }
}
