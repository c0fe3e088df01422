import Foundation
import Testing
@testable import NormalizingFlows

// The bracketing root finder that inverts monotonic transforms without a closed form, and the
// neural monotonic families built on it, against independent computations: closed-form roots,
// the families' formulas evaluated directly in Double, finite differences.

/// The element a `notConverged` error names (`.some(nil)` without one), `nil` for any other outcome.
private func notConvergedElement(_ body: () throws -> Void) -> Int?? {
    do {
        try body()
        return nil
    } catch FlowError.notConverged(let row, _) {
        return .some(row)
    } catch {
        return nil
    }
}

// MARK: - The root finder

@Test("the root finder inverts sinh to its tolerance, near and far", arguments: [DType.float32, .float64])
func rootFinderInvertsSinh(dtype: DType) throws {
    // y over twenty-odd orders of magnitude: far roots need the bracket to double ~6 times.
    let ys = [0, 1e-9, -0.3, 1, -7.5, 42, -1e4, 1e8, -3e11]
    let finder = MonotoneRootFinder(dtype: dtype)
    var calls = 0
    let roots = try finder.solve(targets: ys, start: ys.map { _ in 0 }, what: "sinh") { xs in
        calls += 1
        // f in the dtype it would be computed in.
        return dtype == .float32 ? xs.map { Double(Foundation.sinh(Float($0))) } : xs.map(Foundation.sinh)
    }
    for (y, x) in zip(ys, roots) {
        let exact = Foundation.asinh(y)
        // The bracket is at most 2·tol·(1 + |x|) wide when it stops, and the root lies inside.
        #expect(abs(x - exact) <= 2 * finder.tolerance * (1 + abs(exact)), "\(dtype): sinh⁻¹(\(y)) = \(exact), found \(x)")
    }
    #expect(calls < 80, "\(calls) evaluations")
}

@Test func rootFinderReportsWhatItCannotSolve() throws {
    var finder = MonotoneRootFinder(dtype: .float64)
    // tanh never reaches 2: no bracket, named by its element.
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0.5, 2, 0.1], start: [0, 0, 0], what: "tanh", evaluate: { $0.map(Foundation.tanh) })
    } == .some(1))
    // A map that is NaN somewhere it is evaluated.
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0.5, 3], start: [0, 0], what: "sqrt") { $0.map { $0 < 0 ? .nan : $0.squareRoot() } }
    } == .some(0))
    // Too few steps to narrow a cube root's bracket to 10⁻¹⁴.
    finder.maximumIterations = 2
    #expect(notConvergedElement {
        _ = try finder.solve(targets: [0, 5, 9], start: [0, 0, 0], what: "cube") { $0.map { $0 * $0 * $0 } }
    } == .some(1))
    // Non-finite targets give NaN, not an error; exact hits stop at once.
    finder.maximumIterations = 100
    let roots = try finder.solve(targets: [.nan, .infinity, 8], start: [0, 0, 1], what: "cube") { $0.map { $0 * $0 * $0 } }
    #expect(roots[0].isNaN && roots[1].isNaN && abs(roots[2] - 2) <= 6e-14)
}

@Test func anElementsErrorBecomesItsRowsError() {
    let error = FlowError.notConverged(row: 7, "x")
    #expect(error.elementAsRow(elementsPerRow: 3) == .notConverged(row: 2, "x"))
    #expect(error.elementAsRow(elementsPerRow: 1, offset: 2048) == .notConverged(row: 2055, "x"))
    #expect(FlowError.notConverged(row: nil, "x").elementAsRow(elementsPerRow: 3) == .notConverged(row: nil, "x"))
}

// MARK: - Deep sigmoidal flow (NAF)

/// The DSF map and its log-derivative straight from the definition, in Double: y = logit S with
/// S = Σ wⱼσ(aⱼx + bⱼ), dy/dx = Σ wⱼaⱼσ(zⱼ)(1 − σ(zⱼ)) / (S(1 − S)). Accurate where S is
/// away from 0 and 1 (|x| of a few units), which is where it is used.
private func directDSF(_ x: Double, raw: ArraySlice<Double>, units k: Int) -> (y: Double, logDerivative: Double) {
    let r = Array(raw)
    let a = (0..<k).map { Foundation.log1p(Foundation.exp(max(r[$0], -30))) }
    let b = Array(r[k..<(2 * k)])
    let e = r[(2 * k)...].map { Foundation.exp($0) }, total = e.reduce(0, +)
    let w = e.map { $0 / total }
    let s = (0..<k).map { 1 / (1 + Foundation.exp(-(a[$0] * x + b[$0]))) }
    let big = zip(w, s).map { $0 * $1 }.reduce(0, +)
    let slope = (0..<k).map { w[$0] * a[$0] * s[$0] * (1 - s[$0]) }.reduce(0, +)
    return (Foundation.log(big / (1 - big)), Foundation.log(slope / (big * (1 - big))))
}

@Test func theDeepSigmoidalTransformComputesItsDefinition() throws {
    var g = RandomGenerator(seed: 3)
    let transform = DeepSigmoidalTransform(units: 5)
    let n = 200, p = transform.parameterCount
    let x = Tensor.uniform([n], low: -4, high: 4, generator: &g, dtype: .float64)
    let raw = Tensor.randn([n, p], generator: &g, dtype: .float64) * 1.5
    let (y, logDerivative) = transform.forward(x, parameters: raw)
    let (xs, rows) = (x.doubles, raw.doubles)
    var largest = (y: 0.0, log: 0.0)
    for i in 0..<n {
        let (expected, expectedLog) = directDSF(xs[i], raw: rows[(i * p)..<((i + 1) * p)], units: 5)
        largest.y = max(largest.y, abs(y.doubles[i] - expected) / max(1, abs(expected)))
        largest.log = max(largest.log, abs(logDerivative.doubles[i] - expectedLog))
    }
    #expect(largest.y < 1e-10 && largest.log < 1e-10, "\(largest)")
    // The identity parameters are the identity.
    let identity = Tensor(transform.identityParameters, shape: [1, p], dtype: .float64)
    let (same, zeroLog) = transform.forward(x, parameters: identity)
    #expect(maxAbsDifference(same.doubles, xs) < 1e-12 && zeroLog.doubles.allSatisfy { abs($0) < 1e-12 })
}

@Test("the deep sigmoidal transform's gradients match finite differences", arguments: [false, true])
func deepSigmoidalGradients(inverse: Bool) throws {
    var g = RandomGenerator(seed: 6)
    let transform = DeepSigmoidalTransform(units: 4)
    let x = Tensor([-6, -2.5, -0.4, 0, 0.3, 1.7, 5], dtype: .float64)
    let parameters = Tensor.randn([7, transform.parameterCount], generator: &g, dtype: .float64)
    // The inverse's derivatives are the implicit ones (one Newton step on the tape).
    let result = transformGradCheck(transform, x, parameters, inverse: inverse)
    #expect(result.maxRelativeError < 1e-6, "\(result)")
}

@Test("the deep sigmoidal transform inverts to its tolerance and stays finite far out", arguments: [DType.float32, .float64])
func deepSigmoidalRoundTrip(dtype: DType) throws {
    var g = RandomGenerator(seed: 8)
    let transform = DeepSigmoidalTransform(units: 8)
    let xs = [-1e3, -40, -3, -1e-7, 0, 0.5, 2, 12, 1e3]
    let x = Tensor(xs, dtype: dtype)
    let raw = Tensor.randn([xs.count, transform.parameterCount], generator: &g, dtype: dtype) * 2
    let (y, logForward) = transform.forward(x, parameters: raw)
    #expect(y.isFinite && logForward.isFinite, "\(dtype): y \(y.doubles), log-derivative \(logForward.doubles)")
    let (back, logInverse) = try transform.inverse(y, parameters: raw)
    let tolerance = MonotoneRootFinder(dtype: dtype).tolerance
    for (a, b) in zip(back.doubles, xs) {
        // The bracket's width, plus the map's own rounding in y amplified by 1/f′ (f′ ≥ e^-5 here).
        let allowed = 2 * tolerance * (1 + abs(b)) + (dtype == .float32 ? 1e-4 * (1 + abs(b)) : 0)
        #expect(abs(a - b) <= allowed, "\(dtype): \(b) → \(a)")
    }
    #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < (dtype == .float32 ? 1e-4 : 1e-9))
}

@Test("a neural monotonic flow samples what it scores", arguments: ["naf", "unaf", "sospf", "bpf"])
func aNeuralMonotonicFlowSamplesWhatItScores(_ family: String) throws {
    // The density is one pass; sampling inverts every layer by root-finding.
    let conditioner = DenseAutoregressive(hiddenSizes: [12])
    let plan: any BijectorPlan = switch family {
    case "naf": NAF(layers: 2, units: 6, conditioner: conditioner)
    case "unaf": UNAF(layers: 2, hiddenUnits: 4, conditioner: conditioner)
    case "sospf": SOSPF(layers: 2, polynomials: 2, degree: 2, conditioner: conditioner)
    default: BPF(layers: 2, degree: 6, bound: 2, conditioner: conditioner)
    }
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: plan, seed: 2)
    var g = RandomGenerator(seed: 4)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.3 }
    let (samples, logProbs) = try withoutGradients { try flow.sampleAndLogProb(300, generator: &g) }
    let rescored = try flow.logProb(samples)
    #expect(maxAbsDifference(logProbs.doubles, rescored.doubles) < 1e-8, "\(family)")
}

// MARK: - Unconstrained monotonic networks (UNAF)

@Test func theGaussLegendreRuleIsExactToDegreeTwoNMinusOne() {
    for n in [1, 2, 5, 32] {
        let (nodes, weights) = gaussLegendreRule(n)
        for degree in 0...(2 * n) {
            let rule = zip(nodes, weights).map { pow($0, Double(degree)) * $1 }.reduce(0, +)
            let exact = degree % 2 == 1 ? 0 : 2 / Double(degree + 1)
            if degree < 2 * n {
                #expect(abs(rule - exact) < 1e-14, "n = \(n), ∫ t^\(degree): \(rule) vs \(exact)")
            } else if n <= 5 {
                // Degree 2n is the first the rule misses, by 2²ⁿ⁺¹(n!)⁴/((2n + 1)((2n)!)²) (the
                // rule's error term for t²ⁿ); at n = 32 that is below Double's resolution.
                let error = Foundation.exp(Double(2 * n + 1) * Foundation.log(2.0) + 4 * Foundation.lgamma(Double(n + 1))
                                           - Foundation.log(Double(2 * n + 1)) - 2 * Foundation.lgamma(Double(2 * n + 1)))
                #expect(abs((exact - rule) / error - 1) < 1e-9, "n = \(n), degree \(degree): misses by \(exact - rule), expected \(error)")
            }
        }
    }
}

/// The UMNN integrand g(t) = softplus(c + Σ vₖ tanh(aₖt + bₖ)) + 10⁻³ in Double, from the raw layout.
private func directIntegrand(_ t: Double, raw r: [Double], hidden h: Int) -> Double {
    let s = r[3 * h] + (0..<h).map { r[2 * h + $0] * Foundation.tanh(r[$0] * t + r[h + $0]) }.reduce(0, +)
    return max(s, 0) + Foundation.log1p(Foundation.exp(-abs(s))) + 1e-3
}

@Test func theUnconstrainedMonotonicTransformIntegratesItsIntegrand() throws {
    var g = RandomGenerator(seed: 3)
    let transform = UnconstrainedMonotonicTransform(hiddenUnits: 5)
    let n = 60, p = transform.parameterCount
    let x = Tensor.uniform([n], low: -4, high: 4, generator: &g, dtype: .float64)
    let raw = Tensor.randn([n, p], generator: &g, dtype: .float64)
    let (y, logDerivative) = transform.forward(x, parameters: raw)
    var largest = (y: 0.0, log: 0.0)
    for i in 0..<n {
        let r = Array(raw.doubles[(i * p)..<((i + 1) * p)]), xi = x.doubles[i]
        // Composite Simpson with 4,000 panels: error ~ (x/4000)⁴·max|g⁗| ≪ 1e-10 here.
        let panels = 4000, step = xi / Double(panels)
        var integral = directIntegrand(0, raw: r, hidden: 5) + directIntegrand(xi, raw: r, hidden: 5)
        for k in 1..<panels { integral += (k % 2 == 1 ? 4 : 2) * directIntegrand(Double(k) * step, raw: r, hidden: 5) }
        let expected = integral * step / 3 + r[p - 1]
        largest.y = max(largest.y, abs(y.doubles[i] - expected) / max(1, abs(expected)))
        largest.log = max(largest.log, abs(logDerivative.doubles[i] - Foundation.log(directIntegrand(xi, raw: r, hidden: 5))))
    }
    // The 32-point rule against the fine Simpson sum: the quadrature the flow uses is this close
    // to the exact integral whose derivative the log-determinant is.
    #expect(largest.y < 1e-10 && largest.log < 1e-12, "\(largest)")
    let identity = Tensor(transform.identityParameters, shape: [1, p], dtype: .float64)
    let (same, zeroLog) = transform.forward(x, parameters: identity)
    #expect(maxAbsDifference(same.doubles, x.doubles) < 1e-12 && zeroLog.doubles.allSatisfy { abs($0) < 1e-12 })
}

@Test("the unconstrained monotonic transform's gradients match finite differences", arguments: [false, true])
func unconstrainedMonotonicGradients(inverse: Bool) throws {
    var g = RandomGenerator(seed: 6)
    // With the default 32 nodes: the inverse's derivatives use g(x) = dy/dx of the exact
    // integral, which the quadrature's derivative matches to the rule's error.
    let transform = UnconstrainedMonotonicTransform(hiddenUnits: 3)
    let x = Tensor([-3.5, -1.2, -0.4, 0, 0.3, 1.7, 3], dtype: .float64)
    let parameters = Tensor.randn([7, transform.parameterCount], generator: &g, dtype: .float64)
    let result = transformGradCheck(transform, x, parameters, inverse: inverse)
    #expect(result.maxRelativeError < 1e-6, "\(result)")
}

@Test("the unconstrained monotonic transform inverts to its tolerance", arguments: [DType.float32, .float64])
func unconstrainedMonotonicRoundTrip(dtype: DType) throws {
    var g = RandomGenerator(seed: 8)
    let transform = UnconstrainedMonotonicTransform(hiddenUnits: 6)
    let xs = [-30, -3, -1e-7, 0, 0.5, 2, 12, 40]
    let x = Tensor(xs, dtype: dtype)
    let raw = Tensor.randn([xs.count, transform.parameterCount], generator: &g, dtype: dtype)
    let (y, logForward) = transform.forward(x, parameters: raw)
    let (back, logInverse) = try transform.inverse(y, parameters: raw)
    let tolerance = MonotoneRootFinder(dtype: dtype).tolerance
    for (a, b) in zip(back.doubles, xs) {
        let allowed = 2 * tolerance * (1 + abs(b)) + (dtype == .float32 ? 1e-4 * (1 + abs(b)) : 0)
        #expect(abs(a - b) <= allowed, "\(dtype): \(b) → \(a)")
    }
    #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < (dtype == .float32 ? 1e-4 : 1e-9))
}

// MARK: - Sum-of-squares polynomial flow (SOSPF)

/// g(t) = ε + ((1 − ε)/K) Σₖ (1 + Σₗ aₖₗ tˡ)² in Double, by Horner's rule, from the raw layout.
private func directSquares(_ t: Double, raw r: [Double], polynomials k: Int, degree l: Int) -> Double {
    let squares = (0..<k).map { i -> Double in
        var p = 0.0
        for j in stride(from: l, through: 0, by: -1) { p = p * t + r[i * (l + 1) + j] }
        return (1 + p) * (1 + p)
    }
    return 1e-3 + (1 - 1e-3) / Double(k) * squares.reduce(0, +)
}

@Test("the sum-of-squares transform integrates its polynomials, linearly beyond its bound", arguments: [nil, 2.0] as [Double?])
func theSumOfSquaresTransformIntegratesItsPolynomials(bound: Double?) throws {
    var g = RandomGenerator(seed: 3)
    let (k, l) = (3, 3)
    let transform = SumOfSquaresPolynomialTransform(polynomials: k, degree: l, bound: bound)
    let n = 60, p = transform.parameterCount
    let x = Tensor.uniform([n], low: -3, high: 3, generator: &g, dtype: .float64)
    let raw = Tensor.randn([n, p], generator: &g, dtype: .float64) * 0.7
    let (y, logDerivative) = transform.forward(x, parameters: raw)
    let scale = bound ?? 1
    var largest = (y: 0.0, log: 0.0)
    for i in 0..<n {
        let r = Array(raw.doubles[(i * p)..<((i + 1) * p)]), xi = x.doubles[i]
        // g(s) = directSquares(s/B) on [−B, B], constant beyond: Simpson up to the clamped end
        // (2,000 panels on a degree-6 integrand: error ≪ 1e-10), then the constant slope.
        let end = bound.map { min(max(xi, -$0), $0) } ?? xi
        func integrand(_ s: Double) -> Double { directSquares(s / scale, raw: r, polynomials: k, degree: l) }
        let panels = 2000, step = end / Double(panels)
        var integral = integrand(0) + integrand(end)
        for j in 1..<panels { integral += (j % 2 == 1 ? 4 : 2) * integrand(Double(j) * step) }
        let expected = integral * step / 3 + (xi - end) * integrand(end) + r[p - 1]
        largest.y = max(largest.y, abs(y.doubles[i] - expected) / max(1, abs(expected)))
        largest.log = max(largest.log, abs(logDerivative.doubles[i] - Foundation.log(integrand(end))))
    }
    #expect(largest.y < 1e-10 && largest.log < 1e-12, "\(largest)")
    if let bound { #expect(x.doubles.contains { abs($0) > bound } && x.doubles.contains { abs($0) < bound }) }
    let (same, zeroLog) = transform.forward(x, parameters: Tensor.zeros([1, p], dtype: .float64))
    #expect(maxAbsDifference(same.doubles, x.doubles) < 1e-12 && zeroLog.doubles.allSatisfy { abs($0) < 1e-12 })
}

@Test("the sum-of-squares transform's gradients match finite differences", arguments: [false, true], [nil, 1.0] as [Double?])
func sumOfSquaresGradients(inverse: Bool, bound: Double?) throws {
    var g = RandomGenerator(seed: 6)
    let transform = SumOfSquaresPolynomialTransform(polynomials: 2, degree: 3, bound: bound)
    let x = Tensor([-2.5, -1.2, -0.4, 0, 0.3, 1.7, 2.2], dtype: .float64)
    let parameters = Tensor.randn([7, transform.parameterCount], generator: &g, dtype: .float64) * 0.7
    let result = transformGradCheck(transform, x, parameters, inverse: inverse)
    #expect(result.maxRelativeError < 1e-6, "\(result)")
}

@Test("the sum-of-squares transform inverts to its tolerance", arguments: [DType.float32, .float64])
func sumOfSquaresRoundTrip(dtype: DType) throws {
    var g = RandomGenerator(seed: 8)
    // Bound 4: −8 and 6 lie on the linear tails.
    let transform = SumOfSquaresPolynomialTransform(polynomials: 3, degree: 2, bound: 4)
    let xs = [-8, -3, -1e-7, 0, 0.5, 2, 6]
    let x = Tensor(xs, dtype: dtype)
    let raw = Tensor.randn([xs.count, transform.parameterCount], generator: &g, dtype: dtype) * 0.5
    let (y, logForward) = transform.forward(x, parameters: raw)
    let (back, logInverse) = try transform.inverse(y, parameters: raw)
    let tolerance = MonotoneRootFinder(dtype: dtype).tolerance
    for (a, b) in zip(back.doubles, xs) {
        let allowed = 2 * tolerance * (1 + abs(b)) + (dtype == .float32 ? 1e-4 * (1 + abs(b)) : 0)
        #expect(abs(a - b) <= allowed, "\(dtype): \(b) → \(a)")
    }
    #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < (dtype == .float32 ? 1e-4 : 1e-9))
}

@Test func aDeepSumOfSquaresFlowStaysFiniteOnDataOfScalePi() throws {
    // Five layers of degree 4 with every weight moved by N(0, 0.2²), about what a few training
    // steps do: polynomials without a bound compose to degree 9⁵ and overflow Float32 on data in
    // [−π, π]; with the bound each layer is linear beyond ±10, so the flow stays finite, and its
    // log-density is the base density of z(x) plus log |det ∂z/∂x|, the Jacobian taken by
    // central differences in Float64.
    func flow(bound: Double?, dtype: DType) throws -> Flow {
        let plan = SOSPF(layers: 5, polynomials: 3, degree: 4, bound: bound, conditioner: DenseAutoregressive(hiddenSizes: [16]))
        let flow = try Flow(base: Normal.standard([2], dtype: dtype), plan: plan, seed: 1)
        var g = RandomGenerator(seed: 2)
        for p in flow.parameters {
            p.value = p.value + Tensor(Tensor.randn(p.shape, generator: &g, dtype: .float64).doubles, shape: p.shape, dtype: dtype) * 0.2
        }
        return flow
    }
    let points: [Double] = [-3.1, 2.9, 3.14, -3.14, 0.4, -0.5, 1.5, -2.2]
    let rows = points.count / 2
    let unbounded = try? flow(bound: nil, dtype: .float32).logProb(Tensor(points, shape: [rows, 2], dtype: .float32)).doubles
    #expect(unbounded.map { $0.contains { !$0.isFinite } } ?? true, "the configuration overflows unbounded polynomials: \(unbounded ?? [])")
    let single = try flow(bound: 10, dtype: .float32).logProb(Tensor(points, shape: [rows, 2], dtype: .float32)).doubles
    let reference = try flow(bound: 10, dtype: .float64)
    let double = try reference.logProb(Tensor(points, shape: [rows, 2], dtype: .float64)).doubles
    #expect(single.allSatisfy(\.isFinite) && double.allSatisfy(\.isFinite), "\(single) \(double)")
    for (a, b) in zip(single, double) { #expect(abs(a - b) < 1e-3 * (1 + abs(b)), "Float32 \(a), Float64 \(b)") }
    // z(x), the map toward the base: the bijector's inverse.
    func z(_ x: [Double]) throws -> [Double] { try reference.bijector.inverse(Tensor(x, shape: [1, 2], dtype: .float64), context: nil).x.doubles }
    for r in 0..<rows {
        let x = Array(points[(2 * r)..<(2 * r + 2)])
        var jacobian = [Double](repeating: 0, count: 4)
        for j in 0..<2 {
            let h = 1e-6 * (1 + abs(x[j]))
            var up = x, down = x
            up[j] += h
            down[j] -= h
            let (zUp, zDown) = (try z(up), try z(down))
            for i in 0..<2 { jacobian[i * 2 + j] = (zUp[i] - zDown[i]) / (2 * h) }
        }
        let zx = try z(x)
        let expected = zx.map { -0.5 * $0 * $0 - 0.5 * Foundation.log(2 * Double.pi) }.reduce(0, +) + logAbsDeterminant(jacobian, n: 2)
        #expect(abs(double[r] - expected) < 1e-6 * (1 + abs(expected)), "row \(r): \(double[r]) vs \(expected)")
    }
}

// MARK: - Model files

@Test("a monotonic flow's model file rebuilds the same flow", arguments: ["naf", "unaf", "sospf", "sospf-unbounded", "bpf"])
func monotonicFlowsSaveAndLoad(_ family: String) throws {
    let conditioner = DenseAutoregressive(hiddenSizes: [8])
    let plan: any BijectorPlan = switch family {
    case "naf": NAF(layers: 2, units: 5, conditioner: conditioner)
    case "unaf": UNAF(layers: 2, hiddenUnits: 3, nodes: 20, conditioner: conditioner)
    case "sospf": SOSPF(layers: 2, polynomials: 2, degree: 4, conditioner: conditioner)
    // Files written before SOSPF had a bound lack the key, which reads back as no bound.
    case "sospf-unbounded": SOSPF(layers: 2, polynomials: 2, degree: 4, bound: nil, conditioner: conditioner)
    default: BPF(layers: 2, degree: 7, bound: 4, conditioner: conditioner)
    }
    let flow = try Flow(base: Normal.standard([2]), plan: plan, contextSize: 1, seed: 5)
    var g = RandomGenerator(seed: 6)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.2 }
    let path = "\(scratchFolder())/\(family).safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    let x = Tensor.randn([5, 2], generator: &g), c = Tensor.randn([5, 1], generator: &g)
    #expect(try PlanCoding.json(loaded.plan) == PlanCoding.json(plan), "the hyperparameters are kept")
    if family.hasPrefix("sospf") {
        let json = try PlanCoding.json(plan)
        #expect(json.contains("\"bound\"") == (family == "sospf"), "\(json)")
    }
    #expect(maxAbsDifference(try loaded.logProb(x, context: c).doubles, try flow.logProb(x, context: c).doubles) == 0)
}

// MARK: - Bernstein polynomial flow (BPF)

/// The Bernstein polynomial map from its definition in Double: coefficients by cumulative
/// softplus, the polynomial by de Casteljau's algorithm inside [−B, B], linear tails outside with
/// the end slopes M(β₁ − β₀)/(2B) and M(β_M − β_{M−1})/(2B).
private func directBernstein(_ x: Double, raw r: [Double], bound b: Double) -> Double {
    let m = r.count - 1
    var beta = [r[0]]
    for k in 1...m { beta.append(beta[k - 1] + Foundation.log1p(Foundation.exp(max(r[k], -30)))) }
    func casteljau(_ u: Double) -> Double {
        var points = beta
        for level in 1...m { for i in 0...(m - level) { points[i] = (1 - u) * points[i] + u * points[i + 1] } }
        return points[0]
    }
    if x < -b { return beta[0] + (x + b) * Double(m) * (beta[1] - beta[0]) / (2 * b) }
    if x > b { return beta[m] + (x - b) * Double(m) * (beta[m] - beta[m - 1]) / (2 * b) }
    return casteljau((x + b) / (2 * b))
}

@Test func theBernsteinTransformComputesItsDefinition() throws {
    var g = RandomGenerator(seed: 3)
    let transform = BernsteinPolynomialTransform(degree: 7, bound: 2)
    let n = 80, p = transform.parameterCount
    let x = Tensor.uniform([n], low: -3.5, high: 3.5, generator: &g, dtype: .float64)   // inside and in both tails
    let raw = Tensor.randn([n, p], generator: &g, dtype: .float64)
    let (y, logDerivative) = transform.forward(x, parameters: raw)
    var largest = (y: 0.0, log: 0.0)
    for i in 0..<n {
        let r = Array(raw.doubles[(i * p)..<((i + 1) * p)]), xi = x.doubles[i]
        let expected = directBernstein(xi, raw: r, bound: 2)
        // The log-derivative against central differences of the direct map (h = 1e-5, off the knots ±B).
        let h = 1e-5
        let slope = (directBernstein(xi + h, raw: r, bound: 2) - directBernstein(xi - h, raw: r, bound: 2)) / (2 * h)
        largest.y = max(largest.y, abs(y.doubles[i] - expected) / max(1, abs(expected)))
        if abs(abs(xi) - 2) > 2 * h { largest.log = max(largest.log, abs(logDerivative.doubles[i] - Foundation.log(slope))) }
    }
    #expect(largest.y < 1e-12 && largest.log < 1e-7, "\(largest)")
    let identity = Tensor(transform.identityParameters, shape: [1, p], dtype: .float64)
    let (same, zeroLog) = transform.forward(x, parameters: identity)
    #expect(maxAbsDifference(same.doubles, x.doubles) < 1e-12 && zeroLog.doubles.allSatisfy { abs($0) < 1e-12 })
}

@Test("the Bernstein transform's gradients match finite differences", arguments: [false, true])
func bernsteinGradients(inverse: Bool) throws {
    var g = RandomGenerator(seed: 6)
    let transform = BernsteinPolynomialTransform(degree: 5, bound: 2)
    let x = Tensor([-3.1, -1.2, -0.4, 0, 0.3, 1.7, 2.6], dtype: .float64)
    let parameters = Tensor.randn([7, transform.parameterCount], generator: &g, dtype: .float64)
    let result = transformGradCheck(transform, x, parameters, inverse: inverse)
    #expect(result.maxRelativeError < 1e-6, "\(result)")
}

@Test("the Bernstein transform inverts to its tolerance", arguments: [DType.float32, .float64])
func bernsteinRoundTrip(dtype: DType) throws {
    var g = RandomGenerator(seed: 8)
    let transform = BernsteinPolynomialTransform(degree: 8, bound: 3)
    let xs = [-40, -3, -1e-7, 0, 0.5, 2.9, 3.2, 60]
    let x = Tensor(xs, dtype: dtype)
    let raw = Tensor.randn([xs.count, transform.parameterCount], generator: &g, dtype: dtype)
    let (y, logForward) = transform.forward(x, parameters: raw)
    let (back, logInverse) = try transform.inverse(y, parameters: raw)
    let tolerance = MonotoneRootFinder(dtype: dtype).tolerance
    for (a, b) in zip(back.doubles, xs) {
        let allowed = 2 * tolerance * (1 + abs(b)) + (dtype == .float32 ? 1e-4 * (1 + abs(b)) : 0)
        #expect(abs(a - b) <= allowed, "\(dtype): \(b) → \(a)")
    }
    #expect(maxAbsDifference(logForward.doubles, logInverse.negated().doubles) < (dtype == .float32 ? 1e-4 : 1e-9))
}
