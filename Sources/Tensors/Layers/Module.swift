/// State that a module keeps and a model file saves but no optimizer updates: a random
/// permutation, the running statistics of a batch normalisation.
public final class Buffer: @unchecked Sendable {
    /// The current value (never recorded on the tape).
    public var value: Tensor {
        get { data }
        set { data = newValue.detached() }
    }
    private var data: Tensor

    /// A buffer holding `value`, detached from any graph.
    /// - Parameter value: the initial state; model files save and restore it under the buffer's path.
    public init(_ value: Tensor) { data = value.detached() }
}

/// One direct member of a ``Module``.
public enum ModuleMember {
    /// A trainable tensor, returned by ``Module/parameters``.
    case parameter(Parameter)
    /// Saved state that no optimizer updates.
    case buffer(Buffer)
    /// A child module, whose members are named below this member's name.
    case module(any Module)
}

/// A learnable piece with named parameters, buffers and child modules, forming a tree whose
/// dotted paths (`0.conditioner.layers.1.weight`) name every tensor: PyTorch's `state_dict`
/// convention, and what a model file stores.
///
/// A class becomes a module by conforming; its members are found by reflection over its stored
/// properties, so no module lists its parameters by hand:
///
/// - a ``Parameter``, ``Buffer`` or module property is a member named after the property in
///   snake case (`logScale` → `log_scale`);
/// - an array of modules contributes `name.0`, `name.1`, …; an optional member counts when
///   present;
/// - properties of other types, and those whose names start with `_`, are not members (caches,
///   masks, settings).
///
/// A container whose children are its whole meaning (a composition, an inversion) may list its
/// ``members`` itself; an empty name makes a child transparent (its members keep their names).
///
/// ```swift
/// final class Scale: Module {
///     let logScale = Parameter(.zeros([3]))     // "log_scale"
///     let inner = Linear(3, 3, generator: &g)   // "inner.weight", "inner.bias"
/// }
/// ```
public protocol Module: AnyObject {
    /// The direct members with their names; by default, found by reflection.
    var members: [(name: String, member: ModuleMember)] { get }
    /// Called after new buffer values were loaded into this module (from a model file), to
    /// check them and rebuild what derives from them.
    /// - Throws: when a buffer holds a value the module cannot use.
    func buffersDidLoad() throws
    /// Called when the module tree is switched between training and evaluation
    /// (``Module/setTraining(_:)``); modules whose behaviour differs keep the flag.
    func trainingModeDidChange(_ isTraining: Bool)
    /// Brings what this module derives from its parameters (a cache that passes share, such as
    /// a masked network's weight layout) up to date for passes in `dtype`.
    ///
    /// ``refreshDerivedValues(of:for:)`` calls it on every module of a tree (``modules``, kept by
    /// a caller that refreshes every step) before passes that run concurrently over the same parameters (the slices of a split training step), so that the
    /// work is done once, with the tree's modules spread over the threads, instead of by the first
    /// pass while the others wait. A module must still bring its values up to date on use.
    func refreshDerivedValues(for dtype: DType)
}

extension Module {
    /// The stored properties that are parameters, buffers or modules (arrays of modules included),
    /// named in snake case; properties whose names start with `_` are skipped.
    public var members: [(name: String, member: ModuleMember)] {
        Mirror(reflecting: self).children.flatMap { child -> [(name: String, member: ModuleMember)] in
            guard let label = child.label, !label.hasPrefix("_"), !label.hasPrefix("$") else { return [] }
            return moduleMembers(named: snakeCase(label), child.value)
        }
    }

    /// Does nothing: a module without derived state accepts any loaded buffer.
    public func buffersDidLoad() throws {}
    /// Does nothing: most modules behave the same in training and evaluation.
    public func trainingModeDidChange(_ isTraining: Bool) {}
    /// Does nothing: most modules derive nothing from their parameters.
    public func refreshDerivedValues(for dtype: DType) {}

    /// Every parameter in the tree under its dotted path, in declaration order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var result: [(name: String, parameter: Parameter)] = []
        visit(prefix: "") { name, member in if case .parameter(let p) = member { result.append((name, p)) } }
        return result
    }

    /// Every buffer in the tree under its dotted path.
    public var namedBuffers: [(name: String, buffer: Buffer)] {
        var result: [(name: String, buffer: Buffer)] = []
        visit(prefix: "") { name, member in if case .buffer(let b) = member { result.append((name, b)) } }
        return result
    }

    /// The trainable parameters of the whole tree.
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    /// This module and every module below it, parents first.
    public var modules: [any Module] {
        var result: [any Module] = [self]
        visit(prefix: "") { _, member in if case .module(let m) = member { result.append(m) } }
        return result
    }

    /// Switches every module in the tree to training (`true`) or evaluation (`false`).
    public func setTraining(_ isTraining: Bool) {
        for module in modules { module.trainingModeDidChange(isTraining) }
    }

    /// Calls `body` with every member below this module and its dotted path, parents first.
    private func visit(prefix: String, _ body: (String, ModuleMember) -> Void) {
        for (name, member) in members {
            let path = prefix.isEmpty ? name : name.isEmpty ? prefix : "\(prefix).\(name)"
            body(path, member)
            if case .module(let child) = member { child.visit(prefix: path, body) }
        }
    }
}

/// Calls ``Module/refreshDerivedValues(for:)`` on each of `modules`, spread over the threads.
public func refreshDerivedValues(of modules: [any Module], for dtype: DType) {
    Parallel.forEach(modules.count) { modules[$0].refreshDerivedValues(for: dtype) }
}

/// The members a stored property contributes (see ``Module``).
private func moduleMembers(named name: String, _ value: Any) -> [(name: String, member: ModuleMember)] {
    switch value {
    case let p as Parameter: [(name, .parameter(p))]
    case let b as Buffer: [(name, .buffer(b))]
    case let m as any Module: [(name, .module(m))]
    case let modules as [any Module]: modules.enumerated().map { ("\(name).\($0)", .module($1)) }
    default: []
    }
}

/// `logScale` → `log_scale`: Swift property names in the snake case of PyTorch's state dicts.
private func snakeCase(_ name: String) -> String {
    var result = "", previousIsLowercase = false
    for character in name {
        if character.isUppercase {
            if previousIsLowercase { result.append("_") }
            result += character.lowercased()
            previousIsLowercase = false
        } else {
            result.append(character)
            previousIsLowercase = character.isLowercase || character.isNumber
        }
    }
    return result
}
