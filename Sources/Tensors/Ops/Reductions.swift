import RealModule

extension Tensor {
    /// `axis` counted from the front, accepting negative values counted from the back.
    @usableFromInline
    func normalizedAxis(_ axis: Int, rank: Int? = nil) -> Int {
        let r = rank ?? self.rank
        let a = axis < 0 ? axis + r : axis
        precondition(a >= 0 && a < r, "axis \(axis) out of range for a tensor of shape \(shape)")
        return a
    }

    /// (product of dimensions before `axis`, size of `axis`, product of dimensions after it).
    func split(at axis: Int) -> (outer: Int, size: Int, inner: Int) {
        (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }
}

/// The sum of `n` contiguous values: eight SIMD lanes over blocks of 512, blocks added in Double,
/// so Float sums of long vectors keep nearly full precision.
@inline(__always)
func contiguousSum<T: TensorScalar>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    var total = 0.0
    var start = 0
    while start < n {
        let end = Swift.min(start + 512, n)
        var acc = SIMD8<T>()
        var i = start
        while i + 8 <= end {
            acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<T>.self)
            i += 8
        }
        var blockSum = acc.sum()
        while i < end { blockSum += p[i]; i += 1 }
        total += Double(blockSum)
        start = end
    }
    return T(total)
}

// MARK: - Sum and mean

extension Tensor {
    /// The sum of all elements (shape `[]`).
    public func sum() -> Tensor {
        sum(alongAxes: Array(0..<rank), keepingDimensions: false)
    }

    /// Sums along one axis.
    public func sum(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Sums along `axes`; kept dimensions have size 1.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let axes = Set(axes.map { normalizedAxis($0) }).sorted()
        var keptShape = shape
        for a in axes { keptShape[a] = 1 }
        let outShape = keepingDimensions ? keptShape : shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        var out: Tensor
        if axes.count == rank {
            out = Tensor.zeros(keptShape, dtype: dtype)
            switch dtype {
            case .float32: out.pointer(Float.self).pointee = withUnsafeBufferPointer(as: Float.self) { contiguousSum($0.baseAddress!, count) }
            case .float64: out.pointer(Double.self).pointee = withUnsafeBufferPointer(as: Double.self) { contiguousSum($0.baseAddress!, count) }
            }
        } else {
            out = detached()
            for a in axes.reversed() { out = out.reduceAxis(a) }
        }
        out = out.detached().reshaped(to: outShape)
        let inputShape = shape
        return Tensor.record("sum", out, [self]) { g, _ in
            [g.reshaped(to: keptShape).broadcast(to: inputShape)]
        }
    }

    /// Sum along one axis, kept with size 1 (no recording).
    private func reduceAxis(_ axis: Int) -> Tensor {
        switch dtype {
        case .float32: reduceAxis(axis, Float.self)
        case .float64: reduceAxis(axis, Double.self)
        }
    }

    private func reduceAxis<T: TensorScalar>(_ axis: Int, _: T.Type) -> Tensor {
        let (outer, size, inner) = split(at: axis)
        var outShape = shape
        outShape[axis] = 1
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        let x = pointer(T.self), y = out.pointer(T.self)
        withExtendedLifetime(self) {
            for o in 0..<outer {
                if inner == 1 {
                    y[o] = contiguousSum(x + o * size, size)
                } else {
                    let dst = y + o * inner
                    if size == 0 { dst.update(repeating: 0, count: inner); continue }
                    dst.update(from: x + o * size * inner, count: inner)
                    for j in 1..<Swift.max(size, 1) {
                        let src = x + (o * size + j) * inner
                        for i in 0..<inner { dst[i] += src[i] }
                    }
                }
            }
        }
        return out
    }

    /// The mean of all elements (shape `[]`).
    public func mean() -> Tensor { sum() / Double(Swift.max(count, 1)) }

    /// The mean along one axis.
    public func mean(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        mean(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// The mean along `axes`.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = Set(axes.map { normalizedAxis($0) }).reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) / Double(Swift.max(n, 1))
    }
}

// MARK: - Max and min

extension Tensor {
    /// The largest element along `axis`; the gradient flows to the first maximal element.
    public func max(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        extremum(alongAxis: axis, keepingDimensions: keepingDimensions, largest: true)
    }

    /// The smallest element along `axis`; the gradient flows to the first minimal element.
    public func min(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        extremum(alongAxis: axis, keepingDimensions: keepingDimensions, largest: false)
    }

    /// The largest element (shape `[]`).
    public func max() -> Tensor { reshaped(to: [count]).max(alongAxis: 0) }
    /// The smallest element (shape `[]`).
    public func min() -> Tensor { reshaped(to: [count]).min(alongAxis: 0) }

    private func extremum(alongAxis axis: Int, keepingDimensions: Bool, largest: Bool) -> Tensor {
        let axis = normalizedAxis(axis)
        precondition(shape[axis] > 0, "max/min along an empty axis of shape \(shape)")
        let (values, positions): (Tensor, [Int])
        switch dtype {
        case .float32: (values, positions) = extremum(axis, largest, Float.self)
        case .float64: (values, positions) = extremum(axis, largest, Double.self)
        }
        var outShape = shape
        if keepingDimensions { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        let inputShape = shape, inputType = dtype
        return Tensor.record(largest ? "max" : "min", values.reshaped(to: outShape), [self]) { g, _ in
            [Tensor.scatterAdd(g, positions: positions, shape: inputShape, dtype: inputType)]
        }
    }

    /// Values (axis kept with size 1) and flat positions of the extrema; NaN wins over numbers.
    private func extremum<T: TensorScalar>(_ axis: Int, _ largest: Bool, _: T.Type) -> (Tensor, [Int]) {
        let (outer, size, inner) = split(at: axis)
        var outShape = shape
        outShape[axis] = 1
        let out = Tensor(uninitializedShape: outShape, dtype: dtype)
        var positions = [Int](repeating: 0, count: outer * inner)
        let x = pointer(T.self), y = out.pointer(T.self)
        withExtendedLifetime(self) {
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = o * size * inner + i
                    var bestValue = x[best]
                    for j in 1..<size where !bestValue.isNaN {
                        let p = (o * size + j) * inner + i
                        let v = x[p]
                        if v.isNaN || (largest ? v > bestValue : v < bestValue) { best = p; bestValue = v }
                    }
                    y[o * inner + i] = bestValue
                    positions[o * inner + i] = best
                }
            }
        }
        return (out, positions)
    }

    /// A zero tensor of `shape` with `values[i]` added at flat position `positions[i]`.
    static func scatterAdd(_ values: Tensor, positions: [Int], shape: [Int], dtype: DType) -> Tensor {
        var out = Tensor.zeros(shape, dtype: dtype)
        let v = values.doubles
        switch dtype {
        case .float32:
            let p = out.pointer(Float.self)
            for (k, pos) in positions.enumerated() { p[pos] += Float(v[k]) }
        case .float64:
            let p = out.pointer(Double.self)
            for (k, pos) in positions.enumerated() { p[pos] += v[k] }
        }
        out.gradNode = nil
        return out
    }
}

// MARK: - Log-sum-exp, softmax

extension Tensor {
    /// log Σᵢ exp(xᵢ) along `axis`, computed stably as m + log Σᵢ exp(xᵢ − m) with m the maximum
    /// along the axis, so large inputs do not overflow and very negative ones do not all
    /// underflow to log 0. A row of −∞ gives −∞ (not NaN). The gradient is ``softmax(alongAxis:)``.
    /// - Parameters:
    ///   - axis: the axis to reduce; negative values count from the back.
    ///   - keepingDimensions: keep the reduced axis with size 1 (for broadcasting against the input).
    public func logSumExp(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        let axis = normalizedAxis(axis)
        // The shift is a constant for differentiation: d/dm of (m + log Σ e^(x−m)) is zero.
        let m = withoutGradients {
            let raw = detached().max(alongAxis: axis, keepingDimensions: true)
            // All −∞ (or ±∞) along the axis: shift by 0 so the result is −∞ (or +∞), not NaN.
            return `where`(raw.isFinitePerElement(), raw, raw.scalarLike(0))
        }
        let shifted = (self - m).exp().sum(alongAxis: axis, keepingDimensions: true).log() + m
        return keepingDimensions ? shifted : shifted.squeezed(axis: axis)
    }

    /// exp(x) / Σ exp(x) along `axis`.
    public func softmax(alongAxis axis: Int = -1) -> Tensor {
        logSoftmax(alongAxis: axis).exp()
    }

    /// x − log Σ exp(x) along `axis`.
    public func logSoftmax(alongAxis axis: Int = -1) -> Tensor {
        self - logSumExp(alongAxis: axis, keepingDimensions: true)
    }

    /// 1 where the element is finite, 0 where it is NaN or ±∞ (no gradient).
    public func isFinitePerElement() -> Tensor {
        switch dtype {
        case .float32: detached().mapElements(Float.self) { $0.isFinite ? 1 : 0 }
        case .float64: detached().mapElements(Double.self) { $0.isFinite ? 1 : 0 }
        }
    }
}

// MARK: - Cumulative sum

extension Tensor {
    /// Running sums along `axis`: yᵢ = the sum of xⱼ over j ≤ i (over j ≥ i when `reverse`).
    public func cumulativeSum(alongAxis axis: Int, reverse: Bool = false) -> Tensor {
        let axis = normalizedAxis(axis)
        let out: Tensor
        switch dtype {
        case .float32: out = cumulativeSum(axis, reverse, Float.self)
        case .float64: out = cumulativeSum(axis, reverse, Double.self)
        }
        return Tensor.record("cumsum", out, [self]) { g, _ in
            [g.cumulativeSum(alongAxis: axis, reverse: !reverse)]
        }
    }

    private func cumulativeSum<T: TensorScalar>(_ axis: Int, _ reverse: Bool, _: T.Type) -> Tensor {
        let (outer, size, inner) = split(at: axis)
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        let x = pointer(T.self), y = out.pointer(T.self)
        withExtendedLifetime(self) {
            for o in 0..<outer {
                for i in 0..<inner {
                    var acc: T = 0
                    for step in 0..<size {
                        let j = reverse ? size - 1 - step : step
                        let p = (o * size + j) * inner + i
                        acc += x[p]
                        y[p] = acc
                    }
                }
            }
        }
        return out
    }
}
