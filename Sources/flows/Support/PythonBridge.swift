import Foundation
import NormalizingFlows

/// Runs `python -m flows_torch …`, the one place where model files are mapped to PyTorch
/// checkpoints and back (python/flows_torch/cli.py), for `flows export` and `flows import`.
///
/// The interpreter is `$FLOWS_PYTHON` when set, else the first `python3` on `PATH`. Python
/// writes into a private temporary folder; the caller then checks the result and writes it to
/// `--out` atomically with ``FileAccess/write(_:to:)``, as every other command writes.
enum PythonBridge {
    static let installHint = "install it with: pip install torch safetensors && pip install ./python (from the repository; add zuko or nflows to import their flows), or set FLOWS_PYTHON to an interpreter that has it"

    /// The interpreter to run, or an error saying how to get one.
    static func interpreter(for command: String) throws -> String {
        if let chosen = ProcessInfo.processInfo.environment["FLOWS_PYTHON"], !chosen.isEmpty {
            let path = chosen.contains("/") ? chosen : search(chosen)
            guard let path, FileManager.default.isExecutableFile(atPath: path) else {
                throw CommandError("flows \(command) needs Python with flows_torch: FLOWS_PYTHON=\(chosen) is not an executable file")
            }
            return path
        }
        guard let path = search("python3") else {
            throw CommandError("flows \(command) needs Python 3 with flows_torch, and no python3 is on PATH; \(installHint)")
        }
        return path
    }

    private static func search(_ name: String) -> String? {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `python -m flows_torch <arguments>` with `{out}` replaced by a path in a fresh
    /// temporary folder, and returns the bytes written there. A failure is one line: a missing
    /// module (flows_torch, torch, safetensors, zuko, nflows) says how to install it; any other
    /// error is flows_torch's own one-line message. `check` sees the written file first.
    static func run(_ command: String, _ arguments: [String], outputName: String,
                    check: (String) throws -> Void = { _ in }) throws -> Data {
        let python = try interpreter(for: command)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flows-\(command)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent(outputName).path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-m", "flows_torch"] + arguments.map { $0 == "{out}" ? output : $0 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw CommandError("flows \(command): \(python) cannot be run (\(error.localizedDescription)); \(installHint)")
        }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw CommandError(message(for: text, command: command, python: python, status: process.terminationStatus))
        }
        try check(output)
        return try FileAccess.read(output)
    }

    /// One line from Python's standard error.
    static func message(for errors: String, command: String, python: String, status: Int32) -> String {
        let lines = errors.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if let missing = lines.last(where: { $0.contains("No module named") }) {
            // "python3: No module named flows_torch" or "ModuleNotFoundError: No module named 'torch'"
            let name = missing.components(separatedBy: "No module named").last!
                .trimmingCharacters(in: CharacterSet(charactersIn: " '\""))
            return "flows \(command) needs the Python package flows_torch and its dependencies, and \(python) cannot import \(name); \(installHint)"
        }
        if let line = lines.last(where: { $0.hasPrefix("error: ") }) { return String(line.dropFirst("error: ".count)) }
        let last = lines.last ?? "no message"
        return "flows \(command): python -m flows_torch failed (exit status \(status)): \(last)"
    }
}
