import ArgumentParser
import Foundation
import NormalizingFlows

#if canImport(Glibc)
/// glibc's `mallopt` (declared in malloc.h, which the Glibc module does not export).
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
private let M_TRIM_THRESHOLD: Int32 = -1, M_TOP_PAD: Int32 = -2, M_MMAP_THRESHOLD: Int32 = -3
#endif

struct Flows: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Normalizing flows in Swift: fit, sample, score, plot, move to and from PyTorch, and benchmark.",
        subcommands: [Demo.self, Fit.self, LogProb.self, Sample.self, VI.self, Plot.self, Info.self, Export.self, Import.self, Bench.self, DocsFigures.self]
    )
}

/// Runs the command line: user mistakes print one line `error: …` on stderr and exit with
/// status 1; malformed command lines print one line and exit with 2; `--help` exits with 0.
/// No stack traces, no usage dumps, no Foundation error domains.
@main
enum Main {
    static func main() {
        keepFreedMemoryMapped()
        FileAccess.removeTemporaryFilesOnSignals()
        signal(SIGPIPE, SIG_IGN)   // a closed pipe is a write error (EPIPE) with a message
        var command: ParsableCommand
        do {
            command = try Flows.parseAsRoot()
        } catch {
            if Flows.exitCode(for: error) == .success {
                print(Flows.fullMessage(for: error))
                exit(0)
            }
            usageError(Flows.message(for: error))
        }
        do {
            try command.run()
        } catch let error as ValidationError {
            usageError(error.message)
        } catch {
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                // A help request or a command-line problem found while running (e.g. `flows` alone).
                if Flows.exitCode(for: error) == .success {
                    print(Flows.fullMessage(for: error))
                    exit(0)
                }
                usageError(Flows.message(for: error))
            }
            fail(describe(error))
        }
        exit(0)
    }

    /// The one-line text of an error thrown while running a command.
    static func describe(_ error: Error) -> String {
        switch error {
        case let error as FileError: return error.description
        case let error as FlowError: return error.description
        case let error as TrainingError: return error.description
        case let error as CommandError: return error.message
        default:
            // Foundation errors: the POSIX reason and the path, not "NSCocoaErrorDomain error 512".
            let ns = error as NSError
            let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
            var reason = ""
            if let posix = ns.userInfo[NSUnderlyingErrorKey] as? POSIXError {
                reason = String(cString: strerror(posix.code.rawValue))
            } else if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
                reason = String(cString: strerror(Int32(underlying.code)))
            } else if let posix = error as? POSIXError {
                reason = String(cString: strerror(posix.code.rawValue))
            }
            if reason.isEmpty { reason = "failed (\(type(of: error)))" }
            return path.map { "\($0): \(reason.lowercased())" } ?? reason
        }
    }

    /// A malformed command line: one line naming the problem and where help is, exit status 2.
    static func usageError(_ message: String) -> Never {
        var text = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
        text = text.split(separator: "\n").first.map(String.init) ?? text
        let arguments = CommandLine.arguments.dropFirst()
        let subcommand = Flows.configuration.subcommands.first { type in
            arguments.first == type._commandName
        }
        let help = subcommand.map { "flows \($0._commandName) --help" } ?? "flows --help"
        printError("error: \(text) (see '\(help)')")
        exit(2)
    }

    /// Training frees and reallocates the same sizes every step. Tensor buffers of 64 KiB and
    /// more are reused through ``TensorMemory``'s cache, but smaller tensors and the kernels'
    /// working arrays come from malloc, and glibc's defaults hand blocks of a few hundred KB
    /// back to the kernel (unmapping or trimming the heap) and then take page faults to get them
    /// again: without these settings maf-throughput takes 5× the page faults (11K → 61K) and its
    /// log_prob runs ~10% slower.
    static func keepFreedMemoryMapped() {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 64 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
        _ = mallopt(M_TOP_PAD, 16 << 20)
        #endif
    }

    /// A user mistake or a failure: one line, exit status 1.
    static func fail(_ message: String) -> Never {
        printError("error: \(message)")
        exit(1)
    }
}

/// A user mistake found by a command (exit status 1).
struct CommandError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
