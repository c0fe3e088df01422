import Foundation
import Testing
@testable import Tensors

@Test func xoshiroMatchesAnIndependentImplementation() {
    // Reference values from a separate Python implementation of SplitMix64 seeding + xoshiro256**.
    var g = RandomGenerator(seed: 42)
    #expect((0..<4).map { _ in g.next() } == [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1, 0xecb8_ad47_03b3_60a1])
}

@Test func sameSeedSameTensorsDifferentSeedDifferentTensors() {
    var a = RandomGenerator(seed: 7), b = RandomGenerator(seed: 7), c = RandomGenerator(seed: 8)
    let x = Tensor.randn([100], generator: &a), y = Tensor.randn([100], generator: &b), z = Tensor.randn([100], generator: &c)
    #expect(x.floats == y.floats)
    #expect(x.floats != z.floats)
}

@Test func portableLogAgreesWithLibm() {
    var g = RandomGenerator(seed: 3)
    var worst = 0.0
    var values: [Double] = [1, 2, 0.5, 1e-300, 1e300, .leastNormalMagnitude, .greatestFiniteMagnitude, 1.4142135623730951, 0.7071067811865476, 5e-324]
    for _ in 0..<20_000 { values.append(Foundation.exp(80 * (g.nextUniform() - 0.5))) }
    for x in values {
        let error = abs(portableLog(x) - Foundation.log(x)) / max(abs(Foundation.log(x)), 1e-300)
        let ulpError = abs(portableLog(x) - Foundation.log(x)) / Foundation.log(x).ulp
        worst = max(worst, min(error / Double.ulpOfOne, ulpError))
    }
    #expect(worst <= 2, "worst error \(worst) ulp")
}

@Test func normalAndUniformMomentsMatchTheirDistributions() {
    var g = RandomGenerator(seed: 11)
    let n = 200_000
    let normal = Tensor.randn([n], generator: &g, dtype: .float64).doubles
    let mean = normal.reduce(0, +) / Double(n)
    let variance = normal.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
    let fourth = normal.map { pow($0 - mean, 4) }.reduce(0, +) / Double(n)
    // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, kurtosis √(96/n) ≈ 0.022.
    #expect(abs(mean) < 0.01)
    #expect(abs(variance - 1) < 0.015)
    #expect(abs(fourth / (variance * variance) - 3) < 0.1)
    let uniform = Tensor.uniform([n], low: -1, high: 3, generator: &g).doubles
    #expect(uniform.allSatisfy { $0 >= -1 && $0 < 3 })
    #expect(abs(uniform.reduce(0, +) / Double(n) - 1) < 0.01)
}

@Test func permutationIsAPermutationAndUniformish() {
    var g = RandomGenerator(seed: 5)
    var firstCounts = [Int](repeating: 0, count: 4)
    for _ in 0..<4000 {
        let p = g.permutation(4)
        #expect(p.sorted() == [0, 1, 2, 3])
        firstCounts[p[0]] += 1
    }
    #expect(firstCounts.allSatisfy { abs($0 - 1000) < 150 })
}
