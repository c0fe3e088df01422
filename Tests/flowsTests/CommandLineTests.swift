import Foundation
import NormalizingFlows
import Testing

/// The `flows` executable built next to this test bundle.
let executable: URL = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("flows").path), folder.path != "/" {
        folder.deleteLastPathComponent()
    }
    return folder.appendingPathComponent("flows")
}()

struct Run {
    var status: Int32
    var signaled: Bool
    var output: String
    var error: String
}

func flows(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
               output: String(decoding: outData, as: UTF8.self), error: String(decoding: errData, as: UTF8.self))
}

/// One folder per test process under the system's temporary folder, removed when the process
/// exits; `folder()` makes a fresh subfolder in it for one test.
private let scratchRoot: String = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("flows-cli-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: scratchRoot) }
    return url.path
}()

func folder() -> String {
    let path = "\(scratchRoot)/\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Two moons made here (the shared data folder may be absent): noise 0.05.
func moons(_ n: Int, seed: UInt64) -> Tensor {
    var g = RandomGenerator(seed: seed)
    var values: [Double] = []
    for i in 0..<n {
        let t = Double.pi * g.nextUniform()
        let upper = i % 2 == 0
        let (x, y) = upper ? (cos(t), sin(t)) : (1 - cos(t), 0.5 - sin(t))
        values += [x + 0.05 * g.nextNormal(), y + 0.05 * g.nextNormal()]
    }
    return Tensor(values, shape: [n, 2])
}

@Test func aSavedModelScoresBitForBitInANewProcessAndSamplesReproducibly() throws {
    let dir = folder()
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 2, conditioner: .init(hiddenSizes: [16])))
    var options = FitOptions()
    options.steps = 200
    options.learningRate = 5e-3
    try fit(flow, data: moons(2000, seed: 1), options: options)
    let test = moons(300, seed: 2)
    // Scored as the command scores it, without gradients (the recorded pass sums in another
    // order and may differ in the last bit).
    let expected = try withoutGradients { try flow.logProb(test).floats }
    try flow.save(to: "\(dir)/model.safetensors")
    try DataFile.writeCSV(test, to: "\(dir)/test.csv")

    let scored = try flows(["logprob", "--model", "\(dir)/model.safetensors", "--data", "\(dir)/test.csv"])
    #expect(scored.status == 0, "\(scored.error)")
    let values = scored.output.split(separator: "\n").map { Float(String($0))! }
    #expect(values == expected)

    let a = try flows(["sample", "--model", "\(dir)/model.safetensors", "-n", "20", "--seed", "3"])
    let b = try flows(["sample", "--model", "\(dir)/model.safetensors", "-n", "20", "--seed", "3"])
    let c = try flows(["sample", "--model", "\(dir)/model.safetensors", "-n", "20", "--seed", "4"])
    #expect(a.status == 0 && a.output == b.output && a.output != c.output)
    #expect(a.output.split(separator: "\n").count == 20)

    let info = try flows(["info", "--model", "\(dir)/model.safetensors", "--json"])
    #expect(info.status == 0 && info.output.contains("\"dimension\": 2"))
}

@Test func fitWritesAModelThatTheOtherCommandsRead() throws {
    let dir = folder()
    try DataFile.writeCSV(moons(600, seed: 5), to: "\(dir)/train.csv")
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--layers", "2", "--hidden", "8,8",
                            "--steps", "40", "--out", "\(dir)/m.safetensors", "--json"])
    #expect(fitted.status == 0, "\(fitted.error)")
    let lines = fitted.output.split(separator: "\n")
    #expect(lines.count >= 2 && lines.last!.contains("\"event\": \"done\""))
    let plot = try flows(["plot", "--model", "\(dir)/m.safetensors", "--data", "\(dir)/train.csv", "--out", "\(dir)/p.svg", "--samples", "100"])
    #expect(plot.status == 0, "\(plot.error)")
    #expect(try String(contentsOfFile: "\(dir)/p.svg", encoding: .utf8).hasPrefix("<svg"))
}

@Test("flows fit notes when the family is slow or fragile for data and names the one to use",
      arguments: ["maf", "iaf", "nsf", "nsf-coupling", "lrs", "lrs-coupling", "realnvp", "planar", "radial", "sylvester", "naf", "unaf", "sospf", "bpf", "ncsf"])
func fitNotesFamiliesMadeForVariationalInference(_ family: String) throws {
    let dir = folder()
    try DataFile.writeCSV(moons(200, seed: 3), to: "\(dir)/train.csv")
    var arguments = ["fit", "--data", "\(dir)/train.csv", "--flow", family, "--layers", "2", "--steps", "2",
                     "--out", "\(dir)/m.safetensors", "--json"]
    if !["planar", "radial", "sylvester"].contains(family) { arguments += ["--hidden", "4"] }
    let fitted = try flows(arguments)
    #expect(fitted.status == 0, "\(fitted.error)")
    let notes = fitted.error.split(separator: "\n").filter { $0.hasPrefix("note: ") }
    if ["iaf", "planar", "radial", "sylvester"].contains(family) {
        #expect(notes.count == 1 && notes[0].contains("maf") && notes[0].contains(family), "\(family): \(fitted.error)")
    } else {
        #expect(notes.isEmpty, "\(family): \(fitted.error)")
    }
    // The note goes to standard error: the JSON lines on standard output stay machine-readable.
    #expect(!fitted.output.contains("note:"))
    // Without --lr the layers that start near the identity train at 1e-2, the others at 1e-3.
    let rate = ["planar", "radial", "sylvester"].contains(family) ? "0.01" : "0.001"
    #expect(fitted.output.split(separator: "\n").last!.contains("\"learning_rate\": \(rate),"), "\(family): \(fitted.output)")
}

@Test func userMistakesGiveAClearErrorAndStatusOne() throws {
    let dir = folder()
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])))
    try flow.save(to: "\(dir)/good.safetensors")
    let good = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/good.safetensors"))
    try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: "\(dir)/truncated.safetensors"))
    var corrupted = good
    corrupted[12] = UInt8(ascii: "#")
    try corrupted.write(to: URL(fileURLWithPath: "\(dir)/corrupted.safetensors"))
    try "1,2,3\n4,5,6\n".write(toFile: "\(dir)/three.csv", atomically: true, encoding: .utf8)
    try "1,2\n3\n".write(toFile: "\(dir)/ragged.csv", atomically: true, encoding: .utf8)
    try "1,2\n3,nan\n".write(toFile: "\(dir)/nan.csv", atomically: true, encoding: .utf8)
    try "".write(toFile: "\(dir)/empty.csv", atomically: true, encoding: .utf8)
    try "1,2\n3,4\n".write(toFile: "\(dir)/ok.csv", atomically: true, encoding: .utf8)
    let cases: [(String, [String], String)] = [
        ("truncated model", ["logprob", "--model", "\(dir)/truncated.safetensors", "--data", "\(dir)/ok.csv"], "truncated.safetensors"),
        ("corrupted header", ["logprob", "--model", "\(dir)/corrupted.safetensors", "--data", "\(dir)/ok.csv"], "corrupted.safetensors"),
        ("wrong dimension", ["logprob", "--model", "\(dir)/good.safetensors", "--data", "\(dir)/three.csv"], "3 columns"),
        ("ragged CSV", ["fit", "--data", "\(dir)/ragged.csv", "--flow", "maf", "--out", "\(dir)/x.safetensors"], "ragged.csv:2"),
        ("NaN in data", ["fit", "--data", "\(dir)/nan.csv", "--flow", "maf", "--out", "\(dir)/x.safetensors"], "nan.csv:2:3"),
        ("empty file", ["logprob", "--model", "\(dir)/good.safetensors", "--data", "\(dir)/empty.csv"], "no rows"),
        ("missing file", ["sample", "--model", "\(dir)/missing.safetensors", "-n", "3"], "no such file"),
    ]
    for (name, arguments, fragment) in cases {
        let run = try flows(arguments)
        #expect(run.status == 1 && !run.signaled, "\(name): status \(run.status)")
        #expect(run.error.hasPrefix("error: ") && run.error.contains(fragment), "\(name): \(run.error)")
        #expect(!run.error.contains("Fatal error") && !run.error.contains("Stack dump"), "\(name)")
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))   // nothing half-written
}

@Test func malformedCommandLinesExitWithTwo() throws {
    for arguments in [["fit", "--flow", "maf"], ["sample", "--model", "m", "-n", "-4"], ["frobnicate"], ["fit", "--steps", "many"],
                      ["fit", "--data", "d.csv", "--flow", "glow", "--out", "x"], ["vi", "--energy", "u9", "--flow", "planar", "--out", "x"]] {
        let run = try flows(arguments)
        #expect(run.status == 2 && !run.signaled, "\(arguments): \(run.status) \(run.error)")
        // One line, no "Error: " doubling, no usage dump.
        #expect(run.error.hasPrefix("error: ") && !run.error.hasPrefix("error: Error:"), "\(run.error)")
        #expect(run.error.split(separator: "\n").count == 1 && !run.error.contains("USAGE"), "\(run.error)")
    }
    let help = try flows(["--help"])
    #expect(help.status == 0 && help.output.contains("USAGE"))
}

/// `fit --base` puts the named base under the flow, the model file keeps it, and `info` names it.
@Test("flows fit --base builds the named base and flows info names it", arguments: [
    ("normal", [String](), #""type": "Normal""#), ("studentt", ["--degrees-of-freedom", "3.5"], #""degreesOfFreedom": 3.5"#),
    ("diagonal", [], #""type": "DiagonalNormal""#), ("gmm", ["--components", "3"], #""type": "GaussianMixture""#),
    ("gmm", ["--components", "3", "--covariance", "full"], #""covariance": "full""#),
])
func fitTakesABase(_ base: String, _ options: [String], _ expected: String) throws {
    let dir = folder()
    try DataFile.writeCSV(moons(400, seed: 8), to: "\(dir)/train.csv")
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "20",
                            "--base", base, "--out", "\(dir)/m.safetensors"] + options)
    #expect(fitted.status == 0, "\(fitted.error)")
    let info = try flows(["info", "--model", "\(dir)/m.safetensors", "--json"])
    #expect(info.status == 0 && info.output.contains(expected), "\(info.output)")
    let text = try flows(["info", "--model", "\(dir)/m.safetensors"])
    #expect(text.output.contains("base:       {"), "\(text.output)")
    let loaded = try Flow.load(from: "\(dir)/m.safetensors")
    if base == "gmm" { #expect((loaded.base as? GaussianMixture)?.components == 3) }
    let scored = try flows(["logprob", "--model", "\(dir)/m.safetensors", "--data", "\(dir)/train.csv"])
    #expect(scored.status == 0, "\(scored.error)")
}

/// Bad `--base` values and options that do not apply get one line naming the option, status 2.
@Test func badBaseOptionsAreRefusedWithOneLine() throws {
    let dir = folder()
    try DataFile.writeCSV(moons(50, seed: 9), to: "\(dir)/train.csv")
    let cases: [([String], String)] = [
        (["--base", "cauchy"], "--base: unknown base 'cauchy'; choose one of normal|studentt|uniform|diagonal|gmm|conditional-diagonal"),
        (["--base", "uniform"], "--base uniform is the torus base of --flow ncsf: the inverse of every other --flow family reaches all of"),
        (["--base", "normal", "--degrees-of-freedom", "3"], "--degrees-of-freedom applies to --base studentt only"),
        (["--base", "studentt", "--degrees-of-freedom", "0"], "--degrees-of-freedom must be a finite number of at least 0.001"),
        (["--base", "studentt", "--degrees-of-freedom", "nan"], "--degrees-of-freedom must be a finite number"),
        (["--base", "gmm", "--components", "0"], "--components must be at least 1"),
        (["--base", "diagonal", "--components", "2"], "--components applies to --base gmm and --flow gmm only"),
    ]
    for (options, expected) in cases {
        let run = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--steps", "2", "--out", "\(dir)/m.safetensors"] + options)
        #expect(run.status == 2 && run.error.contains(expected), "\(options): \(run.error)")
        #expect(run.error.split(separator: "\n").count == 1, "\(options): \(run.error)")
    }
    for (options, expected) in [(["--base", "gmm"], "--base gmm starts its components by k-means on data, which flows vi has none of"),
                                (["--base", "uniform"], "--base uniform is the torus base of --flow ncsf"),
                                (["--base", "normal", "--degrees-of-freedom", "3"], "--degrees-of-freedom applies to --base studentt only")] {
        let run = try flows(["vi", "--energy", "u1", "--flow", "planar", "--steps", "2", "--out", "\(dir)/v.safetensors"] + options)
        #expect(run.status == 2 && run.error.contains(expected) && run.error.split(separator: "\n").count == 1, "vi \(options): \(run.error)")
    }
    let tooFew = try flows(["fit", "--data", "\(dir)/train.csv", "--flow", "maf", "--steps", "2", "--validation-fraction", "0",
                            "--base", "gmm", "--components", "60", "--out", "\(dir)/m.safetensors"])
    #expect(tooFew.status == 1 && tooFew.error.contains("--components 60 needs at least 60 training rows"), "\(tooFew.error)")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.safetensors") && !FileManager.default.fileExists(atPath: "\(dir)/v.safetensors"))
}

@Test func variationalInferenceTakesATrainableOrHeavyTailedBase() throws {
    let dir = folder()
    for (base, extra, expectedType) in [("diagonal", [String](), "DiagonalNormal"), ("studentt", ["--degrees-of-freedom", "4"], "StudentT")] {
        let model = "\(dir)/\(base).safetensors"
        // No --lr: planar layers train at 1e-2 by default.
        let run = try flows(["vi", "--energy", "u1", "--flow", "planar", "--layers", "4", "--steps", "200",
                             "--base", base, "--out", model, "--json"] + extra)
        #expect(run.status == 0, "\(run.error)")
        let done = run.output.split(separator: "\n").last ?? ""
        #expect(done.contains("\"base\": \"\(base)\"") && done.contains("\"learning_rate\": 0.01,"), "\(run.output)")
        let flow = try Flow.load(from: model)
        #expect(String(describing: type(of: flow.base)) == expectedType)
        // A trainable base moves away from N(0, I) under reverse KL.
        if base == "diagonal" {
            let moved = flow.namedParameters.filter { $0.name.hasPrefix("base.") }.flatMap { $0.parameter.value.doubles }
            #expect(moved.contains { abs($0) > 1e-3 }, "the diagonal base's parameters stayed at zero: \(moved)")
        }
    }
}
