import ArgumentParser

@main
struct Flows: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "Normalizing flows in Swift: fit, sample, score, plot and benchmark.",
        subcommands: [Demo.self, Bench.self]
    )
}
