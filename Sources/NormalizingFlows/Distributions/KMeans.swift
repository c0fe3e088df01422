import Foundation

/// K clusters of rows of data, for starting a ``GaussianMixture``: k-means++ seeding (Arthur &
/// Vassilvitskii 2007: each next centre drawn with probability proportional to the squared
/// distance to the nearest centre so far), then Lloyd's iterations until no row changes cluster.
/// An emptied cluster takes the row farthest from its centre. Row-major Double arrays.
struct KMeans {
    /// The centres, [K·D].
    private(set) var centroids: [Double]
    /// Each cluster's share of the rows.
    private(set) var weights: [Double]
    /// Each cluster's covariance [D·D] about its centre, plus 10⁻⁶ of the data's mean variance on
    /// the diagonal so that a cluster of one row still has a proper density.
    private(set) var covariances: [[Double]]

    init(_ data: [Double], rows n: Int, features d: Int, components k: Int, iterations: Int, seed: UInt64) {
        var generator = RandomGenerator(seed: seed)
        func distance(_ row: Int, _ centre: Int, _ centres: [Double]) -> Double {
            var sum = 0.0
            for i in 0..<d { let e = data[row * d + i] - centres[centre * d + i]; sum += e * e }
            return sum
        }
        // Seeding.
        var centres = [Double](), first = Swift.min(Int(generator.nextUniform() * Double(n)), n - 1)
        centres += data[(first * d)..<((first + 1) * d)]
        var nearest = (0..<n).map { distance($0, 0, centres) }
        for c in 1..<Swift.max(k, 1) {
            let total = nearest.reduce(0, +)
            var pick = n - 1
            if total > 0 {
                var u = generator.nextUniform() * total
                for row in 0..<n { u -= nearest[row]; if u < 0 { pick = row; break } }
            } else {
                first = (first + 1) % n
                pick = first
            }
            centres += data[(pick * d)..<((pick + 1) * d)]
            for row in 0..<n { nearest[row] = Swift.min(nearest[row], distance(row, c, centres)) }
        }
        // Lloyd's iterations.
        var assignment = [Int](repeating: -1, count: n)
        for _ in 0..<Swift.max(iterations, 1) {
            var changed = false
            for row in 0..<n {
                let best = (0..<k).min { distance(row, $0, centres) < distance(row, $1, centres) }!
                if best != assignment[row] { assignment[row] = best; changed = true }
            }
            var sums = [Double](repeating: 0, count: k * d), counts = [Int](repeating: 0, count: k)
            for row in 0..<n {
                counts[assignment[row]] += 1
                for i in 0..<d { sums[assignment[row] * d + i] += data[row * d + i] }
            }
            for c in 0..<k {
                if counts[c] == 0 {
                    let far = (0..<n).max { distance($0, assignment[$0], centres) < distance($1, assignment[$1], centres) }!
                    for i in 0..<d { centres[c * d + i] = data[far * d + i] }
                    assignment[far] = c
                    changed = true
                } else {
                    for i in 0..<d { centres[c * d + i] = sums[c * d + i] / Double(counts[c]) }
                }
            }
            if !changed { break }
        }
        // The clusters' shares and covariances.
        var counts = [Int](repeating: 0, count: k)
        var covariances = [[Double]](repeating: [Double](repeating: 0, count: d * d), count: k)
        var mean = [Double](repeating: 0, count: d), variance = 0.0
        for row in 0..<n { for i in 0..<d { mean[i] += data[row * d + i] / Double(n) } }
        for row in 0..<n {
            let c = assignment[row]
            counts[c] += 1
            for i in 0..<d {
                let e = data[row * d + i] - centres[c * d + i]
                for j in 0..<d { covariances[c][i * d + j] += e * (data[row * d + j] - centres[c * d + j]) }
                variance += (data[row * d + i] - mean[i]) * (data[row * d + i] - mean[i]) / Double(n * d)
            }
        }
        let floor = 1e-6 * (variance > 0 ? variance : 1)
        for c in 0..<k {
            for e in 0..<(d * d) { covariances[c][e] /= Double(Swift.max(counts[c], 1)) }
            for i in 0..<d { covariances[c][i * (d + 1)] += floor }
        }
        centroids = centres
        weights = counts.map { Double(Swift.max($0, 1)) / Double(n) }
        self.covariances = covariances
    }

    /// The lower Cholesky factor L of a symmetric positive definite matrix [D·D], A = LLᵀ.
    static func cholesky(_ a: [Double], _ d: Int) -> [Double] {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0...i {
                var sum = a[i * d + j]
                for m in 0..<j { sum -= l[i * d + m] * l[j * d + m] }
                l[i * d + j] = i == j ? Swift.max(sum, .leastNormalMagnitude).squareRoot() : sum / l[j * d + j]
            }
        }
        return l
    }

    /// P, lower triangular with a positive diagonal, such that PPᵀ = Σ⁻¹: the Cholesky factor of
    /// the precision L⁻ᵀL⁻¹, with L the covariance's factor.
    static func precisionCholesky(_ covariance: [Double], _ d: Int) -> [Double] {
        let l = cholesky(covariance, d)
        // L⁻¹ by forward substitution, one column of the identity at a time.
        var inverse = [Double](repeating: 0, count: d * d)
        for column in 0..<d {
            for i in column..<d {
                var sum = i == column ? 1.0 : 0.0
                for m in column..<i { sum -= l[i * d + m] * inverse[m * d + column] }
                inverse[i * d + column] = sum / l[i * d + i]
            }
        }
        var precision = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { for m in 0..<d { precision[i * d + j] += inverse[m * d + i] * inverse[m * d + j] } } }
        return cholesky(precision, d)
    }
}
