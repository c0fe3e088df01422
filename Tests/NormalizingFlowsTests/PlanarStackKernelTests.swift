import Foundation
import Testing
@testable import NormalizingFlows

/// A composition with planar runs, its planar layers' parameters moved off their initial values.
private func planarComposition(_ plans: [any BijectorPlan], eventShape: [Int], dtype: DType = .float64) throws -> ComposedBijector {
    var generator = RandomGenerator(seed: 5)
    let bijector = try Compose(plans).makeBijector(for: BijectorSpec(eventShape: eventShape, dtype: dtype), generator: &generator)
    for p in bijector.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator, dtype: dtype) * 0.5 }
    return try #require(bijector as? ComposedBijector)
}

/// The parts' forward maps one after another, each recorded operation by operation.
private func layerByLayer(_ composed: ComposedBijector, _ x: Tensor) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
    var (y, total) = try composed.parts[0].forward(x, context: nil)
    for part in composed.parts.dropFirst() {
        let (next, d) = try part.forward(y, context: nil)
        y = next
        total = total + d
    }
    return (y, total)
}

private let planarRuns: [(name: String, plans: [any BijectorPlan], eventShape: [Int])] = [
    ("five planar layers", Array(repeating: Planar(), count: 5), [3]),
    ("planar runs around a radial layer, matrix event", [Planar(), Planar(), Radial(), Planar(), Planar(), Planar()], [2, 2]),
]

@Test("the fused planar stack matches the layers recorded one by one, values and gradients", arguments: planarRuns.indices)
func planarStackMatchesLayers(_ index: Int) throws {
    let (name, plans, eventShape) = planarRuns[index]
    let composed = try planarComposition(plans, eventShape: eventShape)
    var generator = RandomGenerator(seed: 9)
    let shape = [2, 3] + eventShape
    let x = Tensor.randn(shape, generator: &generator, dtype: .float64) * 1.5
    let v = Tensor.randn(shape, generator: &generator, dtype: .float64)
    let weights = Tensor.randn([2, 3], generator: &generator, dtype: .float64)

    /// Gradients of Σ y ⊙ v + Σ log|det J| ⊙ weights with respect to the input and every parameter.
    func gradients(_ pass: (Tensor) throws -> (y: Tensor, logAbsDetJacobian: Tensor)) throws -> (value: [Double], logDet: [Double], grads: [[Double]]) {
        for p in composed.parameters { p.zeroGrad() }
        let input = x.requiringGradient()
        let (y, logDet) = try pass(input)
        ((y * v).sum() + (logDet * weights).sum()).backward()
        let grads = try [try #require(input.grad).doubles] + composed.parameters.map { try #require($0.grad).doubles }
        return (y.doubles, logDet.doubles, grads)
    }
    let fused = try gradients { try composed.forward($0, context: nil) }
    let reference = try gradients { try layerByLayer(composed, $0) }
    #expect(maxAbsDifference(fused.value, reference.value) < 1e-12, "\(name): outputs")
    #expect(maxAbsDifference(fused.logDet, reference.logDet) < 1e-12, "\(name): log-determinants")
    for (k, (a, b)) in zip(fused.grads, reference.grads).enumerated() {
        let scale = max(b.map(abs).max() ?? 0, 1)
        #expect(maxAbsDifference(a, b) / scale < 1e-10, "\(name): gradient \(k): \(a) vs \(b)")
    }
}

@Test("the fused planar stack's gradients agree with central differences")
func planarStackFiniteDifferences() throws {
    let composed = try planarComposition(Array(repeating: Planar(), count: 4), eventShape: [2])
    var generator = RandomGenerator(seed: 3)
    let x = Tensor.randn([6, 2], generator: &generator, dtype: .float64)
    let v = Tensor.randn([6, 2], generator: &generator, dtype: .float64)
    let weights = Tensor.randn([6], generator: &generator, dtype: .float64)
    func loss(_ input: Tensor) throws -> Tensor {
        let (y, logDet) = try composed.forward(input, context: nil)
        return (y * v).sum() + (logDet * weights).sum()
    }
    let input = x.requiringGradient()
    try loss(input).backward()
    let expectedInput = try centralDifferences(x.doubles) { moved in try withoutGradients { try loss(Tensor(moved, shape: [6, 2], dtype: .float64)).item } }
    #expect(maxAbsDifference(try #require(input.grad).doubles, expectedInput) < 1e-7)
    for (name, p) in composed.namedParameters {
        let original = p.value
        let expected = try centralDifferences(original.doubles) { moved in
            p.value = Tensor(moved, shape: p.shape, dtype: .float64)
            return try withoutGradients { try loss(x).item }
        }
        p.value = original
        #expect(maxAbsDifference(try #require(p.grad).doubles, expected) < 1e-7, "\(name)")
    }
}

@Test("the fused planar stack in Float32 follows the Float64 pass")
func planarStackSinglePrecision() throws {
    let double = try planarComposition(Array(repeating: Planar(), count: 8), eventShape: [2])
    let single = try planarComposition(Array(repeating: Planar(), count: 8), eventShape: [2], dtype: .float32)
    for (a, b) in zip(single.parameters, double.parameters) { a.value = b.value.converted(to: .float32) }
    var generator = RandomGenerator(seed: 4)
    let x = Tensor.randn([64, 2], generator: &generator, dtype: .float64)
    let (y64, logDet64) = try double.forward(x, context: nil)
    let (y32, logDet32) = try single.forward(x.converted(to: .float32), context: nil)
    #expect(maxAbsDifference(y32.doubles, y64.doubles) < 1e-4)
    #expect(maxAbsDifference(logDet32.doubles, logDet64.doubles) < 1e-4)
}
