import CKernels

/// The memory behind tensors.
///
/// Buffers of 64 KiB and more are mapped pages. When a tensor is freed its buffer goes to a
/// cache, and the next tensor of the same (page-rounded) size takes it, so a training loop,
/// which allocates the same sizes every step, stops allocating after its first step: no page
/// faults and no heap fragmentation (on `maf-large`, glibc's heap had grown to 1.9× the live
/// tensors). A request the cache cannot serve first unmaps the blocks that no request has taken
/// for 4096 large requests (a training step makes a few hundred), so the sizes of a finished
/// phase do not stay.
///
/// Smaller buffers come from `malloc`.
public enum TensorMemory {
    /// Bytes held in the cache for reuse (not part of any live tensor).
    public static var cachedBytes: Int { Int(ck_buffer_cached_bytes(ck_shared_buffer_cache())) }

    /// The most bytes the cache keeps (default 1 GiB); a freed buffer that would exceed it is
    /// unmapped at once. Lowering the limit does not unmap what is already cached.
    public static var cacheLimit: Int {
        get { Int(ck_buffer_limit(ck_shared_buffer_cache())) }
        set { ck_buffer_set_limit(ck_shared_buffer_cache(), size_t(Swift.max(0, newValue))) }
    }

    /// Returns every cached buffer to the operating system.
    public static func clearCache() { ck_buffer_clear(ck_shared_buffer_cache()) }

    /// A 64-byte aligned buffer of at least `bytes` bytes.
    static func allocate(byteCount bytes: Int) -> UnsafeMutableRawPointer {
        guard let pointer = ck_buffer_allocate(ck_shared_buffer_cache(), size_t(bytes)) else {
            fatalError("out of memory allocating \(bytes) bytes for a tensor")
        }
        return pointer
    }

    /// Returns a buffer from ``allocate(byteCount:)`` with the same byte count.
    static func release(_ pointer: UnsafeMutableRawPointer, byteCount bytes: Int) {
        ck_buffer_release(ck_shared_buffer_cache(), pointer, size_t(bytes))
    }
}
