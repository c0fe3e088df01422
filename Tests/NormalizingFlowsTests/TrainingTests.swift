import Foundation
import Testing
@testable import NormalizingFlows

/// A correlated 2-D Gaussian: y = (x₁, 0.8x₁ + 0.6x₂) + (1, −1), whose entropy is known.
private func correlatedData(_ n: Int, seed: UInt64) -> Tensor {
    var g = RandomGenerator(seed: seed)
    let x = Tensor.randn([n, 2], generator: &g)
    let mixing = Tensor([1, 0.8, 0, 0.6], shape: [2, 2])
    return matmul(x, mixing) + Tensor([1, -1] as [Float])
}

@Test func fitLearnsACorrelatedGaussianAndReportsProgress() throws {
    let data = correlatedData(4000, seed: 1)
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 2, conditioner: .init(hiddenSizes: [16])))
    let before = try negativeLogLikelihood(flow, data)
    var options = FitOptions()
    options.steps = 300
    options.learningRate = 1e-2
    options.evaluationInterval = 50
    var reports: [TrainingProgress] = []
    let report = try fit(flow, data: data, options: options) { reports.append($0) }
    // Entropy of N(μ, Σ) with det Σ = 0.36: log(2πe) + ½ log 0.36 = 2.327.
    let entropy = Foundation.log(2 * Double.pi * M_E) + 0.5 * Foundation.log(0.36)
    let test = try negativeLogLikelihood(flow, correlatedData(4000, seed: 2))
    #expect(before > entropy + 1)
    #expect(test < entropy + 0.1, "test NLL \(test), entropy \(entropy)")
    #expect(reports.count == 6 && reports.allSatisfy { $0.validationNLL != nil })
    #expect(report.bestValidationNLL != nil)
}

@Test func earlyStoppingRestoresTheBestParameters() throws {
    let data = correlatedData(400, seed: 3)
    let flow = try Flow(base: Normal.standard([2]), plan: Affine())
    var options = FitOptions()
    options.steps = 5000
    options.learningRate = 5e-2
    options.learningRatePolicy = .constant
    options.evaluationInterval = 10
    options.patience = 3
    let report = try fit(flow, data: data, options: options)
    #expect(report.stoppedEarly && report.stepsTaken < 5000)
    // The restored parameters give the best validation NLL that was recorded.
    #expect(report.bestValidationNLL != nil)
}

@Test func aDivergingRunStopsWithTheStepNamed() throws {
    // Values whose squares overflow Float32: the loss is +∞ at the first step (step 1, as the
    // progress lines count).
    let flow = try Flow(base: Normal.standard([2]), plan: Affine())
    var options = FitOptions()
    options.validationFraction = 0
    #expect(throws: TrainingError.nonFiniteLoss(step: 1, value: .infinity)) {
        try fit(flow, data: Tensor.full([8, 2], 1e30), options: options)
    }
    // A target density that turns NaN on its fifth evaluation (step 5).
    var calls = 0
    var vi = VariationalOptions()
    vi.steps = 10
    do {
        try fitVariational(flow, logDensity: { z in
            calls += 1
            let base = z.square().sum(alongAxis: -1) * -0.5
            return calls == 5 ? base * Double.nan : base
        }, options: vi)
        Issue.record("a NaN target density did not stop training")
    } catch let TrainingError.nonFiniteLoss(step, value) {
        #expect(step == 5 && value.isNaN)
    }
}

@Test("a learning rate that blows the weights up stops training at the second step", arguments: ["maf", "sospf"])
func aHugeLearningRateStopsTrainingAtTheSecondStep(_ family: String) throws {
    // Step 1's loss is computed before any update, so it is finite; Adam then moves every weight
    // by about the learning rate, 1e30, and step 2's loss overflows.
    let plan: any BijectorPlan = family == "maf"
        ? MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])) : SOSPF(layers: 2, polynomials: 2, degree: 2, conditioner: DenseAutoregressive(hiddenSizes: [8]))
    let flow = try Flow(base: Normal.standard([2]), plan: plan)
    var g = RandomGenerator(seed: 1)
    var options = FitOptions()
    options.validationFraction = 0
    options.learningRate = 1e30
    options.steps = 10
    do {
        try fit(flow, data: Tensor.randn([64, 2], generator: &g), options: options)
        Issue.record("\(family): training on at learning rate 1e30 did not stop")
    } catch let TrainingError.nonFiniteLoss(step, value) {
        #expect(step == 2 && !value.isFinite, "\(family): step \(String(describing: step)), loss \(value)")
        let message = TrainingError.nonFiniteLoss(step: step, value: value).description
        #expect(message.contains("at step 2") && message.contains("learning rate") && !message.contains("-nan"), "\(message)")
    }
}

@Test func badTrainingDataIsRefused() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: Affine())
    #expect(throws: FlowError.self) { try fit(flow, data: Tensor.zeros([10, 3])) }
    #expect(throws: FlowError.self) { try fit(flow, data: Tensor([1, .nan, 0, 0] as [Float], shape: [2, 2])) }
    #expect(throws: TrainingError.self) { try fit(flow, data: Tensor.zeros([1, 2])) }
}

@Test func variationalFitOnU1ImprovesTheKL() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: PlanarFlow(layers: 8))
    let energy = Energy.u1
    let logZ = energy.logNormalizer(cells: 300)
    let before = try klDivergence(flow, logDensity: energy.logDensity, logNormalizer: logZ, samples: 5000)
    var options = VariationalOptions()
    options.steps = 600
    options.learningRate = 1e-2
    try fitVariational(flow, logDensity: energy.logDensity, options: options)
    let after = try klDivergence(flow, logDensity: energy.logDensity, logNormalizer: logZ, samples: 5000)
    // Covering one of U1's two modes leaves KL ≈ log 2 ≈ 0.69; both modes, less.
    #expect(after < before - 0.5 && after < 0.9, "KL \(before) → \(after)")
    #expect(after > -0.05)   // a KL divergence is non-negative up to Monte Carlo error
}

@Test func energyNormalizersMatchClosedForms() {
    // ∫∫ exp(−U2) = ∫ 0.4·√(2π) dz₁ over [−8, 8] (the z₂ integral is a full Gaussian).
    #expect(abs(Energy.u2.logNormalizer(cells: 400) - Foundation.log(16 * 0.4 * (2 * Double.pi).squareRoot())) < 1e-3)
    // The funnel is the normalised N(z₂; 0, 3²)·N(z₁; 0, e^{z₂}).
    #expect(Energy.funnel.logNormalizer() == 0)
    func logNormal(_ x: Double, _ sd: Double) -> Double { -0.5 * (x / sd) * (x / sd) - Foundation.log(sd) - 0.5 * Foundation.log(2 * Double.pi) }
    let points: [(Double, Double)] = [(0, 0), (1.5, -2), (-20, 6), (0.01, -7)]
    let z = Tensor(points.flatMap { [$0.0, $0.1] }, shape: [points.count, 2], dtype: .float64)
    let expected = points.map { logNormal($0.1, 3) + logNormal($0.0, Foundation.exp($0.1 / 2)) }
    #expect(maxAbsDifference(Energy.funnel.logDensity(z).doubles, expected) < 1e-10)
}

/// Perturbs every parameter so that a new flow is away from its identity initialisation.
private func perturb(_ flow: Flow, seed: UInt64) {
    var g = RandomGenerator(seed: seed)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: p.dtype) * 0.1 }
}

@Test(arguments: ["MAF", "RealNVP", "NSF", "MAF and BatchNorm"])
func backwardNegativeLogLikelihoodGivesTheWholeBatchGradient(flowName: String) throws {
    // 300 rows: split across threads, except with batch normalisation, which forbids the split
    // (halves would change its statistics and so the gradient).
    let conditioner = DenseAutoregressive(hiddenSizes: [16])
    let plan: any BijectorPlan = switch flowName {
    case "RealNVP": RealNVP(layers: 2, conditioner: .init(hiddenSizes: [16]))
    case "NSF": NSF(layers: 2, bins: 4, bound: 3, conditioner: conditioner)
    case "MAF and BatchNorm": Compose([MAF(layers: 2, conditioner: conditioner), BatchNorm()])
    default: MAF(layers: 2, conditioner: conditioner)
    }
    let conditional = flowName == "MAF"
    let flow = try Flow(base: Normal.standard([3], dtype: .float64), plan: plan, contextSize: conditional ? 2 : 0, seed: 4)
    perturb(flow, seed: 5)
    var g = RandomGenerator(seed: 6)
    let rows = Tensor.randn([300, 3], generator: &g, dtype: .float64)
    let context = conditional ? Tensor.randn([300, 2], generator: &g, dtype: .float64) : nil

    let loss = try training(flow) { try -flow.logProb(rows, context: context).mean() }
    loss.backward()
    let expected = flow.parameters.map { $0.grad!.doubles }
    for p in flow.parameters { p.zeroGrad() }

    let value = try flow.backwardNegativeLogLikelihood(rows, context: context)
    #expect(abs(value - loss.item) < 1e-12)
    for (p, e) in zip(flow.parameters, expected) {
        #expect(maxAbsDifference(p.grad!.doubles, e) < 1e-10, "\(p.name)")
    }
}

@Test func amortisedInferenceLearnsTheGaussianPosteriorOfEveryObservation() throws {
    // z ~ N(0, I₂), x | z ~ N(z, σ² I₂) with σ = 0.5: the posterior is N(x/(1 + σ²), σ²/(1 + σ²) I)
    // = N(0.8 x, 0.2 I), and x ~ N(0, (1 + σ²) I) is where the contexts come from.
    let sigma = 0.5
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [32])), contextSize: 2)
    var options = VariationalOptions()
    options.steps = 1200
    options.learningRate = 6e-3
    options.learningRatePolicy = .cosine
    let logJoint = { (z: Tensor, x: Tensor) -> Tensor in
        let residual = (x - z) / sigma
        return ((z.square() + residual.square()) * -0.5).sum(alongAxis: 1)
    }
    try fitVariational(flow, logDensity: logJoint, contexts: { generator in
        Tensor.randn([options.samplesPerStep, 2], generator: &generator) * (1 + sigma * sigma).squareRoot()
    }, options: options)
    for x in [[1.0, -1.5], [0.0, 1.2]] {
        let context = Tensor(x, shape: [1, 2])
        let samples = try withoutGradients { try flow.sample(8000, context: context) }.doubles
        for k in 0..<2 {
            let values = stride(from: k, to: samples.count, by: 2).map { samples[$0] }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
            #expect(abs(mean - 0.8 * x[k]) < 0.05, "x = \(x): posterior mean \(mean) vs \(0.8 * x[k])")
            #expect(abs(sd - 0.2.squareRoot()) < 0.04, "x = \(x): posterior sd \(sd) vs \(0.2.squareRoot())")
        }
    }
    // A flow that takes no context, and contexts of the wrong shape, are refused.
    let unconditional = try Flow(base: Normal.standard([2]), plan: Affine())
    #expect(throws: TrainingError.self) { try fitVariational(unconditional, logDensity: logJoint, contexts: { _ in Tensor.zeros([256, 2]) }) }
    #expect(throws: TrainingError.self) { try fitVariational(flow, logDensity: logJoint, contexts: { _ in Tensor.zeros([3, 2]) }) }
}
