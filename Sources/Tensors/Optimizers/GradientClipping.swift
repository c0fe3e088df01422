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
        switch g.dtype {
        case .float32: squares += sumOfSquares(g, Float.self)
        case .float64: squares += sumOfSquares(g, Double.self)
        }
    }
    let norm = squares.squareRoot()
    guard norm.isFinite, norm > maxNorm else { return norm }
    let scale = maxNorm / (norm + 1e-12)
    for p in parameters {
        guard var g = p.grad else { continue }
        p.grad = nil  // the only reference, so scaling in place copies nothing
        switch g.dtype {
        case .float32: scaleInPlace(&g, Float(scale))
        case .float64: scaleInPlace(&g, scale)
        }
        p.grad = g
    }
    return norm
}

private func sumOfSquares<T: TensorScalar>(_ g: Tensor, _: T.Type) -> Double {
    g.withUnsafeBufferPointer(as: T.self) { g in g.reduce(0.0) { $0 + Double($1) * Double($1) } }
}

private func scaleInPlace<T: TensorScalar>(_ g: inout Tensor, _ scale: T) {
    g.withUnsafeMutableBufferPointer(as: T.self) { g in
        for i in g.indices { g[i] *= scale }
    }
}
