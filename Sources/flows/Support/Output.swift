import Foundation
import NormalizingFlows

/// Every line the commands print goes through here (this shadows `Swift.print` in this module):
/// straight to file descriptor 1, so a failing standard output (`> /dev/full`, a closed pipe) is
/// an error with exit status 1 at once, not lost output with exit status 0.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    let text = items.map { "\($0)" }.joined(separator: separator) + terminator
    do {
        try FileAccess.writeStandardOutput(Data(text.utf8))
    } catch {
        Main.fail("\(error)")
    }
}

/// Writes command output: to a file (see ``FileAccess/write(_:to:)``) or to standard output.
enum Output {
    static func write(_ text: String, to path: String?) throws {
        if let path {
            try FileAccess.write(Data(text.utf8), to: path)
        } else {
            try FileAccess.writeStandardOutput(Data(text.utf8))
        }
    }

    /// Checks `--out` before any work: it must be writable and must not be one of the inputs.
    static func check(_ out: String?, option: String = "--out", inputs: [String?]) throws {
        guard let out else { return }
        for case let input? in inputs where FileAccess.sameFile(out, input) {
            throw CommandError("\(option) \(out) is the input file \(input); writing it would destroy the input, so choose another name")
        }
        try FileAccess.checkWritable(out)
    }

    /// A JSON object from ordered fields (numbers, strings, booleans, raw JSON, nil as null).
    static func json(_ fields: [(String, Any?)]) -> String {
        "{" + fields.map { key, value in
            let rendered: String
            switch value {
            case nil: rendered = "null"
            case let raw as RawJSON: rendered = raw.text
            case let s as String: rendered = "\"\(s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            case let d as Double: rendered = d.isFinite ? String(format: "%.6g", d) : "null"
            case let b as Bool: rendered = b ? "true" : "false"
            default: rendered = "\(value!)"
            }
            return "\"\(key)\": \(rendered)"
        }.joined(separator: ", ") + "}"
    }

    /// Text that is already JSON (embedded as is by ``json(_:)``).
    struct RawJSON { var text: String }

    /// Whether standard output is a terminal (then progress redraws one line).
    static var isTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
}

/// Writes one line to standard error (messages that are not the command's output).
func printError(_ text: String, terminator: String = "\n") {
    let data = Data((text + terminator).utf8)
    data.withUnsafeBytes { _ = Glibc.write(STDERR_FILENO, $0.baseAddress!, $0.count) }
}

/// What `--data` accepts, for help texts.
let dataFormats = "CSV (comma- or whitespace-separated decimal numbers, optional header) or .npy (float32 or float64; a 1-D array of N values is N rows of one column)"

/// Reads a data file, showing progress on standard error for a large one.
func readData(_ path: String, dtype: DType = .float32) throws -> Tensor {
    let terminal = isatty(STDERR_FILENO) != 0
    var shown = -1
    let name = (path as NSString).lastPathComponent
    let data = try DataFile.read(path, dtype: dtype) { done, total in
        let percent = Int(Double(done) / Double(Swift.max(total, 1)) * 100)
        // On a terminal one redrawn line; otherwise a line every 10%.
        guard terminal ? percent != shown : percent / 10 != shown / 10 else { return }
        shown = percent
        let line = "reading \(name): \(percent)% of \(String(format: "%.0f", Double(total) / 1e6)) MB"
        printError(terminal ? "\r\u{1B}[2K" + line : line, terminator: terminal && done < total ? "" : "\n")
    }
    return data
}

/// Loads a data file and checks that its rows fit the model.
func loadData(_ path: String, for flow: Flow) throws -> Tensor {
    try checkColumns(readData(path, dtype: flow.dtype), of: path, for: flow)
}

/// `rows` of `path` when they have the model's dimension; `after` says what was taken from
/// them first (" after the 2 context columns of --context-columns 0,1").
func checkColumns(_ rows: Tensor, of path: String, for flow: Flow, after: String = "") throws -> Tensor {
    let expected = flow.eventShape.reduce(1, *)
    guard flow.eventShape.count == 1, rows.shape[1] == expected else {
        throw FileError(path: path, "has \(rows.shape[1]) columns\(after), but the model expects \(expected)")
    }
    return rows
}

/// Non-finite output is an error: names the first bad row.
func checkFinite(_ values: Tensor, what: String, firstRow: Int = 0) throws {
    let doubles = values.doubles
    guard let bad = doubles.firstIndex(where: { !$0.isFinite }) else { return }
    let width = values.rank <= 1 ? 1 : values.shape[values.rank - 1]
    throw CommandError("\(what) row \(firstRow + bad / width + 1) is not finite (\(doubles[bad].magnitude)): the model's weights overflow (the file holds absurd values or the training diverged); refit the model")
}

/// Reports training progress: a redrawn bar on a terminal, plain lines otherwise, JSON lines with --json.
struct ProgressReporter {
    var json: Bool
    var label: String

    func report(_ p: TrainingProgress) {
        if json {
            print(Output.json([("event", "progress"), ("step", p.step), ("steps", p.totalSteps), ("loss", p.loss),
                               ("validation_nll", p.validationNLL), ("steps_per_s", p.stepsPerSecond),
                               ("seconds_left", p.secondsLeft), ("learning_rate", p.learningRate)]))
            return
        }
        let validation = p.validationNLL.map { String(format: "  validation NLL %.4f", $0) } ?? ""
        let text = String(format: "%@ step %d/%d  loss %.4f%@  %.0f steps/s  %.0f s left", label, p.step, p.totalSteps, p.loss,
                          validation, p.stepsPerSecond, p.secondsLeft)
        if Output.isTerminal {
            let width = 24, filled = Int(Double(width) * Double(p.step) / Double(Swift.max(p.totalSteps, 1)))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            print("\r\u{1B}[2K[\(bar)] \(text)", terminator: p.step == p.totalSteps ? "\n" : "")
        } else {
            print(text)
        }
    }
}
