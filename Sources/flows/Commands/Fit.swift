import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows fit`: maximum-likelihood training on a data file, saved as a model file.
struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fit a flow to a data set (CSV or NPY rows) and save it.")

    @Option(help: "Training data: CSV (comma or whitespace, optional header) or .npy, one row per point.")
    var data: String
    @Option(help: "Validation data; by default a fraction of --data is held out.")
    var validation: String?
    @Option(name: .customLong("validation-fraction"), help: "Share of --data held out for validation when --validation is not given.")
    var validationFraction: Double = 0.1
    @Option(help: "The flow family: \(FlowChoice.names).")
    var flow: String
    @Option(help: "Number of layers (default: 5 for maf/iaf/nsf, 32 for planar/radial).")
    var layers: Int?
    @Option(help: "Hidden layer sizes of the conditioners, comma-separated.")
    var hidden: String?
    @Option(help: "Spline bins (nsf).")
    var bins: Int?
    @Option(help: "Training steps.")
    var steps = 2000
    @Option(name: .customLong("batch-size"), help: "Rows per step.")
    var batchSize = 256
    @Option(help: "Adam learning rate (cosine-decayed).")
    var lr = 1e-3
    @Option(help: "Seed for parameters, shuffling and the validation split.")
    var seed: UInt64 = 0
    @Option(help: "The model file to write (safetensors).")
    var out: String
    @Flag(help: "Report progress as JSON lines.")
    var json = false

    func validate() throws {
        guard steps >= 1, batchSize >= 1 else { throw ValidationError("--steps and --batch-size must be at least 1") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
        guard (0..<1).contains(validationFraction) else { throw ValidationError("--validation-fraction must lie in [0, 1)") }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1") }
        if let bins, bins < 2 { throw ValidationError("--bins must be at least 2") }
        _ = try parseSizes(hidden, option: "--hidden")
    }

    func run() throws {
        let plan = try FlowChoice(name: flow).plan(layers: layers, hidden: try parseSizes(hidden, option: "--hidden"), bins: bins)
        let training = try DataFile.read(data)
        let dimension = training.shape[1]
        let model = try Flow(base: Normal.standard([dimension]), bijector: plan, seed: seed)
        let held = try validation.map { try loadData($0, for: model) }
        var options = FitOptions()
        options.steps = steps
        options.batchSize = batchSize
        options.learningRate = lr
        options.seed = seed
        options.validationFraction = held == nil ? validationFraction : 0
        options.evaluationInterval = Swift.max(1, Swift.min(100, steps / 20))
        options.patience = nil
        let reporter = ProgressReporter(json: json, label: "fit \(flow)")
        let report = try NormalizingFlows.fit(model, data: training, validation: held, options: options, progress: reporter.report)
        try model.save(to: out)
        let fields: [(String, Any?)] = [
            ("event", "done"), ("steps", report.stepsTaken), ("final_loss", report.finalLoss),
            ("best_validation_nll", report.bestValidationNLL), ("best_step", report.bestStep),
            ("seconds", report.seconds), ("parameters", model.parameterCount), ("model", out),
        ]
        if json {
            print(Output.json(fields))
        } else {
            let best = report.bestValidationNLL.map { String(format: ", best validation NLL %.4f at step %d", $0, report.bestStep ?? 0) } ?? ""
            print(String(format: "trained %d steps in %.1f s%@; saved %@ (%d parameters)", report.stepsTaken, report.seconds, best, out, model.parameterCount))
        }
    }
}
