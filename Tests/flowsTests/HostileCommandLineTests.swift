import Foundation
import NormalizingFlows
import Testing

// Issue 28: hostile input through every subcommand never crashes, never hangs, never destroys
// an input and never ends in exit 0 with non-finite output.

/// A folder with a small fitted-shape model (m.safetensors) and 2-D data (d.csv).
private func workspace() throws -> String {
    let dir = folder()
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])))
    try flow.save(to: "\(dir)/m.safetensors")
    try DataFile.writeCSV(moons(200, seed: 1), to: "\(dir)/d.csv")
    return dir
}

private func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

func expectCleanFailure(_ run: Run, status: Int32 = 1, _ fragment: String, _ name: String,
                                sourceLocation: SourceLocation = #_sourceLocation) {
    // `fit` announces a family made for sampling (planar, ...) once its inputs have passed their
    // checks; a failure during training then follows that note, and the failure is still one line.
    let error = run.error.split(separator: "\n", omittingEmptySubsequences: false)
        .drop { $0.hasPrefix("note: ") }.joined(separator: "\n")
    #expect(run.status == status && !run.signaled, "\(name): status \(run.status) \(run.error)", sourceLocation: sourceLocation)
    #expect(error.hasPrefix("error: ") && error.contains(fragment), "\(name): \(run.error)", sourceLocation: sourceLocation)
    #expect(error.split(separator: "\n").count == 1, "\(name): more than one line: \(run.error)", sourceLocation: sourceLocation)
    #expect(!run.error.contains("NSCocoaErrorDomain") && !run.error.contains("Fatal error"), "\(name)", sourceLocation: sourceLocation)
}

@Test func sizesFromTheCommandLineAreCheckedBeforeAllocating() throws {
    let dir = try workspace()
    let cases: [(String, [String], String)] = [
        ("sample 1e10", ["sample", "--model", "\(dir)/m.safetensors", "-n", "10000000000"], "-n 10000000000"),
        ("fit hidden 200000²", ["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--hidden", "200000,200000", "--out", "\(dir)/x.safetensors"], "parameters"),
        ("fit 2^62 layers", ["fit", "--data", "\(dir)/d.csv", "--flow", "planar", "--layers", "4611686018427387904", "--out", "\(dir)/x.safetensors"], "parameters"),
        ("vi 1e11 samples", ["vi", "--energy", "u1", "--flow", "planar", "--samples", "100000000000", "--out", "\(dir)/x.safetensors"], "--samples"),
        ("vi hidden 1e9", ["vi", "--energy", "u1", "--flow", "maf", "--hidden", "1000000000", "--out", "\(dir)/x.safetensors"], "parameters"),
        ("plot 1e7 samples", ["plot", "--model", "\(dir)/m.safetensors", "--samples", "10000000", "--out", "\(dir)/p.svg"], "at most 100000"),
        ("gemm 1e5³", ["bench", "--task", "gemm", "--shapes", "100000x100000x100000"], "--shapes"),
        ("gemm beyond Int", ["bench", "--task", "gemm", "--shapes", "4611686018427387904x4x4"], "--shapes"),
        ("bench 1e13 repetitions", ["bench", "--task", "gemm", "--steps", "10000000000000"], "--steps 10000000000000: keeping"),
        ("gemm no shape", ["bench", "--task", "gemm", "--shapes", ""], "'' is not MxKxN"),
        ("nsf 1e6 columns", ["fit", "--data", "\(dir)/wide.csv", "--flow", "nsf", "--validation-fraction", "0", "--out", "\(dir)/x.safetensors"], "parameters"),
    ]
    // Two rows of 10⁶ columns: NSF's spline outputs (23 per column and layer, 118 GB with Adam's
    // state) are refused; at 200000 columns the kernel killed the fit at 23 GB before the bound counted them.
    let row = Array(repeating: "0.5", count: 1_000_000).joined(separator: ",")
    try "\(row)\n\(row)\n".write(toFile: "\(dir)/wide.csv", atomically: true, encoding: .utf8)
    for (name, arguments, fragment) in cases {
        expectCleanFailure(try flows(arguments), status: 2, fragment, name)
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))
}

@Test func hostileModelFilesAreRefusedByEveryCommand() throws {
    let dir = try workspace()
    let good = contents("\(dir)/m.safetensors")!
    let length = Int(good.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    var header = String(decoding: good[8..<(8 + length)], as: UTF8.self)
    let body = good[(8 + length)...]
    func file(_ name: String, _ text: String, body: Data) throws -> String {
        var json = Data(text.utf8)
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        try (data + json + body).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
        return "\(dir)/\(name)"
    }
    header = header.trimmingCharacters(in: .whitespaces)
    // The order buffer (two float64) is the last tensor: overwrite it with 1e300 and 3e38.
    var huge = Data(body)
    [1e300, 0.0].withUnsafeBytes { huge.replaceSubrange((huge.count - 16)..<huge.count, with: $0) }
    var big = Data(body)
    [3e38, 0.0].withUnsafeBytes { big.replaceSubrange((big.count - 16)..<big.count, with: $0) }
    let models = [
        ("order 1e300", try file("order1.safetensors", header, body: huge), "not an index"),
        ("order 3e38", try file("order2.safetensors", header, body: big), "not an index"),
        ("hidden 1e9", try file("hidden.safetensors", header.replacingOccurrences(of: #"\"hiddenSizes\":[4]"#, with: #"\"hiddenSizes\":[1000000000]"#), body: Data(body)), "the plan needs at least"),
        ("2^62 layers", try file("layers.safetensors", header.replacingOccurrences(of: #"\"layers\":1"#, with: #"\"layers\":4611686018427387904"#), body: Data(body)), "the plan needs at least"),
        ("shape overflow", try file("shape.safetensors", header.replacingOccurrences(of: #""shape":[2]"#, with: #""shape":[1099511627776,1099511627776]"#), body: Data(body)), "64-bit"),
    ]
    for (name, model, fragment) in models {
        for arguments in [["logprob", "--model", model, "--data", "\(dir)/d.csv"], ["sample", "--model", model, "-n", "3"],
                          ["plot", "--model", model, "--out", "\(dir)/p.svg"], ["info", "--model", model]] {
            expectCleanFailure(try flows(arguments), fragment, "\(name) \(arguments[0])")
        }
    }
}

@Test func outputNeverReplacesAnInputOrADeviceAndKeepsTheMode() throws {
    let dir = try workspace()
    let model = contents("\(dir)/m.safetensors"), data = contents("\(dir)/d.csv")
    let cases: [(String, [String])] = [
        ("fit over its data", ["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--steps", "2", "--out", "\(dir)/d.csv"]),
        ("fit over its validation data", ["fit", "--data", "\(dir)/d.csv", "--validation", "\(dir)/./d.csv", "--flow", "maf", "--steps", "2", "--out", "\(dir)/./d.csv"]),
        ("sample over its model", ["sample", "--model", "\(dir)/m.safetensors", "-n", "3", "--out", "\(dir)/../\((dir as NSString).lastPathComponent)/m.safetensors"]),
        ("logprob over its data", ["logprob", "--model", "\(dir)/m.safetensors", "--data", "\(dir)/d.csv", "--out", "\(dir)/d.csv"]),
        ("plot over its model", ["plot", "--model", "\(dir)/m.safetensors", "--out", "\(dir)/m.safetensors.svg"]),
    ]
    try FileManager.default.createSymbolicLink(atPath: "\(dir)/m.safetensors.svg", withDestinationPath: "\(dir)/m.safetensors")
    for (name, arguments) in cases {
        expectCleanFailure(try flows(arguments), "is the input file", name)
    }
    #expect(contents("\(dir)/m.safetensors") == model && contents("\(dir)/d.csv") == data)
    // --out is checked before training: a missing folder fails at once.
    let start = Date()
    expectCleanFailure(try flows(["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--steps", "100000", "--out", "\(dir)/none/m.safetensors"]),
                       "does not exist", "missing folder")
    #expect(Date().timeIntervalSince(start) < 10)
    // A FIFO is written directly (a regular file would replace it).
    let fifo = "\(dir)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    let unread = try flows(["sample", "--model", "\(dir)/m.safetensors", "-n", "3", "--out", fifo])
    expectCleanFailure(unread, "no process is reading this FIFO", "FIFO without reader")
    let reader = open(fifo, O_RDONLY | O_NONBLOCK)   // a reader (3 rows fit in the pipe's buffer)
    defer { close(reader) }
    let toFIFO = try flows(["sample", "--model", "\(dir)/m.safetensors", "-n", "3", "--out", fifo])
    #expect(toFIFO.status == 0, "\(toFIFO.error)")
    var buffer = [UInt8](repeating: 0, count: 4096)
    #expect(read(reader, &buffer, buffer.count) > 0)
    var info = stat()
    #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
    // Overwriting keeps the mode.
    let out = "\(dir)/s.csv"
    _ = try flows(["sample", "--model", "\(dir)/m.safetensors", "-n", "3", "--out", out])
    #expect(chmod(out, 0o604) == 0)
    _ = try flows(["sample", "--model", "\(dir)/m.safetensors", "-n", "4", "--out", out])
    #expect(stat(out, &info) == 0 && info.st_mode & 0o777 == 0o604)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }.isEmpty)
}

@Test func aFailingStandardOutputIsAnErrorWithStatusOne() throws {
    guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
    let dir = try workspace()
    for arguments in [["sample", "--model", "\(dir)/m.safetensors", "-n", "5"], ["info", "--model", "\(dir)/m.safetensors"],
                      ["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--layers", "1", "--steps", "3", "--out", "\(dir)/f.safetensors"]] {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        let err = Pipe()
        process.standardError = err
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1 && process.terminationReason == .exit, "\(arguments[0]): \(message)")
        #expect(message == "error: standard output: cannot write: No space left on device\n", "\(arguments[0]): \(message)")
    }
}

@Test func aSignalDuringAWriteLeavesNoTemporaryFile() throws {
    let dir = try workspace()
    for signal in [SIGTERM, SIGINT] {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["sample", "--model", "\(dir)/m.safetensors", "-n", "1500000", "--out", "\(dir)/big.csv"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the temporary file to appear, then interrupt the write.
        var sawTemporary = false
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline {
            if (try? FileManager.default.contentsOfDirectory(atPath: dir))?.contains(where: { $0.hasPrefix(".big.csv.tmp-") }) == true {
                sawTemporary = true
                kill(process.processIdentifier, signal)
                break
            }
            usleep(200)
        }
        process.waitUntilExit()
        #expect(sawTemporary, "signal \(signal): the write finished before the test saw its temporary file")
        if sawTemporary && process.terminationReason == .uncaughtSignal {
            #expect(process.terminationStatus == signal)
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "signal \(signal): \(left)")
        try? FileManager.default.removeItem(atPath: "\(dir)/big.csv")
    }
}

@Test func nonFiniteOutputIsAnError() throws {
    let dir = try workspace()
    // Finite but absurd weights: every weight and bias 3e37.
    let flow = try Flow.load(from: "\(dir)/m.safetensors")
    var state = flow.state()
    for (name, value) in state where name.hasPrefix("bijector.") && !name.hasSuffix("order") { state[name] = Tensor.full(value.shape, 3e37, dtype: value.dtype) }
    try flow.load(state: state)
    try flow.save(to: "\(dir)/absurd.safetensors")
    let model = "\(dir)/absurd.safetensors"
    expectCleanFailure(try flows(["sample", "--model", model, "-n", "5"]), "not", "sample")
    expectCleanFailure(try flows(["logprob", "--model", model, "--data", "\(dir)/d.csv"]), "-inf", "logprob")
    expectCleanFailure(try flows(["plot", "--model", model, "--out", "\(dir)/p.svg"]), "row 1", "plot")
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/p.svg"))
    // --allow-infinite writes the documented -inf instead.
    let allowed = try flows(["logprob", "--model", model, "--data", "\(dir)/d.csv", "--allow-infinite"])
    #expect(allowed.status == 0 && allowed.output.split(separator: "\n").allSatisfy { $0 == "-inf" })
}

@Test func badDataIsReportedWithFileLineAndColumn() throws {
    let dir = try workspace()
    try Data("1,2\n3\u{0}abc,4\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/nul.csv"))
    try "1,2\n3,1e39\n".write(toFile: "\(dir)/big.csv", atomically: true, encoding: .utf8)
    try ("1,2\n3," + String(repeating: "7", count: 5_000_000) + "x\n").write(toFile: "\(dir)/wide.csv", atomically: true, encoding: .utf8)
    let model = "\(dir)/m.safetensors"
    expectCleanFailure(try flows(["logprob", "--model", model, "--data", "\(dir)/nul.csv"]), "nul.csv:2:1: '3\\x00abc' is not a number", "NUL")
    expectCleanFailure(try flows(["fit", "--data", "\(dir)/big.csv", "--flow", "maf", "--out", "\(dir)/x.safetensors"]), "big.csv:2:3: 1e39 is outside the float32 range", "1e39")
    let wide = try flows(["logprob", "--model", model, "--data", "\(dir)/wide.csv"])
    expectCleanFailure(wide, "wide.csv:2:3", "5 MB field")
    #expect(wide.error.count < 300, "\(wide.error.count) characters")
}

@Test func commandLineMistakesNameTheOptionAndValue() throws {
    let dir = try workspace()
    let cases: [([String], String)] = [
        (["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--steps", "-5", "--out", "x"], "--steps must be at least 1, got -5"),
        (["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--lr", "-1", "--out", "x"], "--lr must be a positive number, got -1.0"),
        (["sample", "--model", "m", "-n", "-3"], "-n must be non-negative, got -3"),
        (["vi", "--energy", "u1", "--flow", "planar", "--samples", "-1", "--out", "x"], "--samples must be at least 1, got -1"),
        (["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--bins", "4", "--out", "x"], "--bins does not apply to --flow maf"),
        (["fit", "--data", "\(dir)/d.csv", "--flow", "radial", "--hidden", "8", "--out", "x"], "--hidden does not apply to --flow radial"),
        (["vi", "--energy", "u1", "--flow", "planar", "--bins", "4", "--out", "x"], "--bins does not apply"),
        (["plot", "--model", "m", "--out", "p.png"], "--out must name an .svg file"),
    ]
    for (arguments, fragment) in cases {
        expectCleanFailure(try flows(arguments), status: 2, fragment, arguments.joined(separator: " "))
    }
}

@Test func newcomerFrictions() throws {
    let dir = try workspace()
    // fit says which weights the file holds, and --keep last keeps the last step's.
    let best = try flows(["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "30", "--out", "\(dir)/b.safetensors"])
    #expect(best.status == 0 && best.output.split(separator: "\n").last!.contains("best validation step"), "\(best.output)")
    let last = try flows(["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--layers", "1", "--hidden", "8", "--steps", "30", "--keep", "last",
                          "--out", "\(dir)/l.safetensors", "--json"])
    #expect(last.status == 0 && last.output.split(separator: "\n").last!.contains("\"saved_weights\": \"last\", \"saved_step\": 30"), "\(last.output)")
    // Help shows every default and every flow.
    for command in ["fit", "vi"] {
        // Words as a reader sees them: the help's line wrapping may fall between any two.
        let help = try flows([command, "--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for name in ["maf", "iaf", "nsf", "nsf-coupling", "lrs", "lrs-coupling", "realnvp", "planar", "radial", "sylvester", "naf", "unaf", "sospf", "bpf", "ncsf"] {
            #expect(help.contains(name), "\(command) --help lacks \(name)")
        }
        for text in ["16 for", "32 for", "default: 64,64", "default: 8", "Default: 0.001; 0.01 for planar, radial, sylvester"] {
            #expect(help.contains(text), "\(command) --help lacks '\(text)'")
        }
    }
    // info --json: the plan is an object, not a string.
    let info = try flows(["info", "--model", "\(dir)/m.safetensors", "--json"])
    let object = try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any]
    #expect((object?["plan"] as? [String: Any])?["type"] as? String == "MAF", "\(info.output)")
    // bench without its data says where the data is expected.
    let bench = try flows(["bench", "--task", "maf-moons", "--steps", "1", "--data-dir", "\(dir)/nowhere"])
    expectCleanFailure(bench, "--data-dir", "bench")
}

@Test func aValidationSplitWithoutRowsIsRefusedBeforeTraining() throws {
    let dir = try workspace()
    try "1,2\n3,4\n5,6\n".write(toFile: "\(dir)/three.csv", atomically: true, encoding: .utf8)
    let base = ["fit", "--data", "\(dir)/three.csv", "--flow", "maf", "--out", "\(dir)/x.safetensors"]
    // 10% of 3 rows is 0 rows; 90% is all 3. Refused before any progress line is printed.
    for (extra, fragment) in [([String](), "holds out 0, leaving no validation rows"),
                              (["--validation-fraction", "0.9"], "holds out 3, leaving no training rows")] {
        let run = try flows(base + extra)
        expectCleanFailure(run, "--validation-fraction", extra.joined(separator: " "))
        #expect(run.error.contains(fragment) && run.error.contains("three.csv") && run.output.isEmpty, "\(run.error) \(run.output)")
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.safetensors"))
    // Without validation the same rows train.
    #expect(try flows(base + ["--validation-fraction", "0", "--steps", "2"]).status == 0)
}

@Test func badListValuesNameTheOptionAndTheValue() throws {
    let dir = try workspace()
    let fit = ["fit", "--data", "\(dir)/d.csv", "--flow", "maf", "--out", "\(dir)/x.safetensors"]
    let cases: [([String], String)] = [
        (fit + ["--hidden", "-4"], "--hidden -4: '-4' is not a positive whole number"),
        (fit + ["--hidden", "4,-2"], "--hidden 4,-2: '-2' is not a positive whole number"),
        (fit + ["--hidden", "4,,8"], "--hidden 4,,8: '' is not a positive whole number"),
        (["vi", "--energy", "u1", "--flow", "maf", "--hidden", "0", "--out", "\(dir)/x.safetensors"], "--hidden 0: '0'"),
        (["bench", "--task", "gemm", "--shapes", "-1x2x3"], "--shapes -1x2x3: '-1x2x3' is not MxKxN"),
        (["bench", "--task", "gemm", "--shapes", "8x8x8,1x-2x3"], "'1x-2x3' is not MxKxN"),
    ]
    for (arguments, fragment) in cases {
        expectCleanFailure(try flows(arguments), status: 2, fragment, arguments.suffix(2).joined(separator: " "))
    }
}

@Test func dataThatOverflowFloat32InTheFlowAreNamedAsSuch() throws {
    let dir = try workspace()
    // Finite in float32 (below 3.4e38), but the base density's square is not.
    let rows = (0..<40).map { i in "\(Double(i % 7 + 1) * 4e37),\(Double(i) / 40)" }.joined(separator: "\n")
    try rows.write(toFile: "\(dir)/huge.csv", atomically: true, encoding: .utf8)
    for flow in ["maf", "planar", "nsf"] {
        let run = try flows(["fit", "--data", "\(dir)/huge.csv", "--flow", flow, "--steps", "5", "--out", "\(dir)/x.safetensors"])
        expectCleanFailure(run, "huge.csv: the data overflow float32", flow)
        #expect(!run.error.contains("the loss became"), "\(flow): \(run.error)")
    }
    // As a --validation file it is named too (the training data are fine).
    let held = try flows(["fit", "--data", "\(dir)/d.csv", "--validation", "\(dir)/huge.csv", "--flow", "maf", "--steps", "5",
                          "--out", "\(dir)/x.safetensors"])
    expectCleanFailure(held, "huge.csv: the data overflow float32", "validation")
    // Steps count from 1 in divergence messages, as in the progress lines.
    let diverged = try flows(["vi", "--energy", "u1", "--flow", "planar", "--layers", "2", "--lr", "1e30", "--steps", "5",
                              "--out", "\(dir)/x.safetensors"])
    expectCleanFailure(diverged, "the loss became", "vi divergence")
    #expect(!diverged.error.contains("at step 0"), "\(diverged.error)")
    // A fit that diverges names the family, the step and the options to change, and writes no model.
    for flow in ["maf", "sospf"] {
        let model = "\(dir)/diverged-\(flow).safetensors"
        let run = try flows(["fit", "--data", "\(dir)/d.csv", "--flow", flow, "--layers", "2", "--hidden", "8", "--lr", "1e30",
                             "--steps", "5", "--validation-fraction", "0", "--out", model])
        expectCleanFailure(run, "--flow \(flow) diverged (no model written): the loss became", "fit divergence")
        #expect(run.error.contains("at step 2") && run.error.contains("--lr") && !run.error.contains("-nan"), "\(run.error)")
        #expect(!FileManager.default.fileExists(atPath: model), "\(flow): a model was written")
    }
}

@Test func noticedReaderBehaviours() throws {
    let dir = try workspace()
    let model = "\(dir)/m.safetensors"
    // Hexadecimal floats, which strtod would read, are refused at their line and column.
    try "1,2\n3,0x1p3\n".write(toFile: "\(dir)/hex.csv", atomically: true, encoding: .utf8)
    expectCleanFailure(try flows(["logprob", "--model", model, "--data", "\(dir)/hex.csv"]),
                       "hex.csv:2:3: '0x1p3' is a hexadecimal number", "hex")
    // A FIFO that no process writes to is an error at once, not an empty file or a wait.
    #expect(mkfifo("\(dir)/fifo", 0o600) == 0)
    expectCleanFailure(try flows(["logprob", "--model", model, "--data", "\(dir)/fifo"]), "FIFO) that gave no data", "FIFO")
    // A 1-D .npy of N values is N rows of one column (documented in --help).
    var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { npy.append(contentsOf: $0) }
    npy.append(contentsOf: Array(header.utf8))
    [1.0, 2.0, 3.0].withUnsafeBytes { npy.append(contentsOf: $0) }
    try npy.write(to: URL(fileURLWithPath: "\(dir)/one.npy"))
    let oneColumn = try DataFile.read("\(dir)/one.npy")
    #expect(oneColumn.shape == [3, 1] && oneColumn.doubles == [1, 2, 3])
    let help = try flows(["fit", "--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    #expect(help.contains("1-D array of N values is N rows of one column"), "\(help)")
}
