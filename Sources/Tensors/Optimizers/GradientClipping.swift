/// Scales all gradients together so that their joint Euclidean norm is at most `maxNorm`
/// (Pascanu et al. 2013); parameters without a gradient are ignored.
///
/// - Returns: the joint norm before clipping (∞ or NaN if a gradient is not finite; then nothing
///   is scaled, so the caller can detect the divergence).
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Double) -> Double {
    precondition(maxNorm > 0, "clipGradientNorm: maxNorm must be positive, not \(maxNorm)")
    var squares = 0.0
    for p in parameters {
        guard let g = p.grad else { continue }
        for v in g.doubles { squares += v * v }
    }
    let norm = squares.squareRoot()
    guard norm.isFinite, norm > maxNorm else { return norm }
    let scale = maxNorm / (norm + 1e-12)
    for p in parameters {
        if let g = p.grad { p.grad = withoutGradients { g * scale } }
    }
    return norm
}
