import Foundation
import Testing
@testable import NormalizingFlows

private func data(_ n: Int) -> Tensor {
    var g = RandomGenerator(seed: 8)
    return Tensor.randn([n, 3], generator: &g, dtype: .float64) * Tensor([2, 0.5, 7], dtype: .float64) + Tensor([10, -3, 0], dtype: .float64)
}

@Test func actNormStandardisesTheFirstTrainingBatchAndKeepsThatAfterLoading() throws {
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: ActNorm())
    let y = data(500)
    // Outside training it is the identity; in training the first batch initialises it.
    let (x0, _) = try flow.bijector.inverse(y, context: nil)
    #expect(x0.doubles == y.doubles)
    let (x, _) = try training(flow) { try flow.bijector.inverse(y, context: nil) }
    let mean = x.mean(alongAxis: 0).doubles, variance = x.square().mean(alongAxis: 0).doubles
    #expect(mean.allSatisfy { abs($0) < 1e-10 } && variance.allSatisfy { abs($0 - 1) < 1e-8 })
    // A second batch does not re-initialise; the state survives a state round trip.
    let before = flow.state()
    _ = try training(flow) { try flow.bijector.inverse(y * 3, context: nil) }
    #expect(flow.state()["bijector.shift"]?.doubles == before["bijector.shift"]?.doubles)
    let copy = try Flow(base: Normal.standard([3], dtype: .float64), plan: ActNorm())
    try copy.load(state: before)
    _ = try training(copy) { try copy.bijector.inverse(y * 3, context: nil) }
    #expect(copy.state()["bijector.shift"]?.doubles == before["bijector.shift"]?.doubles)
}

@Test func batchNormUsesBatchStatisticsInTrainingAndRunningOnesOtherwise() throws {
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: BatchNorm(momentum: 0.5))
    let y = data(1000)
    let (x, logDet) = try training(flow) { try flow.bijector.inverse(y, context: nil) }
    #expect(x.mean(alongAxis: 0).doubles.allSatisfy { abs($0) < 1e-10 })
    // log |det| = −½ Σ log(var + ε) with the batch variance.
    let variance = (y - y.mean(alongAxis: 0)).square().mean(alongAxis: 0)
    #expect(abs(logDet.doubles[0] + ((variance + 1e-5).log().sum().item * 0.5)) < 1e-9)
    // Running averages moved halfway towards the batch statistics.
    let state = flow.state()
    #expect(abs(state["bijector.running_mean"]!.doubles[0] - 0.5 * y.mean(alongAxis: 0).doubles[0]) < 1e-9)
    // Outside training the layer uses the running averages and inverts exactly.
    let (x2, _) = try flow.bijector.inverse(y, context: nil)
    let (back, _) = try flow.bijector.forward(x2, context: nil)
    #expect(maxAbsDifference(back.doubles, y.doubles) < 1e-9)
}

@Test func aFlowWithNormalisationLayersTrainsWithFit() throws {
    let plan = Compose([ActNorm(), MAF(layers: 2, conditioner: .init(hiddenSizes: [16])), BatchNorm(), LULinear()])
    let flow = try Flow(base: Normal.standard([3]), plan: plan)
    let train = data(3000).converted(to: .float32)
    let before = try negativeLogLikelihood(flow, train)
    var options = FitOptions()
    options.steps = 300
    options.learningRate = 5e-3
    try fit(flow, data: train, options: options)
    let after = try negativeLogLikelihood(flow, data(2000).converted(to: .float32))
    // The data are Gaussian with entropy Σ ½ log(2πe σ²) = 4.26 + log(2·0.5·7) = 6.20.
    let entropy = 1.5 * Foundation.log(2 * Double.pi * M_E) + Foundation.log(2 * 0.5 * 7)
    #expect(before > entropy + 5 && after < entropy + 0.1, "NLL \(before) → \(after), entropy \(entropy)")
}
