import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows plot`: an SVG picture of a model (and optionally data).
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a model: for 2-D a density heat map with samples (and data) on top; otherwise pairwise scatter plots of samples.")

    @Option(help: "The model file.")
    var model: String
    @Option(help: "Data to overlay (CSV or NPY).")
    var data: String?
    @Option(help: "The SVG file to write; never one of the inputs.")
    var out: String
    @Option(parsing: .unconditional, help: "Samples to draw (at most \(Plot.maximumSamples)).")
    var samples = 1000
    @Option(parsing: .unconditional, help: "Seed of the samples.")
    var seed: UInt64 = 0

    /// More points than this only blacken the picture and make the SVG unwieldy.
    static let maximumSamples = 100_000

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        guard samples <= Plot.maximumSamples else {
            throw ValidationError("--samples must be at most \(Plot.maximumSamples) (more points only blacken the picture and bloat the SVG), got \(samples)")
        }
        guard out.lowercased().hasSuffix(".svg") else { throw ValidationError("--out must name an .svg file, got '\(FileError.clip(out))'") }
    }

    func run() throws {
        try Output.check(out, inputs: [model, data])
        let flow = try Flow.load(from: model)
        let points = try data.map { try loadData($0, for: flow) }
        var generator = RandomGenerator(seed: seed)
        let dimension = flow.eventShape.reduce(1, *)
        let drawn = try withoutGradients { try flow.sample(samples, generator: &generator).reshaped(to: [samples, dimension]) }
        try checkFinite(drawn, what: "sample")
        let svg: String
        if dimension == 2 {
            svg = try DensityPlot(flow: flow, samples: drawn, data: points).svg()
        } else {
            svg = PairPlot(samples: drawn, data: points).svg()
        }
        try Output.write(svg, to: out)
    }
}
