import ArgumentParser
import NormalizingFlows

/// The flow families `flows fit` and `flows vi` can build, by name.
enum FlowChoice: String, CaseIterable {
    case maf, iaf, nsf
    case nsfCoupling = "nsf-coupling"
    case realnvp, planar, radial, sylvester

    static var names: String { allCases.map(\.rawValue).joined(separator: "|") }

    init(name: String) throws {
        guard let choice = FlowChoice(rawValue: name.lowercased()) else {
            throw CommandError("unknown flow '\(name)'; choose one of \(FlowChoice.names)")
        }
        self = choice
    }

    /// The plan, with the command line's sizes where given.
    func plan(layers: Int?, hidden: [Int]?, bins: Int?) -> any BijectorPlan {
        let conditioner = DenseAutoregressive(hiddenSizes: hidden ?? [64, 64])
        switch self {
        case .maf: return MAF(layers: layers ?? 5, conditioner: conditioner)
        case .iaf: return IAF(layers: layers ?? 5, conditioner: conditioner)
        case .nsf: return NSF(layers: layers ?? 5, bins: bins ?? 8, bound: 5, conditioner: conditioner)
        case .planar: return PlanarFlow(layers: layers ?? 32)
        case .radial: return RadialFlow(layers: layers ?? 32)
        case .realnvp: return RealNVP(layers: layers ?? 6, conditioner: CouplingNetwork(hiddenSizes: hidden ?? [64, 64]))
        case .nsfCoupling:
            return NSFCoupling(layers: layers ?? 6, bins: bins ?? 8, bound: 5, conditioner: CouplingNetwork(hiddenSizes: hidden ?? [64, 64]))
        case .sylvester: return SylvesterFlow(layers: layers ?? 16)
        }
    }
}

/// Parses "64,64" into layer sizes.
func parseSizes(_ text: String?, option: String) throws -> [Int]? {
    guard let text else { return nil }
    let sizes = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("\(option) takes positive integers separated by commas, e.g. 64,64; got '\(text)'")
    }
    return sizes.map { $0! }
}
