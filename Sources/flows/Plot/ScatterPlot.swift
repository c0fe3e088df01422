import Foundation

/// A minimal SVG scatter plot: panels of 2-D point clouds side by side on shared axes.
struct ScatterPlot {
    struct Panel {
        var title: String
        var points: [(Double, Double)]
        var color: String
    }

    var panels: [Panel]
    var panelSize = 260.0
    var margin = 36.0

    /// The SVG document; axes span all panels' points with 5% padding.
    func svg() -> String {
        let all = panels.flatMap(\.points).filter { $0.0.isFinite && $0.1.isFinite }
        var (x0, x1) = (all.map(\.0).min() ?? -1, all.map(\.0).max() ?? 1)
        var (y0, y1) = (all.map(\.1).min() ?? -1, all.map(\.1).max() ?? 1)
        let padX = Swift.max((x1 - x0) * 0.05, 1e-9), padY = Swift.max((y1 - y0) * 0.05, 1e-9)
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
        let width = Double(panels.count) * (panelSize + margin) + margin
        let height = panelSize + 2 * margin + 10
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        for (i, panel) in panels.enumerated() {
            let left = margin + Double(i) * (panelSize + margin), top = margin
            func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * panelSize }
            func py(_ y: Double) -> Double { top + panelSize - (y - y0) / (y1 - y0) * panelSize }
            out += "<text x=\"\(f(left + panelSize / 2))\" y=\"\(f(top - 12))\" text-anchor=\"middle\" font-size=\"14\">\(escape(panel.title))</text>\n"
            out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(panelSize))\" height=\"\(f(panelSize))\" fill=\"none\" stroke=\"#444\"/>\n"
            for tick in niceTicks(x0, x1) {
                out += "<text x=\"\(f(px(tick)))\" y=\"\(f(top + panelSize + 14))\" text-anchor=\"middle\" fill=\"#444\">\(tickLabel(tick))</text>\n"
            }
            if i == 0 {
                for tick in niceTicks(y0, y1) {
                    out += "<text x=\"\(f(left - 4))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\" fill=\"#444\">\(tickLabel(tick))</text>\n"
                }
            }
            out += "<g fill=\"\(panel.color)\" fill-opacity=\"0.35\">\n"
            for (x, y) in panel.points where x.isFinite && y.isFinite && x >= x0 && x <= x1 && y >= y0 && y <= y1 {
                out += "<circle cx=\"\(f(px(x)))\" cy=\"\(f(py(y)))\" r=\"1.6\"/>\n"
            }
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }

    /// Writes the SVG (atomically to a regular file, see ``FileAccess/write(_:to:)``).
    func write(to url: URL) throws {
        try FileAccess.write(Data(svg().utf8), to: url.path)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}

extension Tensor {
    /// Rows of a [n, 2] tensor as points.
    var points2D: [(Double, Double)] {
        let v = doubles
        return stride(from: 0, to: v.count - 1, by: 2).map { (v[$0], v[$0 + 1]) }
    }
}

import NormalizingFlows
