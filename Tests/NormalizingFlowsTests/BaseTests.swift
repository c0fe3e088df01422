import Foundation
import Testing
@testable import NormalizingFlows

// Bases beyond the standard normal (issue 25): each saves and loads, and a hostile model file
// naming one is refused with one error.

/// A flow saved to a scratch file and loaded back.
private func savedAndLoaded(_ flow: Flow) throws -> Flow {
    let path = "\(scratchFolder())/model.safetensors"
    try flow.save(to: path)
    return try Flow.load(from: path)
}

/// Gives every parameter of the flow's bijector a small random offset, so a round trip that
/// dropped one would show.
private func perturb(_ flow: Flow, seed: UInt64) {
    var g = RandomGenerator(seed: seed)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: p.dtype) * 0.1 }
}

/// The bases of the round-trip test, each with values a round trip that lost one would change.
private func roundTripBases(_ dtype: DType) -> [any Distribution] {
    [
        StudentT(degreesOfFreedom: 2.3, loc: Tensor([0.5, -1, 2], dtype: dtype), scale: Tensor([1.5, 0.25, 1], dtype: dtype)),
        StudentT(degreesOfFreedom: 1.0 / 3, loc: .zeros([3], dtype: dtype), scale: .ones([3], dtype: dtype)),
        Uniform(low: Tensor([-1, -2, 0], dtype: dtype), high: Tensor([1, 3, 0.5], dtype: dtype)),
        Normal(loc: Tensor([0.1, 0.2, 0.3], dtype: dtype), scale: Tensor([1, 2, 3], dtype: dtype)),
        DiagonalNormal(loc: Tensor([0.1, 0.2, 0.3], dtype: dtype), logScale: Tensor([0, -1, 0.5], dtype: dtype)),
    ]
}

@Test("bases round trip through model files bit for bit", arguments: [DType.float32, .float64])
func basesRoundTripThroughModelFiles(_ dtype: DType) throws {
    for base in roundTripBases(dtype) {
        let flow = try Flow(base: base, plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])), seed: 3)
        perturb(flow, seed: 4)
        var g = RandomGenerator(seed: 5)
        // Points inside a uniform base's image: the flow's own samples.
        let y = base is Uniform ? try flow.sample(64, generator: &g) : Tensor.randn([64, 3], generator: &g, dtype: dtype) * 2
        let loaded = try savedAndLoaded(flow)
        #expect(type(of: loaded.base) == type(of: base))
        #expect(loaded.dtype == dtype)
        let expected = try flow.logProb(y).doubles
        #expect(expected.allSatisfy { $0.isFinite })
        #expect(try loaded.logProb(y).doubles == expected, "\(type(of: base))")
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        #expect(try flow.sample(10, generator: &a).doubles == loaded.sample(10, generator: &b).doubles)
        if let t = loaded.base as? StudentT, let original = base as? StudentT {
            #expect(t.degreesOfFreedom == original.degreesOfFreedom)
        }
    }
}

/// A base no model file can hold is refused by name when saving.
@Test func unsaveableBasesAreRefusedByName() throws {
    struct Custom: Distribution {
        var eventShape: [Int] { [2] }
        var batchShape: [Int] { [] }
        var dtype: DType { .float32 }
        func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor { .randn([n, 2], generator: &generator) }
        func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor { x.sum(alongAxis: 1) }
    }
    let flow = try Flow(base: Custom(), plan: Affine())
    do {
        try flow.save(to: "\(scratchFolder())/custom.safetensors")
        Issue.record("a Custom base was saved")
    } catch let error as FlowError {
        #expect(error.description.contains("Custom") && error.description.contains("StudentT"))
    }
}

/// Malformed `base` metadata and base tensors: each file is refused with one FileError naming
/// the path and the problem, never a trap.
@Test func malformedBaseMetadataIsRefusedWithOneClearError() throws {
    let flow = try Flow(base: StudentT(degreesOfFreedom: 4, loc: .zeros([2]), scale: .ones([2])),
                        plan: MAF(layers: 1, conditioner: DenseAutoregressive(hiddenSizes: [4])))
    let path = "\(scratchFolder())/t.safetensors"
    try flow.save(to: path)
    let good = try SafeTensors.read(path)
    #expect(good.metadata["base"] == #"{"degreesOfFreedom":4,"eventRank":1,"type":"StudentT"}"#)
    let uniform = try Flow(base: Uniform(low: .zeros([2]), high: .ones([2])), plan: Affine())
    let uniformPath = "\(scratchFolder())/u.safetensors"
    try uniform.save(to: uniformPath)
    let goodUniform = try SafeTensors.read(uniformPath)
    #expect(goodUniform.metadata["base"] == #"{"eventRank":1,"type":"Uniform"}"#)

    let diagonal = try Flow(base: DiagonalNormal.standard([2]), plan: Affine())
    let diagonalPath = "\(scratchFolder())/d.safetensors"
    try diagonal.save(to: diagonalPath)
    let goodDiagonal = try SafeTensors.read(diagonalPath)

    func base(_ json: String, _ contents: (tensors: [String: Tensor], metadata: [String: String]) = good) -> (tensors: [String: Tensor], metadata: [String: String]) {
        var contents = contents
        contents.metadata["base"] = json
        return contents
    }
    func tensors(_ change: (inout [String: Tensor]) -> Void, _ contents: (tensors: [String: Tensor], metadata: [String: String]) = good) -> (tensors: [String: Tensor], metadata: [String: String]) {
        var contents = contents
        change(&contents.tensors)
        return contents
    }
    let cases: [(String, (tensors: [String: Tensor], metadata: [String: String]), String)] = [
        ("not JSON", base("{"), "not a JSON object"),
        ("a list", base("[1, 2]"), "not a JSON object"),
        ("no type", base(#"{"eventRank": 1}"#), "names no type"),
        ("unknown type", base(#"{"type": "Cauchy", "eventRank": 1}"#), "unsupported base distribution 'Cauchy'"),
        ("type not a string", base(#"{"type": 7}"#), "names no type"),
        ("no degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1}"#), "'degreesOfFreedom' is missing"),
        ("negative degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": -2}"#), "at least 0.001"),
        ("zero degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 0}"#), "at least 0.001"),
        ("tiny degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 1e-300}"#), "at least 0.001"),
        ("huge degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 1e400}"#), "not a JSON object"),
        ("string degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": "4"}"#), "not a finite number"),
        ("boolean degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": true}"#), "not a finite number"),
        ("no event rank", base(#"{"type": "StudentT", "degreesOfFreedom": 4}"#), "'eventRank' is missing"),
        ("negative event rank", base(#"{"type": "StudentT", "eventRank": -1, "degreesOfFreedom": 4}"#), "not in 0...1"),
        ("event rank too large", base(#"{"type": "StudentT", "eventRank": 9223372036854775807, "degreesOfFreedom": 4}"#), "not in 0...1"),
        ("fractional event rank", base(#"{"type": "StudentT", "eventRank": 1.5, "degreesOfFreedom": 4}"#), "not a whole number"),
        ("missing loc", tensors { $0["base.loc"] = nil }, "'base.loc' is missing"),
        ("mis-shaped scale", tensors { $0["base.scale"] = .ones([3]) }, "'base.scale' has shape [3]"),
        ("negative scale", tensors { $0["base.scale"] = Tensor([1, -1] as [Float]) }, "scale must be positive"),
        ("zero scale", tensors { $0["base.scale"] = Tensor([1, 0] as [Float]) }, "scale must be positive"),
        ("NaN loc", tensors { $0["base.loc"] = Tensor([.nan, 0] as [Float]) }, "NaN"),
        ("extra base tensor", tensors { $0["base.df"] = .ones([1]) }, "'base.df'"),
        ("a uniform's tensors under a t", tensors({ $0["base.loc"] = nil; $0["base.scale"] = nil }, base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 4}"#, goodUniform)), "'base.loc' is missing"),
        ("a t's tensors under a uniform", base(#"{"type": "Uniform", "eventRank": 1}"#), "'base.low' is missing"),
        ("low above high", tensors({ $0["base.low"] = Tensor([0, 2] as [Float]) }, goodUniform), "low must lie below its high"),
        ("low equal to high", tensors({ $0["base.low"] = Tensor([0, 1] as [Float]) }, goodUniform), "low must lie below its high"),
        ("width beyond Float", tensors({ $0["base.low"] = Tensor([-3e38, 0] as [Float]); $0["base.high"] = Tensor([3e38, 1] as [Float]) }, goodUniform), "finite width"),
        ("huge log scale", tensors({ $0["base.log_scale"] = Tensor([0, 1000] as [Float]) }, goodDiagonal), "log_scale must lie within ±88.7"),
        ("a diagonal normal without its log scale", tensors({ $0["base.log_scale"] = nil }, goodDiagonal), "'base.log_scale' is missing"),
        ("infinite high", tensors({ $0["base.high"] = Tensor([.infinity, 1] as [Float]) }, goodUniform), "NaN or ±∞"),
    ]
    for (name, contents, expected) in cases {
        do {
            let loaded = try Flow.load(contents, path: "hostile.safetensors")
            Issue.record("\(name): loaded a \(type(of: loaded.base)) base")
        } catch let error as FileError {
            #expect(error.path == "hostile.safetensors")
            #expect(error.description.contains(expected), "\(name): \(error.description)")
            #expect(!error.description.contains("\n"), "\(name): \(error.description)")
        }
    }
}

/// The trainable normal's log-density is the formula, and its gradients with respect to x, μ
/// and log σ agree with central differences in Float64.
@Test func diagonalNormalDensityAndGradientsMatchFiniteDifferences() throws {
    let mu = [0.5, -1, 2], logSigma = [0.3, -0.7, 0.1]
    let base = DiagonalNormal(loc: Tensor(mu, dtype: .float64), logScale: Tensor(logSigma, dtype: .float64))
    var g = RandomGenerator(seed: 1)
    let x = Tensor.randn([5, 3], generator: &g, dtype: .float64)
    let weights = Tensor.randn([5], generator: &g, dtype: .float64)
    let xs = x.doubles
    for (row, value) in try base.logProb(x).doubles.enumerated() {
        var expected = 0.0
        for j in 0..<3 {
            let sigma = Foundation.exp(logSigma[j]), z = (xs[row * 3 + j] - mu[j]) / sigma
            expected += -0.5 * z * z - Foundation.log(sigma) - 0.5 * Foundation.log(2 * Double.pi)
        }
        #expect(Swift.abs(value - expected) < 1e-12)
    }
    // The parameters: autograd's gradient of Σ wₙ log p(xₙ) against central differences.
    func objective() throws -> Tensor { (try base.logProb(x) * weights).sum() }
    try objective().backward()
    for parameter in [base.loc, base.logScale] {
        let analytic = try #require(parameter.grad).doubles
        let start = parameter.value.doubles
        let numeric = try centralDifferences(start) { values in
            parameter.value = Tensor(values, dtype: .float64)
            return try withoutGradients { try objective().item }
        }
        parameter.value = Tensor(start, dtype: .float64)
        let error = maxAbsDifference(analytic, numeric)
        print("DiagonalNormal \(parameter.name): max |analytic − numeric| = \(error)")
        #expect(error < 1e-7 * Swift.max(1, analytic.map(Swift.abs).max()!))
    }
    #expect(gradCheck([x]) { try! base.logProb($0[0]) * weights }.maxRelativeError < 1e-7)
}

/// `fit` trains the base with the bijector: a flow of an identity plan on a trainable base
/// learns N((3, −1), diag(2², 0.5²)) by maximum likelihood.
@Test func fitTrainsADiagonalNormalBase() throws {
    var g = RandomGenerator(seed: 2)
    let data = Tensor.randn([4000, 2], generator: &g) * Tensor([2, 0.5] as [Float]) + Tensor([3, -1] as [Float])
    let base = DiagonalNormal.standard([2])
    let flow = try Flow(base: base, plan: AffineFixed(loc: 0, scale: 1))
    #expect(flow.parameters.map(\.name) == ["base.loc", "base.log_scale"])
    var options = FitOptions()
    options.steps = 800
    options.learningRate = 0.05
    options.batchSize = 500
    options.patience = nil
    try fit(flow, data: data, options: options)
    let mu = base.loc.value.doubles, sigma = base.logScale.value.exp().doubles
    print("fitted DiagonalNormal: mu \(mu), sigma \(sigma)")
    #expect(Swift.abs(mu[0] - 3) < 0.1 && Swift.abs(mu[1] + 1) < 0.05)
    #expect(Swift.abs(sigma[0] / 2 - 1) < 0.05 && Swift.abs(sigma[1] / 0.5 - 1) < 0.05)
}
