import Foundation
import NormalizingFlows

// The code of the DocC tutorial "Simulation-Based Inference": the article's
// Swift listings are lines of this file, the tests run it with few steps, and
// `flows docs-figures` runs it in full and draws its picture.

/// The simulator of the posterior tutorial. Its parameters are θ = (μ, log σ), with the prior
/// μ ~ N(0, 1.5²), log σ ~ N(−0.5, 0.5²); one simulation draws n = 5 values of N(μ, σ²) and
/// reports their mean ȳ and the log of their standard deviation s (divisor n). These two
/// summaries are sufficient statistics: the posterior given them is the posterior given all n values.
struct NormalSampleSimulator {
    var draws = 5
    var priorMean = (mu: 0.0, logSigma: -0.5)
    var priorScale = (mu: 1.5, logSigma: 0.5)

    /// `n` parameter rows (μ, log σ) drawn from the prior, [n, 2].
    func samplePrior(_ n: Int, generator: inout RandomGenerator) -> Tensor {
        var rows: [Double] = []
        for _ in 0..<n {
            rows += [priorMean.mu + priorScale.mu * generator.nextNormal(), priorMean.logSigma + priorScale.logSigma * generator.nextNormal()]
        }
        return Tensor(rows, shape: [n, 2])
    }

    /// The summaries (ȳ, log s) of observed values.
    func summaries(of values: [Double]) -> [Double] {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return [mean, 0.5 * log(variance)]
    }

    /// One simulation per parameter row: `draws` values of N(μ, σ²), summarised, [n, 2].
    func simulate(_ theta: Tensor, generator: inout RandomGenerator) -> Tensor {
        let parameters = theta.doubles
        var rows: [Double] = []
        for row in 0..<theta.shape[0] {
            let (mu, sigma) = (parameters[2 * row], exp(parameters[2 * row + 1]))
            rows += summaries(of: (0..<draws).map { _ in mu + sigma * generator.nextNormal() })
        }
        return Tensor(rows, shape: [theta.shape[0], 2])
    }
}

extension NormalSampleSimulator {
    /// The exact posterior given summaries (ȳ, log s), integrated over log σ by quadrature.
    ///
    /// With σ = e^η, the likelihood of n values is ∝ σ⁻ⁿ exp(−n((ȳ − μ)² + s²) / 2σ²), so
    /// log p(μ, η | x) = log N(μ; m₀, s₀²) + log N(η; e₀, t₀²) − nη − n((ȳ − μ)² + s²)/2σ² − log Z(x).
    /// Given η, μ's factors are Gaussian: ∫ N(μ; m₀, s₀²) e^{−n(ȳ − μ)²/2σ²} dμ = √(2πσ²/n) N(ȳ; m₀, s₀² + σ²/n),
    /// and μ | η, x ~ N(m(η), v(η)) with v = 1/(1/s₀² + n/σ²), m = v (m₀/s₀² + nȳ/σ²). So Z(x) and
    /// the posterior moments are one-dimensional integrals over η, done by the midpoint rule on
    /// e₀ ± 12 t₀ with 1200 nodes.
    struct ExactPosterior {
        let simulator: NormalSampleSimulator
        let mean: Double, logSD: Double
        /// log Z(x), and the posterior means and standard deviations of μ and log σ.
        private(set) var logNormalizer = 0.0
        private(set) var posteriorMean = (mu: 0.0, logSigma: 0.0)
        private(set) var posteriorSD = (mu: 0.0, logSigma: 0.0)

        init(_ simulator: NormalSampleSimulator, summaries: [Double]) {
            self.simulator = simulator
            (mean, logSD) = (summaries[0], summaries[1])
            let (e0, t0) = (simulator.priorMean.logSigma, simulator.priorScale.logSigma)
            let nodes = 1200, h = 24 * t0 / Double(nodes)
            var logWeights: [Double] = [], etas: [Double] = []
            for k in 0..<nodes {
                let eta = e0 - 12 * t0 + (Double(k) + 0.5) * h
                etas.append(eta)
                logWeights.append(logMarginal(eta) + log(h))
            }
            let peak = logWeights.max()!
            let weights = logWeights.map { exp($0 - peak) }
            let total = weights.reduce(0, +)
            logNormalizer = peak + log(total)
            var moments = (mu: 0.0, muSquare: 0.0, eta: 0.0, etaSquare: 0.0)
            for (eta, w) in zip(etas, weights) {
                let (m, v) = conditionalMu(eta)
                moments.mu += w * m
                moments.muSquare += w * (v + m * m)
                moments.eta += w * eta
                moments.etaSquare += w * eta * eta
            }
            posteriorMean = (moments.mu / total, moments.eta / total)
            posteriorSD = ((moments.muSquare / total - posteriorMean.mu * posteriorMean.mu).squareRoot(),
                           (moments.etaSquare / total - posteriorMean.logSigma * posteriorMean.logSigma).squareRoot())
        }

        /// log of the prior times the likelihood at (μ, η), unnormalised (the −n/2·log 2π of
        /// the likelihood is left out here and in Z).
        func logJoint(mu: Double, eta: Double) -> Double {
            let n = Double(simulator.draws), sigma2 = exp(2 * eta), s2 = exp(2 * logSD)
            return logNormal(mu, simulator.priorMean.mu, simulator.priorScale.mu) + logNormal(eta, simulator.priorMean.logSigma, simulator.priorScale.logSigma)
                - n * eta - n * ((mean - mu) * (mean - mu) + s2) / (2 * sigma2)
        }

        /// log p(μ, log σ | x).
        func logDensity(mu: Double, logSigma: Double) -> Double { logJoint(mu: mu, eta: logSigma) - logNormalizer }

        /// log ∫ prior × likelihood dμ at η.
        private func logMarginal(_ eta: Double) -> Double {
            let n = Double(simulator.draws), sigma2 = exp(2 * eta), s2 = exp(2 * logSD)
            let s0 = simulator.priorScale.mu
            return logNormal(eta, simulator.priorMean.logSigma, simulator.priorScale.logSigma) - n * eta - n * s2 / (2 * sigma2)
                + 0.5 * log(2 * Double.pi * sigma2 / n) + logNormal(mean, simulator.priorMean.mu, (s0 * s0 + sigma2 / n).squareRoot())
        }

        /// The mean and variance of μ given η and the summaries.
        private func conditionalMu(_ eta: Double) -> (mean: Double, variance: Double) {
            let n = Double(simulator.draws), sigma2 = exp(2 * eta), s0 = simulator.priorScale.mu
            let variance = 1 / (1 / (s0 * s0) + n / sigma2)
            return (variance * (simulator.priorMean.mu / (s0 * s0) + n * mean / sigma2), variance)
        }

        private func logNormal(_ x: Double, _ m: Double, _ s: Double) -> Double {
            -0.5 * ((x - m) / s) * ((x - m) / s) - log(s) - 0.5 * log(2 * Double.pi)
        }
    }
}

/// What the posterior tutorial found.
struct PosteriorOutcome {
    var flow: Flow
    var simulator: NormalSampleSimulator
    /// The observation's summaries, the exact posterior given them, and flow samples for them.
    var observed: [Double]
    var exact: NormalSampleSimulator.ExactPosterior
    var samples: Tensor
    /// The means and standard deviations of the samples' μ and log σ.
    var sampleMean: (mu: Double, logSigma: Double)
    var sampleSD: (mu: Double, logSigma: Double)
    /// −mean log q(θ | x) and −mean log p(θ | x) over fresh simulated pairs.
    var heldOutNLL: Double
    var trueNLL: Double
}

/// The posterior tutorial: a conditional neural spline flow q(θ | x) trained on simulated
/// (θ, x) pairs, evaluated at one observation against the exact posterior and over fresh pairs.
func posteriorTutorial(steps: Int, simulations: Int = 20_000) throws -> PosteriorOutcome {
    let simulator = NormalSampleSimulator()
    var generator = RandomGenerator(seed: 0)
    let theta = simulator.samplePrior(simulations, generator: &generator)
    let x = simulator.simulate(theta, generator: &generator)

    // q(θ | x): a flow over the 2 parameters, conditional on the 2 summaries.
    let posterior = try Flow(base: Normal.standard([2]), plan: NSF(layers: 5), contextSize: 2, seed: 1)
    var options = FitOptions()
    options.steps = steps                   // 3000 for the picture
    options.batchSize = 512
    options.learningRate = 3e-3
    options.learningRatePolicy = .cosine
    try fit(posterior, data: theta, context: x, options: options)

    // The observation: five measurements.
    let measurements = [1.21, 0.48, 1.67, 0.93, 1.05]
    let observed = simulator.summaries(of: measurements)
    let samples = try posterior.sample(5000, context: Tensor(observed), generator: &generator)
    let exact = NormalSampleSimulator.ExactPosterior(simulator, summaries: observed)
    print("posterior mean of μ: flow \(samples.mean(alongAxis: 0).doubles[0]), exact \(exact.posteriorMean.mu)")

    // Held out: fresh pairs scored by the flow and by the exact posterior.
    let freshTheta = simulator.samplePrior(2000, generator: &generator)
    let freshX = simulator.simulate(freshTheta, generator: &generator)
    let heldOutNLL = try negativeLogLikelihood(posterior, freshTheta, context: freshX)
    let trueNLL = exactNegativeLogLikelihood(simulator, theta: freshTheta, x: freshX)

    let values = samples.doubles
    let mus = stride(from: 0, to: values.count, by: 2).map { values[$0] }, etas = stride(from: 1, to: values.count, by: 2).map { values[$0] }
    return PosteriorOutcome(flow: posterior, simulator: simulator, observed: observed, exact: exact, samples: samples,
                            sampleMean: (meanAndSD(mus).mean, meanAndSD(etas).mean), sampleSD: (meanAndSD(mus).sd, meanAndSD(etas).sd),
                            heldOutNLL: heldOutNLL, trueNLL: trueNLL)
}

/// −mean log p(θᵢ | xᵢ) under the exact posterior, over rows of θ [n, 2] and x [n, 2].
func exactNegativeLogLikelihood(_ simulator: NormalSampleSimulator, theta: Tensor, x: Tensor) -> Double {
    let (parameters, summaries) = (theta.doubles, x.doubles)
    var total = 0.0
    for row in 0..<theta.shape[0] {
        let exact = NormalSampleSimulator.ExactPosterior(simulator, summaries: [summaries[2 * row], summaries[2 * row + 1]])
        total -= exact.logDensity(mu: parameters[2 * row], logSigma: parameters[2 * row + 1])
    }
    return total / Double(theta.shape[0])
}

/// The mean and standard deviation (divisor n − 1) of `values`.
func meanAndSD(_ values: [Double]) -> (mean: Double, sd: Double) {
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(values.count - 1, 1))
    return (mean, variance.squareRoot())
}
