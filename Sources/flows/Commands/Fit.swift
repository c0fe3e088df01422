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
    @Option(name: .customLong("validation-fraction"), parsing: .unconditional,
            help: "Share of --data held out for validation when --validation is not given.")
    var validationFraction: Double = 0.1
    @Option(help: "The flow family: \(FlowChoice.names).")
    var flow: String
    @Option(parsing: .unconditional, help: "Number of layers (default: \(FlowChoice.layersHelp)).")
    var layers: Int?
    @Option(help: ArgumentHelp(stringLiteral: FlowChoice.hiddenHelp))
    var hidden: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.binsHelp))
    var bins: Int?
    @Option(parsing: .unconditional, help: "Training steps.")
    var steps = 2000
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per step.")
    var batchSize = 256
    @Option(parsing: .unconditional, help: "Adam learning rate (cosine-decayed).")
    var lr = 1e-3
    @Option(parsing: .unconditional, help: "Seed for parameters, shuffling and the validation split.")
    var seed: UInt64 = 0
    @Option(help: "The model file to write (safetensors); checked before training, never one of the inputs.")
    var out: String
    @Option(help: "Which weights to save: best (the step with the lowest validation NLL) or last (the final step).")
    var keep: Keep = .best
    @Flag(help: "Report progress as JSON lines.")
    var json = false

    enum Keep: String, ExpressibleByArgument, CaseIterable {
        case best, last
    }

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard (0..<1).contains(validationFraction) else {
            throw ValidationError("--validation-fraction must lie in [0, 1), got \(validationFraction)")
        }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1, got \(layers)") }
        if let bins, bins < 2 { throw ValidationError("--bins must be at least 2, got \(bins)") }
        _ = try parseSizes(hidden, option: "--hidden")
        try FlowChoice(name: flow).checkApplicable(hidden: hidden, bins: bins)
    }

    func run() throws {
        try Output.check(out, inputs: [data, validation])
        let choice = try FlowChoice(name: flow)
        if let note = choice.densityEstimationNote { printError("note: \(note)") }
        let plan = choice.plan(layers: layers, hidden: try parseSizes(hidden, option: "--hidden"), bins: bins)
        let training = try readData(data)
        let dimension = training.shape[1]
        try Limits.checkTraining(plan, eventSize: dimension, rows: Swift.min(batchSize, training.shape[0]),
                                 options: "--layers/--hidden/--bins", rowsOption: "--batch-size")
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
        options.restoreBest = keep == .best
        let reporter = ProgressReporter(json: json, label: "fit \(flow)")
        let report = try NormalizingFlows.fit(model, data: training, validation: held, options: options, progress: reporter.report)
        try model.save(to: out)
        // Which weights the file holds: the best validation step's (restored) or the last step's.
        let savedStep = keep == .best ? (report.bestStep ?? report.stepsTaken) : report.stepsTaken
        let fields: [(String, Any?)] = [
            ("event", "done"), ("steps", report.stepsTaken), ("final_loss", report.finalLoss),
            ("best_validation_nll", report.bestValidationNLL), ("best_step", report.bestStep),
            ("saved_weights", report.bestStep == nil ? "last" : keep.rawValue), ("saved_step", savedStep),
            ("seconds", report.seconds), ("parameters", model.parameterCount), ("model", out),
        ]
        if json {
            print(Output.json(fields))
        } else {
            let best = report.bestValidationNLL.map { String(format: "; best validation NLL %.4f at step %d", $0, report.bestStep ?? 0) } ?? ""
            let which = report.bestStep == nil ? "the last step's weights (no validation)"
                : keep == .best ? "the weights of step \(savedStep), the best validation step (--keep last saves the last step's)"
                : "the last step's weights (step \(savedStep))"
            print(String(format: "trained %d steps in %.1f s%@; saved %@ (%d parameters) with %@",
                         report.stepsTaken, report.seconds, best, out, model.parameterCount, which))
        }
    }
}
