import RealModule

/// Elementwise operations of two tensors, with NumPy broadcasting.
enum BinaryOperation {
    case add, subtract, multiply, divide, power, minimum, maximum
    case equal, notEqual, less, lessEqual, greater, greaterEqual
}

extension Tensor {
    /// Evaluates `operation` elementwise without recording it.
    static func elementwise(_ operation: BinaryOperation, _ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.dtype == b.dtype, "operands have different dtypes: \(a.dtype) and \(b.dtype)")
        switch a.dtype {
        case .float32: return elementwise(operation, a, b, Float.self)
        case .float64: return elementwise(operation, a, b, Double.self)
        }
    }

    private static func elementwise<T: TensorScalar>(
        _ operation: BinaryOperation, _ a: Tensor, _ b: Tensor, _: T.Type
    ) -> Tensor {
        switch operation {
        case .add: return zipBroadcast(a, b, T.self) { $0 + $1 }
        case .subtract: return zipBroadcast(a, b, T.self) { $0 - $1 }
        case .multiply: return zipBroadcast(a, b, T.self) { $0 * $1 }
        case .divide: return zipBroadcast(a, b, T.self) { $0 / $1 }
        case .power: return zipBroadcast(a, b, T.self) { T.pow($0, $1) }
        case .minimum: return zipBroadcast(a, b, T.self) { $0.isNaN || $1.isNaN ? .nan : ($0 <= $1 ? $0 : $1) }
        case .maximum: return zipBroadcast(a, b, T.self) { $0.isNaN || $1.isNaN ? .nan : ($0 >= $1 ? $0 : $1) }
        case .equal: return zipBroadcast(a, b, T.self) { $0 == $1 ? 1 : 0 }
        case .notEqual: return zipBroadcast(a, b, T.self) { $0 != $1 ? 1 : 0 }
        case .less: return zipBroadcast(a, b, T.self) { $0 < $1 ? 1 : 0 }
        case .lessEqual: return zipBroadcast(a, b, T.self) { $0 <= $1 ? 1 : 0 }
        case .greater: return zipBroadcast(a, b, T.self) { $0 > $1 ? 1 : 0 }
        case .greaterEqual: return zipBroadcast(a, b, T.self) { $0 >= $1 ? 1 : 0 }
        }
    }

    /// `f` applied to broadcast pairs; the closure is inlined into each specialised loop.
    @inline(__always)
    static func zipBroadcast<T: TensorScalar>(
        _ a: Tensor, _ b: Tensor, _: T.Type, _ f: (T, T) -> T
    ) -> Tensor {
        let outShape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
        let out = Tensor(uninitializedShape: outShape, dtype: T.dtype)
        let pa = a.pointer(T.self), pb = b.pointer(T.self), po = out.pointer(T.self)
        withExtendedLifetime((a, b)) {
            if a.shape == b.shape {
                for i in 0..<out.count { po[i] = f(pa[i], pb[i]) }
                return
            }
            let loop = BroadcastLoop(outShape: outShape, operandShapes: [outShape, a.shape, b.shape])
            let n = loop.innerCount
            let sa = loop.innerStride(1), sb = loop.innerStride(2)
            // Rows of the merged space: one outer dimension (the common case) is walked with plain
            // offsets; deeper spaces use the odometer. The stride pattern is dispatched per block.
            @inline(__always) func rows(_ count: Int, _ offsets: (Int) -> (Int, Int, Int)) {
                switch (sa, sb) {
                case (1, 1):
                    for r in 0..<count { let (o, p, q) = offsets(r); for i in 0..<n { po[o + i] = f(pa[p + i], pb[q + i]) } }
                case (1, 0):
                    for r in 0..<count { let (o, p, q) = offsets(r); let s = pb[q]; for i in 0..<n { po[o + i] = f(pa[p + i], s) } }
                case (0, 1):
                    for r in 0..<count { let (o, p, q) = offsets(r); let s = pa[p]; for i in 0..<n { po[o + i] = f(s, pb[q + i]) } }
                default:
                    for r in 0..<count { let (o, p, q) = offsets(r); for i in 0..<n { po[o + i] = f(pa[p + i * sa], pb[q + i * sb]) } }
                }
            }
            if loop.shape.count == 2 {
                let (oa, ob) = (loop.strides[1][0], loop.strides[2][0])
                rows(loop.shape[0]) { r in (r * n, r * oa, r * ob) }
            } else {
                loop.forEachRow { o in rows(1) { _ in (o[0], o[1], o[2]) } }
            }
        }
        return out
    }

    /// A scalar of this tensor's dtype.
    @usableFromInline
    func scalarLike(_ value: Double) -> Tensor { Tensor(scalar: value, dtype: dtype) }
}

// MARK: - Arithmetic with gradients

extension Tensor {
    /// Elementwise a + b with NumPy broadcasting; each gradient is summed back to its operand's shape.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = elementwise(.add, a, b)
        let (sa, sb) = (a.shape, b.shape)
        return record("add", out, [a, b]) { g, needs in
            [needs[0] ? g.sum(toShape: sa) : nil, needs[1] ? g.sum(toShape: sb) : nil]
        }
    }

    /// Elementwise a − b with NumPy broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = elementwise(.subtract, a, b)
        let (sa, sb) = (a.shape, b.shape)
        return record("subtract", out, [a, b]) { g, needs in
            [needs[0] ? g.sum(toShape: sa) : nil, needs[1] ? (-g).sum(toShape: sb) : nil]
        }
    }

    /// Elementwise (Hadamard) product a ⊙ b with NumPy broadcasting; use ``matmul(_:_:transposeA:transposeB:)`` for the matrix product.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = elementwise(.multiply, a, b)
        return record("multiply", out, [a, b]) { g, needs in
            [needs[0] ? (g * b).sum(toShape: a.shape) : nil,
             needs[1] ? (g * a).sum(toShape: b.shape) : nil]
        }
    }

    /// Elementwise a / b with NumPy broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = elementwise(.divide, a, b)
        return record("divide", out, [a, b]) { g, needs in
            let gb = g / b
            return [needs[0] ? gb.sum(toShape: a.shape) : nil,
                    needs[1] ? (-(gb * out)).sum(toShape: b.shape) : nil]
        }
    }

    /// −a elementwise (``negated()``).
    public static prefix func - (a: Tensor) -> Tensor { a.negated() }

    /// Adds `b` to every element.
    public static func + (a: Tensor, b: Double) -> Tensor { a + a.scalarLike(b) }
    /// Adds `a` to every element.
    public static func + (a: Double, b: Tensor) -> Tensor { b.scalarLike(a) + b }
    /// Subtracts `b` from every element.
    public static func - (a: Tensor, b: Double) -> Tensor { a - a.scalarLike(b) }
    /// `a` minus each element.
    public static func - (a: Double, b: Tensor) -> Tensor { b.scalarLike(a) - b }
    /// Multiplies every element by `b`.
    public static func * (a: Tensor, b: Double) -> Tensor { a * a.scalarLike(b) }
    /// Multiplies every element by `a`.
    public static func * (a: Double, b: Tensor) -> Tensor { b.scalarLike(a) * b }
    /// Divides every element by `b` (as a product with 1/b).
    public static func / (a: Tensor, b: Double) -> Tensor { a * a.scalarLike(1 / b) }
    /// `a` divided by each element.
    public static func / (a: Double, b: Tensor) -> Tensor { b.scalarLike(a) / b }

    /// Replaces `a` with a + b (a new recorded value, not an in-place write).
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    /// Replaces `a` with a − b (a new recorded value, not an in-place write).
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    /// Replaces `a` with a ⊙ b (a new recorded value, not an in-place write).
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    /// Replaces `a` with a / b (a new recorded value, not an in-place write).
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }
}

/// `base` raised to `exponent` elementwise (broadcast); defined for `base > 0`, or `base == 0`
/// with a positive exponent. Use `Tensor.pow(_: Int)` for integer powers of any base.
public func pow(_ base: Tensor, _ exponent: Tensor) -> Tensor {
    let out = Tensor.elementwise(.power, base, exponent)
    return Tensor.record("pow", out, [base, exponent]) { g, needs in
        [needs[0] ? (g * exponent * out / base).sum(toShape: base.shape) : nil,
         needs[1] ? (g * out * base.log()).sum(toShape: exponent.shape) : nil]
    }
}

/// The elementwise minimum (broadcast). Where the operands tie, the gradient goes to `a`.
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    let out = Tensor.elementwise(.minimum, a, b)
    return Tensor.record("minimum", out, [a, b]) { g, needs in
        let takeA = Tensor.elementwise(.lessEqual, a, b)
        return [needs[0] ? (g * takeA).sum(toShape: a.shape) : nil,
                needs[1] ? (g * (1 - takeA)).sum(toShape: b.shape) : nil]
    }
}

/// The elementwise maximum (broadcast). Where the operands tie, the gradient goes to `a`.
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    let out = Tensor.elementwise(.maximum, a, b)
    return Tensor.record("maximum", out, [a, b]) { g, needs in
        let takeA = Tensor.elementwise(.greaterEqual, a, b)
        return [needs[0] ? (g * takeA).sum(toShape: a.shape) : nil,
                needs[1] ? (g * (1 - takeA)).sum(toShape: b.shape) : nil]
    }
}

// MARK: - Comparisons (no gradient): 1 where true, 0 where false, in the operands' dtype

extension Tensor {
    /// 1 where the elements are equal and 0 elsewhere, broadcast, in this dtype (no gradient).
    public func isEqual(to other: Tensor) -> Tensor { Tensor.elementwise(.equal, detached(), other.detached()) }
    /// 1 where the elements differ (or either is NaN) and 0 elsewhere, broadcast (no gradient).
    public func isNotEqual(to other: Tensor) -> Tensor { Tensor.elementwise(.notEqual, detached(), other.detached()) }
    /// 1 where self < other and 0 elsewhere, broadcast (no gradient).
    public func isLess(than other: Tensor) -> Tensor { Tensor.elementwise(.less, detached(), other.detached()) }
    /// 1 where self ≤ other and 0 elsewhere, broadcast (no gradient).
    public func isLessOrEqual(to other: Tensor) -> Tensor { Tensor.elementwise(.lessEqual, detached(), other.detached()) }
    /// 1 where self > other and 0 elsewhere, broadcast (no gradient).
    public func isGreater(than other: Tensor) -> Tensor { Tensor.elementwise(.greater, detached(), other.detached()) }
    /// 1 where self ≥ other and 0 elsewhere, broadcast (no gradient).
    public func isGreaterOrEqual(to other: Tensor) -> Tensor { Tensor.elementwise(.greaterEqual, detached(), other.detached()) }
    /// 1 where an element is below `value` and 0 elsewhere (no gradient).
    public func isLess(than value: Double) -> Tensor { isLess(than: scalarLike(value)) }
    /// 1 where an element is above `value` and 0 elsewhere (no gradient).
    public func isGreater(than value: Double) -> Tensor { isGreater(than: scalarLike(value)) }
    /// 1 where an element is at most `value` and 0 elsewhere (no gradient).
    public func isLessOrEqual(to value: Double) -> Tensor { isLessOrEqual(to: scalarLike(value)) }
    /// 1 where an element is at least `value` and 0 elsewhere (no gradient).
    public func isGreaterOrEqual(to value: Double) -> Tensor { isGreaterOrEqual(to: scalarLike(value)) }
}

/// Picks `a` where `condition` is non-zero and `b` elsewhere (all three broadcast together).
public func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.dtype == b.dtype && condition.dtype == a.dtype,
        "where: dtypes differ (\(condition.dtype), \(a.dtype), \(b.dtype))")
    let shape = broadcastShape(broadcastShape(condition.shape, a.shape), b.shape)
    let mask = condition.detached().isNotEqual(to: condition.scalarLike(0)).broadcast(to: shape)
    let out: Tensor
    switch a.dtype {
    case .float32: out = select(mask, a.detached().broadcast(to: shape), b.detached().broadcast(to: shape), Float.self)
    case .float64: out = select(mask, a.detached().broadcast(to: shape), b.detached().broadcast(to: shape), Double.self)
    }
    return Tensor.record("where", out, [a, b]) { g, needs in
        [needs[0] ? (g * mask).sum(toShape: a.shape) : nil,
         needs[1] ? (g * (1 - mask)).sum(toShape: b.shape) : nil]
    }
}

private func select<T: TensorScalar>(_ mask: Tensor, _ a: Tensor, _ b: Tensor, _: T.Type) -> Tensor {
    let out = Tensor(uninitializedShape: mask.shape, dtype: T.dtype)
    let m = mask.pointer(T.self), x = a.pointer(T.self), y = b.pointer(T.self), o = out.pointer(T.self)
    withExtendedLifetime((mask, a, b)) {
        for i in 0..<out.count { o[i] = m[i] != 0 ? x[i] : y[i] }
    }
    return out
}
