import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows docs-figures`: runs the DocC tutorials' code in full and redraws their pictures.
struct DocsFigures: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docs-figures",
        abstract: "Run the documentation's tutorials and redraw their pictures.",
        discussion: """
            Runs the code of the tutorials "Density Estimation", "Conditional Flows" and "Variational Inference" \
            (the same functions the tests run with few steps) and writes their SVG pictures, tutorial-*.svg, into \
            --out; prints the numbers the articles quote. For the documentation catalog: \
            swift run -c release flows docs-figures --out Sources/NormalizingFlows/NormalizingFlows.docc/Resources
            """,
        shouldDisplay: false)

    @Option(help: "Folder for the pictures.")
    var out: String

    @Option(help: "Optimizer steps of every fit (the articles' pictures use 3000).")
    var steps = 3000

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
    }

    func run() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("flows-docs-figures-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let written = try TutorialFigures.write(to: URL(fileURLWithPath: out, isDirectory: true), steps: steps, scratch: scratch)
        for line in written.summary { print(line) }
        print("wrote \(written.files.map(\.lastPathComponent).joined(separator: ", ")) in \(out)")
    }
}
