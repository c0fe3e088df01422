import Foundation
import Testing
@testable import NormalizingFlows

/// nflows' MADE with `context_features` written out in plain Double loops from the stored weights
/// and the masks the degrees make (no context columns: hidden degrees 1…D − 1; a unit of degree g
/// reads inputs and units of degree ≤ g, an output of the dimension at position t units of
/// degree < t), with e₀ = act(W_c,0·c + b_c,0) and e_k = W_c,k·c + b_c,k:
/// feedforward h = act(M₀W₀x + b₀ + e₀), then h = act(MWh + b); residual h = M₀W₀x + b₀ + e₀,
/// per block h += MW₂ act(MW₁ act(h) + b₁ + e_k+1) + b₂; y = M_f W_f h + b_f.
private func contextLayersMADEByHand(_ network: MaskedAutoregressiveNetwork, x: [Double], context: [Double]) -> [Double] {
    let d = network.variableOrder.count, p = network.outputsPerDimension
    var inputDegree = [Int](repeating: 0, count: d)
    for (position, dimension) in network.variableOrder.enumerated() { inputDegree[dimension] = position + 1 }
    let degrees = network.hiddenSizes.map { MaskedAutoregressiveNetwork.hiddenDegrees(size: $0, inputs: d, context: false) }
    func dense(_ layer: Linear, _ v: [Double], allowed: (Int, Int) -> Bool = { _, _ in true }) -> [Double] {
        let w = layer.weight.value.doubles, fanIn = layer.inputFeatures
        var out = layer.bias!.value.doubles
        for o in out.indices {
            for i in 0..<fanIn where allowed(o, i) { out[o] += w[o * fanIn + i] * v[i] }
        }
        return out
    }
    func act(_ v: [Double]) -> [Double] { network.activation(Tensor(v, shape: [v.count], dtype: .float64)).doubles }
    func add(_ a: [Double], _ b: [Double]) -> [Double] { zip(a, b).map { $0 + $1 } }
    let e = network.contextLayers.enumerated().map { k, layer in k == 0 ? act(dense(layer, context)) : dense(layer, context) }
    var h = add(dense(network.layers[0], x) { degrees[0][$0] >= inputDegree[$1] }, e[0])
    if network.residualBlocks == 0 {
        h = act(h)
        for l in 1..<network.hiddenSizes.count { h = act(dense(network.layers[l], h) { degrees[l][$0] >= degrees[l - 1][$1] }) }
    } else {
        let g = degrees[0]
        for k in 0..<network.residualBlocks {
            let inner = act(add(dense(network.layers[2 * k + 1], act(h)) { g[$0] >= g[$1] }, e[k + 1]))
            h = add(h, dense(network.layers[2 * k + 2], inner) { g[$0] >= g[$1] })
        }
    }
    let last = degrees[degrees.count - 1]
    return dense(network.layers[network.layers.count - 1], h) { inputDegree[$0 / p] > last[$1] }
}

/// The MADE whose context has layers of its own computes nflows' formula in its one fused pass,
/// and its gradients with respect to every weight (the context layers' too), the input and the
/// context agree with central differences in Float64; sequential inversion (no gradients) inverts
/// it. Feedforward (several widths) and residual.
@Test(arguments: [([6], Activation.relu, 0, 3), ([7, 5], .tanh, 0, 4), ([7], .elu, 1, 3), ([5], .softplus, 2, 4), ([8], .relu, 3, 2)])
func contextLayersMADEMatchesItsFormulaAndFiniteDifferences(_ hidden: [Int], _ activation: Activation, _ blocks: Int, _ d: Int) throws {
    var g = RandomGenerator(seed: 21)
    let (p, rows, contextSize) = (2, 5, 3)
    let network = try DenseAutoregressive(hiddenSizes: hidden, activation: activation, order: .random, residualBlocks: blocks,
                                          contextLayers: true).makeNetwork(
        inputSize: d, contextSize: contextSize, outputsPerDimension: p, outputBias: [0, 0], dtype: .float64, generator: &g)
    #expect(network.contextLayers.count == 1 + blocks && network.layers[0].inputFeatures == d)
    for parameter in network.parameters { parameter.value = Tensor.randn(parameter.shape, generator: &g, dtype: .float64) * 0.6 }
    let x = Tensor.randn([rows, d], generator: &g, dtype: .float64), c = Tensor.randn([rows, contextSize], generator: &g, dtype: .float64)
    let y = network(x, context: c).doubles, outputs = d * p
    var worstValue = 0.0
    for r in 0..<rows {
        let expected = contextLayersMADEByHand(network, x: Array(x.doubles[(r * d)..<((r + 1) * d)]),
                                               context: Array(c.doubles[(r * contextSize)..<((r + 1) * contextSize)]))
        worstValue = Swift.max(worstValue, maxAbsDifference(Array(y[(r * outputs)..<((r + 1) * outputs)]), expected))
    }
    #expect(worstValue < 1e-12)
    // The context reaches every dimension but the first in the order (nflows' degrees).
    let moved = network(x, context: c + 0.5).doubles
    for r in 0..<rows {
        for i in 0..<d {
            let changed = (0..<p).contains { abs(moved[r * outputs + i * p + $0] - y[r * outputs + i * p + $0]) > 1e-12 }
            #expect(changed == (i != network.variableOrder[0]))
        }
    }
    let weights = Tensor.randn([rows, d, p], generator: &g, dtype: .float64)
    let worst = try parameterGradientError(network) { (network(x, context: c) * weights).sum() }
    let check = gradCheck([x, c]) { network($0[0], context: $0[1]) }
    print("context-layer MADE \(activation) \(hidden) \(blocks) blocks, D \(d): weights \(worst), input and context \(check.relativeErrors)")
    #expect(worst < 1e-6)
    #expect(check.maxRelativeError < 1e-6)
    // Sequential inversion adds the same offsets: an affine transform inverted from its outputs
    // (a missing offset would move x by O(1); exp scales of random weights amplify rounding to
    // about 10⁻⁹).
    let transform = AffineTransform(scale: .exp)
    let (forward, _) = transform.forward(x, parameters: network(x, context: c))
    let (inverse, _) = try withoutGradients { try network.sequentialInverse(forward, context: c, transform: transform) }
    #expect(maxAbsDifference(inverse.doubles, x.doubles) < 1e-8)
}

/// The option encodes only when set, saves and loads, and is ignored without a context.
@Test func contextLayersMADEPlansSaveAndLoad() throws {
    #expect(!(try PlanCoding.json(MAF(layers: 1))).contains("contextLayers"))
    let plan = Compose([AffineAutoregressive(conditioner: DenseAutoregressive(hiddenSizes: [9], contextLayers: true)),
                        SplineAutoregressive(bins: 3, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [6], activation: .tanh,
                                                                                                  residualBlocks: 2, contextLayers: true))])
    let text = try PlanCoding.json(plan)
    #expect(text.contains("\"contextLayers\":true"))
    #expect(try PlanCoding.json(PlanCoding.plan(fromJSON: text)) == text)
    let flow = try Flow(base: Normal.standard([3]), plan: plan, contextSize: 2)
    var g = RandomGenerator(seed: 3)
    for parameter in flow.parameters { parameter.value = parameter.value + Tensor.randn(parameter.shape, generator: &g) * 0.3 }
    for name in ["bijector.0.conditioner.context_layers.0.weight", "bijector.1.conditioner.context_layers.2.bias"] {
        #expect(flow.state().keys.contains(name))
    }
    let path = "\(scratchFolder())/context-layers.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let x = Tensor.randn([10, 3], generator: &g), c = Tensor.randn([10, 2], generator: &g)
    #expect(try loaded.logProb(x, context: c).doubles == flow.logProb(x, context: c).doubles)
    let unconditional = try Flow(base: Normal.standard([3]), plan: plan)
    #expect(!unconditional.state().keys.contains { $0.contains("context_layers") })
}
