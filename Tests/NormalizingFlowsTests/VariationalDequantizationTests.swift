import Foundation
import Testing
@testable import NormalizingFlows

/// A discretised correlated Gaussian on the grid {0, …, 7} × {0, …, 5}: P(k) ∝ exp(−½ (k − μ)ᵀ Σ⁻¹ (k − μ)),
/// normalised by summing over the 48 points. Rows drawn by inverting its cumulative table, and
/// the mean of −log P(k) over them, from the table.
private struct DiscretizedGaussian {
    let logP: [[Double]]

    init() {
        let (mu1, mu2, s1, s2, rho) = (3.2, 2.1, 1.3, 0.9, 0.6)
        var logits = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 8)
        for k1 in 0..<8 {
            for k2 in 0..<6 {
                let (z1, z2) = ((Double(k1) - mu1) / s1, (Double(k2) - mu2) / s2)
                logits[k1][k2] = -(z1 * z1 - 2 * rho * z1 * z2 + z2 * z2) / (2 * (1 - rho * rho))
            }
        }
        let logZ = Foundation.log(logits.joined().map(Foundation.exp).reduce(0, +))
        logP = logits.map { $0.map { $0 - logZ } }
    }

    func rows(_ n: Int, generator: inout RandomGenerator) -> (rows: Tensor, nll: Double) {
        var values: [Double] = [], nll = 0.0
        for _ in 0..<n {
            var u = generator.nextUniform(), cell = (7, 5)
            search: for k1 in 0..<8 {
                for k2 in 0..<6 {
                    u -= Foundation.exp(logP[k1][k2])
                    if u < 0 { cell = (k1, k2); break search }
                }
            }
            values += [Double(cell.0), Double(cell.1)]
            nll -= logP[cell.0][cell.1]
        }
        return (Tensor(values, shape: [n, 2]), nll / Double(n))
    }
}

private func mean(_ t: Tensor) -> Double { t.doubles.reduce(0, +) / Double(t.count) }

@Test func variationalDequantizationEstimatesTheProbabilitiesBetterThanTheUniformBound() throws {
    let gaussian = DiscretizedGaussian()
    var g = RandomGenerator(seed: 5)
    let (train, _) = gaussian.rows(4000, generator: &g)
    let (test, trueNLL) = gaussian.rows(1000, generator: &g)
    let plan = MAF(layers: 3, conditioner: DenseAutoregressive(hiddenSizes: [32, 32]))
    var options = FitOptions()
    options.steps = 1500
    options.learningRate = 3e-3
    options.dequantizedColumns = [0, 1]

    let uniform = try Flow(base: Normal.standard([2]), plan: plan, seed: 1)
    try fit(uniform, data: train, options: options)
    let uniformBound = -mean(try dequantizationLowerBound(uniform, test, columns: [0, 1], samples: 8, generator: &g))

    let dequantization = VariationalDequantization(columns: [0, 1], standardizing: train)
    let variational = try Flow(base: Normal.standard([2]), plan: plan, dequantization: dequantization, seed: 1)
    #expect(variational.parameterCount > uniform.parameterCount)
    let report = try fit(variational, data: train, options: options)
    var draws = RandomGenerator(seed: 7)
    let estimate = -mean(try dequantizedLogProb(variational, test, columns: [0, 1], samples: 64, generator: &draws))
    let elbo = -mean(try dequantizationLowerBound(variational, test, samples: 8, generator: &draws))
    print("variational dequantization: log P estimate NLL \(estimate), ELBO NLL \(elbo), uniform bound \(uniformBound), truth \(trueNLL), "
          + "best validation \(report.bestValidationNLL ?? .nan)")
    #expect(abs(estimate - trueNLL) < 0.05, "importance-sampled NLL \(estimate) vs the truth \(trueNLL)")
    // The importance estimate with K = 64 draws lies between the ELBO and log P(k).
    #expect(estimate < elbo, "importance-sampled NLL \(estimate) vs the negative ELBO \(elbo)")
    // q learned the flow's shape inside the cells: its bound is tighter than the uniform one.
    #expect(elbo < uniformBound, "variational bound \(elbo) vs the uniform bound \(uniformBound)")

    // The model file keeps q: the same draws give the same numbers.
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("variational-\(UUID()).safetensors").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try variational.save(to: path)
    let loaded = try Flow.load(from: path)
    #expect(loaded.dequantizer?.columns == [0, 1] && loaded.parameterCount == variational.parameterCount)
    var (first, second) = (RandomGenerator(seed: 9), RandomGenerator(seed: 9))
    let before = try dequantizedLogProb(variational, test, columns: [], samples: 4, generator: &first).doubles
    let after = try dequantizedLogProb(loaded, test, columns: [], samples: 4, generator: &second).doubles
    #expect(zip(before, after).allSatisfy { abs($0 - $1) < 1e-5 }, "\(before.prefix(3)) vs \(after.prefix(3))")
}

@Test func theVariationalNoiseIsADensityOnTheUnitCell() throws {
    // q(u | k) integrates to 1 over [0, 1)²: a midpoint grid of exp(log q) (q's flow scored by
    // its inverse, the same density its draws report), and its draws stay inside the cells.
    let rows = Tensor([3, 1, 250, 0], shape: [2, 2])
    let flow = try Flow(base: Normal.standard([2]), plan: Affine(),
                        dequantization: VariationalDequantization(columns: [0, 1], center: [2, 1], scale: [3, 2]), seed: 3)
    let dequantizer = try #require(flow.dequantizer)
    // Random (not identity) parameters for q.
    var g = RandomGenerator(seed: 4)
    for p in dequantizer.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.3 }
    let (y, logQ) = try withoutGradients { try dequantizer.sample(rows, context: nil, generator: &g) }
    let values = y.doubles
    #expect(values[0] > 3 && values[0] < 4 && values[1] > 1 && values[1] < 2 && values[2] > 250 && values[2] < 251 && values[3] > 0 && values[3] < 1)
    // The density of the draw for the first row, recomputed by q's inverse pass.
    let condition = Tensor([(3 - 2) / 3, (1 - 1) / 2.0], shape: [1, 2])
    let u = Tensor([values[0] - 3, values[1] - 1], shape: [1, 2])
    let rescored = try withoutGradients { try dequantizer.noise.logProb(u, context: condition) }.item
    #expect(abs(rescored - logQ.doubles[0]) < 1e-3, "\(rescored) vs \(logQ.doubles[0])")
    let cells = 200, h = 1.0 / Double(cells)
    var grid: [Double] = []
    for i in 0..<cells { for j in 0..<cells { grid += [(Double(i) + 0.5) * h, (Double(j) + 0.5) * h] } }
    let logDensity = try withoutGradients {
        try dequantizer.noise.logProb(Tensor(grid, shape: [cells * cells, 2]),
                                      context: matmul(Tensor.ones([cells * cells, 1]), condition))
    }.doubles
    let mass = logDensity.map(Foundation.exp).reduce(0, +) * h * h
    #expect(abs(mass - 1) < 0.02, "q's mass on the unit cell: \(mass)")
}

@Test func variationalDequantizationRefusesBadColumnsAndFractions() throws {
    let make = { (columns: [Int]) in
        try Flow(base: Normal.standard([2]), plan: Affine(),
                 dequantization: VariationalDequantization(columns: columns, center: [0, 0], scale: [1, 1]))
    }
    #expect(throws: FlowError.self) { try make([2]) }
    #expect(throws: FlowError.self) { try make([0, 0]) }
    #expect(throws: FlowError.self) {
        try Flow(base: Normal.standard([2]), plan: Affine(), dequantization: VariationalDequantization(columns: [0], center: [0], scale: [1]))
    }
    let flow = try make([1])
    var options = FitOptions()
    options.steps = 1
    options.validationFraction = 0
    #expect(throws: TrainingError.self) { try fit(flow, data: Tensor([1, 2, 3, 4.5], shape: [2, 2]), options: options) }
    options.dequantizedColumns = [0]
    #expect(throws: TrainingError.self) { try fit(flow, data: Tensor([1, 2, 3, 4], shape: [2, 2]), options: options) }
    var g = RandomGenerator(seed: 1)
    #expect(throws: TrainingError.self) { try dequantizedLogProb(flow, Tensor([1, 2.5], shape: [1, 2]), columns: [], generator: &g) }
}
