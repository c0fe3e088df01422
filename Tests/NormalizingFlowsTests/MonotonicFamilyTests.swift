import Foundation
import Testing
@testable import NormalizingFlows

// The bracketing root finder that inverts monotonic transforms without a closed form, and the
// neural monotonic families built on it, against independent computations: closed-form roots,
// the families' formulas evaluated directly in Double, finite differences.

/// The element a `notConverged` error names (`.some(nil)` without one), `nil` for any other outcome.
private func notConvergedElement(_ body: () throws -> Void) -> Int?? {
    do {
        try body()
        return nil
    } catch FlowError.notConverged(let row, _) {
        return .some(row)
    } catch {
        return nil
    }
}

// MARK: - The root finder

@Test("the root finder inverts sinh to its tolerance, near and far", arguments: [DType.float32, .float64])
func rootFinderInvertsSinh(dtype: DType) throws {
    // y over twenty-odd orders of magnitude: far roots need the bracket to double ~6 times.
    let ys = [0, 1e-9, -0.3, 1, -7.5, 42, -1e4, 1e8, -3e11]
    let finder = MonotoneRootFinder(dtype: dtype)
    var calls = 0
    let roots = try finder.solve(targets: ys, start: ys.map { _ in 0 }, what: "sinh") { xs in
        calls += 1
        // f in the dtype it would be computed in.
        return dtype == .float32 ? xs.map { Double(Foundation.sinh(Float($0))) } : xs.map(Foundation.sinh)
    }
    for (y, x) in zip(ys, roots) {
        let exact = Foundation.asinh(y)
        // The bracket is at most 2·tol·(1 + |x|) wide when it stops, and the root lies inside.
        #expect(abs(x - exact) <= 2 * finder.tolerance * (1 + abs(exact)), "\(dtype): sinh⁻¹(\(y)) = \(exact), found \(x)")
    }
    #expect(calls < 80, "\(calls) evaluations")
}

@Test func rootFinderReportsWhatItCannotSolve() throws {
    var finder = MonotoneRootFinder(dtype: .float64)
    // tanh never reaches 2: no bracket, named by its element.
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0.5, 2, 0.1], start: [0, 0, 0], what: "tanh", evaluate: { $0.map(Foundation.tanh) })
    } == .some(1))
    // A map that is NaN somewhere it is evaluated.
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0.5, 3], start: [0, 0], what: "sqrt") { $0.map { $0 < 0 ? .nan : $0.squareRoot() } }
    } == .some(0))
    // Too few steps to narrow a cube root's bracket to 10⁻¹⁴.
    finder.maximumIterations = 2
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0, 5, 9], start: [0, 0, 0], what: "cube") { $0.map { $0 * $0 * $0 } }
    } == .some(1))
    // Non-finite targets give NaN, not an error; exact hits stop at once.
    finder.maximumIterations = 100
    let roots = try finder.solve(targets: [.nan, .infinity, 8], start: [0, 0, 1], what: "cube") { $0.map { $0 * $0 * $0 } }
    #expect(roots[0].isNaN && roots[1].isNaN && abs(roots[2] - 2) <= 6e-14)
}

@Test func anElementsErrorBecomesItsRowsError() {
    let error = FlowError.notConverged(row: 7, "x")
    #expect(error.elementAsRow(elementsPerRow: 3) == .notConverged(row: 2, "x"))
    #expect(error.elementAsRow(elementsPerRow: 1, offset: 2048) == .notConverged(row: 2055, "x"))
    #expect(FlowError.notConverged(row: nil, "x").elementAsRow(elementsPerRow: 3) == .notConverged(row: nil, "x"))
}
