import Foundation
import NormalizingFlows
import Testing

/// `flows export` and `flows import`, which run `python -m flows_torch`. The round trip needs a
/// Python with torch, safetensors and flows_torch (`$FLOWS_PYTHON`, else `python3` on PATH; the
/// repository's python/ folder is put on PYTHONPATH, so flows_torch need not be installed): without
/// one it is skipped, saying why. The error cases need no Python.
@Suite struct PyTorchInteropCommandTests {
    static let pythonFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("python").path

    /// Runs `flows` with extra environment variables.
    static func flows(_ arguments: [String], environment: [String: String]) throws -> Run {
        try flowsTests.flows(arguments, environment: environment)
    }

    /// The environment that lets `flows` reach flows_torch, or why there is none.
    static let python: (environment: [String: String]?, reason: String) = {
        let environment = ProcessInfo.processInfo.environment
        let chosen = environment["FLOWS_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
        let interpreter = chosen ?? (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let interpreter else { return (nil, "no python3 on PATH and FLOWS_PYTHON is not set") }
        let pythonPath = [pythonFolder, environment["PYTHONPATH"]].compactMap { $0 }.joined(separator: ":")
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: interpreter)
        probe.arguments = ["-c", "import torch, safetensors, flows_torch"]
        probe.environment = environment.merging(["PYTHONPATH": pythonPath]) { $1 }
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return (nil, "\(interpreter) cannot be run") }
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else {
            return (nil, "\(interpreter) cannot import torch, safetensors and flows_torch (pip install torch safetensors)")
        }
        return (["FLOWS_PYTHON": interpreter, "PYTHONPATH": pythonPath], "")
    }()

    static func model(in dir: String) throws -> (path: String, flow: Flow) {
        var g = RandomGenerator(seed: 9)
        let flow = try Flow(base: Normal.standard([3]), plan: Compose([
            MAF(layers: 2, conditioner: .init(hiddenSizes: [8]), scale: .softplus(floor: 1e-3)),
            AffineCoupling(conditioner: .init(hiddenSizes: [6])), ActNorm(),
        ]), seed: 4)
        for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.2 }
        try flow.save(to: "\(dir)/model.safetensors")
        return ("\(dir)/model.safetensors", flow)
    }

    @Test func exportThenImportGivesBackTheSameModel() throws {
        guard let environment = Self.python.environment else {
            print("skipped: flows export/import round trip: \(Self.python.reason)")
            return
        }
        let dir = folder()
        let (path, flow) = try Self.model(in: dir)
        let exported = try Self.flows(["export", path, "--out", "\(dir)/model.pt"], environment: environment)
        #expect(exported.status == 0 && exported.error.isEmpty, "\(exported.error)")
        let imported = try Self.flows(["import", "\(dir)/model.pt", "--out", "\(dir)/back.safetensors"], environment: environment)
        #expect(imported.status == 0 && imported.error.isEmpty, "\(imported.error)")
        let back = try Flow.load(from: "\(dir)/back.safetensors")
        #expect(try PlanCoding.json(back.plan) == PlanCoding.json(flow.plan))
        var g = RandomGenerator(seed: 1)
        let points = Tensor.randn([40, 3], generator: &g)
        #expect(try withoutGradients { try back.logProb(points).floats == flow.logProb(points).floats })

        // --out is checked before Python runs: never the input, and an existing output survives a failure.
        let same = try Self.flows(["export", path, "--out", path], environment: environment)
        #expect(same.status == 1 && same.error.split(separator: "\n").count == 1 && same.error.contains("is the input file"))
        try Data("keep".utf8).write(to: URL(fileURLWithPath: "\(dir)/keep.safetensors"))
        let refused = try Self.flows(["import", path, "--out", "\(dir)/keep.safetensors"], environment: environment)
        #expect(refused.status == 1 && refused.error.split(separator: "\n").count == 1, "\(refused.error)")
        #expect(try String(contentsOfFile: "\(dir)/keep.safetensors", encoding: .utf8) == "keep")
    }

    @Test func aMissingPythonOrFlowsTorchIsOneLineSayingHowToInstall() throws {
        let dir = folder()
        let (path, _) = try Self.model(in: dir)
        let missing = try Self.flows(["export", path, "--out", "\(dir)/m.pt"], environment: ["FLOWS_PYTHON": "\(dir)/no-python"])
        #expect(missing.status == 1 && missing.error.split(separator: "\n").count == 1 && missing.error.contains("FLOWS_PYTHON"),
                "\(missing.error)")
        let noPath = try Self.flows(["export", path, "--out", "\(dir)/m.pt"], environment: ["FLOWS_PYTHON": "", "PATH": dir])
        #expect(noPath.status == 1 && noPath.error.contains("no python3 is on PATH") && noPath.error.contains("pip install ./python"),
                "\(noPath.error)")
        // A Python without flows_torch, as `python -m` reports it.
        let fake = "\(dir)/python3"
        try "#!/bin/sh\necho \"$0: No module named flows_torch\" >&2\nexit 1\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let noModule = try Self.flows(["import", "\(dir)/model.safetensors", "--out", "\(dir)/m2.safetensors"],
                                      environment: ["FLOWS_PYTHON": fake])
        #expect(noModule.status == 1 && noModule.error.split(separator: "\n").count == 1, "\(noModule.error)")
        #expect(noModule.error.contains("cannot import flows_torch") && noModule.error.contains("pip install ./python"), "\(noModule.error)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.pt") && !FileManager.default.fileExists(atPath: "\(dir)/m2.safetensors"))
        let both = try Self.flows(["import", "\(dir)/x.pt", "--spec", "s.json", "--pickled-module", "--out", "\(dir)/y"], environment: [:])
        #expect(both.status == 2 && both.error.split(separator: "\n").count == 1, "\(both.error)")
    }
}
