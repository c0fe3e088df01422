import Foundation
import Testing
@testable import NormalizingFlows

// `Bounds` turns a flow on ℝᴰ into a density on a box. The conformance suite checks its round
// trip, Jacobian and refusals; here: the density it gives against closed forms, its
// normalisation on the box, its behaviour at the bounds in Float32, saving, and a fit.

/// log φ(x), the standard normal log-density.
private func logStandardNormal(_ x: Double) -> Double { -x * x / 2 - Foundation.log(2 * Double.pi) / 2 }

@Test func boundsGiveTheChangeOfVariablesDensityOfEachKindOfInterval() throws {
    // x ~ N(0, I) through Bounds alone: each column's density is φ(f⁻¹(y))·|(f⁻¹)′(y)|, computed
    // here from the closed forms of the inverses.
    let flow = try Flow(base: Normal.standard([4], dtype: .float64),
                        plan: Bounds(lower: [-1, 2, -.infinity, -.infinity], upper: [3, .infinity, 0.5, .infinity]))
    let rows: [[Double]] = [[-0.999, 2.001, -40, -7], [0, 2.5, 0.49, 0.3], [2.9999, 30, -0.001, 12]]
    let logDensity = try flow.logProb(Tensor(rows.flatMap { $0 }, shape: [3, 4], dtype: .float64)).doubles
    for (row, got) in zip(rows, logDensity) {
        let (y0, y1, y2, y3) = (row[0], row[1], row[2], row[3])
        // (−1, 3): x = logit((y + 1)/4), dx/dy = 4/((y + 1)(3 − y)).
        let u = (y0 + 1) / 4
        let p0 = logStandardNormal(Foundation.log(u / (1 - u))) + Foundation.log(4 / ((y0 + 1) * (3 - y0)))
        // (2, ∞): x = log(e^{y−2} − 1), dx/dy = e^{y−2}/(e^{y−2} − 1).
        let v = y1 - 2
        let p1 = logStandardNormal(Foundation.log(Foundation.expm1(v))) - Foundation.log(-Foundation.expm1(-v))
        // (−∞, 0.5): x = −log(e^{0.5−y} − 1), dx/dy = e^{0.5−y}/(e^{0.5−y} − 1).
        let w = 0.5 - y2
        let p2 = logStandardNormal(-Foundation.log(Foundation.expm1(w))) - Foundation.log(-Foundation.expm1(-w))
        let expected = p0 + p1 + p2 + logStandardNormal(y3)
        #expect(abs(got - expected) < 1e-9 * max(1, abs(expected)), "row \(row): \(got) vs \(expected)")
    }
}

@Test func aFlowUnderBoundsIntegratesToOneOnTheBox() throws {
    // A MAF with its parameters moved off their initial values, under (0, 1) × (−1, 2). Mass can
    // pile up near the edges, so the midpoint rule runs in coordinates s ∈ [−12, 12]² with
    // y = a + w·(1 + tanh s)/2, dy/ds = w·(1 − tanh² s)/2, whose cells crowd toward the edges.
    var g = RandomGenerator(seed: 3)
    let flow = try Flow(base: Normal.standard([2], dtype: .float64),
                        plan: Compose([MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [16])), Bounds(lower: [0, -1], upper: [1, 2])]))
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.3 }
    let cells = 600, span = 12.0, h = 2 * span / Double(cells)
    let edge = (0..<cells).map { -span + (Double($0) + 0.5) * h }
    var points: [Double] = [], jacobians: [Double] = []
    for s0 in edge {
        for s1 in edge {
            let (t0, t1) = (Foundation.tanh(s0), Foundation.tanh(s1))
            points += [(1 + t0) / 2, -1 + 3 * (1 + t1) / 2]
            jacobians.append((1 - t0 * t0) / 2 * 3 * (1 - t1 * t1) / 2)
        }
    }
    let logDensity = try withoutGradients { try flow.logProb(Tensor(points, shape: [cells * cells, 2], dtype: .float64)).doubles }
    let integral = zip(logDensity, jacobians).reduce(0) { $0 + Foundation.exp($1.0) * $1.1 } * h * h
    #expect(abs(integral - 1) < 0.01, "∫p over the box = \(integral)")
    // Samples land inside the box.
    let samples = try flow.sample(2000).doubles
    #expect(stride(from: 0, to: samples.count, by: 2).allSatisfy { samples[$0] > 0 && samples[$0] < 1 && samples[$0 + 1] > -1 && samples[$0 + 1] < 2 })
}

@Test func pointsAtTheEdgeOfTheBoxHaveFiniteDensitiesInFloat32() throws {
    // One Float32 step inside each bound: the distances to the bounds are exact there, where
    // (y − a)/(b − a) would round to 1 short of b.
    let flow = try Flow(base: Normal.standard([2]), plan: Bounds(lower: [-3, 0], upper: [7, .infinity]))
    let edge = Tensor([Double(Float(7).nextDown), Double(Float(0).nextUp), Double(Float(-3).nextUp), 60], shape: [2, 2])
    let logDensity = try flow.logProb(edge).doubles
    #expect(logDensity.allSatisfy { $0.isFinite }, "\(logDensity)")
    // Outside the box (or on a bound, which the open box excludes): refused, naming the interval.
    for outside in [[7.0, 1.0], [0.0, 0.0], [1.0, -2.0]] {
        #expect(throws: FlowError.self) { _ = try flow.logProb(Tensor(outside, shape: [1, 2])) }
    }
    do {
        _ = try flow.logProb(Tensor([8.0, 1.0], shape: [1, 2]))
    } catch FlowError.outsideDomain(let message) {
        #expect(message.contains("(-3.0, 7.0)"), "\(message)")
    }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([2]), plan: Bounds(lower: [0], upper: [1])) }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([1]), plan: Bounds(lower: [1], upper: [1])) }
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([1]), plan: Bounds(lower: [.infinity], upper: [.infinity])) }
}

@Test func boundsSaveAndLoadWithTheirInfiniteEnds() throws {
    var g = RandomGenerator(seed: 4)
    let plan = Compose([MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])),
                        Bounds(lower: [0, -.infinity, 1], upper: [1, 5, .infinity])])
    let flow = try Flow(base: Normal.standard([3]), plan: plan, seed: 2)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.3 }
    let path = "\(scratchFolder())/bounded.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let y = Tensor([0.3, -20, 1.5, 0.999, 4.9, 300], shape: [2, 3])
    #expect(try loaded.logProb(y).floats == flow.logProb(y).floats)
    #expect(loaded.bijector.codomain == .box(lower: [0, -.infinity, 1], upper: [1, 5, .infinity]))
}

@Test func aBoundedFitRecoversADensityWithEdges() throws {
    // Column 0 ~ Beta(2, 5) on (0, 1), density 30·y(1 − y)⁴ (the second smallest of six uniforms);
    // column 1 ~ Exponential(1) on (0, ∞), which jumps to 1 at 0. Held-out NLL against the truth.
    var g = RandomGenerator(seed: 5)
    func rows(_ n: Int) -> (data: Tensor, trueNLL: Double) {
        var values: [Double] = [], nll = 0.0
        for _ in 0..<n {
            let uniforms = (0..<6).map { _ in g.nextUniform() }.sorted()
            let beta = uniforms[1], exponential = -Foundation.log(1 - g.nextUniform())
            values += [beta, exponential]
            nll -= Foundation.log(30 * beta * Foundation.pow(1 - beta, 4)) - exponential
        }
        return (Tensor(values, shape: [n, 2]), nll / Double(n))
    }
    let (train, _) = rows(6000), (test, trueNLL) = rows(4000)
    var options = FitOptions()
    options.steps = 1500
    options.learningRate = 3e-3
    options.validationFraction = 0
    func heldOutNLL(_ plan: any BijectorPlan) throws -> Double {
        let flow = try Flow(base: Normal.standard([2]), plan: plan, seed: 1)
        try fit(flow, data: train, options: options)
        return try negativeLogLikelihood(flow, test)
    }
    let maf = { MAF(layers: 3, conditioner: DenseAutoregressive(hiddenSizes: [32, 32])) }
    let bounded = try heldOutNLL(Compose([maf(), Bounds(lower: [0, 0], upper: [1, .infinity])]))
    let unbounded = try heldOutNLL(maf())
    print("bounded fit: held-out NLL \(bounded), unbounded \(unbounded), truth \(trueNLL)")
    #expect(bounded - trueNLL < 0.05, "bounded: \(bounded) vs the truth \(trueNLL)")
    #expect(bounded < unbounded)
}
