import Tensors

/// The network's forward pass when nothing is recorded (sampling, scoring, evaluation).
///
/// The batch is cut into chunks of rows, and each thread takes whole chunks through every layer:
/// one fork and join per pass instead of one per product, and each chunk's hidden values stay in
/// the core's cache between layers. Layers use the degree-sorted weights of ``SortedMADE``, where
/// every unit reads a prefix of its inputs, so each product skips the mask's zeros by panels of 16
/// units, with weights packed once per layout (`PackedGEMMOperand`).
extension MaskedAutoregressiveNetwork {
    /// Rows per chunk: 132 rows of a 256-unit layer are 132 KB, in a core's L2 cache with the
    /// next layer's, and a multiple of the GEMM kernel's 6 rows.
    private static let chunkRows = 132

    /// Parameters [rows, D·P] for x [rows, D] and context [rows, C] (when the network has one).
    func inferencePass(_ x: Tensor, context: Tensor?) -> Tensor {
        switch x.dtype {
        case .float32: inferencePass(x, context: context, Float.self)
        case .float64: inferencePass(x, context: context, Double.self)
        }
    }

    private func inferencePass<T: TensorScalar>(_ x: Tensor, context: Tensor?, _: T.Type) -> Tensor {
        let layout = sortedMADE(T.self)
        let (rows, d, c) = (x.shape[0], variableOrder.count, contextSize)
        let outputs = d * outputsPerDimension
        var out = Tensor(uninitializedShape: [rows, outputs], dtype: x.dtype)
        let width = c + d, chunks = (rows + Self.chunkRows - 1) / Self.chunkRows
        let contextValues = context ?? Tensor(uninitializedShape: [0], dtype: x.dtype)
        x.withUnsafeBufferPointer(as: T.self) { px in
        contextValues.withUnsafeBufferPointer(as: T.self) { pc in
        out.withUnsafeMutableBufferPointer(as: T.self) { po in
            Parallel.forEach(chunks) { chunk in
                let start = chunk * Self.chunkRows, n = Swift.min(Self.chunkRows, rows - start)
                // The input in degree order: context (degree 0), then the dimensions by position.
                var input = [T](repeating: 0, count: n * width)
                for r in 0..<n {
                    for j in 0..<c { input[r * width + j] = pc[(start + r) * c + j] }
                    for (position, dimension) in variableOrder.enumerated() { input[r * width + c + position] = px[(start + r) * d + dimension] }
                }
                var previous = input, lda = width
                for (l, layer) in layout.hidden.enumerated() {
                    let size = layout.hiddenSizes[l]
                    // evaluate writes every unit.
                    let hidden = previous.withUnsafeBufferPointer { a in
                        [T](unsafeUninitializedCapacity: n * size) { h, initialized in
                            layer.evaluate(a: a.baseAddress!, lda: lda, n: n, into: h.baseAddress!, ldc: size, activation: activation)
                            initialized = n * size
                        }
                    }
                    (previous, lda) = (hidden, size)
                }
                let target = po.baseAddress! + start * outputs
                previous.withUnsafeBufferPointer { a in
                    layout.output.evaluate(a: a.baseAddress!, lda: lda, n: n, into: target, ldc: outputs)
                }
                if let skip = layout.skip {
                    input.withUnsafeBufferPointer { a in
                        skip.accumulate(a: a.baseAddress! + c, lda: width, n: n, into: target, ldc: outputs)
                    }
                }
            }
        }
        }
        }
        return out
    }
}
