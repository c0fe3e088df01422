import RealModule

/// The element type of a ``Tensor``.
///
/// `float32` is the default: it is what training runs in. `float64` exists for reference checks
/// (finite differences, brute-force Jacobians) and for users who need the extra precision.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// 32-bit IEEE 754 (`Float`): the default, and what training runs in.
    case float32
    /// 64-bit IEEE 754 (`Double`): for reference checks and precision-sensitive work.
    case float64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        }
    }

    /// The name as written in model files and on the command line: `float32` or `float64`.
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
    /// eˣ.
    case exp
    /// The natural logarithm.
    case log
    /// log(1 + x), accurate near 0.
    case log1p
    /// eˣ − 1, accurate near 0.
    case expm1
    /// The hyperbolic tangent.
    case tanh
    /// σ(x) = 1 / (1 + e⁻ˣ).
    case sigmoid
    /// log(1 + eˣ), without overflow.
    case softplus
    /// log σ(x) = −softplus(−x), without overflow.
    case logSigmoid
}

extension Float: TensorScalar {
    /// `Float` tensors are ``DType/float32``.
    public static var dtype: DType { .float32 }
}

extension Double: TensorScalar {
    /// `Double` tensors are ``DType/float64``.
    public static var dtype: DType { .float64 }
}

// The one place where the per-type kernels are chosen: a `Float` runs the single-precision C
// GEMM and the SIMD polynomials, a `Double` the double-precision GEMM and libm. Specialised code
// keeps only its own branch.
extension TensorScalar {
    /// The general matrix product C = α·op(A)·op(B) + β·C on row-major buffers, where op(X) is Xᵀ
    /// when the flag is set: the single entry point of the package's packed GEMM kernels.
    ///
    /// `Float` runs the AVX2+FMA micro-kernel chosen at run time (with a portable fallback),
    /// `Double` the double-precision kernel. ``matmul(_:_:transposeA:transposeB:)`` is the
    /// differentiable tensor-level call; use this one in hand-written kernels on raw buffers.
    ///
    /// ```swift
    /// let a: [Float] = [1, 2, 3, 4, 5, 6]        // 2×3
    /// let b: [Float] = [1, 0, 0, 1, 1, 1]        // 3×2
    /// var c = [Float](repeating: 0, count: 4)    // 2×2
    /// Float.gemm(transA: false, transB: false, m: 2, n: 2, k: 3, alpha: 1, a: a, lda: 3,
    ///            b: b, ldb: 2, beta: 0, c: &c, ldc: 2)   // c == [4, 5, 10, 11]
    /// ```
    ///
    /// - Parameters:
    ///   - transA: use Aᵀ, where A is stored as k×m.
    ///   - transB: use Bᵀ, where B is stored as n×k.
    ///   - m: rows of op(A) and of C.
    ///   - n: columns of op(B) and of C.
    ///   - k: columns of op(A), rows of op(B).
    ///   - alpha: the factor α of the product.
    ///   - a: A's elements, row-major.
    ///   - lda: the distance between A's rows, in elements (at least its column count).
    ///   - b: B's elements, row-major.
    ///   - ldb: the distance between B's rows, in elements.
    ///   - beta: the factor β of C's old value; 0 ignores it (C may then hold anything, even NaN).
    ///   - c: C's elements, overwritten with the result.
    ///   - ldc: the distance between C's rows, in elements.
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

    /// Applies `function` to `count` elements of `x`, writing `y`: the 8-wide polynomial kernels
    /// for `Float`, libm-accurate loops for `Double`.
    /// - Parameters:
    ///   - function: which transcendental function.
    ///   - x: the inputs.
    ///   - y: the outputs; may be the same buffer as `x`.
    ///   - count: the number of elements.
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
