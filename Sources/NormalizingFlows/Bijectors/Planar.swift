import Foundation

/// The planar flow of Rezende & Mohamed (2015, "Variational Inference with Normalizing Flows"):
/// y = x + û·tanh(wᵀx + b) on events flattened to vectors, with
/// log |det J| = log(1 + (1 − tanh²(wᵀx + b))·wᵀû).
///
/// Invertibility needs wᵀû > −1, enforced as in the paper's appendix:
/// û = u + (m(wᵀu) − wᵀu)·w/‖w‖² with m(a) = −1 + softplus(a).
///
/// Cost: `forward` (sampling, the variational direction) is O(D) per point in closed form.
/// `inverse` has no closed form: with s = wᵀx + b it reduces to the monotone scalar equation
/// s + (wᵀû)·tanh s = wᵀy + b, solved per point by safeguarded Newton iteration in Double to
/// |residual| ≤ 1e-12·(1 + |wᵀy + b|) (at most 100 steps; bisection keeps it bracketed in
/// [t − |wᵀû|, t + |wᵀû|]). One extra Newton step is recorded on the tape, so gradients through
/// the inverse are the exact implicit-function derivatives.
///
/// In a ``Compose`` (so in ``PlanarFlow``), two or more consecutive planar layers run forward as
/// one fused pass with a hand-written backward pass: same values, far less bookkeeping per step.
public struct Planar: BijectorPlan, SerializablePlan {
    public init() {}

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard spec.contextSize == 0 else { throw FlowError.invalidConfiguration("Planar takes no context") }
        return PlanarBijector(spec: spec, generator: &generator)
    }
}

final class PlanarBijector: Bijector {
    let eventShape: [Int]
    let u: Parameter, w: Parameter, b: Parameter

    init(spec: BijectorSpec, generator: inout RandomGenerator) {
        eventShape = spec.eventShape
        let d = spec.eventSize
        // u ~ U(±√2), w ~ U(±√(2/D)), b = 0: the initialisation normflows uses.
        let boundW = (2 / Double(d)).squareRoot(), boundU = 2.0.squareRoot()
        u = Parameter(.uniform([d], low: -boundU, high: boundU, generator: &generator, dtype: spec.dtype), name: "u")
        w = Parameter(.uniform([d], low: -boundW, high: boundW, generator: &generator, dtype: spec.dtype), name: "w")
        b = Parameter(.zeros([], dtype: spec.dtype), name: "b")
    }

    /// û with wᵀû = −1 + softplus(wᵀu) > −1, and c = wᵀû.
    private func constrained() -> (uHat: Tensor, c: Tensor) {
        let w = w.value, u = u.value
        let wu = (w * u).sum()
        let c = wu.softplus() - 1
        let uHat = u + (c - wu) * w / (w.square().sum() + 1e-12)
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
        let solved = Tensor(t.doubles.map { solveTanhEquation(target: $0, slope: cValue) }, shape: t.shape, dtype: t.dtype)
        // One Newton step on the tape: its value is the solution, its derivative the implicit one.
        let th = solved.tanh()
        let s = solved - (solved + c * th - t) / ((1 - th.square()) * c + 1)
        let activation = s.tanh()
        let x = flat - activation.unsqueezed(axis: -1) * uHat
        let logDet = ((1 - activation.square()) * c + 1).log().negated()
        return (x.reshaped(to: y.shape), logDet)
    }

}

/// The root s of s + c·tanh(s) = target for c > −1, where the left side increases strictly:
/// safeguarded Newton iteration in Double (bisection keeps it in the bracket
/// [target − |c|, target + |c|]) to |residual| ≤ 1e-12·(1 + |target|), at most 100 steps.
/// Planar and Sylvester inverses reduce to this equation.
func solveTanhEquation(target: Double, slope c: Double) -> Double {
    var lo = target - Swift.abs(c), hi = target + Swift.abs(c)
    var s = target
    for _ in 0..<100 {
        let th = Foundation.tanh(s)
        let g = s + c * th - target
        if Swift.abs(g) <= 1e-12 * (1 + Swift.abs(target)) { break }
        if g > 0 { hi = s } else { lo = s }
        let next = s - g / (1 + c * (1 - th * th))
        s = next > lo && next < hi ? next : 0.5 * (lo + hi)
    }
    return s
}
