import Foundation
import NormalizingFlows

/// The `vector-math` task: ns per element of each SIMD8 Float kernel against a scalar libm loop
/// on 32K elements, and its largest error (in Float ulps) over a sweep against Double libm.
enum VectorMathBench {
    typealias Kernel = (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void

    static var functions: [(name: String, simd: Kernel, scalar: (Float) -> Float, exact: (Double) -> Double, range: ClosedRange<Double>)] { [
        ("exp", { VectorMath.exp($0, $1, count: $2) }, { Foundation.exp($0) }, { Foundation.exp($0) }, -87...88),
        ("log", { VectorMath.log($0, $1, count: $2) }, { Foundation.log($0) }, { Foundation.log($0) }, 1e-6...1e6),
        ("log1p", { VectorMath.log1p($0, $1, count: $2) }, { Foundation.log1p($0) }, { Foundation.log1p($0) }, -0.99...100),
        ("expm1", { VectorMath.expm1($0, $1, count: $2) }, { Foundation.expm1($0) }, { Foundation.expm1($0) }, -20...20),
        ("tanh", { VectorMath.tanh($0, $1, count: $2) }, { Foundation.tanh($0) }, { Foundation.tanh($0) }, -10...10),
        ("sigmoid", { VectorMath.sigmoid($0, $1, count: $2) }, { 1 / (1 + Foundation.exp(-$0)) }, { 1 / (1 + Foundation.exp(-$0)) }, -30...30),
        ("softplus", { VectorMath.softplus($0, $1, count: $2) },
         { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) },
         { Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) }, -30...30),
    ] }

    static func run(repetitions: Int?) -> [BenchRecord] {
        let n = 32_768
        return functions.map { f in
            let x = (0..<n).map { Float(f.range.lowerBound + (f.range.upperBound - f.range.lowerBound) * Double($0) / Double(n - 1)) }
            var y = [Float](repeating: 0, count: n)
            let reps = repetitions ?? 200
            let simd = Timing.median(repetitions: reps) {
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { f.simd(xp.baseAddress!, $0.baseAddress!, n) } }
            }
            var worst = 0.0
            for (xi, yi) in zip(x, y) {
                let e = f.exact(Double(xi))
                worst = Swift.max(worst, Swift.abs(Double(yi) - e) / Swift.max(Swift.abs(e), 1e-30) / Double(Float.ulpOfOne))
            }
            let scalar = Timing.median(repetitions: reps) {
                y.withUnsafeMutableBufferPointer { out in for i in 0..<n { out[i] = f.scalar(x[i]) } }
            }
            return BenchRecord(fields: [
                ("task", "vector-math"), ("function", f.name), ("ns_per_element", simd / Double(n) * 1e9),
                ("libm_ns_per_element", scalar / Double(n) * 1e9), ("speedup", scalar / simd), ("max_ulp", worst),
            ])
        }
    }
}
