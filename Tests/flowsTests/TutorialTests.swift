import Foundation
import NormalizingFlows
import Testing
@testable import flows

// The DocC tutorials' code (Sources/flows/Tutorials), run with few steps and checked against
// exact answers, and their pictures drawn; `flows docs-figures` runs the same code in full.

/// The midpoint rule over a grid of `cells`² cells on [a, b]²: the nodes [cells², 2] in float64
/// and the cell area.
private func grid(_ a: Double, _ b: Double, cells: Int) -> (nodes: Tensor, area: Double) {
    let h = (b - a) / Double(cells)
    var values: [Double] = []
    for i in 0..<cells { for j in 0..<cells { values += [a + (Double(i) + 0.5) * h, a + (Double(j) + 0.5) * h] } }
    return (Tensor(values, shape: [cells * cells, 2], dtype: .float64), h * h)
}

@Suite(.serialized) struct TutorialTests {
    @Test func theRingsLogDensityIsTheMixtureAndIntegratesToOne() {
        let ring = RingOfGaussians()
        // At one point by hand: (1/8) Σ_k N(x; m_k, 0.35² I).
        let x = (0.7, 1.9)
        var total = 0.0
        for k in 0..<8 {
            let angle = 2 * Double.pi * Double(k) / 8
            let d2 = (x.0 - 2.5 * cos(angle)) * (x.0 - 2.5 * cos(angle)) + (x.1 - 2.5 * sin(angle)) * (x.1 - 2.5 * sin(angle))
            total += exp(-d2 / (2 * 0.35 * 0.35)) / (2 * Double.pi * 0.35 * 0.35) / 8
        }
        let value = ring.logDensity(Tensor([x.0, x.1], shape: [1, 2], dtype: .float64)).item
        #expect(abs(value - log(total)) < 1e-12 * abs(log(total)) + 1e-14)
        let (nodes, area) = grid(-5, 5, cells: 400)
        #expect(abs(ring.logDensity(nodes).exp().sum().item * area - 1) < 1e-6)
        // Its samples: radius 2.5 on average, every component equally often.
        var generator = RandomGenerator(seed: 5)
        let rows = ring.sample(8000, generator: &generator).doubles
        let radii: [Double] = stride(from: 0, to: rows.count, by: 2).map { (k: Int) -> Double in
            let (a, b) = (rows[k], rows[k + 1])
            return (a * a + b * b).squareRoot()
        }
        #expect(abs(meanAndSD(radii).mean - 2.5) < 0.03)
    }

    /// A short fit gets within a few tenths of a nat of the true density's held-out NLL; the
    /// score on the ring beats the score of its empty centre; the model file reads back exactly.
    @Test func densityEstimationTutorialLearnsTheRing() throws {
        let outcome = try densityEstimationTutorial(steps: 250, modelPath: folder() + "/ring.safetensors")
        let gap = outcome.testNLL - outcome.trueNLL
        // A single Gaussian fitted to the ring is 1.2 nats worse than the truth.
        #expect(gap > -0.05 && gap < 0.3, "gap \(gap)")
        #expect(outcome.scores[0] > outcome.scores[1] + 2, "\(outcome.scores)")
        #expect(outcome.reloadDifference == 0)
        let svg = try TutorialFigures.densityEstimation(outcome).svg()
        #expect(svg.contains(">flow density</text>") && svg.contains(">true density (50, 90, 99%)</text>"))
        #expect(svg.components(separatedBy: "<path d=\"M").count - 1 == 6, "three contour lines in each of two panels")
    }

    /// The exact posterior, checked against a brute-force 2-D grid of prior × likelihood written
    /// from the n draws' normal density (not the reduced formula the quadrature uses).
    @Test func theExactPosteriorMatchesABruteForceGrid() {
        let simulator = NormalSampleSimulator()
        let values = [1.21, 0.48, 1.67, 0.93, 1.05]
        let exact = NormalSampleSimulator.ExactPosterior(simulator, summaries: simulator.summaries(of: values))
        let (a, b, cells) = (-3.0, 3.0, 600)
        let h = (b - a) / Double(cells)
        var logJoint: [Double] = [], nodes: [(Double, Double)] = []
        for i in 0..<cells {
            for j in 0..<cells {
                let (mu, eta) = (a + (Double(i) + 0.5) * h, a + (Double(j) + 0.5) * h)
                var l = -0.5 * (mu / 1.5) * (mu / 1.5) - log(1.5) - 0.5 * ((eta + 0.5) / 0.5) * ((eta + 0.5) / 0.5) - log(0.5) - log(2 * Double.pi)
                for y in values { l += -0.5 * (y - mu) * (y - mu) / exp(2 * eta) - eta - 0.5 * log(2 * Double.pi) }
                logJoint.append(l)
                nodes.append((mu, eta))
            }
        }
        let peak = logJoint.max()!
        let weights = logJoint.map { exp($0 - peak) }, total = weights.reduce(0, +)
        let meanMu = zip(weights, nodes).map { $0 * $1.0 }.reduce(0, +) / total
        let meanEta = zip(weights, nodes).map { $0 * $1.1 }.reduce(0, +) / total
        let sdMu = (zip(weights, nodes).map { $0 * ($1.0 - meanMu) * ($1.0 - meanMu) }.reduce(0, +) / total).squareRoot()
        #expect(abs(exact.posteriorMean.mu - meanMu) < 1e-4 && abs(exact.posteriorMean.logSigma - meanEta) < 1e-4)
        #expect(abs(exact.posteriorSD.mu - sdMu) < 1e-4)
        // The normalised density: integrates to 1, and its log differs from the grid's log joint by one constant.
        let logDensities = nodes.map { exact.logDensity(mu: $0.0, logSigma: $0.1) }
        #expect(abs(logDensities.map(exp).reduce(0, +) * h * h - 1) < 1e-4)
        let offsets = zip(logDensities, logJoint).map { $0 - $1 }
        #expect(offsets.max()! - offsets.min()! < 1e-9)
    }

    /// A short fit of q(θ | x) puts the posterior where the exact one is, with a held-out NLL
    /// close to the exact posterior's.
    @Test func posteriorTutorialRecoversTheExactPosterior() throws {
        let outcome = try posteriorTutorial(steps: 250, simulations: 10_000)
        let (exact, mean, sd) = (outcome.exact, outcome.sampleMean, outcome.sampleSD)
        #expect(abs(mean.mu - exact.posteriorMean.mu) < 0.25 * exact.posteriorSD.mu, "μ mean \(mean.mu) vs \(exact.posteriorMean.mu)")
        #expect(abs(mean.logSigma - exact.posteriorMean.logSigma) < 0.25 * exact.posteriorSD.logSigma, "log σ mean \(mean.logSigma) vs \(exact.posteriorMean.logSigma)")
        // After 250 steps the flow's posterior is still up to a third too wide (3000 steps: a few percent).
        #expect(abs(sd.mu / exact.posteriorSD.mu - 1) < 0.4 && abs(sd.logSigma / exact.posteriorSD.logSigma - 1) < 0.4, "\(sd) vs \(exact.posteriorSD)")
        let gap = outcome.heldOutNLL - outcome.trueNLL
        #expect(gap > -0.05 && gap < 0.3, "held-out NLL \(outcome.heldOutNLL), exact \(outcome.trueNLL)")
        let svg = try TutorialFigures.posterior(outcome).svg()
        #expect(svg.contains(">flow q(θ | x)</text>") && svg.contains(">log σ</text>"))
    }

    /// The ELBO of the banana fit lies below log Z = log 2π and near it; the funnel's below 0 and
    /// near it, with the funnel's neck (z₂ < −2) holding about its share of the mass.
    @Test func variationalTutorialBoundsLogZ() throws {
        let outcome = try variationalTutorial(steps: 200)
        let fitted = outcome.banana
        // 20,000 samples: near the optimum the ELBO's Monte Carlo error is a few thousandths.
        #expect(fitted.elbo < fitted.logNormalizer + 0.01 && fitted.elbo > fitted.logNormalizer - 0.25, "ELBO \(fitted.elbo)")
        #expect(outcome.funnel.elbo < 0.01 && outcome.funnel.elbo > -0.25, "funnel ELBO \(outcome.funnel.elbo)")
        #expect(abs(outcome.funnelNeck.target - 0.252492537546923) < 1e-12)
        #expect(abs(outcome.funnelNeck.flow - outcome.funnelNeck.target) < 0.05, "\(outcome.funnelNeck)")
        let svg = try TutorialFigures.variational(fitted, target: banana, name: "banana", window: (-6, 6)).svg()
        #expect(svg.contains(">banana (50, 90, 99%)</text>") && svg.contains(">samples of q</text>"))
    }

    /// Reverse KL stays on the mode it starts by: q covers less than 60% of the far mode's mass
    /// (½), and its ELBO falls about log 2 short of log Z; maximum likelihood with the same flow
    /// and steps puts mass on both.
    @Test func reverseKLMissesAMode() throws {
        let outcome = try modeSeekingTutorial(steps: 200)
        #expect(outcome.farModeMass.reverse < 0.6 * 0.5, "reverse KL: \(outcome.farModeMass.reverse) of the mass near (4, 4)")
        #expect(outcome.farModeMass.forward > 0.3 && outcome.farModeMass.forward < 0.7, "forward KL: \(outcome.farModeMass.forward) of the mass near (4, 4)")
        let reverse = outcome.reverseKL
        #expect(reverse.elbo < reverse.logNormalizer && reverse.logNormalizer - reverse.elbo > 0.5, "ELBO \(reverse.elbo), log Z \(reverse.logNormalizer)")
        #expect(outcome.forwardKL.elbo < reverse.logNormalizer)
        let svg = try TutorialFigures.modeSeeking(outcome).svg()
        #expect(svg.contains(">reverse KL (fitVariational)</text>") && svg.contains(">forward KL (fit on samples)</text>"))
    }

    /// For N(0, I), the m-highest-density region is the disc where p ≥ (1 − m)/2π.
    @Test func highestDensityLevelsOfAStandardNormal() {
        let (nodes, _) = grid(-7, 7, cells: 700)
        let v = nodes.doubles
        let density: [Double] = stride(from: 0, to: v.count, by: 2).map { (k: Int) -> Double in
            let squaredRadius = v[k] * v[k] + v[k + 1] * v[k + 1]
            return exp(-0.5 * squaredRadius) / (2 * Double.pi)
        }
        let levels = highestDensityLevels(density, masses: [0.5, 0.9, 0.99])
        for (level, mass) in zip(levels, [0.5, 0.9, 0.99]) {
            #expect(abs(level * 2 * Double.pi / (1 - mass) - 1) < 0.01, "mass \(mass): level \(level)")
        }
    }

    /// The contour of r² = x² + y² at level 4 is the circle of radius 2: every segment end lies on it.
    @Test func contourSegmentsTraceACircle() {
        let columns = 81   // nodes at −4, −3.9, …, 4 on both axes
        var values: [Double] = []
        for j in 0..<columns { for i in 0..<columns { values.append(pow(-4 + 0.1 * Double(i), 2) + pow(4 - 0.1 * Double(j), 2)) } }
        let segments = contourSegments(values, columns: columns, level: 4)
        #expect(segments.count > 100)
        for (a, b) in segments {
            for (i, j) in [a, b] {
                let r = (pow(-4 + 0.1 * i, 2) + pow(4 - 0.1 * j, 2)).squareRoot()
                #expect(abs(r - 2) < 0.01)
            }
        }
    }

    @Test func docsFiguresRefusesNoSteps() throws {
        let run = try flows(["docs-figures", "--out", folder(), "--steps", "0"])
        #expect(run.status == 2 && run.error.contains("--steps must be at least 1"), "\(run.error)")
    }
}
