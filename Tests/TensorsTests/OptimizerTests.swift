import Foundation
import Testing
@testable import Tensors

/// Adam written out in scalar Double arithmetic, for comparison.
private func referenceAdam(start: [Double], gradient: ([Double]) -> [Double], steps: Int, lr: Double,
                           weightDecay: Double = 0, decoupled: Bool = false) -> [Double] {
    var x = start, m = [Double](repeating: 0, count: x.count), v = m
    for t in 1...steps {
        var g = gradient(x)
        if !decoupled { for i in g.indices { g[i] += weightDecay * x[i] } }
        for i in x.indices {
            if decoupled { x[i] -= lr * weightDecay * x[i] }
            m[i] = 0.9 * m[i] + 0.1 * g[i]
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
            let mHat = m[i] / (1 - pow(0.9, Double(t))), vHat = v[i] / (1 - pow(0.999, Double(t)))
            x[i] -= lr * mHat / (vHat.squareRoot() + 1e-8)
        }
    }
    return x
}

@Test(arguments: [(0.0, false), (0.1, false), (0.1, true)], [DType.float64, .float32])
func adamMatchesAScalarReference(weightDecay: (Double, Bool), dtype: DType) {
    let (decay, decoupled) = weightDecay
    // Eleven elements: one eight-lane block and a scalar tail.
    let start = (0..<11).map { 1.5 - 0.37 * Double($0) }
    let targets = (0..<11).map { 0.3 * sin(Double($0)) }
    let weights = (0..<11).map { Double($0 + 1) }
    let p = Parameter(Tensor(start, dtype: dtype))
    let adam = Adam([p], learningRate: 0.05, weightDecay: decay, decoupledWeightDecay: decoupled)
    for _ in 0..<25 {
        adam.step(minimizing: ((p.value - Tensor(targets, dtype: dtype)).pow(2) * Tensor(weights, dtype: dtype)).sum())
    }
    let expected = referenceAdam(start: start, gradient: { x in
        x.indices.map { 2 * weights[$0] * (x[$0] - targets[$0]) }
    }, steps: 25, lr: 0.05, weightDecay: decay, decoupled: decoupled)
    // Float32 rounds each step's arithmetic to 2⁻²⁴ relative; 25 steps of size ≤ 0.05 stay far below 1e-5.
    #expect(maxAbsDifference(p.value.doubles, expected) < (dtype == .float64 ? 1e-12 : 1e-5))
    #expect(p.grad == nil, "step(minimizing:) releases the gradients after the update")
}

@Test func sgdWithMomentumMatchesAScalarReference() {
    for nesterov in [false, true] {
        let p = Parameter(Tensor([2], dtype: .float64))
        let sgd = SGD([p], learningRate: 0.1, momentum: 0.9, nesterov: nesterov)
        var x = 2.0, b = 0.0
        for _ in 0..<10 {
            sgd.step(minimizing: (p.value * p.value).sum())
            let g = 2 * x
            b = 0.9 * b + g
            x -= 0.1 * (nesterov ? g + 0.9 * b : b)
        }
        #expect(abs(p.value.item - x) < 1e-12)
    }
}

@Test func adamTrainsASmallNetworkInFloat32() {
    var g = RandomGenerator(seed: 1)
    let net = MLP([2, 16, 1], activation: .tanh, generator: &g)
    let x = Tensor.uniform([128, 2], low: -1, high: 1, generator: &g)
    let y = (x.select(alongAxis: 1, index: 0) * x.select(alongAxis: 1, index: 1)).unsqueezed(axis: 1)
    let adam = Adam(net.parameters, learningRate: 1e-2)
    let first = adam.step(minimizing: (net(x) - y).square().mean())
    var last = first
    for _ in 0..<300 { last = adam.step(minimizing: (net(x) - y).square().mean()) }
    #expect(last < first * 0.1, "loss \(first) → \(last)")
}

@Test func clippingScalesTheJointNorm() {
    let a = Parameter(Tensor([0, 0], dtype: .float64)), b = Parameter(Tensor([0], dtype: .float64))
    ((a.value * Tensor([3, 0], dtype: .float64)).sum() + (b.value * 4).sum()).backward()
    let norm = clipGradientNorm([a, b], maxNorm: 1)
    #expect(abs(norm - 5) < 1e-12)
    #expect(maxAbsDifference(a.grad!.doubles + b.grad!.doubles, [0.6, 0, 0.8]) < 1e-9)
    #expect(abs(clipGradientNorm([a, b], maxNorm: 10) - 1) < 1e-9)   // below the bound: unchanged
}

@Test func clippingScalesInPlaceWithoutTouchingSharedCopies() {
    let p = Parameter(Tensor([Float](repeating: 0, count: 4)))
    (p.value * Tensor([Float]([1, 2, 2, 4]))).sum().backward()
    let held = p.grad!
    #expect(abs(clipGradientNorm([p], maxNorm: 2.5) - 5) < 1e-6)
    #expect(maxAbsDifference(p.grad!.doubles, [0.5, 1, 1, 2]) < 1e-6)
    #expect(held.doubles == [1, 2, 2, 4])   // a gradient someone kept is not scaled with the parameter's
}

@Test func learningRateSchedules() {
    let cosine = CosineAnnealing(base: 1, totalSteps: 110, minimum: 0.1, warmupSteps: 10)
    #expect(abs(cosine.learningRate(atStep: 0) - 0.1) < 1e-12)
    #expect(abs(cosine.learningRate(atStep: 10) - 1) < 1e-12)
    #expect(abs(cosine.learningRate(atStep: 60) - 0.55) < 1e-12)
    #expect(abs(cosine.learningRate(atStep: 110) - 0.1) < 1e-12)
    let step = StepDecay(base: 1, stepSize: 10, factor: 0.5)
    #expect(step.learningRate(atStep: 9) == 1 && step.learningRate(atStep: 25) == 0.25)
}
