import Foundation
import NormalizingFlows

/// Writes command output: to a file atomically, or to standard output.
enum Output {
    static func write(_ text: String, to path: String?) throws {
        if let path {
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw FileError(path: path, "cannot write: \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// A JSON object from ordered fields (numbers, strings, booleans, nil as null).
    static func json(_ fields: [(String, Any?)]) -> String {
        "{" + fields.map { key, value in
            let rendered: String
            switch value {
            case nil: rendered = "null"
            case let s as String: rendered = "\"\(s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            case let d as Double: rendered = d.isFinite ? String(format: "%.6g", d) : "null"
            case let b as Bool: rendered = b ? "true" : "false"
            default: rendered = "\(value!)"
            }
            return "\"\(key)\": \(rendered)"
        }.joined(separator: ", ") + "}"
    }

    /// Whether standard output is a terminal (then progress redraws one line).
    static var isTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
}

/// Loads a data file and checks that its rows fit the model.
func loadData(_ path: String, for flow: Flow) throws -> Tensor {
    let data = try DataFile.read(path, dtype: flow.dtype)
    let expected = flow.eventShape.reduce(1, *)
    guard flow.eventShape.count == 1, data.shape[1] == expected else {
        throw FileError(path: path, "has \(data.shape[1]) columns, but the model expects \(expected)")
    }
    return data
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
            fflush(nil)
        } else {
            print(text)
        }
    }
}
