import Tensors

/// Inversion of an autoregressive transform at the cost of one network pass.
///
/// Inverting y_i = f(x_i; θ_i(x_<i)) fixes one dimension at a time. Run naively, each of the D
/// steps is a full MADE pass: D times the work of the forward direction. But a MADE unit of
/// degree g depends only on the inputs of degree ≤ g (its mask says so), so its value is final as
/// soon as the first g dimensions in the order are known. With every layer's units in ascending
/// degree (and the inputs put in order) each applied weight is block-lower-triangular; step t then computes only the units
/// of degree t − 1 (a GEMM over the prefix of the previous layer they see) and the P outputs of
/// dimension t. Summed over the steps that is exactly one network pass, with no redundant units
/// (Papamakarios, Pavlakou & Murray 2017, §3, note the D passes; Germain et al. 2015, §4, for
/// the degree structure this exploits).
///
/// It runs without recording gradients; ``AutoregressiveBijector`` uses the plain D-pass loop
/// when gradients are on.
extension MaskedAutoregressiveNetwork {
    /// x and the elementwise log |∂x/∂y| for y [N, D] (and context [N, C]), inverting `transform`.
    /// - Throws: ``FlowError/notConverged(row:_:)`` with the row of `y` whose iterative
    ///   inverse (for transforms without a closed form) missed its tolerance.
    func sequentialInverse(_ y: Tensor, context: Tensor?, transform: any ParametricElementwiseTransform) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        switch y.dtype {
        case .float32: try sequentialInverse(y, context: context, transform: transform, Float.self)
        case .float64: try sequentialInverse(y, context: context, transform: transform, Double.self)
        }
    }

    private func sequentialInverse<T: TensorScalar>(
        _ y: Tensor, context: Tensor?, transform: any ParametricElementwiseTransform, _: T.Type
    ) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        let layout = layout(T.self)
        let (rows, d, c, p) = (y.shape[0], variableOrder.count, layout.contextSize, outputsPerDimension)
        let yValues = y.scalars(as: T.self)
        let contextValues = c > 0 ? context?.scalars(as: T.self) ?? [] : []
        // A context with layers of its own adds fixed offsets to the hidden pre-activations.
        let offsetWidth = layout.offsetWidth
        let offsetValues = offsetWidth > 0 ? context.map { contextOffsets($0).scalars(as: T.self) } : nil
        var x = [T](repeating: 0, count: rows * d), logDerivative = [T](repeating: 0, count: rows * d)
        let chunk = 2048
        for start in stride(from: 0, to: rows, by: chunk) {
            let n = Swift.min(chunk, rows - start)
            // The input in degree order: context (degree 0), then the dimensions by position.
            let width = c + d
            var input = [T](repeating: 0, count: n * width)
            for r in 0..<n {
                for j in 0..<c { input[r * width + j] = contextValues[(start + r) * c + j] }
            }
            // The values each layer keeps (``MADELayout/keptWidths``), one after another.
            let keptWidths = layout.keptWidths, keptOffsets = keptWidths.indices.map { n * keptWidths[..<$0].reduce(0, +) }
            var kept = [T](repeating: 0, count: n * keptWidths.reduce(0, +))
            var parameters = [T](repeating: 0, count: n * p), skipped = parameters
            var column = [T](repeating: 0, count: n)
            for position in 1...d {
                let degree = position - 1
                // Units of degree 0 (with a context) see only the context.
                input.withUnsafeBufferPointer { a in
                    kept.withUnsafeMutableBufferPointer { b in
                        func run(_ offsets: UnsafePointer<T>?) {
                            layout.evaluateUnits(ofDegree: degree, input: a.baseAddress!, lda: width, n: n, offsets: offsets,
                                                 kept: keptOffsets.map { b.baseAddress! + $0 })
                        }
                        if let offsetValues {
                            offsetValues.withUnsafeBufferPointer { run($0.baseAddress! + start * offsetWidth) }
                        } else {
                            run(nil)
                        }
                    }
                }
                let dimension = variableOrder[position - 1]
                let outputRows = (dimension * p)..<(dimension * p + p)
                let last = layout.hidden.count - 1
                kept.withUnsafeBufferPointer { a in
                    parameters.withUnsafeMutableBufferPointer { out in
                        layout.output.evaluate(units: outputRows, seen: layout.unitEnd[last][degree], a: a.baseAddress! + keptOffsets[keptOffsets.count - 1],
                                               lda: layout.hidden[last].units, n: n, into: out.baseAddress!, ldc: p)
                    }
                }
                // The skip layer's outputs (no bias) add the first `degree` dimensions' share.
                if let skip = layout.skip, degree > 0 {
                    input.withUnsafeBufferPointer { x in
                        skipped.withUnsafeMutableBufferPointer { out in
                            skip.evaluate(units: outputRows, seen: degree, a: x.baseAddress! + c, lda: width, n: n, into: out.baseAddress!, ldc: p)
                        }
                    }
                    for e in 0..<(n * p) { parameters[e] += skipped[e] }
                }
                for r in 0..<n { column[r] = yValues[(start + r) * d + dimension] }
                let (xColumn, logColumn) = try reportingRows(elementsPerRow: 1, offset: start) {
                    try transform.inverse(Tensor(shape: [n], scalars: column), parameters: Tensor(shape: [n, p], scalars: parameters))
                }
                let xs = xColumn.scalars(as: T.self), logs = logColumn.scalars(as: T.self)
                for r in 0..<n {
                    input[r * width + c + degree] = xs[r]
                    x[(start + r) * d + dimension] = xs[r]
                    logDerivative[(start + r) * d + dimension] = logs[r]
                }
            }
        }
        return (Tensor(shape: [rows, d], scalars: x), Tensor(shape: [rows, d], scalars: logDerivative))
    }
}

