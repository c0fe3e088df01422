import CKernels

/// A lock for short critical sections that the threads of one parallel job tend to enter
/// together (a weight formed once per step for both halves of a batch): a waiter spins instead of
/// sleeping, since waking a sleeping thread costs tens of microseconds, more than such a section.
package final class SpinLock: @unchecked Sendable {
    private let word = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    package init() { word.initialize(to: 0) }

    deinit { word.deallocate() }

    /// Runs `body` holding the lock.
    package func withLock<R>(_ body: () throws -> R) rethrows -> R {
        ck_spin_lock(word)
        defer { ck_spin_unlock(word) }
        return try body()
    }
}
