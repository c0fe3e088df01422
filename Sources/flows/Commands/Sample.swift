import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows sample`: draws from a saved model.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write N samples from a model as CSV rows (given --context for a conditional model).")

    @Option(help: "The model file.")
    var model: String
    @Option(name: .short, parsing: .unconditional, help: "Number of samples.")
    var n: Int
    @Option(parsing: .unconditional, help: "Seed of the noise (the same seed gives the same samples).")
    var seed: UInt64 = 0
    @Option(help: "Output file (default: standard output); never the model file.")
    var out: String?
    @Option(parsing: .unconditional,
            help: ArgumentHelp(stringLiteral: "The context c of a conditional model p(y | c): comma-separated numbers (e.g. 0.5,-1.0), one context for all N samples, "
                + "or a file (\(dataFormats)) with one context row per sample, N rows. Default: none (an unconditional model)."))
    var context: String?

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be non-negative, got \(n)") }
    }

    func run() throws {
        try Output.check(out, inputs: [model, context])
        let flow = try Flow.load(from: model)
        let dimension = flow.eventShape.reduce(1, *)
        try checkContextGiven(context != nil, described: "--context \(FileError.clip(context ?? ""))", flow: flow, model: model,
                              accepted: "--context with \(flow.contextSize) comma-separated values (one context for every sample) or a file with one context row per sample")
        try Limits.checkSamples(n, columns: dimension, option: "-n \(n)")
        let contexts = try context.map { _ in try contextRows(flow) }
        var generator = RandomGenerator(seed: seed)
        var text = ""
        // In chunks, so only the text of all the samples is held at once.
        for start in stride(from: 0, to: n, by: 65_536) {
            let rows = Swift.min(65_536, n - start)
            let rowContext = contexts?.rows(start..<(start + rows))
            let samples = try withoutGradients { try flow.sample(rows, context: rowContext, generator: &generator).reshaped(to: [rows, dimension]) }
            try checkFinite(samples, what: "sample", firstRow: start)
            text += DataFile.csv(samples)
        }
        try Output.write(text, to: out)
    }

    /// The context of the samples: one vector for all, or one row per sample from a file.
    enum Contexts {
        case vector([Double], DType)
        case file(Tensor)

        func rows(_ range: Range<Int>) -> Tensor {
            switch self {
            case .vector(let values, let dtype):
                Tensor(Array([[Double]](repeating: values, count: range.count).joined()), shape: [range.count, values.count], dtype: dtype)
            case .file(let rows): rows.slice(alongAxis: 0, range)
            }
        }
    }

    /// `--context` read as comma-separated numbers, or else as a file, checked against `flow`.
    func contextRows(_ flow: Flow) throws -> Contexts {
        let text = context!, size = flow.contextSize
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let numbers = items.map { Double($0) }
        if !numbers.contains(nil) {
            let values = numbers.map { $0! }
            let largest = flow.dtype == .float32 ? Double(Float.greatestFiniteMagnitude) : Double.greatestFiniteMagnitude
            if let bad = values.firstIndex(where: { !$0.isFinite || $0.magnitude > largest }) {
                throw CommandError("--context \(FileError.clip(text)): value \(bad + 1) (\(items[bad])) is not a finite \(flow.dtype) number")
            }
            guard values.count == size else {
                throw CommandError("--context \(FileError.clip(text)) has \(values.count) values, but \(model) takes a context of \(size) values")
            }
            return .vector(values, flow.dtype)
        }
        guard FileManager.default.fileExists(atPath: text) else {
            let bad = items[numbers.firstIndex(of: nil)!]
            throw CommandError("--context \(FileError.clip(text)): '\(FileError.clip(bad))' is not a number and there is no file of that name; "
                + "give \(size) comma-separated numbers (e.g. \(Array(repeating: "0.5", count: Swift.min(size, 4)).joined(separator: ","))) or a file with one context row per sample")
        }
        let rows = try readData(text, dtype: flow.dtype)
        guard rows.shape[1] == size else {
            throw FileError(path: text, "has \(rows.shape[1]) columns, but \(model) takes a context of \(size) values")
        }
        guard rows.shape[0] == n else {
            throw FileError(path: text, "has \(rows.shape[0]) rows, but -n asks for \(n) samples; the context file needs one row per sample (or give one context as comma-separated numbers)")
        }
        return .file(rows)
    }
}
