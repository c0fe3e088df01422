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

/// The transcendental functions with vectorised kernels (see `VectorMath`).
public enum VectorFunction: Sendable {
    case exp, log, log1p, expm1, tanh, sigmoid, softplus, logSigmoid
}

extension Float: TensorScalar {
    public static var dtype: DType { .float32 }
}

extension Double: TensorScalar {
    public static var dtype: DType { .float64 }
}

// The one place where the per-type kernels are chosen: a `Float` runs the single-precision C
// GEMM and the SIMD polynomials, a `Double` the double-precision GEMM and libm. Specialised code
// keeps only its own branch.
extension TensorScalar {
    @inlinable
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
        c: UnsafeMutablePointer<Self>, ldc: Int
    ) {
        func run<S>(_ kernel: (Bool, Bool, Int, Int, Int, S, UnsafePointer<S>, Int, UnsafePointer<S>, Int, S,
                               UnsafeMutablePointer<S>, Int) -> Void) {
            kernel(transA, transB, m, n, k, unsafeBitCast(alpha, to: S.self), UnsafeRawPointer(a).assumingMemoryBound(to: S.self), lda,
                   UnsafeRawPointer(b).assumingMemoryBound(to: S.self), ldb, unsafeBitCast(beta, to: S.self),
                   UnsafeMutableRawPointer(c).assumingMemoryBound(to: S.self), ldc)
        }
        if Self.self == Float.self {
            run { GEMM.sgemm(transA: $0, transB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9, beta: $10, c: $11, ldc: $12) }
        } else {
            run { GEMM.dgemm(transA: $0, transB: $1, m: $2, n: $3, k: $4, alpha: $5, a: $6, lda: $7, b: $8, ldb: $9, beta: $10, c: $11, ldc: $12) }
        }
    }

    @inlinable
    public static func apply(_ function: VectorFunction, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>, count: Int) {
        typealias Kernel<S> = (UnsafePointer<S>, UnsafeMutablePointer<S>, Int) -> Void
        let kernels: (Kernel<Float>, Kernel<Double>) = switch function {
        case .exp: (VectorMath.exp, VectorMath.exp)
        case .log: (VectorMath.log, VectorMath.log)
        case .log1p: (VectorMath.log1p, VectorMath.log1p)
        case .expm1: (VectorMath.expm1, VectorMath.expm1)
        case .tanh: (VectorMath.tanh, VectorMath.tanh)
        case .sigmoid: (VectorMath.sigmoid, VectorMath.sigmoid)
        case .softplus: (VectorMath.softplus, VectorMath.softplus)
        case .logSigmoid: (VectorMath.logSigmoid, VectorMath.logSigmoid)
        }
        if Self.self == Float.self {
            kernels.0(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self), count)
        } else {
            kernels.1(UnsafeRawPointer(x).assumingMemoryBound(to: Double.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Double.self), count)
        }
    }
}
