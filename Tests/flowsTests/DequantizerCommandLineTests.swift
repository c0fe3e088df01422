import Foundation
import NormalizingFlows
import Testing

// Issue 25: fit --dequantizer variational, and logprob's estimate of log P(k) with the saved q.

/// Rows (k₁, k₂) with k₁ ~ Poisson(2) and k₂ ~ Poisson(4) independent, and the mean of −log P(k)
/// over them, from the closed-form probabilities.
private func poissonRows(_ n: Int, generator g: inout RandomGenerator) -> (rows: Tensor, nll: Double) {
    var values: [Double] = [], nll = 0.0
    for _ in 0..<n {
        for rate in [2.0, 4.0] {
            // Knuth: count uniforms until their product falls below e^{−λ}.
            var k = 0, product = g.nextUniform()
            while product > Foundation.exp(-rate) { k += 1; product *= g.nextUniform() }
            values.append(Double(k))
            nll -= Double(k) * Foundation.log(rate) - rate - Foundation.lgamma(Double(k) + 1)
        }
    }
    return (Tensor(values, shape: [n, 2]), nll / Double(n))
}

private func meanNLL(_ output: String) -> Double {
    let values = output.split(separator: "\n").map { Double(String($0))! }
    return -values.reduce(0, +) / Double(values.count)
}

@Test func aVariationalDequantizerIsSavedAndScoresWholeNumbersByTheirProbabilities() throws {
    var g = RandomGenerator(seed: 12)
    let dir = folder()
    let (train, _) = poissonRows(4000, generator: &g), (test, trueNLL) = poissonRows(1000, generator: &g)
    try DataFile.writeCSV(train, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test, to: "\(dir)/test.csv")
    let model = "\(dir)/counts.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--layers", "3", "--hidden", "32,32", "--steps", "1000",
                            "--lr", "3e-3", "--dequantize", "all", "--dequantizer", "variational", "--bounds", "0:", "--out", model, "--json"])
    #expect(fitted.status == 0 && fitted.output.contains("\"dequantizer\": \"variational\""), "\(fitted.error) \(fitted.output)")
    let info = try flows(["info", "--model", model])
    #expect(info.output.contains("dequantizer: variational over the whole numbers k of y columns 0,1"), "\(info.output)")

    // Without --dequantize the model's own columns are scored: log P(k), by importance sampling.
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize-samples", "64"])
    #expect(scored.status == 0, "\(scored.error)")
    let nll = meanNLL(scored.output)
    #expect(abs(nll - trueNLL) < 0.06, "log P(k): NLL \(nll) vs the truth \(trueNLL)")
    // One draw per row is the variational bound; 64 draws lie above it (a lower NLL).
    let bound = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize-samples", "1", "--seed", "3"])
    #expect(meanNLL(bound.output) > nll, "bound \(meanNLL(bound.output)) vs estimate \(nll)")
    // The file reproduces itself: the same seed, the same numbers.
    let again = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize", "all", "--dequantize-samples", "64"])
    #expect(again.output == scored.output)

    // Bad input: one clear line each.
    try "1,2\n1.5,2\n".write(toFile: "\(dir)/fractions.csv", atomically: true, encoding: .utf8)
    let refusals: [([String], String)] = [
        (["fit", "--data", "\(dir)/fractions.csv", "--flow", "maf", "--dequantize", "all", "--dequantizer", "variational",
          "--validation-fraction", "0", "--steps", "1", "--out", "\(dir)/never.safetensors"], "row 2, y column 0 holds 1.5"),
        (["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--dequantizer", "variational", "--steps", "1",
          "--out", "\(dir)/never.safetensors"], "give them with --dequantize"),
        (["logprob", "--model", model, "--data", "\(dir)/fractions.csv"], "row 2 holds 1.5"),
        (["logprob", "--model", model, "--data", "\(dir)/test.csv", "--dequantize", "1"], "variational dequantizer of y columns 0,1"),
        (["export", model, "--out", "\(dir)/never.pt"], "cannot be exported"),
    ]
    for (arguments, expected) in refusals {
        let run = try flows(arguments)
        #expect(run.status != 0 && run.error.contains(expected), "\(arguments): \(run.error)")
        #expect(run.error.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count <= 2, "\(run.error)")
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.safetensors"))
}
