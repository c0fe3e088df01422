import Foundation
import Tensors

/// An affine autoregressive bijector's pass with gradients, MADE network and affine transform
/// together, as one recorded operation with a hand-written backward pass.
///
/// With raw parameters (μ, s) = MADE(h) per dimension and log σ = L(s) (``AffineScale``):
///
/// - forward, one pass on h = x: y = x·exp(L(s)) + μ, log |det J| = Σᵢ L(sᵢ);
/// - inverse, D passes: x⁽ᵏ⁾ = (y − μ(x⁽ᵏ⁻¹⁾))·exp(−L(s(x⁽ᵏ⁻¹⁾))) from x⁽⁰⁾ = 0, so that pass k
///   fixes the k-th dimension in the network's order (the dimensions not yet fixed are kept at
///   zero) and x⁽ᴰ⁾ is exact;
///   log |det J| = −Σᵢ L(sᵢ(x⁽ᴰ⁻¹⁾)). The first pass's input is the same for every row, so it
///   runs on one row.
///
/// The backward pass is the chain rule through the passes in reverse. For one pass, with g the
/// gradient of its output and g_d that of the log-determinant (the last pass only):
///
/// - forward: ∂/∂μ = g, ∂/∂s = (g·x·σ + g_d)·L′(s), ∂/∂x = g·σ;
/// - inverse: ∂/∂μ = −g/σ, ∂/∂s = (−g·x⁽ᵏ⁾ − g_d)·L′(s), ∂/∂y = g/σ;
///
/// then back through the network (``MADELayout``'s backward pass). In the inverse, the network
/// input's gradient is the previous pass's output gradient.
///
/// Recorded layer by layer, a small flow's training step is dozens of operations of a few
/// microseconds each, and their bookkeeping (broadcast parameters, intermediate tensors, summed
/// gradients) costs more than their arithmetic; here the products are the only large work.
struct AffineAutoregressiveKernel {
    let network: MaskedAutoregressiveNetwork
    let scale: AffineScale

    /// The output [N, D] and log |det J| [N] of the forward or inverse map of `input` [N, D], N ≥ 1,
    /// with `context` [N, C] when the network has one.
    func evaluate(_ input: Tensor, context: Tensor?, inverse: Bool) -> (output: Tensor, logAbsDetJacobian: Tensor) {
        let d = network.variableOrder.count
        precondition(input.rank == 2 && input.shape[1] == d && input.shape[0] > 0 && input.dtype == network.weights[0].dtype
                     && (context?.shape ?? [input.shape[0], 0]) == [input.shape[0], network.contextSize],
                     "affine autoregressive: input \(input.shape) \(input.dtype) and context \(context?.shape ?? []) do not fit \(d) dimensions of \(network.weights[0].dtype) and context size \(network.contextSize)")
        let combined = switch input.dtype {
        case .float32: AffineAutoregressivePass<Float>(input, context: context, network: network, scale: scale, inverse: inverse).record()
        case .float64: AffineAutoregressivePass<Double>(input, context: context, network: network, scale: scale, inverse: inverse).record()
        }
        return (combined.slice(alongAxis: 1, 0..<d), combined.select(alongAxis: 1, index: d))
    }
}

/// One evaluation: the forward computation, its saved values and its backward pass.
private final class AffineAutoregressivePass<T: TensorScalar> {
    let input: Tensor, context: Tensor?
    let network: MaskedAutoregressiveNetwork
    let layout: MADELayout<T>
    let scale: AffineScale
    let inverse: Bool
    let n: Int, d: Int, c: Int, passes: Int
    /// Each dimension's position (0…D − 1) in the network's order.
    let position: [Int]
    /// Per pass: the offsets in `work` of the network's input in degree order, of each hidden
    /// layer's activations, of the raw parameters [rows, 2D], of the result [N, D] and of
    /// exp(±L(s)) [N, D].
    var inputOffsets: [Int] = [], hiddenOffsets: [[Int]] = [], rawOffsets: [Int] = []
    var resultOffsets: [Int] = [], factorOffsets: [Int] = []
    var work = Tensor(uninitializedShape: [0], dtype: T.dtype)
    /// Σᵢ ±L(sᵢ) of the last pass, per row.
    var logDet: [T] = []

    init(_ input: Tensor, context: Tensor?, network: MaskedAutoregressiveNetwork, scale: AffineScale, inverse: Bool) {
        self.input = input
        self.context = context
        self.network = network
        layout = network.layout(T.self)
        self.scale = scale
        self.inverse = inverse
        n = input.shape[0]
        d = input.shape[1]
        c = network.contextSize
        passes = inverse ? d : 1
        var position = [Int](repeating: 0, count: d)
        for (t, dimension) in network.variableOrder.enumerated() { position[dimension] = t }
        self.position = position
    }

    /// Rows of pass `p`'s network input: without a context the inverse's first pass is on zeros,
    /// the same for every row.
    func rows(_ p: Int) -> Int { inverse && p == 0 && c == 0 ? 1 : n }

    /// Runs the passes and records them as one operation whose output is [N, D + 1]: the result,
    /// then log |det J|.
    func record() -> Tensor {
        var size = 0
        for p in 0..<passes {
            let rowCount = rows(p)
            inputOffsets.append(size); size += rowCount * layout.inputWidth
            hiddenOffsets.append(layout.keptWidths.map { units in defer { size += rowCount * units }; return size })
            rawOffsets.append(size); size += rowCount * 2 * d
            resultOffsets.append(size); size += n * d
            factorOffsets.append(size); size += n * d
        }
        let (scratch, workPointer) = MADELayout<T>.scratch(size)
        work = scratch
        logDet = [T](repeating: 0, count: n)
        // Through pointers: element access to the class's arrays would check exclusivity each time.
        input.withUnsafeBufferPointer(as: T.self) { x in
            withContext { context in
                logDet.withUnsafeMutableBufferPointer { logDet in
                    for p in 0..<passes {
                        forwardPass(p, x: x.baseAddress!, context: context, work: workPointer, logDet: logDet.baseAddress!)
                    }
                }
            }
        }
        let out = withExtendedLifetime(work) {
            logDet.withUnsafeBufferPointer { logDet in
                let result = workPointer + resultOffsets[passes - 1], d = d
                return Tensor(shape: [n, d + 1], as: T.self) { o in
                    for r in 0..<n {
                        for i in 0..<d { o[r * (d + 1) + i] = result[r * d + i] }
                        o[r * (d + 1) + d] = logDet[r]
                    }
                }
            }
        }
        return Tensor.recordOperation("affineAutoregressive", output: out, inputs: [input] + (context.map { [$0] } ?? []) + network.parameterValues) {
            [self] g, needs in backward(g, needs)
        }
    }

    private func withContext<R>(_ body: (UnsafePointer<T>?) -> R) -> R {
        guard let context else { return body(nil) }
        return context.withUnsafeBufferPointer(as: T.self) { body($0.baseAddress!) }
    }

    /// Pass `p`: the network on its input (the kernel's input `x` forward; zeros, then the
    /// previous pass's result, inverse), then the affine map of `x` with the network's parameters.
    private func forwardPass(_ p: Int, x: UnsafePointer<T>, context: UnsafePointer<T>?, work: UnsafeMutablePointer<T>,
                             logDet: UnsafeMutablePointer<T>) {
        let rowCount = rows(p), a = work + inputOffsets[p], raw = work + rawOffsets[p]
        // The inverse's first pass runs on zeros (and the context).
        layout.gatherInput(x: !inverse ? x : p > 0 ? UnsafePointer(work + resultOffsets[p - 1]) : nil, context: context, n: rowCount, into: a)
        layout.forward(rows: rowCount, input: a, hidden: hiddenOffsets[p].map { work + $0 }, output: raw)
        let factor = work + factorOffsets[p], result = work + resultOffsets[p]
        let sign: T = inverse ? -1 : 1, last = p == passes - 1, shared = rowCount == 1 && n > 1, d = d, n = n
        for r in 0..<n {
            let parameters = raw + (shared ? 0 : r * 2 * d)
            var sum: T = 0
            for i in 0..<d {
                let s = parameters[2 * i + 1]
                let logScale = if case .exp = scale { s } else { T(scale.logScaleValue(Double(s))) }
                factor[r * d + i] = sign * logScale
                sum += logScale
            }
            if last { logDet[r] = sign * sum }
        }
        T.apply(.exp, factor, factor, count: n * d)
        for r in 0..<n {
            let parameters = raw + (shared ? 0 : r * 2 * d)
            for i in 0..<d {
                let e = r * d + i
                result[e] = inverse ? (x[e] - parameters[2 * i]) * factor[e] : x[e] * factor[e] + parameters[2 * i]
            }
        }
        // After inverse pass p the dimensions at positions 0…p are exact; the others reach only
        // masked weights of later passes. They are set to zero (as the sequential inversion
        // leaves them), so that one overflowing to ±∞ cannot meet a masked zero as 0·∞ = NaN.
        guard inverse, !last else { return }
        for r in 0..<n {
            for k in (layout.contextSize + p + 1)..<layout.inputWidth { result[r * d + layout.inputColumns[k]] = 0 }
        }
    }

    /// Gradients of [input, context?, W₀, b₀, W₁, b₁, …] from the gradient `g` [N, D + 1] of the output.
    private func backward(_ g: Tensor, _ needs: [Bool]) -> [Tensor?] {
        let width = layout.inputWidth
        let needsInput = needs[0], needsContext = context != nil && needs[1]
        let parameterCount = layout.gradientOffsets.count
        // The parameters' gradients (degree order; the last pass writes them, the others add
        // to them). Zeroed: ∂/∂input and ∂/∂context, accumulated over the passes. Then
        // ∂/∂(the current pass's output), ∂/∂log|det J|, ∂/∂(μ, s), the network input's gradient
        // and the scratch of the layers' gradients.
        let zeroed = parameterCount + n * d + n * c
        let (scratchTensor, buffer) = MADELayout<T>.scratch(zeroed + n * d + n + n * 2 * d + n * width + layout.backwardScratchCount(rows: n))
        defer { withExtendedLifetime(scratchTensor) {} }
        (buffer + parameterCount).update(repeating: 0, count: zeroed - parameterCount)
        let gradDirect = buffer + parameterCount, gradContext = gradDirect + n * d
        let gradCurrent = buffer + zeroed, gradLogDet = gradCurrent + n * d, gradRaw = gradLogDet + n
        let gradNetworkInput = gradRaw + n * 2 * d, scratch = gradNetworkInput + n * width
        g.withUnsafeBufferPointer(as: T.self) { g in
            for r in 0..<n {
                for i in 0..<d { gradCurrent[r * d + i] = g[r * (d + 1) + i] }
                gradLogDet[r] = g[r * (d + 1) + d]
            }
        }
        let exponential: Bool = if case .exp = scale { true } else { false }
        input.withUnsafeBufferPointer(as: T.self) { x in
        withExtendedLifetime(work) {
            let x = x.baseAddress!, work = work.pointer(T.self)
            for p in (0..<passes).reversed() {
                let rowCount = rows(p), shared = rowCount == 1 && n > 1, last = p == passes - 1
                let raw = work + rawOffsets[p], factor = work + factorOffsets[p], result = work + resultOffsets[p]
                // ∂/∂(μ, s), summed over rows when the pass ran on one.
                gradRaw.update(repeating: 0, count: rowCount * 2 * d)
                for r in 0..<n {
                    let parameters = raw + (shared ? 0 : r * 2 * d), target = gradRaw + (shared ? 0 : r * 2 * d)
                    let gd = last ? gradLogDet[r] : 0
                    // Dimensions not yet fixed were set to zero: constants.
                    for i in 0..<d where last || position[i] <= p {
                        let e = r * d + i, gy = gradCurrent[e], f = factor[e]
                        let slope: T = exponential ? 1 : T(scale.logScaleSlope(Double(parameters[2 * i + 1])))
                        if inverse {
                            target[2 * i] -= gy * f
                            target[2 * i + 1] += (-gy * result[e] - gd) * slope
                        } else {
                            target[2 * i] += gy
                            target[2 * i + 1] += (gy * x[e] * f + gd) * slope
                        }
                        if needsInput { gradDirect[e] += gy * f }
                    }
                }
                // The network input's gradient: the previous pass's output (inverse) or this input's, and the context's.
                let needsNetworkInput = (inverse ? p > 0 : needsInput) || (needsContext && rowCount == n)
                layout.backward(gradOutput: gradRaw, ldo: 2 * d, input: work + inputOffsets[p], n: rowCount,
                                hidden: hiddenOffsets[p].map { UnsafePointer(work + $0) }, gradients: buffer, accumulating: !last,
                                gradInput: needsNetworkInput ? gradNetworkInput : nil, scratch: scratch)
                guard needsNetworkInput else { continue }
                for r in 0..<rowCount {
                    let row = gradNetworkInput + r * width
                    if needsContext { for j in 0..<c { gradContext[r * c + j] += row[j] } }
                    for k in c..<width {
                        let e = r * d + layout.inputColumns[k]
                        if inverse { gradCurrent[e] = row[k] } else if needsInput { gradDirect[e] += row[k] }
                    }
                }
            }
        }}
        func tensor(_ shape: [Int], from start: UnsafeMutablePointer<T>) -> Tensor {
            Tensor(shape: shape, as: T.self) { $0.baseAddress!.update(from: start, count: $0.count) }
        }
        var grads: [Tensor?] = [needsInput ? tensor([n, d], from: gradDirect) : nil]
        if context != nil { grads.append(needsContext ? tensor([n, c], from: gradContext) : nil) }
        return grads + layout.storedGradients(buffer, network: network, needs: Array(needs.dropFirst(grads.count)))
    }
}
