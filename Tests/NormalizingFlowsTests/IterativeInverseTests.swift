import Foundation
import Testing
@testable import NormalizingFlows

// Iterative inverses never return a silent wrong number: a point whose iteration does not reach
// its tolerance throws FlowError.notConverged with its row, and so does an orthogonalisation
// that cannot make Q orthonormal.

/// The row a `notConverged` error names (`.some(nil)` for an error without a row), `nil` for any other outcome.
private func notConvergedRow(_ body: () throws -> Void) -> Int?? {
    do {
        try body()
        return nil
    } catch FlowError.notConverged(let row, _) {
        return .some(row)
    } catch {
        return nil
    }
}

@Test("an inverse that runs out of iterations throws with the row", arguments: ["planar", "sylvester"])
func anInverseThatRunsOutOfIterationsThrowsWithTheRow(_ family: String) throws {
    let plan: any BijectorPlan = family == "planar" ? Planar() : Sylvester(variant: .triangular)
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: plan, seed: 4)
    let bijector = flow.bijector
    let setLimit: (Int) -> Void
    if let planar = bijector as? PlanarBijector {
        setLimit = { planar.maximumIterations = $0 }
    } else {
        let sylvester = try #require(bijector as? SylvesterBijector)
        setLimit = { sylvester.maximumIterations = $0 }
    }
    var g = RandomGenerator(seed: 5)
    // Row 0 is y = 0: b starts at 0 (and the triangular Sylvester layer's Q is I), so every
    // scalar equation's target is 0, its own root, and it converges at once.
    let y = Tensor([0, 0, 0] + Tensor.randn([3, 3], generator: &g, dtype: .float64).doubles, shape: [4, 3], dtype: .float64)
    let recovered = try bijector.inverse(y, context: nil).x
    let roundTrip = maxAbsDifference(try bijector.forward(recovered, context: nil).y.doubles, y.doubles)
    // Each scalar root is solved to 1e-12·(1 + |t|), and Sylvester composes M of them through R.
    #expect(roundTrip < 1e-10, "\(family): forward(inverse(y)) misses y by \(roundTrip)")
    setLimit(1)
    #expect(notConvergedRow { _ = try bijector.inverse(y, context: nil) } == .some(1))
    #expect(notConvergedRow { _ = try flow.logProb(y) } == .some(1), "logProb passes the error on")
}

@Test func aPlanarLayerAtTheEdgeOfInvertibilityConvergesOrThrows() throws {
    // wᵀu = −800: softplus underflows, so without a margin (as plans saved before it were made)
    // wᵀû = −1 exactly and s − tanh s = t is flat at s = 0.
    let flow = try Flow(base: Normal.standard([2], dtype: .float64), plan: Planar(invertibilityMargin: 0), seed: 4)
    let planar = try #require(flow.bijector as? PlanarBijector)
    planar.w.value = Tensor([1, 0], dtype: .float64)
    planar.u.value = Tensor([-800, 0.5], dtype: .float64)
    let t = [0, 1e-12, -1e-6, 1e-3, 0.3, -2, 40]
    let y = Tensor(t.flatMap { [$0, 0.25] }, shape: [t.count, 2], dtype: .float64)
    do {
        let x = try planar.inverse(y, context: nil).x
        let back = try planar.forward(x, context: nil).y.doubles
        for (row, target) in t.enumerated() {
            let s = x.doubles[2 * row]
            #expect(abs(s - tanh(s) - target) <= 1e-12 * (1 + abs(target)), "row \(row): s = \(s) for t = \(target)")
            #expect(abs(back[2 * row] - target) <= 1e-9 * (1 + abs(target)))
        }
    } catch FlowError.notConverged(let row, _) {
        #expect(row != nil, "an inverse's error names its row")
    }
}

@Test("a Sylvester layer whose Q cannot be made orthonormal throws instead of using it", arguments: [DType.float32, .float64])
func aRankDeficientSylvesterQThrows(dtype: DType) throws {
    let flow = try Flow(base: Normal.standard([3], dtype: dtype), plan: Sylvester(variant: .orthogonal), seed: 4)
    let sylvester = try #require(flow.bijector as? SylvesterBijector)
    let x = Tensor([0.1, -0.2, 0.3], shape: [1, 3], dtype: dtype)
    _ = try sylvester.forward(x, context: nil)
    // Three equal columns: rank 1, and Björck's iteration keeps the zero singular values at zero.
    let q = try #require(sylvester.q)
    q.value = Tensor([1, 1, 1, 2, 2, 2, -1, -1, -1], shape: [3, 3], dtype: dtype)
    #expect(notConvergedRow { _ = try sylvester.forward(x, context: nil) } == .some(nil))
    #expect(notConvergedRow { _ = try sylvester.inverse(x, context: nil) } == .some(nil))
}

@Test func theRadialInverseKeepsItsDigitsNearTheCentre() throws {
    // α = 1e-10 and β ≈ 100: at distance r from the centre, with α ≪ r ≪ √(αβ), the inverse's
    // quadratic has p = α + β − ‖y − z₀‖ ≫ √(4α‖y − z₀‖), where the textbook root
    // (√(p² + 4α‖y − z₀‖) − p)/2 loses digits (relative errors 7.5e-8, 5e-10, 4e-11 at r = 1e-9,
    // 1e-8, 1e-7 in Double) and the other form of the same root keeps them.
    let flow = try Flow(base: Normal.standard([2], dtype: .float64), plan: Radial(), seed: 1)
    let radial = try #require(flow.bijector as? RadialBijector)
    radial.alpha.value = Tensor(scalar: log(expm1(1e-10)), dtype: .float64)
    radial.beta.value = Tensor(scalar: 100, dtype: .float64)
    radial.center.value = Tensor.zeros([2], dtype: .float64)   // so that x − z₀ is exact
    let offsets = [1e-9, 1e-8, 1e-7, 0.5]
    let x = Tensor(offsets.flatMap { [$0, -0.5 * $0] }, shape: [offsets.count, 2], dtype: .float64)
    let (y, forwardLogDet) = try radial.forward(x, context: nil)
    let (back, inverseLogDet) = try radial.inverse(y, context: nil)
    for (row, offset) in offsets.enumerated() {
        let error = abs(back.doubles[2 * row] - offset) / offset
        // The map itself is this badly conditioned here (β/(α + r) up to 1e11, and the norm's
        // floor of 1e-30 under the root moves r = 1e-9 by 5e-13): 1e-11 leaves the old root's
        // errors outside.
        #expect(error <= 1e-11, "at distance \(offset) the inverse misses by \(error) (relative)")
        #expect(abs(forwardLogDet.doubles[row] + inverseLogDet.doubles[row]) <= 1e-10)
    }
}

/// The margin keeps a planar layer's derivative at least ε however far training pushes wᵀu (the
/// log-determinant at tanh′ = 1 is log(ε + softplus(wᵀu))), in the layer-by-layer pass and in the
/// fused stack alike; a plan saved without the option reads as ε = 0, as it was made.
@Test func thePlanarMarginBoundsTheDerivativeAndOldPlansKeepNone() throws {
    for margin in [0.01, 0.2] {
        let flow = try Flow(base: Normal.standard([2], dtype: .float64), plan: PlanarFlow(layers: 2, invertibilityMargin: margin), seed: 4)
        for parameter in flow.parameters where parameter.name.hasSuffix(".w") { parameter.value = Tensor([1, 0], dtype: .float64) }
        for parameter in flow.parameters where parameter.name.hasSuffix(".u") { parameter.value = Tensor([-50, 0.5], dtype: .float64) }
        for parameter in flow.parameters where parameter.name.hasSuffix(".b") { parameter.value = Tensor.zeros([], dtype: .float64) }
        // At x = 0 both layers see wᵀx + b = 0 (the first maps 0 to 0), so each adds log(ε + softplus(−50)).
        let expected = 2 * Foundation.log(margin + Foundation.log1p(Foundation.exp(-50)))
        let fused = try flow.bijector.forward(Tensor.zeros([1, 2], dtype: .float64), context: nil).logAbsDetJacobian.item
        #expect(abs(fused - expected) < 1e-12, "margin \(margin): \(fused) vs \(expected)")
        let single = try #require((flow.bijector as? ComposedBijector)?.parts.first as? PlanarBijector)
        let one = try single.forward(Tensor.zeros([1, 2], dtype: .float64), context: nil).logAbsDetJacobian.item
        #expect(abs(one - expected / 2) < 1e-12)
    }
    for json in [#"{"type":"Planar","options":{}}"#, #"{"type":"PlanarFlow","options":{"layers":3}}"#] {
        let plan = try PlanCoding.plan(fromJSON: json)
        let margin = (plan as? Planar)?.invertibilityMargin ?? (plan as? PlanarFlow)?.invertibilityMargin
        #expect(margin == 0, "\(json) reads with margin \(String(describing: margin))")
    }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([2]), plan: Planar(invertibilityMargin: 1)) }
}
