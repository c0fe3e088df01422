import Foundation
import Testing
@testable import NormalizingFlows

/// Rows (k₁, k₂) with k₁ ~ Poisson(3) and k₂ ~ Binomial(10, 0.3) independent, and the mean of
/// −log P(k) over them (the discrete NLL, from the closed-form probabilities).
private func integerRows(_ n: Int, generator g: inout RandomGenerator) -> (rows: Tensor, nll: Double) {
    var values: [Double] = [], nll = 0.0
    for _ in 0..<n {
        // Poisson by counting uniforms until their product falls below e^{−λ} (Knuth).
        var k1 = 0, product = g.nextUniform()
        while product > Foundation.exp(-3.0) { k1 += 1; product *= g.nextUniform() }
        let k2 = (0..<10).filter { _ in g.nextUniform() < 0.3 }.count
        values += [Double(k1), Double(k2)]
        let logPoisson = Double(k1) * Foundation.log(3) - 3 - Foundation.lgamma(Double(k1) + 1)
        let logBinomial = Foundation.lgamma(11) - Foundation.lgamma(Double(k2) + 1) - Foundation.lgamma(Double(11 - k2))
            + Double(k2) * Foundation.log(0.3) + Double(10 - k2) * Foundation.log(0.7)
        nll -= logPoisson + logBinomial
    }
    return (Tensor(values, shape: [n, 2]), nll / Double(n))
}

@Test func aDequantizedFitGivesTheProbabilitiesOfIntegerData() throws {
    var g = RandomGenerator(seed: 11)
    let (train, _) = integerRows(8000, generator: &g)
    let (test, trueNLL) = integerRows(2000, generator: &g)
    let flow = try Flow(base: Normal.standard([2]), plan: NSF(layers: 2, bins: 8, bound: 5, conditioner: DenseAutoregressive(hiddenSizes: [32, 32])), seed: 1)
    // The NSF lives on [−5, 5]; the counts are moved there and back by a fixed affine map.
    let shifted = try Flow(base: Normal.standard([2]), plan: Compose([flow.plan, AffineFixed(loc: 4, scale: 1)]), seed: 1)
    var options = FitOptions()
    options.steps = 1500
    options.learningRate = 3e-3
    options.dequantizedColumns = [0, 1]
    let report = try fit(shifted, data: train, options: options)
    let estimate = try dequantizedLogProb(shifted, test, columns: [0, 1], samples: 64, generator: &g).doubles
    let nll = -estimate.reduce(0, +) / Double(estimate.count)
    let bound = try negativeLogLikelihood(shifted, dequantize(test, columns: [0, 1], generator: &g))
    print("dequantized fit: discrete NLL estimate \(nll), dequantized NLL \(bound), truth \(trueNLL), best validation \(report.bestValidationNLL ?? .nan)")
    // A smooth flow cannot be uniform inside each cell, so it trades some cell mass for smoothness
    // (the dequantization gap of Ho et al. 2019): 0.058 nats here after 1,500 steps, the same after 3,000.
    #expect(abs(nll - trueNLL) < 0.1, "log P(k) estimate: NLL \(nll) vs the truth \(trueNLL)")
    // −E log p(k + u) bounds −log P(k) from above (Jensen).
    #expect(bound > nll)
}

@Test func dequantizationRefusesDataThatAreNotWholeNumbers() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: Affine())
    var options = FitOptions()
    options.steps = 1
    options.validationFraction = 0
    options.dequantizedColumns = [1]
    let data = Tensor([1, 2, 3, 4.5], shape: [2, 2])
    #expect(throws: TrainingError.self) { try fit(flow, data: data, options: options) }
    options.dequantizedColumns = [2]
    #expect(throws: TrainingError.self) { try fit(flow, data: Tensor([1, 2, 3, 4], shape: [2, 2]), options: options) }
    var g = RandomGenerator(seed: 1)
    #expect(throws: TrainingError.self) { try dequantizedLogProb(flow, data, columns: [1], generator: &g) }
    #expect(throws: TrainingError.self) { try dequantizedLogProb(flow, Tensor([1, 2], shape: [1, 2]), columns: [1], samples: 0, generator: &g) }
    // Float32 has no values inside the unit cells of 2²⁴.
    #expect(throws: TrainingError.self) { try dequantizedLogProb(flow, Tensor([1, Double(1 << 24)], shape: [1, 2]), columns: [1], generator: &g) }
}

@Test func dequantizedValuesStayInsideTheirOpenCellsInFloat32() {
    // Noise near 1 on 2²⁰ − 1 would round onto the next whole number in Float32.
    var g = RandomGenerator(seed: 2)
    let big = Double(1 << 20) - 1
    let rows = Tensor([0, big, 255, 1e6], shape: [2, 2])  // Float32
    for _ in 0..<200 {
        let values = dequantize(rows, columns: [0, 1], generator: &g).doubles
        #expect(values[0] > 0 && values[0] < 1 && values[1] > big && values[1] < big + 1)
        #expect(values[2] > 255 && values[2] < 256 && values[3] > 1e6 && values[3] < 1e6 + 1)
    }
}
