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
    func sequentialInverse(_ y: Tensor, context: Tensor?, transform: any ElementwiseTransform) -> (x: Tensor, logAbsDerivative: Tensor) {
        switch y.dtype {
        case .float32: sequentialInverse(y, context: context, transform: transform, Float.self)
        case .float64: sequentialInverse(y, context: context, transform: transform, Double.self)
        }
    }

    private func sequentialInverse<T: TensorScalar>(
        _ y: Tensor, context: Tensor?, transform: any ElementwiseTransform, _: T.Type
    ) -> (x: Tensor, logAbsDerivative: Tensor) {
        let layout = SortedMADE<T>(self)
        let (rows, d, c, p) = (y.shape[0], order.count, contextSize, outputsPerDimension)
        let yValues = y.scalars(as: T.self)
        let contextValues = context?.scalars(as: T.self) ?? []
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
            var hidden = layout.hiddenSizes.map { [T](repeating: 0, count: n * $0) }
            var parameters = [T](repeating: 0, count: n * p)
            var column = [T](repeating: 0, count: n)
            for position in 1...d {
                let degree = position - 1
                // Units of degree 0 (with a context) see only the context.
                for l in hidden.indices {
                    let units = (degree == 0 ? 0 : layout.unitEnd[l][degree - 1])..<layout.unitEnd[l][degree]
                    if units.isEmpty { continue }
                    let seen = l == 0 ? c + degree : layout.unitEnd[l - 1][degree]
                    let (lda, ldc) = (l == 0 ? width : layout.hiddenSizes[l - 1], layout.hiddenSizes[l])
                    let previous = l == 0 ? input : hidden[l - 1]
                    layout.hidden[l].apply(rows: units, seen: seen, to: previous, lda: lda, n: n, into: &hidden[l], ldc: ldc)
                    activate(&hidden[l], columns: units, ldc: ldc, n: n)
                }
                let dimension = order[position - 1]
                let outputRows = (dimension * p)..<(dimension * p + p)
                let lastSeen = layout.unitEnd[layout.hidden.count - 1][degree]
                layout.output.apply(rows: outputRows, seen: lastSeen, to: hidden[hidden.count - 1],
                                    lda: layout.hiddenSizes[hidden.count - 1], n: n, into: &parameters, ldc: p, columnOffset: -outputRows.lowerBound)
                if let skip = layout.skip, degree > 0 {
                    input.withUnsafeBufferPointer { a in
                        skip.accumulate(rows: outputRows, seen: degree, a: a.baseAddress! + c, lda: width, n: n, into: &parameters, ldc: p,
                                        columnOffset: -outputRows.lowerBound)
                    }
                }
                for r in 0..<n { column[r] = yValues[(start + r) * d + dimension] }
                let (xColumn, logColumn) = transform.inverse(Tensor(shape: [n], scalars: column), parameters: Tensor(shape: [n, p], scalars: parameters))
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

    /// Applies the hidden activation to `columns` of an [n, ldc] buffer.
    private func activate<T: TensorScalar>(_ buffer: inout [T], columns: Range<Int>, ldc: Int, n: Int) {
        if activation == .relu {
            for r in 0..<n {
                for j in columns where buffer[r * ldc + j] < 0 { buffer[r * ldc + j] = 0 }
            }
            return
        }
        // Other activations through the tensor kernels, so both paths compute the same function.
        var block = [T](); block.reserveCapacity(n * columns.count)
        for r in 0..<n { block.append(contentsOf: buffer[(r * ldc + columns.lowerBound)..<(r * ldc + columns.upperBound)]) }
        let activated = activation(Tensor(shape: [n, columns.count], scalars: block)).scalars(as: T.self)
        for r in 0..<n {
            for (k, j) in columns.enumerated() { buffer[r * ldc + j] = activated[r * columns.count + k] }
        }
    }
}

/// A MADE's applied weights with the input columns in degree order (context, then the dimensions
/// by position). Hidden units are already in ascending degree (``MaskedAutoregressiveNetwork/hiddenDegrees(size:inputs:context:)``),
/// so the units of degree ≤ g are a prefix of each layer.
private struct SortedMADE<T: TensorScalar> {
    /// One dense layer: weight [rows, columns] in sorted order, bias per sorted row.
    struct Layer {
        var weight: [T]
        var bias: [T]
        var columns: Int

        /// out[:, rows − columnOffset] = bias + A[:, ..<seen] · weight[rows, ..<seen]ᵀ for the n rows of A.
        func apply(rows: Range<Int>, seen: Int, to a: [T], lda: Int, n: Int, into out: inout [T], ldc: Int, columnOffset: Int = 0) {
            let first = rows.lowerBound + columnOffset
            for r in 0..<n {
                for (k, unit) in rows.enumerated() { out[r * ldc + first + k] = bias[unit] }
            }
            a.withUnsafeBufferPointer { a in
                accumulate(rows: rows, seen: seen, a: a.baseAddress!, lda: lda, n: n, into: &out, ldc: ldc, columnOffset: columnOffset)
            }
        }

        /// out[:, rows − columnOffset] += A[:, ..<seen] · weight[rows, ..<seen]ᵀ.
        func accumulate(rows: Range<Int>, seen: Int, a: UnsafePointer<T>, lda: Int, n: Int, into out: inout [T], ldc: Int, columnOffset: Int = 0) {
            guard seen > 0, !rows.isEmpty else { return }
            let first = rows.lowerBound + columnOffset
            weight.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { o in
                    T.gemm(transA: false, transB: true, m: n, n: rows.count, k: seen, alpha: 1,
                           a: a, lda: lda, b: w.baseAddress! + rows.lowerBound * columns, ldb: columns, beta: 1,
                           c: o.baseAddress! + first, ldc: ldc)
                }
            }
        }
    }

    var hidden: [Layer] = []
    var hiddenSizes: [Int] = []
    /// unitEnd[l][g]: how many units of hidden layer l have degree ≤ g (g = 0…D).
    var unitEnd: [[Int]] = []
    var output: Layer
    var skip: Layer?

    init(_ network: MaskedAutoregressiveNetwork) {
        let d = network.order.count, c = network.contextSize
        // Sorted column j of the input ← original column: context first, then dimensions by position.
        var columns = (0..<c).map { d + $0 } + network.order
        let applied = network.weights.indices.map { network.appliedWeight($0).scalars(as: T.self) }
        let biases = network.biases.map { $0.value.scalars(as: T.self) }
        for (l, size) in network.hiddenSizes.enumerated() {
            let degrees = MaskedAutoregressiveNetwork.hiddenDegrees(size: size, inputs: d, context: c > 0)
            precondition(degrees == degrees.sorted(), "sequential inversion needs hidden units in ascending degree")
            hidden.append(Self.permuted(applied[l], bias: biases[l], fanIn: columns.count, rows: Array(0..<size), columns: columns))
            hiddenSizes.append(size)
            unitEnd.append((0...d).map { g in degrees.filter { $0 <= g }.count })
            columns = Array(0..<size)
        }
        let outputs = d * network.outputsPerDimension
        output = Self.permuted(applied[applied.count - 1], bias: biases[biases.count - 1], fanIn: columns.count,
                               rows: Array(0..<outputs), columns: columns)
        if let skipWeight = network.skipWeight, let skipMask = network.skipMask {
            skip = Self.permuted((skipWeight.value * skipMask).scalars(as: T.self), bias: [T](repeating: 0, count: outputs),
                                 fanIn: d, rows: Array(0..<outputs), columns: network.order)
        }
    }

    private static func permuted(_ weight: [T], bias: [T], fanIn: Int, rows: [Int], columns: [Int]) -> Layer {
        var sorted = [T](); sorted.reserveCapacity(rows.count * columns.count)
        for r in rows {
            for j in columns { sorted.append(weight[r * fanIn + j]) }
        }
        return Layer(weight: sorted, bias: rows.map { bias[$0] }, columns: columns.count)
    }
}
