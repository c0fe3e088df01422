/// For each value, the index at which it would be inserted into `sorted` to keep it sorted
/// (NumPy/PyTorch `searchsorted`): the number of entries < value, or ≤ value when `right`.
///
/// `sorted` has shape [..., K] (ascending along its last axis); `values` has shape [..., M] with
/// the same leading dimensions, or `sorted` is 1-D and shared by every value. Not differentiable.
public func searchSorted(_ sorted: Tensor, _ values: Tensor, right: Bool = false) -> IndexTensor {
    let k = sorted.shape.last ?? 1
    let shared = sorted.rank == 1
    precondition(shared || Array(sorted.shape.dropLast()) == Array(values.shape.dropLast()),
        "searchSorted: leading dimensions of \(sorted.shape) and \(values.shape) differ")
    let s = sorted.doubles, v = values.doubles
    let m = values.shape.last ?? 1
    var out = [Int](repeating: 0, count: v.count)
    for (flat, value) in v.enumerated() {
        let base = shared ? 0 : (flat / Swift.max(m, 1)) * k
        var lo = 0, hi = k
        while lo < hi {
            let mid = (lo + hi) / 2
            let entry = s[base + mid]
            if right ? entry <= value : entry < value { lo = mid + 1 } else { hi = mid }
        }
        out[flat] = lo
    }
    return IndexTensor(shape: values.shape, indices: out)
}

/// The bucket of each value among ascending 1-D `boundaries` (PyTorch `bucketize`):
/// i such that boundaries[i−1] < v ≤ boundaries[i], or with `right`, boundaries[i−1] ≤ v < boundaries[i].
public func bucketize(_ values: Tensor, boundaries: Tensor, right: Bool = false) -> IndexTensor {
    precondition(boundaries.rank == 1, "bucketize needs 1-D boundaries, not shape \(boundaries.shape)")
    return searchSorted(boundaries, values, right: right)
}

extension Tensor {
    /// The indices that sort each slice along `axis` (stable; NaN last).
    public func argsort(alongAxis axis: Int = -1, descending: Bool = false) -> IndexTensor {
        let axis = normalizedAxis(axis)
        let (outer, size, inner) = split(at: axis)
        let x = doubles
        var out = [Int](repeating: 0, count: count)
        var order = [Int](repeating: 0, count: size)
        for o in 0..<outer {
            for i in 0..<inner {
                let at = { (j: Int) in x[(o * size + j) * inner + i] }
                for j in 0..<size { order[j] = j }
                order.sort { p, q in
                    let (u, v) = (at(p), at(q))
                    if u.isNaN != v.isNaN { return v.isNaN }
                    if u.isNaN { return p < q }
                    if u == v { return p < q }
                    return descending ? u > v : u < v
                }
                for j in 0..<size { out[(o * size + j) * inner + i] = order[j] }
            }
        }
        return IndexTensor(shape: shape, indices: out)
    }

    /// The values sorted along `axis` and the indices they came from; differentiable in the values.
    public func sorted(alongAxis axis: Int = -1, descending: Bool = false) -> (values: Tensor, indices: IndexTensor) {
        let indices = argsort(alongAxis: axis, descending: descending)
        return (gathering(alongAxis: axis, indices: indices), indices)
    }
}
