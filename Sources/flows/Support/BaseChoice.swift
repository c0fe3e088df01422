import ArgumentParser
import NormalizingFlows

/// The base distributions `flows fit` can put under a flow, by name (`--base`).
enum BaseChoice: String, CaseIterable {
    case normal, studentt, uniform, diagonal, gmm
    case conditionalDiagonal = "conditional-diagonal"

    static var names: String { allCases.map(\.rawValue).joined(separator: "|") }
    static let defaultDegreesOfFreedom = 5.0
    static let defaultComponents = 4

    static var help: String {
        "The base distribution: normal (N(0, I), fixed), studentt (Student's t, --degrees-of-freedom, default "
            + "\(Int(defaultDegreesOfFreedom))), diagonal (a normal whose mean and scale are trained), gmm (a Gaussian mixture "
            + "of --components, default \(defaultComponents), with --covariance diagonal (the default) or full, started by k-means "
            + "on the data and trained; the default and only base of --flow gmm), conditional-diagonal (with a context: a normal whose "
            + "mean and scale are a \(FlowChoice.defaultHidden.map(String.init).joined(separator: ",")) network of the context, "
            + "nflows' ConditionalDiagonalNormal) or uniform (the uniform density on the torus [−π, π)ᴰ: the base of --flow ncsf, the "
            + "default and only base there; refused for the other families, which map data onto all of ℝᴰ)."
    }

    /// The base called `name` (any case; by default normal, uniform for a circular `flow`, gmm
    /// for `--flow gmm`), usable by `flows fit` with `flow`, with its options; `conditional` tells
    /// whether the model has a context.
    init(name: String?, degreesOfFreedom: Double?, components: Int?, covariance: String? = nil, flow: FlowChoice,
         conditional: Bool = false) throws {
        let name = name ?? (flow.isCircular ? "uniform" : flow == .gmm ? "gmm" : "normal")
        guard let choice = BaseChoice(rawValue: name.lowercased()) else {
            throw ValidationError("--base: unknown base '\(FileError.clip(name))'; choose one of \(BaseChoice.names)")
        }
        if flow.isCircular && choice != .uniform {
            throw ValidationError("--base \(name): --flow \(flow.rawValue) maps angles in [−π, π)ᴰ onto the torus, whose base is uniform; "
                + "leave out --base (or give --base uniform)")
        }
        if flow == .gmm && choice != .gmm {
            throw ValidationError("--base \(name): --flow gmm is a Gaussian mixture by itself, its base; leave out --base (or give --base gmm), "
                + "or put the base under a flow family such as maf")
        }
        if choice == .uniform && !flow.isCircular {
            throw ValidationError("--base uniform is the torus base of --flow ncsf: the inverse of every other --flow family reaches all of ℝᴰ, where a uniform base has no density, "
                + "so its training loss would be infinite; choose normal, studentt, diagonal or gmm")
        }
        if choice == .conditionalDiagonal && !conditional {
            throw ValidationError("--base conditional-diagonal takes its mean and scale from a context: give --context-columns or --context, "
                + "or use --base diagonal for one trained normal")
        }
        if let degreesOfFreedom {
            guard choice == .studentt else { throw ValidationError("--degrees-of-freedom applies to --base studentt only") }
            guard degreesOfFreedom >= 1e-3, degreesOfFreedom.isFinite else {
                throw ValidationError("--degrees-of-freedom must be a finite number of at least 0.001, got \(degreesOfFreedom)")
            }
        }
        if let components {
            guard choice == .gmm else { throw ValidationError("--components applies to --base gmm and --flow gmm only") }
            guard components >= 1 else { throw ValidationError("--components must be at least 1, got \(components)") }
        }
        if let covariance {
            guard choice == .gmm else { throw ValidationError("--covariance applies to --base gmm and --flow gmm only") }
            _ = try BaseChoice.covariance(covariance)
        }
        self = choice
    }

    /// The mixture covariance called `name` (any case), diagonal when `nil`.
    static func covariance(_ name: String?) throws -> GaussianMixture.Covariance {
        guard let name else { return .diagonal }
        guard let covariance = GaussianMixture.Covariance(rawValue: name.lowercased()) else {
            throw ValidationError("--covariance: unknown covariance '\(FileError.clip(name))'; choose one of "
                + GaussianMixture.Covariance.allCases.map(\.rawValue).joined(separator: "|"))
        }
        return covariance
    }

    /// The base for rows of `data` [N, D] (which start a mixture's k-means), with a context of
    /// `contextSize` values (0: none).
    func base(for data: Tensor, degreesOfFreedom: Double?, components: Int?, covariance: String? = nil, contextSize: Int = 0,
              seed: UInt64) throws -> any Distribution {
        let dimension = data.shape[1]
        switch self {
        case .normal: return Normal.standard([dimension])
        case .uniform: return Uniform.circle(dimension, dtype: data.dtype)
        case .studentt:
            return StudentT(degreesOfFreedom: degreesOfFreedom ?? BaseChoice.defaultDegreesOfFreedom, loc: .zeros([dimension]), scale: .ones([dimension]))
        case .diagonal: return DiagonalNormal.standard([dimension])
        case .gmm:
            let k = components ?? BaseChoice.defaultComponents
            guard data.shape[0] >= k else {
                throw CommandError("--base gmm: --components \(k) needs at least \(k) training rows for k-means, got \(data.shape[0])")
            }
            return try GaussianMixture(kMeansOn: data, components: k, covariance: BaseChoice.covariance(covariance), seed: seed)
        case .conditionalDiagonal:
            return try ConditionalDiagonalNormal(features: dimension, contextSize: contextSize,
                                                 network: CouplingNetwork(hiddenSizes: FlowChoice.defaultHidden), dtype: data.dtype, seed: seed)
        }
    }
}
