import Foundation
import Testing
@testable import NormalizingFlows

/// A configuration the fused affine autoregressive pass covers.
struct FusedAffineCase: Sendable, CustomStringConvertible {
    let name: String
    let plan: AffineAutoregressive
    let dimensions: Int
    var description: String { name }
}

let fusedAffineCases: [FusedAffineCase] = [
    FusedAffineCase(name: "ReLU, exp scale, two layers", plan: AffineAutoregressive(hiddenSizes: [6, 5]), dimensions: 3),
    FusedAffineCase(name: "tanh, soft-bounded scale, random order", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [7], activation: .tanh, order: .random), scale: .softBounded(2)), dimensions: 4),
    FusedAffineCase(name: "sigmoid scale, mean-field weights", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [5, 4], parameterization: .meanField), scale: .sigmoid(bias: 1)), dimensions: 3),
    FusedAffineCase(name: "clamped scale, two dimensions", plan: AffineAutoregressive(hiddenSizes: [8], scale: .clamped(min: -0.4, max: 0.5)),
                    dimensions: 2),
]

/// Σ output ⊙ v + Σ log|det J| ⊙ u for fixed random v, u: every output and log-determinant counts.
private func projectedLoss(_ bijector: any Bijector, _ value: Tensor, inverse: Bool, v: Tensor, u: Tensor) throws -> Tensor {
    let (output, logDet) = inverse ? try bijector.inverse(value, context: nil) : try bijector.forward(value, context: nil)
    return (output * v).sum() + (logDet * u).sum()
}

@Test("the fused affine autoregressive pass has the gradients of finite differences", arguments: fusedAffineCases, [false, true])
func fusedAffineAutoregressiveGradients(_ testCase: FusedAffineCase, inverse: Bool) throws {
    var generator = RandomGenerator(seed: 11)
    let bijector = try testCase.plan.makeBijector(
        for: BijectorSpec(eventShape: [testCase.dimensions], dtype: .float64), generator: &generator)
    let autoregressive = try #require(bijector as? AutoregressiveBijector)
    #expect(AffineAutoregressiveKernel.scale(of: autoregressive.transform, network: autoregressive.network) != nil)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: .float64) * 0.4 }
    let rows = 5, shape = [rows, testCase.dimensions]
    let value = Tensor.randn(shape, generator: &generator, dtype: .float64).requiringGradient()
    let v = Tensor.randn(shape, generator: &generator, dtype: .float64)
    let u = Tensor.randn([rows], generator: &generator, dtype: .float64)

    try projectedLoss(bijector, value, inverse: inverse, v: v, u: u).backward()
    // Central differences of the loss computed without gradients: the inference pass or the
    // sequential inversion, code independent of the fused kernel.
    func loss() throws -> Double { try withoutGradients { try projectedLoss(bijector, value.detached(), inverse: inverse, v: v, u: u).item } }
    func numeric(_ values: [Double], set: ([Double]) -> Void) throws -> [Double] {
        var gradient: [Double] = []
        for k in values.indices {
            let h = 1e-6 * max(1, abs(values[k]))
            var shifted = values
            shifted[k] = values[k] + h; set(shifted); let up = try loss()
            shifted[k] = values[k] - h; set(shifted); let down = try loss()
            gradient.append((up - down) / (2 * h))
        }
        set(values)
        return gradient
    }
    for (name, p) in bijector.namedParameters {
        let analytic = try #require(p.grad).doubles
        let expected = try numeric(p.value.doubles) { p.value = Tensor($0, shape: p.shape, dtype: .float64) }
        let scale = max(expected.map(abs).max() ?? 0, 1e-3)
        #expect(maxAbsDifference(analytic, expected) / scale < 1e-6, "\(testCase.name) \(name): \(analytic) vs \(expected)")
    }
    let analyticInput = try #require(value.grad).doubles
    func inputLoss(_ x: [Double]) throws -> Double {
        try withoutGradients { try projectedLoss(bijector, Tensor(x, shape: shape, dtype: .float64), inverse: inverse, v: v, u: u).item }
    }
    let x0 = value.detached().doubles
    var inputGradient: [Double] = []
    for k in x0.indices {
        var up = x0, down = x0
        up[k] += 1e-6; down[k] -= 1e-6
        inputGradient.append((try inputLoss(up) - inputLoss(down)) / 2e-6)
    }
    let inputScale = max(inputGradient.map(abs).max() ?? 0, 1e-3)
    #expect(maxAbsDifference(analyticInput, inputGradient) / inputScale < 1e-6, "\(testCase.name) input: \(analyticInput) vs \(inputGradient)")
}
