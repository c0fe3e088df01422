// MARK: - Linear algebra

extension Tensor {
    /// The inverse of a square matrix, or of each matrix of a batch [..., n, n], computed by
    /// Gauss–Jordan elimination with partial pivoting in Double and returned in this tensor's dtype.
    ///
    /// The gradient follows from d(A⁻¹) = −A⁻¹·dA·A⁻¹: for an output gradient G it is −A⁻ᵀ·G·A⁻ᵀ.
    /// A singular matrix gives ±∞ or NaN entries rather than an error.
    public func matrixInverse() -> Tensor {
        precondition(rank >= 2 && shape[rank - 1] == shape[rank - 2], "matrixInverse needs square matrices, not shape \(shape)")
        let n = shape[rank - 1]
        let values = doubles
        var out = [Double](repeating: 0, count: values.count)
        for start in stride(from: 0, to: values.count, by: Swift.max(n * n, 1)) {
            var a = Array(values[start..<(start + n * n)])
            var inv = [Double](repeating: 0, count: n * n)
            for i in 0..<n { inv[i * n + i] = 1 }
            for col in 0..<n {
                let pivot = (col..<n).max { Swift.abs(a[$0 * n + col]) < Swift.abs(a[$1 * n + col]) }!
                if pivot != col {
                    for j in 0..<n { a.swapAt(col * n + j, pivot * n + j); inv.swapAt(col * n + j, pivot * n + j) }
                }
                let p = a[col * n + col]
                for j in 0..<n { a[col * n + j] /= p; inv[col * n + j] /= p }
                for r in 0..<n where r != col {
                    let f = a[r * n + col]
                    if f == 0 { continue }
                    for j in 0..<n { a[r * n + j] -= f * a[col * n + j]; inv[r * n + j] -= f * inv[col * n + j] }
                }
            }
            out.replaceSubrange(start..<(start + n * n), with: inv)
        }
        let result = Tensor(out, shape: shape, dtype: dtype)
        return Tensor.record("matrixInverse", result, [self]) { g, _ in
            [matmul(matmul(result, g, transposeA: true), result, transposeB: true).negated()]
        }
    }
}
