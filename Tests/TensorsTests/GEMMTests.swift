import Testing
@testable import Tensors

/// op(A)·op(B) accumulated in Double, for comparison.
private func reference(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: [Double], _ lda: Int,
                       _ b: [Double], _ ldb: Int) -> [Double] {
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n {
        var s = 0.0
        for p in 0..<k { s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]) }
        c[i * n + j] = s
    } }
    return c
}

struct GEMMCase: Sendable, CustomStringConvertible {
    var m, n, k: Int
    var description: String { "\(m)×\(k)·\(k)×\(n)" }
}

let gemmShapes = [
    GEMMCase(m: 1, n: 1, k: 1), GEMMCase(m: 7, n: 13, k: 5), GEMMCase(m: 6, n: 16, k: 256),
    GEMMCase(m: 67, n: 129, k: 33), GEMMCase(m: 200, n: 70, k: 300), GEMMCase(m: 512, n: 2, k: 64),
    GEMMCase(m: 300, n: 64, k: 2), GEMMCase(m: 97, n: 3100, k: 17),
    // Thin products (at most 4 rows or columns of C), with tails in k and in the wide dimension.
    GEMMCase(m: 130, n: 4, k: 19), GEMMCase(m: 3, n: 100, k: 37), GEMMCase(m: 4, n: 53, k: 600),
    GEMMCase(m: 2, n: 3, k: 1000), GEMMCase(m: 64, n: 1, k: 512),
]

@Test("sgemm and dgemm agree with a Double reference", arguments: gemmShapes)
func gemmMatchesReference(_ s: GEMMCase) {
    checkGEMM(s)
}

@Test("Every single-precision kernel level the CPU has agrees with a Double reference")
func gemmKernelLevelsMatchReference() {
    // Shapes that reach the AVX-512 kernels' paths: 12-row and 6-row blocks over panel pairs,
    // a lone last panel, partial rows and columns, and several blocks of k.
    let shapes = [GEMMCase(m: 25, n: 80, k: 300), GEMMCase(m: 13, n: 47, k: 9), GEMMCase(m: 96, n: 64, k: 64),
                  GEMMCase(m: 31, n: 33, k: 520)]
    let widest = GEMM.withKernelLevel(atMost: .max) { $0 }
    var seen: Set<Int> = []
    for level in [0, 1, 2] {
        GEMM.withKernelLevel(atMost: level) { used in
            guard seen.insert(used).inserted else { return }
            for s in shapes {
                checkGEMM(s, label: "level \(used)")
                checkPackedOperand(s, label: "level \(used)")
            }
        }
    }
    #expect(seen == Set(0...widest), "levels run: \(seen.sorted()), CPU's widest: \(widest)")
}

private func checkGEMM(_ s: GEMMCase, label: String = "") {
    var g = RandomGenerator(seed: UInt64(s.m * 1000 + s.n * 10 + s.k))
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        for threads in [1, 2] {
            // Leading dimensions padded by 3 so strides differ from widths.
            let (ar, ac) = ta ? (s.k, s.m) : (s.m, s.k)
            let (br, bc) = tb ? (s.n, s.k) : (s.k, s.n)
            let lda = ac + 3, ldb = bc + 3, ldc = s.n + 3
            let a = (0..<(ar * lda)).map { _ in g.nextUniform() * 2 - 1 }
            let b = (0..<(br * ldb)).map { _ in g.nextUniform() * 2 - 1 }
            let c0 = (0..<(s.m * ldc)).map { _ in g.nextUniform() * 2 - 1 }
            let product = reference(ta, tb, s.m, s.n, s.k, a, lda, b, ldb)
            for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
                // Float: error bound from k roundings of terms of size ≤ 1.
                var cf = c0.map { beta == 0 ? Float.nan : Float($0) }
                let af = a.map(Float.init), bf = b.map(Float.init)
                GEMM.sgemm(transA: ta, transB: tb, m: s.m, n: s.n, k: s.k, alpha: Float(alpha), a: af, lda: lda,
                           b: bf, ldb: ldb, beta: Float(beta), c: &cf, ldc: ldc, threads: threads)
                var cd = c0.map { beta == 0 ? Double.nan : $0 }
                GEMM.dgemm(transA: ta, transB: tb, m: s.m, n: s.n, k: s.k, alpha: alpha, a: a, lda: lda,
                           b: b, ldb: ldb, beta: beta, c: &cd, ldc: ldc, threads: threads)
                var worstFloat = 0.0, worstDouble = 0.0
                for i in 0..<s.m { for j in 0..<s.n {
                    let expected = alpha * product[i * s.n + j] + beta * c0[i * ldc + j]
                    worstFloat = max(worstFloat, abs(Double(cf[i * ldc + j]) - expected))
                    worstDouble = max(worstDouble, abs(cd[i * ldc + j] - expected))
                } }
                let tolerance = 4e-7 * Double(s.k + 4) * max(1, abs(alpha))
                #expect(worstFloat <= tolerance, "\(label) \(s) tA \(ta) tB \(tb) threads \(threads) α \(alpha) β \(beta): \(worstFloat)")
                #expect(worstDouble <= 1e-12 * Double(s.k + 4), "dgemm \(s): \(worstDouble)")
                // Padding columns of C are untouched (NaN where β = 0 filled C with NaN).
                for i in 0..<s.m { for j in s.n..<ldc {
                    let before = c0[i * ldc + j]
                    #expect(beta == 0 ? cd[i * ldc + j].isNaN && cf[i * ldc + j].isNaN
                                      : cd[i * ldc + j] == before && cf[i * ldc + j] == Float(before))
                } }
            }
        }
    }
}

@Test func gemmHandlesEmptyDimensions() {
    var c: [Float] = [1, 2, 3, 4]
    let a: [Float] = [1], b: [Float] = [1]
    GEMM.sgemm(transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1, a: a, lda: 1, b: b, ldb: 2, beta: 0.5, c: &c, ldc: 2)
    #expect(c == [0.5, 1, 1.5, 2])
    GEMM.sgemm(transA: false, transB: false, m: 0, n: 2, k: 3, alpha: 1, a: a, lda: 3, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
    #expect(c == [0.5, 1, 1.5, 2])
}

@Test("A packed operand's products agree with a Double reference, with column depths and rectification",
      arguments: [GEMMCase(m: 1, n: 1, k: 1), GEMMCase(m: 7, n: 13, k: 5), GEMMCase(m: 67, n: 129, k: 33),
                  GEMMCase(m: 200, n: 70, k: 300), GEMMCase(m: 97, n: 3100, k: 17), GEMMCase(m: 5, n: 40, k: 0)])
func packedOperandMatchesReference(_ s: GEMMCase) {
    checkPackedOperand(s)
}

private func checkPackedOperand(_ s: GEMMCase, label prefix: String = "") {
    var g = RandomGenerator(seed: UInt64(s.m * 1000 + s.n * 10 + s.k + 7))
    for transB in [false, true] {
        let (br, bc) = transB ? (s.n, s.k) : (s.k, s.n)
        let lda = s.k + 3, ldb = bc + 3, ldc = s.n + 3
        let a = (0..<(s.m * lda)).map { _ in g.nextUniform() * 2 - 1 }
        let b = (0..<(br * ldb)).map { _ in g.nextUniform() * 2 - 1 }
        let c0 = (0..<(s.m * ldc)).map { _ in g.nextUniform() * 2 - 1 }
        // Depths: none, random ones (some 0, some past k) that differ within a panel of 16, or
        // one per pair of panels (32 columns), which the AVX-512 pair kernels take together.
        let randomDepths = (0..<s.n).map { _ in Int(g.nextUniform() * Double(s.k + 3)) }
        let pairDepths = (0..<s.n).map { randomDepths[$0 / 32 * 32] }
        for depths in [nil, randomDepths, pairDepths] {
            // op(B) with each column zeroed past its depth.
            let masked = (0..<(s.k * s.n)).map { i -> Double in
                let (p, j) = (i / s.n, i % s.n)
                return p < (depths?[j] ?? s.k) ? (transB ? b[j * ldb + p] : b[p * ldb + j]) : 0
            }
            let product = reference(false, false, s.m, s.n, s.k, a, lda, masked, s.n)
            let float = PackedGEMMOperand<Float>(transB: transB, k: s.k, n: s.n, b: b.map(Float.init), ldb: ldb, columnDepths: depths)
            let double = PackedGEMMOperand<Double>(transB: transB, k: s.k, n: s.n, b: b, ldb: ldb, columnDepths: depths)
            // With a bias, C is not read either: it starts as NaN.
            let bias = (0..<s.n).map { _ in g.nextUniform() * 2 - 1 }
            for (beta, rectify, withBias) in [(0.0, false, false), (1.0, false, false), (1.0, true, false), (0.0, true, false),
                                              (0.0, false, true), (0.0, true, true)] {
                let fresh = beta == 0
                var cf = c0.map { fresh ? Float.nan : Float($0) }
                var cd = c0.map { fresh ? Double.nan : $0 }
                bias.map(Float.init).withUnsafeBufferPointer { biasFloat in
                    float.multiply(m: s.m, a: a.map(Float.init), lda: lda, beta: Float(beta), bias: withBias ? biasFloat.baseAddress : nil,
                                   c: &cf, ldc: ldc, rectify: rectify)
                }
                bias.withUnsafeBufferPointer { bias in
                    double.multiply(m: s.m, a: a, lda: lda, beta: beta, bias: withBias ? bias.baseAddress : nil, c: &cd, ldc: ldc, rectify: rectify)
                }
                var worstFloat = 0.0, worstDouble = 0.0
                for i in 0..<s.m { for j in 0..<s.n {
                    let sum = product[i * s.n + j] + (withBias ? bias[j] : beta * c0[i * ldc + j])
                    let expected = rectify ? max(sum, 0) : sum
                    worstFloat = max(worstFloat, abs(Double(cf[i * ldc + j]) - expected))
                    worstDouble = max(worstDouble, abs(cd[i * ldc + j] - expected))
                } }
                let label = "\(prefix) \(s) tB \(transB) depths \(depths != nil) β \(beta) rectify \(rectify) bias \(withBias)"
                #expect(worstFloat <= 4e-7 * Double(s.k + 4), "\(label): \(worstFloat)")
                #expect(worstDouble <= 1e-12 * Double(s.k + 4), "\(label) (Double): \(worstDouble)")
                for i in 0..<s.m { for j in s.n..<ldc {
                    #expect(fresh ? cf[i * ldc + j].isNaN : cf[i * ldc + j] == Float(c0[i * ldc + j]), "\(label): padding")
                } }
            }
        }
    }
}
