import RealModule

/// The element type of a ``Tensor``.
///
/// `float32` is the default: it is what training runs in. `float64` exists for reference checks
/// (finite differences, brute-force Jacobians) and for users who need the extra precision.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32
    case float64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        }
    }

    public var description: String { rawValue }
}

/// A floating-point type a ``Tensor`` can hold: `Float` or `Double`.
///
/// The requirements are the per-type kernels (GEMM and the vectorised transcendental functions),
/// so generic tensor code specialises to the fast `Float` paths and the accurate `Double` paths.
public protocol TensorScalar: Real, BinaryFloatingPoint, SIMDScalar, Codable, Sendable
where RawSignificand: FixedWidthInteger {
    /// The runtime tag of this type.
    static var dtype: DType { get }

    /// C = alpha·op(A)·op(B) + beta·C, row-major.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
        c: UnsafeMutablePointer<Self>, ldc: Int)

    /// Applies a transcendental function to `count` elements; `x` and `y` may alias.
    static func apply(
        _ function: VectorFunction, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>,
        count: Int)
}

/// The transcendental functions with vectorised kernels (see ``VectorMath``).
public enum VectorFunction: Sendable {
    case exp, log, log1p, expm1, tanh, sigmoid, softplus, logSigmoid
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }

    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        GEMM.sgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    @inlinable
    public static func apply(
        _ function: VectorFunction, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        count: Int
    ) {
        switch function {
        case .exp: VectorMath.exp(x, y, count: count)
        case .log: VectorMath.log(x, y, count: count)
        case .log1p: VectorMath.log1p(x, y, count: count)
        case .expm1: VectorMath.expm1(x, y, count: count)
        case .tanh: VectorMath.tanh(x, y, count: count)
        case .sigmoid: VectorMath.sigmoid(x, y, count: count)
        case .softplus: VectorMath.softplus(x, y, count: count)
        case .logSigmoid: VectorMath.logSigmoid(x, y, count: count)
        }
    }
}

extension Double: TensorScalar {
    public static var dtype: DType { .float64 }

    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        GEMM.dgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    @inlinable
    public static func apply(
        _ function: VectorFunction, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>,
        count: Int
    ) {
        switch function {
        case .exp: VectorMath.exp(x, y, count: count)
        case .log: VectorMath.log(x, y, count: count)
        case .log1p: VectorMath.log1p(x, y, count: count)
        case .expm1: VectorMath.expm1(x, y, count: count)
        case .tanh: VectorMath.tanh(x, y, count: count)
        case .sigmoid: VectorMath.sigmoid(x, y, count: count)
        case .softplus: VectorMath.softplus(x, y, count: count)
        case .logSigmoid: VectorMath.logSigmoid(x, y, count: count)
        }
    }
}
