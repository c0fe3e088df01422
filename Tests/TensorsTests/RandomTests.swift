import Foundation
import Testing
import CKernels
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

@Test func bulkNormalsAreTheSequentialOnesBitForBit() {
    // Counts below, at and above the batch of 256 pairs, odd and even, and a spare left from before.
    for (count, leading) in [(1, 0), (2, 1), (7, 0), (512, 0), (1001, 1), (1500, 3)] {
        var bulk = RandomGenerator(seed: UInt64(count)), sequential = bulk
        for _ in 0..<leading {
            #expect(bulk.nextNormal().bitPattern == sequential.nextNormal().bitPattern)
        }
        let filled = Tensor.randn([count], generator: &bulk, dtype: .float64).doubles
        let expected = (0..<count).map { _ in sequential.nextNormal() }
        #expect(filled.map(\.bitPattern) == expected.map(\.bitPattern), "count \(count) after \(leading)")
        #expect(bulk.nextNormal().bitPattern == sequential.nextNormal().bitPattern, "the state after count \(count)")
        var bulk32 = RandomGenerator(seed: 99), sequential32 = bulk32
        #expect(Tensor.randn([count], generator: &bulk32).floats == (0..<count).map { _ in Float(sequential32.nextNormal()) })
    }
}

@Test func polarFactorsMatchPortableLogBitForBit() {
    var g = RandomGenerator(seed: 12)
    // The extremes of s = u² + v² (u, v multiples of 2⁻⁵²), the √½ switch, and random values.
    var s: [Double] = [0x1p-104, 0x1p-52, 1e-20, 0.5, 0.7071067811865476, 0.7071067811865475, 0.9999999999999999, 0.25, 0.75]
    for _ in 0..<10_001 { s.append(Foundation.exp(-40 * g.nextUniform())) }
    var factors = s
    ck_polar_factors(&factors, factors.count)
    for (x, factor) in zip(s, factors) {
        #expect(factor.bitPattern == (-2 * portableLog(x) / x).squareRoot().bitPattern, "s = \(x)")
    }
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
