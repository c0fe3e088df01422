/// A bijector whose context passes through a learned network first: every conditioner inside
/// `inner` sees e(c) instead of c (nflows' `embedding_net`).
///
/// Raw contexts are often long (a simulator's summary statistics, a time series, an image) or
/// badly scaled, while a conditioner only needs a few informative features of them. The
/// embedding e: ℝᶜ → ℝᴱ is a dense network trained with the flow by the same loss, so
///
///     log p(y | c) = log p_base(f⁻¹(y; e(c))) + log |det ∂f⁻¹(y; e(c))/∂y|
///
/// and one network serves every layer, instead of each conditioner learning its own features of
/// c. The inner plan is made for a context of size E (``features``).
///
/// The embedding is computed once per call of the wrapped bijector. A conditional base
/// (``ConditionalDiagonalNormal``) still receives the raw context: give it the raw context's
/// size. Tensors: `embedding.layers.<i>.weight` and `.bias`; the inner bijector's keep their
/// names.
///
/// ```swift
/// // p(θ | x) for 2 parameters given 50 summary statistics, compressed to 8 features.
/// let plan = ContextEmbedding(MAF(layers: 5), features: 8, network: CouplingNetwork(hiddenSizes: [64]))
/// let flow = try Flow(base: Normal.standard([2]), plan: plan, contextSize: 50)
/// ```
public struct ContextEmbedding: SerializablePlan {
    /// The plan made for the embedded context.
    public var inner: any BijectorPlan
    /// E ≥ 1, the length of the embedded context.
    public var features: Int
    /// The hidden sizes and activation of the embedding network (a perceptron; its output layer
    /// is linear).
    public var network: CouplingNetwork

    /// Wraps `inner` so its conditioners see an embedded context of length E instead of the raw one.
    ///
    /// - Parameters:
    ///   - inner: the plan whose conditioners see the embedded context.
    ///   - features: E ≥ 1, the length of the embedded context.
    ///   - network: the embedding network's hidden sizes and activation; by default one hidden
    ///     layer of 64 ReLU units.
    public init(_ inner: any BijectorPlan, features: Int, network: CouplingNetwork = CouplingNetwork(hiddenSizes: [64])) {
        self.inner = inner
        self.features = features
        self.network = network
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard spec.contextSize > 0 else {
            throw FlowError.invalidConfiguration("ContextEmbedding embeds a context: make the flow conditional (contextSize > 0)")
        }
        guard features >= 1, network.residualBlocks == 0, network.hiddenSizes.allSatisfy({ $0 >= 1 }) else {
            throw FlowError.invalidConfiguration(
                "ContextEmbedding needs features ≥ 1 and a perceptron with positive hidden sizes, got \(features) features and \(network)")
        }
        let sizes = [spec.contextSize] + network.hiddenSizes + [features]
        let embedding = MLP(sizes, activation: network.activation, dtype: spec.dtype, generator: &generator)
        var innerSpec = spec
        innerSpec.contextSize = features
        return EmbeddedContextBijector(embedding: embedding, inner: try inner.makeBijector(for: innerSpec, generator: &generator))
    }

    private enum Keys: String, CodingKey { case inner, features, network }

    /// Writes the inner plan (tagged with its type), the embedding length and the network.
    /// - Parameter encoder: the encoder of the model file's plan.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(AnyPlan(inner), forKey: .inner)
        try container.encode(features, forKey: .features)
        try container.encode(network, forKey: .network)
    }

    /// Reads a plan written by ``encode(to:)``.
    /// - Parameter decoder: the decoder of the model file's plan.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        inner = try container.decode(AnyPlan.self, forKey: .inner).plan
        features = try container.decode(Int.self, forKey: .features)
        network = try container.decode(CouplingNetwork.self, forKey: .network)
    }
}

final class EmbeddedContextBijector: Bijector {
    let embedding: MLP
    let inner: any Bijector

    init(embedding: MLP, inner: any Bijector) {
        self.embedding = embedding
        self.inner = inner
    }

    var eventShape: [Int] { inner.eventShape }
    var domain: Domain { inner.domain }
    var codomain: Domain { inner.codomain }
    var rowsAreIndependent: Bool { inner.rowsAreIndependent }
    /// The embedding under its name; the inner bijector transparent, its members keep their names.
    var members: [(name: String, member: ModuleMember)] { [("embedding", .module(embedding)), ("", .module(inner))] }

    /// e(c), after checking c's length (the inner bijector checks the rest of its shape).
    private func embedded(_ context: Tensor?) throws -> Tensor {
        let size = embedding.layers[0].inputFeatures
        guard let context else { throw FlowError.shapeMismatch("this bijector embeds a context: pass a context of size \(size)") }
        guard context.shape.last == size else {
            throw FlowError.shapeMismatch("this bijector embeds a context of size \(size), got shape \(context.shape)")
        }
        return embedding(context)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try inner.forward(x, context: embedded(context))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try inner.inverse(y, context: embedded(context))
    }
}
