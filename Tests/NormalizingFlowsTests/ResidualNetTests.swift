import Foundation
import Testing
@testable import NormalizingFlows

/// nflows' ResidualNet written out in plain Double loops over the module's weights, apart from
/// the tensor operations the module records: h₀ = W₀[x, c] + b₀; per block
/// t = W₂ act(W₁ act(h) + b₁) + b₂, gated by sigmoid(W_c c + b_c) when there is a context,
/// h += t; y = W_f h + b_f.
private func residualNetByHand(_ net: ResidualNet, x: [Double], context: [Double]?) -> [Double] {
    func dense(_ layer: Linear, _ v: [Double]) -> [Double] {
        let w = layer.weight.value.doubles, b = layer.bias!.value.doubles, fanIn = layer.inputFeatures
        var out = b
        for o in out.indices {
            for i in 0..<fanIn { out[o] += w[o * fanIn + i] * v[i] }
        }
        return out
    }
    func act(_ v: [Double]) -> [Double] { net.activation(Tensor(v, shape: [v.count], dtype: .float64)).doubles }
    var h = dense(net.initialLayer, x + (context ?? []))
    for block in net.blocks {
        var t = dense(block.linearLayers[1], act(dense(block.linearLayers[0], act(h))))
        if let context, let gate = block.contextLayer {
            t = zip(t, dense(gate, context)).map { $0 * (1 / (1 + Foundation.exp(-$1))) }
        }
        h = zip(h, t).map { $0 + $1 }
    }
    return dense(net.finalLayer, h)
}

/// A residual coupling network (with and without a context, one to three blocks, several
/// activations) computes the formula row by row, and its gradients with respect to every
/// weight, the input and the context agree with central differences in Float64.
@Test(arguments: [(Activation.relu, 1, 0), (.tanh, 2, 2), (.elu, 3, 1), (.softplus, 2, 0)])
func residualNetMatchesItsFormulaAndFiniteDifferences(_ activation: Activation, _ blocks: Int, _ contextSize: Int) throws {
    var g = RandomGenerator(seed: 7)
    let (inputs, hidden, outputs, rows) = (3, 5, 4, 6)
    let net = try #require(try CouplingNetwork(hiddenSizes: [hidden], activation: activation, residualBlocks: blocks).make(
        inputs: inputs, contextSize: contextSize, outputs: outputs, outputBias: [0.5, -1], dtype: .float64, generator: &g) as? ResidualNet)
    #expect(net.finalLayer.weight.value.doubles.allSatisfy { $0 == 0 })
    #expect(net.finalLayer.bias!.value.doubles == [0.5, -1, 0.5, -1])
    var names = ["initial_layer.weight", "initial_layer.bias"]
    for b in 0..<blocks {
        if contextSize > 0 { names += ["blocks.\(b).context_layer.weight", "blocks.\(b).context_layer.bias"] }
        names += (0..<2).flatMap { ["blocks.\(b).linear_layers.\($0).weight", "blocks.\(b).linear_layers.\($0).bias"] }
    }
    #expect(net.namedParameters.map(\.name) == names + ["final_layer.weight", "final_layer.bias"])
    // Weights away from their starting values (the zero last layer, the ±10⁻³ second layers).
    for parameter in net.parameters { parameter.value = Tensor.randn(parameter.shape, generator: &g, dtype: .float64) * 0.7 }
    let x = Tensor.randn([rows, inputs], generator: &g, dtype: .float64)
    let c = contextSize > 0 ? Tensor.randn([rows, contextSize], generator: &g, dtype: .float64) : nil
    let y = net(x, context: c).doubles
    var worstValue = 0.0
    for r in 0..<rows {
        let expected = residualNetByHand(net, x: Array(x.doubles[(r * inputs)..<((r + 1) * inputs)]),
                                         context: c.map { Array($0.doubles[(r * contextSize)..<((r + 1) * contextSize)]) })
        worstValue = Swift.max(worstValue, maxAbsDifference(Array(y[(r * outputs)..<((r + 1) * outputs)]), expected))
    }
    #expect(worstValue < 1e-12)
    let weights = Tensor.randn([rows, outputs], generator: &g, dtype: .float64)
    let worst = try parameterGradientError(net) { (net(x, context: c) * weights).sum() }
    let check = gradCheck(c.map { [x, $0] } ?? [x]) { net($0[0], context: $0.count > 1 ? $0[1] : nil) }
    print("ResidualNet \(activation) \(blocks) blocks, context \(contextSize): weights \(worst), input and context \(check.relativeErrors)")
    #expect(check.maxRelativeError < 1e-6)
}

/// A coupling network without residual blocks is written as before (no `residualBlocks` key) and
/// a plan from before decodes to one; residual networks need one hidden width.
@Test func residualCouplingNetworksEncodeBesideOldPlans() throws {
    let old = #"{"type":"AffineCoupling","options":{"mask":{"alternating":{"parity":0}},"conditioner":{"hiddenSizes":[8,8],"activation":"relu"},"scale":{"exp":{}}}}"#
    let decoded = try #require(try PlanCoding.plan(fromJSON: old) as? AffineCoupling)
    #expect(decoded.conditioner == CouplingNetwork(hiddenSizes: [8, 8]))
    #expect(!(try PlanCoding.json(AffineCoupling(conditioner: .init(hiddenSizes: [8])))).contains("residualBlocks"))
    let residual = SplineCoupling(bins: 4, bound: 3, conditioner: .init(hiddenSizes: [16], residualBlocks: 2))
    let again = try #require(try PlanCoding.plan(fromJSON: PlanCoding.json(residual)) as? SplineCoupling)
    #expect(again.conditioner.residualBlocks == 2 && again.transform.logitScale == 0.25)
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([4]), plan: AffineCoupling(conditioner: .init(hiddenSizes: [8, 8], residualBlocks: 1))) }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([4]), plan: AffineCoupling(conditioner: .init(hiddenSizes: [8], residualBlocks: -1))) }
    // The budget counts the blocks: 10⁶ blocks of width 1000 are refused before allocation.
    let huge = AffineCoupling(conditioner: .init(hiddenSizes: [1000], residualBlocks: 1_000_000))
    #expect(try PlanBudget.minimum(of: huge, eventSize: 4).parameters >= 2e12)
}

/// A conditional flow of residual coupling layers saves under nflows' module names and loads
/// back to the same densities.
@Test func residualCouplingFlowsSaveAndLoad() throws {
    let plan = Compose([AffineCoupling(conditioner: .init(hiddenSizes: [6], activation: .tanh, residualBlocks: 2)),
                        SplineCoupling(mask: .alternating(parity: 1), bins: 3, bound: 3, conditioner: .init(hiddenSizes: [5], residualBlocks: 1))])
    try expectFileRoundTrip(plan, names: ["bijector.0.conditioner.blocks.1.context_layer.weight", "bijector.1.conditioner.final_layer.bias"])
}

/// A conditional flow of `plan` on 3 values (context 2), its weights moved off their starting
/// values, holds the tensors `names` and scores the same after a model file round trip.
private func expectFileRoundTrip(_ plan: any BijectorPlan, names: [String]) throws {
    let flow = try Flow(base: Normal.standard([3]), plan: plan, contextSize: 2)
    var g = RandomGenerator(seed: 3)
    for parameter in flow.parameters { parameter.value = parameter.value + Tensor.randn(parameter.shape, generator: &g) * 0.3 }
    for name in names { #expect(flow.state().keys.contains(name)) }
    let path = "\(scratchFolder())/residual.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let x = Tensor.randn([10, 3], generator: &g), c = Tensor.randn([10, 2], generator: &g)
    #expect(try loaded.logProb(x, context: c).doubles == flow.logProb(x, context: c).doubles)
}

/// nflows' residual MADE written out from the stored weights and masks made from the degrees
/// (a unit of degree g reads inputs and units of degree ≤ g, context of degree 0; an output of
/// the dimension at position t reads units of degree < t): h = M₀W₀[x, c] + b₀; per block
/// h += M W₂ act(M W₁ act(h) + b₁) + b₂; y = M_f W_f h + b_f.
private func residualMADEByHand(_ network: MaskedAutoregressiveNetwork, x: [Double], context: [Double]) -> [Double] {
    let d = network.variableOrder.count, p = network.outputsPerDimension, h = network.hiddenSizes[0]
    var inputDegree = [Int](repeating: 0, count: d)
    for (position, dimension) in network.variableOrder.enumerated() { inputDegree[dimension] = position + 1 }
    let hidden = MaskedAutoregressiveNetwork.hiddenDegrees(size: h, inputs: d, context: !context.isEmpty)
    func masked(_ layer: Linear, _ v: [Double], allowed: (Int, Int) -> Bool) -> [Double] {
        let w = layer.weight.value.doubles, fanIn = layer.inputFeatures
        var out = layer.bias!.value.doubles
        for o in out.indices {
            for i in 0..<fanIn where allowed(o, i) { out[o] += w[o * fanIn + i] * v[i] }
        }
        return out
    }
    func act(_ v: [Double]) -> [Double] { network.activation(Tensor(v, shape: [v.count], dtype: .float64)).doubles }
    let columnDegree = inputDegree + [Int](repeating: 0, count: context.count)
    var stream = masked(network.layers[0], x + context) { hidden[$0] >= columnDegree[$1] }
    for k in 0..<network.residualBlocks {
        let inner = act(masked(network.layers[2 * k + 1], act(stream)) { hidden[$0] >= hidden[$1] })
        stream = zip(stream, masked(network.layers[2 * k + 2], inner) { hidden[$0] >= hidden[$1] }).map { $0 + $1 }
    }
    return masked(network.layers[network.layers.count - 1], stream) { inputDegree[$0 / p] > hidden[$1] }
}

/// The residual MADE's one pass (``MADELayout``) computes the formula, and its gradients with
/// respect to every weight, the input and the context agree with central differences in Float64.
@Test(arguments: [(Activation.relu, 1, 0, 3), (.tanh, 2, 2, 4), (.elu, 3, 0, 5), (.softplus, 2, 1, 2)])
func residualMADEMatchesItsFormulaAndFiniteDifferences(_ activation: Activation, _ blocks: Int, _ contextSize: Int, _ d: Int) throws {
    var g = RandomGenerator(seed: 11)
    let (width, p, rows) = (7, 3, 5)
    let network = try DenseAutoregressive(hiddenSizes: [width], activation: activation, order: .random, residualBlocks: blocks).makeNetwork(
        inputSize: d, contextSize: contextSize, outputsPerDimension: p, outputBias: [0, 0, 0], dtype: .float64, generator: &g)
    #expect(network.layers.count == 2 * blocks + 2)
    for parameter in network.parameters { parameter.value = Tensor.randn(parameter.shape, generator: &g, dtype: .float64) * 0.6 }
    let x = Tensor.randn([rows, d], generator: &g, dtype: .float64)
    let c = contextSize > 0 ? Tensor.randn([rows, contextSize], generator: &g, dtype: .float64) : nil
    let y = network(x, context: c).doubles, outputs = d * p
    var worstValue = 0.0
    for r in 0..<rows {
        let expected = residualMADEByHand(network, x: Array(x.doubles[(r * d)..<((r + 1) * d)]),
                                          context: c.map { Array($0.doubles[(r * contextSize)..<((r + 1) * contextSize)]) } ?? [])
        worstValue = Swift.max(worstValue, maxAbsDifference(Array(y[(r * outputs)..<((r + 1) * outputs)]), expected))
    }
    #expect(worstValue < 1e-12)
    let weights = Tensor.randn([rows, d, p], generator: &g, dtype: .float64)
    let worst = try parameterGradientError(network) { (network(x, context: c) * weights).sum() }
    let check = gradCheck(c.map { [x, $0] } ?? [x]) { network($0[0], context: $0.count > 1 ? $0[1] : nil) }
    print("residual MADE \(activation) \(blocks) blocks, D \(d), context \(contextSize): weights \(worst), input and context \(check.relativeErrors)")
    #expect(check.maxRelativeError < 1e-6)
}

/// Residual MADEs encode beside old plans, need one hidden width, and save and load.
@Test func residualMADEPlansSaveAndLoad() throws {
    #expect(!(try PlanCoding.json(MAF(layers: 1))).contains("residualBlocks"))
    let plan = Compose([AffineAutoregressive(conditioner: DenseAutoregressive(hiddenSizes: [9], residualBlocks: 2)),
                        SplineAutoregressive(bins: 3, bound: 3, conditioner: DenseAutoregressive(hiddenSizes: [6], activation: .tanh, residualBlocks: 1))])
    let again = try PlanCoding.plan(fromJSON: PlanCoding.json(plan))
    #expect(try PlanCoding.json(again) == PlanCoding.json(plan))
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([3]), plan: MAF(layers: 1, conditioner: DenseAutoregressive(hiddenSizes: [8, 8], residualBlocks: 1))) }
    try expectFileRoundTrip(plan, names: ["bijector.0.conditioner.layers.5.weight", "bijector.1.conditioner.layers.3.bias"])
}
