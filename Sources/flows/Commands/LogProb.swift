import ArgumentParser
import NormalizingFlows

/// `flows logprob`: the log-density of each row under a saved model.
struct LogProb: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logprob", abstract: "Write log p(x) for each row of a data file, as CSV, in input order.",
        discussion: """
            A row whose density is below what the model's dtype represents (far outside where the model has \
            mass, or a model with absurd weights) has log p = -inf; that is an error naming the row unless \
            --allow-infinite is given, which writes -inf for it. A conditional model scores log p(y | c): the \
            context c of each row comes from --context-columns (those columns of the data file; the others are y) \
            or --context (a file with one context row per data row); without either, from the context columns \
            that flows fit recorded in the model file, for rows of the width it was fitted on. A model fitted with \
            --dequantize scores whole numbers: it writes the estimate of log P(k) (see --dequantize) for the \
            columns fit dequantized, with a variational dequantizer's learned q(u | k) as the importance proposal; \
            --dequantize none writes the density at the rows as given. flows info shows what the model recorded.
            """)

    @Option(help: "The model file.")
    var model: String
    @Option(help: "Rows to score: \(dataFormats).")
    var data: String
    @OptionGroup var contextOptions: ContextOptions
    @Option(help: "Output file (default: standard output); never one of the inputs.")
    var out: String?
    @Flag(name: .customLong("allow-infinite"), help: "Write -inf for rows whose density underflows instead of failing.")
    var allowInfinite = false
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: "For a model fitted with --dequantize: the y columns that hold whole numbers "
                + "(as given to fit, or all); writes an estimate of log P(k) = log ∫ p(k + u) du over the unit cell, the log-probability of the whole "
                + "numbers in nats, instead of the density at k: log (1/K) Σⱼ p(k + uⱼ)/q(uⱼ | k) over K draws, uniform (q = 1) or, for a model fitted "
                + "with --dequantizer variational, from its q. none writes the density at the rows as given. Default: the columns fit dequantized, "
                + "as the model file records them (a variational dequantizer's, or fit --dequantize's); none for a model fitted without."))
    var dequantize: String?
    @Option(name: .customLong("dequantize-samples"), parsing: .unconditional,
            help: "K, the draws per row of the log P(k) estimate (its error shrinks as 1/√K; with a variational dequantizer it is at least the variational bound and rises to log P(k) as K grows). Default: 100.")
    var dequantizeSamples = 100
    @Option(parsing: .unconditional, help: "Seed of the --dequantize draws. Default: 0.")
    var seed: UInt64 = 0

    func validate() throws {
        guard dequantizeSamples >= 1 && dequantizeSamples <= 1_000_000 else {
            throw ValidationError("--dequantize-samples must lie in 1…1000000, got \(dequantizeSamples)")
        }
        if let dequantize, dequantize != "none" { _ = try SupportOptions.dequantizedColumns(dequantize, columns: nil) }
    }

    func run() throws {
        try Output.check(out, inputs: [model, data, contextOptions.context])
        let flow = try Flow.load(from: model)
        let (rows, context) = try contextOptions.load(data, for: flow, model: model)
        // The columns whose log P(k) is estimated: --dequantize's (none: no estimate), else those fit dequantized.
        let cells = try dequantize.map { $0 == "none" ? [] : try SupportOptions.dequantizedColumns($0, columns: rows.shape[1]) }
            ?? flow.dequantizer?.columns ?? flow.dataLayout?.dequantizedColumns ?? []
        if let dequantizer = flow.dequantizer, !cells.isEmpty, cells.sorted() != dequantizer.columns {
            throw CommandError("--dequantize \(dequantize!): \(model) was fitted with a variational dequantizer of y columns "
                + "\(columnList(dequantizer.columns)); leave out --dequantize, give those columns or none")
        }
        var generator = RandomGenerator(seed: seed)
        let values = try withoutGradients {
            try (0..<((rows.shape[0] + 4095) / 4096)).map { chunk -> Tensor in
                let range = (chunk * 4096)..<Swift.min(rows.shape[0], (chunk + 1) * 4096)
                let (y, c) = (rows.slice(alongAxis: 0, range), context?.slice(alongAxis: 0, range))
                guard !cells.isEmpty else { return try flow.logProb(y, context: c) }
                do {
                    return try dequantizedLogProb(flow, y, columns: cells, context: c, samples: dequantizeSamples, generator: &generator)
                } catch let error as TrainingError {
                    throw FileError(path: data, "\(dequantize == nil ? "the model's dequantized columns" : "--dequantize"): \(error.description)")
                }
            }
        }
        let all = Tensor.concatenate(values, alongAxis: 0)
        let doubles = all.doubles
        if let bad = doubles.firstIndex(where: { $0.isNaN || ($0.isInfinite && ($0 > 0 || !allowInfinite)) }) {
            let count = doubles.filter { !$0.isFinite }.count
            throw CommandError("\(data): row \(bad + 1) has log p = \(doubles[bad]) (\(count) of \(doubles.count) rows): the density underflows there, far outside the model's mass, or the model's weights are absurd; --allow-infinite writes -inf for such rows")
        }
        try Output.write(DataFile.csv(all), to: out)
    }
}
