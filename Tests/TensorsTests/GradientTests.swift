import Testing
@testable import Tensors

/// One differentiable computation and the points at which its gradient is checked.
struct GradientCase: Sendable, CustomStringConvertible {
    let name: String
    let inputs: [Tensor]
    let function: @Sendable ([Tensor]) -> Tensor
    var description: String { name }

    init(_ name: String, _ inputs: [Tensor], _ function: @escaping @Sendable ([Tensor]) -> Tensor) {
        self.name = name
        self.inputs = inputs
        self.function = function
    }
}

private func r(_ shape: [Int], _ seed: UInt64, _ low: Double = -2, _ high: Double = 2) -> Tensor {
    randomTensor(shape, seed: seed, low: low, high: high)
}

/// Every differentiable operation, with broadcasting and reuse cases.
let gradientCases: [GradientCase] = [
    // Arithmetic and broadcasting
    GradientCase("add", [r([3, 4], 1), r([3, 4], 2)]) { $0[0] + $0[1] },
    GradientCase("add broadcast row", [r([3, 4], 1), r([4], 2)]) { $0[0] + $0[1] },
    GradientCase("add broadcast column", [r([3, 1], 1), r([1, 4], 2)]) { $0[0] + $0[1] },
    GradientCase("add broadcast rank 3", [r([2, 1, 4], 1), r([3, 1], 2)]) { $0[0] + $0[1] },
    GradientCase("subtract broadcast", [r([3, 4], 3), r([3, 1], 4)]) { $0[0] - $0[1] },
    GradientCase("multiply broadcast", [r([2, 3, 4], 5), r([3, 4], 6)]) { $0[0] * $0[1] },
    GradientCase("multiply by scalar tensor", [r([3, 4], 5), r([], 6)]) { $0[0] * $0[1] },
    GradientCase("divide broadcast", [r([3, 4], 7), r([4], 8, 0.5, 2)]) { $0[0] / $0[1] },
    GradientCase("scalar arithmetic", [r([5], 9)]) { 2 * $0[0] - 3 + $0[0] / 4 - 1 / ($0[0] * $0[0] + 1) },
    GradientCase("negate", [r([5], 10)]) { -$0[0] },
    GradientCase("pow tensor", [r([3, 4], 11, 0.5, 2), r([4], 12)]) { pow($0[0], $0[1]) },
    GradientCase("pow real exponent", [r([6], 13, 0.3, 2)]) { $0[0].pow(2.5) },
    GradientCase("pow integer exponent", [r([6], 14)]) { $0[0].pow(3) },
    GradientCase("pow 0, 1 and 2", [r([6], 15)]) { $0[0].pow(0) + $0[0].pow(1) * 0.5 + $0[0].pow(2) * 0.25 },
    GradientCase("minimum", [r([4, 3], 15), r([3], 16)]) { minimum($0[0], $0[1]) },
    GradientCase("maximum", [r([4, 3], 17), r([4, 1], 18)]) { maximum($0[0], $0[1]) },
    GradientCase("where", [r([3, 4], 19), r([4], 20)]) { `where`($0[0].isGreater(than: 0), $0[0] * 2, $0[1]) },
    // Unary
    GradientCase("abs", [awayFromZero([8], seed: 21)]) { $0[0].abs() },
    GradientCase("sqrt", [r([8], 22, 0.2, 3)]) { $0[0].sqrt() },
    GradientCase("square", [r([8], 23)]) { $0[0].square() },
    GradientCase("exp", [r([8], 24)]) { $0[0].exp() },
    GradientCase("log", [r([8], 25, 0.2, 3)]) { $0[0].log() },
    GradientCase("log1p", [r([8], 26, -0.5, 3)]) { $0[0].log1p() },
    GradientCase("expm1", [r([8], 27)]) { $0[0].expm1() },
    GradientCase("tanh", [r([8], 28)]) { $0[0].tanh() },
    GradientCase("sigmoid", [r([8], 29, -5, 5)]) { $0[0].sigmoid() },
    GradientCase("softplus", [r([8], 30, -5, 5)]) { $0[0].softplus() },
    GradientCase("logSigmoid", [r([8], 31, -5, 5)]) { $0[0].logSigmoid() },
    GradientCase("sin", [r([8], 37, -4, 4)]) { $0[0].sin() },
    GradientCase("cos", [r([8], 38, -4, 4)]) { $0[0].cos() },
    GradientCase("relu", [awayFromZero([8], seed: 32)]) { $0[0].relu() },
    GradientCase("elu", [awayFromZero([8], seed: 33)]) { $0[0].elu(alpha: 0.7) },
    GradientCase("leakyRelu", [awayFromZero([8], seed: 34)]) { $0[0].leakyRelu(negativeSlope: 0.1) },
    GradientCase("clamp", [Tensor([-2.5, -1.5, -0.3, 0.2, 0.9, 1.6, 2.4], dtype: .float64)]) { $0[0].clamped(min: -1, max: 1) },
    GradientCase("reciprocal", [awayFromZero([6], seed: 35)]) { $0[0].reciprocal() },
    // Reductions
    GradientCase("sum all", [r([3, 4], 40)]) { $0[0].sum() },
    GradientCase("sum axis 0", [r([3, 4], 41)]) { $0[0].sum(alongAxis: 0) },
    GradientCase("sum axes kept", [r([2, 3, 4], 42)]) { $0[0].sum(alongAxes: [0, 2], keepingDimensions: true) },
    GradientCase("sum negative axis", [r([2, 3, 4], 43)]) { $0[0].sum(alongAxis: -2) },
    GradientCase("mean all", [r([3, 4], 44)]) { $0[0].mean() },
    GradientCase("mean axis", [r([3, 4], 45)]) { $0[0].mean(alongAxis: 1, keepingDimensions: true) },
    GradientCase("max axis", [r([4, 5], 46)]) { $0[0].max(alongAxis: 1) },
    GradientCase("min axis", [r([4, 5], 47)]) { $0[0].min(alongAxis: 0, keepingDimensions: true) },
    GradientCase("max all", [r([4, 5], 48)]) { $0[0].max() },
    GradientCase("logSumExp", [r([3, 5], 49, -4, 4)]) { $0[0].logSumExp(alongAxis: 1) },
    GradientCase("logSumExp large values", [r([3, 5], 50, 500, 505)]) { $0[0].logSumExp(alongAxis: 0) },
    GradientCase("softmax", [r([3, 5], 51)]) { $0[0].softmax(alongAxis: -1) },
    GradientCase("logSoftmax", [r([3, 5], 52)]) { $0[0].logSoftmax(alongAxis: 0) },
    GradientCase("cumulativeSum", [r([3, 5], 53)]) { $0[0].cumulativeSum(alongAxis: 1) },
    GradientCase("cumulativeSum reverse", [r([3, 5], 54)]) { $0[0].cumulativeSum(alongAxis: 0, reverse: true) },
    // Matrix products
    GradientCase("matmul", [r([3, 4], 60), r([4, 5], 61)]) { matmul($0[0], $0[1]) },
    GradientCase("matmul Aᵀ", [r([4, 3], 62), r([4, 5], 63)]) { matmul($0[0], $0[1], transposeA: true) },
    GradientCase("matmul Bᵀ", [r([3, 4], 64), r([5, 4], 65)]) { matmul($0[0], $0[1], transposeB: true) },
    GradientCase("matmul AᵀBᵀ", [r([4, 3], 66), r([5, 4], 67)]) { matmul($0[0], $0[1], transposeA: true, transposeB: true) },
    GradientCase("matmul batched", [r([2, 3, 4], 68), r([2, 4, 5], 69)]) { matmul($0[0], $0[1]) },
    GradientCase("matmul batch × matrix", [r([2, 3, 4], 70), r([4, 5], 71)]) { matmul($0[0], $0[1]) },
    GradientCase("matmul matrix × batch", [r([3, 4], 72), r([2, 4, 5], 73)]) { matmul($0[0], $0[1]) },
    GradientCase("matmul broadcast batch Bᵀ", [r([2, 1, 3, 4], 74), r([3, 5, 4], 75)]) { matmul($0[0], $0[1], transposeB: true) },
    GradientCase("matrixInverse", [r([3, 3], 81) + Tensor.eye(3, dtype: .float64) * 3]) { $0[0].matrixInverse() },
    GradientCase("matrixInverse batched", [r([2, 2, 2], 82) + Tensor.eye(2, dtype: .float64) * 3]) { $0[0].matrixInverse() },
    GradientCase("linear", [r([6, 4], 76), r([3, 4], 77), r([3], 78)]) { linear($0[0], weight: $0[1], bias: $0[2]) },
    GradientCase("linear rank 3 no bias", [r([2, 3, 4], 79), r([5, 4], 80)]) { linear($0[0], weight: $0[1], bias: nil) },
    // Shapes and indexing
    GradientCase("reshape", [r([3, 4], 90)]) { $0[0].reshaped(to: [2, -1]) * r([2, 6], 91) },
    GradientCase("permute", [r([2, 3, 4], 92)]) { $0[0].permuted([2, 0, 1]) },
    GradientCase("transpose", [r([3, 4], 93)]) { $0[0].transposed() * r([4, 3], 94) },
    GradientCase("broadcast to", [r([3, 1], 95)]) { $0[0].broadcast(to: [2, 3, 4]) },
    GradientCase("unsqueeze squeeze", [r([3, 4], 96)]) { $0[0].unsqueezed(axis: 1).exp().squeezed(axis: 1) },
    GradientCase("slice", [r([5, 4], 97)]) { $0[0].slice(alongAxis: 0, 1..<4) },
    GradientCase("slice inner axis", [r([3, 6], 98)]) { $0[0].slice(alongAxis: 1, 2..<5) },
    GradientCase("select", [r([3, 4], 99)]) { $0[0].select(alongAxis: 1, index: 2) },
    GradientCase("concatenate", [r([2, 3], 100), r([2, 2], 101)]) { Tensor.concatenate([$0[0], $0[1], $0[0]], alongAxis: 1) },
    GradientCase("stack", [r([2, 3], 102), r([2, 3], 103)]) { Tensor.stack([$0[0], $0[1]], alongAxis: 1) },
    GradientCase("indexSelect repeated", [r([4, 3], 104)]) { $0[0].indexSelect(alongAxis: 0, [3, 0, 3, 1]) },
    GradientCase("indexSelect middle axis", [r([2, 3, 4], 105)]) { $0[0].indexSelect(alongAxis: 1, [2, 0, 2]) },
    GradientCase("indexSelect last axis", [r([3, 4], 106)]) { $0[0].indexSelect(alongAxis: 1, [3, 0, 3]) },
    GradientCase("gather", [r([3, 5], 105)]) {
        $0[0].gathering(alongAxis: 1, indices: IndexTensor(shape: [3, 2], indices: [4, 0, 1, 1, 2, 3]))
    },
    GradientCase("sorted values", [r([3, 5], 106)]) { $0[0].sorted(alongAxis: 1).values },
    // Reused inputs and deeper graphs
    GradientCase("reuse x·x + eˣ·x", [r([6], 110)]) { $0[0] * $0[0] + $0[0].exp() * $0[0] },
    GradientCase("diamond", [r([3, 4], 111)]) {
        let h = $0[0].tanh()
        return (h * h.sigmoid() + h.softplus()).sum(alongAxis: 1)
    },
    GradientCase("two-layer network", [r([8, 3], 112), r([5, 3], 113), r([5], 114), r([2, 5], 115)]) {
        linear(linear($0[0], weight: $0[1], bias: $0[2]).tanh(), weight: $0[3], bias: nil).logSumExp(alongAxis: 1)
    },
]

@Test("gradient matches central differences in Float64", arguments: gradientCases)
func gradientMatchesFiniteDifferences(_ testCase: GradientCase) {
    let result = gradCheck(testCase.inputs, testCase.function)
    #expect(result.maxRelativeError < 1e-6, "\(testCase.name): \(result)")
    // A gradient that vanishes everywhere would pass trivially; every case here has signal.
    #expect(result.analytic.contains { $0.doubles.contains { $0 != 0 } }, "\(testCase.name): all-zero gradient")
}

@Test func gradCheckDetectsAWrongDerivative() {
    // sin-like op recorded with a deliberately wrong backward (derivative of x² claimed as x).
    let wrong: ([Tensor]) -> Tensor = { xs in
        let x = xs[0]
        return Tensor.record("wrong", Tensor.pointwise(.square, x.detached()), [x]) { g, _ in [g * x.detached()] }
    }
    let result = gradCheck([randomTensor([5], seed: 7)], wrong)
    #expect(result.maxRelativeError > 0.1)
}

@Test func dtypeConversionPassesGradientsBackInTheSourceType() {
    let x = Tensor([0.5, -1.25, 3], dtype: .float64).requiringGradient()
    let y = x.converted(to: .float32) * Tensor([2, 4, 8] as [Float])
    #expect(y.dtype == .float32)
    y.sum().backward()
    #expect(x.grad?.dtype == .float64)
    #expect(x.grad?.doubles == [2, 4, 8])
}
