import Foundation
import NormalizingFlows
import Testing

// Issue 25: angles on the torus from the command line (fit --flow ncsf, its base and its checks).

@Test func ncsfFitsAnglesOnTheTorusAndScoresThem() throws {
    let dir = folder()
    var g = RandomGenerator(seed: 41)
    let train = TorusMixture.sample(3000, generator: &g, dtype: .float32), test = TorusMixture.sample(1000, generator: &g, dtype: .float32)
    try DataFile.writeCSV(train, to: "\(dir)/train.csv")
    try DataFile.writeCSV(test, to: "\(dir)/test.csv")
    let model = "\(dir)/torus.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "ncsf", "--layers", "3", "--hidden", "32,32", "--steps", "600",
                            "--lr", "3e-3", "--out", model])
    #expect(fitted.status == 0, "\(fitted.error)")
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv"])
    #expect(scored.status == 0, "\(scored.error)")
    let logDensities = scored.output.split(separator: "\n").map { Double(String($0))! }
    let nll = -logDensities.reduce(0, +) / 1000
    let truth = -TorusMixture.logDensity(try DataFile.read("\(dir)/test.csv")).reduce(0, +) / 1000
    // The uniform base alone scores 2·log 2π = 3.68 nats; the true density about 2.49.
    #expect(nll < 2 * log(2 * Double.pi) - 0.7 && nll > truth - 0.1, "held-out NLL \(nll) vs the truth \(truth)")
    let samples = try flows(["sample", "--model", model, "-n", "500"])
    let values = samples.output.split(separator: "\n").flatMap { $0.split(separator: ",").map { Double(String($0))! } }
    #expect(values.count == 1000 && values.allSatisfy { Domain.circle.contains($0) })
    // The density map covers the torus, where every cell has a density.
    let plot = try flows(["plot", "--model", model, "--data", "\(dir)/test.csv", "--out", "\(dir)/torus.svg"])
    #expect(plot.status == 0, "\(plot.error)")
    #expect(try String(contentsOfFile: "\(dir)/torus.svg", encoding: .utf8).hasPrefix("<svg"))
    let info = try flows(["info", "--model", model])
    #expect(info.output.contains("NCSF") && info.output.contains("Uniform"), "\(info.output)")
}

@Test func ncsfRefusesDataOffTheCircleAndOtherBases() throws {
    let dir = folder()
    try "0.5,1\n-1,4.0\n2,3\n".write(toFile: "\(dir)/outside.csv", atomically: true, encoding: .utf8)
    let refused = try flows(["fit", "--data", "\(dir)/outside.csv", "--flow", "ncsf", "--steps", "1", "--validation-fraction", "0",
                             "--out", "\(dir)/never.safetensors"])
    #expect(refused.status != 0 && refused.error.contains("row 2, column 2 is 4.0, not an angle in [−π, π)")
            && refused.error.split(separator: "\n").count == 1, "\(refused.error)")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.safetensors"))
    try "0.5,1\n-1,2\n2,3\n".write(toFile: "\(dir)/inside.csv", atomically: true, encoding: .utf8)
    let normalBase = try flows(["fit", "--data", "\(dir)/inside.csv", "--flow", "ncsf", "--base", "normal", "--steps", "1",
                                "--validation-fraction", "0", "--out", "\(dir)/never.safetensors"])
    #expect(normalBase.status != 0 && normalBase.error.contains("--base normal") && normalBase.error.contains("uniform"), "\(normalBase.error)")
    let uniformMAF = try flows(["fit", "--data", "\(dir)/inside.csv", "--flow", "maf", "--base", "uniform", "--steps", "1",
                                "--validation-fraction", "0", "--out", "\(dir)/never.safetensors"])
    #expect(uniformMAF.status != 0 && uniformMAF.error.contains("--base uniform"), "\(uniformMAF.error)")
    let bounded = try flows(["fit", "--data", "\(dir)/inside.csv", "--flow", "ncsf", "--bounds", "0:1,0:1", "--steps", "1",
                             "--validation-fraction", "0", "--out", "\(dir)/never.safetensors"])
    #expect(bounded.status != 0 && bounded.error.contains("--bounds"), "\(bounded.error)")
    let vi = try flows(["vi", "--energy", "u1", "--flow", "ncsf", "--steps", "1", "--out", "\(dir)/never.safetensors"])
    #expect(vi.status != 0 && vi.error.contains("ncsf"), "\(vi.error)")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/never.safetensors"))
}
