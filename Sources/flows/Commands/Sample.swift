import ArgumentParser
import NormalizingFlows

/// `flows sample`: draws from a saved model.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write N samples from a model as CSV rows.")

    @Option(help: "The model file.")
    var model: String
    @Option(name: .short, help: "Number of samples.")
    var n: Int
    @Option(help: "Seed of the noise (the same seed gives the same samples).")
    var seed: UInt64 = 0
    @Option(help: "Output file (default: standard output).")
    var out: String?

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be non-negative") }
    }

    func run() throws {
        let flow = try Flow.load(from: model)
        var generator = RandomGenerator(seed: seed)
        let samples = try flow.sample(n, generator: &generator)
        try Output.write(DataFile.csv(samples.reshaped(to: [n, flow.eventShape.reduce(1, *)])), to: out)
    }
}
