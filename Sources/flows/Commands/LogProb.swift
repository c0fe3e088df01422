import ArgumentParser
import NormalizingFlows

/// `flows logprob`: the log-density of each row under a saved model.
struct LogProb: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logprob", abstract: "Write log p(x) for each row of a data file, as CSV, in input order.")

    @Option(help: "The model file.")
    var model: String
    @Option(help: "Rows to score (CSV or NPY).")
    var data: String
    @Option(help: "Output file (default: standard output).")
    var out: String?

    func run() throws {
        let flow = try Flow.load(from: model)
        let rows = try loadData(data, for: flow)
        let values = try withoutGradients {
            try (0..<((rows.shape[0] + 4095) / 4096)).map { chunk -> Tensor in
                try flow.logProb(rows.slice(alongAxis: 0, (chunk * 4096)..<Swift.min(rows.shape[0], (chunk + 1) * 4096)))
            }
        }
        try Output.write(DataFile.csv(Tensor.concatenate(values, alongAxis: 0)), to: out)
    }
}
