import Foundation
import NormalizingFlows
import Testing
@testable import flows

// Issue 28: for `vi` the target density is drawn beside the fit, on one colour scale.

@Test func theTargetPanelIsExpOfMinusUNormalisedOnTheGrid() throws {
    let plot = DensityPlot(panels: [.target(.u1, cellArea: 8.0 * 8 / (90 * 90))], x: (-4, 4), y: (-4, 4))
    #expect(plot.cellArea == 8.0 * 8 / (90 * 90))
    let density = try plot.densities()[0]
    let grid = plot.grid.doubles
    // exp(−U) at a few cells, by hand, over its sum on the grid times the cell area.
    func unnormalised(_ k: Int) -> Double {
        let (z1, z2) = (grid[2 * k], grid[2 * k + 1])
        let radius = (z1 * z1 + z2 * z2).squareRoot()
        let ring = -0.5 * ((radius - 2) / 0.4) * ((radius - 2) / 0.4)
        let lobes = Foundation.log(Foundation.exp(-0.5 * ((z1 - 2) / 0.6) * ((z1 - 2) / 0.6)) + Foundation.exp(-0.5 * ((z1 + 2) / 0.6) * ((z1 + 2) / 0.6)))
        return Foundation.exp(ring + lobes)
    }
    let total = (0..<(90 * 90)).map(unnormalised).reduce(0, +) * plot.cellArea
    for k in [0, 45, 90 * 45 + 10, 90 * 45 + 45, 90 * 30 + 70, 90 * 90 - 1] {
        #expect(abs(density[k] - unnormalised(k) / total) <= 1e-9 * Swift.max(1, unnormalised(k) / total), "cell \(k)")
    }
    // Normalised on the grid: the cells integrate to 1; the top-left cell centre is (−4 + h/2, 4 − h/2).
    #expect(abs(density.reduce(0, +) * plot.cellArea - 1) < 1e-9)
    #expect(abs(grid[0] - (-4 + 4.0 / 90)) < 1e-12 && abs(grid[1] - (4 - 4.0 / 90)) < 1e-12)
}

@Test func viPlotDrawsTargetAndFlowOnOneColourScale() throws {
    let dir = folder()
    let run = try flows(["vi", "--energy", "u2", "--flow", "planar", "--layers", "4", "--steps", "20", "--out", "\(dir)/m.safetensors",
                         "--plot", "\(dir)/vi.svg"])
    #expect(run.status == 0 && run.output.contains("drew the target beside the flow in \(dir)/vi.svg"), "\(run.error)")
    let svg = try String(contentsOfFile: "\(dir)/vi.svg", encoding: .utf8)
    #expect(svg.contains(">target</text>") && svg.contains(">flow</text>") && svg.contains(">p(x)</text>"))
    // Two maps of 90×90 cells, one colour scale of 50 steps.
    #expect(svg.components(separatedBy: "<rect x=").count - 1 >= 2 * 90 * 90 + 50)
    #expect(svg.components(separatedBy: ">p(x)<").count == 2, "one colour scale")
    // The energy alone, and beside a saved model, through `flows plot`.
    let energy = try flows(["plot", "--energy", "u2", "--out", "\(dir)/u2.svg"])
    #expect(energy.status == 0, "\(energy.error)")
    let alone = try String(contentsOfFile: "\(dir)/u2.svg", encoding: .utf8)
    #expect(alone.contains(">target</text>") && !alone.contains(">flow</text>"))
    let both = try flows(["plot", "--model", "\(dir)/m.safetensors", "--energy", "u2", "--out", "\(dir)/both.svg"])
    #expect(both.status == 0, "\(both.error)")
    let side = try String(contentsOfFile: "\(dir)/both.svg", encoding: .utf8)
    #expect(side.contains(">target</text>") && side.contains(">flow</text>"))
}

@Test func viPlotIsNeverTheModelFile() throws {
    let dir = folder()
    for (plot, fragment) in [("\(dir)/m.svg", "is also --out"), ("\(dir)/./m.svg", "is also --out"), ("\(dir)/p.png", "--plot must name an .svg file")] {
        let run = try flows(["vi", "--energy", "u1", "--flow", "planar", "--steps", "2", "--out", "\(dir)/m.svg", "--plot", plot])
        #expect(run.status == 2 && run.error.contains(fragment) && run.error.split(separator: "\n").count == 1, "\(plot): \(run.error)")
    }
    #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.svg"))
    // A plot of neither a model nor an energy, or an energy beside a model of another dimension.
    let neither = try flows(["plot", "--out", "\(dir)/x.svg"])
    #expect(neither.status == 2 && neither.error.contains("--model FILE, --energy NAME or both"), "\(neither.error)")
}
