import Foundation

/// An n-dimensional array of `Float` or `Double` with reverse-mode derivatives.
///
/// A tensor is a value: copies share one contiguous, row-major buffer until one of them is
/// mutated (copy-on-write). Operations on tensors that require gradients record themselves, so
/// ``Tensor/backward(_:retainGraph:)`` can carry derivatives back to the leaves
/// (see ``Parameter`` and ``Tensor/requiringGradient()``).
///
/// ```swift
/// let x = Tensor([1, 2, 3, 4], shape: [2, 2])
/// let y = (x * x).sum()          // 30
/// ```
public struct Tensor: @unchecked Sendable {
    @usableFromInline var storage: TensorStorage
    /// The size of each dimension, outermost first. A scalar has shape `[]`.
    public private(set) var shape: [Int]
    /// The node that records how this tensor was computed, or `nil` when no gradient flows here.
    @usableFromInline var gradNode: GradNode?

    @usableFromInline
    init(storage: TensorStorage, shape: [Int], gradNode: GradNode? = nil) {
        precondition(
            shape.reduce(1, *) == storage.count,
            "shape \(shape) does not match \(storage.count) elements")
        self.storage = storage
        self.shape = shape
        self.gradNode = gradNode
    }

    /// An uninitialised tensor; every element must be written before it is read. For kernels that
    /// fill several tensors in one pass.
    public init(uninitializedShape shape: [Int], dtype: DType) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.init(storage: TensorStorage(count: shape.reduce(1, *), dtype: dtype), shape: shape)
    }

    /// The element type.
    @inlinable public var dtype: DType { storage.dtype }
    /// The number of dimensions.
    @inlinable public var rank: Int { shape.count }
    /// The number of elements.
    @inlinable public var count: Int { storage.count }

    // MARK: Raw access

    /// Calls `body` with the elements, which must be of type `T`.
    @inlinable
    public func withUnsafeBufferPointer<T: TensorScalar, R>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R
    ) rethrows -> R {
        precondition(T.dtype == dtype, "tensor holds \(dtype), accessed as \(T.dtype)")
        return try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: storage.pointer(T.self), count: count))
        }
    }

    /// Calls `body` with mutable elements, copying the buffer first if it is shared.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<T: TensorScalar, R>(
        as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R
    ) rethrows -> R {
        precondition(T.dtype == dtype, "tensor holds \(dtype), accessed as \(T.dtype)")
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return try withExtendedLifetime(storage) {
            try body(UnsafeMutableBufferPointer(start: storage.pointer(T.self), count: count))
        }
    }

    /// The elements as `T`, valid while the tensor lives (keep it with `withExtendedLifetime`):
    /// for kernels that fill scratch tensors, which come from the buffer cache like any tensor's.
    @inlinable
    package func pointer<T: TensorScalar>(_: T.Type) -> UnsafeMutablePointer<T> {
        storage.pointer(T.self)
    }

    /// A tensor of `shape` whose elements `body` writes as `T` (the dtype is `T`'s); `body` must
    /// write every element. For kernels outside this module that produce a whole tensor at once.
    public init<T: TensorScalar>(shape: [Int], as type: T.Type, initializingWith body: (UnsafeMutableBufferPointer<T>) throws -> Void) rethrows {
        self.init(uninitializedShape: shape, dtype: T.dtype)
        try withExtendedLifetime(storage) {
            try body(UnsafeMutableBufferPointer(start: storage.pointer(T.self), count: count))
        }
    }

    /// Calls `body` with the elements' bytes (native byte order, row-major).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) {
            try body(UnsafeRawBufferPointer(start: storage.base, count: count * dtype.byteSize))
        }
    }

    /// A tensor whose elements are copied from `bytes` (native byte order, row-major), which
    /// must hold exactly `shape.product × dtype.byteSize` bytes.
    public init(shape: [Int], dtype: DType, copyingBytes bytes: UnsafeRawBufferPointer) {
        self.init(uninitializedShape: shape, dtype: dtype)
        precondition(bytes.count == count * dtype.byteSize,
            "\(bytes.count) bytes do not fill shape \(shape) of \(dtype)")
        if let source = bytes.baseAddress { storage.base.copyMemory(from: source, byteCount: bytes.count) }
    }

    // MARK: Reading values

    /// The elements in row-major order, converted to `Float`.
    public var floats: [Float] { scalars(as: Float.self) }
    /// The elements in row-major order, converted to `Double`.
    public var doubles: [Double] { scalars(as: Double.self) }

    /// The elements in row-major order, converted to `T`.
    public func scalars<T: BinaryFloatingPoint>(as: T.Type) -> [T] {
        switch dtype {
        case .float32:
            withUnsafeBufferPointer(as: Float.self) { $0.map { T($0) } }
        case .float64:
            withUnsafeBufferPointer(as: Double.self) { $0.map { T($0) } }
        }
    }

    /// The value of a one-element tensor.
    public var item: Double {
        precondition(count == 1, "item needs a tensor with one element, not shape \(shape)")
        return doubles[0]
    }

    /// The element at a multi-dimensional index, as `Double`.
    public subscript(element index: [Int]) -> Double {
        let offset = Tensor.offset(of: index, in: shape)
        switch dtype {
        case .float32: return Double(pointer(Float.self)[offset])
        case .float64: return pointer(Double.self)[offset]
        }
    }

    static func offset(of index: [Int], in shape: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) does not fit shape \(shape)")
        var offset = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "index \(index) out of range for shape \(shape)")
            offset = offset * n + i
        }
        return offset
    }
}

// MARK: - Creation

extension Tensor {
    /// A tensor holding `scalars` in row-major order.
    public init<T: TensorScalar>(shape: [Int], scalars: [T]) {
        precondition(
            shape.reduce(1, *) == scalars.count,
            "\(scalars.count) values do not fill shape \(shape)")
        self.init(uninitializedShape: shape, dtype: T.dtype)
        let p = pointer(T.self)
        scalars.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// A `float32` tensor (or `dtype`) from values given as `Double`; shape defaults to 1-D.
    public init(_ values: [Double], shape: [Int]? = nil, dtype: DType = .float32) {
        let shape = shape ?? [values.count]
        switch dtype {
        case .float32: self.init(shape: shape, scalars: values.map { Float($0) })
        case .float64: self.init(shape: shape, scalars: values)
        }
    }

    /// A tensor from `Float` values; shape defaults to 1-D.
    public init(_ values: [Float], shape: [Int]? = nil) {
        self.init(shape: shape ?? [values.count], scalars: values)
    }

    /// A 2-D tensor from rows of equal length.
    public init(rows: [[Double]], dtype: DType = .float32) {
        let width = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == width }, "rows have different lengths")
        self.init(rows.flatMap { $0 }, shape: [rows.count, width], dtype: dtype)
    }

    /// A scalar (shape `[]`).
    public init(scalar: Double, dtype: DType = .float32) {
        self.init([scalar], shape: [], dtype: dtype)
    }

    /// A tensor with every element equal to `value`.
    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32) -> Tensor {
        var t = Tensor(uninitializedShape: shape, dtype: dtype)
        switch dtype {
        case .float32: t.pointer(Float.self).update(repeating: Float(value), count: t.count)
        case .float64: t.pointer(Double.self).update(repeating: value, count: t.count)
        }
        t.gradNode = nil
        return t
    }

    /// A tensor of zeros.
    /// - Parameters:
    ///   - shape: the size of each dimension (`[]` for a scalar).
    ///   - dtype: the element type.
    public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, 0, dtype: dtype)
    }

    /// A tensor of ones.
    /// - Parameters:
    ///   - shape: the size of each dimension (`[]` for a scalar).
    ///   - dtype: the element type.
    public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, 1, dtype: dtype)
    }

    /// Zeros with the shape and dtype of `other`.
    public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape, dtype: other.dtype) }
    /// Ones with the shape and dtype of `other`.
    public static func ones(like other: Tensor) -> Tensor { ones(other.shape, dtype: other.dtype) }

    /// The values `start, start + step, …` below `end` (above it for a negative step), 1-D.
    public static func arange(
        _ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .float32
    ) -> Tensor {
        precondition(step != 0, "arange needs a non-zero step")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor((0..<n).map { start + Double($0) * step }, shape: [n], dtype: dtype)
    }

    /// `n` evenly spaced values from `start` to `end` inclusive, 1-D.
    public static func linspace(_ start: Double, _ end: Double, count n: Int, dtype: DType = .float32)
        -> Tensor
    {
        precondition(n >= 1, "linspace needs at least one point")
        let step = n > 1 ? (end - start) / Double(n - 1) : 0
        return Tensor((0..<n).map { $0 == n - 1 ? end : start + Double($0) * step }, dtype: dtype)
    }

    /// The n×n identity matrix.
    public static func eye(_ n: Int, dtype: DType = .float32) -> Tensor {
        var values = [Double](repeating: 0, count: n * n)
        for i in 0..<n { values[i * n + i] = 1 }
        return Tensor(values, shape: [n, n], dtype: dtype)
    }

    /// Standard normal samples drawn from `generator`.
    public static func randn(
        _ shape: [Int], generator: inout RandomGenerator, dtype: DType = .float32
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        switch dtype {
        case .float32: generator.fillNormal(t.pointer(Float.self), count: t.count)
        case .float64: generator.fillNormal(t.pointer(Double.self), count: t.count)
        }
        return t
    }

    /// Uniform samples on [low, high) drawn from `generator`.
    public static func uniform(
        _ shape: [Int], low: Double = 0, high: Double = 1, generator: inout RandomGenerator,
        dtype: DType = .float32
    ) -> Tensor {
        let t = Tensor(uninitializedShape: shape, dtype: dtype)
        switch dtype {
        case .float32: generator.fillUniform(t.pointer(Float.self), count: t.count, low: low, high: high)
        case .float64: generator.fillUniform(t.pointer(Double.self), count: t.count, low: low, high: high)
        }
        return t
    }
}

extension Tensor: CustomStringConvertible {
    /// The shape, dtype, whether it requires a gradient, and its first eight values.
    public var description: String {
        let values = doubles
        let shown = values.prefix(8).map { String(format: "%.6g", $0) }.joined(separator: ", ")
        let more = values.count > 8 ? ", …" : ""
        let grad = gradNode != nil ? ", requires gradient" : ""
        return "Tensor(shape: \(shape), dtype: \(dtype)\(grad), [\(shown)\(more)])"
    }
}
