import Foundation
import Testing
@testable import NormalizingFlows

// Circular splines (Rezende et al. 2020), circular shifts, the torus data and the NCSF preset.

/// Circular splines of both parameterizations, with raw parameters scaled so that zuko's soft clips bend.
private let circularSplines: [(transform: RationalQuadraticSplineTransform, rawScale: Double)] = [
    (RationalQuadraticSplineTransform(bins: 5, bound: .pi, logitScale: 0.3, boundary: .circular), 1.5),
    (RationalQuadraticSplineTransform(bins: 8, bound: .pi, parameterization: .softClipped(slope: 1e-2), boundary: .circular), 3),
    (RationalQuadraticSplineTransform(bins: 2, bound: .pi, boundary: .circular), 1.5),
]

/// The circular spline evaluated from its formulas in Float64, apart from the kernel (Durkan et
/// al. 2019, eq. 4–6, 14; Rezende et al. 2020, section 3.2): the input wrapped into [−π, π);
/// widths and heights m + (1 − K·m)·softmax(c·logits) (or softmax of the soft-clipped logits);
/// knots −π + 2π·(running sums); interior derivatives m_d + softplus(r) (or e^{clip(r)}), and
/// the last raw parameter's the one derivative of both ends; the output wrapped. Returns the
/// output and log |derivative|; the inverse bisects the forward map (no quadratic formula).
private func circularReference(_ v: Double, raw: [Double], spline: RationalQuadraticSplineTransform,
                               inverse: Bool) -> (Double, Double) {
    let k = spline.bins
    func wrap(_ z: Double) -> Double { z - 2 * .pi * ((z + .pi) / (2 * .pi)).rounded(.down) }
    let minimum: (width: Double, height: Double), logits: (Double) -> Double, derivative: (Double) -> Double
    switch spline.parameterization {
    case .minimumSizes:
        minimum = (spline.minimumBinWidth, spline.minimumBinHeight)
        logits = { spline.logitScale * $0 }
        derivative = { spline.minimumDerivative + log1p(exp($0)) }
    case .softClipped(let slope):
        minimum = (0, 0)
        logits = { $0 / (1 + abs($0) / (-log(slope) / 2)) }
        derivative = { exp($0 / (1 + abs($0) / -log(slope))) }
    }
    func knots(_ raw: ArraySlice<Double>, minimum m: Double) -> [Double] {
        let exps = raw.map { exp(logits($0)) }, total = exps.reduce(0, +)
        var sums = [-Double.pi]
        for e in exps { sums.append(sums.last! + 2 * .pi * (m + (1 - Double(k) * m) * e / total)) }
        sums[k] = .pi
        return sums
    }
    let xs = knots(raw[0..<k], minimum: minimum.width), ys = knots(raw[k..<(2 * k)], minimum: minimum.height)
    let end = derivative(raw[3 * k - 1])
    let d = [end] + raw[(2 * k)..<(3 * k - 1)].map(derivative) + [end]
    func forward(_ x: Double) -> (Double, Double) {
        let b = max(0, min(k - 1, xs.filter { $0 <= x }.count - 1))
        let w = xs[b + 1] - xs[b], h = ys[b + 1] - ys[b], s = h / w, z = (x - xs[b]) / w
        let denominator = s + (d[b] + d[b + 1] - 2 * s) * z * (1 - z)
        let y = ys[b] + h * (s * z * z + d[b] * z * (1 - z)) / denominator
        let slope = s * s * (d[b + 1] * z * z + 2 * s * z * (1 - z) + d[b] * (1 - z) * (1 - z)) / (denominator * denominator)
        return (y, log(slope))
    }
    if !inverse {
        let (y, logSlope) = forward(wrap(v))
        return (wrap(y), logSlope)
    }
    let target = wrap(v)
    var (low, high) = (-Double.pi, Double.pi)
    for _ in 0..<200 {
        let middle = (low + high) / 2
        if forward(middle).0 < target { low = middle } else { high = middle }
    }
    let x = (low + high) / 2
    return (wrap(x), -forward(x).1)
}

@Test("the circular spline computes its formulas (an independent Float64 evaluation)", arguments: [false, true], 0..<circularSplines.count)
func circularSplineMatchesItsFormulas(inverse: Bool, index: Int) throws {
    let (spline, rawScale) = circularSplines[index]
    var g = RandomGenerator(seed: 21)
    let n = 300
    // Angles, and some a few turns away (read as the same angles).
    var xs = Tensor.uniform([n], low: -.pi, high: .pi, generator: &g, dtype: .float64).doubles
    for i in stride(from: 0, to: n, by: 10) { xs[i] += 2 * .pi * Double(i % 7 - 3) }
    let raw = Tensor.randn([n, spline.parameterCount], generator: &g, dtype: .float64) * rawScale
    let x = Tensor(xs, dtype: .float64)
    let (out, logDerivative) = inverse ? spline.inverse(x, parameters: raw) : spline.forward(x, parameters: raw)
    let rows = raw.doubles, p = spline.parameterCount
    var largest = (output: 0.0, log: 0.0)
    for i in 0..<n {
        let (expected, expectedLog) = circularReference(xs[i], raw: Array(rows[(i * p)..<((i + 1) * p)]), spline: spline, inverse: inverse)
        // On the circle: π and −π are one point.
        let difference = abs(out.doubles[i] - expected)
        largest.output = max(largest.output, min(difference, abs(difference - 2 * .pi)))
        largest.log = max(largest.log, abs(logDerivative.doubles[i] - expectedLog))
    }
    #expect(out.doubles.allSatisfy { $0 >= -.pi && $0 < .pi })
    #expect(largest.output < 1e-10 && largest.log < 1e-9, "\(spline.parameterization), K = \(spline.bins): \(largest)")
}

@Test("a circular spline fixes ±π and has one derivative at both ends", arguments: 0..<circularSplines.count)
func circularSplineEnds(index: Int) throws {
    let (spline, rawScale) = circularSplines[index]
    var g = RandomGenerator(seed: 22)
    let rows = 50
    let raw = Tensor.randn([rows, spline.parameterCount], generator: &g, dtype: .float64) * rawScale
    func evaluate(_ value: Double) -> (y: [Double], log: [Double]) {
        let (y, logDerivative) = spline.forward(Tensor.full([rows], value, dtype: .float64), parameters: raw)
        return (y.doubles, logDerivative.doubles)
    }
    let low = evaluate(-.pi), nearHigh = evaluate(.pi * (1 - 1e-12))
    #expect(low.y.allSatisfy { $0 == -.pi })
    #expect(nearHigh.y.allSatisfy { abs($0 - .pi) < 1e-9 || abs($0 + .pi) < 1e-9 })
    // log f′ at −π and just below π: the shared end derivative, whatever the interior ones.
    #expect(maxAbsDifference(low.log, nearHigh.log) < 1e-8)
    let ends = low.log
    #expect(Set(ends.map { ($0 * 1e6).rounded() }).count > rows / 2, "the end derivative is learned, not fixed")
    // Inverse: the same points.
    let (x, _) = spline.inverse(Tensor.full([rows], -.pi, dtype: .float64), parameters: raw)
    #expect(x.doubles.allSatisfy { $0 == -.pi })
}

@Test("the circular spline's gradients match finite differences", arguments: [false, true], 0..<circularSplines.count)
func circularSplineGradients(inverse: Bool, index: Int) throws {
    var g = RandomGenerator(seed: 23)
    let (spline, rawScale) = circularSplines[index]
    // Inside the circle, away from ±π where the wrap jumps; and two turns away.
    let x = Tensor([-3.0, -2.2, -1.1, -0.3, 0.4, 1.6, 2.5, 3.05, 0.7 + 4 * .pi], dtype: .float64)
    let parameters = Tensor.randn([9, spline.parameterCount], generator: &g, dtype: .float64) * rawScale
    let result = gradCheck([x, parameters]) { inputs in
        let (out, logDerivative) = inverse
            ? spline.inverse(inputs[0], parameters: inputs[1])
            : spline.forward(inputs[0], parameters: inputs[1])
        return Tensor.concatenate([out, logDerivative * 0.7], alongAxis: 0)
    }
    #expect(result.maxRelativeError < 1e-6, "\(result)")
}

@Test("the vector circular spline kernel matches the generic one, values and gradients", arguments: [false, true])
func vectorCircularSplineMatchesGeneric(inverse: Bool) throws {
    for (spline, rawScale) in circularSplines {
        var g = RandomGenerator(seed: 24)
        let n = 203   // a partial last block
        var xs = Tensor.uniform([n], low: -.pi, high: .pi, generator: &g).floats
        xs[0] = -Float(Double.pi)   // the float32 nearest −π (Float.pi is rounded down)
        xs[1] = 3 * Float(Double.pi) - 0.25   // a turn away
        let x = Tensor(xs), p = Tensor.randn([n, spline.parameterCount], generator: &g) * rawScale
        let weights = Tensor.randn([n], generator: &g)
        func run(vectorized: Bool) -> (output: [Double], log: [Double], gx: [Double], gp: [Double]) {
            let xv = x.requiringGradient(), pv = p.requiringGradient()
            let (out, logDerivative) = RationalQuadraticSplineKernel.evaluate(xv, parameters: pv, spline: spline, inverse: inverse,
                                                                              vectorized: vectorized)
            ((out * weights).sum() + (logDerivative * 0.7).sum()).backward()
            return (out.doubles, logDerivative.doubles, xv.grad!.doubles, pv.grad!.doubles)
        }
        let vector = run(vectorized: true), generic = run(vectorized: false)
        let outputs = zip(vector.output, generic.output).map { min(abs($0 - $1), abs(abs($0 - $1) - 2 * .pi)) }.max()!
        #expect(outputs < 1e-5 && maxAbsDifference(vector.log, generic.log) < 1e-4)
        #expect(vector.output.allSatisfy { Domain.circle.contains($0) })
        #expect(maxAbsDifference(vector.gx, generic.gx) < 1e-4 * max(generic.gx.map(abs).max()!, 1))
        #expect(maxAbsDifference(vector.gp, generic.gp) < 1e-4 * max(generic.gp.map(abs).max()!, 1))
        // The end derivative's raw parameter (the last) gets gradient from the outer bins.
        let last = stride(from: spline.parameterCount - 1, to: vector.gp.count, by: spline.parameterCount).map { vector.gp[$0] }
        #expect(last.contains { $0 != 0 })
    }
}

@Test func circularSplinesAreTheIdentityAtTheirIdentityParametersAndNeedBoundPi() throws {
    for (spline, _) in circularSplines {
        #expect(spline.parameterCount == 3 * spline.bins)
        let x = Tensor([-.pi, -2, 0, 1.5, 3.1], dtype: .float64)
        let raw = Tensor(spline.identityParameters, shape: [1, spline.parameterCount], dtype: .float64).broadcast(to: [5, spline.parameterCount])
        let (y, logDerivative) = spline.forward(x, parameters: raw)
        #expect(maxAbsDifference(y.doubles, x.doubles) < 1e-12 && logDerivative.doubles.allSatisfy { abs($0) < 1e-12 })
    }
    #expect(throws: FlowError.self) { try Flow(base: Uniform.circle(2), plan: Spline(bins: 4, bound: 3, boundary: .circular)) }
}

@Test func circularShiftRotatesAndWraps() throws {
    let transform = CircularShiftTransform()
    let x = Tensor([-3.0, -1, 0.5, 2.9, 3.1], dtype: .float64)
    let s = Tensor([0.5, -2.5, 3.0, 0.3, 1.0], shape: [5, 1], dtype: .float64)
    let (y, logDerivative) = transform.forward(x, parameters: s)
    let expected = zip(x.doubles, s.doubles).map { v, shift in
        let z = v + shift
        return z >= .pi ? z - 2 * .pi : (z < -.pi ? z + 2 * .pi : z)
    }
    #expect(maxAbsDifference(y.doubles, expected) < 1e-15 && logDerivative.doubles.allSatisfy { $0 == 0 })
    let (back, _) = transform.inverse(y, parameters: s)
    #expect(maxAbsDifference(back.doubles, x.doubles) < 1e-14)
    // ∂y/∂x = ∂y/∂s = 1 (finite differences, away from the wrap).
    let result = gradCheck([x, s]) { transform.forward($0[0], parameters: $0[1]).y }
    #expect(result.maxRelativeError < 1e-8, "\(result)")
    // The fixed shift: a half turn.
    let flow = try Flow(base: Uniform.circle(2, dtype: .float64), plan: CircularShift(.fixed(.pi)))
    let turned = try flow.bijector.forward(Tensor([-3, 0.5], shape: [1, 2], dtype: .float64), context: nil).y.doubles
    #expect(maxAbsDifference(turned, [.pi - 3, 0.5 - .pi]) < 1e-15)
    #expect(throws: FlowError.self) { try Flow(base: Uniform.circle(2), plan: CircularShift(.fixed(.infinity))) }
}

@Test func circularFlowsRefuseAnglesOutsideTheCircle() throws {
    let flow = try Flow(base: Uniform.circle(2), plan: NCSF(layers: 2, bins: 4, conditioner: DenseAutoregressive(hiddenSizes: [8])))
    for bad in [Float(Double.pi), -3.2, 7, .infinity] {
        do {
            _ = try flow.logProb(Tensor([0.5, bad], shape: [1, 2]), context: nil)
            Issue.record("accepted \(bad)")
        } catch let error as FlowError {
            switch error {
            case .outsideDomain(let message): #expect(message.contains("[−π, π)"), "\(message)")
            case .nonFiniteValues: #expect(!bad.isFinite)
            default: Issue.record("wrong error \(error)")
            }
        }
    }
    // −π as the nearest float32 (just below the real −π) is inside; its density is finite.
    #expect(try flow.logProb(Tensor([-Float(Double.pi), 0], shape: [1, 2]), context: nil).isFinite)
}

@Test func torusMixtureSamplesFollowItsDensity() throws {
    // ∫p over the torus by the midpoint rule, and E[cos(θ₁ + θ₂)] and E[sin θ₁] by the same
    // grid against the samples' means (standard errors below 0.005 at 100,000 samples).
    let cells = 400, h = 2 * Double.pi / Double(cells)
    var (mass, cosine, sine) = (0.0, 0.0, 0.0)
    for i in 0..<cells {
        for j in 0..<cells {
            let a = -Double.pi + (Double(i) + 0.5) * h, b = -Double.pi + (Double(j) + 0.5) * h
            let p = exp(TorusMixture.logDensity(a, b)) * h * h
            mass += p
            cosine += p * cos(a + b)
            sine += p * sin(a)
        }
    }
    #expect(abs(mass - 1) < 1e-9)
    var g = RandomGenerator(seed: 25)
    let samples = TorusMixture.sample(100_000, generator: &g).doubles
    let pairs = stride(from: 0, to: samples.count, by: 2).map { (samples[$0], samples[$0 + 1]) }
    #expect(pairs.allSatisfy { $0.0 >= -.pi && $0.0 < .pi && $0.1 >= -.pi && $0.1 < .pi })
    let sampleCosine = pairs.map { cos($0.0 + $0.1) }.reduce(0, +) / Double(pairs.count)
    let sampleSine = pairs.map { sin($0.0) }.reduce(0, +) / Double(pairs.count)
    #expect(abs(sampleCosine - cosine) < 0.02 && abs(sampleSine - sine) < 0.02, "cos \(sampleCosine) vs \(cosine), sin \(sampleSine) vs \(sine)")
    // The von Mises sampler alone: E[cos(θ − μ)] = I₁(κ)/I₀(κ), with I₁ = I₀′ by central differences.
    let kappa = 2.5, i1 = (TorusMixture.besselI0(kappa + 1e-5) - TorusMixture.besselI0(kappa - 1e-5)) / 2e-5
    let draws = (0..<50_000).map { _ in cos(TorusMixture.vonMises(mean: 1, concentration: kappa, generator: &g) - 1) }
    #expect(abs(draws.reduce(0, +) / 50_000 - i1 / TorusMixture.besselI0(kappa)) < 0.01)
}

@Test func ncsfFitsTheTorusMixture() throws {
    // A short fit moves the held-out NLL from the uniform base's 2·log 2π toward the entropy.
    var g = RandomGenerator(seed: 26)
    let data = TorusMixture.sample(4000, generator: &g, dtype: .float32), test = TorusMixture.sample(2000, generator: &g, dtype: .float32)
    let flow = try Flow(base: Uniform.circle(2), plan: NCSF(layers: 3, bins: 8, conditioner: DenseAutoregressive(hiddenSizes: [32, 32])), seed: 1)
    let start = try -flow.logProb(test, context: nil).mean().item
    #expect(abs(start - 2 * log(2 * Double.pi)) < 0.05)
    var options = FitOptions()
    options.steps = 300
    options.batchSize = 256
    options.learningRate = 5e-3
    options.validationFraction = 0
    _ = try fit(flow, data: data, options: options)
    let nll = try -flow.logProb(test, context: nil).mean().item
    let truth = -TorusMixture.logDensity(test).reduce(0, +) / 2000
    #expect(nll < start - 0.3 && nll > truth - 0.1, "NLL \(start) → \(nll); the true density's \(truth)")
}

@Test func circularSplinePlansReadOldFilesAndRoundTrip() throws {
    // A spline plan written before `boundary` existed has linear tails.
    let old = #"{"options":{"transform":{"bins":4,"bound":3,"minimumBinHeight":0.001,"minimumBinWidth":0.001,"minimumDerivative":0.001}},"type":"Spline"}"#
    let plan = try #require(try PlanCoding.plan(fromJSON: old) as? Spline)
    #expect(plan.transform.boundary == .linearTails && plan.transform.parameterCount == 11)
    // An NCSF with context saves and loads to the same densities.
    let flow = try Flow(base: Uniform.circle(2), plan: NCSF(layers: 2, bins: 5, conditioner: DenseAutoregressive(hiddenSizes: [8])),
                        contextSize: 1, seed: 3)
    var g = RandomGenerator(seed: 27)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.2 }
    let x = TorusMixture.sample(20, generator: &g, dtype: .float32), c = Tensor.randn([20, 1], generator: &g)
    let path = scratchFolder() + "/ncsf.safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    #expect(maxAbsDifference(try loaded.logProb(x, context: c).doubles, try flow.logProb(x, context: c).doubles) < 1e-6)
    #expect(loaded.base is Uniform)
}
