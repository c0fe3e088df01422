import Foundation

/// A bijector plan that can be written to a model file: `Codable`, with a stable type name.
///
/// Add a plan to ``PlanCoding/registry`` so files naming it can be read back.
public protocol SerializablePlan: BijectorPlan, Codable {
    /// The name stored in model files; never change it once released.
    static var typeName: String { get }
}

/// Encodes and decodes plans as `{"type": name, "options": {…}}`; compositions nest.
public enum PlanCoding {
    /// Every plan a model file may name.
    nonisolated(unsafe) public static var registry: [String: any SerializablePlan.Type] = {
        let types: [any SerializablePlan.Type] = [
            Affine.self, AffineFixed.self, Exp.self, Sigmoid.self, Softplus.self, Tanh.self, ELU.self,
            LeakyReLU.self, Power.self, Permute.self, Compose.self, Invert.self, AffineAutoregressive.self,
            Spline.self, SplineAutoregressive.self, Planar.self, Radial.self,
            MAF.self, IAF.self, NSF.self, PlanarFlow.self, RadialFlow.self,
            AffineCoupling.self, AdditiveCoupling.self, SplineCoupling.self, RealNVP.self, NSFCoupling.self,
            Sylvester.self, SylvesterFlow.self, ActNorm.self, BatchNorm.self, LULinear.self, Householder.self,
        ]
        return Dictionary(uniqueKeysWithValues: types.map { ($0.typeName, $0) })
    }()

    /// The plan as JSON text.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` for a plan that cannot be saved (e.g. one
    ///   built from closures, like ``VolumePreserving``).
    public static func json(_ plan: any BijectorPlan) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(AnyPlan(plan)), as: UTF8.self)
    }

    /// The plan described by JSON text.
    public static func plan(fromJSON text: String) throws -> any BijectorPlan {
        do {
            return try JSONDecoder().decode(AnyPlan.self, from: Data(text.utf8)).plan
        } catch let error as FlowError {
            throw error
        } catch {
            throw FlowError.invalidConfiguration("the plan is not valid: \(error)")
        }
    }
}

/// The type-tagged envelope around any plan.
struct AnyPlan: Codable {
    let plan: any BijectorPlan

    init(_ plan: any BijectorPlan) { self.plan = plan }

    private enum Keys: String, CodingKey { case type, options }

    func encode(to encoder: Encoder) throws {
        guard let serializable = plan as? any SerializablePlan else {
            throw FlowError.invalidConfiguration("\(type(of: plan)) cannot be saved in a model file")
        }
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(type(of: serializable).typeName, forKey: .type)
        try container.encode(serializable, forKey: .options)
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let name = try container.decode(String.self, forKey: .type)
        guard let type = PlanCoding.registry[name] else {
            throw FlowError.invalidConfiguration("unknown bijector '\(name)' in the plan")
        }
        plan = try Self.decode(type, container)
    }

    private static func decode<P: SerializablePlan>(_: P.Type, _ container: KeyedDecodingContainer<Keys>) throws -> P {
        try container.decode(P.self, forKey: .options)
    }
}

// MARK: - Compositions (the other plans declare their conformance in their own files)

extension Compose: SerializablePlan {
    public static var typeName: String { "Compose" }
    private enum Keys: String, CodingKey { case parts }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(parts.map(AnyPlan.init), forKey: .parts)
    }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        self.init(try container.decode([AnyPlan].self, forKey: .parts).map(\.plan))
    }
}

extension Invert: SerializablePlan {
    public static var typeName: String { "Invert" }
    private enum Keys: String, CodingKey { case inner }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(AnyPlan(inner), forKey: .inner)
    }
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        self.init(try container.decode(AnyPlan.self, forKey: .inner).plan)
    }
}
