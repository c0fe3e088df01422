import CKernels

/// Wraps a value (typically raw pointers) so it can cross into a parallel loop's
/// `@Sendable` closure; the caller guarantees the items touch disjoint memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Splitting compute-bound loops over the cores.
///
/// Loops run on a small fork-join pool (`CKernels/pool.c`) whose workers spin briefly between
/// jobs, so handing out a job costs well under a microsecond instead of the tens of
/// microseconds a sleeping thread needs to wake. That is what makes splitting pay for the
/// 10–100 µs products and activations of small flows. A loop started while another runs (from
/// another thread, or from inside an item) runs serially on its caller.
package enum Parallel {
    /// Threads a loop can use: the pool's workers plus the caller (the active processors, at most 8).
    package static let workers = Int(ck_pool_threads())

    /// Whether this thread is running a parallel loop's item, where a nested loop runs serially.
    package static var isInsideJob: Bool { ck_pool_in_job() != 0 }

    /// Elements below which splitting an elementwise loop does not pay.
    package static let elementwiseThreshold = 1 << 15

    /// Runs `body(i)` for every `i` in `0..<count`, spread over the pool's threads; returns when
    /// all have run. Items are claimed one at a time, so uneven items balance.
    package static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var item = body
            withUnsafeMutablePointer(to: &item) { pointer in
                ck_pool_run(count, { context, index in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
                }, pointer)
            }
        }
    }

    /// Runs `body(start, end)` over `0..<count` in contiguous chunks (multiples of 64), four per
    /// thread so that uneven elements (a spline's tails against its bins) still balance, when
    /// `count` reaches `threshold`; otherwise once over the whole range.
    package static func chunks(_ count: Int, threshold: Int = elementwiseThreshold, _ body: (Int, Int) -> Void) {
        let parts = count >= threshold && workers > 1 && !isInsideJob ? 4 * workers : 1
        if parts <= 1 {
            body(0, count)
            return
        }
        let chunk = ((count + parts - 1) / parts + 63) / 64 * 64
        forEach(parts) { i in
            let start = i * chunk, end = Swift.min(count, start + chunk)
            if start < end { body(start, end) }
        }
    }
}
