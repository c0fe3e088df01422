import Testing
@testable import Tensors

/// A small network's loss on rows `range` of `x`: Σ tanh(x·Wᵀ + b)² · (row weight), with the
/// weight used twice so that leaves collect more than one gradient per part.
private func partLoss(_ x: Tensor, _ range: Range<Int>, _ w: Parameter, _ b: Parameter) -> Tensor {
    let h = linear(x.slice(alongAxis: 0, range), weight: w.value, bias: b.value).tanh()
    return (h * h).sum() + (w.value * w.value).sum() * 0.01
}

@Test(arguments: [1, 2, 5])
func concurrentPartsGiveTheGradientOfTheirSum(parts: Int) throws {
    let x = randomTensor([41, 5], seed: 1)
    let w = Parameter(randomTensor([7, 5], seed: 2, low: -1, high: 1))
    let b = Parameter(randomTensor([7], seed: 3))
    let bounds = (0...parts).map { $0 * 41 / parts }

    // One graph of the whole sum, on this thread.
    bounds.indices.dropLast().map { partLoss(x, bounds[$0]..<bounds[$0 + 1], w, b) }.reduce(Tensor(scalar: 0, dtype: .float64), +).backward()
    let (expectedW, expectedB) = (w.grad!.doubles, b.grad!.doubles)

    // The same parts concurrently, added to a gradient already accumulated (the first pass's).
    let values = try Tensor.backward(parts: parts) { i in partLoss(x, bounds[i]..<bounds[i + 1], w, b) }
    #expect(values.count == parts)
    let direct = withoutGradients { (0..<parts).map { partLoss(x, bounds[$0]..<bounds[$0 + 1], w, b).item } }
    #expect(maxAbsDifference(values, direct) < 1e-12)
    #expect(maxAbsDifference(w.grad!.doubles, expectedW.map { 2 * $0 }) < 1e-12)
    #expect(maxAbsDifference(b.grad!.doubles, expectedB.map { 2 * $0 }) < 1e-12)
}

private struct PartFailed: Error {}

@Test func aFailingPartAddsNoGradient() {
    let w = Parameter(Tensor([1, 2], dtype: .float64))
    #expect(throws: PartFailed.self) {
        try Tensor.backward(parts: 2) { i in
            if i == 1 { throw PartFailed() }
            return (w.value * w.value).sum()
        }
    }
    #expect(w.grad == nil)
}
