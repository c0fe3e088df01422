import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows fit`: maximum-likelihood training on a data file, saved as a model file.
struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fit a flow to a data set (CSV or NPY rows) and save it.",
        discussion: """
            With --context-columns or --context the flow is conditional, p(y | c), and must be one of \
            \(FlowChoice.allCases.filter(\.takesContext).map(\.rawValue).joined(separator: ", ")); rows held out \
            for validation keep their context rows. The model file records how the data file was read: the \
            --context-columns and the data file's column count, and the --dequantize columns (with --bounds in the \
            plan), so flows logprob reads files of the same kind without those options (flows info shows them).
            """)

    @Option(help: "Training data, one row per point: \(dataFormats).")
    var data: String
    @Option(help: "Validation data (with --context-columns its columns are split the same way); by default a fraction of --data is held out.")
    var validation: String?
    @OptionGroup var contextOptions: ContextOptions
    @OptionGroup var supportOptions: SupportOptions
    @Option(name: .customLong("validation-context"),
            help: "With --context and --validation: a file with one context row per row of --validation. Default: none.")
    var validationContext: String?
    @Option(name: .customLong("validation-fraction"), parsing: .unconditional,
            help: "Share of --data held out for validation when --validation is not given.")
    var validationFraction: Double = 0.1
    @Option(help: "The flow family: \(FlowChoice.names).")
    var flow: String
    @Option(help: ArgumentHelp(stringLiteral: BaseChoice.help))
    var base: String?
    @Option(name: .customLong("degrees-of-freedom"), parsing: .unconditional, help: "Degrees of freedom of --base studentt.")
    var degreesOfFreedom: Double?
    @Option(parsing: .unconditional, help: "Mixture components of --base gmm and --flow gmm (default: \(BaseChoice.defaultComponents)).")
    var components: Int?
    @Option(help: "The mixture components' covariance for --base gmm and --flow gmm: diagonal (the default; O(KD) per point) or full (any positive-definite covariance; O(KD²) per point).")
    var covariance: String?
    @Option(parsing: .unconditional, help: "Number of layers (default: \(FlowChoice.layersHelp)).")
    var layers: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.hiddenHelp))
    var hidden: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.binsHelp))
    var bins: Int?
    @Option(name: .customLong("context-embedding"), parsing: .unconditional,
            help: "With a context: a network applied to it before every layer, as hidden sizes then the embedded length, comma-separated (e.g. 64,8: one hidden layer of 64 units, 8 features). Default: none, the layers see the context itself.")
    var contextEmbedding: String?
    @Option(parsing: .unconditional, help: "Training steps.")
    var steps = 2000
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Rows per step.")
    var batchSize = 256
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.learningRateHelp))
    var lr: Double?
    @Option(parsing: .unconditional, help: "Seed for parameters, shuffling and the validation split.")
    var seed: UInt64 = 0
    @Option(help: "The model file to write (safetensors); checked before training, never one of the inputs.")
    var out: String
    @Option(help: "Which weights to save: best (the step with the lowest validation NLL) or last (the final step).")
    var keep: Keep = .best
    @Flag(help: "Report progress as JSON lines.")
    var json = false

    /// --context-embedding's hidden sizes and embedded length, nil when it is not given.
    private func parsedContextEmbedding() throws -> (network: CouplingNetwork, features: Int)? {
        guard let sizes = try parseSizes(contextEmbedding, option: "--context-embedding") else { return nil }
        return (CouplingNetwork(hiddenSizes: Array(sizes.dropLast())), sizes.last!)
    }

    enum Keep: String, ExpressibleByArgument, CaseIterable {
        case best, last
    }

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard (0..<1).contains(validationFraction) else {
            throw ValidationError("--validation-fraction must lie in [0, 1), got \(validationFraction)")
        }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1, got \(layers)") }
        if let bins, bins < 2 { throw ValidationError("--bins must be at least 2, got \(bins)") }
        _ = try parseSizes(hidden, option: "--hidden")
        if contextEmbedding != nil && !contextOptions.isGiven {
            throw ValidationError("--context-embedding \(contextEmbedding!) embeds a context: give --context-columns or --context")
        }
        _ = try parsedContextEmbedding()
        try FlowChoice(name: flow).checkApplicable(layers: layers, hidden: hidden, bins: bins, context: contextOptions.isGiven ? contextOptions.described : nil)
        _ = try BaseChoice(name: base, degreesOfFreedom: degreesOfFreedom, components: components, covariance: covariance,
                           flow: FlowChoice(name: flow), conditional: contextOptions.isGiven)
        if contextOptions.context != nil && validation != nil && validationContext == nil {
            throw ValidationError("--validation \(validation!) needs --validation-context FILE (its context rows) when the context comes from --context")
        }
        if validationContext != nil && (contextOptions.context == nil || validation == nil) {
            throw ValidationError("--validation-context goes with --context and --validation (with --context-columns the validation file holds its own context columns)")
        }
    }

    func run() throws {
        try Output.check(out, inputs: [data, validation, contextOptions.context, validationContext])
        let choice = try FlowChoice(name: flow)
        let (training, trainingContext) = try contextOptions.split(readData(data), of: data, dtype: .float32)
        var options = FitOptions()
        options.validationFraction = validation == nil ? validationFraction : 0
        try checkSplit(rows: training.shape[0], options)
        let dimension = training.shape[1], contextSize = trainingContext?.shape[1] ?? 0
        let bounds = try supportOptions.parsedBounds(columns: dimension)
        let dequantized = try supportOptions.dequantizedColumns(columns: dimension)
        try supportOptions.check(training, of: data, against: bounds, dequantized: dequantized)
        if choice.isCircular && (bounds != nil || !dequantized.isEmpty) {
            throw CommandError("--bounds and --dequantize do not apply to --flow \(flow): its data are angles in [−π, π)")
        }
        try choice.checkAngles(training, of: data)
        let familyPlan = choice.plan(layers: layers, hidden: try parseSizes(hidden, option: "--hidden"), bins: bins, dimension: dimension)
        let flowPlan = try parsedContextEmbedding().map { ContextEmbedding(familyPlan, features: $0.features, network: $0.network) } ?? familyPlan
        // The bounds map the flow's ℝᴰ onto the data's box: the last step toward the data.
        let plan = bounds.map { Compose([flowPlan, $0]) } ?? flowPlan
        try Limits.checkTraining(plan, eventSize: dimension, contextSize: contextSize, rows: Swift.min(batchSize, training.shape[0]),
                                 options: "--layers/--hidden/--bins", rowsOption: "--batch-size")
        let baseChoice = try BaseChoice(name: base, degreesOfFreedom: degreesOfFreedom, components: components, covariance: covariance,
                                        flow: choice, conditional: contextSize > 0)
        // A base fitted to data (a mixture's k-means) sees them where the flow starts: inside any bounds.
        let flowSpace = try SupportOptions.flowSpace(SupportOptions.cellMidpoints(training, dequantized: dequantized), bounds: bounds)
        let variational = supportOptions.dequantizer == .variational
        let dequantization = variational ? VariationalDequantization(columns: dequantized, standardizing: training) : nil
        let makeFlow = {
            try Flow(base: baseChoice.base(for: flowSpace, degreesOfFreedom: degreesOfFreedom, components: components, covariance: covariance,
                                           contextSize: contextSize, seed: seed),
                     plan: plan, contextSize: contextSize, dequantization: dequantization, seed: seed)
        }
        let model = try makeFlow()
        let held = try validation.map { try contextOptions.load($0, for: model, model: "the model fitted to \(data)", contextPath: validationContext) }
        if let held {
            try supportOptions.check(held.y, of: validation!, against: bounds, dequantized: dequantized)
            try choice.checkAngles(held.y, of: validation!)
        }
        // Once every input has passed its checks, so that a refused command stays one error line.
        if let note = choice.densityEstimationNote { printError("note: \(note)") }
        if let note = choice.splineBoundNote(flowSpace) { printError("note: \(note)") }
        options.steps = steps
        options.batchSize = batchSize
        let lr = self.lr ?? choice.defaultLearningRate
        options.learningRate = lr
        options.seed = seed
        options.evaluationInterval = Swift.max(1, Swift.min(100, steps / 20))
        options.patience = nil
        options.restoreBest = keep == .best
        options.dequantizedColumns = dequantized
        let reporter = ProgressReporter(json: json, label: "fit \(flow)")
        let report: FitReport
        do {
            report = try NormalizingFlows.fit(model, data: training, context: trainingContext, validation: held?.y,
                                              validationContext: held?.context, options: options, progress: reporter.report)
        } catch let error as TrainingError {
            var firstStep = false
            switch error {
            case .nonFiniteLoss(let step, _): firstStep = step == 1
            case .nonFiniteValidation: break
            default: throw error
            }
            let cellMidpoints = { SupportOptions.cellMidpoints($0, dequantized: dequantized) }
            let files = [(data, cellMidpoints(training), trainingContext)] + (held.map { [(validation!, cellMidpoints($0.y), $0.context)] } ?? [])
            if let blamed = overflow(in: files, initialFlow: try makeFlow(), firstStep: firstStep) { throw blamed }
            guard case .nonFiniteLoss = error else { throw error }
            throw CommandError("--flow \(flow) diverged (no model written): \(error.description); --lr was \(lr)")
        }
        // How the data file was read, for flows logprob and info: its context columns and width,
        // and the uniformly dequantized columns (a variational dequantizer records its own).
        let contextColumns = try contextOptions.columns(), uniform = variational ? [] : dequantized
        if contextColumns != nil || !uniform.isEmpty {
            model.dataLayout = DataLayout(width: dimension + (contextColumns?.count ?? 0), contextColumns: contextColumns, dequantizedColumns: uniform)
        }
        try model.save(to: out)
        // Which weights the file holds: the best validation step's (restored) or the last step's.
        let savedStep = keep == .best ? (report.bestStep ?? report.stepsTaken) : report.stepsTaken
        let fields: [(String, Any?)] = [
            ("event", "done"), ("steps", report.stepsTaken), ("final_loss", report.finalLoss),
            ("best_validation_nll", report.bestValidationNLL), ("best_step", report.bestStep),
            ("saved_weights", report.bestStep == nil ? "last" : keep.rawValue), ("saved_step", savedStep),
            ("seconds", report.seconds), ("learning_rate", lr), ("parameters", model.parameterCount), ("context_size", contextSize),
            ("context_columns", contextColumns),
            ("dequantized_columns", dequantized.isEmpty ? nil : dequantized),
            ("dequantizer", dequantized.isEmpty ? nil : supportOptions.dequantizer.rawValue), ("model", out),
        ]
        if json {
            print(Output.json(fields))
        } else {
            let best = report.bestValidationNLL.map { String(format: "; best validation NLL %.4f at step %d", $0, report.bestStep ?? 0) } ?? ""
            let which = report.bestStep == nil ? "the last step's weights (no validation)"
                : keep == .best ? "the weights of step \(savedStep), the best validation step (--keep last saves the last step's)"
                : "the last step's weights (step \(savedStep))"
            let recorded = contextColumns.map { " from columns \(columnList($0)) of the data, recorded for flows logprob" } ?? ""
            let conditional = contextSize == 0 ? "" : ", conditional on a context of \(contextSize) values\(recorded)"
            if !dequantized.isEmpty {
                let columns = columnList(dequantized)
                print(variational
                      ? "dequantized y columns \(columns) with a variational dequantizer q(u | k), saved with the model: the NLLs are negative variational "
                        + "bounds, −E_q[log p(k + u) − log q(u | k)], upper bounds on the whole numbers' NLL (nats per row); flows logprob estimates log P(k)"
                      : "dequantized y columns \(columns): the NLLs are of the dequantized data, "
                        + "upper bounds on the whole numbers' NLL (nats per row); the columns are saved with the model, and flows logprob estimates log P(k)")
            }
            print(String(format: "trained %d steps in %.1f s%@; saved %@ (%d parameters%@) with %@",
                         report.stepsTaken, report.seconds, best, out, model.parameterCount, conditional, which))
        }
    }

    /// Refuses, before the flow is built, a held-out split that leaves no validation or no
    /// training rows (3 rows at the default 10% hold out none).
    func checkSplit(rows: Int, _ options: FitOptions) throws {
        guard options.validationFraction > 0 else { return }
        let heldOut = options.heldOutRows(of: rows)
        guard heldOut < 1 || heldOut == rows else { return }
        let missing = heldOut < 1 ? "validation" : "training"
        throw CommandError("--validation-fraction \(validationFraction) of the \(rows) rows of \(data) holds out \(heldOut), leaving no \(missing) rows; "
            + "give more rows, another --validation-fraction, a --validation file, or --validation-fraction 0 to train without validation")
    }

    /// Why the loss or the validation NLL became non-finite when the data are to blame: a row
    /// whose log-density under the freshly initialised flow overflows float32, or a loss that
    /// failed at the first step, before any update (values near 1e17 overflow the gradient's
    /// norm though every log-density is finite). `nil` when the training itself diverged.
    func overflow(in files: [(path: String, rows: Tensor, context: Tensor?)], initialFlow: Flow, firstStep: Bool) -> FileError? {
        let advice = "rescale the data (e.g. standardise each column)"
        for (path, rows, context) in files {
            if let (bad, logDensity) = firstNonFiniteRow(of: rows, context: context, under: initialFlow) {
                let largest = rows.slice(alongAxis: 0, bad..<(bad + 1)).doubles.map(\.magnitude).max() ?? 0
                return FileError(path: path, "the data overflow float32 in the flow's computations: row \(bad + 1) (largest value \(String(format: "%.3g", largest))) "
                    + "has log-density \(logDensity) under the initial flow; \(advice)")
            }
        }
        guard firstStep, let (path, rows, _) = files.first else { return nil }
        let values = rows.doubles
        let largest = values.indices.max { values[$0].magnitude < values[$1].magnitude } ?? 0
        let width = rows.shape[1]
        return FileError(path: path, "the data overflow float32 in the flow's computations: the first step failed before any update "
            + "(largest value \(String(format: "%.3g", values[largest].magnitude)) at row \(largest / width + 1), column \(largest % width + 1)); \(advice)")
    }

    /// The first row (in chunks, a chunk that throws row by row) whose log-density under `flow`
    /// (given its `context` row, for a conditional flow) is not finite, and that value (NaN when the flow threw).
    func firstNonFiniteRow(of rows: Tensor, context: Tensor?, under flow: Flow, chunk: Int = 4096) -> (Int, Double)? {
        func logDensity(_ range: Range<Int>) -> [Double] {
            (try? withoutGradients { try flow.logProb(rows.slice(alongAxis: 0, range), context: context?.slice(alongAxis: 0, range)).doubles }) ?? [.nan]
        }
        for start in stride(from: 0, to: rows.shape[0], by: chunk) {
            let range = start..<Swift.min(rows.shape[0], start + chunk)
            guard !logDensity(range).allSatisfy(\.isFinite) else { continue }
            for row in range {
                if let value = logDensity(row..<(row + 1)).first, !value.isFinite { return (row, value) }
            }
        }
        return nil
    }
}
