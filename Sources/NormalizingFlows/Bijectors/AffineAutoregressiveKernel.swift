import Foundation
import Tensors

/// An affine autoregressive bijector's pass with gradients, MADE network and affine transform
/// together, as one recorded operation with a hand-written backward pass.
///
/// With raw parameters (μ, s) = MADE(h) per dimension and log σ = L(s) (``AffineScale``):
///
/// - forward, one pass on h = x: y = x·e^{L(s)} + μ, log |det J| = Σᵢ L(sᵢ);
/// - inverse, D passes: x⁽ᵏ⁾ = (y − μ(x⁽ᵏ⁻¹⁾))·e^{−L(s(x⁽ᵏ⁻¹⁾))} from x⁽⁰⁾ = 0, so that pass k
///   fixes the k-th dimension in the network's order and x⁽ᴰ⁾ is exact;
///   log |det J| = −Σᵢ L(sᵢ(x⁽ᴰ⁻¹⁾)). The first pass's input is the same for every row, so it
///   runs on one row.
///
/// The backward pass is the chain rule through the passes in reverse. For one pass, with g the
/// gradient of its output and g_d that of the log-determinant (the last pass only):
///
/// - forward: ∂/∂μ = g, ∂/∂s = (g·x·σ + g_d)·L′(s), ∂/∂x = g·σ;
/// - inverse: ∂/∂μ = −g/σ, ∂/∂s = (−g·x⁽ᵏ⁾ − g_d)·L′(s), ∂/∂y = g/σ;
///
/// then back through the network's layers (ReLU or tanh between them), each layer's weight
/// gradient masked as the layer's weight is. In the inverse, the network input's gradient is
/// the previous pass's output gradient.
///
/// Recorded layer by layer, a small flow's training step is dozens of operations of a few
/// microseconds each, and their bookkeeping (broadcast parameters, intermediate tensors, summed
/// gradients) costs more than their arithmetic; here the products are the only large work.
struct AffineAutoregressiveKernel {
    let network: MaskedAutoregressiveNetwork
    let scale: AffineScale

    /// The kernel for an affine transform with log-scale map `scale` on `network`, when it
    /// covers it: a network without context or skip connections, with ReLU or tanh hidden
    /// layers, all small enough to be multiplied whole. `nil` otherwise (the bijector then records
    /// its operations one by one; large layers skip their masks' zeros there, by blocks of units).
    init?(network: MaskedAutoregressiveNetwork, scale: AffineScale) {
        guard network.contextSize == 0, network.skip == nil, network.activation.derivativeFollowsFromOutput,
              network.blocks.allSatisfy({ $0 == nil }) else { return nil }
        self.network = network
        self.scale = scale
    }

    /// The output [N, D] and log |det J| [N] of the forward or inverse map of `input` [N, D], N ≥ 1.
    func evaluate(_ input: Tensor, inverse: Bool) -> (output: Tensor, logAbsDetJacobian: Tensor) {
        let d = network.variableOrder.count
        precondition(input.rank == 2 && input.shape[1] == d && input.shape[0] > 0 && input.dtype == network.weights[0].dtype,
                     "affine autoregressive: input \(input.shape) \(input.dtype) does not fit \(d) dimensions of \(network.weights[0].dtype)")
        let combined = switch input.dtype {
        case .float32: AffineAutoregressivePass<Float>(input, network: network, scale: scale, inverse: inverse).record()
        case .float64: AffineAutoregressivePass<Double>(input, network: network, scale: scale, inverse: inverse).record()
        }
        return (combined.slice(alongAxis: 1, 0..<d), combined.select(alongAxis: 1, index: d))
    }
}

/// One evaluation: the forward computation, its saved values and its backward pass.
private final class AffineAutoregressivePass<T: TensorScalar> {
    let input: Tensor
    let weights: [Tensor], applied: [Tensor], biases: [Tensor], masks: [WeightMask]
    let activation: Activation
    let scale: AffineScale
    let inverse: Bool
    let n: Int, d: Int, passes: Int
    let widths: [Int], fanIns: [Int]
    /// `work` holds D zeros (the inverse's first network input), then per pass and layer the
    /// layer's output (hidden layers after the activation; the last layer's is the raw
    /// parameters, [rows, 2D]) at these offsets.
    var layerOffsets: [[Int]] = []
    /// Per pass, the offsets of its result [N, D] and of e^{±L(s)} [N, D].
    var resultOffsets: [Int] = [], factorOffsets: [Int] = []
    var work: [T] = []
    /// Σᵢ ±L(sᵢ) of the last pass, per row.
    var logDet: [T] = []

    init(_ input: Tensor, network: MaskedAutoregressiveNetwork, scale: AffineScale, inverse: Bool) {
        self.input = input
        weights = network.weights.map(\.value)
        applied = network.weights.indices.map { network.appliedWeight($0) }
        biases = network.biases.map(\.value)
        masks = network.masks
        activation = network.activation
        self.scale = scale
        self.inverse = inverse
        n = input.shape[0]
        d = input.shape[1]
        passes = inverse ? d : 1
        widths = weights.map { $0.shape[0] }
        fanIns = weights.map { $0.shape[1] }
    }

    /// Rows of pass `p`'s network input: the inverse's first pass is on zeros, the same for every row.
    func rows(_ p: Int) -> Int { inverse && p == 0 ? 1 : n }

    /// Pass `p`'s network input: the kernel's input `x` (forward), zeros, or the previous pass's result.
    func networkInput(_ p: Int, x: UnsafePointer<T>, work: UnsafePointer<T>) -> UnsafePointer<T> {
        inverse ? work + (p == 0 ? 0 : resultOffsets[p - 1]) : x
    }

    /// Runs the passes and records them as one operation whose output is [N, D + 1]: the result,
    /// then log |det J|.
    func record() -> Tensor {
        var size = d
        for p in 0..<passes {
            layerOffsets.append(widths.map { w in defer { size += rows(p) * w }; return size })
            resultOffsets.append(size); size += n * d
            factorOffsets.append(size); size += n * d
        }
        work = [T](unsafeUninitializedCapacity: size) { buffer, count in
            buffer.baseAddress!.initialize(repeating: 0, count: d)
            count = size
        }
        logDet = [T](repeating: 0, count: n)
        // Through pointers: element access to the class's arrays would check exclusivity each time.
        withPointers { x, w, b in
            work.withUnsafeMutableBufferPointer { work in
                logDet.withUnsafeMutableBufferPointer { logDet in
                    for p in 0..<passes {
                        forwardPass(p, x: x, weights: w, biases: b, work: work.baseAddress!, logDet: logDet.baseAddress!)
                    }
                }
            }
        }
        let out = work.withUnsafeBufferPointer { work in
            logDet.withUnsafeBufferPointer { logDet in
                let result = work.baseAddress! + resultOffsets[passes - 1], d = d
                return Tensor(shape: [n, d + 1], as: T.self) { o in
                    for r in 0..<n {
                        for i in 0..<d { o[r * (d + 1) + i] = result[r * d + i] }
                        o[r * (d + 1) + d] = logDet[r]
                    }
                }
            }
        }
        var inputs = [input]
        for l in weights.indices { inputs += [weights[l], biases[l]] }
        return Tensor.recordOperation("affineAutoregressive", output: out, inputs: inputs) { [self] g, needs in
            backward(g, needs)
        }
    }

    /// Calls `body` with the input's and every layer's applied weight and bias as pointers.
    func withPointers<R>(_ body: (UnsafePointer<T>, [UnsafePointer<T>], [UnsafePointer<T>]) -> R) -> R {
        input.withUnsafeBufferPointer(as: T.self) { x in
            withBuffers(applied) { w in withBuffers(biases) { b in body(x.baseAddress!, w, b) } }
        }
    }

    private func withBuffers<R>(_ tensors: [Tensor], _ body: ([UnsafePointer<T>]) -> R) -> R {
        withExtendedLifetime(tensors) {
            body(tensors.map { t in t.withUnsafeBufferPointer(as: T.self) { $0.baseAddress! } })
        }
    }

    /// Pass `p`: the network on its input [rows(p), D], then the affine map of the kernel's input
    /// `x` [N, D] with the network's parameters.
    private func forwardPass(_ p: Int, x: UnsafePointer<T>, weights w: [UnsafePointer<T>], biases b: [UnsafePointer<T>],
                             work: UnsafeMutablePointer<T>, logDet: UnsafeMutablePointer<T>) {
        let rowCount = rows(p), layers = widths.count, offsets = layerOffsets[p]
        var a = networkInput(p, x: x, work: work)
        for l in 0..<layers {
            let out = work + offsets[l], width = widths[l]
            broadcastRow(b[l], count: width, into: out, rows: rowCount, stride: width)
            T.gemm(transA: false, transB: true, m: rowCount, n: width, k: fanIns[l], alpha: 1, a: a, lda: fanIns[l],
                   b: w[l], ldb: fanIns[l], beta: 1, c: out, ldc: width)
            if l < layers - 1 { activation.apply(inPlace: out, rows: rowCount, columns: width, stride: width) }
            a = UnsafePointer(out)
        }
        let raw = a, factor = work + factorOffsets[p], result = work + resultOffsets[p]
        let sign: T = inverse ? -1 : 1, last = p == passes - 1, shared = rowCount == 1, d = d, n = n
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
    }

    /// Gradients of [input, W₀, b₀, W₁, b₁, …] from the gradient `g` [N, D + 1] of the output.
    private func backward(_ g: Tensor, _ needs: [Bool]) -> [Tensor?] {
        let layers = widths.count, scratchSize = n * (widths + fanIns).max()!
        let needsInput = needs[0]
        // One allocation for every gradient and the two scratch buffers, which hold the gradient of
        // one layer's output and of its input in turn.
        let weightOffsets = weights.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        let biasOffsets = biases.reduce(into: [weightOffsets.last!]) { $0.append($0.last! + $1.count) }
        // Zeroed: the parameters' gradients and ∂/∂input, accumulated over the passes. Then
        // ∂/∂(the current pass's output), ∂/∂log|det J| and the scratch.
        let zeroed = biasOffsets.last! + n * d
        let buffer = UnsafeMutablePointer<T>.allocate(capacity: zeroed + n * d + n + 2 * scratchSize)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 0, count: zeroed)
        let gradDirect = buffer + biasOffsets.last!, gradCurrent = buffer + zeroed, gradLogDet = gradCurrent + n * d
        var scratch = (gradLogDet + n, gradLogDet + n + scratchSize)
        g.withUnsafeBufferPointer(as: T.self) { g in
            for r in 0..<n {
                for i in 0..<d { gradCurrent[r * d + i] = g[r * (d + 1) + i] }
                gradLogDet[r] = g[r * (d + 1) + d]
            }
        }
        let exponential: Bool = if case .exp = scale { true } else { false }
        withPointers { x, w, _ in
        work.withUnsafeBufferPointer { work in
            let work = work.baseAddress!
            for p in (0..<passes).reversed() {
                let rowCount = rows(p), shared = rowCount == 1, last = p == passes - 1
                let raw = work + layerOffsets[p][layers - 1], factor = work + factorOffsets[p]
                let result = work + resultOffsets[p]
                // ∂/∂(μ, s), summed over rows when the pass ran on one.
                let gradRaw = scratch.0
                gradRaw.update(repeating: 0, count: rowCount * 2 * d)
                for r in 0..<n {
                    let parameters = raw + (shared ? 0 : r * 2 * d), target = gradRaw + (shared ? 0 : r * 2 * d)
                    let gd = last ? gradLogDet[r] : 0
                    for i in 0..<d {
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
                // Back through the layers; `scratch.0` holds the gradient of layer l's output.
                for l in (0..<layers).reversed() {
                    let width = widths[l], fanIn = fanIns[l], grad = scratch.0
                    if l < layers - 1 { activation.multiplyByDerivative(grad, output: work + layerOffsets[p][l], count: rowCount * width) }
                    let gradBias = buffer + biasOffsets[l]
                    for r in 0..<rowCount {
                        let row = grad + r * width
                        for j in 0..<width { gradBias[j] += row[j] }
                    }
                    let layerInput = l == 0 ? networkInput(p, x: x, work: work) : work + layerOffsets[p][l - 1]
                    T.gemm(transA: true, transB: false, m: width, n: fanIn, k: rowCount, alpha: 1, a: grad, lda: width,
                           b: layerInput, ldb: fanIn, beta: 1, c: buffer + weightOffsets[l], ldc: fanIn)
                    // The network input's gradient: the previous pass's output (inverse) or this input's.
                    guard l > 0 || (inverse ? p > 0 : needsInput) else { continue }
                    T.gemm(transA: false, transB: false, m: rowCount, n: fanIn, k: width, alpha: 1, a: grad, lda: width,
                           b: w[l], ldb: fanIn, beta: 0, c: scratch.1, ldc: fanIn)
                    scratch = (scratch.1, scratch.0)
                }
                guard inverse ? p > 0 : needsInput else { continue }
                if inverse {
                    gradCurrent.update(from: scratch.0, count: n * d)
                } else {
                    for e in 0..<(n * d) { gradDirect[e] += scratch.0[e] }
                }
            }
        }}
        func tensor(_ shape: [Int], from start: UnsafeMutablePointer<T>) -> Tensor {
            Tensor(shape: shape, as: T.self) { $0.baseAddress!.update(from: start, count: $0.count) }
        }
        var grads: [Tensor?] = [needsInput ? tensor([n, d], from: gradDirect) : nil]
        for l in 0..<layers {
            masks[l].mask(gradient: buffer + weightOffsets[l], rows: widths[l], columns: fanIns[l])
            grads.append(needs[1 + 2 * l] ? tensor(weights[l].shape, from: buffer + weightOffsets[l]) : nil)
            grads.append(needs[2 + 2 * l] ? tensor(biases[l].shape, from: buffer + biasOffsets[l]) : nil)
        }
        return grads
    }
}
