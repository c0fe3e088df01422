import Foundation

/// A bijector plan that can be written to a model file: `Codable`, with a stable type name.
///
/// Conforming is all a plan needs to be saved and read back: model files name it by
/// ``typeName``, and reading finds the type by that name at run time, so no list of plans is
/// kept anywhere. Plans must be non-generic top-level types.
public protocol SerializablePlan: BijectorPlan, Codable {
    /// The name stored in model files: by default the type's name (`MAF`), qualified by its
    /// module outside this library (`MyModule.MyPlan`). Override it to keep reading old files
    /// after renaming a type.
    static var typeName: String { get }
}

extension SerializablePlan {
    public static var typeName: String {
        let qualified = String(reflecting: Self.self), ours = "\(PlanCoding.libraryModule)."
        return qualified.hasPrefix(ours) ? String(qualified.dropFirst(ours.count)) : qualified
    }
}

/// Encodes and decodes plans as `{"type": name, "options": {…}}`; compositions nest.
public enum PlanCoding {
    /// The module whose plans are named without a module prefix.
    static let libraryModule = "NormalizingFlows"

    /// The plan type a model file names, found by its name at run time: `Name` for this
    /// library's plans, `Module.Name` for others. `nil` for a name that is no saveable plan (or
    /// not an identifier: names come from files and are not trusted).
    static func planType(named name: String) -> (any SerializablePlan.Type)? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let isIdentifier = { (part: String) in
            part.utf8.count <= 256 && part.first.map { $0.isASCII && ($0.isLetter || $0 == "_") } == true
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        guard parts.count <= 2, parts.allSatisfy(isIdentifier) else { return nil }
        let (module, type) = parts.count == 1 ? (libraryModule, parts[0]) : (parts[0], parts[1])
        // A top-level nominal type's mangled name: module and name with their lengths, then
        // V (struct), O (enum) or C (class).
        for kind in ["V", "O", "C"] {
            if let found = _typeByName("\(module.utf8.count)\(module)\(type.utf8.count)\(type)\(kind)") as? any SerializablePlan.Type,
               found.typeName == name {
                return found
            }
        }
        return nil
    }

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
        } catch let error as DecodingError {
            throw FlowError.invalidConfiguration("the plan is not valid: \(describe(error))")
        } catch {
            throw FlowError.invalidConfiguration("the plan is not valid: \(error)")
        }
    }

    /// Where in the plan and what: "options.layers: expected Int", not the error's debug dump.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the plan" : String(keys.drop { $0 == "." })
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)): expected \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)): expected \(type), found null"
        case .keyNotFound(let key, let context): return "\(path(context)): '\(key.stringValue)' is missing"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
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
        guard let type = PlanCoding.planType(named: name) else {
            throw FlowError.invalidConfiguration("unknown bijector '\(name.prefix(100))' in the plan")
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
    /// Writes `{"parts": [each part's type-tagged plan]}`.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(parts.map(AnyPlan.init), forKey: .parts)
    }
    /// Reads the parts, each found by its type name.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        self.init(try container.decode([AnyPlan].self, forKey: .parts).map(\.plan))
    }
}

extension Invert: SerializablePlan {
    public static var typeName: String { "Invert" }
    private enum Keys: String, CodingKey { case inner }
    /// Writes `{"inner": the inner plan, type-tagged}`.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(AnyPlan(inner), forKey: .inner)
    }
    /// Reads the inner plan, found by its type name.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        self.init(try container.decode(AnyPlan.self, forKey: .inner).plan)
    }
}
