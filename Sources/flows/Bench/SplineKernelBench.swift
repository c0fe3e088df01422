import Foundation
import NormalizingFlows

/// The `spline-kernels` task: ns per element of the rational-quadratic (Durkan et al. 2019) and
/// linear-rational (Dolatabadi et al. 2020) spline transforms, each direction, on 65,536 float32
/// elements with 8 bins on [−3, 3] and raw parameters N(0, 1): evaluation alone, and evaluation
/// with the backward pass of sum(output) + sum(log-derivative) into the input and the raw parameters.
enum SplineKernelBench {
    static func run(repetitions: Int?) throws -> [BenchRecord] {
        let n = 65_536, reps = repetitions ?? 50
        let splines: [(name: String, transform: any ParametricElementwiseTransform)] = [
            ("rational-quadratic", RationalQuadraticSplineTransform(bins: 8, bound: 3)),
            ("linear-rational", LinearRationalSplineTransform(bins: 8, bound: 3)),
        ]
        var records: [BenchRecord] = []
        for (name, transform) in splines {
            var generator = RandomGenerator(seed: 0)
            let x = Tensor.uniform([n], low: -3.3, high: 3.3, generator: &generator)
            let raw = Tensor.randn([n, transform.parameterCount], generator: &generator)
            for inverse in [false, true] {
                func evaluate(_ x: Tensor, _ raw: Tensor) throws -> (Tensor, Tensor) {
                    if inverse {
                        let (x, log) = try transform.inverse(x, parameters: raw)
                        return (x, log)
                    }
                    let (y, log) = transform.forward(x, parameters: raw)
                    return (y, log)
                }
                // Both splines invert in closed form: a first call reports any error, the timed ones cannot fail.
                _ = try withoutGradients { try evaluate(x, raw) }
                let plain = Timing.median(repetitions: reps) { _ = withoutGradients { try? evaluate(x, raw) } }
                let withBackward = Timing.median(repetitions: reps) {
                    let xv = x.requiringGradient(), rv = raw.requiringGradient()
                    guard let (out, log) = try? evaluate(xv, rv) else { return }
                    (out.sum() + log.sum()).backward()
                }
                records.append(BenchRecord(fields: [
                    ("task", "spline-kernels"), ("spline", name), ("direction", inverse ? "inverse" : "forward"), ("bins", 8),
                    ("ns_per_element", plain / Double(n) * 1e9), ("with_backward_ns_per_element", withBackward / Double(n) * 1e9),
                ]))
            }
        }
        return records
    }
}
