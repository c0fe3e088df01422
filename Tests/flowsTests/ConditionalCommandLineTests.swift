import Foundation
import NormalizingFlows
import Testing

// Issue 25: conditional density estimation from the command line (fit --context-columns,
// logprob and sample with a context, info).

/// Rows of a known conditional law: c uniform on [−2, 2]², y | c ~ N(c, 0.1² I), laid out as
/// the columns c₁, y₁, c₂, y₂ (so the context columns are 0,2); and log p(y | c) of each row.
private func conditionalRows(_ n: Int, seed: UInt64) -> (rows: Tensor, y: Tensor, c: Tensor, logDensity: [Double]) {
    var g = RandomGenerator(seed: seed)
    var rows: [Double] = [], y: [Double] = [], c: [Double] = [], logDensity: [Double] = []
    let sigma = 0.1
    for _ in 0..<n {
        let c1 = -2 + 4 * g.nextUniform(), c2 = -2 + 4 * g.nextUniform()
        let e1 = g.nextNormal(), e2 = g.nextNormal()
        let y1 = c1 + sigma * e1, y2 = c2 + sigma * e2
        rows += [c1, y1, c2, y2]
        y += [y1, y2]
        c += [c1, c2]
        // Two independent normals: −½ z² − log σ − ½ log 2π each, with z = (y − c)/σ.
        let z1 = (y1 - c1) / sigma, z2 = (y2 - c2) / sigma
        logDensity.append(-0.5 * (z1 * z1 + z2 * z2) - 2 * log(sigma) - log(2 * Double.pi))
    }
    return (Tensor(rows, shape: [n, 4]), Tensor(y, shape: [n, 2]), Tensor(c, shape: [n, 2]), logDensity)
}

/// Writes `rows` as `name.csv` (c₁, y₁, c₂, y₂), `name-y.csv` and `name-c.csv` in `dir`.
private func write(_ rows: (rows: Tensor, y: Tensor, c: Tensor, logDensity: [Double]), _ name: String, in dir: String) throws {
    try DataFile.writeCSV(rows.rows, to: "\(dir)/\(name).csv")
    try DataFile.writeCSV(rows.y, to: "\(dir)/\(name)-y.csv")
    try DataFile.writeCSV(rows.c, to: "\(dir)/\(name)-c.csv")
}

private func column(_ output: String) -> [Float] { output.split(separator: "\n").map { Float(String($0))! } }

@Test func aConditionalFlowFittedFromTheCommandLineRecoversTheKnownConditionalLaw() throws {
    let dir = folder()
    let train = conditionalRows(4000, seed: 1), test = conditionalRows(2000, seed: 2)
    try write(train, "train", in: dir)
    try write(test, "test", in: dir)
    let model = "\(dir)/conditional.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--context-columns", "0,2", "--flow", "realnvp", "--layers", "2",
                            "--hidden", "16", "--steps", "1000", "--lr", "5e-3", "--batch-size", "512", "--seed", "1", "--out", model, "--json"])
    #expect(fitted.status == 0, "\(fitted.error)")
    #expect(fitted.output.split(separator: "\n").last?.contains("\"context_size\": 2") == true, "\(fitted.output)")

    let byColumns = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--context-columns", "0,2"])
    let byFile = try flows(["logprob", "--model", model, "--data", "\(dir)/test-y.csv", "--context", "\(dir)/test-c.csv"])
    #expect(byColumns.status == 0 && byFile.status == 0, "\(byColumns.error) \(byFile.error)")
    let scored = column(byColumns.output)
    #expect(scored.count == 2000 && column(byFile.output) == scored)
    // The model file records the context columns and the rows' width: rows of that width score
    // the same without the option, and rows of another width get one line saying what it expects.
    let byRecord = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv"])
    #expect(byRecord.status == 0 && byRecord.output == byColumns.output, "\(byRecord.error)")
    expectCleanFailure(try flows(["logprob", "--model", model, "--data", "\(dir)/test-y.csv"]),
                       "test-y.csv has 2 columns, but \(model) was fitted on 4-column rows with context columns 0,2: "
                       + "give rows of 4 columns, or --context FILE with y-only rows (2 columns)", "rows of y alone, no options")

    // The library's log p(y | c) of the same rows, from the same file.
    let flow = try Flow.load(from: model)
    #expect(flow.contextSize == 2)
    let y = try DataFile.read("\(dir)/test-y.csv"), c = try DataFile.read("\(dir)/test-c.csv")
    #expect(try withoutGradients { try flow.logProb(y, context: c).floats } == scored)

    // Held-out conditional NLL against the analytic truth of the same rows (computed before
    // the rows were rounded to float32, which moves it by far less than the bound).
    let truth = -test.logDensity.reduce(0, +) / 2000
    let nll = -scored.map(Double.init).reduce(0, +) / 2000
    #expect(abs(nll - truth) <= 0.05, "held-out conditional NLL \(nll), analytic \(truth)")

    // Samples given a context follow N(c, 0.1² I).
    let drawn = try flows(["sample", "--model", model, "-n", "2000", "--context", "0.5,-1.0", "--seed", "3"])
    #expect(drawn.status == 0, "\(drawn.error)")
    let samples = drawn.output.split(separator: "\n").map { $0.split(separator: ",").map { Double(String($0))! } }
    #expect(samples.count == 2000 && samples.allSatisfy { $0.count == 2 })
    for (i, center) in [0.5, -1.0].enumerated() {
        let values = samples.map { $0[i] }
        let mean = values.reduce(0, +) / 2000
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 1999).squareRoot()
        #expect(abs(mean - center) < 0.05 && abs(sd - 0.1) < 0.02, "y\(i + 1) | c: mean \(mean), sd \(sd)")
    }

    let info = try flows(["info", "--model", model])
    #expect(info.status == 0 && info.output.contains("context:    2 values (conditional: p(y | c)) from columns 0,2 of 4-column rows, y from columns 1,3"),
            "\(info.output)")
    let infoJSON = try flows(["info", "--model", model, "--json"])
    #expect(infoJSON.output.contains(#""data_layout": {"width": 4, "context_columns": [0, 2], "dequantized_columns": []}"#), "\(infoJSON.output)")
}

@Test func aContextEmbeddingFittedFromTheCommandLineRecoversTheKnownConditionalLaw() throws {
    let dir = folder()
    let train = conditionalRows(4000, seed: 5), test = conditionalRows(2000, seed: 6)
    try write(train, "train", in: dir)
    try write(test, "test", in: dir)
    let model = "\(dir)/embedded.safetensors"
    let fitted = try flows(["fit", "--data", "\(dir)/train.csv", "--context-columns", "0,2", "--context-embedding", "16,2", "--flow", "maf",
                            "--layers", "2", "--hidden", "16", "--steps", "1000", "--lr", "5e-3", "--batch-size", "512", "--seed", "1", "--out", model])
    #expect(fitted.status == 0, "\(fitted.error)")
    let flow = try Flow.load(from: model)
    #expect(flow.namedParameters.contains { $0.name == "bijector.embedding.layers.1.weight" && $0.parameter.shape == [2, 16] })
    let scored = try flows(["logprob", "--model", model, "--data", "\(dir)/test.csv", "--context-columns", "0,2"])
    #expect(scored.status == 0, "\(scored.error)")
    let truth = -test.logDensity.reduce(0, +) / 2000
    let nll = -column(scored.output).map(Double.init).reduce(0, +) / 2000
    #expect(abs(nll - truth) <= 0.1, "held-out conditional NLL \(nll), analytic \(truth)")
    let unconditional = try flows(["fit", "--data", "\(dir)/test-y.csv", "--flow", "maf", "--context-embedding", "8,2", "--out", "\(dir)/x.safetensors"])
    expectCleanFailure(unconditional, status: 2, "--context-embedding 8,2 embeds a context: give --context-columns or --context", "embedding without a context")
}

@Test func heldOutRowsKeepTheirContextRows() throws {
    // The best validation NLL that fit reports is the saved model's NLL on the validation rows
    // with their own context rows, whether the context comes from columns or from files.
    let dir = folder()
    let train = conditionalRows(400, seed: 4), held = conditionalRows(100, seed: 5)
    try write(train, "train", in: dir)
    try write(held, "held", in: dir)
    let common = ["--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "40", "--lr", "1e-2", "--json"]
    let runs = [
        ["fit", "--data", "\(dir)/train.csv", "--validation", "\(dir)/held.csv", "--context-columns", "0,2", "--out", "\(dir)/a.safetensors"],
        ["fit", "--data", "\(dir)/train-y.csv", "--context", "\(dir)/train-c.csv", "--validation", "\(dir)/held-y.csv",
         "--validation-context", "\(dir)/held-c.csv", "--out", "\(dir)/b.safetensors"],
    ]
    for arguments in runs {
        let fitted = try flows(arguments + common)
        #expect(fitted.status == 0, "\(fitted.error)")
        let done = try JSONSerialization.jsonObject(with: Data(fitted.output.split(separator: "\n").last!.utf8)) as! [String: Any]
        let reported = done["best_validation_nll"] as! Double
        let flow = try Flow.load(from: arguments[arguments.firstIndex(of: "--out")! + 1])
        let nll = try withoutGradients {
            try negativeLogLikelihood(flow, DataFile.read("\(dir)/held-y.csv"), context: DataFile.read("\(dir)/held-c.csv"))
        }
        #expect(abs(nll - reported) <= 1e-4 * abs(nll), "\(arguments[2]): reported \(reported), the saved model's \(nll)")
    }
}

@Test func contextMistakesGiveOneClearErrorLine() throws {
    let dir = folder()
    let conditional = "\(dir)/c.safetensors", plain = "\(dir)/u.safetensors"
    try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])), contextSize: 2).save(to: conditional)
    try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4]))).save(to: plain)
    let rows = conditionalRows(10, seed: 6)
    try DataFile.writeCSV(rows.rows, to: "\(dir)/d.csv")                                   // c₁, y₁, c₂, y₂
    try DataFile.writeCSV(Tensor.concatenate([rows.rows, rows.y.slice(alongAxis: 1, 0..<1)], alongAxis: 1), to: "\(dir)/d5.csv")
    try DataFile.writeCSV(rows.y, to: "\(dir)/y.csv")
    try DataFile.writeCSV(rows.c, to: "\(dir)/c.csv")
    try DataFile.writeCSV(rows.c.slice(alongAxis: 0, 0..<7), to: "\(dir)/c7.csv")
    try DataFile.writeCSV(rows.c.slice(alongAxis: 1, 0..<1), to: "\(dir)/c1.csv")
    let logprob = ["logprob", "--model", conditional, "--data"], sample = ["sample", "--model", conditional, "-n"]
    let fit = ["fit", "--flow", "maf", "--steps", "2", "--out", "\(dir)/x.safetensors", "--data"]
    // (name, arguments, exit status, a fragment of the one error line)
    let cases: [(String, [String], Int32, String)] = [
        ("conditional model, no context", logprob + ["\(dir)/y.csv"], 1, "c.safetensors is a conditional model p(y | c) with a context of 2 values: give --context-columns"),
        ("unconditional model, context columns", ["logprob", "--model", plain, "--data", "\(dir)/d.csv", "--context-columns", "0,2"], 1,
         "--context-columns 0,2: \(plain) is not a conditional model"),
        ("unconditional model, context file", ["logprob", "--model", plain, "--data", "\(dir)/y.csv", "--context", "\(dir)/c.csv"], 1, "is not a conditional model"),
        ("too few context columns", logprob + ["\(dir)/d.csv", "--context-columns", "0"], 1, "--context-columns 0 selects 1 columns, but \(conditional) takes a context of 2 values"),
        ("y of the wrong width", logprob + ["\(dir)/d5.csv", "--context-columns", "0,2"], 1,
         "d5.csv: has 3 columns after the 2 context columns of --context-columns 0,2, but the model expects 2"),
        ("a column beyond the file", logprob + ["\(dir)/d.csv", "--context-columns", "0,7"], 1, "d.csv: has 4 columns (0-3), so --context-columns 0,7 names column 7"),
        ("every column as context", logprob + ["\(dir)/d.csv", "--context-columns", "0-3"], 1, "leaving none for y"),
        ("context file rows", logprob + ["\(dir)/y.csv", "--context", "\(dir)/c7.csv"], 1, "c7.csv: has 7 rows, but \(dir)/y.csv has 10"),
        ("context file columns", logprob + ["\(dir)/y.csv", "--context", "\(dir)/c1.csv"], 1, "c1.csv has 1 columns, but \(conditional) takes a context of 2 values"),
        ("missing context file", logprob + ["\(dir)/y.csv", "--context", "\(dir)/none.csv"], 1, "none.csv: no such file"),
        ("not a column", logprob + ["\(dir)/d.csv", "--context-columns", "0,b"], 2, "--context-columns 0,b: 'b' is not a column number"),
        ("negative column", logprob + ["\(dir)/d.csv", "--context-columns", "-1"], 2, "'-1' is not a column number"),
        ("backwards range", logprob + ["\(dir)/d.csv", "--context-columns", "3-1"], 2, "the range '3-1' runs backwards"),
        ("a range of 2^40 columns", logprob + ["\(dir)/d.csv", "--context-columns", "0-1099511627776"], 2, "it names more than 1000000 columns"),
        ("a column beyond Int", logprob + ["\(dir)/d.csv", "--context-columns", "99999999999999999999"], 2, "'99999999999999999999' is not a column number"),
        ("column twice", logprob + ["\(dir)/d.csv", "--context-columns", "0,0-1"], 2, "column 0 is named twice"),
        ("both sources", logprob + ["\(dir)/y.csv", "--context-columns", "0", "--context", "\(dir)/c.csv"], 2, "give one of them"),
        ("sample without context", sample + ["3"], 1, "give --context with 2 comma-separated values"),
        ("sample, unconditional model", ["sample", "--model", plain, "-n", "3", "--context", "0.5,1"], 1, "--context 0.5,1: \(plain) is not a conditional model"),
        ("sample, one value of two", sample + ["3", "--context", "0.5"], 1, "--context 0.5 has 1 values, but \(conditional) takes a context of 2 values"),
        ("sample, not a number", sample + ["3", "--context", "0.5,abc"], 1, "'abc' is not a number and there is no file of that name"),
        ("sample, overflowing value", sample + ["3", "--context", "-0.5,1e39"], 1, "value 2 (1e39) is not a finite float32 number"),
        ("sample, context file rows", sample + ["3", "--context", "\(dir)/c.csv"], 1, "c.csv: has 10 rows, but -n asks for 3 samples"),
        ("sample, context file columns", sample + ["10", "--context", "\(dir)/c1.csv"], 1, "c1.csv: has 1 columns, but \(conditional) takes a context of 2 values"),
        ("fit, context file rows", fit + ["\(dir)/y.csv", "--context", "\(dir)/c7.csv"], 1, "c7.csv: has 7 rows, but \(dir)/y.csv has 10"),
        ("fit, validation without its context", fit + ["\(dir)/y.csv", "--context", "\(dir)/c.csv", "--validation", "\(dir)/y.csv"], 2, "needs --validation-context"),
        ("fit, validation context alone", fit + ["\(dir)/y.csv", "--validation-context", "\(dir)/c.csv"], 2, "--validation-context goes with --context and --validation"),
        ("fit, validation of the wrong width", fit + ["\(dir)/d.csv", "--context-columns", "0", "--validation", "\(dir)/y.csv"], 1, "y.csv: has 1 columns after the 1 context columns"),
        ("plot, conditional model", ["plot", "--model", conditional, "--out", "\(dir)/p.svg"], 1, "flows plot draws unconditional models only"),
    ]
    for (name, arguments, status, fragment) in cases {
        expectCleanFailure(try flows(arguments), status: status, fragment, name)
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors") && !FileManager.default.fileExists(atPath: "\(dir)/p.svg"))
}
