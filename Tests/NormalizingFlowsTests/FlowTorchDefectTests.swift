import Foundation
import Testing
@testable import NormalizingFlows

/// Each test would fail on the FlowTorch 0.8 defect it names (../shared/notes/peers.md §1.4).

@Test("#115: an autoregressive bijector composes with elementwise ones", arguments: [
    Compose([AffineAutoregressive(hiddenSizes: [8]), Tanh()]) as any BijectorPlan,
    Compose([AffineAutoregressive(hiddenSizes: [8]), Affine()]),
    Compose([Spline(bins: 4), AffineAutoregressive(hiddenSizes: [8]), Sigmoid()]),
])
func autoregressiveComposesWithElementwise(_ plan: any BijectorPlan) throws {
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: plan)
    let (y, logProbs) = try flow.sampleAndLogProb(10)
    #expect(logProbs.shape == [10])
    #expect(maxAbsDifference(try flow.logProb(y).doubles, logProbs.doubles) < 1e-8)
}

@Test func matrixEventShapesWorkWithAutoregressiveBijectors() throws {
    let flow = try Flow(base: Normal.standard([2, 3], dtype: .float64),
                        plan: Compose([AffineAutoregressive(hiddenSizes: [12]), Permute(), SplineAutoregressive(conditioner: .init(hiddenSizes: [12]))]))
    var g = RandomGenerator(seed: 1)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.1 }
    let (y, logProbs) = try flow.sampleAndLogProb(5, generator: &g)
    #expect(y.shape == [5, 2, 3] && logProbs.shape == [5])
    #expect(maxAbsDifference(try flow.logProb(y).doubles, logProbs.doubles) < 1e-8)
}

@Test func elementwiseBijectorsWorkOnABatchedBase() throws {
    // Batch shape [3], event shape []: three independent scalar distributions.
    let base = Normal(loc: Tensor([0, 1, 2], dtype: .float64), scale: Tensor([1, 1, 1], dtype: .float64), eventRank: 0)
    let flow = try Flow(base: base, plan: Compose([Spline(bins: 4), AffineFixed(loc: 1, scale: 2)]))
    #expect(flow.batchShape == [3] && flow.eventShape == [])
    let (y, logProbs) = try flow.sampleAndLogProb(7)
    #expect(y.shape == [7, 3] && logProbs.shape == [7, 3])
    // The spline starts near the identity, so each column is close to N(1 + 2μ, 2²).
    let shifted = Normal(loc: Tensor([1, 3, 5], dtype: .float64), scale: .full([3], 2, dtype: .float64), eventRank: 0)
    #expect(maxAbsDifference(try flow.logProb(y).doubles, try shifted.logProb(y).doubles) < 0.05)
}

@Test func float64BasesGiveFloat64ParametersAndDensities() throws {
    let flow = try Flow(base: Normal.standard([3], dtype: .float64),
                        plan: Compose([AffineAutoregressive(hiddenSizes: [8]), Spline(), Affine()]))
    #expect(flow.parameters.allSatisfy { $0.dtype == .float64 })
    let (y, logProbs) = try flow.sampleAndLogProb(4)
    #expect(y.dtype == .float64 && logProbs.dtype == .float64)
    let loss = try -flow.logProb(y).mean()
    loss.backward()
    #expect(flow.parameters.allSatisfy { $0.grad?.dtype == .float64 })
}

@Test func randomOrdersSurviveSavingAndLoading() throws {
    let plan = Compose([
        AffineAutoregressive(conditioner: DenseAutoregressive(hiddenSizes: [8], order: .random)),
        Permute(), AffineAutoregressive(hiddenSizes: [8]),
    ])
    let original = try Flow(base: Normal.standard([5], dtype: .float64), plan: plan, seed: 1)
    var g = RandomGenerator(seed: 9)
    for p in original.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.3 }
    let y = Tensor.randn([20, 5], generator: &g, dtype: .float64)
    let expected = try original.logProb(y).doubles

    let rebuilt = try Flow(base: Normal.standard([5], dtype: .float64), plan: plan, seed: 2)
    #expect(rebuilt.state()["bijector.1.permutation"]?.doubles != original.state()["bijector.1.permutation"]?.doubles)
    try rebuilt.load(state: original.state())
    #expect(try rebuilt.logProb(y).doubles == expected)

    var broken = original.state()
    broken["bijector.1.permutation"] = Tensor([0, 0, 1, 2, 3], dtype: .float64)
    #expect(throws: FlowError.self) { try rebuilt.load(state: broken) }
    broken = original.state()
    broken.removeValue(forKey: "bijector.0.conditioner.layers.0.weight")
    #expect(throws: FlowError.self) { try rebuilt.load(state: broken) }
}

@Test("context reaches the conditioner", arguments: [
    AffineAutoregressive(hiddenSizes: [8]) as any BijectorPlan,
    SplineAutoregressive(bins: 4, conditioner: .init(hiddenSizes: [8])),
    Affine(),
])
func contextReachesTheConditioner(_ plan: any BijectorPlan) throws {
    let flow = try Flow(base: Normal.standard([2], dtype: .float64), plan: plan, contextSize: 3)
    var g = RandomGenerator(seed: 5)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.3 }
    let y = Tensor.randn([6, 2], generator: &g, dtype: .float64)
    let c1 = Tensor([1, 0, -1], dtype: .float64), c2 = Tensor([-2, 0.5, 3], dtype: .float64)
    let lp1 = try flow.logProb(y, context: c1).doubles, lp2 = try flow.logProb(y, context: c2).doubles
    #expect(maxAbsDifference(lp1, lp2) > 1e-3)
    // Per-row contexts and a gradient with respect to the context.
    let perRow = Tensor.randn([6, 3], generator: &g, dtype: .float64).requiringGradient()
    try flow.logProb(y, context: perRow).sum().backward()
    #expect(perRow.grad?.doubles.contains { $0 != 0 } == true)
    #expect(throws: FlowError.self) { try flow.logProb(y) }                                   // context missing
    #expect(throws: FlowError.self) { try flow.logProb(y, context: Tensor([1, 2], dtype: .float64)) } // wrong size
}
