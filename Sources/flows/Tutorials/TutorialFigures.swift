import Foundation
import NormalizingFlows

/// The pictures of the DocC tutorials, drawn from what their code found.
enum TutorialFigures {
    /// A density on the plot's grid: exp of `logDensity` at the cell centres (float64).
    static func density(_ logDensity: @escaping (Tensor) -> Tensor) -> (Tensor) throws -> [Double] {
        { grid in withoutGradients { logDensity(grid).exp().doubles } }
    }

    /// A flow's density on the plot's grid.
    static func density(of flow: Flow, context: Tensor? = nil) -> (Tensor) throws -> [Double] {
        { grid in
            try withoutGradients {
                let rows = grid.converted(to: flow.dtype)
                return try flow.logProb(rows, context: context.map { $0.reshaped(to: [1, $0.count]).broadcast(to: [rows.shape[0], $0.count]) }).exp().doubles
            }
        }
    }

    static let truthColor = "#e4572e"

    /// The ring: the true density with training rows; the flow's density under the true
    /// density's 50/90/99% contours; the flow's samples under the same contours.
    static func densityEstimation(_ outcome: DensityEstimationOutcome) -> DensityPlot {
        let ring = RingOfGaussians()
        let truth = DensityPlot.Contours(label: "true density (50, 90, 99%)", color: truthColor, density: density(ring.logDensity))
        var plot = DensityPlot(panels: [
            .init(title: "true density and training data", density: density(ring.logDensity),
                  points: [.init(label: "training data", color: "white", values: Array(outcome.train.points2D.prefix(1500)))]),
            .init(title: "flow density", density: density(of: outcome.flow), contours: [truth]),
            .init(title: "flow samples", density: nil,
                  points: [.init(label: "flow samples", color: "#3b528b", values: outcome.samples.points2D)], contours: [truth]),
        ], x: (-4, 4), y: (-4, 4))
        plot.size = 320
        plot.cells = 64   // coarser than `flows plot`'s 90: the pictures are smaller files
        return plot
    }

    /// The posterior at the observation: the exact posterior; the flow's under the exact 50/90/99%
    /// contours; its samples under the same contours, with the maximum-likelihood point (ȳ, log s).
    static func posterior(_ outcome: PosteriorOutcome) -> DensityPlot {
        let exact = outcome.exact
        let exactDensity: (Tensor) throws -> [Double] = { grid in
            let v = grid.doubles
            return stride(from: 0, to: v.count, by: 2).map { exp(exact.logDensity(mu: v[$0], logSigma: v[$0 + 1])) }
        }
        let contours = DensityPlot.Contours(label: "exact posterior (50, 90, 99%)", color: truthColor, density: exactDensity)
        let mle = DensityPlot.Points(label: "(ȳ, log s)", color: "#fde725", values: [(outcome.observed[0], outcome.observed[1])], radius: 5)
        let half = 4.5 * max(exact.posteriorSD.mu, exact.posteriorSD.logSigma)
        var plot = DensityPlot(panels: [
            .init(title: "exact posterior p(θ | x)", density: exactDensity, points: [mle]),
            .init(title: "flow q(θ | x)", density: density(of: outcome.flow, context: Tensor(outcome.observed)), contours: [contours]),
            .init(title: "samples of q(θ | x)", density: nil,
                  points: [.init(label: "flow samples", color: "#3b528b", values: Array(outcome.samples.points2D.prefix(2000))), mle],
                  contours: [contours]),
        ], x: (exact.posteriorMean.mu - half, exact.posteriorMean.mu + half),
           y: (exact.posteriorMean.logSigma - half, exact.posteriorMean.logSigma + half))
        plot.size = 320
        plot.cells = 64   // coarser than `flows plot`'s 90: the pictures are smaller files
        plot.xLabel = "μ"
        plot.yLabel = "log σ"
        return plot
    }

    /// One variational fit: the flow's density and its samples, each under the target's
    /// 50/90/99% contours.
    static func variational(_ fit: VariationalFit, target: @escaping (Tensor) -> Tensor, name: String,
                            window: (Double, Double)) -> DensityPlot {
        let contours = DensityPlot.Contours(label: "\(name) (50, 90, 99%)", color: truthColor, density: density(target))
        var plot = DensityPlot(panels: [
            .init(title: "flow density q", density: density(of: fit.flow), contours: [contours]),
            .init(title: "samples of q", density: nil,
                  points: [.init(label: "flow samples", color: "#3b528b", values: Array(fit.samples.points2D.prefix(2000)))],
                  contours: [contours]),
        ], x: window, y: window)
        plot.size = 320
        plot.cells = 64   // coarser than `flows plot`'s 90: the pictures are smaller files
        plot.xLabel = "z₁"
        plot.yLabel = "z₂"
        return plot
    }

    /// The two-mode target fitted by reverse KL and by forward KL (maximum likelihood).
    static func modeSeeking(_ outcome: ModeSeekingOutcome) -> DensityPlot {
        let contours = DensityPlot.Contours(label: "target (50, 90, 99%)", color: truthColor, density: density(twoModes))
        func panel(_ title: String, _ fit: VariationalFit) -> DensityPlot.Panel {
            .init(title: title, density: nil,
                  points: [.init(label: "flow samples", color: "#3b528b", values: Array(fit.samples.points2D.prefix(2000)))], contours: [contours])
        }
        var plot = DensityPlot(panels: [panel("reverse KL (fitVariational)", outcome.reverseKL), panel("forward KL (fit on samples)", outcome.forwardKL)],
                               x: (-3, 7), y: (-3, 7))
        plot.size = 320
        plot.cells = 64   // coarser than `flows plot`'s 90: the pictures are smaller files
        plot.xLabel = "z₁"
        plot.yLabel = "z₂"
        return plot
    }

    /// Runs every tutorial with `steps` optimizer steps and writes its pictures into `folder`;
    /// returns the files written and one line of numbers per tutorial.
    static func write(to folder: URL, steps: Int, scratch: URL) throws -> (files: [URL], summary: [String]) {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var files: [URL] = [], summary: [String] = []
        func save(_ plot: DensityPlot, _ name: String) throws {
            let url = folder.appendingPathComponent(name)
            try FileAccess.write(Data(try plot.svg().utf8), to: url.path)
            files.append(url)
        }
        let density = try densityEstimationTutorial(steps: steps, modelPath: scratch.appendingPathComponent("ring.safetensors").path)
        try save(densityEstimation(density), "tutorial-density.svg")
        summary.append(String(format: "density estimation: held-out NLL %.4f, true density %.4f (gap %.4f nats); log q(0, 2.5) = %.3f, log q(0, 0) = %.3f; best validation NLL %.4f at step %d; fit in %.1f s",
                              density.testNLL, density.trueNLL, density.testNLL - density.trueNLL, density.scores[0], density.scores[1],
                              density.report.bestValidationNLL ?? .nan, density.report.bestStep ?? -1, density.report.seconds))

        let posterior = try posteriorTutorial(steps: steps)
        try save(self.posterior(posterior), "tutorial-posterior.svg")
        summary.append(String(format: "posterior: μ mean %.4f (exact %.4f), sd %.4f (exact %.4f); log σ mean %.4f (exact %.4f), sd %.4f (exact %.4f); held-out NLL %.4f, exact %.4f (gap %.4f)",
                              posterior.sampleMean.mu, posterior.exact.posteriorMean.mu, posterior.sampleSD.mu, posterior.exact.posteriorSD.mu,
                              posterior.sampleMean.logSigma, posterior.exact.posteriorMean.logSigma, posterior.sampleSD.logSigma, posterior.exact.posteriorSD.logSigma,
                              posterior.heldOutNLL, posterior.trueNLL, posterior.heldOutNLL - posterior.trueNLL))

        let vi = try variationalTutorial(steps: steps)
        try save(variational(vi.banana, target: banana, name: "banana", window: (-6, 6)), "tutorial-vi-banana.svg")
        try save(variational(vi.funnel, target: Energy.funnel.logDensity, name: "funnel", window: (-8, 8)), "tutorial-vi-funnel.svg")
        summary.append(String(format: "banana: ELBO %.4f, log Z %.4f (KL %.4f); funnel: ELBO %.4f, log Z 0, mass below z₂ = −2 %.4f (target %.4f)",
                              vi.banana.elbo, vi.banana.logNormalizer, vi.banana.logNormalizer - vi.banana.elbo, vi.funnel.elbo, vi.funnelNeck.flow, vi.funnelNeck.target))
        let modes = try modeSeekingTutorial(steps: steps)
        try save(modeSeeking(modes), "tutorial-vi-two-modes.svg")
        summary.append(String(format: "two modes: log Z %.4f; reverse KL: ELBO %.4f (KL %.4f), mass near (4, 4) %.4f; forward KL: ELBO %.4f (KL %.4f), mass near (4, 4) %.4f",
                              modes.reverseKL.logNormalizer, modes.reverseKL.elbo, modes.reverseKL.logNormalizer - modes.reverseKL.elbo, modes.farModeMass.reverse,
                              modes.forwardKL.elbo, modes.forwardKL.logNormalizer - modes.forwardKL.elbo, modes.farModeMass.forward))
        return (files, summary)
    }
}
