import Foundation

/// A base distribution that a model file can hold: a module whose parameters and buffers the
/// file stores under `base.` (``Flow/state()``), and whose type name and settings (the numbers
/// that are not tensors: an event rank, degrees of freedom, hidden sizes) the file's `base`
/// metadata holds as JSON, `{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 3}`.
///
/// Loading builds a base of the file's shapes with ``init(fileSettings:)`` and then loads the
/// file's tensors into it (``Flow/load(state:)``), whose `buffersDidLoad()` checks
/// their values: everything read from the file is checked before it is used.
public protocol SerializableBase: Distribution, Module {
    /// The name stored in model files.
    static var typeName: String { get }
    /// The settings beside the type in the file's metadata: numbers, strings or arrays of them.
    var fileSettings: [String: Any] { get }
    /// A base of the shapes, dtype and settings a model file describes, to load the file's
    /// tensors into.
    /// - Throws: ``FlowError`` naming the setting or tensor that is missing or cannot work.
    init(fileSettings: BaseSettings) throws
}

/// The base distributions a model file can name, and their JSON.
public enum BaseCoding {
    /// Every base type a model file can hold.
    nonisolated(unsafe) public static let types: [any SerializableBase.Type] = [
        Normal.self, StudentT.self, Uniform.self, DiagonalNormal.self, ConditionalDiagonalNormal.self, GaussianMixture.self,
    ]

    /// The names of ``types``, for messages.
    static var typeNames: String { types.map { $0.typeName }.joined(separator: ", ") }

    /// The `base` metadata of a model file holding `base`.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` for a base no model file can hold.
    public static func json(_ base: any Distribution) throws -> String {
        guard let base = base as? any SerializableBase else {
            throw FlowError.invalidConfiguration(
                "a \(type(of: base)) base cannot be saved; model files hold \(typeNames)")
        }
        // The type first, then the settings by name, spaced as Python's json.dumps spaces them:
        // a Normal base reads {"type": "Normal", "eventRank": 1}, byte for byte what this library
        // and flows_torch have always written.
        let fields = [("type", type(of: base).typeName as Any)] + base.fileSettings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return try "{" + fields.map { key, value in
            let text = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
            return "\"\(key)\": " + String(decoding: text, as: UTF8.self)
        }.joined(separator: ", ") + "}"
    }

    /// The base a model file's `base` metadata describes, of the shapes of its `base.` tensors
    /// and with their dtype, ready for them to be loaded.
    /// - Parameters:
    ///   - text: the `base` metadata, a JSON object naming the type and its settings.
    ///   - tensors: the file's tensors; the base's are those named `base.…`.
    ///   - storedValues: the number of values the file holds, which bounds what the settings
    ///     may allocate (a hidden size of 10⁹ is refused before anything is allocated).
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` naming what is wrong.
    public static func base(fromJSON text: String, tensors: [String: Tensor], storedValues: Int) throws -> any SerializableBase {
        guard text.utf8.count <= 1 << 16,
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw FlowError.invalidConfiguration("the base is not a JSON object")
        }
        guard let name = object["type"] as? String else { throw FlowError.invalidConfiguration("the base names no type") }
        guard let type = types.first(where: { $0.typeName == name }) else {
            throw FlowError.invalidConfiguration(
                "unsupported base distribution '\(FileError.clip(name))' (model files hold \(typeNames)")
        }
        var baseTensors: [String: Tensor] = [:]
        for (key, value) in tensors where key.hasPrefix("base.") { baseTensors[String(key.dropFirst(5))] = value }
        return try type.init(fileSettings: BaseSettings(typeName: name, values: object, tensors: baseTensors, storedValues: storedValues))
    }
}
