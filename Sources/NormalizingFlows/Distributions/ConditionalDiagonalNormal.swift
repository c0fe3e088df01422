import Foundation

/// A normal distribution over vectors whose mean and scale are functions of a context:
/// p(x | c) = N(x; μ(c), diag σ(c)²) with [μ(c), log σ(c)] = MLP(c).
///
/// log p(x | c) = Σᵢ −½((xᵢ − μᵢ(c))/σᵢ(c))² − log σᵢ(c) − ½ log 2π. Samples are
/// μ(c) + σ(c)·ε, ε ~ N(0, I), differentiable in the network's weights.
///
/// The base of a conditional flow (nflows' `ConditionalDiagonalNormal`): the flow passes its
/// context to the base as well as to its bijector, and the base alone is already a conditional
/// density model with Gaussian conditionals. The network is a dense network (``CouplingNetwork``:
/// its hidden sizes and activation) from the context to the 2D values μ and log σ; its last layer
/// starts at zero, so a new base is N(0, I) for every context. Its weights are parameters
/// (`base.network.layers.<i>.weight`, `.bias` in a model file, PyTorch's [out, in] layout).
///
/// A context is one row [C], shared by every event, or one row per event, [..., C] with the
/// events' leading shape.
///
/// ```swift
/// let base = try ConditionalDiagonalNormal(features: 2, contextSize: 1)
/// let flow = try Flow(base: base, plan: MAF(layers: 3), contextSize: 1)
/// try fit(flow, data: y, context: c)
/// ```
public final class ConditionalDiagonalNormal: SerializableBase {
    /// D, the length of one event.
    public let features: Int
    /// C, the length of the context.
    public let contextSize: Int
    /// The sizes and activation of ``network``.
    public let networkShape: CouplingNetwork
    /// The dense network from a context [..., C] to [μ, log σ], [..., 2D].
    public let network: MLP

    /// A normal base whose μ and log σ are a dense network of the context.
    ///
    /// - Parameters:
    ///   - features: D ≥ 1, the length of one event.
    ///   - contextSize: C ≥ 1.
    ///   - network: the hidden sizes and activation of the network from the context to μ and log σ.
    ///   - dtype: the dtype of the weights, samples and densities.
    ///   - seed: seeds the network's initial weights.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` for sizes that cannot work.
    public init(features: Int, contextSize: Int, network: CouplingNetwork = CouplingNetwork(hiddenSizes: [64, 64]),
                dtype: DType = .float32, seed: UInt64 = 0) throws {
        guard features >= 1, contextSize >= 1 else {
            throw FlowError.invalidConfiguration("a conditional normal base needs at least one feature and one context value, got \(features) and \(contextSize)")
        }
        self.features = features
        self.contextSize = contextSize
        guard network.residualBlocks == 0 else {
            throw FlowError.invalidConfiguration("a conditional normal base's network is a perceptron (residualBlocks 0), got \(network.residualBlocks) residual blocks")
        }
        networkShape = network
        var generator = RandomGenerator(seed: seed)
        self.network = try network.makePerceptron(inputs: contextSize, outputs: 2 * features, outputBias: [0], dtype: dtype, generator: &generator)
    }

    public static var typeName: String { "ConditionalDiagonalNormal" }
    public var fileSettings: [String: Any] {
        ["features": features, "contextSize": contextSize, "hiddenSizes": networkShape.hiddenSizes,
         "activation": networkShape.activation.rawValue]
    }

    /// A base of the sizes the file names, in the dtype of its first layer's weight, for the
    /// file's weights to be loaded; sizes whose network would need more values than the file
    /// holds are refused before anything is allocated.
    public convenience init(fileSettings settings: BaseSettings) throws {
        let limit = Swift.max(settings.storedValues, 1)
        let features = try settings.int("features", in: 1...limit)
        let contextSize = try settings.int("contextSize", in: 1...limit)
        let hidden = try settings.ints("hiddenSizes", in: 1...limit, maximumCount: 64)
        let activation = try settings.string("activation", oneOf: Activation.allCases.map(\.rawValue))
        let sizes = [contextSize] + hidden + [2 * features]
        let weights = zip(sizes, sizes.dropFirst()).reduce(0.0) { $0 + Double($1.0 + 1) * Double($1.1) }
        try settings.checkAllocation(weights, "a network of sizes \(sizes)")
        let dtype = try settings.tensor("network.layers.0.weight").dtype
        try self.init(features: features, contextSize: contextSize,
                      network: CouplingNetwork(hiddenSizes: hidden, activation: Activation(rawValue: activation)!), dtype: dtype)
    }

    public var eventShape: [Int] { [features] }
    public var batchShape: [Int] { [] }
    public var dtype: DType { network.layers[0].weight.dtype }

    /// μ(c) and log σ(c), each [..., D], for a context [..., C].
    public func locAndLogScale(context: Tensor) -> (loc: Tensor, logScale: Tensor) {
        let output = network(context)
        let axis = output.rank - 1
        return (output.slice(alongAxis: axis, 0..<features), output.slice(alongAxis: axis, features..<(2 * features)))
    }

    /// The context, checked: present, of this dtype, finite, and one row or one per event
    /// (`leading`, the events' leading shape).
    private func checkedContext(_ context: Tensor?, leading: [Int]) throws -> Tensor {
        guard let context else {
            throw FlowError.shapeMismatch("the conditional normal base needs a context of size \(contextSize)")
        }
        guard context.dtype == dtype, context.shape.last == contextSize,
              context.rank == 1 || Array(context.shape.dropLast()) == leading else {
            throw FlowError.shapeMismatch(
                "the conditional normal base needs a context [\(contextSize)] or \(leading + [contextSize]) of \(dtype), got \(context.shape) \(context.dtype)")
        }
        guard context.isFinite else { throw FlowError.nonFiniteValues("the context contains NaN or ±∞") }
        return context
    }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        guard n >= 0 else { throw FlowError.invalidConfiguration("sample count must be non-negative, got \(n)") }
        let (loc, logScale) = locAndLogScale(context: try checkedContext(context, leading: [n]))
        return loc + logScale.exp() * Tensor.randn([n, features], generator: &generator, dtype: dtype)
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        let leading = try checkInput(x)
        let (loc, logScale) = locAndLogScale(context: try checkedContext(context, leading: leading))
        let z = (x - loc) * logScale.negated().exp()
        return (z.square() * -0.5 - logScale - 0.5 * Foundation.log(2 * Double.pi)).sum(alongAxis: x.rank - 1)
    }
}
