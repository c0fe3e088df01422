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
        try! GaussianMixture(components: 2, features: 3, covariance: .diagonal, dtype: dtype, seed: 1),
        try! GaussianMixture(components: 3, features: 3, covariance: .full, dtype: dtype, seed: 2),
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
    let normal = try Flow(base: Normal.standard([2]), plan: Affine())
    try normal.save(to: path)
    #expect(try SafeTensors.read(path).metadata["base"] == #"{"type": "Normal", "eventRank": 1}"#)   // as flows_torch writes it
    #expect(good.metadata["base"] == #"{"type": "StudentT", "degreesOfFreedom": 4, "eventRank": 1}"#)
    let uniform = try Flow(base: Uniform(low: .zeros([2]), high: .ones([2])), plan: Affine())
    let uniformPath = "\(scratchFolder())/u.safetensors"
    try uniform.save(to: uniformPath)
    let goodUniform = try SafeTensors.read(uniformPath)
    #expect(goodUniform.metadata["base"] == #"{"type": "Uniform", "eventRank": 1}"#)

    let diagonal = try Flow(base: DiagonalNormal.standard([2]), plan: Affine())
    let diagonalPath = "\(scratchFolder())/d.safetensors"
    try diagonal.save(to: diagonalPath)
    let goodDiagonal = try SafeTensors.read(diagonalPath)

    let mixture = try Flow(base: GaussianMixture(components: 2, features: 2, covariance: .full), plan: Affine())
    let mixturePath = "\(scratchFolder())/m.safetensors"
    try mixture.save(to: mixturePath)
    let goodMixture = try SafeTensors.read(mixturePath)
    #expect(goodMixture.metadata["base"] == #"{"type": "GaussianMixture", "covariance": "full"}"#)
    let diagonalMixture = try Flow(base: GaussianMixture(components: 2, features: 2), plan: Affine())
    let diagonalMixturePath = "\(scratchFolder())/dm.safetensors"
    try diagonalMixture.save(to: diagonalMixturePath)
    let goodDiagonalMixture = try SafeTensors.read(diagonalMixturePath)

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
        ("huge log scale", tensors({ $0["base.log_scale"] = Tensor([0, 1000] as [Float]) }, goodDiagonal), "'base.log_scale' must lie within ±88.7"),
        ("a diagonal normal without its log scale", tensors({ $0["base.log_scale"] = nil }, goodDiagonal), "'base.log_scale' is missing"),
        ("a conditional base of a billion hidden units", base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [1000000000], "activation": "relu"}"#), "not a whole number in 1..."),
        ("a conditional base larger than the file", base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [20, 20], "activation": "relu"}"#), "needs 544 values, but the file holds only"),
        ("a conditional base of no features", base(#"{"type": "ConditionalDiagonalNormal", "features": 0, "contextSize": 1, "hiddenSizes": [4], "activation": "relu"}"#), "'features' is 0"),
        ("a conditional base of an unknown activation", base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [4], "activation": "swish"}"#), "'activation' must be one of"),
        ("a conditional base of too many layers", base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [\#(Array(repeating: "1", count: 65).joined(separator: ","))], "activation": "relu"}"#), "at most 64"),
        ("a conditional base without weights", base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [4], "activation": "relu"}"#), "'base.network.layers.0.weight' is missing"),
        ("a conditional base in an unconditional flow", tensors({ $0["base.network.layers.0.weight"] = .zeros([4, 1]) }, base(#"{"type": "ConditionalDiagonalNormal", "features": 2, "contextSize": 1, "hiddenSizes": [4], "activation": "relu"}"#)), "context of size 1"),
        ("a mixture of unknown covariance", base(#"{"type": "GaussianMixture", "covariance": "spherical"}"#, goodMixture), "'covariance' must be one of diagonal, full"),
        ("a mixture whose means are a vector", tensors({ $0["base.means"] = .zeros([4]) }, goodMixture), "'base.means' has shape [4]"),
        ("a mixture without its lower factor", tensors({ $0["base.precision_lower"] = nil }, goodMixture), "needs 16 values, but the file holds only"),
        ("a mixture's log scales misnamed", tensors({ $0["base.log_scale"] = $0["base.log_scales"]; $0["base.log_scales"] = nil }, goodDiagonalMixture), "'base.log_scales' is missing"),
        ("a mixture of too many lower factors", tensors({ $0["base.precision_lower"] = .zeros([2, 2, 3]) }, goodMixture), "'base.precision_lower' has shape [2, 2, 3]"),
        ("a mixture of mis-shaped logits", tensors({ $0["base.logits"] = .zeros([3]) }, goodMixture), "'base.logits' has shape [3]"),
        ("a mixture larger than the file", tensors({ $0["base.means"] = .zeros([50, 50]) }, goodMixture), "50 components of 50 features needs"),
        ("a mixture of huge precisions", tensors({ $0["base.precision_log_diagonal"] = .full([2, 2], 100) }, goodMixture), "'base.precision_log_diagonal' must lie within"),
        ("a diagonal mixture read as full", base(#"{"type": "GaussianMixture", "covariance": "full"}"#, goodDiagonalMixture), "'base.precision_log_diagonal' is missing"),
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
    let error = try parameterGradientError(base) { (try base.logProb(x) * weights).sum() }
    print("DiagonalNormal: max |analytic − numeric| over μ and log σ = \(error)")
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

/// A conditional normal base with random weights (its last layer starts at zero), in Float64.
private func randomConditionalBase(features: Int, contextSize: Int, seed: UInt64) throws -> ConditionalDiagonalNormal {
    let base = try ConditionalDiagonalNormal(features: features, contextSize: contextSize,
                                             network: CouplingNetwork(hiddenSizes: [5], activation: .tanh), dtype: .float64, seed: seed)
    var g = RandomGenerator(seed: seed + 1)
    for p in base.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.5 }
    return base
}

/// The conditional base's log-density is the normal formula at the network's μ(c) and σ(c), and
/// its gradients with respect to every weight, x and the context agree with central differences.
@Test func conditionalNormalDensityAndGradientsMatchFiniteDifferences() throws {
    let base = try randomConditionalBase(features: 2, contextSize: 3, seed: 3)
    #expect(base.namedParameters.map(\.name) == ["network.layers.0.weight", "network.layers.0.bias", "network.layers.1.weight", "network.layers.1.bias"])
    var g = RandomGenerator(seed: 4)
    let x = Tensor.randn([6, 2], generator: &g, dtype: .float64)
    let c = Tensor.randn([6, 3], generator: &g, dtype: .float64)
    let weights = Tensor.randn([6], generator: &g, dtype: .float64)
    // The formula, with the network evaluated by hand: tanh(W₀c + b₀), then W₁h + b₁.
    let layers = base.network.layers.map { ($0.weight.value.doubles, $0.bias!.value.doubles) }
    let xs = x.doubles, cs = c.doubles
    for (row, value) in try base.logProb(x, context: c).doubles.enumerated() {
        let h = (0..<5).map { i in Foundation.tanh((0..<3).reduce(layers[0].1[i]) { $0 + layers[0].0[i * 3 + $1] * cs[row * 3 + $1] }) }
        let out = (0..<4).map { o in (0..<5).reduce(layers[1].1[o]) { $0 + layers[1].0[o * 5 + $1] * h[$1] } }
        var expected = 0.0
        for j in 0..<2 {
            let z = (xs[row * 2 + j] - out[j]) / Foundation.exp(out[2 + j])
            expected += -0.5 * z * z - out[2 + j] - 0.5 * Foundation.log(2 * Double.pi)
        }
        #expect(Swift.abs(value - expected) < 1e-12)
    }
    let worst = try parameterGradientError(base) { (try base.logProb(x, context: c) * weights).sum() }
    print("ConditionalDiagonalNormal: max |analytic − numeric| over the weights = \(worst)")
    let inputs = gradCheck([x, c]) { try! base.logProb($0[0], context: $0[1]) * weights }
    print("ConditionalDiagonalNormal: gradCheck relative errors for x and c: \(inputs.relativeErrors)")
    #expect(inputs.maxRelativeError < 1e-7)
}

/// As the base of a conditional flow: contexts reach it when sampling and scoring, one context
/// row serves all samples, wrong contexts are refused, and the flow round trips through a file.
@Test func conditionalNormalIsTheBaseOfAConditionalFlow() throws {
    let base = try randomConditionalBase(features: 2, contextSize: 1, seed: 5)
    #expect(throws: FlowError.self) { try Flow(base: base, plan: MAF(layers: 1), contextSize: 2) }
    let flow = try Flow(base: base, plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])), contextSize: 1)
    var g = RandomGenerator(seed: 6)
    let c = Tensor.randn([20, 1], generator: &g, dtype: .float64)
    let y = Tensor.randn([20, 2], generator: &g, dtype: .float64)
    let (samples, logProbs) = try flow.sampleAndLogProb(20, context: c, generator: &g)
    let rescored = try flow.logProb(samples, context: c).doubles
    #expect(maxAbsDifference(rescored, logProbs.doubles) < 1e-10)
    let shared = try flow.sample(7, context: Tensor([0.5], dtype: .float64), generator: &g)
    #expect(shared.shape == [7, 2])
    #expect(throws: FlowError.self) { try flow.sample(7, context: Tensor.zeros([3, 1], dtype: .float64), generator: &g) }
    #expect(throws: FlowError.self) { try base.logProb(y) }
    #expect(throws: FlowError.self) { try base.logProb(y, context: Tensor.zeros([20, 1])) }   // Float32
    let loaded = try savedAndLoaded(flow)
    #expect(loaded.base is ConditionalDiagonalNormal)
    #expect(try loaded.logProb(y, context: c).doubles == flow.logProb(y, context: c).doubles)
    var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
    #expect(try flow.sample(5, context: c.slice(alongAxis: 0, 0..<5), generator: &a).doubles
            == loaded.sample(5, context: c.slice(alongAxis: 0, 0..<5), generator: &b).doubles)
}

/// The base learns a conditional law by itself: y | c ~ N((c, −2c), 0.1²·I) for c uniform on
/// [−1, 1], fitted on a flow that adds nothing (an identity affine map). The held-out
/// conditional NLL comes within 0.05 nats of the true law's.
@Test func conditionalNormalLearnsAConditionalLaw() throws {
    var g = RandomGenerator(seed: 7)
    func draw(_ n: Int) -> (y: Tensor, c: Tensor) {
        let c = Tensor.uniform([n, 1], low: -1, high: 1, generator: &g)
        return (c * Tensor([1, -2] as [Float]) + Tensor.randn([n, 2], generator: &g) * 0.1, c)
    }
    let train = draw(4000), test = draw(2000)
    let base = try ConditionalDiagonalNormal(features: 2, contextSize: 1, network: CouplingNetwork(hiddenSizes: [32]), seed: 1)
    let flow = try Flow(base: base, plan: AffineFixed(loc: 0, scale: 1), contextSize: 1)
    var options = FitOptions()
    options.steps = 1500
    options.learningRate = 1e-2
    options.batchSize = 256
    options.patience = nil
    try fit(flow, data: train.y, context: train.c, options: options)
    let nll = -(try flow.logProb(test.y, context: test.c).mean().item)
    let truth = 2 * (0.5 * Foundation.log(2 * Double.pi) + Foundation.log(0.1) + 0.5)
    let (mu, logSigma) = base.locAndLogScale(context: Tensor([0.5] as [Float]))
    print("ConditionalDiagonalNormal fit: held-out NLL \(nll), truth \(truth); at c = 0.5 mu \(mu.doubles), sigma \(logSigma.exp().doubles)")
    #expect(Swift.abs(nll - truth) < 0.05)
    #expect(maxAbsDifference(mu.doubles, [0.5, -1]) < 0.05)
}

/// A mixture with random parameters in Float64: logits, means and log σ (or ℓ and a lower
/// factor) all away from their starting values.
private func randomMixture(_ covariance: GaussianMixture.Covariance, components k: Int, features d: Int, seed: UInt64) throws -> GaussianMixture {
    let mixture = try GaussianMixture(components: k, features: d, covariance: covariance, dtype: .float64, seed: seed)
    var g = RandomGenerator(seed: seed + 100)
    for p in mixture.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: .float64) * 0.4 }
    return mixture
}

/// log p(x) of a mixture by the textbook formula in Float64, independent of the library's
/// parameterisation: Λⱼ = PⱼPⱼᵀ formed explicitly, −½(x − μ)ᵀΛ(x − μ) + ½ log det Λ − (D/2) log 2π,
/// log det by LU, and a log-sum-exp over the components.
private func directMixtureLogDensity(_ mixture: GaussianMixture, _ x: [Double]) -> Double {
    let (k, d) = (mixture.components, mixture.features)
    let logits = mixture.logits.value.doubles, mus = mixture.means.value.doubles
    let logNormaliser = Foundation.log(logits.map { Foundation.exp($0) }.reduce(0, +))
    var terms: [Double] = []
    for j in 0..<k {
        var precision = [Double](repeating: 0, count: d * d)
        if let logScales = mixture.logScales?.value.doubles {
            for i in 0..<d { precision[i * (d + 1)] = Foundation.exp(-2 * logScales[j * d + i]) }
        } else {
            let logDiagonal = mixture.precisionLogDiagonal!.value.doubles, lower = mixture.precisionLower!.value.doubles
            var p = [Double](repeating: 0, count: d * d)
            for a in 0..<d { for b in 0...a { p[a * d + b] = a == b ? Foundation.exp(logDiagonal[j * d + a]) : lower[(j * d + a) * d + b] } }
            for a in 0..<d { for b in 0..<d { for m in 0..<d { precision[a * d + b] += p[a * d + m] * p[b * d + m] } } }
        }
        var quadratic = 0.0
        for a in 0..<d { for b in 0..<d { quadratic += (x[a] - mus[j * d + a]) * precision[a * d + b] * (x[b] - mus[j * d + b]) } }
        terms.append(logits[j] - logNormaliser - 0.5 * quadratic + 0.5 * logAbsDeterminant(precision, n: d) - 0.5 * Double(d) * Foundation.log(2 * Double.pi))
    }
    let top = terms.max()!
    return top + Foundation.log(terms.map { Foundation.exp($0 - top) }.reduce(0, +))
}

@Test("mixture densities match the direct formula and integrate to one", arguments: GaussianMixture.Covariance.allCases)
func mixtureDensityMatchesTheFormulaAndIntegratesToOne(_ covariance: GaussianMixture.Covariance) throws {
    let mixture = try randomMixture(covariance, components: 3, features: 3, seed: 11)
    var g = RandomGenerator(seed: 12)
    let x = Tensor.randn([40, 3], generator: &g, dtype: .float64) * 2
    let values = try mixture.logProb(x).doubles, xs = x.doubles
    var worst = 0.0
    for row in 0..<40 { worst = Swift.max(worst, Swift.abs(values[row] - directMixtureLogDensity(mixture, Array(xs[(row * 3)..<(row * 3 + 3)])))) }
    print("GaussianMixture \(covariance): max |log p − direct formula| = \(worst)")
    #expect(worst < 1e-11)
    // A 2-D mixture on a grid over [−9, 9]², step 0.03 (360 000 points).
    let plane = try randomMixture(covariance, components: 3, features: 2, seed: 13)
    let h = 0.03, m = 600
    var points: [Double] = []
    points.reserveCapacity(2 * m * m)
    for a in 0..<m {
        for b in 0..<m { points += [-9 + (Double(a) + 0.5) * h, -9 + (Double(b) + 0.5) * h] }
    }
    let grid = Tensor(points, shape: [m * m, 2], dtype: .float64)
    let integral = try withoutGradients { try plane.logProb(grid).exp().sum().item } * h * h
    print("GaussianMixture \(covariance): grid integral over [-9, 9]^2 = \(integral)")
    #expect(Swift.abs(integral - 1) < 1e-4)
    // Samples have the mixture's mean and covariance: Σⱼ wⱼμⱼ and Σⱼ wⱼ(Σⱼ + μⱼμⱼᵀ) − mean·meanᵀ.
    let samples = try plane.sample(200_000, generator: &g).doubles
    let weights = plane.logits.value.softmax(alongAxis: 0).doubles, mus = plane.means.value.doubles
    var mean = [0.0, 0.0], second = [0.0, 0.0, 0.0, 0.0]
    for j in 0..<3 {
        let sigma = componentCovariance(plane, j)
        for a in 0..<2 {
            mean[a] += weights[j] * mus[j * 2 + a]
            for b in 0..<2 { second[a * 2 + b] += weights[j] * (sigma[a * 2 + b] + mus[j * 2 + a] * mus[j * 2 + b]) }
        }
    }
    let n = Double(samples.count / 2)
    for a in 0..<2 {
        let sampleMean = stride(from: a, to: samples.count, by: 2).map { samples[$0] }.reduce(0, +) / n
        #expect(Swift.abs(sampleMean - mean[a]) < 0.02)
        for b in 0..<2 {
            let sampleSecond = (0..<Int(n)).map { samples[$0 * 2 + a] * samples[$0 * 2 + b] }.reduce(0, +) / n
            #expect(Swift.abs(sampleSecond - second[a * 2 + b]) < 0.03 * Swift.max(1, Swift.abs(second[a * 2 + b])))
        }
    }
}

/// Σⱼ of a 2-D mixture's component: diag(σ²), or (PPᵀ)⁻¹ inverted in closed form.
private func componentCovariance(_ mixture: GaussianMixture, _ j: Int) -> [Double] {
    if let logScales = mixture.logScales?.value.doubles {
        return [Foundation.exp(2 * logScales[j * 2]), 0, 0, Foundation.exp(2 * logScales[j * 2 + 1])]
    }
    let l = mixture.precisionLogDiagonal!.value.doubles, lower = mixture.precisionLower!.value.doubles
    let (p00, p10, p11) = (Foundation.exp(l[j * 2]), lower[j * 4 + 2], Foundation.exp(l[j * 2 + 1]))
    // Λ = PPᵀ = [[p00², p00·p10], [p00·p10, p10² + p11²]].
    let (a, b, c) = (p00 * p00, p00 * p10, p10 * p10 + p11 * p11)
    let det = a * c - b * b
    return [c / det, -b / det, -b / det, a / det]
}

@Test("mixture gradients match finite differences", arguments: GaussianMixture.Covariance.allCases)
func mixtureGradientsMatchFiniteDifferences(_ covariance: GaussianMixture.Covariance) throws {
    let mixture = try randomMixture(covariance, components: 2, features: 3, seed: 21)
    var g = RandomGenerator(seed: 22)
    let x = Tensor.randn([7, 3], generator: &g, dtype: .float64)
    let weights = Tensor.randn([7], generator: &g, dtype: .float64)
    let worst = try parameterGradientError(mixture) { (try mixture.logProb(x) * weights).sum() }
    print("GaussianMixture \(covariance): max |analytic − numeric| over the parameters = \(worst)")
    #expect(gradCheck([x]) { try! mixture.logProb($0[0]) * weights }.maxRelativeError < 1e-7)
}

/// k-means finds three separated clusters, and the mixture started there, trained by itself
/// with Adam, comes within 0.02 nats of the true density's held-out NLL.
@Test func mixtureStartsFromKMeansAndTrainsAsADensityModel() throws {
    var g = RandomGenerator(seed: 31)
    let centres: [[Double]] = [[-4, 0], [3, 3], [2, -4]]
    let truth = GaussianMixture(
        logits: Tensor([0.5, 0.3, 0.2].map { Foundation.log($0) }, dtype: .float64), means: Tensor(centres.flatMap { $0 }, shape: [3, 2], dtype: .float64),
        precisionLogDiagonal: Tensor([0, 0.5, -0.3, 0.2, 0.1, 0.4], shape: [3, 2], dtype: .float64),
        precisionLower: Tensor([0, 0, 0.8, 0, 0, 0, -1.2, 0, 0, 0, 0.3, 0], shape: [3, 2, 2], dtype: .float64))
    let train = try truth.sample(3000, generator: &g), test = try truth.sample(3000, generator: &g)
    let trueNLL = -(try truth.logProb(test).mean().item)
    let mixture = try GaussianMixture(kMeansOn: train, components: 3, covariance: .full, seed: 1)
    let found = mixture.means.value.doubles
    for centre in centres {
        let nearest = (0..<3).map { j in hypot(found[j * 2] - centre[0], found[j * 2 + 1] - centre[1]) }.min()!
        #expect(nearest < 0.15, "k-means centre near \(centre): \(found)")
    }
    let startNLL = -(try mixture.logProb(test).mean().item)
    let optimizer = Adam(mixture.parameters, learningRate: 1e-2)
    for _ in 0..<300 { try optimizer.step { let loss = -(try mixture.logProb(train).mean()); loss.backward(); return loss.item } }
    let fittedNLL = -(try mixture.logProb(test).mean().item)
    print("GaussianMixture: held-out NLL true \(trueNLL), after k-means \(startNLL), after 300 Adam steps \(fittedNLL)")
    #expect(Swift.abs(fittedNLL - trueNLL) < 0.02)
    #expect(fittedNLL <= startNLL + 1e-3)
}
