import CKernels
import Dispatch
import Foundation

/// Matrix multiplication kernels: C = alpha·op(A)·op(B) + beta·C for row-major matrices.
///
/// Single precision runs packed register-blocked micro-kernels (Goto & van de Geijn 2008) written
/// in C: 6×16 tiles with AVX2+FMA, or 6×32 and 12×32 tiles with AVX-512 over pairs of 16-column
/// panels, chosen at run time, so a default build reaches most of the machine's FMA peak without
/// unsafe compiler flags; other CPUs get a portable kernel with the same packing. Large products
/// are split over row blocks on up to ``maxThreads`` threads.
/// Double precision is a plain cache-blocked loop: it serves Float64 reference checks.
@usableFromInline package enum GEMM {
    nonisolated(unsafe) private static var threadLimit = ProcessInfo.processInfo.activeProcessorCount

    /// The most threads one product may use (default: the active processor count).
    package static var maxThreads: Int {
        get { threadLimit }
        set { threadLimit = Swift.max(1, newValue) }
    }

    /// Whether a vector micro-kernel (AVX2+FMA or AVX-512) is in use on this CPU.
    package static var usesFMAKernel: Bool { ck_uses_fma_kernel() != 0 }

    /// The single-precision micro-kernel in use on this CPU: `avx512`, `avx2+fma` or `portable`.
    package static var kernelName: String {
        switch ck_gemm_kernel_level() {
        case 2: "avx512"
        case 1: "avx2+fma"
        default: "portable"
        }
    }

    /// Runs `body` with single-precision micro-kernels of at most `level` (0 portable, 1 AVX2+FMA,
    /// 2 AVX-512) as far as the CPU has them, passing the level in use, then restores the widest;
    /// for tests and comparisons of the kernels. Products running meanwhile on other threads stay
    /// correct but may use either level.
    static func withKernelLevel<R>(atMost level: Int, _ body: (Int) throws -> R) rethrows -> R {
        let used = Int(ck_set_gemm_kernel_level(Int32(clamping: level)))
        defer { ck_set_gemm_kernel_level(Int32.max) }
        return try body(used)
    }

    /// Multiply-adds per thread below which splitting does not pay for the thread hand-off and
    /// the repeated packing of B.
    static let workPerThread = 1 << 17

    /// C = alpha·op(A)·op(B) + beta·C, row-major; op(X) = Xᵀ when `transX`. With `beta == 0`,
    /// C is overwritten without being read. `threads: nil` chooses by problem size.
    @usableFromInline package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil
    ) {
        gemm(ck_sgemm, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads)
    }

    /// The double-precision counterpart of ``sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)``.
    @usableFromInline package static func dgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int? = nil
    ) {
        gemm(ck_dgemm, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads)
    }

    /// Runs the C `kernel` of either precision over blocks of C's rows.
    private static func gemm<T>(
        _ kernel: (Int32, Int32, Int, Int, Int, T, UnsafePointer<T>?, Int, UnsafePointer<T>?, Int, T, UnsafeMutablePointer<T>?, Int) -> Void,
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: T, _ a: UnsafePointer<T>, _ lda: Int,
        _ b: UnsafePointer<T>, _ ldb: Int, _ beta: T, _ c: UnsafeMutablePointer<T>, _ ldc: Int, _ threads: Int?
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m \(m), n \(n), k \(k)")
        let box = UncheckedSendable((a, b, c))
        forEachRowBlock(m: m, n: n, k: k, requested: threads) { start, count in
            let (a, b, c) = box.value
            kernel(transA ? 1 : 0, transB ? 1 : 0, count, n, k, alpha, transA ? a + start : a + start * lda, lda,
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
        // Inside a parallel job the blocks would run one after the other, each packing B again.
        if Parallel.isInsideJob { return 1 }
        let work = m * n * k
        return Swift.max(1, Swift.min(maxThreads, work / workPerThread, m / 6))
    }
}

/// A right-hand GEMM operand op(B) [k, n] packed once into the micro-kernel's column panels,
/// for many products C = A·op(B) + beta·C with different left operands.
///
/// ``GEMM/sgemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)`` packs B on every
/// call, which costs about as much as the product itself for a few dozen rows of A. A layer's
/// weights applied to a batch chunk by chunk (so each chunk's activations stay in cache) are
/// packed once here instead of once per chunk.
///
/// A prefix-masked operand, whose column j is zero below its first `columnDepths[j]` rows (a MADE
/// layer with its inputs in degree order), is stored and multiplied only down to each panel of 16
/// columns' deepest row, so the product skips the mask's zeros at the kernel's own granularity.
///
/// `Double` keeps op(B) as a row-major copy and multiplies with the plain kernel. Products run on
/// the calling thread.
package struct PackedGEMMOperand<T: TensorScalar>: Sendable {
    /// op(B)'s rows (the products' inner dimension) and columns.
    package let k: Int, n: Int
    /// Float: the packed panels; Double: op(B), row-major, with the rows past each column's depth zeroed.
    private var storage: [T]
    /// Per column, the rows it holds.
    private let columnDepths: [Int]
    /// Float: per panel of 16 columns, the rows it holds.
    private let panelDepths: [Int]

    /// Columns per packed panel.
    private static var panelWidth: Int { 16 }

    /// Packs op(B) = (transB ? Bᵀ : B), of shape [k, n], read from `b` with leading dimension
    /// `ldb`. With `columnDepths`, column j is taken as zero past its first `columnDepths[j]` rows.
    package init(transB: Bool, k: Int, n: Int, b: UnsafePointer<T>, ldb: Int, columnDepths: [Int]? = nil) {
        precondition(k >= 0 && n >= 0, "PackedGEMMOperand: negative size k \(k), n \(n)")
        precondition(columnDepths.map { $0.count == n } ?? true, "PackedGEMMOperand: \(columnDepths?.count ?? 0) column depths for \(n) columns")
        self.k = k
        self.n = n
        let depths = columnDepths ?? [Int](repeating: k, count: n)
        self.columnDepths = depths
        if T.self == Float.self {
            let width = Self.panelWidth
            panelDepths = stride(from: 0, to: n, by: width).map { j in
                Swift.min(k, Swift.max(0, depths[j..<Swift.min(n, j + width)].max()!))
            }
            storage = [T](repeating: 0, count: ck_sgemm_packed_count(k, n, panelDepths))
        } else {
            panelDepths = []
            storage = [T](repeating: 0, count: k * n)
        }
        pack(transB: transB, b: b, ldb: ldb)
    }

    /// Packs new values of op(B), of the same shape and column depths, into the same storage
    /// (in place unless another copy of this operand shares it).
    package mutating func pack(transB: Bool, b: UnsafePointer<T>, ldb: Int) {
        let (k, n, depths, panelDepths, width) = (k, n, columnDepths, panelDepths, Self.panelWidth)
        storage.withUnsafeMutableBufferPointer { buffer in
            guard T.self == Float.self else {
                for i in 0..<(k * n) {
                    let (row, column) = (i / n, i % n)
                    buffer[i] = row >= depths[column] ? 0 : transB ? b[column * ldb + row] : b[row * ldb + column]
                }
                return
            }
            guard !buffer.isEmpty else { return }
            ck_sgemm_pack(transB ? 1 : 0, k, n, UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), ldb, panelDepths,
                          UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: Float.self))
            // A panel holds its deepest column's rows; the others' are zeroed past their depth.
            var panelStart = 0
            for (panel, depth) in panelDepths.enumerated() {
                for j in (panel * width)..<Swift.min(n, (panel + 1) * width) where depths[j] < depth {
                    for p in Swift.max(0, depths[j])..<depth { buffer[panelStart + p * width + j - panel * width] = 0 }
                }
                panelStart += depth * width
            }
        }
    }

    /// C = A·op(B) + beta·C for row-major A [m, k] (leading dimension `lda`) and C [m, n], or
    /// C = A·op(B) + `bias` in every row when a bias (n values) is given, then C = max(C, 0) when
    /// `rectify` (a fused ReLU). With a bias or `beta == 0`, C is overwritten without being read.
    package func multiply(m: Int, a: UnsafePointer<T>, lda: Int, beta: T = 0, bias: UnsafePointer<T>? = nil,
                         c: UnsafeMutablePointer<T>, ldc: Int, rectify: Bool = false) {
        precondition(m >= 0, "PackedGEMMOperand.multiply: negative m \(m)")
        storage.withUnsafeBufferPointer { packed in
            guard T.self == Float.self else {
                if let bias { broadcastRow(bias, count: n, into: c, rows: m, stride: ldc) }
                T.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                       b: packed.baseAddress ?? a, ldb: Swift.max(n, 1), beta: bias == nil ? beta : 1, c: c, ldc: ldc)
                if rectify { Activation.relu.apply(inPlace: c, rows: m, columns: n, stride: ldc) }
                return
            }
            ck_sgemm_packed(m, n, k, 1, UnsafeRawPointer(a).assumingMemoryBound(to: Float.self), lda,
                            packed.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                            panelDepths, Float(beta), bias.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                            rectify ? 1 : 0, UnsafeMutableRawPointer(c).assumingMemoryBound(to: Float.self), ldc)
        }
    }
}
