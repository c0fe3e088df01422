import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows vi`: fits a flow to a built-in unnormalised density by reverse KL.
struct VI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vi", abstract: "Fit a flow to a test energy (Rezende & Mohamed's U1–U4, Neal's funnel) by reverse KL.")

    @Option(help: "The target: \(Energy.allCases.map(\.rawValue).joined(separator: "|")).")
    var energy: String
    @Option(help: "The flow family: \(FlowChoice.names).")
    var flow: String
    @Option(help: "The base distribution: normal (N(0, I), fixed), studentt (Student's t, --degrees-of-freedom, default \(Int(BaseChoice.defaultDegreesOfFreedom)); heavier tails for targets that have them) or diagonal (a normal whose mean and scale are trained with the flow).")
    var base = "normal"
    @Option(name: .customLong("degrees-of-freedom"), parsing: .unconditional, help: "Degrees of freedom of --base studentt.")
    var degreesOfFreedom: Double?
    @Option(parsing: .unconditional, help: "Number of layers (default: \(FlowChoice.layersHelp)).")
    var layers: Int?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.hiddenHelp))
    var hidden: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.binsHelp))
    var bins: Int?
    @Option(parsing: .unconditional, help: "Training steps.")
    var steps = 5000
    @Option(parsing: .unconditional, help: "Monte Carlo samples per step.")
    var samples = 256
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: FlowChoice.learningRateHelp))
    var lr: Double?
    @Option(parsing: .unconditional, help: "Seed.")
    var seed: UInt64 = 0
    @Option(help: "The model file to write.")
    var out: String
    @Option(help: "Also draw the target density exp(−U) beside the fitted flow's, on one colour scale, to this SVG file.")
    var plot: String?
    @Flag(help: "Report progress as JSON lines.")
    var json = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1, got \(layers)") }
        if let bins, bins < 2 { throw ValidationError("--bins must be at least 2, got \(bins)") }
        _ = try parseSizes(hidden, option: "--hidden")
        _ = try Energy.named(energy)
        if let plot {
            try Plot.checkSVG(plot, option: "--plot")
            guard URL(fileURLWithPath: plot).standardizedFileURL != URL(fileURLWithPath: out).standardizedFileURL else {
                throw ValidationError("--plot \(FileError.clip(plot)) is also --out; the model and the picture need two files")
            }
        }
        if FlowChoice(rawValue: flow.lowercased()) == .gmm {
            throw ValidationError("--flow gmm: a Gaussian mixture picks a component at random, so its samples carry no gradient to its weights "
                + "and reverse KL cannot train it; choose a flow family such as planar, nsf or maf")
        }
        try FlowChoice(name: flow).checkApplicable(hidden: hidden, bins: bins)
        if FlowChoice(rawValue: flow.lowercased())?.isCircular == true {
            throw ValidationError("--flow \(flow) models angles on the torus [−π, π)ᴰ; the vi energies live on ℝ², so choose another --flow")
        }
        _ = try variationalBase()
    }

    /// --base as a base with no data to start from: a mixture's k-means needs data.
    private func variationalBase() throws -> any Distribution {
        let choice = try BaseChoice(name: base, degreesOfFreedom: degreesOfFreedom, components: nil, flow: FlowChoice(name: flow))
        guard choice != .gmm else {
            throw ValidationError("--base gmm starts its components by k-means on data, which flows vi has none of; choose normal, studentt or diagonal")
        }
        return try choice.base(for: Tensor.zeros([0, 2]), degreesOfFreedom: degreesOfFreedom, components: nil, seed: seed)
    }

    func run() throws {
        try Output.check(out, inputs: [])
        try Output.check(plot, option: "--plot", inputs: [out])
        let target = try Energy.named(energy)
        let choice = try FlowChoice(name: flow)
        let plan = try choice.plan(layers: layers, hidden: try parseSizes(hidden, option: "--hidden"), bins: bins, dimension: 2)
        try Limits.checkTraining(plan, eventSize: 2, rows: samples, options: "--layers/--hidden/--bins", rowsOption: "--samples")
        let model = try Flow(base: try variationalBase(), plan: plan, seed: seed)
        var options = VariationalOptions()
        options.steps = steps
        options.samplesPerStep = samples
        let lr = self.lr ?? choice.defaultLearningRate
        options.learningRate = lr
        options.seed = seed
        options.reportInterval = Swift.max(1, steps / 20)
        let reporter = ProgressReporter(json: json, label: "vi \(energy)")
        let report = try fitVariational(model, logDensity: target.logDensity, options: options, progress: reporter.report)
        try model.save(to: out)
        if let plot {
            try Output.write(Plot.picture(flow: model, energy: target, data: nil, samples: 1000, seed: seed), to: plot)
        }
        let logZ = target.logNormalizer()
        let kl = try klDivergence(model, logDensity: target.logDensity, logNormalizer: logZ, samples: 100_000)
        let fields: [(String, Any?)] = [
            ("event", "done"), ("energy", target.rawValue), ("flow", flow), ("base", base.lowercased()), ("steps", report.stepsTaken),
            ("learning_rate", lr), ("kl", kl), ("log_z", logZ), ("seconds", report.seconds), ("steps_per_s", Double(report.stepsTaken) / report.seconds),
            ("model", out), ("plot", plot),
        ]
        if json {
            print(Output.json(fields))
        } else {
            print(String(format: "KL(q ‖ p) ≈ %.4f nats on 100,000 samples (log Z = %.4f by a 1000² grid); %.1f s; saved %@%@", kl, logZ,
                         report.seconds, out, plot.map { "; drew the target beside the flow in \($0)" } ?? ""))
        }
    }
}
