import Foundation
import Testing
@testable import NormalizingFlows

/// A configuration the fused affine autoregressive pass covers.
struct FusedAffineCase: Sendable, CustomStringConvertible {
    let name: String
    let plan: AffineAutoregressive
    let dimensions: Int
    var contextSize = 0
    var description: String { name }
}

let fusedAffineCases: [FusedAffineCase] = [
    FusedAffineCase(name: "ReLU, exp scale, two layers", plan: AffineAutoregressive(hiddenSizes: [6, 5]), dimensions: 3),
    FusedAffineCase(name: "tanh, soft-bounded scale, random order", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [7], activation: .tanh, order: .random), scale: .softBounded(2)), dimensions: 4),
    FusedAffineCase(name: "sigmoid scale, mean-field weights", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [5, 4], parameterization: .meanField), scale: .sigmoid(bias: 1)), dimensions: 3),
    FusedAffineCase(name: "soft-clipped scale (IAF's default), wide raw values", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [6], activation: .tanh), scale: .softClipped(bound: 0.7)), dimensions: 3),
    FusedAffineCase(name: "softplus scale with a floor (nflows MAF)", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [6, 5]), scale: .softplus(floor: 1e-3)), dimensions: 3),
    FusedAffineCase(name: "sigmoid scale with a floor (nflows coupling's), tanh", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [7], activation: .tanh), scale: .sigmoidWithFloor(bias: 2, floor: 1e-3)), dimensions: 4),
    FusedAffineCase(name: "clamped scale, two dimensions", plan: AffineAutoregressive(hiddenSizes: [8], scale: .clamped(min: -0.4, max: 0.5)),
                    dimensions: 2),
    FusedAffineCase(name: "context, skip connections, ELU", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [7, 6], activation: .elu, skipConnections: true, order: .random)), dimensions: 4, contextSize: 2),
    FusedAffineCase(name: "residual MADE (nflows' default), tanh, random order", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [7], activation: .tanh, order: .random, residualBlocks: 2), scale: .softplus(floor: 1e-3)),
                    dimensions: 4),
    FusedAffineCase(name: "residual MADE, context, skip connections", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [6], skipConnections: true, residualBlocks: 1)), dimensions: 3, contextSize: 2),
    FusedAffineCase(name: "context, softplus, one dimension", plan: AffineAutoregressive(
        conditioner: DenseAutoregressive(hiddenSizes: [5], activation: .softplus)), dimensions: 1, contextSize: 3),
]

/// Σ output ⊙ v + Σ log|det J| ⊙ u for fixed random v, u: every output and log-determinant counts.
private func projectedLoss(_ bijector: any Bijector, _ value: Tensor, context: Tensor?, inverse: Bool, v: Tensor, u: Tensor) throws -> Tensor {
    let (output, logDet) = inverse ? try bijector.inverse(value, context: context) : try bijector.forward(value, context: context)
    return (output * v).sum() + (logDet * u).sum()
}

@Test("the fused affine autoregressive pass has the gradients of finite differences", arguments: fusedAffineCases, [false, true])
func fusedAffineAutoregressiveGradients(_ testCase: FusedAffineCase, inverse: Bool) throws {
    var generator = RandomGenerator(seed: 11)
    let bijector = try testCase.plan.makeBijector(
        for: BijectorSpec(eventShape: [testCase.dimensions], contextSize: testCase.contextSize, dtype: .float64), generator: &generator)
    let autoregressive = try #require(bijector as? AutoregressiveBijector)
    #expect(autoregressive.fusedPass != nil, "the plan chose the fused pass")
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: .float64) * 0.4 }
    let rows = 5, shape = [rows, testCase.dimensions]
    let value = Tensor.randn(shape, generator: &generator, dtype: .float64).requiringGradient()
    let v = Tensor.randn(shape, generator: &generator, dtype: .float64)
    let u = Tensor.randn([rows], generator: &generator, dtype: .float64)
    let contextShape = [rows, testCase.contextSize]
    let context = testCase.contextSize > 0 ? Tensor.randn(contextShape, generator: &generator, dtype: .float64).requiringGradient() : nil

    try projectedLoss(bijector, value, context: context, inverse: inverse, v: v, u: u).backward()
    // Central differences of the loss computed without gradients: the inference pass or the
    // sequential inversion, code independent of the fused kernel.
    func loss(at input: Tensor, context: Tensor? = context?.detached()) throws -> Double {
        try withoutGradients { try projectedLoss(bijector, input, context: context, inverse: inverse, v: v, u: u).item }
    }
    func expectClose(_ analytic: [Double], _ expected: [Double], _ what: String) {
        let scale = max(expected.map(abs).max() ?? 0, 1e-3)
        #expect(maxAbsDifference(analytic, expected) / scale < 1e-6, "\(testCase.name) \(what): \(analytic) vs \(expected)")
    }
    for (name, p) in bijector.namedParameters {
        let analytic = try #require(p.grad).doubles, original = p.value
        let expected = try centralDifferences(original.doubles) { moved in
            p.value = Tensor(moved, shape: p.shape, dtype: .float64)
            return try loss(at: value.detached())
        }
        p.value = original
        expectClose(analytic, expected, name)
    }
    let expectedInput = try centralDifferences(value.detached().doubles) { moved in try loss(at: Tensor(moved, shape: shape, dtype: .float64)) }
    expectClose(try #require(value.grad).doubles, expectedInput, "input")
    if let context {
        let expectedContext = try centralDifferences(context.detached().doubles) { moved in
            try loss(at: value.detached(), context: Tensor(moved, shape: contextShape, dtype: .float64))
        }
        expectClose(try #require(context.grad).doubles, expectedContext, "context")
    }
}
