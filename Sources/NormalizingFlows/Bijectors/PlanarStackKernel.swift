import Foundation
import Tensors

/// The forward map of consecutive planar layers (``Planar``) as one recorded operation with a
/// hand-written backward pass.
///
/// Layer k maps x to y = x + ûₖ·hₖ with hₖ = tanh(wₖᵀx + bₖ), and
/// log |det J| = log(1 + ψₖ·cₖ) with ψₖ = 1 − hₖ² and cₖ = wₖᵀûₖ = softplus(wₖᵀuₖ) − 1 + εₖ
/// (Rezende & Mohamed 2015, appendix A). With g the gradient of the layer's output and g_d that
/// of the summed log-determinant, per row:
///
/// - ∂/∂h = gᵀû − g_d·2hc/(1 + ψc), ∂/∂a = ψ·∂/∂h for a = wᵀx + b;
/// - ∂/∂x = g + w·∂/∂a, ∂/∂w ∋ x·∂/∂a, ∂/∂b = ∂/∂a, ∂/∂û = g·h, ∂/∂c = g_d·ψ/(1 + ψc);
///
/// then, summed over rows, through û = u + α·w with α = (c − wᵀu)/(wᵀw + ε):
/// ∂α/∂c = 1/(wᵀw + ε), ∂α/∂(wᵀu) = −1/(wᵀw + ε), ∂α/∂(wᵀw) = −α/(wᵀw + ε), and
/// ∂c/∂(wᵀu) = sigmoid(wᵀu).
///
/// Recorded layer by layer, each planar layer is about twenty operations on a handful of numbers
/// per row, and a variational step on a 32-layer flow spends most of its time on their
/// bookkeeping (reference counts, allocations, the tape); here one pass runs them all.
enum PlanarStackKernel {
    /// The output (shape of `x`) and log |det J| (its leading shape) of `layers` applied in order,
    /// for `x` of shape [..., event] with at least one row, already checked.
    static func forward(_ x: Tensor, layers: [PlanarBijector], leadingShape: [Int]) -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let n = leadingShape.reduce(1, *), d = layers[0].w.shape[0]
        let flat = x.reshaped(to: [n, d])
        let combined = switch x.dtype {
        case .float32: PlanarStackPass<Float>(flat, layers: layers).record()
        case .float64: PlanarStackPass<Double>(flat, layers: layers).record()
        }
        return (combined.slice(alongAxis: 1, 0..<d).reshaped(to: x.shape),
                combined.select(alongAxis: 1, index: d).reshaped(to: leadingShape))
    }
}

/// Consecutive planar layers as one step of a composition, chosen when the composition is made
/// concrete: `forward` runs them as one recorded operation (``PlanarStackKernel``), `inverse`
/// layer by layer (each needs its own Newton solve). The layers stay the composition's parts, so
/// their parameters keep their names.
final class PlanarStack: Bijector {
    let layers: [PlanarBijector]

    init(layers: [PlanarBijector]) {
        precondition(layers.count >= 2, "a planar stack fuses two or more layers")
        self.layers = layers
    }

    var eventShape: [Int] { layers[0].eventShape }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        guard leading.reduce(1, *) > 0 else { return try applyInTurn(layers, x) { try $0.forward($1, context: context) } }
        return PlanarStackKernel.forward(x, layers: layers, leadingShape: leading)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try applyInTurn(layers.reversed(), y) { try $0.inverse($1, context: context) }
    }
}

/// One evaluation: the layers' constrained parameters, the values the backward pass needs, and
/// the backward pass.
private final class PlanarStackPass<T: TensorScalar> {
    let input: Tensor
    let parameters: [Tensor]
    let n: Int, d: Int, layers: Int
    /// Per layer, in Double: u, w and û (D each, layer-major), c = wᵀû, wᵀu, wᵀw + ε, b.
    let u: [Double], w: [Double], uHat: [Double]
    let c: [Double], wu: [Double], ww: [Double], b: [Double]
    /// Each layer's input [N, D] in turn, then the last layer's output.
    var states: [T] = []
    /// Per layer, h = tanh(wᵀx + b) [N].
    var activations: [T] = []

    init(_ input: Tensor, layers planar: [PlanarBijector]) {
        self.input = input
        let d = input.shape[1]
        n = input.shape[0]
        self.d = d
        layers = planar.count
        parameters = planar.flatMap { [$0.u.value, $0.w.value, $0.b.value] }
        let u = planar.flatMap { $0.u.value.doubles }, w = planar.flatMap { $0.w.value.doubles }
        var uHat = u, c: [Double] = [], wu: [Double] = [], ww: [Double] = []
        for k in 0..<planar.count {
            let base = k * d
            var dotWU = 0.0, dotWW = 0.0
            for i in 0..<d {
                dotWU += w[base + i] * u[base + i]
                dotWW += w[base + i] * w[base + i]
            }
            dotWW = Swift.max(dotWW, 1e-30)   // as in `PlanarBijector`: wᵀû = c exactly unless w ≈ 0
            let slope = Self.softplus(dotWU) - (1 - planar[k].margin)
            let alpha = (slope - dotWU) / dotWW
            for i in 0..<d { uHat[base + i] += alpha * w[base + i] }
            c.append(slope); wu.append(dotWU); ww.append(dotWW)
        }
        self.u = u; self.w = w; self.uHat = uHat
        self.c = c; self.wu = wu; self.ww = ww
        b = planar.map { $0.b.value.item }
    }

    private static func softplus(_ a: Double) -> Double { a > 0 ? a + Foundation.log1p(Foundation.exp(-a)) : Foundation.log1p(Foundation.exp(a)) }

    /// Runs the layers and records them as one operation whose output is [N, D + 1]: the result,
    /// then log |det J|.
    func record() -> Tensor {
        let n = n, d = d
        states = [T](unsafeUninitializedCapacity: (layers + 1) * n * d) { buffer, count in
            input.withUnsafeBufferPointer(as: T.self) { x in
                buffer.baseAddress!.initialize(from: x.baseAddress!, count: n * d)
            }
            count = (layers + 1) * n * d
        }
        activations = [T](repeating: 0, count: layers * n)
        let logDet = UnsafeMutablePointer<T>.allocate(capacity: 2 * n)
        defer { logDet.deallocate() }
        let term = logDet + n
        logDet.initialize(repeating: 0, count: n)
        let w = w.map { T($0) }, uHat = uHat.map { T($0) }
        states.withUnsafeMutableBufferPointer { states in
            activations.withUnsafeMutableBufferPointer { activations in
                for k in 0..<layers {
                    let x = states.baseAddress! + k * n * d, y = x + n * d, h = activations.baseAddress! + k * n
                    let bias = T(b[k]), slope = T(c[k])
                    for r in 0..<n {
                        var a = bias
                        for i in 0..<d { a += x[r * d + i] * w[k * d + i] }
                        h[r] = a
                    }
                    T.apply(.tanh, h, h, count: n)
                    for r in 0..<n {
                        for i in 0..<d { y[r * d + i] = x[r * d + i] + h[r] * uHat[k * d + i] }
                        term[r] = (1 - h[r] * h[r]) * slope
                    }
                    T.apply(.log1p, term, term, count: n)
                    for r in 0..<n { logDet[r] += term[r] }
                }
            }
        }
        let out = states.withUnsafeBufferPointer { states in
            let result = states.baseAddress! + layers * n * d
            return Tensor(shape: [n, d + 1], as: T.self) { o in
                for r in 0..<n {
                    for i in 0..<d { o[r * (d + 1) + i] = result[r * d + i] }
                    o[r * (d + 1) + d] = logDet[r]
                }
            }
        }
        guard Tensor.recordsOperation(on: [input] + parameters) else { return out }
        return Tensor.recordOperation("planarStack", output: out, inputs: [input] + parameters) { [self] g, needs in
            backward(g, needs)
        }
    }

    /// The gradients of the input [N, D] and of every layer's u, w and b, from that of the output.
    private func backward(_ g: Tensor, _ needs: [Bool]) -> [Tensor?] {
        let n = n, d = d
        // ∂/∂(the current layer's output), then ∂/∂log|det J|, overwritten layer by layer down to ∂/∂input.
        let gradOutput = UnsafeMutablePointer<T>.allocate(capacity: n * d + n)
        defer { gradOutput.deallocate() }
        let gradLogDet = gradOutput + n * d
        g.withUnsafeBufferPointer(as: T.self) { g in
            for r in 0..<n {
                for i in 0..<d { gradOutput[r * d + i] = g[r * (d + 1) + i] }
                gradLogDet[r] = g[r * (d + 1) + d]
            }
        }
        var gradients = [Tensor?](repeating: nil, count: 1 + 3 * layers)
        // Per layer, summed over rows: ∂/∂w (the direct part), then ∂/∂û.
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * d)
        defer { sums.deallocate() }
        let gradW = sums, gradUHat = sums + d
        var gradU = [Double](repeating: 0, count: d)
        let wT = w.map { T($0) }, uHatT = uHat.map { T($0) }
        states.withUnsafeBufferPointer { states in activations.withUnsafeBufferPointer { activations in
        wT.withUnsafeBufferPointer { wT in uHatT.withUnsafeBufferPointer { uHatT in
        for k in (0..<layers).reversed() {
            let x = states.baseAddress! + k * n * d, h = activations.baseAddress! + k * n
            let wk = wT.baseAddress! + k * d, uHatK = uHatT.baseAddress! + k * d
            let slope = T(c[k])
            var gradC = 0.0, gradB = 0.0
            sums.initialize(repeating: 0, count: 2 * d)
            for r in 0..<n {
                let hr = h[r], psi = 1 - hr * hr, denominator = 1 + psi * slope, gd = gradLogDet[r]
                var gradH = -gd * 2 * hr * slope / denominator
                for i in 0..<d { gradH += gradOutput[r * d + i] * uHatK[i] }
                let gradA = gradH * psi
                for i in 0..<d {
                    let e = r * d + i
                    gradUHat[i] += Double(gradOutput[e] * hr)
                    gradW[i] += Double(gradA * x[e])
                    gradOutput[e] += gradA * wk[i]
                }
                gradC += Double(gd * psi / denominator)
                gradB += Double(gradA)
            }
            // Through û = u + α·w, α = (c − wᵀu)/(wᵀw + ε), c = softplus(wᵀu) − 1 + margin.
            let base = k * d, alpha = (c[k] - wu[k]) / ww[k]
            var gradAlpha = 0.0
            for i in 0..<d { gradAlpha += gradUHat[i] * w[base + i] }
            let gradCTotal = gradC + gradAlpha / ww[k]
            let gradWU = gradCTotal / (1 + Foundation.exp(-wu[k])) - gradAlpha / ww[k]
            let gradWW = -gradAlpha * alpha / ww[k]
            for i in 0..<d {
                gradU[i] = gradUHat[i] + gradWU * w[base + i]
                gradW[i] += alpha * gradUHat[i] + gradWU * u[base + i] + 2 * gradWW * w[base + i]
            }
            let first = 1 + 3 * k
            if needs[first] { gradients[first] = Tensor(shape: [d], scalars: gradU.map { T($0) }) }
            if needs[first + 1] { gradients[first + 1] = Tensor(shape: [d], scalars: (0..<d).map { T(gradW[$0]) }) }
            if needs[first + 2] { gradients[first + 2] = Tensor(shape: [], scalars: [T(gradB)]) }
        }
        } } } }
        if needs[0] {
            gradients[0] = Tensor(shape: [n, d], as: T.self) { $0.baseAddress!.initialize(from: gradOutput, count: n * d) }
        }
        return gradients
    }
}
