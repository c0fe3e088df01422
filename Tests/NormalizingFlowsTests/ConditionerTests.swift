import Testing
@testable import NormalizingFlows

/// The MADE's one pass (``MADELayout``: degree order, packed forward products, blocked backward
/// ones) computes what plain dense layers on weights masked from the degrees compute, values and
/// the gradients of every weight, bias, input and context, for every activation, with and
/// without skip connections and mean-field weights, in layers large enough to run in blocks.
@Test(arguments: Activation.allCases.map { ($0, false, WeightParameterization.standard) }
      + [(Activation.relu, true, .standard), (.tanh, true, .meanField)])
func theMADEPassMatchesDenseLayersOnMaskedWeights(_ activation: Activation, _ skip: Bool, _ parameterization: WeightParameterization) throws {
    var g = RandomGenerator(seed: 41)
    let (d, c, p, rows) = (9, 2, 30, 5)
    let network = try DenseAutoregressive(hiddenSizes: [256, 256], activation: activation, skipConnections: skip, order: .random,
                                          parameterization: parameterization).makeNetwork(
        inputSize: d, contextSize: c, outputsPerDimension: p, outputBias: [Double](repeating: 0, count: p), dtype: .float64, generator: &g)
    let layout = network.layout(Double.self)
    #expect(layout.hidden[1].blocks.count > 1 && layout.output.blocks.count > 1, "the test needs blocked layers")
    for parameter in network.parameters { parameter.value = parameter.value + Tensor.randn(parameter.shape, generator: &g, dtype: .float64) * 0.05 }
    let x = Parameter(Tensor.randn([rows, d], generator: &g, dtype: .float64))
    let context = Parameter(Tensor.randn([rows, c], generator: &g, dtype: .float64))

    // The masks written out from the degrees: a unit of degree g sees inputs (context: degree 0)
    // of degree ≤ g; an output for a dimension of degree g sees hidden units of degree < g.
    var inputDegree = [Int](repeating: 0, count: d)
    for (position, dimension) in network.variableOrder.enumerated() { inputDegree[dimension] = position + 1 }
    let hidden = MaskedAutoregressiveNetwork.hiddenDegrees(size: 256, inputs: d, context: true)
    let layerDegrees = [inputDegree + [0, 0], hidden, hidden, (0..<(d * p)).map { inputDegree[$0 / p] }]
    func maskTensor(rows: [Int], columns: [Int], strict: Bool) -> Tensor {
        let multiplier = parameterization.multiplier(fanIn: columns.count)
        return Tensor(rows.flatMap { r in columns.map { c in (strict ? r > c : r >= c) ? multiplier : 0 } },
                      shape: [rows.count, columns.count], dtype: .float64)
    }
    func dense() -> Tensor {
        var h = Tensor.concatenate([x.value, context.value], alongAxis: -1)
        for l in network.weights.indices {
            let mask = maskTensor(rows: layerDegrees[l + 1], columns: layerDegrees[l], strict: l == network.weights.count - 1)
            h = linear(h, weight: network.weights[l].value * mask, bias: network.biases[l].value)
            if l < network.weights.count - 1 { h = activation(h) }
        }
        if let skipWeight = network.skipWeight {
            h = h + linear(x.value, weight: skipWeight.value * maskTensor(rows: layerDegrees[3], columns: inputDegree, strict: true), bias: nil)
        }
        return h.reshaped(to: [rows, d, p])
    }
    let upstream = Tensor.randn([rows, d, p], generator: &g, dtype: .float64)
    let differentiated = network.parameters + [x, context]
    func gradients(_ output: () -> Tensor) -> ([Double], [[Double]]) {
        for parameter in differentiated { parameter.zeroGrad() }
        let out = output()
        (out * upstream).sum().backward()
        return (out.doubles, differentiated.map { $0.grad!.doubles })
    }
    let (madeOut, madeGrads) = gradients { network(x.value, context: context.value) }
    let (denseOut, denseGrads) = gradients(dense)
    #expect(maxAbsDifference(madeOut, denseOut) < 1e-12)
    for (a, b) in zip(madeGrads, denseGrads) { #expect(maxAbsDifference(a, b) < 1e-10) }
    // Without gradients, the same values.
    let plain = withoutGradients { network(x.value, context: context.value) }
    #expect(maxAbsDifference(plain.doubles, denseOut) < 1e-12)
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
