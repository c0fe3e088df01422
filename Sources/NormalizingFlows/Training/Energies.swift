import Foundation

/// Two-dimensional test densities for variational inference: p(z) ∝ exp(−U(z)).
///
/// U1–U4 are the potentials of Rezende & Mohamed (2015, Table 1), with
/// w₁(z) = sin(2πz₁/4), w₂(z) = 3·exp(−½((z₁ − 1)/0.6)²), w₃(z) = 3·σ((z₁ − 1)/0.3):
/// - U1 = ½((‖z‖ − 2)/0.4)² − log(exp(−½((z₁−2)/0.6)²) + exp(−½((z₁+2)/0.6)²))
/// - U2 = ½((z₂ − w₁)/0.4)²
/// - U3 = −log(exp(−½((z₂−w₁)/0.35)²) + exp(−½((z₂−w₁+w₂)/0.35)²))
/// - U4 = −log(exp(−½((z₂−w₁)/0.4)²) + exp(−½((z₂−w₁+w₃)/0.35)²))
///
/// `funnel` is Neal's funnel (Neal 2003): z₂ ~ N(0, 3²), z₁ | z₂ ~ N(0, exp(z₂)), normalised.
public enum Energy: String, Sendable, CaseIterable {
    /// U1: a ring of radius 2 whose mass gathers at its two ends on the z₁ axis, z₁ = ±2.
    case u1
    /// U2: a band around the sine wave z₂ = w₁(z₁).
    case u2
    /// U3: two sine-shaped bands that split apart around z₁ = 1, where the bump w₂ shifts the second.
    case u3
    /// U4: two sine-shaped bands, the second shifted by the step w₃ (a sigmoid rising at z₁ = 1).
    case u4
    /// Neal's funnel, already normalised (log Z = 0).
    case funnel

    /// log p̃(z) = −U(z) for z of shape [n, 2]; shape [n].
    public func logDensity(_ z: Tensor) -> Tensor {
        let z1 = z.select(alongAxis: -1, index: 0), z2 = z.select(alongAxis: -1, index: 1)
        let w1 = (z1 * (Double.pi / 2)).sin()
        func gauss(_ v: Tensor, _ s: Double) -> Tensor { (v / s).square() * -0.5 }
        func logAddExp(_ a: Tensor, _ b: Tensor) -> Tensor { Tensor.stack([a, b], alongAxis: -1).logSumExp(alongAxis: -1) }
        switch self {
        case .u1:
            let radius = (z.square().sum(alongAxis: -1) + 1e-30).sqrt()
            return gauss(radius - 2, 0.4) + logAddExp(gauss(z1 - 2, 0.6), gauss(z1 + 2, 0.6))
        case .u2:
            return gauss(z2 - w1, 0.4)
        case .u3:
            let w2 = gauss(z1 - 1, 0.6).exp() * 3
            return logAddExp(gauss(z2 - w1, 0.35), gauss(z2 - w1 + w2, 0.35))
        case .u4:
            let w3 = ((z1 - 1) / 0.3).sigmoid() * 3
            return logAddExp(gauss(z2 - w1, 0.4), gauss(z2 - w1 + w3, 0.35))
        case .funnel:
            let logNormal2 = gauss(z2, 3) - Foundation.log(3.0) - 0.5 * Foundation.log(2 * Double.pi)
            let logNormal1 = z1.square() * (z2.negated().exp() * -0.5) - z2 * 0.5 - 0.5 * Foundation.log(2 * Double.pi)
            return logNormal2 + logNormal1
        }
    }

    /// log Z = log ∫ p̃ by the midpoint rule on [−8, 8]² with `cells`² cells (0 for the
    /// normalised funnel), computed in Double.
    public func logNormalizer(cells: Int = 1000, bound: Double = 8) -> Double {
        if self == .funnel { return 0 }
        let h = 2 * bound / Double(cells)
        var values: [Double] = []
        values.reserveCapacity(cells * cells)
        for chunkStart in stride(from: 0, to: cells, by: 100) {
            var points: [Double] = []
            for i in chunkStart..<Swift.min(cells, chunkStart + 100) {
                for j in 0..<cells { points += [-bound + (Double(i) + 0.5) * h, -bound + (Double(j) + 0.5) * h] }
            }
            values += withoutGradients { logDensity(Tensor(points, shape: [points.count / 2, 2], dtype: .float64)).doubles }
        }
        let m = values.max()!
        return m + Foundation.log(values.reduce(0) { $0 + Foundation.exp($1 - m) } * h * h)
    }
}

