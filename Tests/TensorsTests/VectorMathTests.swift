import Foundation
import Testing
@testable import Tensors

struct VectorMathCase: Sendable, CustomStringConvertible {
    let name: String
    let kernel: @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    let reference: @Sendable (Double) -> Double
    let range: ClosedRange<Double>
    /// Allowed error in units of Float's epsilon, relative to max(|reference|, floor).
    let ulps: Double
    let floor: Double
    var description: String { name }
}

private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
private func softplus(_ x: Double) -> Double { max(x, 0) + Foundation.log1p(Foundation.exp(-abs(x))) }

let vectorMathCases: [VectorMathCase] = [
    .init(name: "exp", kernel: { VectorMath.exp($0, $1, count: $2) }, reference: { Foundation.exp($0) }, range: -87...88.7, ulps: 3, floor: 0),
    .init(name: "log", kernel: { VectorMath.log($0, $1, count: $2) }, reference: { Foundation.log($0) }, range: 1e-30...1e30, ulps: 3, floor: 1e-7),
    .init(name: "log1p", kernel: { VectorMath.log1p($0, $1, count: $2) }, reference: { Foundation.log1p($0) }, range: -0.999...1e6, ulps: 4, floor: 0),
    .init(name: "expm1", kernel: { VectorMath.expm1($0, $1, count: $2) }, reference: { Foundation.expm1($0) }, range: -80...88, ulps: 5, floor: 0),
    .init(name: "tanh", kernel: { VectorMath.tanh($0, $1, count: $2) }, reference: { Foundation.tanh($0) }, range: -12...12, ulps: 4, floor: 0),
    .init(name: "sigmoid", kernel: { VectorMath.sigmoid($0, $1, count: $2) }, reference: sigmoid, range: -80...30, ulps: 4, floor: 0),
    .init(name: "softplus", kernel: { VectorMath.softplus($0, $1, count: $2) }, reference: softplus, range: -80...80, ulps: 4, floor: 0),
    .init(name: "logSigmoid", kernel: { VectorMath.logSigmoid($0, $1, count: $2) }, reference: { -softplus(-$0) }, range: -80...80, ulps: 4, floor: 0),
]

/// Float inputs: a dense sweep of the range, values near 0, and random points.
private func inputs(_ range: ClosedRange<Double>) -> [Float] {
    var g = RandomGenerator(seed: 1)
    var values: [Float] = (0...20_000).map { Float(range.lowerBound + (range.upperBound - range.lowerBound) * Double($0) / 20_000) }
    for e in stride(from: -30.0, through: 0, by: 0.25) {
        for s in [1.0, -1.0] where range.contains(s * Foundation.pow(10, e)) { values.append(Float(s * Foundation.pow(10, e))) }
    }
    if range.lowerBound > 0 {   // log-spaced for wide positive ranges
        let (a, b) = (Foundation.log(range.lowerBound), Foundation.log(range.upperBound))
        values += (0..<20_000).map { _ in Float(Foundation.exp(a + (b - a) * g.nextUniform())) }
    } else {
        values += (0..<20_000).map { _ in Float(range.lowerBound + (range.upperBound - range.lowerBound) * g.nextUniform()) }
    }
    return values.filter { range.contains(Double($0)) }
}

@Test("Float kernels agree with Double libm", arguments: vectorMathCases)
func vectorKernelIsAccurate(_ c: VectorMathCase) {
    let x = inputs(c.range)
    var y = [Float](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { c.kernel(xp.baseAddress!, $0.baseAddress!, x.count) } }
    var worst = 0.0, worstAt: Float = 0
    for (xi, yi) in zip(x, y) {
        let expected = c.reference(Double(xi))
        let error = abs(Double(yi) - expected) / max(abs(expected), c.floor, Double(Float.leastNormalMagnitude)) / Double(Float.ulpOfOne)
        if error > worst { worst = error; worstAt = xi }
    }
    #expect(worst <= c.ulps, "\(c.name): \(worst) ulp at x = \(worstAt)")
}

@Test func vectorKernelsHandleSpecialValues() {
    func run(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f(xp.baseAddress!, $0.baseAddress!, x.count) } }
        return y
    }
    let special: [Float] = [.infinity, -.infinity, 100, -100, 0, -0.0, 1e-30, .nan]
    let e = run(VectorMath.exp, special)
    #expect(e[0] == .infinity && e[1] == 0 && e[2] == .infinity && e[3] == 0 && e[4] == 1 && e[7].isNaN)
    let l = run(VectorMath.log, [0, -1, .infinity, 1, .leastNonzeroMagnitude, .nan, .leastNormalMagnitude, 1e-40])
    #expect(l[0] == -.infinity && l[1].isNaN && l[2] == .infinity && l[3] == 0 && l[5].isNaN)
    #expect(abs(Double(l[4]) - Foundation.log(Double(Float.leastNonzeroMagnitude))) < 1e-4)
    #expect(abs(Double(l[7]) - Foundation.log(Double(Float(1e-40)))) < 1e-4)
    let t = run(VectorMath.tanh, special)
    #expect(t[0] == 1 && t[1] == -1 && t[2] == 1 && t[3] == -1 && t[4] == 0 && t[7].isNaN)
    let s = run(VectorMath.sigmoid, special)
    #expect(s[0] == 1 && s[1] == 0 && s[2] == 1 && s[3] >= 0 && s[3] < 1e-40 && s[4] == 0.5 && s[7].isNaN)
    let sp = run(VectorMath.softplus, special)
    #expect(sp[0] == .infinity && sp[1] == 0 && sp[2] == 100 && sp[4] == Float(Foundation.log(2.0)) && sp[7].isNaN)
    #expect(run(VectorMath.softplus, [-50])[0] > 0)   // e⁻⁵⁰, not 0
    let ls = run(VectorMath.logSigmoid, special)
    #expect(ls[0] == 0 && ls[1] == -.infinity && ls[3] == -100 && ls[7].isNaN)
    let m1 = run(VectorMath.expm1, [1e-10, -1e-10, .infinity, -.infinity, .nan])
    #expect(m1[0] == 1e-10 && m1[1] == -1e-10 && m1[2] == .infinity && m1[3] == -1 && m1[4].isNaN)
    #expect(run(VectorMath.log1p, [1e-10, -1, .infinity])[0] == 1e-10)
}

@Test func vectorKernelsHandleEveryTailLengthAndWorkInPlace() {
    for n in 0...17 {
        var x = (0..<n).map { Float($0) * 0.37 - 2 }
        let expected = x.map { Float(Foundation.exp(Double($0))) }
        x.withUnsafeMutableBufferPointer { VectorMath.exp($0.baseAddress!, $0.baseAddress!, count: n) }
        #expect(zip(x, expected).allSatisfy { abs($0 - $1) <= 3e-7 * abs($1) }, "count \(n)")
    }
}
