import Foundation
import NormalizingFlows
import Testing

// Issue 25: data that are not on ℝⁿ, from the command line (fit --bounds, fit and logprob
// --dequantize).

/// Rows whose column 0 ~ Beta(2, 5) on (0, 1) and column 1 ~ Exponential(1) on (0, ∞), and the
/// true log-density of each row.
private func boundedRows(_ n: Int, seed: UInt64) -> (rows: Tensor, logDensity: [Double]) {
    var g = RandomGenerator(seed: seed)
    var values: [Double] = [], logDensity: [Double] = []
    for _ in 0..<n {
        let beta = (0..<6).map { _ in g.nextUniform() }.sorted()[1], exponential = -log(1 - g.nextUniform())
        values += [beta, exponential]
        logDensity.append(log(30 * beta * pow(1 - beta, 4)) - exponential)
    }
    return (Tensor(values, shape: [n, 2]), logDensity)
}

private func column(_ output: String) -> [Double] { output.split(separator: "\n").map { Double(String($0))! } }

@Test func aFitWithBoundsIsADensityOnThemAndRefusesPointsOutside() throws {
    let dir = folder()
    let (train, _) = boundedRows(4000, seed: 1), (test, truth) = boundedRows(2000, seed: 2)
    try DataFile.writeCSV(train, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test, to: "\(dir)/test.csv")
    let model = "\(dir)/bounded.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--layers", "3", "--hidden", "32,32", "--steps", "1500",
                            "--lr", "3e-3", "--bounds", "0:1,0:inf", "--out", model])
    #expect(fitted.status == 0, "\(fitted.error)")
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv"])
    #expect(scored.status == 0, "\(scored.error)")
    let nll = -column(scored.output).reduce(0, +) / 2000, trueNLL = -truth.reduce(0, +) / 2000
    #expect(nll - trueNLL < 0.1, "held-out NLL \(nll) vs the truth \(trueNLL)")
    let samples = try flows(["sample", "--model", model, "-n", "500"])
    let values = samples.output.split(separator: "\n").map { $0.split(separator: ",").map { Double(String($0))! } }
    #expect(values.count == 500 && values.allSatisfy { $0[0] > 0 && $0[0] < 1 && $0[1] > 0 })
    let info = try flows(["info", "--model", model])
    #expect(info.output.contains("Bounds"), "\(info.output)")

    // Points outside: one error line naming the interval; data outside at fit: row and column.
    try "0.5,1\n1.5,1\n".write(toFile: "\(dir)/outside.csv", atomically: true, encoding: .utf8)
    let refused = try flows(["logprob", "--model", model, "--data", "\(dir)/outside.csv"])
    #expect(refused.status != 0 && refused.error.contains("(0.0, 1.0)") && refused.error.split(separator: "\n").count == 1, "\(refused.error)")
    let refusedFit = try flows(["fit", "--data", "\(dir)/outside.csv", "--flow", "maf", "--bounds", "0:1,0:", "--steps", "1",
                                "--validation-fraction", "0", "--out", "\(dir)/never.safetensors"])
    #expect(refusedFit.status != 0 && refusedFit.error.contains("row 2, y column 0 holds 1.5"), "\(refusedFit.error)")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.safetensors"))
}

@Test(arguments: [
    ("0:1,0:", "2 intervals for 3 y columns"), ("1:0", "LOW must be below HIGH"), ("a:1", "'a' is not a finite number"),
    ("0-1", "is not LOW:HIGH"), ("0:nan", "is not a finite number"), ("0:1e999", "is not a finite number"),
])
func badBoundsAreOneClearLine(spec: String, expected: String) throws {
    let dir = folder()
    try "1,2,3\n4,5,6\n7,8,9\n".write(toFile: "\(dir)/data.csv", atomically: true, encoding: .utf8)
    let run = try flows(["fit", "--data", "\(dir)/data.csv", "--flow", "maf", "--bounds", spec, "--steps", "1", "--validation-fraction", "0", "--out", "\(dir)/m.safetensors"])
    #expect(run.status != 0 && run.error.contains(expected), "\(spec): \(run.error)")
    #expect(run.error.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count <= 2, "\(run.error)")
}

@Test func dequantizedIntegerDataAreScoredByTheirProbabilities() throws {
    // Counts: k₁ ~ Binomial(6, 0.5), k₂ ~ Binomial(4, 0.25), bounded by whole numbers.
    var g = RandomGenerator(seed: 3)
    func rows(_ n: Int) -> (Tensor, Double) {
        var values: [Double] = [], nll = 0.0
        for _ in 0..<n {
            let k1 = (0..<6).filter { _ in g.nextUniform() < 0.5 }.count, k2 = (0..<4).filter { _ in g.nextUniform() < 0.25 }.count
            values += [Double(k1), Double(k2)]
            let choose = { (n: Int, k: Int) in lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) }
            nll -= choose(6, k1) + 6 * log(0.5) + choose(4, k2) + Double(k2) * log(0.25) + Double(4 - k2) * log(0.75)
        }
        return (Tensor(values, shape: [n, 2]), nll / Double(n))
    }
    let dir = folder()
    let (train, _) = rows(4000), (test, trueNLL) = rows(1000)
    try DataFile.writeCSV(train, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test, to: "\(dir)/test.csv")
    let model = "\(dir)/counts.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--layers", "3", "--hidden", "32,32", "--steps", "1500",
                            "--lr", "3e-3", "--dequantize", "all", "--bounds", "0:7,0:5", "--out", model, "--json"])
    #expect(fitted.status == 0 && fitted.output.contains("\"dequantized_columns\": [0, 1]"), "\(fitted.error) \(fitted.output)")
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize", "0-1", "--dequantize-samples", "64"])
    #expect(scored.status == 0, "\(scored.error)")
    let nll = -column(scored.output).reduce(0, +) / 1000
    #expect(abs(nll - trueNLL) < 0.1, "log P(k): NLL \(nll) vs the truth \(trueNLL)")
    // The model file records the dequantized columns: logprob estimates log P(k) of them by
    // default (the same draws), and --dequantize none scores the density at k (inside the bounds).
    let byRecord = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize-samples", "64"])
    #expect(byRecord.status == 0 && byRecord.output == scored.output, "\(byRecord.error)")
    try "1,1\n3,2\n".write(toFile: "\(dir)/inner.csv", atomically: true, encoding: .utf8)
    let atK = try flows(["logprob", "--model", model, "--data", "\(dir)/inner.csv", "--dequantize", "none"])
    let density = try withoutGradients { try Flow.load(from: model).logProb(DataFile.read("\(dir)/inner.csv")).doubles }
    #expect(atK.status == 0 && zip(column(atK.output), density).allSatisfy { abs($0 - $1) < 1e-5 }, "\(atK.error) \(atK.output) \(density)")
    let info = try flows(["info", "--model", model])
    #expect(info.output.contains("dequantizer: uniform over the whole numbers k of y columns 0,1") && info.output.contains("bounds:     y in (0, 7) × (0, 5)"),
            "\(info.output)")
    let infoJSON = try flows(["info", "--model", model, "--json"])
    #expect(infoJSON.output.contains(#""dequantizer": {"kind": "uniform", "columns": [0, 1]}"#)
            && infoJSON.output.contains(#""bounds": {"lower":[0,0],"upper":[7,5]}"#), "\(infoJSON.output)")

    // Not whole numbers: one line with the row; a column y does not have: refused.
    try "1,2\n1.5,2\n".write(toFile: "\(dir)/fractions.csv", atomically: true, encoding: .utf8)
    let fractions = try flows(["logprob", "--model", model, "--data", "\(dir)/fractions.csv", "--dequantize", "all"])
    #expect(fractions.status != 0 && fractions.error.contains("row 2 holds 1.5"), "\(fractions.error)")
    let missing = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize", "2"])
    #expect(missing.status != 0 && missing.error.contains("no column 2"), "\(missing.error)")
    // A count whose cell [k, k + 1) leaves the bounds.
    let outside = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--dequantize", "all", "--bounds", "0:6,0:5",
                             "--steps", "1", "--out", "\(dir)/never.safetensors"])
    #expect(outside.status != 0 && outside.error.contains("dequantized cell [6.0, 7.0)"), "\(outside.error)")
}
