import Foundation
import NormalizingFlows

/// Colours along a perceptually ordered dark-blue → green → yellow ramp (viridis-like), t in [0, 1].
func rampColor(_ t: Double) -> String {
    let stops: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    let x = Swift.min(Swift.max(t, 0), 1) * Double(stops.count - 1)
    let i = Swift.min(Int(x), stops.count - 2), f = x - Double(i)
    let (a, b) = (stops[i], stops[i + 1])
    return String(format: "#%02x%02x%02x", Int(a.0 + (b.0 - a.0) * f), Int(a.1 + (b.1 - a.1) * f), Int(a.2 + (b.2 - a.2) * f))
}

/// The range holding the central 99% of `values`, padded by 10%.
func plotRange(_ values: [Double]) -> (Double, Double) {
    let sorted = values.filter(\.isFinite).sorted()
    guard let first = sorted.first else { return (-1, 1) }
    let lo = sorted[Int(Double(sorted.count - 1) * 0.005)], hi = sorted[Int(Double(sorted.count - 1) * 0.995)]
    let pad = Swift.max((hi - lo) * 0.1, 1e-6)
    return first == sorted.last ? (lo - 1, hi + 1) : (lo - pad, hi + pad)
}

/// 2-D density maps side by side (the fitted flow, and for `vi` the target it was fitted to) on
/// one grid and one colour scale, with points (samples, data) on top, ticks, axis labels and a
/// legend. Sharing the scale makes the maps comparable: the same colour is the same p(x).
struct DensityPlot {
    /// One map: a title, the density at grid points ([n, 2] float64 → n values; `nil` leaves the
    /// panel white), contour lines, and the points drawn over it.
    struct Panel {
        var title: String
        var density: ((Tensor) throws -> [Double])?
        var points: [Points] = []
        var contours: [Contours] = []
    }

    struct Points {
        var label: String
        var color: String
        var values: [(Double, Double)]
        var radius = 1.3
    }

    /// Contour lines of a density around its highest-density regions: one line per mass in
    /// `masses` (see ``highestDensityLevels(_:masses:)``), computed on the plot's grid.
    struct Contours {
        var label: String
        var color: String
        var density: (Tensor) throws -> [Double]
        var masses = [0.5, 0.9, 0.99]
    }

    var panels: [Panel]
    /// The window: x from `x.0` to `x.1`, y from `y.0` to `y.1`.
    var x: (Double, Double)
    var y: (Double, Double)
    var cells = 90
    var size = 420.0
    var margin = 44.0
    var xLabel = "x₁ (column 1)"
    var yLabel = "x₂ (column 2)"

    /// The window holding the central 99% of `points` (padded), widened to contain `including`.
    static func window(_ points: [(Double, Double)], including box: (Double, Double)? = nil) -> (x: (Double, Double), y: (Double, Double)) {
        var (x, y) = (plotRange(points.map(\.0)), plotRange(points.map(\.1)))
        if let box {
            x = (Swift.min(x.0, box.0), Swift.max(x.1, box.1))
            y = (Swift.min(y.0, box.0), Swift.max(y.1, box.1))
        }
        return (x, y)
    }

    /// `window` cut to a flow's support, so that every cell centre has a density: the torus
    /// [−π, π)² for angles (``Domain/circle``, whole: it has no edge), a box's intervals, ℝ² unchanged.
    static func window(_ window: (x: (Double, Double), y: (Double, Double)), within support: Domain) -> (x: (Double, Double), y: (Double, Double)) {
        if support == .circle { return ((-.pi, .pi), (-.pi, .pi)) }
        let (x, y) = (support.bounds(ofElement: 0), support.bounds(ofElement: 1))
        return ((Swift.max(window.x.0, x.lower), Swift.min(window.x.1, x.upper)), (Swift.max(window.y.0, y.lower), Swift.min(window.y.1, y.upper)))
    }

    /// The cell centres, row by row from the top-left cell: [cells², 2] in float64.
    var grid: Tensor {
        var values: [Double] = []
        values.reserveCapacity(2 * cells * cells)
        for j in 0..<cells {
            for i in 0..<cells {
                values += [x.0 + (Double(i) + 0.5) * (x.1 - x.0) / Double(cells), y.1 - (Double(j) + 0.5) * (y.1 - y.0) / Double(cells)]
            }
        }
        return Tensor(values, shape: [cells * cells, 2], dtype: .float64)
    }

    /// The area of one cell, for densities normalised on the grid.
    var cellArea: Double { (x.1 - x.0) * (y.1 - y.0) / Double(cells * cells) }

    /// Every panel's density at the cell centres of ``grid`` (empty for a panel without a map).
    func densities() throws -> [[Double]] {
        let points = grid
        return try panels.map { try $0.density?(points) ?? [] }
    }

    func svg() throws -> String {
        let maps = try densities()
        let hasMaps = panels.contains { $0.density != nil }
        let peak = maps.joined().filter(\.isFinite).max() ?? 0
        guard !hasMaps || peak > 0 else {
            throw CommandError("the density is zero or not finite everywhere in the plot window: the model's weights are absurd, or it underflows there")
        }
        let points = grid
        let cell = size / Double(cells), gap = 36.0
        let colorBar = hasMaps ? 70.0 : 0   // the colour scale right of the maps
        let width = Double(panels.count) * (size + gap) - gap + 2 * margin + colorBar, height = size + 2 * margin + 40
        let top = margin + 16
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \
            font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        for (index, (panel, density)) in zip(panels, maps).enumerated() {
            let left = margin + Double(index) * (size + gap)
            func px(_ v: Double) -> Double { left + (v - x.0) / (x.1 - x.0) * size }
            func py(_ v: Double) -> Double { top + (y.1 - v) / (y.1 - y.0) * size }
            out += "<text x=\"\(f(left + size / 2))\" y=\"\(f(top - 8))\" text-anchor=\"middle\" font-size=\"14\">\(panel.title)</text>\n"
            out += "<g shape-rendering=\"crispEdges\">\n"
            for (k, p) in density.enumerated() {
                out += "<rect x=\"\(f(left + Double(k % cells) * cell))\" y=\"\(f(top + Double(k / cells) * cell))\" width=\"\(f(cell + 0.3))\" height=\"\(f(cell + 0.3))\" fill=\"\(rampColor(p.isFinite ? p / peak : 0))\"/>\n"
            }
            out += "</g>\n"
            for set in panel.points {
                let outline = set.radius > 2 ? " stroke=\"#222\" stroke-width=\"1\"" : ""
                out += "<g fill=\"\(set.color)\" fill-opacity=\"\(set.radius > 2 ? 1 : 0.55)\"\(outline)>\n"
                for (a, b) in set.values where a >= x.0 && a <= x.1 && b >= y.0 && b <= y.1 {
                    out += "<circle cx=\"\(f(px(a)))\" cy=\"\(f(py(b)))\" r=\"\(set.radius)\"/>\n"
                }
                out += "</g>\n"
            }
            // Contour lines through the cell centres: node (i, j) of the grid is the centre of cell (i, j).
            for contours in panel.contours {
                let values = try contours.density(points)
                out += "<g stroke=\"\(contours.color)\" stroke-width=\"1.4\" fill=\"none\">\n"
                for level in highestDensityLevels(values, masses: contours.masses) {
                    var path = ""
                    for (a, b) in contourSegments(values, columns: cells, level: level) {
                        path += "M\(f(left + (a.0 + 0.5) * cell)) \(f(top + (a.1 + 0.5) * cell))L\(f(left + (b.0 + 0.5) * cell)) \(f(top + (b.1 + 0.5) * cell))"
                    }
                    out += "<path d=\"\(path)\"/>\n"
                }
                out += "</g>\n"
            }
            out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(size)\" height=\"\(size)\" fill=\"none\" stroke=\"#333\"/>\n"
            // Round ticks and axis labels (y on the first map only).
            for tx in niceTicks(x.0, x.1) {
                out += "<line x1=\"\(f(px(tx)))\" x2=\"\(f(px(tx)))\" y1=\"\(f(top + size))\" y2=\"\(f(top + size + 4))\" stroke=\"#333\"/>\n"
                out += "<text x=\"\(f(px(tx)))\" y=\"\(f(top + size + 16))\" text-anchor=\"middle\" fill=\"#333\">\(tickLabel(tx))</text>\n"
            }
            out += "<text x=\"\(f(left + size / 2))\" y=\"\(f(top + size + 34))\" text-anchor=\"middle\">\(xLabel)</text>\n"
            if index == 0 {
                for ty in niceTicks(y.0, y.1) {
                    out += "<line x1=\"\(f(left - 4))\" x2=\"\(f(left))\" y1=\"\(f(py(ty)))\" y2=\"\(f(py(ty)))\" stroke=\"#333\"/>\n"
                    out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(ty) + 4))\" text-anchor=\"end\" fill=\"#333\">\(tickLabel(ty))</text>\n"
                }
                out += "<text transform=\"translate(\(f(left - 34)) \(f(top + size / 2))) rotate(-90)\" text-anchor=\"middle\">\(yLabel)</text>\n"
            }
        }
        // Legend: every kind of point drawn, once.
        var legendX = margin, seen: Set<String> = []
        for set in panels.flatMap(\.points) where seen.insert(set.label).inserted {
            out += "<circle cx=\"\(f(legendX + 5))\" cy=\"\(f(margin - 30))\" r=\"4\" fill=\"\(set.color)\" stroke=\"#333\" stroke-width=\"0.6\"/>\n"
            out += "<text x=\"\(f(legendX + 13))\" y=\"\(f(margin - 26))\" fill=\"#333\">\(set.label)</text>\n"
            legendX += 110
        }
        for set in panels.flatMap(\.contours) where seen.insert(set.label).inserted {
            out += "<line x1=\"\(f(legendX))\" x2=\"\(f(legendX + 16))\" y1=\"\(f(margin - 30))\" y2=\"\(f(margin - 30))\" stroke=\"\(set.color)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(f(legendX + 21))\" y=\"\(f(margin - 26))\" fill=\"#333\">\(set.label)</text>\n"
            legendX += 21 + 7 * Double(set.label.count)
        }
        guard hasMaps else { return out + "</svg>\n" }
        // Colour scale: density from 0 to the peak of all maps.
        let barX = width - colorBar + 8, barWidth = 14.0, steps = 50
        for k in 0..<steps {
            let t = (Double(k) + 0.5) / Double(steps)
            out += "<rect x=\"\(f(barX))\" y=\"\(f(top + size * (1 - Double(k + 1) / Double(steps))))\" width=\"\(barWidth)\" height=\"\(f(size / Double(steps) + 0.3))\" fill=\"\(rampColor(t))\" shape-rendering=\"crispEdges\"/>\n"
        }
        out += "<rect x=\"\(f(barX))\" y=\"\(f(top))\" width=\"\(barWidth)\" height=\"\(size)\" fill=\"none\" stroke=\"#333\"/>\n"
        for value in niceTicks(0, peak, count: 4) {
            out += "<text x=\"\(f(barX + barWidth + 4))\" y=\"\(f(top + size * (1 - value / peak) + 4))\" fill=\"#333\" font-size=\"10\">\(tickLabel(value))</text>\n"
        }
        out += "<text x=\"\(f(barX + barWidth / 2))\" y=\"\(f(top - 8))\" text-anchor=\"middle\" font-size=\"11\">p(x)</text>\n"
        return out + "</svg>\n"
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
}

extension DensityPlot.Panel {
    /// The flow's density, with its samples (and data) on top.
    static func flow(_ flow: Flow, samples: Tensor, data: Tensor?) -> Self {
        Self(title: "flow", density: { grid in
            try withoutGradients { try flow.logProb(grid.converted(to: flow.dtype)).exp().doubles }
        }, points: [.init(label: "flow samples", color: "white", values: samples.points2D)] + dataPoints(data))
    }

    /// The first 2000 data rows, in red.
    private static func dataPoints(_ data: Tensor?) -> [DensityPlot.Points] {
        data.map { [.init(label: "data", color: "#e4572e", values: Array($0.points2D.prefix(2000)))] } ?? []
    }

    /// The target density exp(−U) of `energy`, normalised on the plot's grid (its sum times the
    /// cell area is 1), so it shares the colour scale with a flow's normalised density.
    static func target(_ energy: Energy, cellArea: Double, data: Tensor? = nil) -> Self {
        Self(title: "target", density: { grid in
            let logDensity = withoutGradients { energy.logDensity(grid).doubles }
            let largest = logDensity.filter(\.isFinite).max() ?? 0
            let unnormalised = logDensity.map { Foundation.exp($0 - largest) }
            let total = unnormalised.reduce(0, +) * cellArea
            return unnormalised.map { $0 / total }
        }, points: dataPoints(data))
    }
}

/// Pairwise scatter plots of the first (up to six) dimensions, histograms on the diagonal.
struct PairPlot {
    var samples: Tensor
    var data: Tensor?
    var panel = 130.0
    var gap = 8.0

    func svg() -> String {
        let d = Swift.min(samples.shape[1], 6)
        let s = samples.doubles, width = samples.shape[1]
        let dataValues = data?.doubles
        func column(_ values: [Double], _ j: Int) -> [Double] { stride(from: j, to: values.count, by: width).map { values[$0] } }
        let ranges = (0..<d).map { c in plotRange(column(s, c) + (dataValues.map { column($0, c) } ?? [])) }
        let total = Double(d) * (panel + gap) + 40, height = total + 20
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(total))" height="\(Int(height))" viewBox="0 0 \(Int(total)) \(Int(height))" \
            font-family="Helvetica, Arial, sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>

            """
        for r in 0..<d {
            for c in 0..<d {
                let left = 30 + Double(c) * (panel + gap), top = 10 + Double(r) * (panel + gap)
                out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(panel)\" height=\"\(panel)\" fill=\"none\" stroke=\"#999\"/>\n"
                let (cx0, cx1) = ranges[c], (ry0, ry1) = ranges[r]
                if r == c {
                    var bins = [Int](repeating: 0, count: 30)
                    for v in column(s, c) where v >= cx0 && v < cx1 { bins[Int((v - cx0) / (cx1 - cx0) * 30)] += 1 }
                    let peak = Double(bins.max() ?? 1)
                    for (k, count) in bins.enumerated() where count > 0 {
                        let h = Double(count) / peak * (panel - 4)
                        out += "<rect x=\"\(String(format: "%.1f", left + Double(k) * panel / 30))\" y=\"\(String(format: "%.1f", top + panel - h))\" width=\"\(String(format: "%.1f", panel / 30))\" height=\"\(String(format: "%.1f", h))\" fill=\"#3b528b\"/>\n"
                    }
                    out += "<text x=\"\(left + 4)\" y=\"\(top + 12)\">x\(c + 1)</text>\n"
                } else {
                    for (xs, color) in [(s, "#21918c")] + (dataValues.map { [($0, "#e4572e")] } ?? []) {
                        let a = column(xs, c), b = column(xs, r)
                        out += "<g fill=\"\(color)\" fill-opacity=\"0.4\">"
                        for (x, y) in zip(a, b).prefix(1500) where x >= cx0 && x <= cx1 && y >= ry0 && y <= ry1 {
                            out += "<circle cx=\"\(String(format: "%.1f", left + (x - cx0) / (cx1 - cx0) * panel))\" cy=\"\(String(format: "%.1f", top + (ry1 - y) / (ry1 - ry0) * panel))\" r=\"1\"/>"
                        }
                        out += "</g>\n"
                    }
                }
            }
        }
        // Legend: samples (histograms and dots) and data.
        var legendX = 30.0
        for (label, color) in [("flow samples", "#21918c")] + (data == nil ? [] : [("data", "#e4572e")]) {
            out += "<circle cx=\"\(legendX + 5)\" cy=\"\(height - 14)\" r=\"4\" fill=\"\(color)\"/>"
            out += "<text x=\"\(legendX + 13)\" y=\"\(height - 10)\" fill=\"#333\">\(label)</text>\n"
            legendX += 110
        }
        return out + "</svg>\n"
    }
}
