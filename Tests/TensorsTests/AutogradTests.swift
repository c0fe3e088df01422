import Testing
@testable import Tensors

@Test func leafGradientsAccumulateUntilZeroed() {
    let p = Parameter(Tensor([1, 2, 3], dtype: .float64))
    (p.value * p.value).sum().backward()
    #expect(p.grad?.doubles == [2, 4, 6])
    (p.value * 3).sum().backward()
    #expect(p.grad?.doubles == [5, 7, 9])
    p.zeroGrad()
    #expect(p.grad == nil)
}

@Test func noGradientScopeAndDetachRecordNothing() {
    let x = Tensor([1, 2], dtype: .float64).requiringGradient()
    let inside = withoutGradients { x * x }
    #expect(!inside.requiresGradient)
    #expect(!x.detached().requiresGradient)
    let y = x * x.detached()        // d/dx treats the detached copy as a constant
    y.sum().backward()
    #expect(x.grad?.doubles == [1, 2])
}

@Test func retainedGraphsCanBeTraversedTwice() {
    let x = Tensor([3], dtype: .float64).requiringGradient()
    let y = (x * x).sum()
    y.backward(retainGraph: true)
    y.backward()
    #expect(x.grad?.doubles == [12])
}

@Test func explicitSeedWeighsTheOutputs() {
    let x = Tensor([1, 2, 3], dtype: .float64).requiringGradient()
    let y = x.exp()
    y.backward(Tensor([1, 0, 2], dtype: .float64))
    let e = [1.0, 2, 3].map { Foundation.exp($0) }
    #expect(maxAbsDifference(x.grad!.doubles, [e[0], 0, 2 * e[2]]) < 1e-12)
}

@Test func backwardIsLinearInGraphSize() {
    // A chain of 20 000 operations: a quadratic walk would not finish; recursion would overflow.
    let x = Tensor([1], dtype: .float64).requiringGradient()
    var h = x
    for _ in 0..<20_000 { h = h * 1.0001 }
    h.sum().backward()
    #expect(abs(x.grad!.item - Foundation.pow(1.0001, 20_000)) < 1e-6)
}

@Test func parameterUpdatesDoNotDisturbSnapshots() {
    let p = Parameter(Tensor([1, 2] as [Float]))
    let snapshot = p.value.detached()
    p.update { v in v.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 100 } }
    #expect(snapshot.floats == [1, 2])
    #expect(p.value.floats == [100, 2])
}

@Test func gradientsFollowTheDtype() {
    let p = Parameter(Tensor([0.5, 1.5], dtype: .float32))
    (p.value.exp() * p.value).sum().backward()
    #expect(p.grad?.dtype == .float32)
}

import Foundation
