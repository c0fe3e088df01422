import Foundation
import Testing
@testable import NormalizingFlows

private func normalLogPDF(_ x: Double, _ mu: Double, _ sigma: Double) -> Double {
    -0.5 * pow((x - mu) / sigma, 2) - Foundation.log(sigma) - 0.5 * Foundation.log(2 * Double.pi)
}

@Test func normalLogDensityMatchesTheFormula() throws {
    let normal = Normal(loc: Tensor([1, -2], dtype: .float64), scale: Tensor([0.5, 3], dtype: .float64))
    let x = Tensor([0.3, 1.0, 2.0, -7.0], shape: [2, 2], dtype: .float64)
    let lp = try normal.logProb(x).doubles
    #expect(abs(lp[0] - (normalLogPDF(0.3, 1, 0.5) + normalLogPDF(1, -2, 3))) < 1e-12)
    #expect(abs(lp[1] - (normalLogPDF(2, 1, 0.5) + normalLogPDF(-7, -2, 3))) < 1e-12)
}

@Test func normalLogDensityGradientAndBatchShapes() throws {
    // A batch shape [2] with events [3]: each batch row has its own parameters.
    let loc = Tensor([1, -2, 0.5, 0, 3, -1], shape: [2, 3], dtype: .float64)
    let scale = Tensor([0.5, 3, 1.5, 2, 0.25, 1], shape: [2, 3], dtype: .float64)
    let normal = Normal(loc: loc, scale: scale, eventRank: 1)
    var generator = RandomGenerator(seed: 3)
    let x = Tensor.randn([4, 2, 3], generator: &generator, dtype: .float64)
    let lp = try normal.logProb(x)
    #expect(lp.shape == [4, 2])
    let (xs, mus, sigmas) = (x.doubles, loc.doubles, scale.doubles)
    for o in 0..<8 {
        let expected = (0..<3).map { j in normalLogPDF(xs[3 * o + j], mus[3 * (o % 2) + j], sigmas[3 * (o % 2) + j]) }.reduce(0, +)
        #expect(abs(lp.doubles[o] - expected) < 1e-12)
    }
    // Its gradient in x, −(x − μ)/σ², against finite differences; and each element on its own.
    let check = gradCheck([x]) { inputs in try! normal.logProb(inputs[0]) }
    #expect(check.maxRelativeError < 1e-7, "\(check)")
    let elementwise = Normal(loc: loc, scale: scale, eventRank: 0)
    #expect(try elementwise.logProb(x).shape == [4, 2, 3])
    #expect(gradCheck([x]) { inputs in try! elementwise.logProb(inputs[0]) }.maxRelativeError < 1e-7)
    // Samples: μ + σ·ε, with the batch's parameters repeating along the sample axis.
    var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
    let samples = try normal.sample(5, generator: &a).doubles
    let noise = Tensor.randn([5, 2, 3], generator: &b, dtype: .float64).doubles
    for e in samples.indices { #expect(abs(samples[e] - (mus[e % 6] + sigmas[e % 6] * noise[e])) < 1e-14) }
    // An empty event: log p = 0 for each row, and samples with no elements.
    let empty = Normal(loc: .zeros([0], dtype: .float64), scale: .ones([0], dtype: .float64))
    #expect(try empty.logProb(Tensor.zeros([3, 0], dtype: .float64)).doubles == [0, 0, 0])
    #expect(try empty.sample(2, generator: &a).shape == [2, 0])
}

@Test func studentTLogDensityMatchesTheFormulaAndItsSamplesTheVariance() throws {
    let nu = 5.0
    let t = StudentT(degreesOfFreedom: nu, loc: Tensor([1], dtype: .float64), scale: Tensor([2], dtype: .float64))
    let x = 2.5, z = (x - 1) / 2
    let expected = lgamma(3.0) - lgamma(2.5) - 0.5 * Foundation.log(nu * .pi) - Foundation.log(2.0) - 3 * Foundation.log(1 + z * z / nu)
    #expect(abs(try t.logProb(Tensor([x], shape: [1, 1], dtype: .float64)).item - expected) < 1e-12)
    var g = RandomGenerator(seed: 1)
    let samples = try t.sample(100_000, generator: &g).doubles
    let mean = samples.reduce(0, +) / Double(samples.count)
    let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count)
    #expect(abs(mean - 1) < 0.03)
    #expect(abs(variance - 4 * nu / (nu - 2)) / (4 * nu / (nu - 2)) < 0.08)   // 6.67
}

@Test func uniformLogDensityInsideAndOutside() throws {
    let u = Uniform(low: Tensor([0, -1], dtype: .float64), high: Tensor([2, 3], dtype: .float64))
    let lp = try u.logProb(Tensor([1, 0, 5, 0], shape: [2, 2], dtype: .float64)).doubles
    #expect(abs(lp[0] + Foundation.log(8)) < 1e-12)
    #expect(lp[1] == -.infinity)
}

@Test func aFlowOfAffineFixedIsTheShiftedNormal() throws {
    let flow = try Flow(base: Normal.standard([2], dtype: .float64), plan: AffineFixed(loc: 3, scale: 0.5))
    let shifted = Normal(loc: .full([2], 3, dtype: .float64), scale: .full([2], 0.5, dtype: .float64))
    var g = RandomGenerator(seed: 2)
    let y = Tensor.randn([50, 2], generator: &g, dtype: .float64) * 2
    #expect(maxAbsDifference(try flow.logProb(y).doubles, try shifted.logProb(y).doubles) < 1e-12)
}

@Test func sampleAndLogProbAgreesWithLogProbOfTheSamples() throws {
    let flow = try Flow(base: Normal.standard([3], dtype: .float64),
                        plan: Compose([AffineAutoregressive(hiddenSizes: [8]), Tanh()]), seed: 3)
    var g = RandomGenerator(seed: 4)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.2 }
    let (samples, logProbs) = try flow.sampleAndLogProb(64, generator: &g)
    #expect(samples.shape == [64, 3] && logProbs.shape == [64])
    #expect(maxAbsDifference(try flow.logProb(samples).doubles, logProbs.doubles) < 1e-8)
}

@Test func badInputToLogProbThrowsClearErrors() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: Compose([AffineAutoregressive(hiddenSizes: [8]), Sigmoid()]))
    #expect(throws: FlowError.self) { try flow.logProb(Tensor([0.5, 0.5, 0.5] as [Float])) }          // wrong shape
    #expect(throws: FlowError.self) { try flow.logProb(Tensor([0.5, .nan] as [Float], shape: [1, 2])) } // NaN
    #expect(throws: FlowError.self) { try flow.logProb(Tensor([0.5, 1.5] as [Float], shape: [1, 2])) } // outside (0, 1)
    #expect(throws: FlowError.self) { try flow.logProb(Tensor([0.5, 0.5], shape: [1, 2], dtype: .float64)) } // dtype
    #expect(throws: FlowError.self) { try flow.sample(-1) }
}

@Test func overflowFarFromTheDataGivesZeroDensityNotAnError() throws {
    // An affine flow that shrinks by e⁻⁶⁰ in the inverse direction: y = 1e30 overflows Float32.
    let flow = try Flow(base: Normal.standard([2]), plan: Compose([Affine(), Permute(.reversed)]))
    flow.parameters[0].value = Tensor([0, -60, 0, -60] as [Float], shape: [2, 2])
    let lp = try flow.logProb(Tensor([0, 0, 1e30, 1e30] as [Float], shape: [2, 2])).floats
    #expect(lp[0].isFinite && lp[1] == -.infinity)
    // Non-finite input is still refused where a user passes it.
    #expect(throws: FlowError.self) { try flow.logProb(Tensor([.infinity, 0] as [Float], shape: [1, 2])) }
}
