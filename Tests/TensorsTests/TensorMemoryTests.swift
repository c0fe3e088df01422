import CKernels
import Testing
@testable import Tensors

// Each test uses its own cache: the shared one serves every tensor of the tests running beside it.

@Test func largeBuffersAreReusedBySize() throws {
    let cache = try #require(ck_buffer_cache_create(1 << 30))
    defer { ck_buffer_cache_destroy(cache) }
    let size = 300_000   // rounds up to 74 pages
    let first = try #require(ck_buffer_allocate(cache, size))
    #expect(Int(bitPattern: first) % 64 == 0)
    let bytes = first.bindMemory(to: UInt8.self, capacity: size)
    bytes.update(repeating: 7, count: size)   // the whole request is writable
    ck_buffer_release(cache, first, size)
    #expect(ck_buffer_cached_bytes(cache) == 74 * 4096)
    // The same page-rounded size takes the cached block; another size does not.
    let again = try #require(ck_buffer_allocate(cache, 301_000))
    #expect(again == first && ck_buffer_cached_bytes(cache) == 0)
    let other = try #require(ck_buffer_allocate(cache, 400_000))
    #expect(other != first)
    ck_buffer_release(cache, again, 301_000)
    ck_buffer_release(cache, other, 400_000)
    #expect(ck_buffer_cached_bytes(cache) == 74 * 4096 + 98 * 4096)
    ck_buffer_clear(cache)
    #expect(ck_buffer_cached_bytes(cache) == 0)
}

@Test func smallBuffersBypassTheCacheAndTheLimitIsKept() throws {
    let cache = try #require(ck_buffer_cache_create(100_000))
    defer { ck_buffer_cache_destroy(cache) }
    let small = try #require(ck_buffer_allocate(cache, 1000))
    #expect(Int(bitPattern: small) % 64 == 0)
    ck_buffer_release(cache, small, 1000)
    #expect(ck_buffer_cached_bytes(cache) == 0)
    // Two blocks of 64 KiB: the second would take the cache past its 100 000-byte limit.
    let a = try #require(ck_buffer_allocate(cache, 65536)), b = try #require(ck_buffer_allocate(cache, 65536))
    ck_buffer_release(cache, a, 65536)
    ck_buffer_release(cache, b, 65536)
    #expect(ck_buffer_cached_bytes(cache) == 65536)
}

@Test func cachedBlocksNoRequestTakesAreUnmappedAtTheNextMiss() throws {
    let cache = try #require(ck_buffer_cache_create(1 << 30))
    defer { ck_buffer_cache_destroy(cache) }
    let old = try #require(ck_buffer_allocate(cache, 1 << 20))
    ck_buffer_release(cache, old, 1 << 20)
    // A loop that reuses one other size: hits, which leave the old block in place.
    for _ in 0..<5000 {
        let block = try #require(ck_buffer_allocate(cache, 1 << 17))
        ck_buffer_release(cache, block, 1 << 17)
    }
    #expect(ck_buffer_cached_bytes(cache) == (1 << 20) + (1 << 17))
    // A miss unmaps the block that has gone unused for longer than the staleness horizon.
    let fresh = try #require(ck_buffer_allocate(cache, 1 << 18))
    #expect(ck_buffer_cached_bytes(cache) == 1 << 17)
    ck_buffer_release(cache, fresh, 1 << 18)
}

@Test func tensorsOfAFreedSizeReuseItsBuffer() {
    // Through the shared cache: values written into a reused buffer are the new tensor's own.
    for round in 0..<3 {
        let t = Tensor.full([1 << 15], Double(round))
        #expect(t.doubles.allSatisfy { $0 == Double(round) })
    }
    #expect(TensorMemory.cacheLimit == 1 << 30)
}
