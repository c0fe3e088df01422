import Foundation

/// What a model file says about its base, for ``SerializableBase/init(fileSettings:)``: the
/// settings of its `base` metadata and its tensors under `base.` (without the prefix), read
/// with checks that name the base and the setting when it is missing or cannot work.
public struct BaseSettings {
    /// The base's type name, for messages.
    public let typeName: String
    let values: [String: Any]
    let tensors: [String: Tensor]
    /// The number of values the whole file holds: what the settings may allocate at most.
    public let storedValues: Int

    init(typeName: String, values: [String: Any], tensors: [String: Tensor], storedValues: Int) {
        self.typeName = typeName
        self.values = values
        self.tensors = tensors
        self.storedValues = storedValues
    }

    private func fail(_ message: String) -> FlowError {
        FlowError.invalidConfiguration("the \(typeName) base's \(message)")
    }

    /// Whether a JSON value is `true` or `false`, which Foundation also casts to the numbers 1 and 0:
    /// a boolean is an instance of the class of `NSNumber(value: true)`, a number is not.
    private func isBoolean(_ value: Any?) -> Bool {
        guard let value else { return false }
        return type(of: value as AnyObject) == type(of: NSNumber(value: true) as AnyObject)
    }

    /// The whole number `key` in `range`.
    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let value = values[key] as? Int, !isBoolean(values[key]) else { throw fail("'\(key)' is missing or not a whole number") }
        guard range.contains(value) else { throw fail("'\(key)' is \(value), not in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// The finite number `key`, checked by `isValid` (described by `requirement` in the message).
    public func double(_ key: String, _ requirement: String, _ isValid: (Double) -> Bool) throws -> Double {
        guard let value = (values[key] as? NSNumber)?.doubleValue, !isBoolean(values[key]), value.isFinite else {
            throw fail("'\(key)' is missing or not a finite number")
        }
        guard isValid(value) else { throw fail("'\(key)' is \(value); it must be \(requirement)") }
        return value
    }

    /// The list of whole numbers `key`, each in `range`, at most `maximumCount` of them.
    public func ints(_ key: String, in range: ClosedRange<Int>, maximumCount: Int) throws -> [Int] {
        guard let list = values[key] as? [Any], list.count <= maximumCount else {
            throw fail("'\(key)' is missing or not a list of at most \(maximumCount) whole numbers")
        }
        return try list.map { item in
            guard let value = item as? Int, !isBoolean(item), range.contains(value) else {
                throw fail("'\(key)' holds \(item), not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
    }

    /// The string `key`, one of `choices`.
    public func string(_ key: String, oneOf choices: [String]) throws -> String {
        guard let value = values[key] as? String, choices.contains(value) else {
            throw fail("'\(key)' must be one of \(choices.joined(separator: ", "))")
        }
        return value
    }

    /// The file's tensor `base.<name>`, whose shape and dtype the base takes; its values are
    /// checked once loaded.
    public func tensor(_ name: String, rank: ClosedRange<Int>? = nil) throws -> Tensor {
        guard let tensor = tensors[name] else { throw fail("tensor 'base.\(name)' is missing") }
        if let rank, !rank.contains(tensor.rank) {
            throw fail("tensor 'base.\(name)' has shape \(tensor.shape), not of rank \(rank.lowerBound)...\(rank.upperBound)")
        }
        return tensor
    }

    /// The file's tensor `base.<name>` that gives a base its shape and dtype, and the `eventRank`
    /// setting: how many of its trailing dimensions form one event.
    public func shapeTensorAndEventRank(_ name: String) throws -> (tensor: Tensor, eventRank: Int) {
        let value = try tensor(name)
        return (value, try int("eventRank", in: 0...value.rank))
    }

    /// The file's tensor `base.<name>` of logarithms of scales, whose values must keep the scale
    /// and its reciprocal finite in the tensor's dtype: within ± the log of its largest value
    /// (88.7 for Float32).
    public func logScale(_ name: String) throws -> Tensor {
        let value = try tensor(name)
        let limit = Foundation.log(value.dtype == .float32 ? Double(Float.greatestFiniteMagnitude) : Double.greatestFiniteMagnitude)
        guard value.doubles.allSatisfy({ Swift.abs($0) < limit }) else {
            throw fail("'base.\(name)' must lie within ±\(String(format: "%.1f", limit)) so that its scales are finite and positive")
        }
        return value
    }

    /// Refuses settings that would allocate more than the file holds.
    public func checkAllocation(_ values: Double, _ what: String) throws {
        guard values <= Double(storedValues) else {
            throw fail("\(what) needs \(String(format: "%.3g", values)) values, but the file holds only \(storedValues)")
        }
    }
}
