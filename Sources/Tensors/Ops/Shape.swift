/// Integer indices with a shape, as produced by ``searchSorted(_:_:right:)`` or ``Tensor/argsort(alongAxis:descending:)``
/// and consumed by ``Tensor/gathering(alongAxis:indices:)``.
public struct IndexTensor: Sendable, Equatable {
    /// The size of each dimension, outermost first.
    public var shape: [Int]
    /// The indices in row-major order.
    public var indices: [Int]

    /// Indices of the given shape.
    /// - Parameters:
    ///   - shape: the size of each dimension.
    ///   - indices: the indices in row-major order; their number must be the product of `shape`.
    public init(shape: [Int], indices: [Int]) {
        precondition(shape.reduce(1, *) == indices.count, "\(indices.count) indices do not fill shape \(shape)")
        self.shape = shape
        self.indices = indices
    }
}

extension Tensor {
    // MARK: Reshaping (shares the buffer)

    /// The same elements with a new shape; one dimension may be −1 (inferred).
    public func reshaped(to newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            newShape[unknown] = count / known
        }
        precondition(
            newShape.allSatisfy { $0 >= 0 } && newShape.reduce(1, *) == count,
            "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if newShape == shape { return self }
        let out = Tensor(storage: storage, shape: newShape)
        let inputShape = shape
        return Tensor.record("reshape", out, [self]) { g, _ in [g.reshaped(to: inputShape)] }
    }

    /// All dimensions merged into one.
    public func flattened() -> Tensor { reshaped(to: [count]) }

    /// A new dimension of size 1 inserted at `axis` (which may be `rank`).
    public func unsqueezed(axis: Int) -> Tensor {
        let a = normalizedAxis(axis, rank: rank + 1)
        var s = shape
        s.insert(1, at: a)
        return reshaped(to: s)
    }

    /// The dimension `axis`, which must have size 1, removed.
    public func squeezed(axis: Int) -> Tensor {
        let a = normalizedAxis(axis)
        precondition(shape[a] == 1, "cannot squeeze axis \(axis) of size \(shape[a]) in shape \(shape)")
        var s = shape
        s.remove(at: a)
        return reshaped(to: s)
    }

    // MARK: Permutation (copies)

    /// Dimensions reordered: result dimension i is input dimension `axes[i]`.
    public func permuted(_ axes: [Int]) -> Tensor {
        let axes = axes.map { normalizedAxis($0) }
        precondition(axes.sorted() == Array(0..<rank), "\(axes) is not a permutation of the axes of \(shape)")
        if axes == Array(0..<rank) { return self }
        let out: Tensor
        switch dtype {
        case .float32: out = permuteCopy(axes, Float.self)
        case .float64: out = permuteCopy(axes, Double.self)
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() { inverse[a] = i }
        return Tensor.record("permute", out, [self]) { g, _ in [g.permuted(inverse)] }
    }

    /// The last two dimensions swapped (the matrix transpose for rank 2).
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transpose needs rank ≥ 2, not shape \(shape)")
        var axes = Array(0..<rank)
        axes.swapAt(rank - 1, rank - 2)
        return permuted(axes)
    }

    /// Dimensions `a` and `b` swapped.
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        var axes = Array(0..<rank)
        axes.swapAt(normalizedAxis(a), normalizedAxis(b))
        return permuted(axes)
    }

    private func permuteCopy<T: TensorScalar>(_ axes: [Int], _: T.Type) -> Tensor {
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let permutedStrides = axes.map { inStrides[$0] }
        let src = pointer(T.self), dst = out.pointer(T.self)
        let n = outShape.last ?? 1, innerStride = permutedStrides.last ?? 1
        let outer = outShape.dropLast().reduce(1, *)
        var index = [Int](repeating: 0, count: Swift.max(rank - 1, 0))
        var offset = 0
        withExtendedLifetime(self) {
            for row in 0..<outer {
                let d = dst + row * n
                for i in 0..<n { d[i] = src[offset + i * innerStride] }
                var k = rank - 2
                while k >= 0 {
                    index[k] += 1
                    offset += permutedStrides[k]
                    if index[k] < outShape[k] { break }
                    offset -= permutedStrides[k] * outShape[k]
                    index[k] = 0
                    k -= 1
                }
            }
        }
        return out
    }

    // MARK: Slicing and joining (copies)

    /// The elements whose index along `axis` lies in `range`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis],
            "slice \(range) out of bounds for axis \(axis) of shape \(shape)")
        if range.count == shape[axis] { return self }
        let (outer, size, inner) = split(at: axis)
        var outShape = shape
        outShape[axis] = range.count
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        let bytes = dtype.byteSize
        withExtendedLifetime(self) {
            copyBlocks(outer, bytes: range.count * inner * bytes, from: storage.base + range.lowerBound * inner * bytes,
                       stride: size * inner * bytes, to: out.storage.base, stride: range.count * inner * bytes)
        }
        let inputShape = shape
        return Tensor.record("slice", out, [self]) { g, _ in
            [g.padded(alongAxis: axis, before: range.lowerBound, toSize: inputShape[axis])]
        }
    }

    /// The sub-tensor at `index` along `axis`, with that axis removed.
    public func select(alongAxis axis: Int, index: Int) -> Tensor {
        let axis = normalizedAxis(axis)
        let i = index < 0 ? index + shape[axis] : index
        return slice(alongAxis: axis, i..<(i + 1)).squeezed(axis: axis)
    }

    /// Rows `range` along the first axis: PyTorch's `x[1:3]` is `x[1..<3]`, `x[2:]` is `x[2...]`,
    /// `x[:2]` is `x[..<2]`.
    public subscript<R: RangeExpression<Int>>(range: R) -> Tensor {
        slice(alongAxis: 0, bounds(of: range, alongAxis: 0))
    }

    /// The sub-tensor at `index` along the first axis (negative counts from the back), with that
    /// axis removed: PyTorch's `x[0]`.
    public subscript(index: Int) -> Tensor { select(alongAxis: 0, index: index) }

    // Two indices, for the first two axes of a tensor of rank ≥ 2 (later axes are kept whole),
    // as PyTorch's `x[rows, columns]`: an integer removes its axis, a range keeps it.

    /// Element or row `(row, column)`: PyTorch's `x[0, 1]` (a scalar for a matrix).
    public subscript(row: Int, column: Int) -> Tensor {
        select(alongAxis: 0, index: row).select(alongAxis: 0, index: column)
    }

    /// Column `column` of rows `rows`: PyTorch's `x[1:3, 0]` is `x[1..<3, 0]`, `x[0:, 0]` is `x[0..., 0]`.
    public subscript<R: RangeExpression<Int>>(rows: R, column: Int) -> Tensor {
        self[rows].select(alongAxis: 1, index: column)
    }

    /// Column `column` of every row: PyTorch's `x[:, 0]` is `x[..., 0]`.
    public subscript(rows: UnboundedRange, column: Int) -> Tensor {
        select(alongAxis: 1, index: column)
    }

    /// Columns `columns` of row `row`: PyTorch's `x[0, 1:3]` is `x[0, 1..<3]`.
    public subscript<C: RangeExpression<Int>>(row: Int, columns: C) -> Tensor {
        self[row][columns]
    }

    /// Columns `columns` of rows `rows`: PyTorch's `x[1:3, 0:2]` is `x[1..<3, 0..<2]`.
    public subscript<R: RangeExpression<Int>, C: RangeExpression<Int>>(rows: R, columns: C) -> Tensor {
        self[rows].slice(alongAxis: 1, bounds(of: columns, alongAxis: 1))
    }

    /// Columns `columns` of every row: PyTorch's `x[:, 1:3]` is `x[..., 1..<3]`.
    public subscript<C: RangeExpression<Int>>(rows: UnboundedRange, columns: C) -> Tensor {
        slice(alongAxis: 1, bounds(of: columns, alongAxis: 1))
    }

    /// The indices `range` stands for along `axis`, checked: a partial range (`2...`, `..<3`)
    /// extends to that end of the axis. Negative bounds are out of range (no Python-style wrap).
    private func bounds<R: RangeExpression<Int>>(of range: R, alongAxis axis: Int) -> Range<Int> {
        precondition(axis < rank, "cannot index axis \(axis) of a tensor of shape \(shape)")
        let size = shape[axis]
        let indices = range.relative(to: 0..<Int.max)
        let upper = indices.upperBound == Int.max ? size : indices.upperBound
        precondition(indices.lowerBound >= 0 && indices.lowerBound <= upper && upper <= size,
            "range \(range) out of bounds for axis \(axis) of shape \(shape)")
        return indices.lowerBound..<upper
    }

    /// Zeros around this tensor along `axis`: `before` zeros first, then zeros up to `size`.
    func padded(alongAxis axis: Int, before: Int, toSize size: Int) -> Tensor {
        let (outer, count, inner) = split(at: axis)
        var outShape = shape
        outShape[axis] = size
        let out = Tensor.zeros(outShape, dtype: dtype)
        let bytes = dtype.byteSize
        withExtendedLifetime(self) {
            copyBlocks(outer, bytes: count * inner * bytes, from: storage.base, stride: count * inner * bytes,
                       to: out.storage.base + before * inner * bytes, stride: size * inner * bytes)
        }
        return Tensor.record("padded", out, [self]) { g, _ in [g.slice(alongAxis: axis, before..<(before + count))] }
    }

    /// Tensors joined along an existing axis; other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        let axis = first.normalizedAxis(axis)
        for t in tensors {
            precondition(t.dtype == first.dtype, "concatenate: dtypes differ (\(first.dtype), \(t.dtype))")
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == axis || t.shape[$0] == first.shape[$0] },
                "concatenate along axis \(axis): shapes \(tensors.map(\.shape)) do not match")
        }
        if tensors.count == 1 { return first }
        var outShape = first.shape
        outShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let out = Tensor(uninitializedShape: outShape, dtype: first.dtype)
        let (outer, _, inner) = out.split(at: axis)
        let bytes = first.dtype.byteSize
        var start = 0
        for t in tensors {
            let size = t.shape[axis]
            withExtendedLifetime(t) {
                copyBlocks(outer, bytes: size * inner * bytes, from: t.storage.base, stride: size * inner * bytes,
                           to: out.storage.base + start * inner * bytes, stride: outShape[axis] * inner * bytes)
            }
            start += size
        }
        let sizes = tensors.map { $0.shape[axis] }
        return record("concatenate", out, tensors) { g, needs in
            var offset = 0
            return zip(sizes, needs).map { size, need in
                defer { offset += size }
                return need ? g.slice(alongAxis: axis, offset..<(offset + size)) : nil
            }
        }
    }

    /// Tensors of equal shape joined along a new axis.
    public static func stack(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "stack needs at least one tensor")
        precondition(tensors.allSatisfy { $0.shape == tensors[0].shape },
            "stack: shapes \(tensors.map(\.shape)) differ")
        return concatenate(tensors.map { $0.unsqueezed(axis: axis) }, alongAxis: axis)
    }

    // MARK: Indexing

    /// The slices at `indices` along `axis`, in that order (indices may repeat). The backward pass
    /// adds each slice's gradient back at its index.
    public func indexSelect(alongAxis axis: Int, _ indices: [Int]) -> Tensor {
        let axis = normalizedAxis(axis)
        let (outer, size, inner) = split(at: axis)
        for i in indices { precondition(i >= 0 && i < size, "index \(i) out of range for axis \(axis) of shape \(shape)") }
        var outShape = shape
        outShape[axis] = indices.count
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        withExtendedLifetime(self) {
            switch dtype {
            case .float32: Self.moveSlices(pointer(Float.self), out.pointer(Float.self), outer: outer, size: size, inner: inner, indices: indices, select: true)
            case .float64: Self.moveSlices(pointer(Double.self), out.pointer(Double.self), outer: outer, size: size, inner: inner, indices: indices, select: true)
            }
        }
        let inputShape = shape
        return Tensor.record("indexSelect", out, [self]) { g, _ in
            let grad = Tensor.zeros(inputShape, dtype: g.dtype)
            withExtendedLifetime(g) {
                switch g.dtype {
                case .float32: Self.moveSlices(g.pointer(Float.self), grad.pointer(Float.self), outer: outer, size: size, inner: inner, indices: indices, select: false)
                case .float64: Self.moveSlices(g.pointer(Double.self), grad.pointer(Double.self), outer: outer, size: size, inner: inner, indices: indices, select: false)
                }
            }
            return [grad]
        }
    }

    /// With [outer, size, inner] the layout of the full tensor and [outer, indices.count, inner]
    /// that of the selection: `select` copies slice `indices[j]` of `x` to slice j of `y`;
    /// otherwise slice j of `x` is added to slice `indices[j]` of `y`.
    private static func moveSlices<T: TensorScalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, outer: Int, size: Int, inner: Int,
                                                   indices: [Int], select: Bool) {
        let count = indices.count
        indices.withUnsafeBufferPointer { indices in
            if inner == 1 {
                // Columns of a matrix (a permutation of features): one element per index.
                for o in 0..<outer {
                    let whole = x + o * size, selected = o * count
                    if select {
                        for (j, i) in indices.enumerated() { y[selected + j] = whole[i] }
                    } else {
                        for (j, i) in indices.enumerated() { y[o * size + i] += x[selected + j] }
                    }
                }
                return
            }
            for o in 0..<outer {
                for (j, i) in indices.enumerated() {
                    let whole = (o * size + i) * inner, selected = (o * count + j) * inner
                    if select {
                        for k in 0..<inner { y[selected + k] = x[whole + k] }
                    } else {
                        for k in 0..<inner { y[whole + k] += x[selected + k] }
                    }
                }
            }
        }
    }

    /// PyTorch's `gather`: out[…, j, …] = self[…, indices[…, j, …], …] along `axis`; `indices`
    /// has this tensor's rank and its sizes on the other axes.
    public func gathering(alongAxis axis: Int, indices: IndexTensor) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(indices.shape.count == rank
            && (0..<rank).allSatisfy { $0 == axis || indices.shape[$0] == shape[$0] },
            "gather along axis \(axis): index shape \(indices.shape) does not fit tensor shape \(shape)")
        let size = shape[axis]
        let idxInner = indices.shape[(axis + 1)...].reduce(1, *)
        let idxSize = indices.shape[axis]
        var positions = [Int](repeating: 0, count: indices.indices.count)
        for (flat, i) in indices.indices.enumerated() {
            precondition(i >= 0 && i < size, "gather index \(i) out of range for axis \(axis) of shape \(shape)")
            let k = flat % idxInner
            let o = flat / (idxInner * idxSize)
            positions[flat] = (o * size + i) * idxInner + k
        }
        return gatherFlat(positions, shape: indices.shape, name: "gather")
    }

    /// Elements at flat `positions`, shaped `shape`; the backward pass scatter-adds.
    func gatherFlat(_ positions: [Int], shape outShape: [Int], name: String) -> Tensor {
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        withExtendedLifetime(self) {
            switch dtype {
            case .float32:
                let x = pointer(Float.self), y = out.pointer(Float.self)
                for (k, p) in positions.enumerated() { y[k] = x[p] }
            case .float64:
                let x = pointer(Double.self), y = out.pointer(Double.self)
                for (k, p) in positions.enumerated() { y[k] = x[p] }
            }
        }
        let inputShape = shape, inputType = dtype
        return Tensor.record(name, out, [self]) { g, _ in
            [Tensor.scatterAdd(g, positions: positions, shape: inputShape, dtype: inputType)]
        }
    }
}

/// Copies `count` blocks of `bytes` bytes (a multiple of 4), the k-th from `source + k·sourceStride`
/// to `destination + k·destinationStride`. Blocks of a few elements (slicing or joining the last
/// axis of narrow rows, as a fused kernel's [N, D + 1] output) are copied word by word: a
/// `memcpy` call per block costs several times its copy.
private func copyBlocks(_ count: Int, bytes: Int, from source: UnsafeMutableRawPointer, stride sourceStride: Int,
                        to destination: UnsafeMutableRawPointer, stride destinationStride: Int) {
    guard bytes > 0 else { return }
    if sourceStride == bytes && destinationStride == bytes {
        destination.copyMemory(from: source, byteCount: count * bytes)
    } else if bytes <= 32 {
        let words = bytes / 4
        for k in 0..<count {
            let from = (source + k * sourceStride).assumingMemoryBound(to: UInt32.self)
            let to = (destination + k * destinationStride).assumingMemoryBound(to: UInt32.self)
            for w in 0..<words { to[w] = from[w] }
        }
    } else {
        for k in 0..<count { (destination + k * destinationStride).copyMemory(from: source + k * sourceStride, byteCount: bytes) }
    }
}
