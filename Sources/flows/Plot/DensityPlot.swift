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

/// A 2-D density heat map of a flow with samples (and data) on top.
struct DensityPlot {
    var flow: Flow
    var samples: Tensor
    var data: Tensor?
    var cells = 90
    var size = 480.0
    var margin = 44.0

    func svg() throws -> String {
        let all = samples.points2D + (data?.points2D ?? [])
        let (x0, x1) = plotRange(all.map(\.0)), (y0, y1) = plotRange(all.map(\.1))
        var grid: [Double] = []
        for j in 0..<cells {
            for i in 0..<cells {
                grid += [x0 + (Double(i) + 0.5) * (x1 - x0) / Double(cells), y1 - (Double(j) + 0.5) * (y1 - y0) / Double(cells)]
            }
        }
        let density = try withoutGradients {
            try flow.logProb(Tensor(grid, shape: [cells * cells, 2], dtype: flow.dtype)).exp().doubles
        }
        guard let largest = density.filter(\.isFinite).max(), largest > 0 else {
            throw CommandError("the model's density is zero or not finite everywhere in the plot window: its weights are absurd, or it underflows there")
        }
        let peak = largest
        let cell = size / Double(cells)
        let colorBar = 70.0   // the colour scale right of the map
        let width = size + 2 * margin + colorBar, height = size + 2 * margin + 24
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \
            font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(margin + size / 2))" y="\(f(margin - 22))" text-anchor="middle" font-size="14">density of the flow</text>
            <g shape-rendering="crispEdges">

            """
        for (k, p) in density.enumerated() {
            let i = k % cells, j = k / cells
            out += "<rect x=\"\(f(margin + Double(i) * cell))\" y=\"\(f(margin + Double(j) * cell))\" width=\"\(f(cell + 0.3))\" height=\"\(f(cell + 0.3))\" fill=\"\(rampColor(p.isFinite ? p / peak : 0))\"/>\n"
        }
        out += "</g>\n"
        func px(_ x: Double) -> Double { margin + (x - x0) / (x1 - x0) * size }
        func py(_ y: Double) -> Double { margin + (y1 - y) / (y1 - y0) * size }
        func dots(_ points: [(Double, Double)], _ color: String, _ r: Double) {
            out += "<g fill=\"\(color)\" fill-opacity=\"0.55\">\n"
            for (x, y) in points where x >= x0 && x <= x1 && y >= y0 && y <= y1 {
                out += "<circle cx=\"\(f(px(x)))\" cy=\"\(f(py(y)))\" r=\"\(r)\"/>\n"
            }
            out += "</g>\n"
        }
        if let data { dots(data.points2D.prefix(2000).map { $0 }, "#e4572e", 1.4) }
        dots(samples.points2D, "white", 1.2)
        out += "<rect x=\"\(margin)\" y=\"\(margin)\" width=\"\(size)\" height=\"\(size)\" fill=\"none\" stroke=\"#333\"/>\n"
        // Round ticks and axis labels.
        for tx in niceTicks(x0, x1) {
            out += "<line x1=\"\(f(px(tx)))\" x2=\"\(f(px(tx)))\" y1=\"\(f(margin + size))\" y2=\"\(f(margin + size + 4))\" stroke=\"#333\"/>\n"
            out += "<text x=\"\(f(px(tx)))\" y=\"\(f(margin + size + 16))\" text-anchor=\"middle\" fill=\"#333\">\(tickLabel(tx))</text>\n"
        }
        for ty in niceTicks(y0, y1) {
            out += "<line x1=\"\(f(margin - 4))\" x2=\"\(f(margin))\" y1=\"\(f(py(ty)))\" y2=\"\(f(py(ty)))\" stroke=\"#333\"/>\n"
            out += "<text x=\"\(f(margin - 6))\" y=\"\(f(py(ty) + 4))\" text-anchor=\"end\" fill=\"#333\">\(tickLabel(ty))</text>\n"
        }
        out += "<text x=\"\(f(margin + size / 2))\" y=\"\(f(margin + size + 34))\" text-anchor=\"middle\">x₁ (column 1)</text>\n"
        out += "<text transform=\"translate(\(f(margin - 34)) \(f(margin + size / 2))) rotate(-90)\" text-anchor=\"middle\">x₂ (column 2)</text>\n"
        // Legend: samples and data.
        var legendX = margin
        for (label, color) in [("flow samples", "white")] + (data == nil ? [] : [("data", "#e4572e")]) {
            out += "<circle cx=\"\(f(legendX + 5))\" cy=\"\(f(margin - 8))\" r=\"4\" fill=\"\(color)\" stroke=\"#333\" stroke-width=\"0.6\"/>\n"
            out += "<text x=\"\(f(legendX + 13))\" y=\"\(f(margin - 4))\" fill=\"#333\">\(label)</text>\n"
            legendX += 110
        }
        // Colour scale: density from 0 to the peak.
        let barX = margin + size + 18, barWidth = 14.0, steps = 50
        for k in 0..<steps {
            let t = (Double(k) + 0.5) / Double(steps)
            out += "<rect x=\"\(f(barX))\" y=\"\(f(margin + size * (1 - Double(k + 1) / Double(steps))))\" width=\"\(barWidth)\" height=\"\(f(size / Double(steps) + 0.3))\" fill=\"\(rampColor(t))\" shape-rendering=\"crispEdges\"/>\n"
        }
        out += "<rect x=\"\(f(barX))\" y=\"\(margin)\" width=\"\(barWidth)\" height=\"\(size)\" fill=\"none\" stroke=\"#333\"/>\n"
        for value in niceTicks(0, peak, count: 4) {
            let y = margin + size * (1 - value / peak)
            out += "<text x=\"\(f(barX + barWidth + 4))\" y=\"\(f(y + 4))\" fill=\"#333\" font-size=\"10\">\(tickLabel(value))</text>\n"
        }
        out += "<text x=\"\(f(barX + barWidth / 2))\" y=\"\(f(margin - 8))\" text-anchor=\"middle\" font-size=\"11\">p(x)</text>\n"
        return out + "</svg>\n"
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
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
