/// The matrix product op(a)·op(b) over the last two dimensions, where op(x) is xᵀ when the
/// corresponding flag is set; leading (batch) dimensions broadcast.
///
/// Both operands need rank ≥ 2. Transposed operands go straight to the GEMM kernel (no copy).
///
/// ```swift
/// let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
/// let b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
/// let c = matmul(a, b)                              // [[4, 5], [10, 11]]
/// let g = matmul(a, a, transposeB: true)            // a·aᵀ, shape [2, 2]
/// ```
/// - Parameters:
///   - a: shape [..., m, k] (or [..., k, m] when `transposeA`).
///   - b: shape [..., k, n] (or [..., n, k] when `transposeB`), in `a`'s dtype.
///   - transposeA: multiply by aᵀ (of the last two dimensions).
///   - transposeB: multiply by bᵀ (of the last two dimensions).
/// - Returns: shape [..., m, n], the batch dimensions broadcast.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2 operands, not \(a.shape) and \(b.shape)")
    precondition(a.dtype == b.dtype, "matmul: dtypes differ (\(a.dtype), \(b.dtype))")
    let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    let (m, k) = transposeA ? (ac, ar) : (ar, ac)
    let (k2, n) = transposeB ? (bc, br) : (br, bc)
    precondition(k == k2, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
    let shapeA = a.shape
    let out: Tensor
    if batchB.isEmpty && !transposeA {
        // Fold a's batch into its rows: one GEMM.
        let rows = batchA.reduce(1, *) * m
        out = gemm(a.detached(), b.detached(), m: rows, n: n, k: k, transposeA: false, transposeB: transposeB,
                   batch: 1, strideA: 0, strideB: 0).reshaped(to: batchA + [m, n])
    } else {
        let batch = broadcastShape(batchA, batchB)
        let ea = a.detached().broadcast(to: batch + [ar, ac])
        let eb = b.detached().broadcast(to: batch + [br, bc])
        out = gemm(ea, eb, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                   batch: batch.reduce(1, *), strideA: ar * ac, strideB: br * bc).reshaped(to: batch + [m, n])
    }
    let folded = batchB.isEmpty && !transposeA && a.rank > 2
    return Tensor.record("matmul", out, [a, b]) { g, needs in
        // C = op(A)·op(B): dA and dB are again products, chosen so no operand is transposed in
        // memory. When A's batch was folded into its rows, the backward pass folds it too.
        let (a, g) = folded ? (a.reshaped(to: [-1, k]), g.reshaped(to: [-1, n])) : (a, g)
        let ga: Tensor? = !needs[0] ? nil : (transposeA
            ? matmul(b, g, transposeA: transposeB, transposeB: true)
            : matmul(g, b, transposeA: false, transposeB: !transposeB))
        let gb: Tensor? = !needs[1] ? nil : (transposeB
            ? matmul(g, a, transposeA: true, transposeB: transposeA)
            : matmul(a, g, transposeA: !transposeA, transposeB: false))
        return [ga.map { reduceBatch($0, to: shapeA) }, gb.map { reduceBatch($0, to: b.shape) }]
    }
}

/// Sums a batched matrix gradient over the batch dimensions an operand was broadcast along.
private func reduceBatch(_ g: Tensor, to shape: [Int]) -> Tensor {
    if g.shape == shape { return g }
    if g.count == shape.reduce(1, *) { return g.reshaped(to: shape) }
    return g.sum(toShape: shape)
}

/// Runs `batch` GEMMs over contiguous operands (no recording).
private func gemm(
    _ a: Tensor, _ b: Tensor, m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
    batch: Int, strideA: Int, strideB: Int
) -> Tensor {
    let out = Tensor(uninitializedShape: [batch * m, n], dtype: a.dtype)
    let lda = transposeA ? m : k, ldb = transposeB ? k : n
    func run<T: TensorScalar>(_: T.Type) {
        let pa = a.pointer(T.self), pb = b.pointer(T.self), pc = out.pointer(T.self)
        withExtendedLifetime((a, b)) {
            for i in 0..<batch {
                T.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: 1,
                       a: pa + i * strideA, lda: lda, b: pb + i * strideB, ldb: ldb, beta: 0,
                       c: pc + i * m * n, ldc: n)
            }
        }
    }
    switch a.dtype {
    case .float32: run(Float.self)
    case .float64: run(Double.self)
    }
    return out
}

/// The affine map of a dense layer, y = x·Wᵀ + b, as one fused operation.
///
/// - Parameters:
///   - x: inputs of shape [..., in].
///   - weight: shape [out, in] (PyTorch's `nn.Linear` layout, so weights exchange unchanged).
///   - bias: shape [out], or `nil`.
/// - Returns: shape [..., out].
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    linear(x, weight: weight, bias: bias, activation: nil)
}

/// A dense layer followed by an activation, y = f(x·Wᵀ + b), as one recorded operation when f
/// is ReLU: it is applied in place on the product, and its derivative (1 where y > 0) is applied
/// to the incoming gradient in the same pass that sums the bias's gradient, so no activation
/// tensor and no separate operation is recorded. Other activations are recorded as their own
/// operation.
package func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Activation?) -> Tensor {
    let fusesActivation = activation == .relu
    let product = denseLinear(x, weight: weight, bias: bias, relu: fusesActivation)
    guard let activation, !fusesActivation else { return product }
    return activation(product)
}

private func denseLinear(_ x: Tensor, weight: Tensor, bias: Tensor?, relu: Bool) -> Tensor {
    precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
        "linear: input shape \(x.shape) does not fit weight shape \(weight.shape) ([out, in])")
    precondition(x.dtype == weight.dtype, "linear: dtypes differ (\(x.dtype), \(weight.dtype))")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    if let bias {
        precondition(bias.shape == [outFeatures], "linear: bias shape \(bias.shape) should be [\(outFeatures)]")
    }
    let rows = x.count / Swift.max(inFeatures, 1)
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
    let weightValue = weight.detached()
    func run<T: TensorScalar>(_: T.Type) {
        let px = x.pointer(T.self), pw = weightValue.pointer(T.self), py = out.pointer(T.self)
        withExtendedLifetime((x, weightValue, bias)) {
            forEachRows(rows, columns: outFeatures) { start, end in
                if let bias {
                    broadcastRow(bias.pointer(T.self), count: outFeatures, into: py + start * outFeatures, rows: end - start, stride: outFeatures)
                } else {
                    (py + start * outFeatures).update(repeating: 0, count: (end - start) * outFeatures)
                }
            }
            if inFeatures > 0 && outFeatures > 0 {
                T.gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, alpha: 1,
                       a: px, lda: inFeatures, b: pw, ldb: inFeatures, beta: 1, c: py, ldc: outFeatures)
            }
            if relu {
                forEachRows(rows, columns: outFeatures) { start, end in
                    rectify(py + start * outFeatures, count: (end - start) * outFeatures)
                }
            }
        }
    }
    switch x.dtype {
    case .float32: run(Float.self)
    case .float64: run(Double.self)
    }
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    let inputShape = x.shape
    return Tensor.record("linear", out, inputs) { g, needs in
        let needsBias = needs.count > 2 && needs[2]
        let (g2, gb) = outputGradient(g.reshaped(to: [rows, outFeatures]), reluOutput: relu ? out : nil, summing: needsBias)
        let gx = needs[0] ? Tensor(uninitializedShape: [rows, inFeatures], dtype: x.dtype) : nil
        let gw = needs[1] ? Tensor(uninitializedShape: [outFeatures, inFeatures], dtype: x.dtype) : nil
        func run<T: TensorScalar>(_: T.Type) {
            let pg = g2.pointer(T.self), px = x.pointer(T.self), pw = weightValue.pointer(T.self)
            withExtendedLifetime((g2, x, weightValue, gx, gw)) {
                // An empty inner dimension leaves a zero gradient.
                if let pgx = gx?.pointer(T.self), outFeatures == 0 { pgx.update(repeating: 0, count: rows * inFeatures) }
                if let pgw = gw?.pointer(T.self), rows == 0 { pgw.update(repeating: 0, count: outFeatures * inFeatures) }
                if let pgx = gx?.pointer(T.self), outFeatures > 0 {   // gx = g · W
                    T.gemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures, alpha: 1,
                           a: pg, lda: outFeatures, b: pw, ldb: inFeatures, beta: 0, c: pgx, ldc: inFeatures)
                }
                if let pgw = gw?.pointer(T.self), rows > 0 {   // gW = gᵀ · x
                    T.gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows, alpha: 1,
                           a: pg, lda: outFeatures, b: px, ldb: inFeatures, beta: 0, c: pgw, ldc: inFeatures)
                }
            }
        }
        switch x.dtype {
        case .float32: run(Float.self)
        case .float64: run(Double.self)
        }
        return [gx?.reshaped(to: inputShape), gw, gb]
    }
}

/// The gradient reaching a dense layer's product from `g` [rows, out], masked by ReLU's
/// derivative (1 where the layer's output `reluOutput` > 0) when the layer ends in one, and its
/// column sums (the bias's gradient) when `summing`: one pass over `g`, split over column ranges
/// on the pool's threads for large layers.
private func outputGradient(_ g: Tensor, reluOutput: Tensor?, summing: Bool) -> (Tensor, Tensor?) {
    guard reluOutput != nil || summing else { return (g, nil) }
    let (rows, columns) = (g.shape[0], g.shape[1])
    let masked = reluOutput == nil ? g : Tensor(uninitializedShape: g.shape, dtype: g.dtype)
    let sums = summing ? Tensor(uninitializedShape: [columns], dtype: g.dtype) : nil
    func run<T: TensorScalar>(_: T.Type) {
        let pg = g.pointer(T.self), pm = masked.pointer(T.self)
        let py = reluOutput?.pointer(T.self), ps = sums?.pointer(T.self)
        withExtendedLifetime((g, masked, reluOutput, sums)) {
            // Column ranges of at least 64 elements, so each thread writes its own cache lines.
            let parts = rows * columns >= 1 << 17 && Parallel.workers > 1
                ? Swift.min(Parallel.workers, Swift.max(1, columns / 64)) : 1
            let width = (columns + parts - 1) / parts
            Parallel.forEach(parts) { part in
                let first = part * width, end = Swift.min(columns, first + width)
                guard first < end else { return }
                if let ps { (ps + first).update(repeating: 0, count: end - first) }
                for r in 0..<rows {
                    let offset = r * columns + first
                    if let py { keepPositive(pg + offset, where: py + offset, into: pm + offset, count: end - first) }
                    if let ps { accumulate(UnsafePointer(pm) + offset, into: ps + first, count: end - first) }
                }
            }
        }
    }
    switch g.dtype {
    case .float32: run(Float.self)
    case .float64: run(Double.self)
    }
    return (masked, sums)
}

/// x ← max(x, 0) in place, NaN kept; Float runs eight lanes at a time without branches
/// (generic `SIMD8<T>` selects are not vectorised, and a scalar select becomes a branch).
@inlinable
func rectify<T: TensorScalar>(_ x: UnsafeMutablePointer<T>, count: Int) {
    var i = 0
    if T.self == Float.self {
        let raw = UnsafeMutableRawPointer(x)
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            raw.storeBytes(of: v.replacing(with: 0, where: v .<= 0), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
    }
    for j in i..<count where x[j] <= 0 { x[j] = 0 }
}

/// Copies `row` (`count` values) into each of `rows` rows of `out`, `stride` apart: a layer's bias
/// under the product that then accumulates onto it. An element loop rather than a copy call per
/// row: a small layer's rows are a few dozen values, where the call costs more than the copy.
@inlinable
package func broadcastRow<T>(_ row: UnsafePointer<T>, count: Int, into out: UnsafeMutablePointer<T>, rows: Int, stride: Int) {
    for r in 0..<rows {
        let target = out + r * stride
        for j in 0..<count { target[j] = row[j] }
    }
}

/// out = g where y > 0, else 0: ReLU's derivative applied to a gradient (vectorised for Float
/// as in ``rectify(_:count:)``). `out` may be `g` itself.
func keepPositive<T: TensorScalar>(
    _ g: UnsafePointer<T>, where y: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
) {
    var i = 0
    if T.self == Float.self {
        let (rg, ry, ro) = (UnsafeRawPointer(g), UnsafeRawPointer(y), UnsafeMutableRawPointer(out))
        while i + 8 <= count {
            let gv = rg.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            let yv = ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            ro.storeBytes(of: SIMD8<Float>().replacing(with: gv, where: yv .> 0), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
    }
    for j in i..<count { out[j] = y[j] > 0 ? g[j] : 0 }
}

/// sums += x.
@inlinable
package func accumulate<T: TensorScalar>(_ x: UnsafePointer<T>, into sums: UnsafeMutablePointer<T>, count: Int) {
    var i = 0
    if T.self == Float.self {
        let (rx, rs) = (UnsafeRawPointer(x), UnsafeMutableRawPointer(sums))
        while i + 8 <= count {
            let sum = rs.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                + rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            rs.storeBytes(of: sum, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
    }
    for j in i..<count { sums[j] += x[j] }
}

/// Runs `body(start, end)` over row ranges of a row-major matrix with `columns` columns, on the
/// pool's threads once the matrix is large enough to pay for them (from 2¹⁷ elements: below that
/// the fork and join cost more than a copy of the matrix, as in small MADE layers).
private func forEachRows(_ rows: Int, columns: Int, _ body: (Int, Int) -> Void) {
    Parallel.chunks(rows, threshold: Swift.max(1, (1 << 17) / Swift.max(columns, 1)), body)
}
