import CKernels
import Dispatch
import Foundation

/// Matrix multiplication kernels: C = alpha·op(A)·op(B) + beta·C for row-major matrices.
///
/// Single precision runs a packed 6×16 register-blocked micro-kernel (Goto & van de Geijn 2008)
/// written in C with AVX2+FMA chosen at run time, so a default build reaches most of the
/// machine's FMA peak without unsafe compiler flags; other CPUs get a portable kernel with the
/// same packing. Large products are split over row blocks on up to ``maxThreads`` threads.
/// Double precision is a plain cache-blocked loop: it serves Float64 reference checks.
public enum GEMM {
    nonisolated(unsafe) private static var threadLimit = ProcessInfo.processInfo.activeProcessorCount

    /// The most threads one product may use (default: the active processor count).
    public static var maxThreads: Int {
        get { threadLimit }
        set { threadLimit = Swift.max(1, newValue) }
    }

    /// Whether the AVX2+FMA micro-kernel is in use on this CPU.
    public static var usesFMAKernel: Bool { ck_uses_fma_kernel() != 0 }

    /// Multiply-adds per thread below which splitting does not pay for the thread hand-off and
    /// the repeated packing of B.
    static let workPerThread = 1 << 17

    /// C = alpha·op(A)·op(B) + beta·C, row-major; op(X) = Xᵀ when `transX`. With `beta == 0`,
    /// C is overwritten without being read. `threads: nil` chooses by problem size.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size m \(m), n \(n), k \(k)")
        let box = UncheckedSendable((a, b, c))
        forEachRowBlock(m: m, n: n, k: k, requested: threads) { start, count in
            let (a, b, c) = box.value
            ck_sgemm(transA ? 1 : 0, transB ? 1 : 0, count, n, k, alpha, transA ? a + start : a + start * lda, lda,
                     b, ldb, beta, c + start * ldc, ldc)
        }
    }

    /// The double-precision counterpart of ``sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)``.
    public static func dgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int? = nil
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "dgemm: negative size m \(m), n \(n), k \(k)")
        let box = UncheckedSendable((a, b, c))
        forEachRowBlock(m: m, n: n, k: k, requested: threads) { start, count in
            let (a, b, c) = box.value
            ck_dgemm(transA ? 1 : 0, transB ? 1 : 0, count, n, k, alpha, transA ? a + start : a + start * lda, lda,
                     b, ldb, beta, c + start * ldc, ldc)
        }
    }

    /// Runs `body(firstRow, rowCount)` over blocks of C's rows (multiples of the 6-row
    /// micro-panel), in parallel when the product is large enough; an empty product still runs
    /// once so that C is scaled by beta.
    private static func forEachRowBlock(m: Int, n: Int, k: Int, requested: Int?, _ body: (Int, Int) -> Void) {
        let parts = partitions(m: m, n: n, k: k, requested: requested)
        if parts <= 1 {
            body(0, m)
            return
        }
        let rows = ((m + parts - 1) / parts + 5) / 6 * 6
        Parallel.forEach(parts) { i in
            let start = i * rows
            if start < m { body(start, Swift.min(rows, m - start)) }
        }
    }

    /// How many row blocks to run in parallel.
    static func partitions(m: Int, n: Int, k: Int, requested: Int?) -> Int {
        if let requested { return Swift.max(1, Swift.min(requested, m / 6 + 1)) }
        let work = m * n * k
        return Swift.max(1, Swift.min(maxThreads, work / workPerThread, m / 6))
    }
}
