import Foundation
import NormalizingFlows
import Testing

// Issue 25: a Gaussian mixture from the command line, with full covariances and by itself
// (`fit --flow gmm`), and a conditional normal base (`--base conditional-diagonal`).

/// Two correlated Gaussians in the plane with weights 0.3 and 0.7, and log p(x) of each row.
private func mixtureRows(_ n: Int, seed: UInt64) -> (rows: Tensor, logDensity: [Double]) {
    // Component j: x = μⱼ + Lⱼ ε with Lⱼ = [[a, 0], [b, c]], so Σⱼ = LⱼLⱼᵀ.
    let weights = [0.3, 0.7], means = [[-2.0, 1.0], [1.5, -0.5]], factors = [[0.8, 0.0, 0.6, 0.4], [0.5, 0.0, -0.4, 0.9]]
    func logNormal(_ x: [Double], _ j: Int) -> Double {
        let (a, b, c) = (factors[j][0], factors[j][2], factors[j][3])
        // Solve L z = x − μ by forward substitution; log N = −½‖z‖² − log det L − log 2π.
        let z1 = (x[0] - means[j][0]) / a, z2 = (x[1] - means[j][1] - b * z1) / c
        return -0.5 * (z1 * z1 + z2 * z2) - log(a * c) - log(2 * Double.pi)
    }
    var g = RandomGenerator(seed: seed)
    var rows: [Double] = [], logDensity: [Double] = []
    for _ in 0..<n {
        let j = g.nextUniform() < weights[0] ? 0 : 1
        let e1 = g.nextNormal(), e2 = g.nextNormal()
        let x = [means[j][0] + factors[j][0] * e1, means[j][1] + factors[j][2] * e1 + factors[j][3] * e2]
        rows += x
        logDensity.append(log(weights[0] * exp(logNormal(x, 0)) + weights[1] * exp(logNormal(x, 1))))
    }
    return (Tensor(rows, shape: [n, 2]), logDensity)
}

/// log p(x) of a full-covariance mixture from its saved parameters, through the precision
/// matrices Σⱼ⁻¹ = PⱼPⱼᵀ formed explicitly (the library works with ‖Pⱼᵀ(x − μⱼ)‖² instead).
private func mixtureLogDensity(_ mixture: GaussianMixture, _ x: [Double]) -> Double {
    let d = mixture.features, logits = mixture.logits.value.doubles, mus = mixture.means.value.doubles
    let logDiagonal = mixture.precisionLogDiagonal!.value.doubles, lower = mixture.precisionLower!.value.doubles
    let logNormalizer = log(logits.map(exp).reduce(0, +))
    var total = 0.0
    for j in 0..<mixture.components {
        func p(_ r: Int, _ c: Int) -> Double { r == c ? exp(logDiagonal[j * d + r]) : r > c ? lower[j * d * d + r * d + c] : 0 }
        let delta = (0..<d).map { x[$0] - mus[j * d + $0] }
        var quadratic = 0.0
        for r in 0..<d { for c in 0..<d {
            let precision = (0..<d).map { p(r, $0) * p(c, $0) }.reduce(0, +)
            quadratic += delta[r] * precision * delta[c]
        } }
        let logDeterminant = (0..<d).map { logDiagonal[j * d + $0] }.reduce(0, +)   // ½ log det Σⱼ⁻¹
        total += exp(logits[j] - logNormalizer - 0.5 * quadratic + logDeterminant - 0.5 * Double(d) * log(2 * Double.pi))
    }
    return log(total)
}

@Test func aGaussianMixtureByItselfFitsCorrelatedClustersFromTheCommandLine() throws {
    let dir = folder()
    let train = mixtureRows(4000, seed: 11), test = mixtureRows(2000, seed: 12)
    try DataFile.writeCSV(train.rows, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test.rows, to: "\(dir)/test.csv")
    let model = "\(dir)/gmm.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "gmm", "--components", "2", "--covariance", "full",
                            "--steps", "300", "--lr", "1e-2", "--out", model, "--json"])
    #expect(fitted.status == 0, "\(fitted.error)")
    let flow = try Flow.load(from: model)
    let mixture = try #require(flow.base as? GaussianMixture)
    #expect(mixture.covariance == .full && mixture.components == 2)
    let info = try flows(["info", "--model", model, "--json"])
    #expect(info.output.contains(#""covariance": "full""#), "\(info.output)")

    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv"])
    #expect(scored.status == 0, "\(scored.error)")
    let values = scored.output.split(separator: "\n").map { Double(String($0))! }
    #expect(values.count == 2000)
    let points = test.rows.doubles
    for i in stride(from: 0, to: 2000, by: 97) {
        let expected = mixtureLogDensity(mixture, [points[2 * i], points[2 * i + 1]])
        #expect(abs(values[i] - expected) <= 1e-4 * max(1, abs(expected)), "row \(i): \(values[i]) vs \(expected)")
    }
    // The true law is in the model's family: the held-out NLL reaches the truth's.
    let nll = -values.reduce(0, +) / 2000, truth = -test.logDensity.reduce(0, +) / 2000
    #expect(abs(nll - truth) <= 0.05, "held-out NLL \(nll), truth \(truth)")
    // A diagonal mixture of two components cannot tilt its clusters.
    let diagonal = "\(dir)/diagonal.safetensors"
    let fittedDiagonal = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "gmm", "--components", "2",
                                    "--steps", "300", "--lr", "1e-2", "--out", diagonal])
    #expect(fittedDiagonal.status == 0, "\(fittedDiagonal.error)")
    let diagonalScores = try flows(["logprob", "--model", diagonal, "--data", "\(dir)/test.csv"]).output
        .split(separator: "\n").map { Double(String($0))! }
    #expect(-diagonalScores.reduce(0, +) / 2000 > nll + 0.1)

    let drawn = try flows(["sample", "--model", model, "-n", "4000", "--seed", "5"])
    #expect(drawn.status == 0, "\(drawn.error)")
    let samples = drawn.output.split(separator: "\n").map { $0.split(separator: ",").map { Double(String($0))! } }
    let left = Double(samples.filter { $0[0] < 0 }.count) / 4000
    #expect(abs(left - 0.3) < 0.03, "share of samples in the left cluster: \(left)")
}

/// y | c ~ N(c, 0.1²): a conditional normal base is the whole law, so one near-identity layer over it reaches the truth.
@Test func aConditionalNormalBaseFromTheCommandLineRecoversAKnownConditionalLaw() throws {
    let dir = folder()
    func rows(_ n: Int, seed: UInt64) -> (rows: Tensor, logDensity: [Double]) {
        var g = RandomGenerator(seed: seed)
        var values: [Double] = [], logDensity: [Double] = []
        for _ in 0..<n {
            let c = -2 + 4 * g.nextUniform(), e = g.nextNormal()
            values += [c, c + 0.1 * e]
            logDensity.append(-0.5 * e * e - log(0.1) - 0.5 * log(2 * Double.pi))
        }
        return (Tensor(values, shape: [n, 2]), logDensity)
    }
    let train = rows(4000, seed: 21), test = rows(2000, seed: 22)
    try DataFile.writeCSV(train.rows, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test.rows, to: "\(dir)/test.csv")
    let model = "\(dir)/conditional.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--context-columns", "0", "--flow", "maf", "--layers", "1",
                            "--hidden", "8", "--base", "conditional-diagonal", "--steps", "800", "--lr", "5e-3", "--batch-size", "512",
                            "--out", model])
    #expect(fitted.status == 0, "\(fitted.error)")
    let flow = try Flow.load(from: model)
    #expect(flow.base is ConditionalDiagonalNormal && flow.contextSize == 1)
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--context-columns", "0"])
    #expect(scored.status == 0, "\(scored.error)")
    let nll = -scored.output.split(separator: "\n").map { Double(String($0))! }.reduce(0, +) / 2000
    let truth = -test.logDensity.reduce(0, +) / 2000
    #expect(abs(nll - truth) <= 0.05, "held-out conditional NLL \(nll), truth \(truth)")
}

@Test func mixtureAndConditionalBaseOptionsThatCannotApplyAreOneLine() throws {
    let dir = folder()
    try DataFile.writeCSV(moons(50, seed: 9), to: "\(dir)/train.csv")
    let cases: [([String], String)] = [
        (["--flow", "maf", "--covariance", "full"], "--covariance applies to --base gmm and --flow gmm only"),
        (["--flow", "maf", "--base", "gmm", "--covariance", "spherical"], "--covariance: unknown covariance 'spherical'; choose one of diagonal|full"),
        (["--flow", "gmm", "--layers", "3"], "--layers 3 does not apply to --flow gmm"),
        (["--flow", "gmm", "--hidden", "8"], "--hidden does not apply to --flow gmm"),
        (["--flow", "gmm", "--base", "normal"], "--base normal: --flow gmm is a Gaussian mixture by itself"),
        (["--flow", "gmm", "--context-columns", "0"], "--flow gmm cannot be conditional"),
        (["--flow", "maf", "--base", "conditional-diagonal"], "--base conditional-diagonal takes its mean and scale from a context"),
    ]
    for (options, expected) in cases {
        let run = try flows(["fit", "--data", "\(dir)/train.csv", "--steps", "2", "--out", "\(dir)/m.safetensors"] + options)
        #expect(run.status == 2 && run.error.contains(expected), "\(options): \(run.error)")
        #expect(run.error.split(separator: "\n").count == 1, "\(options): \(run.error)")
    }
    let vi = try flows(["vi", "--energy", "u1", "--flow", "gmm", "--steps", "2", "--out", "\(dir)/v.safetensors"])
    #expect(vi.status == 2 && vi.error.contains("--flow gmm: a Gaussian mixture picks a component at random"), "\(vi.error)")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.safetensors") && !FileManager.default.fileExists(atPath: "\(dir)/v.safetensors"))
}
