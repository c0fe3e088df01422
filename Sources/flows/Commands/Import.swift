import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows import`: a PyTorch checkpoint as a model file, through `python -m flows_torch import`.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Write a PyTorch checkpoint (flows export's, or a zuko/nflows state_dict) as a model file.",
        discussion: """
            Runs python -m flows_torch import with $FLOWS_PYTHON or the python3 on PATH (it needs torch, safetensors \
            and flows_torch, and zuko or nflows for their flows: pip install torch safetensors && pip install ./python). \
            FILE is a checkpoint written by flows export (or torch.save(flows_torch.checkpoint(flow), FILE)), or a \
            state_dict saved by torch.save(flow.state_dict(), FILE) of a zuko or nflows flow. A state_dict holds no \
            architecture: give the flow's constructor arguments with --spec, a small JSON file, \
            {"library": "zuko", "flow": "MAF", "arguments": {"features": 3, "transforms": 3, "hidden_features": [64, 64]}} \
            or {"library": "nflows", "features": 3, "transforms": [{"class": "MaskedAffineAutoregressiveTransform", \
            "arguments": {"features": 3, "hidden_features": 16, "use_residual_blocks": false}}, \
            {"class": "ReversePermutation", "arguments": {"features": 3}}]} (activations by name: "ReLU" for zuko, \
            "relu" for nflows). What flows_torch cannot map exactly is refused with the part named. The model file \
            is loaded here before it is written, so the result is one flows logprob and flows sample read.
            """)

    @Argument(help: "The PyTorch file (.pt).")
    var file: String
    @Option(help: "The model file to write; never an input.")
    var out: String
    @Option(help: "JSON file with the zuko or nflows flow's constructor arguments, for a state_dict (see above).")
    var spec: String?
    @Flag(name: .customLong("pickled-module"),
          help: "FILE is a whole module saved by torch.save(flow); unpickling runs code from the file, so use it on files you trust only.")
    var pickledModule = false

    func validate() throws {
        if spec != nil && pickledModule {
            throw ValidationError("--spec and --pickled-module exclude each other: a pickled module carries its architecture")
        }
    }

    func run() throws {
        try Output.check(out, inputs: [file, spec])
        for case let input? in [file, spec] { _ = try FileAccess.read(input) }   // missing or unreadable: said here
        var arguments = ["import", file, "--out", "{out}"]
        if let spec { arguments += ["--spec", spec] }
        if pickledModule { arguments.append("--pickled-module") }
        // The written file must be one this program reads before it replaces anything.
        let data = try PythonBridge.run("import", arguments, outputName: "model.safetensors") { written in
            do { _ = try Flow.load(from: written) } catch {
                throw CommandError("flows_torch wrote a model file this program cannot read (\(Main.describe(error))); please report it")
            }
        }
        try FileAccess.write(data, to: out)
    }
}
