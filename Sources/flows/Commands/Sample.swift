import ArgumentParser
import NormalizingFlows

/// `flows sample`: draws from a saved model.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write N samples from a model as CSV rows.")

    @Option(help: "The model file.")
    var model: String
    @Option(name: .short, parsing: .unconditional, help: "Number of samples.")
    var n: Int
    @Option(parsing: .unconditional, help: "Seed of the noise (the same seed gives the same samples).")
    var seed: UInt64 = 0
    @Option(help: "Output file (default: standard output); never the model file.")
    var out: String?

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be non-negative, got \(n)") }
    }

    func run() throws {
        try Output.check(out, inputs: [model])
        let flow = try Flow.load(from: model)
        let dimension = flow.eventShape.reduce(1, *)
        try Limits.checkSamples(n, columns: dimension, option: "-n \(n)")
        var generator = RandomGenerator(seed: seed)
        var text = ""
        // In chunks, so only the text of all the samples is held at once.
        for start in stride(from: 0, to: n, by: 65_536) {
            let rows = Swift.min(65_536, n - start)
            let samples = try withoutGradients { try flow.sample(rows, generator: &generator).reshaped(to: [rows, dimension]) }
            try checkFinite(samples, what: "sample", firstRow: start)
            text += DataFile.csv(samples)
        }
        try Output.write(text, to: out)
    }
}
