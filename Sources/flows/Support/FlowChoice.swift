import ArgumentParser
import NormalizingFlows

/// The flow families `flows fit` and `flows vi` can build, by name.
enum FlowChoice: String, CaseIterable {
    case maf, iaf, nsf
    case nsfCoupling = "nsf-coupling"
    case lrs
    case lrsCoupling = "lrs-coupling"
    case realnvp, planar, radial, sylvester
    case naf, unaf, sospf, bpf
    /// Angles: data in [−π, π)ᴰ under a uniform base on the torus.
    case ncsf
    /// No layers: a Gaussian mixture base is the whole model (zuko's `GMM`).
    case gmm

    static var names: String { allCases.map(\.rawValue).joined(separator: "|") }

    init(name: String) throws {
        guard let choice = FlowChoice(rawValue: name.lowercased()) else {
            throw ValidationError("--flow: unknown flow '\(FileError.clip(name))'; choose one of \(FlowChoice.names)")
        }
        self = choice
    }

    /// Layers when `--layers` is not given.
    var defaultLayers: Int {
        switch self {
        case .maf, .iaf, .nsf, .lrs, .ncsf, .naf, .unaf, .sospf, .bpf: 5
        case .realnvp, .nsfCoupling, .lrsCoupling: 6
        case .planar, .radial: 32
        case .sylvester: 16
        case .gmm: 0
        }
    }

    /// The Adam learning rate of `flows fit` and `flows vi` when `--lr` is not given: 1e-3, and
    /// 1e-2 for planar, radial and Sylvester flows. Their layers start near the identity and each
    /// moves points through a bounded tanh or radial bump, so at 1e-3 they spend a default run's
    /// steps barely leaving their start. Fitted to two moons (2,000 steps, batch 256, held-out
    /// rows; a Gaussian scores 1.884): planar 0.924 → 0.476, radial 1.123 → 0.450, Sylvester
    /// 1.814 → 0.537 nats. By reverse KL (`flows vi`, 5,000 steps): on u2 planar 0.483 → ≈ 0 and
    /// Sylvester 0.571 → 0.376, on u3 planar 0.685 → 0.253 and radial 1.175 → 0.688. The networks
    /// of the other families train well at 1e-3.
    var defaultLearningRate: Double {
        switch self {
        case .planar, .radial, .sylvester: 1e-2
        default: 1e-3
        }
    }

    static var learningRateHelp: String {
        let fast = allCases.filter { $0.defaultLearningRate != 1e-3 }.map(\.rawValue).joined(separator: ", ")
        return "Adam learning rate (constant). Default: 0.001; 0.01 for \(fast), whose layers leave the identity slowly."
    }

    static let defaultHidden = [64, 64]
    static let defaultBins = 8
    /// Sigmoid units per element of `naf`'s layers (Huang et al.'s and Pyro's 16).
    static let defaultUnits = 16

    /// What `flows fit` tells the user before fitting this family to data, when it is slow or
    /// fragile in that direction, with the family that fits the job; `nil` for the families made
    /// for density estimation.
    var densityEstimationNote: String? {
        switch self {
        case .maf, .nsf, .nsfCoupling, .lrs, .lrsCoupling, .realnvp, .ncsf, .naf, .unaf, .sospf, .bpf, .gmm: nil
        case .iaf:
            "iaf is made for sampling (variational inference, `flows vi`): scoring data inverts each layer "
                + "in one sequential step per dimension, so training on data is slow; maf has the same layers "
                + "the fast way round for data (or use nsf)"
        case .planar, .sylvester:
            "\(rawValue) is made for variational inference (`flows vi`): it has no closed-form inverse, so every "
                + "data point costs an iterative solve per layer, and it fits data less well; for density estimation use maf or nsf"
        case .radial:
            "radial is made for variational inference (`flows vi`): one radial bump per layer fits data less well; "
                + "for density estimation use maf or nsf"
        }
    }

    /// The interval [−B, B] of the family's splines, outside which each spline is the identity:
    /// `nil` for families without splines.
    /// (ncsf's circular splines cover the whole circle, and data outside it are refused.)
    var splineBound: Double? { [.nsf, .nsfCoupling, .lrs, .lrsCoupling].contains(self) ? 5 : nil }

    /// A note when more than 1% of the values the first spline sees (`values`, the data inside
    /// any bounds) lie outside ±``splineBound``: there the flow leaves the base density unshaped.
    func splineBoundNote(_ values: Tensor) -> String? {
        guard let bound = splineBound, values.count > 0 else { return nil }
        let outside = Double(values.doubles.filter { $0.magnitude > bound }.count) / Double(values.count)
        guard outside > 0.01 else { return nil }
        return String(format: "%.0f%% of the values %@'s splines see lie outside ±%g, where each spline is the identity "
                      + "and the density keeps the base's shape; standardise the columns (or use --flow maf)", outside * 100, rawValue, bound)
    }

    /// Whether the family has conditioner networks (`--hidden`) and spline bins (`--bins`).
    var takesHidden: Bool { ![.planar, .radial, .sylvester, .gmm].contains(self) }
    /// Whether the family has layers (`--layers`): all but `gmm`, which is its base alone.
    var takesLayers: Bool { self != .gmm }
    var takesBins: Bool { [.nsf, .nsfCoupling, .lrs, .lrsCoupling, .ncsf].contains(self) }
    /// Whether the family models angles, data in [−π, π)ᴰ, with the uniform base on the torus.
    var isCircular: Bool { self == .ncsf }

    /// Refuses `values` (rows of `path`) with a value outside [−π, π) for a circular family,
    /// naming the row, the column and the value.
    func checkAngles(_ values: Tensor, of path: String) throws {
        guard isCircular, values.shape.count == 2 else { return }
        let width = values.shape[1]
        for (i, v) in values.doubles.enumerated() where !Domain.circle.contains(v) {
            throw FileError(path: path, "row \(i / width + 1), column \(i % width + 1) is \(v), not an angle in [−π, π): --flow \(rawValue) "
                + "models angles in radians on [−π, π) (π is −π there); wrap them, e.g. to atan2(sin x, cos x), with π written as −π")
        }
    }
    /// Whether the family can be conditional, p(y | c): every family with layers. Conditioner
    /// networks see the context beside their inputs; planar, radial and Sylvester layers have
    /// their parameters shifted by a network of the context (Pyro's conditional planar and radial
    /// flows). A mixture's weights, means and covariances do not depend on a context.
    var takesContext: Bool { self != .gmm }

    /// "5 for maf, iaf, nsf; 6 for nsf-coupling, realnvp; …": the default layers per family, for help texts.
    static var layersHelp: String {
        var groups: [(Int, [String])] = []
        for choice in allCases where choice.takesLayers {
            if let i = groups.firstIndex(where: { $0.0 == choice.defaultLayers }) { groups[i].1.append(choice.rawValue) } else {
                groups.append((choice.defaultLayers, [choice.rawValue]))
            }
        }
        return groups.map { "\($0.0) for \($0.1.joined(separator: ", "))" }.joined(separator: "; ")
    }

    static var hiddenHelp: String {
        "Hidden layer sizes of the conditioner networks, comma-separated (default: \(defaultHidden.map(String.init).joined(separator: ",")); "
            + "for \(allCases.filter(\.takesHidden).map(\.rawValue).joined(separator: ", ")) only)."
    }

    static var binsHelp: String {
        "Spline bins (default: \(defaultBins); for \(allCases.filter(\.takesBins).map(\.rawValue).joined(separator: ", ")) only)."
    }

    /// Refuses options that the family would ignore, and a context (`context`, the option and
    /// value given) for a family that cannot be conditional.
    func checkApplicable(layers: Int? = nil, hidden: String?, bins: Int?, context: String? = nil) throws {
        if let context, !takesContext {
            throw ValidationError("\(context): --flow \(rawValue) cannot be conditional (a Gaussian mixture's parameters do not depend on a context); "
                + "conditional flows are \(FlowChoice.allCases.filter(\.takesContext).map(\.rawValue).joined(separator: ", "))")
        }
        if let layers, !takesLayers {
            throw ValidationError("--layers \(layers) does not apply to --flow \(rawValue): it has no layers, its Gaussian mixture base is the whole model (--components, --covariance)")
        }
        if hidden != nil && !takesHidden {
            throw ValidationError("--hidden does not apply to --flow \(rawValue) (it has no conditioner network); it applies to \(FlowChoice.allCases.filter(\.takesHidden).map(\.rawValue).joined(separator: ", "))")
        }
        if bins != nil && !takesBins {
            throw ValidationError("--bins does not apply to --flow \(rawValue) (it has no splines); it applies to \(FlowChoice.allCases.filter(\.takesBins).map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// The plan for `dimension` variables, with the command line's sizes where given.
    ///
    /// Above two dimensions each autoregressive layer draws a random variable order (saved with
    /// the model) instead of alternating between the natural and the reversed one: on the 64-D
    /// digits of `nsf-digits` (seeds 0 and 1) the test NLL at the best validation step falls from
    /// 54.8 to 51.6–51.7 nats. In two dimensions the alternation is the best order there is.
    func plan(layers: Int?, hidden: [Int]?, bins: Int?, dimension: Int) -> any BijectorPlan {
        let layers = layers ?? defaultLayers, hidden = hidden ?? FlowChoice.defaultHidden, bins = bins ?? FlowChoice.defaultBins
        let conditioner = DenseAutoregressive(hiddenSizes: hidden, order: dimension > 2 ? .random : .natural)
        switch self {
        case .maf: return MAF(layers: layers, conditioner: conditioner)
        case .iaf: return IAF(layers: layers, conditioner: conditioner)
        case .nsf: return NSF(layers: layers, bins: bins, bound: splineBound!, conditioner: conditioner)
        case .planar: return PlanarFlow(layers: layers)
        case .radial: return RadialFlow(layers: layers)
        case .realnvp: return RealNVP(layers: layers, conditioner: CouplingNetwork(hiddenSizes: hidden))
        case .nsfCoupling: return NSFCoupling(layers: layers, bins: bins, bound: splineBound!, conditioner: CouplingNetwork(hiddenSizes: hidden))
        case .lrs: return LRS(layers: layers, bins: bins, bound: splineBound!, conditioner: conditioner)
        case .lrsCoupling: return LRSCoupling(layers: layers, bins: bins, bound: splineBound!, conditioner: CouplingNetwork(hiddenSizes: hidden))
        case .sylvester: return SylvesterFlow(layers: layers)
        case .ncsf: return NCSF(layers: layers, bins: bins, conditioner: conditioner)
        case .naf: return NAF(layers: layers, units: FlowChoice.defaultUnits, conditioner: conditioner)
        case .unaf: return UNAF(layers: layers, conditioner: conditioner)
        case .sospf: return SOSPF(layers: layers, conditioner: conditioner)
        case .bpf: return BPF(layers: layers, conditioner: conditioner)
        // The identity (loc 0, scale 1): the base's density is the model's.
        case .gmm: return AffineFixed()
        }
    }
}

/// Parses "64,64" into layer sizes; a size that is not a positive whole number is named with
/// the option and the whole value.
func parseSizes(_ text: String?, option: String) throws -> [Int]? {
    guard let text else { return nil }
    return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
        let item = part.trimmingCharacters(in: .whitespaces)
        guard let size = Int(item), size > 0 else {
            throw ValidationError("\(option) \(FileError.clip(text)): '\(FileError.clip(item))' is not a positive whole number; give sizes such as 64,64")
        }
        return size
    }
}

extension Energy {
    /// The energy called `name` (any case), or a command-line error listing the names.
    static func named(_ name: String) throws -> Energy {
        guard let energy = Energy(rawValue: name.lowercased()) else {
            throw ValidationError("--energy: unknown energy '\(FileError.clip(name))'; choose one of \(Energy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return energy
    }
}
