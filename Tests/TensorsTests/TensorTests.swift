import Foundation
import Testing
@testable import Tensors

@Test func creationShapesAndValues() {
    #expect(Tensor.zeros([2, 3]).floats == [0, 0, 0, 0, 0, 0])
    #expect(Tensor.full([2], 2.5, dtype: .float64).doubles == [2.5, 2.5])
    #expect(Tensor.arange(0, 5).floats == [0, 1, 2, 3, 4])
    #expect(Tensor.arange(5, 0, step: -2).floats == [5, 3, 1])
    #expect(Tensor.linspace(0, 1, count: 5).floats == [0, 0.25, 0.5, 0.75, 1])
    #expect(Tensor.eye(2).floats == [1, 0, 0, 1])
    let t = Tensor(rows: [[1, 2, 3], [4, 5, 6]])
    #expect(t.shape == [2, 3] && t.dtype == .float32)
    #expect(t[element: [1, 2]] == 6)
    #expect(Tensor(scalar: 3).shape == [])
}

@Test func copyOnWriteKeepsValueSemantics() {
    let a = Tensor([1, 2, 3] as [Float])
    var b = a
    b.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 10 }
    #expect(a.floats == [1, 2, 3])
    #expect(b.floats == [10, 2, 3])
    let reshaped = a.reshaped(to: [3, 1])
    #expect(reshaped.floats == [1, 2, 3])
}

@Test func broadcastingFollowsNumPyRules() {
    #expect(broadcastShape([3, 1], [4]) == [3, 4])
    #expect(broadcastShape([2, 1, 4], [3, 1]) == [2, 3, 4])
    #expect(broadcastShape([], [2, 2]) == [2, 2])
    let a = Tensor([1, 2, 3], shape: [3, 1], dtype: .float64)
    let b = Tensor([10, 20], shape: [2], dtype: .float64)
    let sum = a + b
    #expect(sum.shape == [3, 2])
    #expect(sum.doubles == [11, 21, 12, 22, 13, 23])
    // A general (non-mergeable) broadcast against a brute-force loop.
    let x = randomTensor([2, 1, 4, 1], seed: 1), y = randomTensor([3, 1, 5], seed: 2)
    let z = x * y
    #expect(z.shape == [2, 3, 4, 5])
    var expected: [Double] = []
    for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { for l in 0..<5 {
        expected.append(x[element: [i, 0, k, 0]] * y[element: [j, 0, l]])
    } } } }
    #expect(z.doubles == expected)
}

@Test func reductionsAgreeWithLoops() {
    let x = randomTensor([3, 4, 5], seed: 3)
    let v = x.doubles
    let s = x.sum(alongAxis: 1)
    #expect(s.shape == [3, 5])
    for i in 0..<3 { for k in 0..<5 {
        let expected = (0..<4).map { v[(i * 4 + $0) * 5 + k] }.reduce(0, +)
        #expect(abs(s[element: [i, k]] - expected) < 1e-12)
    } }
    #expect(abs(x.sum().item - v.reduce(0, +)) < 1e-12)
    #expect(abs(x.mean().item - v.reduce(0, +) / 60) < 1e-12)
    #expect(x.max().item == v.max()!)
    #expect(x.min(alongAxis: 2).shape == [3, 4])
    let lse = x.logSumExp(alongAxis: 2)
    let expected = Foundation.log((0..<5).map { Foundation.exp(v[$0]) }.reduce(0, +))
    #expect(abs(lse[element: [0, 0]] - expected) < 1e-12)
    let cs = Tensor([1, 2, 3, 4], dtype: .float64).cumulativeSum(alongAxis: 0)
    #expect(cs.doubles == [1, 3, 6, 10])
    #expect(Tensor([1, 2, 3, 4], dtype: .float64).cumulativeSum(alongAxis: 0, reverse: true).doubles == [10, 9, 7, 4])
}

@Test func longFloatSumsKeepPrecision() {
    // A naive sequential Float loop is about 1% off here; blocked summation stays within a few ulp.
    let n = 1_000_003
    let x = Tensor.full([n], 0.1)
    let exact = Double(Float(0.1)) * Double(n)
    #expect(abs(x.sum().item - exact) / exact < 2e-6)
}

@Test func logSumExpAndSoftmaxAreStableAtExtremes() {
    let x = Tensor([1000, 1000, -.infinity], dtype: .float64)
    #expect(abs(x.logSumExp(alongAxis: 0).item - (1000 + Foundation.log(2))) < 1e-12)
    #expect(maxAbsDifference(x.softmax(alongAxis: 0).doubles, [0.5, 0.5, 0]) < 1e-12)
    let allNegInf = Tensor([-.infinity, -.infinity], dtype: .float64)
    #expect(allNegInf.logSumExp(alongAxis: 0).item == -.infinity)
}

@Test func matmulAgreesWithNaiveProductForAllTransposes() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = randomTensor(ta ? [7, 5] : [5, 7], seed: 4), b = randomTensor(tb ? [3, 7] : [7, 3], seed: 5)
        let c = matmul(a, b, transposeA: ta, transposeB: tb)
        #expect(c.shape == [5, 3])
        for i in 0..<5 { for j in 0..<3 {
            let expected = (0..<7).map { p in
                (ta ? a[element: [p, i]] : a[element: [i, p]]) * (tb ? b[element: [j, p]] : b[element: [p, j]])
            }.reduce(0, +)
            #expect(abs(c[element: [i, j]] - expected) < 1e-12)
        } }
    }
    let batched = matmul(randomTensor([2, 3, 4], seed: 6), randomTensor([4, 2], seed: 7))
    #expect(batched.shape == [2, 3, 2])
}

@Test func shapeOperations() {
    let x = Tensor((0..<24).map(Double.init), shape: [2, 3, 4], dtype: .float64)
    let p = x.permuted([2, 0, 1])
    #expect(p.shape == [4, 2, 3])
    #expect(p[element: [3, 1, 2]] == x[element: [1, 2, 3]])
    #expect(x.slice(alongAxis: 2, 1..<3).doubles.prefix(4) == [1, 2, 5, 6])
    #expect(x[1].shape == [3, 4] && x[1][element: [0, 0]] == 12)
    let c = Tensor.concatenate([x, x.slice(alongAxis: 1, 0..<1)], alongAxis: 1)
    #expect(c.shape == [2, 4, 4])
    #expect(c[element: [1, 3, 2]] == x[element: [1, 0, 2]])
    #expect(Tensor.stack([x, x], alongAxis: 3).shape == [2, 3, 4, 2])
    #expect(x.indexSelect(alongAxis: 2, [3, 0]).doubles.prefix(2) == [3, 0])
    #expect(x.indexSelect(alongAxis: 1, [2, 0, 2])[element: [1, 2, 3]] == x[element: [1, 2, 3]] && x.indexSelect(alongAxis: 1, [2, 0])[element: [1, 1, 1]] == x[element: [1, 0, 1]])
    let g = Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .float64)
        .gathering(alongAxis: 1, indices: IndexTensor(shape: [2, 2], indices: [1, 1, 0, 1]))
    #expect(g.doubles == [2, 2, 3, 4])
    #expect(x.reshaped(to: [-1, 4]).shape == [6, 4])
    #expect(x.transposed().shape == [2, 4, 3])
}

@Test func searchSortedAndBucketizeMatchBruteForce() {
    let sorted = Tensor([-1, 0, 0, 2, 5], dtype: .float64)
    let values = Tensor([-3, -1, 0, 1, 5, 9], dtype: .float64)
    for right in [false, true] {
        let found = searchSorted(sorted, values, right: right).indices
        let brute = values.doubles.map { v in sorted.doubles.filter { right ? $0 <= v : $0 < v }.count }
        #expect(found == brute)
    }
    // Batched: one sorted row per value row.
    let rows = Tensor([0, 1, 2, 10, 20, 30], shape: [2, 3], dtype: .float64)
    let queries = Tensor([1.5, 25], shape: [2, 1], dtype: .float64)
    #expect(searchSorted(rows, queries).indices == [2, 2])
    #expect(bucketize(Tensor([0.5, 2.5] as [Float]), boundaries: Tensor([1, 2, 3] as [Float])).indices == [0, 2])
}

@Test func argsortIsStableAndPutsNaNLast() {
    let x = Tensor([3, .nan, 1, 3, -2], dtype: .float64)
    #expect(x.argsort().indices == [4, 2, 0, 3, 1])
    #expect(x.argsort(descending: true).indices == [0, 3, 2, 4, 1])
    let (values, _) = Tensor([2, 1, 4, 3], shape: [2, 2], dtype: .float64).sorted(alongAxis: 1)
    #expect(values.doubles == [1, 2, 3, 4])
}

@Test func specialValuesPropagateInsteadOfVanishing() {
    let x = Tensor([.nan, 1, -1] as [Float])
    #expect(x.relu().floats[0].isNaN)
    #expect(x.max().item.isNaN)
    #expect(!x.isFinite)
    #expect(minimum(x, Tensor([0] as [Float])).floats[0].isNaN)
}

@Test func largeTensorsTakeTheParallelPathWithIdenticalResults() {
    var g = RandomGenerator(seed: 12)
    let n = (1 << 18) * 2 + 37
    let x = Tensor.uniform([n], low: -5, high: 5, generator: &g)
    let parallel = x.exp().floats
    var serial = [Float](repeating: 0, count: n)
    x.withUnsafeBufferPointer(as: Float.self) { p in
        serial.withUnsafeMutableBufferPointer { VectorMath.exp(p.baseAddress!, $0.baseAddress!, count: n) }
    }
    #expect(parallel == serial)
}

@Test func matrixInverseInverts() {
    let a = randomTensor([4, 4], seed: 21) + Tensor.eye(4, dtype: .float64) * 2
    #expect(maxAbsDifference(matmul(a, a.matrixInverse()).doubles, Tensor.eye(4, dtype: .float64).doubles) < 1e-12)
}

@Test("linear with a fused activation equals the activation after the layer, values and gradients", arguments: [
    // rows, inputs, outputs, dtype: a small layer, and one large enough to split the backward
    // pass's column ranges over threads (with columns not a multiple of the eight SIMD lanes).
    (9, 6, 13, DType.float64), (9, 6, 13, DType.float32), (1100, 7, 131, DType.float32),
])
func linearWithAFusedActivationEqualsTheActivationAfterTheLayer(_ rows: Int, _ inputs: Int, _ outputs: Int, _ dtype: DType) {
    var g = RandomGenerator(seed: 33)
    let x = Parameter(Tensor.randn([rows, inputs], generator: &g, dtype: dtype))
    let weight = Parameter(Tensor.randn([outputs, inputs], generator: &g, dtype: dtype))
    let bias = Parameter(Tensor.randn([outputs], generator: &g, dtype: dtype))
    let upstream = Tensor.randn([rows, outputs], generator: &g, dtype: dtype)
    func gradients(_ layer: () -> Tensor) -> (value: [Double], grads: [[Double]]) {
        for p in [x, weight, bias] { p.zeroGrad() }
        let y = layer()
        (y * upstream).sum().backward()
        return (y.doubles, [x, weight, bias].map { $0.grad!.doubles })
    }
    let tolerance = dtype == .float32 ? 1e-4 : 1e-12
    for activation in [Activation.relu, .tanh] {
        let reference = gradients { activation(linear(x.value, weight: weight.value, bias: bias.value)) }
        let fused = gradients {
            linear(x.value, weight: weight.value, bias: bias.value, activation: activation)
        }
        #expect(maxAbsDifference(reference.value, fused.value) < tolerance)
        for (a, b) in zip(reference.grads, fused.grads) {
            #expect(maxAbsDifference(a, b) < tolerance * Swift.max(1, a.map(Swift.abs).max() ?? 0))
        }
    }
    // About half the units are cut off, and a NaN input stays NaN through the fused ReLU.
    let y = linear(x.value, weight: weight.value, bias: bias.value, activation: .relu).doubles
    #expect(y.allSatisfy { $0 >= 0 } && y.filter { $0 == 0 }.count > y.count / 4)
    var poisoned = x.value.doubles
    poisoned[0] = .nan
    let nanOutput = linear(Tensor(poisoned, shape: [rows, inputs], dtype: dtype), weight: weight.value,
                           bias: bias.value, activation: .relu).doubles
    #expect(nanOutput[0..<outputs].allSatisfy { $0.isNaN })
}

