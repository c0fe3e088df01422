/// The contiguous, 64-byte aligned buffer behind one or more ``Tensor`` values.
///
/// Tensors share a storage until one of them is mutated (copy-on-write).
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let count: Int
    @usableFromInline let dtype: DType

    /// Allocates `count` uninitialised elements.
    @usableFromInline
    init(count: Int, dtype: DType) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        self.dtype = dtype
        self.base = TensorMemory.allocate(byteCount: Self.byteCount(count, dtype))
    }

    deinit { TensorMemory.release(base, byteCount: Self.byteCount(count, dtype)) }

    private static func byteCount(_ count: Int, _ dtype: DType) -> Int { max(count * dtype.byteSize, 64) }

    @inlinable
    func pointer<T: TensorScalar>(_: T.Type) -> UnsafeMutablePointer<T> {
        base.assumingMemoryBound(to: T.self)
    }

    /// A new storage with the same contents.
    @usableFromInline
    func copy() -> TensorStorage {
        let other = TensorStorage(count: count, dtype: dtype)
        other.base.copyMemory(from: base, byteCount: count * dtype.byteSize)
        return other
    }
}
