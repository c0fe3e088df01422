import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows demo`: FlowTorch's "Your First Flow" tutorial in Swift.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Learn N((5, 5), 0.5²·I) from N(0, I) with one affine autoregressive layer.",
        discussion: """
            The FlowTorch tutorial: Adam with learning rate 5e-2, 1000 fresh target samples per step, \
            then the negative log-likelihood on 10,000 fresh samples (the optimum is the target's \
            entropy, 1.4516 nats). Writes an SVG of base, target and flow samples before and after training.
            """)

    @Option(parsing: .unconditional, help: "Seed for the parameters and the samples.")
    var seed: UInt64 = 0

    @Option(parsing: .unconditional, help: "Training steps after the first (the tutorial runs 0...500).")
    var steps = 500

    @Option(parsing: .unconditional, help: "Hidden layer sizes of the conditioner, comma-separated (default: the library default).")
    var hidden: String?

    @Option(help: "Activation of the conditioner: \(Activation.allCases.map(\.rawValue).joined(separator: ", ")) (default: the library default).")
    var activation: Activation?

    @Option(help: "Folder for the SVG pictures.")
    var out = "demo-output"

    @Flag(help: "End with one JSON object holding the results.")
    var json = false

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be non-negative, got \(steps)") }
        _ = try parseSizes(hidden, option: "--hidden")
    }

    func run() throws {
        var generator = RandomGenerator(seed: seed)
        var conditioner = DenseAutoregressive()
        if let sizes = try parseSizes(hidden, option: "--hidden") { conditioner.hiddenSizes = sizes }
        if let activation { conditioner.activation = activation }
        try Limits.checkTraining(AffineAutoregressive(conditioner: conditioner), eventSize: 2, rows: 10_000, options: "--hidden", rowsOption: "--hidden")
        let run = try FirstFlow(seed: seed, steps: steps, conditioner: conditioner)
        let before = try run.flow.sample(1000, generator: &generator)
        let result = try run.train(generator: &generator) { step, loss in
            if !json { print("step \(step): loss \(String(format: "%.4f", loss))") }
        }
        let (flow, base, target) = (run.flow, run.base, run.target)
        let (lastLoss, testNLL, trainSeconds) = (result.finalLoss, result.testNLL, result.seconds)
        let after = try flow.sample(1000, generator: &generator)
        let plot = ScatterPlot(panels: [
            .init(title: "base N(0, I)", points: try base.sample(1000, generator: &generator).points2D, color: "#1f77b4"),
            .init(title: "target N(5, 0.5²)", points: try target.sample(1000, generator: &generator).points2D, color: "#d62728"),
            .init(title: "flow, before training", points: before.points2D, color: "#7f7f7f"),
            .init(title: "flow, after training", points: after.points2D, color: "#2ca02c"),
        ])
        let folder = URL(fileURLWithPath: out, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw CommandError("--out \(out): cannot make the folder: \(Main.describe(error))")
        }
        let file = folder.appendingPathComponent("first-flow.svg")
        try plot.write(to: file)

        if json {
            print("{\"task\": \"first-flow\", \"seed\": \(seed), \"steps\": \(steps + 1), \"final_loss\": \(String(format: "%.6f", lastLoss)), \"test_nll\": \(String(format: "%.6f", testNLL)), \"train_seconds\": \(String(format: "%.4f", trainSeconds)), \"params\": \(flow.parameterCount), \"plot\": \"\(file.path)\"}")
        } else {
            print("test NLL on 10,000 fresh samples: \(String(format: "%.4f", testNLL)) nats (optimum 1.4516)")
            print("training took \(String(format: "%.2f", trainSeconds)) s; pictures in \(file.path)")
        }
    }
}

extension Activation: ExpressibleByArgument {}

/// FlowTorch's "Your First Flow": N(0, I) → N(5·1, 0.5²·I) with one affine autoregressive layer,
/// Adam at 5e-2, `steps + 1` steps of 1000 fresh target samples. Shared by `flows demo` and the
/// `first-flow` benchmark.
struct FirstFlow {
    let base = Normal.standard([2])
    let target = Normal(loc: .full([2], 5), scale: .full([2], 0.5))
    let flow: Flow
    let seed: UInt64
    let steps: Int

    init(seed: UInt64, steps: Int = 500, conditioner: DenseAutoregressive = DenseAutoregressive()) throws {
        self.seed = seed
        self.steps = steps
        flow = try Flow(base: base, plan: AffineAutoregressive(conditioner: conditioner), seed: seed)
    }

    /// Trains on samples from `generator`, reporting the loss every 100 steps; then the NLL of
    /// 10,000 fresh target samples.
    func train(generator: inout RandomGenerator, report: (Int, Double) -> Void = { _, _ in }) throws
        -> (finalLoss: Double, testNLL: Double, seconds: Double)
    {
        let optimizer = Adam(flow.parameters, learningRate: 5e-2)
        var loss = Double.nan
        let seconds = try Timing.measure {
            for step in 0...steps {
                let y = try target.sample(1000, generator: &generator)
                loss = try optimizer.step(minimizingNegativeLogLikelihoodOf: flow, y)
                guard loss.isFinite else { throw CommandError("training diverged at step \(step): loss \(loss)") }
                if step % 100 == 0 { report(step, loss) }
            }
        }
        let testNLL = try negativeLogLikelihood(flow, target.sample(10_000, generator: &generator))
        return (loss, testNLL, seconds)
    }
}
