/// The radial flow of Rezende & Mohamed (2015): y = x + β·h(r)·(x − z₀) with r = ‖x − z₀‖,
/// h = 1/(α + r), on events flattened to vectors of size D;
/// log |det J| = (D − 1)·log(1 + βh) + log(1 + βh − βr/(α + r)²).
///
/// α = softplus(α̃) > 0 and β = −α + softplus(β̃) ≥ −α keep it invertible (the paper's
/// appendix). Both directions are closed-form and O(D): the inverse solves
/// r² + p·r − α‖y − z₀‖ = 0, p = α + β − ‖y − z₀‖, for the radius r ≥ 0, as
/// r = 2α‖y − z₀‖ / (√(p² + 4α‖y − z₀‖) + p) when p ≥ 0 and r = (√(p² + 4α‖y − z₀‖) − p)/2
/// otherwise: the two forms of the same root that never subtract nearly equal numbers (the
/// textbook (−p + √…)/2 loses every digit once p² ≫ 4α‖y − z₀‖, near z₀ or for β ≫ α).
///
/// Made for variational inference (Rezende & Mohamed 2015); one radial bump per layer fits data
/// poorly, and ``MAF`` or ``NSF`` are the families for density estimation.
///
/// **Conditional.** In a flow with a context (Pyro's `ConditionalRadial`), z₀, α̃ and β̃ are
/// shifted by a dense network of the context (``contextNetwork``): z₀(c) = z₀ + g_z(c) and so
/// on, constrained as above, so each context gets a valid radial map. The network starts at
/// zero: a new conditional layer is the unconditional one.
public struct Radial: BijectorPlan, SerializablePlan {
    /// The hidden sizes and activation of the network from the context to the shifts of z₀, α̃
    /// and β̃, in a flow with a context; `nil` (the default) for two hidden layers of 10·D units.
    /// Unused without a context.
    public var contextNetwork: CouplingNetwork?

    /// A radial layer y = x + β·h(α, r)·(x − z₀), r = ‖x − z₀‖, with β constrained to β ≥ −α.
    ///
    /// - Parameter contextNetwork: the network from a context to the shifts of the layer's
    ///   parameters; `nil` for two hidden layers of 10·D units.
    public init(contextNetwork: CouplingNetwork? = nil) { self.contextNetwork = contextNetwork }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try RadialBijector(spec: spec, contextNetwork: contextNetwork, generator: &generator)
    }
}

final class RadialBijector: Bijector {
    let eventShape: [Int]
    let center: Parameter, alpha: Parameter, beta: Parameter
    /// With a context: the network that shifts z₀, α̃ and β̃.
    let contextNetwork: ContextParameterNetwork?
    private var size: Int { center.shape[0] }

    init(spec: BijectorSpec, contextNetwork: CouplingNetwork?, generator: inout RandomGenerator) throws {
        eventShape = spec.eventShape
        let d = spec.eventSize
        let bound = 1 / Double(d).squareRoot()
        center = Parameter(.randn([d], generator: &generator, dtype: spec.dtype), name: "center")
        alpha = Parameter(.uniform([], low: -bound, high: bound, generator: &generator, dtype: spec.dtype), name: "alpha")
        beta = Parameter(.uniform([], low: -bound, high: bound, generator: &generator, dtype: spec.dtype), name: "beta")
        self.contextNetwork = spec.contextSize > 0
            ? try ContextParameterNetwork(contextSize: spec.contextSize, shifting: [[d], [], []],
                                          shape: contextNetwork ?? .contextNetworkDefault(eventSize: d), dtype: spec.dtype, generator: &generator)
            : nil
    }

    /// z₀, α and β for the context: z₀ `leading + [D]`, α and β `leading`, where `leading` is
    /// [] without a context or for a one-row context.
    private func constrained(context: Tensor?, eventsLeading: [Int]) throws -> (center: Tensor, alpha: Tensor, beta: Tensor) {
        let raw = try contextNetwork.shifting([center.value, alpha.value, beta.value], for: context, eventsLeading: eventsLeading)
        let a = raw[1].softplus()
        return (raw[0], a, raw[2].softplus() - a)
    }

    /// ‖v‖ along the last axis, with a floor inside the root so the gradient at v = 0 is finite.
    private func norm(_ v: Tensor) -> Tensor { (v.square().sum(alongAxis: -1) + 1e-30).sqrt() }

    private func logDet(_ r: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let h = (a + r).reciprocal()
        return ((b * h + 1).log() * Double(size - 1)) + (b * a * h.square() + 1).log()
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let (center, a, b) = try constrained(context: context, eventsLeading: leading)
        let diff = x.reshaped(to: leading + [size]) - center
        let r = norm(diff)
        let y = diff * (b / (a + r) + 1).unsqueezed(axis: -1) + center
        return (y.reshaped(to: x.shape), logDet(r, a, b))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let (center, a, b) = try constrained(context: context, eventsLeading: leading)
        let diff = y.reshaped(to: leading + [size]) - center
        let ry = norm(diff)
        let p = a + b - ry
        // q = √(p² + 4α‖y − z₀‖) + |p| has no cancellation and is positive (the floor keeps the
        // root's gradient finite), so neither branch divides by zero, not even the one `where`
        // discards (its gradient must stay finite to be multiplied by 0).
        let q = (p.square() + 4 * a * ry + 1e-30).sqrt() + p.abs()
        let r = `where`(p.isGreaterOrEqual(to: 0), 2 * a * ry / q, q * 0.5)
        let x = diff / (b / (a + r) + 1).unsqueezed(axis: -1) + center
        return (x.reshaped(to: y.shape), logDet(r, a, b).negated())
    }
}
