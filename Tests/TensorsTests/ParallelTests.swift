import Dispatch
import Foundation
import Testing
@testable import Tensors

/// Counts how often each index of a parallel loop ran, from any thread.
private final class Visits: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [Int]
    init(_ count: Int) { counts = [Int](repeating: 0, count: count) }
    func visit(_ i: Int) { lock.withLock { counts[i] += 1 } }
    var all: [Int] { lock.withLock { counts } }
}

@Test(arguments: [0, 1, 2, 3, 17, 1000])
func parallelForEachRunsEveryIndexOnce(count: Int) {
    let visits = Visits(count)
    Parallel.forEach(count) { visits.visit($0) }
    #expect(visits.all == [Int](repeating: 1, count: count))
}

@Test func parallelLoopsNestedInsideAnItemRunSeriallyAndCompletely() {
    let visits = Visits(8 * 50)
    Parallel.forEach(8) { i in
        Parallel.forEach(50) { j in visits.visit(i * 50 + j) }
    }
    #expect(visits.all == [Int](repeating: 1, count: 400))
}

@Test func concurrentCallersEachGetTheirWholeLoop() {
    // Callers on several threads at once: one job owns the pool, the others run serially.
    let (callers, rounds, items) = (6, 50, 6)
    let visits = Visits(callers * rounds * items)
    DispatchQueue.concurrentPerform(iterations: callers) { caller in
        for round in 0..<rounds {
            Parallel.forEach(items) { j in visits.visit((caller * rounds + round) * items + j) }
        }
    }
    #expect(visits.all == [Int](repeating: 1, count: callers * rounds * items))
}

@Test func parallelChunksCoverTheRangeInOrderWithoutOverlap() {
    for count in [0, 1, 63, 64, 65, Parallel.elementwiseThreshold + 1, 3 * Parallel.elementwiseThreshold + 5] {
        let visits = Visits(count)
        Parallel.chunks(count) { start, end in
            #expect(start <= end && end <= count)
            for i in start..<end { visits.visit(i) }
        }
        #expect(visits.all == [Int](repeating: 1, count: count))
    }
}

@Test func manyShortJobsInARowHandOffCorrectly() {
    // Thousands of back-to-back jobs exercise the workers' spin-then-sleep hand-off.
    let visits = Visits(4)
    for _ in 0..<5000 { Parallel.forEach(4) { visits.visit($0) } }
    #expect(visits.all == [Int](repeating: 5000, count: 4))
}
