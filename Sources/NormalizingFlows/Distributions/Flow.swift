/// A normalizing flow: a base distribution pushed through a bijector, y = f(x), x ~ base.
///
/// log p(y) = log p_base(f⁻¹(y)) + log |det ∂f⁻¹/∂y|; a conditional flow passes its context to
/// the bijector and to the base (which ignores it unless it is conditional, like
/// ``ConditionalDiagonalNormal``). The flow is an ordinary ``Distribution``
/// and the root of a module tree whose children are `base` (when the base is a module, as
/// ``Normal`` is) and `bijector`: its ``parameters`` and ``state()`` are that tree's, named by
/// dotted paths (`bijector.0.conditioner.layers.0.weight`, `base.loc`), as a model file stores them.
///
/// ```swift
/// let flow = try Flow(base: Normal.standard([2]), plan: AffineAutoregressive())
/// let optimizer = Adam(flow.parameters, learningRate: 5e-2)
/// for _ in 0...500 {
///     try optimizer.step(minimizingNegativeLogLikelihoodOf: flow, target.sample(1000))
/// }
/// let (samples, logProbs) = try flow.sampleAndLogProb(10_000)
/// ```
public final class Flow: Distribution, Module {
    /// The base distribution p_base that the bijector transforms; it fixes the event shape and dtype.
    public let base: any Distribution
    /// The plan the bijector was made from.
    public let plan: any BijectorPlan
    /// The concrete bijector, made for the base's event shape and dtype.
    public let bijector: any Bijector
    /// The length of the context vector (0 for an unconditional flow).
    public let contextSize: Int
    /// q(u | k), the learned noise of variational dequantization, when the flow models whole
    /// numbers that way (``VariationalDequantization``); its parameters follow the bijector's in
    /// ``parameters`` and ``state()``, under `dequantizer.`. `nil` otherwise.
    public let dequantizer: VariationalDequantizer?
    /// How a data file's rows map onto the flow (its context columns, its uniformly dequantized
    /// columns), when known: `flows fit` records it, and a model file keeps it (checked against
    /// the flow on saving and loading). `nil` by default.
    public var dataLayout: DataLayout?
    /// The trainable parameters of the flow's module tree, each named by its dotted path
    /// (`Module/namedParameters`).
    public private(set) var parameters: [Parameter] = []
    /// The total number of trainable scalars.
    public private(set) var parameterCount = 0

    /// Whether the flow is being trained: ``BatchNorm`` then normalises with the batch's
    /// statistics and updates its running averages, and ``ActNorm`` initialises itself from the
    /// first batch. Off (evaluation) by default, where every bijector is an exact bijection; the
    /// training step (`optimizer.step(minimizingNegativeLogLikelihoodOf:)`)
    /// turns it on for its own evaluation and restores it.
    public var isTraining = false {
        didSet { if isTraining != oldValue { for module in _moduleTree { module.trainingModeDidChange(isTraining) } } }
    }
    /// The module tree, walked (by reflection) once: each training step switches its mode
    /// twice and refreshes its derived values.
    private(set) var _moduleTree: [any Module] = []

    /// Makes `plan` concrete for `base` (its event shape and dtype) with parameters drawn from
    /// a generator seeded with `seed`.
    ///
    /// - Parameters:
    ///   - base: the base distribution; it fixes the event shape and dtype.
    ///   - plan: the bijector's plan.
    ///   - contextSize: the length of the context vector (0: unconditional).
    ///   - dequantization: for whole-number data, a variational dequantizer q(u | k) trained
    ///     with the flow (see ``VariationalDequantization``); `nil` (the default) for none.
    ///   - seed: seeds the parameters.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` when the plan (or the dequantizer) cannot
    ///   work for this base.
    public init(base: any Distribution, plan: any BijectorPlan, contextSize: Int = 0,
                dequantization: VariationalDequantization? = nil, seed: UInt64 = 0) throws {
        guard contextSize >= 0 else { throw FlowError.invalidConfiguration("context size must be non-negative, got \(contextSize)") }
        guard base.contextSize == 0 || base.contextSize == contextSize else {
            throw FlowError.invalidConfiguration("the base takes a context of size \(base.contextSize), but the flow's context size is \(contextSize)")
        }
        self.base = base
        self.plan = plan
        self.contextSize = contextSize
        var generator = RandomGenerator(seed: seed)
        self.bijector = try plan.makeBijector(
            for: BijectorSpec(eventShape: base.eventShape, contextSize: contextSize, dtype: base.dtype),
            generator: &generator)
        dequantizer = try dequantization.map {
            try VariationalDequantizer($0, eventShape: base.eventShape, contextSize: contextSize, dtype: base.dtype, seed: seed &+ 0x9E37_79B9)
        }
        let named = namedParameters
        for (name, parameter) in named { parameter.name = name }
        parameters = named.map(\.parameter)
        parameterCount = parameters.reduce(0) { $0 + $1.count }
        _moduleTree = modules
    }

    /// The earlier spelling of ``init(base:plan:contextSize:dequantization:seed:)``: its argument was always a plan.
    @available(*, deprecated, renamed: "init(base:plan:contextSize:dequantization:seed:)")
    public convenience init(base: any Distribution, bijector plan: any BijectorPlan, contextSize: Int = 0, seed: UInt64 = 0) throws {
        try self.init(base: base, plan: plan, contextSize: contextSize, seed: seed)
    }

    public var eventShape: [Int] { base.eventShape }
    public var batchShape: [Int] { base.batchShape }
    public var dtype: DType { base.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        let context = try checkedContext(context)
        let x = try base.rsample(n, context: context, generator: &generator)
        return try bijector.forward(x, context: context).y
    }

    /// log p(y) by the inverse pass.
    ///
    /// Far outside the region a flow was trained on, its inverse can overflow the dtype's range
    /// (a scale of e⁶⁰ applied twice); the overflow then turns into ∞ or NaN in later layers.
    /// With finite parameters and finite input nothing else produces them, so those rows get
    /// log p = −∞: a density below what the dtype can represent. (The input is checked here,
    /// once; the bijectors inside check shapes only.)
    /// - Throws: ``FlowError`` for input of the wrong shape or dtype, NaN or ±∞ in the input, or
    ///   values outside the flow's support.
    public func logProb(_ y: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(y)
        try bijector.codomain.check(y, "value outside the support of the flow")
        let context = try checkedContext(context)
        var (x, logDet) = try bijector.inverse(y, context: context)
        if !x.isFinite {
            // The base scores finite stand-ins for the overflowed rows, whose log-determinant
            // becomes NaN so that they are scored −∞ below.
            let values = x.doubles, event = Swift.max(eventShape.reduce(1, *), 1)
            let overflowedRows = stride(from: 0, to: values.count, by: event).map { start in
                values[start..<(start + event)].allSatisfy(\.isFinite) ? 0.0 : 1.0
            }
            x = Tensor(values.map { $0.isFinite ? $0 : 0 }, shape: x.shape, dtype: x.dtype)
            logDet = `where`(Tensor(overflowedRows, shape: logDet.shape, dtype: logDet.dtype),
                             Tensor.full(logDet.shape, .nan, dtype: logDet.dtype), logDet)
        }
        let result = try base.logProb(x, context: context) + logDet
        let overflowed = result.isNotEqual(to: result)   // 1 where NaN
        guard overflowed.sum().item > 0 else { return result }
        return `where`(overflowed, Tensor.full(result.shape, -.infinity, dtype: result.dtype), result)
    }

    public func rsampleAndLogProb(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> (samples: Tensor, logProbs: Tensor) {
        let context = try checkedContext(context)
        let x = try base.rsample(n, context: context, generator: &generator)
        let baseLogProb = try base.logProb(x, context: context)
        let (y, logDet) = try bijector.forward(x, context: context)
        return (y, baseLogProb - logDet)
    }

    private func checkedContext(_ context: Tensor?) throws -> Tensor? {
        guard let context else {
            if contextSize > 0 { throw FlowError.shapeMismatch("this flow is conditional: pass a context of size \(contextSize)") }
            return nil
        }
        guard contextSize > 0 else { throw FlowError.shapeMismatch("this flow takes no context") }
        guard context.shape.last == contextSize, context.dtype == dtype else {
            throw FlowError.shapeMismatch("context must have shape [..., \(contextSize)] and dtype \(dtype), got \(context.shape) \(context.dtype)")
        }
        guard context.isFinite else { throw FlowError.nonFiniteValues("the context contains NaN or ±∞") }
        return context
    }

    // MARK: State

    /// Every parameter and buffer by its dotted path in the module tree: what a model file stores.
    public func state() -> [String: Tensor] {
        var state: [String: Tensor] = [:]
        for (name, p) in namedParameters { state[name] = p.value.detached() }
        for (name, b) in namedBuffers { state[name] = b.value }
        return state
    }

    /// Loads a state saved from a flow with the same plan. Nothing changes when it throws.
    /// - Throws: ``FlowError/stateMismatch(_:)`` naming the missing, extra or mis-shaped entry,
    ///   or a buffer whose value the flow cannot use (a permutation that is not one).
    public func load(state: [String: Tensor]) throws {
        let parameters = namedParameters
        let buffers = namedBuffers
        let expected = Set(parameters.map(\.name) + buffers.map(\.name))
        if let extra = Set(state.keys).subtracting(expected).sorted().first {
            throw FlowError.stateMismatch("the state has an entry '\(extra)' that this flow does not")
        }
        func entry(_ name: String, shape: [Int]) throws -> Tensor {
            guard let value = state[name] else { throw FlowError.stateMismatch("the state lacks '\(name)'") }
            guard value.shape == shape else {
                throw FlowError.stateMismatch("'\(name)' has shape \(value.shape) in the state and \(shape) in the flow")
            }
            return value
        }
        let parameterValues = try parameters.map { try entry($0.name, shape: $0.parameter.shape).converted(to: $0.parameter.dtype) }
        let bufferValues = try buffers.map { try entry($0.name, shape: $0.buffer.value.shape).converted(to: $0.buffer.value.dtype) }
        let kept = buffers.map(\.buffer.value)
        do {
            for ((_, buffer), value) in zip(buffers, bufferValues) { buffer.value = value }
            for module in _moduleTree { try module.buffersDidLoad() }
        } catch {
            for ((_, buffer), value) in zip(buffers, kept) { buffer.value = value }
            for module in _moduleTree { try? module.buffersDidLoad() }
            throw error
        }
        for ((_, parameter), value) in zip(parameters, parameterValues) { parameter.value = value }
    }
}
