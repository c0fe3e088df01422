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
        abstract: "Normalizing flows in Swift: fit, sample, score, plot and benchmark.",
        subcommands: [Demo.self, Fit.self, LogProb.self, Sample.self, VI.self, Plot.self, Info.self, Bench.self]
    )
}

/// Runs the command line: user mistakes print `error: …` on stderr and exit with status 1,
/// malformed command lines exit with 2 after the usage, `--help` exits with 0. No stack traces.
@main
enum Main {
    static func main() {
        keepFreedMemoryMapped()
        do {
            var command = try Flows.parseAsRoot()
            try command.run()
        } catch let error as FileError {
            fail(error.description)
        } catch let error as FlowError {
            fail(error.description)
        } catch let error as TrainingError {
            fail(error.description)
        } catch let error as CommandError {
            fail(error.message)
        } catch {
            let code = Flows.exitCode(for: error)
            if code == .success {
                print(Flows.fullMessage(for: error))
                exit(0)
            }
            FileHandle.standardError.write(Data(("error: " + Flows.fullMessage(for: error) + "\n").utf8))
            exit(2)
        }
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

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(1)
    }
}

/// A user mistake found by a command (exit status 1).
struct CommandError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
