/// The matrix product op(a)·op(b) over the last two dimensions, where op(x) is xᵀ when the
/// corresponding flag is set; leading (batch) dimensions broadcast.
///
/// Both operands need rank ≥ 2. Transposed operands go straight to the GEMM kernel (no copy).
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
    linear(x, weight: weight, mask: nil, bias: bias, blocks: nil)
}

/// Output units `outputs` of a dense layer that read only the first `inputs` input features.
package struct LinearBlock: Sendable, Equatable {
    package var outputs: Range<Int>
    package var inputs: Int
    package init(outputs: Range<Int>, inputs: Int) {
        self.outputs = outputs
        self.inputs = inputs
    }
}

/// The factors M of a masked dense layer's weight [out, in] (see
/// ``linear(_:weight:mask:bias:blocks:activation:maskedWeight:)``).
package enum WeightMask: Sendable {
    /// Any factors: a tensor of the weight's shape and dtype.
    case elementwise(Tensor)
    /// M[i, j] = `scale` for j < `reach[i]`, else 0: each output unit reads a prefix of the
    /// inputs, as in a MADE layer whose units are sorted by degree. Stored as one count per
    /// output instead of a weight-sized tensor.
    case prefix(reach: [Int], scale: Double)

    var isPrefix: Bool {
        if case .prefix = self { true } else { false }
    }

    /// W ⊙ M for a weight [out, in], as a plain tensor (nothing recorded).
    package func applied(to weight: Tensor) -> Tensor {
        switch self {
        case .elementwise(let m): return weight.detached() * m
        case .prefix(let reach, let scale):
            let inFeatures = weight.shape[1]
            func masked<T: TensorScalar>(_: T.Type) -> Tensor {
                let source = weight.pointer(T.self), factor = T(scale)
                return withExtendedLifetime(weight) {
                    Tensor(shape: weight.shape, as: T.self) { out in
                        forEachRows(reach.count, columns: inFeatures) { start, end in
                            for i in start..<end {
                                let r = reach[i]
                                for j in 0..<r { out[i * inFeatures + j] = factor * source[i * inFeatures + j] }
                                for j in r..<inFeatures { out[i * inFeatures + j] = 0 }
                            }
                        }
                    }
                }
            }
            return weight.dtype == .float32 ? masked(Float.self) : masked(Double.self)
        }
    }

    /// G ← G ⊙ M in place, for G [`rows`, `columns`] the gradient of the applied weight W ⊙ M:
    /// the result is the stored weight's gradient.
    package func mask<T: TensorScalar>(gradient g: UnsafeMutablePointer<T>, rows: Int, columns: Int) {
        switch self {
        case .elementwise(let m):
            precondition(m.count == rows * columns && m.dtype == T.dtype,
                         "mask \(m.shape) \(m.dtype) does not fit a gradient [\(rows), \(columns)] of \(T.dtype)")
            let pm = m.pointer(T.self)
            withExtendedLifetime(m) { for i in 0..<(rows * columns) { g[i] *= pm[i] } }
        case .prefix(let reach, let scale):
            precondition(reach.count == rows, "prefix mask of \(reach.count) outputs does not fit a gradient of \(rows) rows")
            let factor = T(scale)
            forEachRows(rows, columns: columns) { start, end in
                for i in start..<end {
                    let r = reach[i]
                    if factor != 1 { for j in 0..<r { g[i * columns + j] *= factor } }
                    (g + i * columns + r).update(repeating: 0, count: columns - r)
                }
            }
        }
    }
}

/// A masked dense layer followed by an activation, y = f(x·(W ⊙ M)ᵀ + b), with the weight's
/// gradient (gᵀx) ⊙ M, for a mask given as elementwise factors or as a prefix per output unit
/// (see ``WeightMask``). W ⊙ M is not kept between the forward and the backward pass, and no
/// separate product is recorded: one weight-sized tensor less per layer for a training step.
///
/// With `blocks`, the weight is zero outside them: output units `block.outputs` see only the
/// first `block.inputs` inputs (the blocks cover the outputs in order). Forward and backward skip
/// the zeros, one GEMM per block: a MADE layer with units sorted by degree has a
/// block-triangular mask, so this does about half the work (Germain et al. 2015).
///
/// ReLU is applied in place on the product and its derivative (1 where y > 0) is applied to the
/// incoming gradient in the same pass that sums the bias's gradient: no activation tensor and no
/// separate operation is recorded. Other activations are recorded as their own operation.
///
/// `maskedWeight`, when given, is W ⊙ M formed by the caller (`mask.applied(to: weight)`), who
/// can keep it while the weight does not change; otherwise the forward pass and the input's
/// gradient each form it.
package func linear(
    _ x: Tensor, weight: Tensor, mask: WeightMask?, bias: Tensor?, blocks: [LinearBlock]? = nil,
    activation: Activation? = nil, maskedWeight: Tensor? = nil
) -> Tensor {
    let fusesActivation = activation == .relu
    let product = maskedLinear(x, weight: weight, mask: mask, maskedWeight: maskedWeight, bias: bias, blocks: blocks,
                               relu: fusesActivation)
    guard let activation, !fusesActivation else { return product }
    return activation(product)
}

private func maskedLinear(
    _ x: Tensor, weight: Tensor, mask: WeightMask?, maskedWeight: Tensor?, bias: Tensor?, blocks: [LinearBlock]?, relu: Bool
) -> Tensor {
    precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
        "linear: input shape \(x.shape) does not fit weight shape \(weight.shape) ([out, in])")
    precondition(x.dtype == weight.dtype, "linear: dtypes differ (\(x.dtype), \(weight.dtype))")
    let (outFeatures, inFeatures) = (weight.shape[0], weight.shape[1])
    if let bias {
        precondition(bias.shape == [outFeatures], "linear: bias shape \(bias.shape) should be [\(outFeatures)]")
    }
    let blocks = blocks ?? [LinearBlock(outputs: 0..<outFeatures, inputs: inFeatures)]
    precondition(blocks.first?.outputs.lowerBound ?? 0 == 0 && blocks.last?.outputs.upperBound ?? 0 == outFeatures
                 && zip(blocks, blocks.dropFirst()).allSatisfy { $0.outputs.upperBound == $1.outputs.lowerBound }
                 && blocks.allSatisfy { $0.inputs >= 0 && $0.inputs <= inFeatures },
                 "linear: blocks \(blocks) do not cover \(outFeatures) outputs in order within \(inFeatures) inputs")
    switch mask {
    case .elementwise(let m)?:
        precondition(m.shape == weight.shape && m.dtype == weight.dtype,
                     "linear: mask \(m.shape) \(m.dtype) does not match weight \(weight.shape) \(weight.dtype)")
    case .prefix(let reach, _)?:
        precondition(reach.count == outFeatures && reach.allSatisfy { $0 >= 0 && $0 <= inFeatures },
                     "linear: prefix mask of \(reach.count) outputs does not fit weight \(weight.shape)")
    case nil: break
    }
    if let maskedWeight {
        precondition(maskedWeight.shape == weight.shape && maskedWeight.dtype == weight.dtype,
                     "linear: masked weight \(maskedWeight.shape) \(maskedWeight.dtype) does not match weight \(weight.shape) \(weight.dtype)")
    }
    /// W ⊙ M as a plain tensor (nothing recorded).
    func effectiveWeight() -> Tensor { maskedWeight?.detached() ?? mask?.applied(to: weight) ?? weight.detached() }
    let rows = x.count / Swift.max(inFeatures, 1)
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    let out = Tensor(uninitializedShape: outShape, dtype: x.dtype)
    let forwardWeight = effectiveWeight()
    func run<T: TensorScalar>(_: T.Type) {
        let px = x.pointer(T.self), pw = forwardWeight.pointer(T.self), py = out.pointer(T.self)
        withExtendedLifetime((x, forwardWeight, bias)) {
            if let bias, rows > 0 {
                let pb = bias.pointer(T.self)
                forEachRows(rows, columns: outFeatures) { start, end in
                    broadcastRow(pb, count: outFeatures, into: py + start * outFeatures, rows: end - start, stride: outFeatures)
                }
            } else {
                forEachRows(rows, columns: outFeatures) { start, end in
                    (py + start * outFeatures).update(repeating: 0, count: (end - start) * outFeatures)
                }
            }
            for block in blocks where block.inputs > 0 && !block.outputs.isEmpty {
                let first = block.outputs.lowerBound
                T.gemm(transA: false, transB: true, m: rows, n: block.outputs.count, k: block.inputs, alpha: 1,
                       a: px, lda: inFeatures, b: pw + first * inFeatures, ldb: inFeatures, beta: 1,
                       c: py + first, ldc: outFeatures)
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
        // Outside the blocks the weight's gradient is zero, and the input's collects the blocks' sums:
        // the widest block writes its columns of gx, the rest accumulate, and only what no block
        // writes is zeroed.
        let gx = needs[0] ? Tensor(uninitializedShape: [rows, inFeatures], dtype: x.dtype) : nil
        let gw = needs[1] ? Tensor(uninitializedShape: [outFeatures, inFeatures], dtype: x.dtype) : nil
        let backwardWeight = needs[0] ? effectiveWeight() : weight
        let active = blocks.filter { $0.inputs > 0 && !$0.outputs.isEmpty }
        let widest = active.indices.max { active[$0].inputs < active[$1].inputs }
        func run<T: TensorScalar>(_: T.Type) {
            let pg = g2.pointer(T.self), px = x.pointer(T.self), pw = backwardWeight.pointer(T.self)
            let pgx = gx?.pointer(T.self), pgw = gw?.pointer(T.self)
            withExtendedLifetime((g2, x, backwardWeight, gx, gw, mask)) {
                if let pgx {
                    let written = widest.map { active[$0].inputs } ?? 0
                    if written < inFeatures {
                        forEachRows(rows, columns: inFeatures) { start, end in
                            for r in start..<end { (pgx + r * inFeatures + written).update(repeating: 0, count: inFeatures - written) }
                        }
                    }
                }
                // A prefix mask zeroes the same entries and more after the products.
                if let pgw, mask?.isPrefix != true {
                    for block in blocks where block.inputs < inFeatures {
                        for o in block.outputs {
                            (pgw + o * inFeatures + block.inputs).update(repeating: 0, count: inFeatures - block.inputs)
                        }
                    }
                }
                let order = widest.map { w in [w] + active.indices.filter { $0 != w } } ?? []
                for (position, index) in order.enumerated() {
                    let block = active[index]
                    let first = block.outputs.lowerBound, count = block.outputs.count
                    if let pgx {   // gx[:, ..<inputs] (+)= g[:, block] · W[block, ..<inputs]
                        T.gemm(transA: false, transB: false, m: rows, n: block.inputs, k: count, alpha: 1,
                               a: pg + first, lda: outFeatures, b: pw + first * inFeatures, ldb: inFeatures,
                               beta: position == 0 ? 0 : 1, c: pgx, ldc: inFeatures)
                    }
                    if let pgw {   // gW[block, ..<inputs] = g[:, block]ᵀ · x[:, ..<inputs]
                        T.gemm(transA: true, transB: false, m: count, n: block.inputs, k: rows, alpha: 1,
                               a: pg + first, lda: outFeatures, b: px, ldb: inFeatures, beta: 0,
                               c: pgw + first * inFeatures, ldc: inFeatures)
                    }
                }
                if let pgw { mask?.mask(gradient: pgw, rows: outFeatures, columns: inFeatures) }
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
private func accumulate<T: TensorScalar>(_ x: UnsafePointer<T>, into sums: UnsafeMutablePointer<T>, count: Int) {
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
