@testable import Tensors

/// Float64 random inputs for tests.
func randomTensor(_ shape: [Int], seed: UInt64, low: Double = -2, high: Double = 2) -> Tensor {
    var g = RandomGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, generator: &g, dtype: .float64)
}

/// Values whose magnitudes stay away from zero (for |x|, relu and other kinks at 0).
func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
    let t = randomTensor(shape, seed: seed, low: 0.2, high: 2)
    let signs = randomTensor(shape, seed: seed &+ 99).sign()
    return t * signs
}

func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}
