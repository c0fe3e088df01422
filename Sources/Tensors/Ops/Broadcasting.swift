/// NumPy broadcasting: shapes are aligned at their trailing dimensions; a dimension of size 1 (or
/// a missing one) stretches to the other's size.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(
            da == db || da == 1 || db == 1,
            "shapes \(a) and \(b) cannot be broadcast together (dimension \(i): \(da) vs \(db))")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Row-major strides of `shape` as seen from a broadcast `outShape`: 0 along stretched dimensions.
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let offset = outShape.count - shape.count
    var strides = [Int](repeating: 0, count: outShape.count)
    var step = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i + offset] = shape[i] == 1 ? 0 : step
        step *= shape[i]
    }
    return strides
}

/// A broadcast iteration space with adjacent dimensions merged wherever every operand allows, so
/// the innermost loop is as long as possible. Operands address elements as offset + Σ index·stride.
struct BroadcastLoop {
    /// Dimensions after merging, outermost first; the last is the inner loop.
    var shape: [Int]
    /// One stride array per operand, aligned with `shape`.
    var strides: [[Int]]

    init(outShape: [Int], operandShapes: [[Int]]) {
        var shape = outShape
        var strides = operandShapes.map { broadcastStrides($0, to: outShape) }
        // Drop unit dimensions, then merge (i, i+1) when every operand is contiguous across them.
        var keep: [Int] = []
        for i in shape.indices where shape[i] != 1 { keep.append(i) }
        shape = keep.map { shape[$0] }
        strides = strides.map { s in keep.map { s[$0] } }
        var i = shape.count - 2
        while i >= 0 {
            let mergeable = strides.allSatisfy { $0[i] == $0[i + 1] * shape[i + 1] }
            if mergeable {
                shape[i] *= shape[i + 1]
                for k in strides.indices { strides[k][i] = strides[k][i + 1] }
                shape.remove(at: i + 1)
                for k in strides.indices { strides[k].remove(at: i + 1) }
            }
            i -= 1
        }
        if shape.isEmpty {
            shape = [1]
            strides = strides.map { _ in [0] }
        }
        self.shape = shape
        self.strides = strides
    }

    /// Calls `body(offsets, innerCount)` once per inner row, with each operand's starting offset.
    @inline(__always)
    func forEachRow(_ body: ([Int]) -> Void) {
        let outer = shape.dropLast()
        var index = [Int](repeating: 0, count: outer.count)
        var offsets = [Int](repeating: 0, count: strides.count)
        let rows = outer.reduce(1, *)
        for _ in 0..<rows {
            body(offsets)
            // Odometer increment of the outer index, keeping offsets in step.
            var d = outer.count - 1
            while d >= 0 {
                index[d] += 1
                for k in offsets.indices { offsets[k] += strides[k][d] }
                if index[d] < shape[d] { break }
                for k in offsets.indices { offsets[k] -= strides[k][d] * shape[d] }
                index[d] = 0
                d -= 1
            }
        }
    }

    var innerCount: Int { shape[shape.count - 1] }
    func innerStride(_ operand: Int) -> Int { strides[operand][shape.count - 1] }
}

extension Tensor {
    /// This tensor stretched to `shape` by broadcasting (values are copied).
    public func broadcast(to shape: [Int]) -> Tensor {
        if shape == self.shape { return self }
        precondition(
            broadcastShape(self.shape, shape) == shape,
            "cannot broadcast shape \(self.shape) to \(shape)")
        let result: Tensor
        switch dtype {
        case .float32: result = broadcastCopy(to: shape, Float.self)
        case .float64: result = broadcastCopy(to: shape, Double.self)
        }
        let inputShape = self.shape
        return Tensor.record("broadcast", result, [self]) { g, _ in [g.sum(toShape: inputShape)] }
    }

    private func broadcastCopy<T: TensorScalar>(to shape: [Int], _: T.Type) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        let loop = BroadcastLoop(outShape: shape, operandShapes: [shape, self.shape])
        let src = pointer(T.self), dst = out.pointer(T.self)
        let n = loop.innerCount, s = loop.innerStride(1)
        withExtendedLifetime(self) {
            loop.forEachRow { o in
                let d = dst + o[0], x = src + o[1]
                if s == 0 {
                    d.update(repeating: x[0], count: n)
                } else {
                    d.update(from: x, count: n)
                }
            }
        }
        return out
    }

    /// Sums a broadcast gradient back to `shape` (the reverse of broadcasting).
    public func sum(toShape shape: [Int]) -> Tensor {
        if shape == self.shape { return self }
        let offset = rank - shape.count
        precondition(offset >= 0, "cannot reduce shape \(self.shape) to \(shape)")
        var axes = Array(0..<offset)
        for (i, d) in shape.enumerated() where d == 1 && self.shape[i + offset] != 1 {
            axes.append(i + offset)
        }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(to: shape)
    }
}
