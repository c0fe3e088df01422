import Foundation
import NormalizingFlows

// The code of the DocC tutorial "Density Estimation": the article's Swift listings are lines of
// this file (DocumentationExamples' listing check reads it), the tests run it with few steps, and
// `flows docs-figures` runs it in full and draws its picture.

/// Eight Gaussians evenly spaced on a circle, the data of the density-estimation tutorial.
/// Component k has mean r·(cos 2πk/K, sin 2πk/K) and covariance s²·I, each with weight 1/K, so
/// log p(x) = logsumexp_k(−‖x − m_k‖² / 2s²) − log K − log 2πs².
struct RingOfGaussians {
    var components = 8
    var radius = 2.5
    var spread = 0.35

    /// The component means m_k, [K, 2] in float64.
    var means: Tensor {
        let angles = (0..<components).map { 2 * Double.pi * Double($0) / Double(components) }
        return Tensor(angles.flatMap { [radius * cos($0), radius * sin($0)] }, shape: [components, 2], dtype: .float64)
    }

    /// `n` rows: a component chosen uniformly, then a draw of its Gaussian.
    func sample(_ n: Int, generator: inout RandomGenerator) -> Tensor {
        var rows: [Double] = []
        for _ in 0..<n {
            let angle = 2 * Double.pi * Double(generator.nextInt(below: components)) / Double(components)
            rows += [radius * cos(angle) + spread * generator.nextNormal(), radius * sin(angle) + spread * generator.nextNormal()]
        }
        return Tensor(rows, shape: [n, 2])
    }

    /// The exact log-density of rows x [n, 2], [n].
    func logDensity(_ x: Tensor) -> Tensor {
        let squaredDistances = (x.unsqueezed(axis: 1) - means.converted(to: x.dtype)).square().sum(alongAxis: -1)   // [n, K]
        let normalizer = log(Double(components)) + log(2 * Double.pi * spread * spread)
        return (squaredDistances * (-0.5 / (spread * spread))).logSumExp(alongAxis: -1) - normalizer
    }
}

/// What the density-estimation tutorial found.
struct DensityEstimationOutcome {
    var flow: Flow
    var train: Tensor
    var test: Tensor
    var report: FitReport
    /// −mean log q(x) of the flow and −mean log p(x) of the true density, on the test rows.
    var testNLL: Double
    var trueNLL: Double
    var samples: Tensor
    /// log q at the top of the ring, (0, 2.5), and at its empty centre, (0, 0).
    var scores: [Double]
    /// The largest difference between the saved-and-loaded flow's log-densities of the test rows and the flow's.
    var reloadDifference: Double
}

/// The density-estimation tutorial: data drawn from ``RingOfGaussians``, a neural spline flow
/// fitted to them by maximum likelihood, its held-out NLL beside the true density's, samples,
/// scores, and a round trip through a model file at `modelPath`.
func densityEstimationTutorial(steps: Int, modelPath: String) throws -> DensityEstimationOutcome {
    let ring = RingOfGaussians()
    var generator = RandomGenerator(seed: 0)
    let train = ring.sample(20_000, generator: &generator)
    let test = ring.sample(5_000, generator: &generator)

    let flow = try Flow(base: Normal.standard([2]), plan: NSF(layers: 5), seed: 1)
    var options = FitOptions()
    options.steps = steps                   // 3000 for the pictures
    options.batchSize = 512
    options.learningRate = 3e-3
    options.learningRatePolicy = .cosine
    let report = try fit(flow, data: train, options: options)

    let testNLL = try negativeLogLikelihood(flow, test)
    let trueNLL = -ring.logDensity(test).mean().item   // the best any model can score on these rows
    print("held-out NLL \(testNLL), true density \(trueNLL), gap \(testNLL - trueNLL) nats")

    let samples = try flow.sample(2000, generator: &generator)
    let scores = try flow.logProb(Tensor([0, 2.5, 0, 0] as [Float], shape: [2, 2]))   // on the ring; its empty centre

    try flow.save(to: modelPath)
    let loaded = try Flow.load(from: modelPath)
    let reloadDifference = try (loaded.logProb(test) - flow.logProb(test)).abs().max().item

    return DensityEstimationOutcome(flow: flow, train: train, test: test, report: report, testNLL: testNLL, trueNLL: trueNLL,
                                    samples: samples, scores: scores.doubles, reloadDifference: reloadDifference)
}
