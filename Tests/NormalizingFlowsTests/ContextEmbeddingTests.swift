import Foundation
import Testing
@testable import NormalizingFlows

// ContextEmbedding: every conditioner inside sees e(c). The conformance suite checks inverses,
// Jacobians and gradients (the embedding's included); these tests check e(c) itself.

/// e(c) of a perceptron, computed in Double from its weights: W₂·relu(W₁c + b₁) + b₂ and so on.
private func embedByHand(_ network: MLP, _ context: [Double]) -> [Double] {
    var h = context
    for (index, layer) in network.layers.enumerated() {
        let w = layer.weight.value.doubles, b = layer.bias!.value.doubles
        let outputs = layer.outputFeatures, inputs = layer.inputFeatures
        h = (0..<outputs).map { o in (0..<inputs).reduce(b[o]) { $0 + w[o * inputs + $1] * h[$1] } }
        if index < network.layers.count - 1 { h = h.map { Swift.max($0, 0) } }
    }
    return h
}

@Test("the inner bijector sees the embedded context, e(c), in both directions")
func innerBijectorSeesTheEmbedding() throws {
    var generator = RandomGenerator(seed: 11)
    let plan = ContextEmbedding(MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])), features: 3,
                                network: CouplingNetwork(hiddenSizes: [7, 5]))
    let bijector = try plan.makeBijector(for: BijectorSpec(eventShape: [2], contextSize: 4, dtype: .float64), generator: &generator)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: .float64) * 0.3 }
    let embedded = try #require(bijector as? EmbeddedContextBijector)
    let x = Tensor.randn([5, 2], generator: &generator, dtype: .float64)
    let context = Tensor.randn([5, 4], generator: &generator, dtype: .float64)
    let rows = (0..<5).map { Array(context.doubles[($0 * 4)..<($0 * 4 + 4)]) }
    let byHand = Tensor(rows.flatMap { embedByHand(embedded.embedding, $0) }, shape: [5, 3], dtype: .float64)
    let (y, logDet) = try bijector.forward(x, context: context)
    let (yInner, logDetInner) = try embedded.inner.forward(x, context: byHand)
    #expect(maxAbsDifference(y.doubles, yInner.doubles) <= 1e-12)
    #expect(maxAbsDifference(logDet.doubles, logDetInner.doubles) <= 1e-12)
    let (back, inverseLogDet) = try bijector.inverse(y, context: context)
    let (backInner, inverseLogDetInner) = try embedded.inner.inverse(y, context: byHand)
    #expect(maxAbsDifference(back.doubles, backInner.doubles) <= 1e-12)
    #expect(maxAbsDifference(inverseLogDet.doubles, inverseLogDetInner.doubles) <= 1e-12)
    // The embedding is not the identity: without it the inner bijector would see c's 4 values.
    #expect(throws: FlowError.self) { try embedded.inner.forward(x, context: context) }
}

@Test("a flow with an embedded context saves, loads and names the embedding's tensors")
func embeddedContextRoundTrip() throws {
    let plan = ContextEmbedding(NSF(layers: 2, bins: 4, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [8])), features: 2)
    let flow = try Flow(base: Normal.standard([2]), plan: plan, contextSize: 6, seed: 4)
    var generator = RandomGenerator(seed: 5)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator) * 0.1 }
    let names = flow.namedParameters.map(\.name)
    #expect(names.contains("bijector.embedding.layers.1.weight") && names.contains("bijector.0.conditioner.layers.0.weight"))
    let path = scratchFolder() + "/embedded.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let y = Tensor.randn([4, 2], generator: &generator), c = Tensor.randn([4, 6], generator: &generator)
    #expect(try flow.logProb(y, context: c).doubles == loaded.logProb(y, context: c).doubles)
}

@Test("ContextEmbedding refuses an unconditional flow, empty sizes and a context of the wrong length")
func contextEmbeddingErrors() throws {
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([2]), plan: ContextEmbedding(MAF(), features: 2)) }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([2]), plan: ContextEmbedding(MAF(), features: 0), contextSize: 3) }
    #expect(throws: FlowError.self) {
        try Flow(base: Normal.standard([2]), plan: ContextEmbedding(MAF(), features: 2, network: CouplingNetwork(hiddenSizes: [0])), contextSize: 3)
    }
    let flow = try Flow(base: Normal.standard([2]), plan: ContextEmbedding(MAF(layers: 1), features: 2), contextSize: 3)
    #expect(throws: FlowError.self) { try flow.bijector.forward(Tensor.zeros([2, 2]), context: Tensor.zeros([2, 4])) }
    #expect(throws: FlowError.self) { try flow.bijector.inverse(Tensor.zeros([2, 2]), context: nil) }
}

@Test("an embedding learns the feature of a long context that matters: y | c ~ N(c₀ − c₁, 0.3²)")
func embeddingLearnsTheRelevantFeature() throws {
    // 12 context values of which only c₀ − c₁ matters; one embedded feature suffices.
    var generator = RandomGenerator(seed: 21)
    let n = 4000
    let context = Tensor.randn([n, 12], generator: &generator)
    let c = context.doubles
    let mean: [Double] = (0..<n).map { (row: Int) -> Double in c[row * 12] - c[row * 12 + 1] }
    let noise = Tensor.randn([n], generator: &generator).doubles
    let y = Tensor(zip(mean, noise).map { $0 + 0.3 * $1 }, shape: [n, 1])
    let plan = ContextEmbedding(MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [16])), features: 1,
                                network: CouplingNetwork(hiddenSizes: [16]))
    let flow = try Flow(base: Normal.standard([1]), plan: plan, contextSize: 12, seed: 3)
    var options = FitOptions()
    options.steps = 1500
    options.batchSize = 256
    options.learningRate = 5e-3
    options.validationFraction = 0
    try fit(flow, data: y, context: context, options: options)
    // Held out: the true conditional NLL is ½ log(2π·0.3²) + ½ ≈ 0.215 nats.
    let testContext = Tensor.randn([2000, 12], generator: &generator)
    let tc = testContext.doubles, testNoise = Tensor.randn([2000], generator: &generator).doubles
    let testMeans: [Double] = (0..<2000).map { (row: Int) -> Double in tc[row * 12] - tc[row * 12 + 1] }
    let testY = Tensor(zip(testMeans, testNoise).map { $0 + 0.3 * $1 }, shape: [2000, 1])
    let nll = -(try flow.logProb(testY, context: testContext).doubles.reduce(0, +)) / 2000
    let truth = 0.5 * Foundation.log(2 * Double.pi * 0.09) + 0.5
    #expect(nll - truth < 0.1, "held-out NLL \(nll) against the truth \(truth)")
}
