import Testing
@testable import NormalizingFlows

/// A MADE large enough to run its layers in row blocks computes what the plain masked layers compute.
@Test func blockedMADELayersMatchTheMaskedDenseOnes() throws {
    var g = RandomGenerator(seed: 41)
    let network = try DenseAutoregressive(hiddenSizes: [256, 256], order: .reversed).makeNetwork(
        inputSize: 9, contextSize: 2, outputsPerDimension: 30, outputBias: [Double](repeating: 0, count: 30), dtype: .float64, generator: &g)
    #expect(network.blocks[1] != nil && network.blocks[2] != nil, "the test needs blocked layers")
    for p in network.weights { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.05 }
    let x = Tensor.randn([5, 9], generator: &g, dtype: .float64), context = Tensor.randn([5, 2], generator: &g, dtype: .float64)

    // The masks written out from the degrees: a unit of degree g sees inputs (context: degree 0)
    // of degree ≤ g; an output for a dimension of degree g sees hidden units of degree < g.
    var inputDegree = [Int](repeating: 0, count: 9)
    for (position, dimension) in network.variableOrder.enumerated() { inputDegree[dimension] = position + 1 }
    let hidden = MaskedAutoregressiveNetwork.hiddenDegrees(size: 256, inputs: 9, context: true)
    let layerDegrees = [inputDegree + [0, 0], hidden, hidden, (0..<270).map { inputDegree[$0 / 30] }]
    func maskTensor(_ l: Int) -> Tensor {
        let (rows, columns) = (layerDegrees[l + 1], layerDegrees[l])
        let last = l == network.weights.count - 1
        return Tensor(rows.flatMap { r in columns.map { c in (last ? r > c : r >= c) ? 1.0 : 0.0 } }, shape: [rows.count, columns.count], dtype: .float64)
    }
    for l in network.weights.indices {
        #expect(network.appliedWeight(l).doubles == (network.weights[l].value * maskTensor(l)).doubles)
    }

    func dense() -> Tensor {
        var h = Tensor.concatenate([x, context], alongAxis: -1)
        for l in network.weights.indices {
            h = linear(h, weight: network.weights[l].value * maskTensor(l), bias: network.biases[l].value)
            if l < network.weights.count - 1 { h = network.activation(h) }
        }
        return h.reshaped(to: [5, 9, 30])
    }
    func gradients(_ output: () -> Tensor) -> ([Double], [[Double]]) {
        for p in network.weights { p.zeroGrad() }
        let out = output()
        (out * out).sum().backward()
        return (out.doubles, network.weights.map { $0.grad!.doubles })
    }
    let (blockedOut, blockedGrads) = gradients { network(x, context: context) }
    let (denseOut, denseGrads) = gradients(dense)
    #expect(maxAbsDifference(blockedOut, denseOut) < 1e-12)
    for (a, b) in zip(blockedGrads, denseGrads) { #expect(maxAbsDifference(a, b) < 1e-10) }
}

/// With a context, every dimension's parameters depend on it, the first in the order included
/// (through the hidden units of degree 0), while no output sees the last dimension's input.
@Test(arguments: [1, 3])
func everyDimensionOfAConditionalMADESeesTheContext(dimensions d: Int) throws {
    var g = RandomGenerator(seed: 7)
    let network = try DenseAutoregressive(hiddenSizes: [12, 12], order: .reversed).makeNetwork(
        inputSize: d, contextSize: 2, outputsPerDimension: 2, outputBias: [0, 0], dtype: .float64, generator: &g)
    for p in network.weights + network.biases { p.value = Tensor.randn(p.shape, generator: &g, dtype: .float64) }
    let x = Tensor.randn([4, d], generator: &g, dtype: .float64)
    let c1 = Tensor.randn([4, 2], generator: &g, dtype: .float64), c2 = Tensor.randn([4, 2], generator: &g, dtype: .float64)
    let (a, b) = (network(x, context: c1).doubles, network(x, context: c2).doubles)
    for dimension in 0..<d {
        let changed = (0..<4).allSatisfy { r in (0..<2).allSatisfy { k in a[(r * d + dimension) * 2 + k] != b[(r * d + dimension) * 2 + k] } }
        #expect(changed, "dimension \(dimension)'s parameters ignore the context")
    }
    var shifted = x.doubles
    let last = network.variableOrder[d - 1]
    for r in 0..<4 { shifted[r * d + last] += 1 }
    let moved = network(Tensor(shifted, shape: [4, d], dtype: .float64), context: c1).doubles
    #expect(maxAbsDifference(moved, a) == 0, "an output depends on the last dimension in the order")
}

/// A new MADE starts near its identity parameters, yet its first gradient already reaches every
/// layer: the last layer's weights are small, not zero.
@Test func aNewMADEStartsNearTheIdentityWithGradientsInEveryLayer() throws {
    var g = RandomGenerator(seed: 3)
    let identity = [0.5, -1.0]
    let network = try DenseAutoregressive(hiddenSizes: [32, 32]).makeNetwork(
        inputSize: 4, contextSize: 0, outputsPerDimension: 2, outputBias: identity, dtype: .float64, generator: &g)
    let x = Tensor.randn([64, 4], generator: &g, dtype: .float64)
    let out = network(x, context: nil)
    let deviation = zip(out.doubles, (0..<out.count).map { identity[$0 % 2] }).map { abs($0 - $1) }.max()!
    #expect(deviation > 1e-6 && deviation < 0.05, "outputs move off the identity by \(deviation)")
    // The bound of the last layer is 1% of PyTorch's U(±1/√fan-in).
    let last = network.weights[network.weights.count - 1].value.doubles
    #expect(last.contains { abs($0) > 1e-6 } && last.allSatisfy { abs($0) <= 0.01 / 32.0.squareRoot() })
    for p in network.weights { p.zeroGrad() }
    (out * out).sum().backward()
    for (l, weight) in network.weights.enumerated() {
        #expect((weight.grad?.doubles ?? []).contains { $0 != 0 }, "layer \(l) gets no gradient")
    }
}

@Test func aMADEFollowsChangesToItsWeightsAfterKeepingTheMaskedOnes() throws {
    func make() throws -> MaskedAutoregressiveNetwork {
        var g = RandomGenerator(seed: 4)
        return try DenseAutoregressive(hiddenSizes: [32, 32]).makeNetwork(
            inputSize: 4, contextSize: 0, outputsPerDimension: 2, outputBias: [0, 0], dtype: .float64, generator: &g)
    }
    let network = try make(), fresh = try make()
    var g = RandomGenerator(seed: 5)
    let x = Tensor.randn([64, 4], generator: &g, dtype: .float64)
    // Both passes keep what they derive from the weights (masked weights, the sorted layout).
    _ = withoutGradients { network(x, context: nil) }
    let adam = Adam(network.namedParameters.map(\.parameter), learningRate: 0.1)
    adam.step(minimizing: network(x, context: nil).square().sum())   // changes by update(_:)
    network.weights[1].value = network.weights[1].value * 1.5         // and by assignment
    for ((_, changed), (_, copy)) in zip(network.namedParameters, fresh.namedParameters) { copy.value = changed.value }
    let expected = fresh(x, context: nil).doubles
    #expect(maxAbsDifference(network(x, context: nil).doubles, expected) < 1e-12)
    #expect(maxAbsDifference(withoutGradients { network(x, context: nil) }.doubles, expected) < 1e-12)
}
