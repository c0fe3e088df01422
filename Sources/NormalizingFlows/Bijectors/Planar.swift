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
/// In a ``Compose`` (so in ``PlanarFlow``), two or more consecutive planar layers run forward as
/// one fused pass with a hand-written backward pass: same values, far less bookkeeping per step.
public struct Planar: BijectorPlan, SerializablePlan {
    /// The default ``invertibilityMargin`` of new plans.
    public static let defaultInvertibilityMargin = 0.1

    /// ε in wᵀû ≥ −1 + ε, in [0, 1); by default ``defaultInvertibilityMargin``. Plans saved
    /// before it existed read as 0, as they were made.
    public var invertibilityMargin: Double

    public init(invertibilityMargin: Double = Planar.defaultInvertibilityMargin) {
        self.invertibilityMargin = invertibilityMargin
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        invertibilityMargin = try container.decodeIfPresent(Double.self, forKey: .invertibilityMargin) ?? 0
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard spec.contextSize == 0 else { throw FlowError.invalidConfiguration("Planar takes no context") }
        guard invertibilityMargin >= 0 && invertibilityMargin < 1 else {
            throw FlowError.invalidConfiguration("Planar's invertibility margin must be in [0, 1), got \(invertibilityMargin)")
        }
        return PlanarBijector(spec: spec, margin: invertibilityMargin, generator: &generator)
    }
}

final class PlanarBijector: Bijector {
    let eventShape: [Int]
    let u: Parameter, w: Parameter, b: Parameter
    /// ε in wᵀû = −1 + ε + softplus(wᵀu).
    let margin: Double
    /// Newton/bisection steps the inverse may take per point before it reports
    /// ``FlowError/notConverged(row:_:)`` (tests lower it to make one fail).
    var maximumIterations = 100

    init(spec: BijectorSpec, margin: Double, generator: inout RandomGenerator) {
        eventShape = spec.eventShape
        self.margin = margin
        let d = spec.eventSize
        // u ~ U(±√2), w ~ U(±√(2/D)), b = 0: the initialisation normflows uses.
        let boundW = (2 / Double(d)).squareRoot(), boundU = 2.0.squareRoot()
        u = Parameter(.uniform([d], low: -boundU, high: boundU, generator: &generator, dtype: spec.dtype), name: "u")
        w = Parameter(.uniform([d], low: -boundW, high: boundW, generator: &generator, dtype: spec.dtype), name: "w")
        b = Parameter(.zeros([], dtype: spec.dtype), name: "b")
    }

    /// û with wᵀû = −1 + ε + softplus(wᵀu) > −1 + ε, and c = wᵀû.
    private func constrained() -> (uHat: Tensor, c: Tensor) {
        let w = w.value, u = u.value
        let wu = (w * u).sum()
        let c = wu.softplus() - (1 - margin)
        // ‖w‖² floored rather than offset, so that wᵀû = c exactly (the log-determinant and the
        // inverse use c): an offset of 1e-12 made wᵀû = −1 − 8e-10 for wᵀu = −800.
        let uHat = u + (c - wu) * w / w.square().sum().clamped(min: 1e-30)
        return (uHat, c)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let flat = x.reshaped(to: leading + [w.shape[0]])
        let (uHat, c) = constrained()
        let activation = ((flat * w.value).sum(alongAxis: -1) + b.value).tanh()
        let y = flat + activation.unsqueezed(axis: -1) * uHat
        let logDet = ((1 - activation.square()) * c + 1).log()
        return (y.reshaped(to: x.shape), logDet)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let flat = y.reshaped(to: leading + [w.shape[0]])
        let (uHat, c) = constrained()
        let t = (flat * w.value).sum(alongAxis: -1) + b.value
        let cValue = c.item
        let roots = try t.doubles.enumerated().map { row, target in
            try solveTanhEquation(target: target, slope: cValue, maximumIterations: maximumIterations, row: row, in: "planar")
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
/// bracket [target − |c|, target + |c|], to |residual| ≤ 1e-12·(1 + |target|).
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
    for _ in 0..<maximumIterations {
        let th = Foundation.tanh(s)
        let g = s + c * th - target
        if Swift.abs(g) <= tolerance { return s }
        if g > 0 { hi = s } else { lo = s }
        let next = s - g / (1 + c * (1 - th * th))
        s = next > lo && next < hi ? next : 0.5 * (lo + hi)
    }
    guard Swift.abs(s + c * Foundation.tanh(s) - target) <= tolerance else {
        throw FlowError.notConverged(row: row, "the \(layer()) inverse's equation s + (\(c))·tanh s = \(target) "
                                     + "did not reach its tolerance in \(maximumIterations) Newton/bisection steps")
    }
    return s
}
