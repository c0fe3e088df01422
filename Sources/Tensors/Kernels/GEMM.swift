// TEMPORARY naive stub; replaced by the packed kernel.
import Foundation
public enum GEMM {
    nonisolated(unsafe) public static var maxThreads: Int = ProcessInfo.processInfo.activeProcessorCount
    public static var usesFMAKernel: Bool { false }
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil) {
        naive(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func dgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int, threads: Int? = nil) {
        naive(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    static func naive<T: BinaryFloatingPoint>(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: T,
        _ a: UnsafePointer<T>, _ lda: Int, _ b: UnsafePointer<T>, _ ldb: Int, _ beta: T,
        _ c: UnsafeMutablePointer<T>, _ ldc: Int) {
        for i in 0..<m { for j in 0..<n {
            var s: T = 0
            for p in 0..<k { s += (tA ? a[p * lda + i] : a[i * lda + p]) * (tB ? b[j * ldb + p] : b[p * ldb + j]) }
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
        } }
    }
}
