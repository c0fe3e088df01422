import ArgumentParser
import NormalizingFlows

/// `flows export`: a model file as a PyTorch checkpoint, through `python -m flows_torch export`.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as a PyTorch checkpoint (.pt) that flows_torch loads, to train it further in PyTorch.",
        discussion: """
            Runs python -m flows_torch export with $FLOWS_PYTHON or the python3 on PATH (it needs torch, safetensors \
            and flows_torch: pip install torch safetensors && pip install ./python). The checkpoint is plain data \
            that torch.load(FILE, weights_only=True) reads: a dict with the plan and "state_dict", the state_dict of \
            flows_torch.load(MODEL); flows_torch.load_checkpoint(FILE) rebuilds the module. After training, \
            torch.save(flows_torch.checkpoint(flow), FILE) and flows import FILE --out MODEL bring it back.
            """)

    @Argument(help: "The model file.")
    var model: String
    @Option(help: "The checkpoint to write (.pt); never the model.")
    var out: String

    func run() throws {
        try Output.check(out, inputs: [model])
        // A model file this program reads, checked before Python starts.
        if try Flow.load(from: model).dequantizer != nil {
            throw CommandError("\(model): flows_torch has no variational dequantizer; this model's q(u | k) cannot be exported (fit with the default --dequantizer uniform to export)")
        }
        let data = try PythonBridge.run("export", ["export", model, "--out", "{out}"], outputName: "model.pt")
        try FileAccess.write(data, to: out)
    }
}
