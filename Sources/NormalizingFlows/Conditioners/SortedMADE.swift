import Tensors

/// A MADE's applied weights with the input columns in degree order (context, then the dimensions
/// by position). Hidden units are already in ascending degree (``MaskedAutoregressiveNetwork/hiddenDegrees(size:inputs:context:)``),
/// so the units of degree ≤ g are a prefix of each layer.
struct SortedMADE<T: TensorScalar> {
    /// One dense layer: its weight [units, columns] with the columns in sorted order, stored
    /// transposed ([columns, units]) so that products read it row by row, and a bias per unit.
    struct Layer {
        var transposedWeight: [T]
        var bias: [T]

        /// The weights, Wᵀ, packed once for the products of every chunk of rows, each unit's
        /// column reaching down only as far as the unit reads.
        var packed: PackedGEMMOperand<T>

        /// out[:, rows − columnOffset] = bias + A[:, ..<seen] · W[rows, ..<seen]ᵀ for the n rows of A.
        func apply(rows: Range<Int>, seen: Int, to a: [T], lda: Int, n: Int, into out: inout [T], ldc: Int, columnOffset: Int = 0) {
            a.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { o in
                    let target = o.baseAddress! + columnOffset
                    copyBias(rows, n: n, into: target, ldc: ldc)
                    accumulate(rows: rows, seen: seen, a: a.baseAddress!, lda: lda, n: n, into: target, ldc: ldc)
                }
            }
        }

        /// out[:, units] = activation(bias + A · Wᵀ) for the n rows of A; a ReLU is applied as
        /// the product's tiles are stored.
        func evaluate(a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int, activation: Activation? = nil) {
            bias.withUnsafeBufferPointer { b in
                packed.multiply(m: n, a: a, lda: lda, bias: b.baseAddress!, c: out, ldc: ldc, rectify: activation == .relu)
            }
            if let activation, activation != .relu {
                activation.apply(inPlace: out, rows: n, columns: bias.count, stride: ldc)
            }
        }

        /// out[:, units] += A · Wᵀ for the n rows of A.
        func accumulate(a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
            packed.multiply(m: n, a: a, lda: lda, beta: 1, c: out, ldc: ldc)
        }

        private func copyBias(_ rows: Range<Int>, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
            bias.withUnsafeBufferPointer { b in
                broadcastRow(b.baseAddress! + rows.lowerBound, count: rows.count, into: out + rows.lowerBound, rows: n, stride: ldc)
            }
        }

        /// out[:, rows − columnOffset] += A[:, ..<seen] · W[rows, ..<seen]ᵀ.
        func accumulate(rows: Range<Int>, seen: Int, a: UnsafePointer<T>, lda: Int, n: Int, into out: inout [T], ldc: Int, columnOffset: Int = 0) {
            out.withUnsafeMutableBufferPointer { o in
                accumulate(rows: rows, seen: seen, a: a, lda: lda, n: n, into: o.baseAddress! + columnOffset, ldc: ldc)
            }
        }

        func accumulate(rows: Range<Int>, seen: Int, a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
            guard seen > 0, !rows.isEmpty, n > 0 else { return }
            transposedWeight.withUnsafeBufferPointer { w in
                T.gemm(transA: false, transB: false, m: n, n: rows.count, k: seen, alpha: 1,
                       a: a, lda: lda, b: w.baseAddress! + rows.lowerBound, ldb: bias.count, beta: 1,
                       c: out + rows.lowerBound, ldc: ldc)
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
        let d = network.variableOrder.count, c = network.contextSize
        // Sorted column j of the input ← original column: context first, then dimensions by position.
        var columns = (0..<c).map { d + $0 } + network.variableOrder
        let applied = network.weights.indices.map { network.appliedWeight($0) }
        let biases = network.biases.map(\.value)
        for (l, size) in network.hiddenSizes.enumerated() {
            let degrees = MaskedAutoregressiveNetwork.hiddenDegrees(size: size, inputs: d, context: c > 0)
            precondition(degrees == degrees.sorted(), "sequential inversion needs hidden units in ascending degree")
            // A unit of degree g reads the context and the first g dimensions, or the previous
            // layer's units of degree ≤ g.
            let previousEnd = l == 0 ? [] : unitEnd[l - 1]
            hidden.append(Self.sorted(applied[l], bias: biases[l], columns: columns,
                                      reach: degrees.map { l == 0 ? c + $0 : previousEnd[$0] }))
            hiddenSizes.append(size)
            unitEnd.append((0...d).map { g in degrees.filter { $0 <= g }.count })
            columns = Array(0..<size)
        }
        let outputs = d * network.outputsPerDimension
        // The outputs of the dimension at position t (1…D) read the last layer's units of degree
        // < t, and (skipping) the first t − 1 dimensions.
        var position = [Int](repeating: 0, count: d)
        for (t, dimension) in network.variableOrder.enumerated() { position[dimension] = t + 1 }
        let outputPosition = (0..<outputs).map { position[$0 / network.outputsPerDimension] }
        let lastEnd = unitEnd[unitEnd.count - 1]
        output = Self.sorted(applied[applied.count - 1], bias: biases[biases.count - 1], columns: columns,
                             reach: outputPosition.map { lastEnd[$0 - 1] })
        if let skipWeight = network.skipWeight, let skipMask = network.skipMask {
            skip = Self.sorted((skipWeight.value * skipMask).detached(), bias: .zeros([outputs], dtype: T.dtype), columns: network.variableOrder,
                               reach: outputPosition.map { $0 - 1 })
        }
    }

    /// The layer with weight [units, fan-in] whose sorted column k is the original column
    /// `columns[k]`, unit u reading the first `reach[u]` sorted columns.
    private static func sorted(_ weight: Tensor, bias: Tensor, columns: [Int], reach: [Int]) -> Layer {
        let (units, fanIn) = (weight.shape[0], weight.shape[1])
        var transposed = [T](repeating: 0, count: columns.count * units)
        weight.withUnsafeBufferPointer(as: T.self) { w in
            transposed.withUnsafeMutableBufferPointer { t in
                for (k, j) in columns.enumerated() {
                    for u in 0..<units { t[k * units + u] = w[u * fanIn + j] }
                }
            }
        }
        let packed = transposed.withUnsafeBufferPointer { t in
            PackedGEMMOperand(transB: false, k: columns.count, n: units, b: t.baseAddress!, ldb: units, columnDepths: reach)
        }
        return Layer(transposedWeight: transposed, bias: bias.withUnsafeBufferPointer(as: T.self) { Array($0) }, packed: packed)
    }
}
