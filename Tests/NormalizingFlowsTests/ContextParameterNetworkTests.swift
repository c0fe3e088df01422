import Foundation
import Testing
@testable import NormalizingFlows

// Conditional planar, radial, Householder and Sylvester layers: θ(c) = θ + g(c). The
// conformance suite checks their inverses, Jacobians and gradients with a context; these tests
// check that the context enters as that formula says.

/// The layers whose parameters a context network shifts, with their event sizes.
private let conditionalLayers: [(name: String, plan: any BijectorPlan, size: Int)] = [
    ("Planar", Planar(), 3),
    ("Radial", Radial(), 3),
    ("Householder", Householder(reflections: 2), 3),
    ("Sylvester orthogonal", Sylvester(variant: .orthogonal, columns: 2), 4),
    ("Sylvester Householder", Sylvester(variant: .householder, reflections: 2), 3),
    ("Sylvester triangular", Sylvester(variant: .triangular), 3),
]

private func make(_ plan: any BijectorPlan, size: Int, contextSize: Int, seed: UInt64 = 7) throws -> any Bijector {
    var generator = RandomGenerator(seed: seed)
    return try plan.makeBijector(for: BijectorSpec(eventShape: [size], contextSize: contextSize, dtype: .float64), generator: &generator)
}

/// The bijector's own parameters (not its context network's), by name.
private func ownParameters(_ bijector: any Bijector) -> [(name: String, parameter: Parameter)] {
    bijector.namedParameters.filter { !$0.name.hasPrefix("context_network.") }
}

@Test("a new conditional layer is the unconditional one, whatever the context", arguments: conditionalLayers.indices)
func newConditionalLayerIgnoresContext(_ index: Int) throws {
    let (name, plan, d) = conditionalLayers[index]
    let conditional = try make(plan, size: d, contextSize: 2), plain = try make(plan, size: d, contextSize: 0)
    var generator = RandomGenerator(seed: 3)
    let x = Tensor.randn([5, d], generator: &generator, dtype: .float64) * 0.7
    let context = Tensor.randn([5, 2], generator: &generator, dtype: .float64) * 3
    let (y, logDet) = try conditional.forward(x, context: context)
    let (yPlain, logDetPlain) = try plain.forward(x, context: nil)
    #expect(maxAbsDifference(y.doubles, yPlain.doubles) <= 1e-12, "\(name)")
    #expect(maxAbsDifference(logDet.doubles, logDetPlain.doubles) <= 1e-12, "\(name)")
}

@Test("θ(c) = θ + g(c): a constant shift δ of the network gives the unconditional layer at θ + δ", arguments: conditionalLayers.indices)
func contextShiftsParametersInOrder(_ index: Int) throws {
    let (name, plan, d) = conditionalLayers[index]
    let conditional = try make(plan, size: d, contextSize: 2), plain = try make(plan, size: d, contextSize: 0)
    var generator = RandomGenerator(seed: 4)
    // g(c) = δ for every c: the network's last layer has zero weights and bias δ.
    let last = conditional.namedParameters.filter { $0.name.hasPrefix("context_network.") }.suffix(2)
    let (weight, bias) = (last.first!.parameter, last.last!.parameter)
    #expect(bias.shape.count == 1 && weight.shape[0] == bias.shape[0], "\(name): the network's last layer")
    weight.value = .zeros(weight.shape, dtype: .float64)
    let delta = Tensor.randn(bias.shape, generator: &generator, dtype: .float64) * 0.3
    bias.value = delta
    // The unconditional layer's parameters, in declaration order, take θ + their slice of δ;
    // Sylvester's Q (its free matrix or reflection vectors) is shared by every context.
    var offset = 0
    let deltas = delta.doubles
    for ((ownName, own), (plainName, plainParameter)) in zip(ownParameters(conditional), plain.namedParameters) {
        #expect(ownName == plainName, "\(name)")
        guard !["q", "householder_vectors"].contains(ownName) else {
            plainParameter.value = own.value
            continue
        }
        let count = own.value.count
        let shifted = zip(own.value.doubles, deltas[offset..<(offset + count)]).map { $0 + $1 }
        plainParameter.value = Tensor(shifted, shape: own.shape, dtype: .float64)
        offset += count
    }
    #expect(offset == deltas.count, "\(name): the network shifts every parameter but the shared ones")
    let x = Tensor.randn([6, d], generator: &generator, dtype: .float64) * 0.7
    let context = Tensor.randn([6, 2], generator: &generator, dtype: .float64)
    let (y, logDet) = try conditional.forward(x, context: context)
    let (yPlain, logDetPlain) = try plain.forward(x, context: nil)
    #expect(maxAbsDifference(y.doubles, yPlain.doubles) <= 1e-12, "\(name)")
    #expect(maxAbsDifference(logDet.doubles, logDetPlain.doubles) <= 1e-12, "\(name)")
    let (back, inverseLogDet) = try conditional.inverse(y, context: context)
    let (backPlain, inverseLogDetPlain) = try plain.inverse(yPlain, context: nil)
    #expect(maxAbsDifference(back.doubles, backPlain.doubles) <= 1e-10, "\(name)")
    #expect(maxAbsDifference(inverseLogDet.doubles, inverseLogDetPlain.doubles) <= 1e-10, "\(name)")
}

@Test("a context per event gives each event the layer of its own context", arguments: conditionalLayers.indices)
func contextPerEvent(_ index: Int) throws {
    let (name, plan, d) = conditionalLayers[index]
    let layer = try make(plan, size: d, contextSize: 2)
    var generator = RandomGenerator(seed: 5)
    for p in layer.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: .float64) * 0.3 }
    let x = Tensor.randn([4, d], generator: &generator, dtype: .float64) * 0.7
    let context = Tensor.randn([4, 2], generator: &generator, dtype: .float64)
    let (y, logDet) = try layer.forward(x, context: context)
    let (back, inverseLogDet) = try layer.inverse(y, context: context)
    var outputs: [Double] = [], logDets: [Double] = [], backs: [Double] = [], inverseLogDets: [Double] = []
    for row in 0..<4 {
        // One event with its context as a single shared row: the other code path.
        let (yRow, logDetRow) = try layer.forward(x.select(alongAxis: 0, index: row).unsqueezed(axis: 0),
                                                  context: context.select(alongAxis: 0, index: row))
        let (backRow, inverseRow) = try layer.inverse(yRow, context: context.select(alongAxis: 0, index: row))
        outputs += yRow.doubles; logDets += logDetRow.doubles; backs += backRow.doubles; inverseLogDets += inverseRow.doubles
    }
    #expect(maxAbsDifference(y.doubles, outputs) <= 1e-12, "\(name)")
    #expect(maxAbsDifference(logDet.doubles, logDets) <= 1e-12, "\(name)")
    #expect(maxAbsDifference(back.doubles, backs) <= 1e-10, "\(name)")
    #expect(maxAbsDifference(inverseLogDet.doubles, inverseLogDets) <= 1e-10, "\(name)")
    // Different contexts give different maps once the network is trained away from zero.
    #expect(maxAbsDifference(y.doubles, try layer.forward(x, context: context * 2).y.doubles) > 1e-3, "\(name)")
}

@Test("a conditional layer refuses a missing context, one of the wrong size, and a context it was not made for")
func conditionalLayerErrors() throws {
    for (name, plan, d) in conditionalLayers {
        let layer = try make(plan, size: d, contextSize: 2), plain = try make(plan, size: d, contextSize: 0)
        let x = Tensor.zeros([3, d], dtype: .float64)
        #expect(throws: FlowError.self, "\(name)") { try layer.forward(x, context: nil) }
        #expect(throws: FlowError.self, "\(name)") { try layer.inverse(x, context: Tensor.zeros([3, 5], dtype: .float64)) }
        #expect(throws: FlowError.self, "\(name)") { try layer.forward(x, context: Tensor.zeros([2, 2], dtype: .float64)) }
        #expect(throws: FlowError.self, "\(name)") { try plain.forward(x, context: Tensor.zeros([3, 2], dtype: .float64)) }
    }
}

@Test("a conditional planar flow saves and loads with its context network")
func conditionalPlanarRoundTrip() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: PlanarFlow(layers: 3), contextSize: 1, seed: 2)
    var generator = RandomGenerator(seed: 9)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator) * 0.2 }
    let path = scratchFolder() + "/planar.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let y = Tensor.randn([5, 2], generator: &generator), c = Tensor.randn([5, 1], generator: &generator)
    #expect(loaded.contextSize == 1)
    #expect(maxAbsDifference(try flow.logProb(y, context: c).doubles, try loaded.logProb(y, context: c).doubles) == 0)
    #expect(flow.namedParameters.map(\.name).contains("bijector.0.context_network.network.layers.2.weight"))
}
