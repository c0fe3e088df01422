import ArgumentParser
import Foundation
import NormalizingFlows

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
