import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows plot`: an SVG picture of a model, a test energy, or both side by side.
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a model and/or a test energy: for 2-D density maps on one colour scale with samples (and data) on top; otherwise pairwise scatter plots of samples.")

    @Option(help: "The model file.")
    var model: String?
    @Option(help: "A test energy to draw as its normalised density exp(−U), beside the model's when --model is given: \(Energy.allCases.map(\.rawValue).joined(separator: "|")).")
    var energy: String?
    @Option(help: "Data to overlay: \(dataFormats).")
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
        guard model != nil || energy != nil else { throw ValidationError("give --model FILE, --energy NAME or both") }
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        guard samples <= Plot.maximumSamples else {
            throw ValidationError("--samples must be at most \(Plot.maximumSamples) (more points only blacken the picture and bloat the SVG), got \(samples)")
        }
        try Plot.checkSVG(out, option: "--out")
        _ = try energy.map(Energy.named)
    }

    func run() throws {
        try Output.check(out, inputs: [model, data])
        let flow = try model.map { try Flow.load(from: $0) }
        if let flow, flow.contextSize > 0 {
            throw CommandError("\(model!) is a conditional model p(y | c) (a context of \(flow.contextSize) values): flows plot draws unconditional models only; "
                + "draw its samples at one context with flows sample --context")
        }
        let points = try data.map { path in try flow.map { try loadData(path, for: $0) } ?? readData(path) }
        let svg = try Plot.picture(flow: flow, energy: energy.map(Energy.named), data: points, samples: samples, seed: seed)
        try Output.write(svg, to: out)
    }

    /// Refuses a picture file name that does not end in .svg.
    static func checkSVG(_ path: String, option: String) throws {
        guard path.lowercased().hasSuffix(".svg") else { throw ValidationError("\(option) must name an .svg file, got '\(FileError.clip(path))'") }
    }

    /// The SVG of `flow` (its density with `samples` samples for 2-D, pairwise scatter plots
    /// otherwise) beside `energy`'s target density; either may be absent, not both.
    static func picture(flow: Flow?, energy: Energy?, data: Tensor?, samples: Int, seed: UInt64) throws -> String {
        var drawn: Tensor?
        if let flow {
            let dimension = flow.eventShape.reduce(1, *)
            var generator = RandomGenerator(seed: seed)
            let values = try withoutGradients { try flow.sample(samples, generator: &generator).reshaped(to: [samples, dimension]) }
            try checkFinite(values, what: "sample")
            guard dimension == 2 || energy == nil else {
                throw CommandError("--energy draws a 2-D target, but the model has \(dimension) dimensions")
            }
            guard dimension == 2 else { return PairPlot(samples: values, data: data).svg() }
            drawn = values
        }
        if let data, data.shape[1] != 2 { throw CommandError("--energy draws a 2-D target, but the data have \(data.shape[1]) columns") }
        // The energies' mass lies within [−4, 4]²; the window also holds the samples and data.
        let points = (drawn?.points2D ?? []) + (data?.points2D ?? [])
        var window = DensityPlot.window(points, including: energy == nil ? nil : (-4, 4))
        if let flow { window = DensityPlot.window(window, within: flow.bijector.codomain) }
        var plot = DensityPlot(panels: [], x: window.x, y: window.y)
        if let energy { plot.panels.append(.target(energy, cellArea: plot.cellArea, data: flow == nil ? data : nil)) }
        if let flow, let drawn { plot.panels.append(.flow(flow, samples: drawn, data: data)) }
        return try plot.svg()
    }
}
