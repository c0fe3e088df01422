import Foundation
import Testing
@testable import NormalizingFlows

/// The linear-rational spline of Dolatabadi, Erfani & Leckie (2020) evaluated from the paper's
/// formulas in Float64, written out here apart from the kernel (which uses an equivalent form
/// anchored at the bin's ends): widths softmax(c·raw)·(1 − K·m) + m and heights alike, knots
/// 2B·cumsum − B after a leading 0 with the ends set to ±B; derivatives 1 at the ends and
/// m_d + softplus(raw) inside; λ = m_λ + (1 − 2m_λ)·sigmoid(raw); the bin is the number of knots
/// at or below the input, minus one. In the bin, with w_a = 1, w_b = √(d_k/d_{k+1}),
/// w_c = (λ d_k + (1 − λ) w_b d_{k+1})/s and y_c = ((1 − λ) y_k + λ w_b y_{k+1})/((1 − λ) + λ w_b)
/// (eq. 9–10), the two pieces of eq. 8 and their derivatives; the inverse is the closed form of
/// Pyro's `_monotonic_rational_spline` (each piece solved for φ), and its log-derivative minus
/// the forward one at the result. Returns the output and log |derivative|.
private func paperSpline(_ v: Double, raw: [Double], transform t: LinearRationalSplineTransform, inverse: Bool) -> (Double, Double) {
    let k = t.bins, bound = t.bound
    func knots(_ logits: ArraySlice<Double>, minimum: Double) -> [Double] {
        let exps = logits.map { exp(t.logitScale * $0) }, total = exps.reduce(0, +)
        var sums = [0.0]
        for e in exps { sums.append(sums.last! + minimum + (1 - minimum * Double(k)) * e / total) }
        var result = sums.map { 2 * bound * $0 - bound }
        result[0] = -bound
        result[k] = bound
        return result
    }
    let xs = knots(raw[0..<k], minimum: t.minimumBinWidth), ys = knots(raw[k..<(2 * k)], minimum: t.minimumBinHeight)
    let derivatives = [1.0] + raw[(2 * k)..<(3 * k - 1)].map { t.minimumDerivative + log1p(exp($0)) } + [1.0]
    let lambdas = raw[(3 * k - 1)...].map { t.minimumLambda + (1 - 2 * t.minimumLambda) / (1 + exp(-$0)) }
    guard v >= -bound && v <= bound else { return (v, 0) }
    let bin = min((inverse ? ys : xs).filter { $0 <= v }.count - 1, k - 1)
    let (xa, xb, ya, yb) = (xs[bin], xs[bin + 1], ys[bin], ys[bin + 1])
    let (d0, d1, lambda) = (derivatives[bin], derivatives[bin + 1], lambdas[bin])
    let w = xb - xa, s = (yb - ya) / w
    let wa = 1.0, wb = (d0 / d1).squareRoot() * wa
    let wc = (lambda * wa * d0 + (1 - lambda) * wb * d1) / s
    let yc = ((1 - lambda) * wa * ya + lambda * wb * yb) / ((1 - lambda) * wa + lambda * wb)
    func forward(_ x: Double) -> (Double, Double) {
        let phi = (x - xa) / w
        if phi <= lambda {
            let denominator = wa * (lambda - phi) + wc * phi
            return ((wa * ya * (lambda - phi) + wc * yc * phi) / denominator,
                    log(wa * wc * lambda * (yc - ya) / w) - 2 * log(denominator))
        }
        let denominator = wc * (1 - phi) + wb * (phi - lambda)
        return ((wc * yc * (1 - phi) + wb * yb * (phi - lambda)) / denominator,
                log(wb * wc * (1 - lambda) * (yb - yc) / w) - 2 * log(denominator))
    }
    guard inverse else { return forward(v) }
    let phi = v <= yc
        ? lambda * wa * (ya - v) / ((wc - wa) * v + wa * ya - wc * yc)
        : ((wc - lambda * wb) * v + lambda * wb * yb - wc * yc) / ((wc - wb) * v + wb * yb - wc * yc)
    let x = xa + phi * w
    return (x, -forward(x).1)
}

private let lrsTransforms: [LinearRationalSplineTransform] = [
    LinearRationalSplineTransform(bins: 8, bound: 3),
    LinearRationalSplineTransform(bins: 5, bound: 2, logitScale: 0.3),
    LinearRationalSplineTransform(bins: 2, bound: 5, minimumDerivative: 1e-2, minimumLambda: 0.1),
    LinearRationalSplineTransform(bins: 13, bound: 1),
]

@Test("the linear-rational spline computes the paper's formulas", arguments: [false, true])
func linearRationalSplineMatchesThePaper(inverse: Bool) throws {
    var g = RandomGenerator(seed: 21)
    for transform in lrsTransforms {
        let n = 500, b = transform.bound
        let x = Tensor.uniform([n], low: -1.3 * b, high: 1.3 * b, generator: &g, dtype: .float64)
        let raw = Tensor.randn([n, transform.parameterCount], generator: &g, dtype: .float64) * 2
        let (out, logDerivative) = inverse ? transform.inverse(x, parameters: raw) : transform.forward(x, parameters: raw)
        let (xs, rows, outs, logs) = (x.doubles, raw.doubles, out.doubles, logDerivative.doubles)
        let p = transform.parameterCount
        var largest = (output: 0.0, log: 0.0), outside = 0
        for i in 0..<n {
            let (expected, expectedLog) = paperSpline(xs[i], raw: Array(rows[(i * p)..<((i + 1) * p)]), transform: transform, inverse: inverse)
            largest.output = max(largest.output, abs(outs[i] - expected))
            largest.log = max(largest.log, abs(logs[i] - expectedLog))
            if abs(xs[i]) > b { outside += 1 }
        }
        #expect(outside > 20 && outside < n - 20)
        // Pyro's inverse subtracts nearly equal terms where w_c is large: it loses more digits.
        #expect(largest.output < (inverse ? 1e-9 : 1e-12) * b && largest.log < (inverse ? 1e-8 : 1e-11),
                "K = \(transform.bins), B = \(b): \(largest)")
    }
}

@Test("the fused linear-rational spline's gradients match finite differences", arguments: [false, true], 0..<lrsTransforms.count)
func fusedLinearRationalSplineGradients(inverse: Bool, index: Int) throws {
    var g = RandomGenerator(seed: 22)
    let transform = lrsTransforms[index], b = transform.bound
    // Inside and in both tails; seven inputs per raw scale.
    let points = [-1.25, -0.85, -0.4, -0.15, 0.2, 0.55, 0.95, 1.3]
    for rawScale in [0.5, 2.0] {
        let x = Tensor(points.map { $0 * b }, dtype: .float64)
        let parameters = Tensor.randn([points.count, transform.parameterCount], generator: &g, dtype: .float64) * rawScale
        let result = transformGradCheck(transform, x, parameters, inverse: inverse)
        #expect(result.maxRelativeError < 1e-6, "K = \(transform.bins), raw ×\(rawScale): \(result)")
    }
}

/// inverse(forward(x)) = x, the log-derivatives are opposite, and the forward log-derivative is
/// the log of the slope by central differences of the output (so the map is C¹ where it is
/// evaluated: across knots and intermediate points the differences see no jump).
@Test func linearRationalSplineRoundTripsAndItsLogDerivativeIsItsSlope() throws {
    var g = RandomGenerator(seed: 23)
    for transform in lrsTransforms {
        let n = 300, b = transform.bound
        let x = Tensor.uniform([n], low: -1.2 * b, high: 1.2 * b, generator: &g, dtype: .float64)
        let raw = Tensor.randn([n, transform.parameterCount], generator: &g, dtype: .float64) * 1.5
        let (y, logForward) = transform.forward(x, parameters: raw)
        let (back, logInverse) = transform.inverse(y, parameters: raw)
        #expect(maxAbsDifference(back.doubles, x.doubles) < 1e-12 * b)
        #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < 1e-10)
        let h = 1e-6 * b
        let (above, _) = transform.forward(x + h, parameters: raw), (below, _) = transform.forward(x - h, parameters: raw)
        let slopes = zip(above.doubles, below.doubles).map { log(($0 - $1) / (2 * h)) }
        #expect(maxAbsDifference(slopes, logForward.doubles) < 1e-4, "K = \(transform.bins)")
        #expect(zip(above.doubles, below.doubles).allSatisfy { $0 > $1 }, "not increasing")
    }
}

@Test func linearRationalSplineIsTheIdentityAtItsIdentityParameters() throws {
    for transform in lrsTransforms {
        let p = transform.parameterCount
        #expect(transform.identityParameters.count == p)
        let x = Tensor([-6, -0.99, -0.5, 0, 0.3, 0.99, 7].map { $0 * transform.bound }, dtype: .float64)
        let raw = Tensor(transform.identityParameters, shape: [1, p], dtype: .float64).broadcast(to: [7, p])
        for inverse in [false, true] {
            let (y, logDerivative) = inverse ? transform.inverse(x, parameters: raw) : transform.forward(x, parameters: raw)
            #expect(maxAbsDifference(y.doubles, x.doubles) < 1e-12 * transform.bound && logDerivative.doubles.allSatisfy { abs($0) < 1e-12 })
        }
    }
}

@Test func linearRationalSplinesStayFiniteAtAndBeyondTheirBoundsWithNarrowBins() throws {
    var g = RandomGenerator(seed: 24)
    let transform = LinearRationalSplineTransform(bins: 8, bound: 3)
    // Raw parameters scaled ×30 give bins near the minimum width, extreme derivatives and λ at its limits.
    let xs: [Double] = [-1e6, -3 - 1e-9, -3, -3 + 1e-12, -1e-300, 0, 1e-12, 2.999999, 3, 3 + 1e-9, 1e6]
    let x = Tensor(xs, dtype: .float64).requiringGradient()
    let parameters = (Tensor.randn([xs.count, transform.parameterCount], generator: &g, dtype: .float64) * 30).requiringGradient()
    let (y, logForward) = transform.forward(x, parameters: parameters)
    let (back, logInverse) = transform.inverse(y.detached(), parameters: parameters)
    #expect(y.isFinite && logForward.isFinite && back.isFinite && logInverse.isFinite)
    for (a, b) in zip(back.doubles, xs) { #expect(abs(a - b) <= 1e-6 * max(1, abs(b)), "\(b) → \(a)") }
    #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < 1e-6)
    (y.sum() + logForward.sum() + logInverse.sum()).backward()
    #expect(x.grad!.isFinite && parameters.grad!.isFinite)
    let x32 = Tensor(xs.map(Float.init))
    let (y32, l32) = transform.forward(x32, parameters: parameters.detached().converted(to: .float32))
    let (b32, m32) = transform.inverse(y32, parameters: parameters.detached().converted(to: .float32))
    #expect(y32.isFinite && l32.isFinite && b32.isFinite && m32.isFinite)
}

@Test("the float32 linear-rational spline agrees with the float64 one, values and gradients", arguments: [false, true])
func float32LinearRationalSplineMatchesFloat64(inverse: Bool) throws {
    var g = RandomGenerator(seed: 25)
    let transform = LinearRationalSplineTransform(bins: 8, bound: 3)
    let n = 2000
    // The float64 run sees the float32-rounded numbers.
    let x32 = Tensor.uniform([n], low: -3.5, high: 3.5, generator: &g).requiringGradient()
    let p32 = (Tensor.randn([n, transform.parameterCount], generator: &g) * 2).requiringGradient()
    let x = x32.detached().converted(to: .float64).requiringGradient(), p = p32.detached().converted(to: .float64).requiringGradient()
    let weights = Tensor.randn([n], generator: &g, dtype: .float64)
    func run(_ x: Tensor, _ p: Tensor, _ w: Tensor) -> (Tensor, Tensor) {
        let (out, logDerivative) = inverse ? transform.inverse(x, parameters: p) : transform.forward(x, parameters: p)
        ((out * w).sum() + (logDerivative * 0.7).sum()).backward()
        return (out, logDerivative)
    }
    let (out64, log64) = run(x, p, weights)
    let (out32, log32) = run(x32, p32, weights.converted(to: .float32))
    #expect(maxAbsDifference(out64.doubles, out32.doubles) < 2e-4)
    #expect(maxAbsDifference(log64.doubles, log32.doubles) < 1e-3)
    let gx = x.grad!.doubles, gp = p.grad!.doubles
    let scale = max(gx.map(abs).max()!, gp.map(abs).max()!)
    // The intermediate points split bins into halves as narrow as m_λ·w: knots rounded to float32
    // (ulp 2.4e-7 near ±2) are 1e-4 of such a half, and the log-derivative's gradients carry the
    // second derivative. The largest difference was 2.1e-4 of the largest gradient (seed 25, at
    // a slope of e^4.5 in a half 0.003 wide).
    #expect(maxAbsDifference(gx, x32.grad!.doubles) < 5e-4 * scale)
    #expect(maxAbsDifference(gp, p32.grad!.doubles) < 5e-4 * scale)
}

@Test func linearRationalSplineRefusesBadSettingsWithOneClearError() throws {
    func refused(_ change: (inout LinearRationalSplineTransform) -> Void, _ fragment: String) {
        var plan = LinearRationalSpline(bins: 4)
        change(&plan.transform)
        do {
            _ = try Flow(base: Normal.standard([2]), plan: plan)
            Issue.record("accepted: \(plan.transform)")
        } catch let error as FlowError {
            #expect("\(error)".contains(fragment), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
    refused({ $0.minimumLambda = 0.5 }, "minimum λ")
    refused({ $0.minimumLambda = 0 }, "minimum λ")
    refused({ $0.minimumLambda = .nan }, "minimum λ")
    refused({ $0.minimumBinWidth = 0.3 }, "minimum bin sizes")
    refused({ $0.minimumDerivative = 1 }, "minimum derivative")
    refused({ $0.logitScale = .infinity }, "logit scale")
    refused({ $0.bins = 1 }, "at least two bins")
    refused({ $0.bound = -1 }, "positive finite bound")
}

@Test("linear-rational spline flows rebuild bit for bit from their model files", arguments: [false, true])
func linearRationalSplineModelFilesRoundTrip(coupling: Bool) throws {
    let plan: any BijectorPlan = coupling
        ? LRSCoupling(layers: 2, bins: 5, bound: 4, conditioner: .init(hiddenSizes: [8]))
        : Compose([LRS(layers: 2, bins: 5, bound: 4, conditioner: .init(hiddenSizes: [8])), LinearRationalSpline(bins: 3)])
    let flow = try Flow(base: Normal.standard([3]), plan: plan, seed: 5)
    var g = RandomGenerator(seed: 2)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.1 }
    let y = Tensor.randn([50, 3], generator: &g) * 2
    let expected = try flow.logProb(y).floats
    let path = "\(scratchFolder())/lrs-\(coupling).safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    #expect(try loaded.logProb(y).floats == expected)
    #expect(try PlanCoding.json(loaded.plan) == PlanCoding.json(plan))
}
