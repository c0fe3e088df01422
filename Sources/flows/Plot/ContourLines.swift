import Foundation

/// The density thresholds of highest-density regions: for each mass m in `masses`, the largest
/// level t such that the cells with density ≥ t hold at least m of the grid's total mass
/// (equal-area cells, so mass is proportional to the sum of the densities). The contour at t
/// bounds the smallest region of the grid holding m of the mass, the "m-HDR" (Hyndman 1996).
func highestDensityLevels(_ density: [Double], masses: [Double]) -> [Double] {
    let sorted = density.filter { $0.isFinite && $0 > 0 }.sorted(by: >)
    let total = sorted.reduce(0, +)
    guard total > 0 else { return [] }
    return masses.map { mass in
        var cumulative = 0.0
        for value in sorted {
            cumulative += value
            if cumulative >= mass * total { return value }
        }
        return sorted.last!
    }
}

/// The contour line of `values` at `level` by marching squares: `values` are the densities at
/// the nodes of a `columns`-wide grid stored row by row (node (i, j) at index j·columns + i), and
/// each segment joins two points in node coordinates (i, j), found by linear interpolation along
/// the edges of a square whose corners lie on both sides of the level. A square with two
/// opposite corners above (a saddle) is split by the mean of its corners.
func contourSegments(_ values: [Double], columns: Int, level: Double) -> [((Double, Double), (Double, Double))] {
    let rows = values.count / columns
    guard columns >= 2, rows >= 2 else { return [] }
    var segments: [((Double, Double), (Double, Double))] = []
    func value(_ i: Int, _ j: Int) -> Double {
        let v = values[j * columns + i]
        return v.isFinite ? v : 0
    }
    for j in 0..<(rows - 1) {
        for i in 0..<(columns - 1) {
            // Corners counter-clockwise from the top-left node: (i, j), (i, j+1), (i+1, j+1), (i+1, j).
            let corners = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)]
            let v = corners.map { value($0.0, $0.1) }
            let above = v.map { $0 >= level }
            // The crossing on edge k, between corners k and k+1.
            func crossing(_ k: Int) -> (Double, Double) {
                let (a, b) = (corners[k], corners[(k + 1) % 4])
                let t = (level - v[k]) / (v[(k + 1) % 4] - v[k])
                return (Double(a.0) + t * Double(b.0 - a.0), Double(a.1) + t * Double(b.1 - a.1))
            }
            let crossed = (0..<4).filter { above[$0] != above[($0 + 1) % 4] }
            if crossed.count == 2 {
                segments.append((crossing(crossed[0]), crossing(crossed[1])))
            } else if crossed.count == 4 {
                // A saddle: pair each edge with its neighbour around the corner the centre agrees with.
                let centreAbove = v.reduce(0, +) / 4 >= level
                if above[0] == centreAbove {
                    segments += [(crossing(0), crossing(1)), (crossing(2), crossing(3))]
                } else {
                    segments += [(crossing(3), crossing(0)), (crossing(1), crossing(2))]
                }
            }
        }
    }
    return segments
}
