import Foundation

/// The planar flow of Rezende & Mohamed (2015, "Variational Inference with Normalizing Flows"):
/// y = x + û·tanh(wᵀx + b) on events flattened to vectors, with
/// log |det J| = log(1 + (1 − tanh²(wᵀx + b))·wᵀû).
///
/// Invertibility needs wᵀû > −1, enforced as in the paper's appendix with a margin ε
/// (``invertibilityMargin``): û = u + (m(wᵀu) − wᵀu)·w/‖w‖² with m(a) = −1 + ε + softplus(a).
/// The layer's derivative along û is 1 + wᵀû·(1 − tanh²) ≥ min(1, ε + softplus(wᵀu)), so ε
/// bounds how flat it can get, and so how ill-conditioned the inverse is. With ε = 0 (the paper's
/// rule) training by likelihood drove a layer to a derivative of e⁻⁸: a density ridge 3,000 times
/// the surrounding density, too thin for any integration grid, and an inverse that lost three
/// more digits than the forward map in Float32. The default, ε = 0.1, still lets each layer
/// contract ten-fold.
///
/// Cost: `forward` (sampling, the variational direction) is O(D) per point in closed form.
/// `inverse` has no closed form: with s = wᵀx + b it reduces to the monotone scalar equation
/// s + (wᵀû)·tanh s = wᵀy + b, solved per point by safeguarded Newton iteration in Double to
/// |residual| ≤ 1e-12·(1 + |wᵀy + b|) (at most 100 steps; bisection keeps it bracketed in
/// [t − |wᵀû|, t + |wᵀû|]). A point whose iteration does not reach that tolerance throws
/// ``FlowError/notConverged(row:_:)`` with its index: never an approximate value. One extra
/// Newton step is recorded on the tape, so gradients through the inverse are the exact
/// implicit-function derivatives.
///
/// Made for variational inference (Rezende & Mohamed fit it by reverse KL): as a density
/// estimator it scores data only through those per-point solves, one layer after another, and its
/// single-direction bends fit sharp data poorly; ``MAF`` or ``NSF`` fit data better.
///
/// In a ``Compose`` (so in ``PlanarFlow``), two or more consecutive unconditional planar layers
/// run forward as one fused pass with a hand-written backward pass: same values, far less
/// bookkeeping per step.
///
/// **Conditional.** Made for a flow with a context (amortised variational inference, Pyro's
/// `ConditionalPlanar`), a layer's u, w and b are shifted by a dense network of the context
/// (``contextNetwork``): u(c) = u + g_u(c), w(c) = w + g_w(c), b(c) = b + g_b(c), with the invertibility constraint applied to u(c), so each
/// context gets a valid planar map. The network starts at zero: a new conditional layer is the
/// unconditional one. The inverse solves one equation per point, with that point's c = wᵀû.
public struct Planar: BijectorPlan, SerializablePlan {
    /// The default ``invertibilityMargin`` of new plans.
    public static let defaultInvertibilityMargin = 0.1

    /// ε in wᵀû ≥ −1 + ε, in [0, 1); by default ``defaultInvertibilityMargin``. Plans saved
    /// before it existed read as 0, as they were made.
    public var invertibilityMargin: Double
    /// The hidden sizes and activation of the network from the context to the shifts of u, w
    /// and b, in a flow with a context; `nil` (the default) for two hidden layers of 10·D units.
    /// Unused without a context.
    public var contextNetwork: CouplingNetwork?

    /// A planar layer y = x + û·tanh(wᵀx + b), with û constrained so that wᵀû ≥ −1 + ε.
    ///
    /// - Parameters:
    ///   - invertibilityMargin: ε in wᵀû ≥ −1 + ε, in [0, 1).
    ///   - contextNetwork: the network from a context to the shifts of the layer's parameters;
    ///     `nil` for two hidden layers of 10·D units.
    public init(invertibilityMargin: Double = Planar.defaultInvertibilityMargin, contextNetwork: CouplingNetwork? = nil) {
        self.invertibilityMargin = invertibilityMargin
        self.contextNetwork = contextNetwork
    }

    /// Reads a saved plan; a plan without `invertibilityMargin` (saved before it existed) reads as margin 0.
    /// - Parameter decoder: the decoder of the model file's plan.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        invertibilityMargin = try container.decodeIfPresent(Double.self, forKey: .invertibilityMargin) ?? 0
        contextNetwork = try container.decodeIfPresent(CouplingNetwork.self, forKey: .contextNetwork)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard invertibilityMargin >= 0 && invertibilityMargin < 1 else {
            throw FlowError.invalidConfiguration("Planar's invertibility margin must be in [0, 1), got \(invertibilityMargin)")
        }
        return try PlanarBijector(spec: spec, margin: invertibilityMargin, contextNetwork: contextNetwork, generator: &generator)
    }
}

final class PlanarBijector: Bijector {
    let eventShape: [Int]
    let u: Parameter, w: Parameter, b: Parameter
    /// With a context: the network that shifts u, w and b.
    let contextNetwork: ContextParameterNetwork?
    /// ε in wᵀû = −1 + ε + softplus(wᵀu).
    let margin: Double
    /// Newton/bisection steps the inverse may take per point before it reports
    /// ``FlowError/notConverged(row:_:)`` (tests lower it to make one fail).
    var maximumIterations = 100

    init(spec: BijectorSpec, margin: Double, contextNetwork: CouplingNetwork?, generator: inout RandomGenerator) throws {
        eventShape = spec.eventShape
        self.margin = margin
        let d = spec.eventSize
        // u ~ U(±√2), w ~ U(±√(2/D)), b = 0: the initialisation normflows uses.
        let boundW = (2 / Double(d)).squareRoot(), boundU = 2.0.squareRoot()
        u = Parameter(.uniform([d], low: -boundU, high: boundU, generator: &generator, dtype: spec.dtype), name: "u")
        w = Parameter(.uniform([d], low: -boundW, high: boundW, generator: &generator, dtype: spec.dtype), name: "w")
        b = Parameter(.zeros([], dtype: spec.dtype), name: "b")
        self.contextNetwork = spec.contextSize > 0
            ? try ContextParameterNetwork(contextSize: spec.contextSize, shifting: [[d], [d], []],
                                          shape: contextNetwork ?? .contextNetworkDefault(eventSize: d), dtype: spec.dtype, generator: &generator)
            : nil
    }

    /// w, û with wᵀû = −1 + ε + softplus(wᵀu) > −1 + ε, c = wᵀû and b, for the context: w and û
    /// `leading + [D]`, c and b `leading`, where `leading` is [] without a context or for a
    /// one-row context.
    private func constrained(context: Tensor?, eventsLeading: [Int]) throws -> (w: Tensor, uHat: Tensor, c: Tensor, b: Tensor) {
        let raw = try contextNetwork.shifting([u.value, w.value, b.value], for: context, eventsLeading: eventsLeading)
        let u = raw[0], w = raw[1]
        let wu = (w * u).sum(alongAxis: -1, keepingDimensions: true)
        let c = wu.softplus() - (1 - margin)
        // ‖w‖² floored rather than offset, so that wᵀû = c exactly (the log-determinant and the
        // inverse use c): an offset of 1e-12 made wᵀû = −1 − 8e-10 for wᵀu = −800.
        let uHat = u + (c - wu) * w / w.square().sum(alongAxis: -1, keepingDimensions: true).clamped(min: 1e-30)
        return (w, uHat, c.squeezed(axis: -1), raw[2])
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let flat = x.reshaped(to: leading + [u.shape[0]])
        let (w, uHat, c, b) = try constrained(context: context, eventsLeading: leading)
        let activation = ((flat * w).sum(alongAxis: -1) + b).tanh()
        let y = flat + activation.unsqueezed(axis: -1) * uHat
        let logDet = ((1 - activation.square()) * c + 1).log()
        return (y.reshaped(to: x.shape), logDet)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let flat = y.reshaped(to: leading + [u.shape[0]])
        let (w, uHat, c, b) = try constrained(context: context, eventsLeading: leading)
        let t = (flat * w).sum(alongAxis: -1) + b
        // One slope per point: c's own value for a layer without a context, its context's else.
        let slopes = c.rank == 0 ? [Double](repeating: c.item, count: t.count) : c.detached().broadcast(to: t.shape).doubles
        let roots = try zip(t.doubles, slopes).enumerated().map { row, equation in
            try solveTanhEquation(target: equation.0, slope: equation.1, maximumIterations: maximumIterations, row: row, in: "planar")
        }
        let solved = Tensor(roots, shape: t.shape, dtype: t.dtype)
        // One Newton step on the tape whose value is the solution and whose derivative is the
        // implicit one: s = s* − (g − ḡ)/g′ with g = s* + c·tanh s* − t and ḡ its value held
        // fixed. (A plain step s* − g/g′ would add g's rounding error divided by g′, which
        // vanishes at s* = 0 when c = −1: wᵀu below −17 rounds c to −1 in Float32.) g′ is held
        // fixed too (its derivative multiplies g − ḡ = 0) and kept off zero, where the inverse
        // has no derivative.
        let th = solved.tanh()
        let g = solved + c * th - t
        let s = solved - (g - g.detached()) / ((1 - th.square()) * c + 1).detached().clamped(min: 1e-30)
        let activation = s.tanh()
        let x = flat - activation.unsqueezed(axis: -1) * uHat
        let logDet = ((1 - activation.square()) * c + 1).log().negated()
        return (x.reshaped(to: y.shape), logDet)
    }

}

/// The root s of s + c·tanh(s) = target for c ≥ −1, where the left side increases (strictly but
/// at one point when c = −1): safeguarded Newton iteration in Double, bisection keeping it in the
/// bracket [target − |c|, target + |c|] and taking over when Newton is slow, to
/// |residual| ≤ 1e-12·(1 + |target|): at worst about log₂(2|c|/tolerance) steps.
/// Planar and Sylvester inverses reduce to this equation.
///
/// - Returns: the root; NaN for a non-finite target, an overflow upstream that
///   ``Flow/logProb(_:context:)`` scores −∞.
/// - Throws: ``FlowError/notConverged(row:_:)`` naming `row` and the equation of the `layer`'s
///   inverse (a name built only then) when `maximumIterations` steps do not reach the tolerance: never an approximate root.
func solveTanhEquation(target: Double, slope c: Double, maximumIterations: Int, row: Int,
                       in layer: @autoclosure () -> String) throws -> Double {
    guard target.isFinite else { return .nan }
    let tolerance = 1e-12 * (1 + Swift.abs(target))
    var lo = target - Swift.abs(c), hi = target + Swift.abs(c)
    var s = target
    // Newton's step is taken only when it lands inside the bracket and the step before last
    // was at least twice as long (Press et al.'s rtsafe rule); otherwise the bracket is halved.
    // Where tanh is flat, g′ ≈ 1 while g is of size c, so plain Newton (even kept inside the
    // bracket) crawled along the bracket's end: s + 8.27·tanh s = −6.84 had not converged after
    // 100 steps.
    var step = hi - lo, stepBefore = step
    for _ in 0..<maximumIterations {
        let th = Foundation.tanh(s)
        let g = s + c * th - target
        if Swift.abs(g) <= tolerance { return s }
        if g > 0 { hi = s } else { lo = s }
        let slope = 1 + c * (1 - th * th)
        let next = s - g / slope
        if next > lo && next < hi && Swift.abs(2 * g) <= Swift.abs(stepBefore * slope) {
            (stepBefore, step) = (step, g / slope)
            s = next
        } else {
            (stepBefore, step) = (step, 0.5 * (hi - lo))
            s = 0.5 * (lo + hi)
        }
    }
    guard Swift.abs(s + c * Foundation.tanh(s) - target) <= tolerance else {
        throw FlowError.notConverged(row: row, "the \(layer()) inverse's equation s + (\(c))·tanh s = \(target) "
                                     + "did not reach its tolerance in \(maximumIterations) Newton/bisection steps")
    }
    return s
}
