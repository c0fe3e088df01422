/// Whether tensor operations record themselves for differentiation on the current task or thread.
public enum GradientMode {
    /// Whether operations record themselves, per task: `true` by default, `false` inside
    /// ``withoutGradients(_:)``. A task-local, so concurrent tasks choose independently.
    @TaskLocal public static var isEnabled: Bool = true
}

/// Runs `body` without recording operations: nothing computed inside requires gradients.
///
/// Use it for sampling, evaluation and parameter updates.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradientMode.$isEnabled.withValue(false) { try body() }
}

/// One recorded operation (or a leaf) of the dynamic computation graph.
///
/// A node keeps its parents and a closure that maps the gradient of its output to the gradients
/// of its inputs. ``Tensor/backward(_:retainGraph:)`` visits every node reachable from the loss
/// once, in reverse topological order, so a backward pass costs time linear in the graph size.
@usableFromInline
final class GradNode {
    /// The operation's name, for error messages.
    let name: String
    /// The shape of the tensor this node produced; gradients must have it.
    let shape: [Int]
    /// The nodes of the inputs; `nil` where that input needs no gradient.
    let parents: [GradNode?]
    /// Maps the output gradient to one gradient per parent (`nil` for those not needed).
    var backwardFunction: ((Tensor) -> [Tensor?])?
    /// The accumulated gradient: kept on leaves, transient on interior nodes.
    var grad: Tensor?
    /// A leaf has no parents: a parameter or a tensor marked with `requiringGradient()`.
    let isLeaf: Bool
    /// Set once the backward closure has been released by a backward pass.
    var released = false

    init(leafShape shape: [Int]) {
        self.name = "leaf"
        self.shape = shape
        self.parents = []
        self.isLeaf = true
    }

    init(name: String, shape: [Int], parents: [GradNode?], backward: @escaping (Tensor) -> [Tensor?]) {
        self.name = name
        self.shape = shape
        self.parents = parents
        self.backwardFunction = backward
        self.isLeaf = false
    }

    func accumulate(_ g: Tensor) {
        precondition(
            g.shape == shape,
            "gradient of shape \(g.shape) reached '\(name)', whose output has shape \(shape)")
        if grad == nil {
            grad = g.detached()
        } else {
            grad!.addInPlace(g)
        }
    }
}

extension Tensor {
    /// Whether gradients flow back through this tensor.
    public var requiresGradient: Bool { gradNode != nil }

    /// The same values, cut off from the graph: no gradient flows through the result.
    public func detached() -> Tensor {
        Tensor(storage: storage, shape: shape)
    }

    /// The same values as a new leaf of the graph: after `backward()`, ``grad`` holds the
    /// derivative of the loss with respect to this tensor.
    public func requiringGradient() -> Tensor {
        Tensor(storage: storage, shape: shape, gradNode: GradNode(leafShape: shape))
    }

    /// The gradient accumulated in this leaf by `backward()`, or `nil` if none reached it.
    public var grad: Tensor? { gradNode?.isLeaf == true ? gradNode?.grad : nil }

    /// Records `output` as computed from `inputs` by an operation whose vector-Jacobian product is
    /// `backward(outputGradient, needsGradient)`; returns `output` unchanged when no input requires
    /// a gradient or recording is off.
    @usableFromInline
    static func record(
        _ name: String, _ output: Tensor, _ inputs: [Tensor],
        backward: @escaping (_ grad: Tensor, _ needs: [Bool]) -> [Tensor?]
    ) -> Tensor {
        guard recordsOperation(on: inputs) else { return output }
        let parents = inputs.map(\.gradNode)
        let needs = parents.map { $0 != nil }
        var result = output
        result.gradNode = GradNode(name: name, shape: output.shape, parents: parents) { g in
            backward(g, needs)
        }
        return result
    }

    /// Back-propagates from this tensor: every leaf it depends on accumulates d(self)/d(leaf)·seed.
    ///
    /// - Parameters:
    ///   - seed: the gradient of the final objective with respect to this tensor; may be omitted
    ///     for a tensor with one element (then it is 1).
    ///   - retainGraph: keep the recorded operations so that `backward` can run through them again.
    public func backward(_ seed: Tensor? = nil, retainGraph: Bool = false) {
        guard let root = gradNode else {
            preconditionFailure(
                "backward() on a tensor that does not require gradients: none of its inputs is a "
                    + "Parameter or a tensor made with requiringGradient(), or it was computed inside "
                    + "withoutGradients")
        }
        let seed = seed ?? {
            precondition(count == 1, "backward() without a seed needs a one-element tensor, not shape \(shape)")
            return Tensor.ones(shape, dtype: dtype)
        }()
        precondition(seed.shape == shape, "seed shape \(seed.shape) differs from tensor shape \(shape)")
        precondition(seed.dtype == dtype, "seed dtype \(seed.dtype) differs from tensor dtype \(dtype)")

        Self.propagate(from: root, seed: seed, retainGraph: retainGraph) { leaf, g in leaf.accumulate(g) }
    }

    /// Visits every node reachable from `root` once, in reverse topological order, passing each
    /// node's gradient to its parents; a leaf's gradient goes to `intoLeaf` instead of being
    /// stored, so that concurrent passes over separate graphs can keep their leaves' gradients
    /// apart (see ``backward(parts:_:)``).
    static func propagate(
        from root: GradNode, seed: Tensor, retainGraph: Bool, intoLeaf: (GradNode, Tensor) -> Void
    ) {
        // Iterative depth-first post-order: every node after all the nodes it depends on.
        var order: [GradNode] = []
        var visited: Set<ObjectIdentifier> = [ObjectIdentifier(root)]
        var stack: [(node: GradNode, next: Int)] = [(root, 0)]
        while let (node, next) = stack.popLast() {
            if next < node.parents.count {
                stack.append((node, next + 1))
                if let parent = node.parents[next], visited.insert(ObjectIdentifier(parent)).inserted {
                    stack.append((parent, 0))
                }
            } else {
                order.append(node)
            }
        }

        withoutGradients {
            if root.isLeaf {
                intoLeaf(root, seed)
                return
            }
            root.accumulate(seed)
            for node in order.reversed() where !node.isLeaf {
                guard let g = node.grad else { continue }
                guard let function = node.backwardFunction else {
                    preconditionFailure(
                        "backward through '\(node.name)' a second time: its saved values were freed; "
                            + "pass retainGraph: true to the first backward()")
                }
                let grads = function(g)
                for (parent, parentGrad) in zip(node.parents, grads) {
                    guard let parent, let parentGrad else { continue }
                    if parent.isLeaf { intoLeaf(parent, parentGrad) } else { parent.accumulate(parentGrad) }
                }
                node.grad = nil
                if !retainGraph {
                    node.backwardFunction = nil
                    node.released = true
                }
            }
        }
    }

    /// Whether an operation on `inputs` is recorded: gradients are enabled and some input
    /// requires one. Fused kernels use it to skip the work only their backward pass needs.
    public static func recordsOperation(on inputs: [Tensor]) -> Bool {
        GradientMode.isEnabled && inputs.contains { $0.gradNode != nil }
    }

    /// Records a custom operation: `output` was computed (without recording) from `inputs`, and
    /// `backward(outputGradient, needsGradient)` returns one gradient per input (`nil` where not
    /// needed). Use it for fused kernels with hand-written derivatives; check them with
    /// ``gradCheck(_:epsilon:seed:_:)``.
    public static func recordOperation(
        _ name: String, output: Tensor, inputs: [Tensor],
        backward: @escaping (_ grad: Tensor, _ needs: [Bool]) -> [Tensor?]
    ) -> Tensor {
        record(name, output.detached(), inputs, backward: backward)
    }

    /// Adds `other` (same shape and dtype) into this tensor's buffer.
    @usableFromInline
    mutating func addInPlace(_ other: Tensor) {
        precondition(shape == other.shape && dtype == other.dtype,
            "in-place add of \(other.shape) \(other.dtype) into \(shape) \(dtype)")
        switch dtype {
        case .float32: addInPlace(other, Float.self)
        case .float64: addInPlace(other, Double.self)
        }
    }

    private mutating func addInPlace<T: TensorScalar>(_ other: Tensor, _: T.Type) {
        other.withUnsafeBufferPointer(as: T.self) { src in
            withUnsafeMutableBufferPointer(as: T.self) { dst in
                for i in 0..<dst.count { dst[i] += src[i] }
            }
        }
    }
}

/// A trainable tensor: a leaf of the graph with a stable identity, updated in place by optimizers.
///
/// Models hold parameters; the tensors they compute from ``value`` record the dependency, and
/// `loss.backward()` accumulates into ``grad`` until ``zeroGrad()``.
///
/// ```swift
/// let w = Parameter(Tensor([1, 2, 3] as [Float]))
/// let loss = (w.value * w.value).sum()       // Σ w²
/// loss.backward()
/// // w.grad holds 2w = [2, 4, 6]
/// ```
public final class Parameter: @unchecked Sendable {
    private let leaf: GradNode
    private var data: Tensor
    /// A name for messages and model files (set by the owning module).
    public var name: String
    /// Changes whenever the value does (assignment, ``update(_:)``, an optimizer's step), so
    /// that tensors derived from the value (a masked weight) can be kept until it changes.
    public private(set) var version: UInt64 = 0

    /// A parameter holding a copy of `value`, detached from any graph it came from.
    /// - Parameters:
    ///   - value: the initial value; its shape and dtype are the parameter's for its whole life.
    ///   - name: a name for error messages and model files; a ``Module`` tree gives each
    ///     parameter its dotted path when it saves, so this is usually left empty.
    public init(_ value: Tensor, name: String = "") {
        self.data = value.detached()
        self.leaf = GradNode(leafShape: value.shape)
        self.name = name
    }

    /// The current value, connected to the graph.
    public var value: Tensor {
        get { Tensor(storage: data.storage, shape: data.shape, gradNode: leaf) }
        set {
            precondition(
                newValue.shape == data.shape,
                "parameter '\(name)' has shape \(data.shape); cannot assign shape \(newValue.shape)")
            data = newValue.detached()
            version &+= 1
        }
    }

    /// The shape of the value, fixed when the parameter is made.
    public var shape: [Int] { data.shape }
    /// The element type of the value.
    public var dtype: DType { data.dtype }
    /// The number of elements of the value (what an optimizer keeps per moment).
    public var count: Int { data.count }

    /// The gradient accumulated since the last ``zeroGrad()``, or `nil` if none.
    public var grad: Tensor? {
        get { leaf.grad }
        set {
            if let newValue { precondition(newValue.shape == data.shape, "gradient shape \(newValue.shape) differs from parameter shape \(data.shape)") }
            leaf.grad = newValue
        }
    }

    /// Forgets the accumulated gradient.
    public func zeroGrad() { leaf.grad = nil }

    /// Mutates the value in place (copying first only if another tensor shares its buffer).
    public func update<R>(_ body: (inout Tensor) throws -> R) rethrows -> R {
        defer { version &+= 1 }
        return try body(&data)
    }
}
