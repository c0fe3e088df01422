import Foundation
import FlowKernels
import Tensors

/// The rational-quadratic spline evaluated in one pass per element, from its raw parameters,
/// with a closed-form backward pass (Durkan et al. 2019, eq. 4–8).
///
/// Per element the kernel turns the 3K − 1 raw values into knots (softmax of the scaled logits
/// and running sums for widths and heights, softplus for the interior derivatives; with zuko's
/// ``RationalQuadraticSplineTransform/Parameterization/softClipped(slope:)``, softmax of the
/// soft-clipped logits and exp of the soft-clipped derivative raws), finds the bin, and
/// evaluates the rational function, its closed-form inverse or the identity tails (a circular
/// spline has 3K raw values, the last its shared end derivative, and wraps its input and output
/// into [−B, B) instead of having tails); the
/// exponentials and softpluses of a block of elements go through the vector kernels at once. The arithmetic is in
/// the storage type (`Float` for float32, as in the PyTorch libraries).
///
/// When a gradient will be needed, the forward pass also writes, per element, the derivatives of
/// the output and of the log-derivative with respect to the input and the 3K − 1 raw parameters
/// (``BinDerivatives`` chained through the running sums and the softmaxes by hand). The backward
/// passes are then one scaled copy each: ∂L/∂raw = ∂L/∂y · ∂y/∂raw.
enum RationalQuadraticSplineKernel {
    /// y = f(x) (or x = f⁻¹(y) when `inverse`) and log |df/dx| (or log |df⁻¹/dy|) for inputs [N]
    /// and raw parameters [N, 3K − 1] of `spline`.
    ///
    /// Float32 runs eight elements at a time in the C kernel (`FlowKernels/spline.c`) when the CPU
    /// has AVX2 and FMA and `vectorized` is true; otherwise, and for float64, in the generic loop below.
    static func evaluate(_ input: Tensor, parameters: Tensor, spline: RationalQuadraticSplineTransform,
                         inverse: Bool, vectorized: Bool = true) -> (output: Tensor, logAbsDerivative: Tensor) {
        precondition(parameters.shape == [input.count, spline.parameterCount] && parameters.dtype == input.dtype,
                     "spline: parameters \(parameters.shape) \(parameters.dtype) do not fit \(input.count) inputs of \(input.dtype)")
        switch input.dtype {
        case .float32:
            if vectorized && vectorKernelAvailable && spline.bins <= Int(FK_SPLINE_MAX_BINS) {
                return evaluateVectorized(input, parameters: parameters, spline: spline, inverse: inverse)
            }
            return evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Float.self)
        case .float64: return evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Double.self)
        }
    }

    /// Whether this CPU runs the vector kernel.
    static let vectorKernelAvailable = fk_spline_available() != 0

    /// The float32 kernel in C: blocks of eight elements, split between the threads. Its forward
    /// pass saves 19 + 2K floats per element for the backward pass (see `spline.c`).
    private static func evaluateVectorized(_ input: Tensor, parameters: Tensor, spline: RationalQuadraticSplineTransform,
                                           inverse: Bool) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count, blocks = (n + 7) / 8
        let inputs = [input, parameters]
        let recording = Tensor.recordsOperation(on: inputs)
        var values = Tensor(uninitializedShape: [2, n], dtype: .float32)
        var state = Tensor(uninitializedShape: [recording ? blocks * 8 * fk_spline_state_stride(spline.bins) : 0], dtype: .float32)
        let constants = spline.kernelConstants
        var shape = fk_spline(bins: spline.bins, bound: Float(spline.bound), minimum_width: Float(constants.minimumWidth),
                              minimum_height: Float(constants.minimumHeight), minimum_derivative: Float(constants.minimumDerivative),
                              logit_scale: Float(constants.logitScale), inverse: inverse ? 1 : 0,
                              logit_clip: Float(constants.clipBounds?.logits ?? 0),
                              derivative_clip: Float(constants.clipBounds?.derivatives ?? 0),
                              circular: spline.boundary == .circular ? 1 : 0)
        withUnsafePointer(to: &shape) { shape in
        input.withUnsafeBufferPointer(as: Float.self) { x in
        parameters.withUnsafeBufferPointer(as: Float.self) { raw in
        values.withUnsafeMutableBufferPointer(as: Float.self) { out in
        state.withUnsafeMutableBufferPointer(as: Float.self) { state in
            Parallel.chunks(blocks, threshold: 256) { start, end in
                fk_spline_forward(shape, x.baseAddress, raw.baseAddress, n, 8 * start, Swift.min(8 * end, n),
                                  out.baseAddress, out.baseAddress.map { $0 + n }, recording ? state.baseAddress : nil)
            }
        }}}}}

        /// ∂L/∂x and ∂L/∂raw from g = [∂L/∂(output), ∂L/∂(log-derivative)].
        func gradients(_ g: Tensor, _ needs: [Bool]) -> [Tensor?] {
            withUnsafePointer(to: &shape) { shape in
            g.withUnsafeBufferPointer(as: Float.self) { g in
            state.withUnsafeBufferPointer(as: Float.self) { state in
                let gOutput = g.baseAddress, gLog = g.baseAddress.map { $0 + n }
                func gradient(_ dimensions: [Int], x: Bool) -> Tensor {
                    Tensor(shape: dimensions, as: Float.self) { target in
                        Parallel.chunks(blocks, threshold: 256) { start, end in
                            fk_spline_backward(shape, gOutput, gLog, state.baseAddress, n, 8 * start, Swift.min(8 * end, n),
                                               x ? target.baseAddress : nil, x ? nil : target.baseAddress)
                        }
                    }
                }
                return [needs[0] ? gradient(input.shape, x: true) : nil, needs[1] ? gradient(parameters.shape, x: false) : nil]
            }}}
        }
        return outputs(values, inputs: inputs, recording: recording, backward: gradients)
    }

    /// Outputs and log-derivatives, each shaped as the input, from `values` [2, N]: recorded as
    /// one operation (one gradient for the raw parameters) when `recording`.
    private static func outputs(_ values: Tensor, inputs: [Tensor], recording: Bool,
                                backward: @escaping (Tensor, [Bool]) -> [Tensor?]) -> (output: Tensor, logAbsDerivative: Tensor) {
        let both = recording ? Tensor.recordOperation("rqSpline", output: values, inputs: inputs, backward: backward) : values
        let shape = inputs[0].shape
        return (both.select(alongAxis: 0, index: 0).reshaped(to: shape), both.select(alongAxis: 0, index: 1).reshaped(to: shape))
    }

    /// Elements whose exponentials and softpluses are computed together.
    private static let blockSize = 32

    private static func evaluate<T: TensorScalar>(_ input: Tensor, parameters: Tensor, spline: RationalQuadraticSplineTransform,
                                                  inverse: Bool, as _: T.Type) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count, k = spline.bins, p = spline.parameterCount
        // K − 1 interior derivatives, then (circular) the shared end derivative.
        let circular = spline.boundary == .circular, derivativeCount = p - 2 * k
        let inputs = [input, parameters]
        let recording = Tensor.recordsOperation(on: inputs)
        // Per element: [∂y/∂x, ∂y/∂raw (P values), ∂log/∂x, ∂log/∂raw (P values)].
        let stride = 2 * (p + 1)
        // Outputs, then log-derivatives: one operation, so that the backward pass reads the
        // derivatives once and writes one gradient for the raw parameters.
        var values = Tensor(uninitializedShape: [2, n], dtype: T.dtype)
        var derivatives = Tensor(uninitializedShape: [recording ? n * stride : 0], dtype: T.dtype)
        let constants = spline.kernelConstants
        let bound = T(spline.bound), minimumWidth = T(constants.minimumWidth), minimumHeight = T(constants.minimumHeight)
        let minimumDerivative = T(constants.minimumDerivative), logitScale = T(constants.logitScale)
        let clipBounds = constants.clipBounds.map { (logits: T($0.logits), derivatives: T($0.derivatives)) }
        let widthScale = 1 - minimumWidth * T(k), heightScale = 1 - minimumHeight * T(k)
        // ∂knot/∂softmax per included bin, times the logit scale that the chain rule adds.
        let widthFactor = 2 * bound * widthScale * logitScale, heightFactor = 2 * bound * heightScale * logitScale
        input.withUnsafeBufferPointer(as: T.self) { x in
        parameters.withUnsafeBufferPointer(as: T.self) { raw in
        values.withUnsafeMutableBufferPointer(as: T.self) { valuesOut in
        derivatives.withUnsafeMutableBufferPointer(as: T.self) { dOut in
            let out = valuesOut.baseAddress!, logOut = out + n
            Parallel.chunks(n, threshold: 2048) { start, end in
                // Per block element: 2K softmax numerators, then the K − 1 interior derivatives
                // (and a circular spline's end derivative) without their minimum and their
                // slopes in the raw parameters.
                let rowScratch = 2 * k + 2 * derivativeCount
                let scratch = UnsafeMutablePointer<T>.allocate(capacity: blockSize * rowScratch)
                defer { scratch.deallocate() }
                let exps = scratch, derivativeValues = scratch + blockSize * 2 * k
                let derivativeSlopes = derivativeValues + blockSize * derivativeCount
                var blockStart = start
                while blockStart < end {
                    let count = Swift.min(blockSize, end - blockStart)
                    for e in 0..<count {
                        let row = raw.baseAddress! + (blockStart + e) * p
                        var largestWidth = row[0], largestHeight = row[k]
                        for m in 1..<k {
                            largestWidth = Swift.max(largestWidth, row[m])
                            largestHeight = Swift.max(largestHeight, row[k + m])
                        }
                        if let clipBounds {
                            // The clip is increasing, so the largest clipped logit is the clipped largest.
                            let b = clipBounds.logits
                            let clippedWidth = softClip(largestWidth, bound: b), clippedHeight = softClip(largestHeight, bound: b)
                            for m in 0..<k {
                                exps[e * 2 * k + m] = softClip(row[m], bound: b) - clippedWidth
                                exps[e * 2 * k + k + m] = softClip(row[k + m], bound: b) - clippedHeight
                            }
                            for m in 0..<derivativeCount {
                                derivativeValues[e * derivativeCount + m] = softClip(row[2 * k + m], bound: clipBounds.derivatives)
                            }
                        } else {
                            for m in 0..<k {
                                exps[e * 2 * k + m] = logitScale * (row[m] - largestWidth)
                                exps[e * 2 * k + k + m] = logitScale * (row[k + m] - largestHeight)
                            }
                            for m in 0..<derivativeCount { derivativeValues[e * derivativeCount + m] = row[2 * k + m] }
                        }
                    }
                    T.apply(.exp, exps, exps, count: count * 2 * k)
                    if let clipBounds {
                        // d = e^{clip(r)}, ∂d/∂r = d · clip′(r).
                        T.apply(.exp, derivativeValues, derivativeValues, count: count * derivativeCount)
                        if recording {
                            for e in 0..<count {
                                let row = raw.baseAddress! + (blockStart + e) * p + 2 * k
                                for m in 0..<derivativeCount {
                                    derivativeSlopes[e * derivativeCount + m] = derivativeValues[e * derivativeCount + m]
                                        * softClipSlope(row[m], bound: clipBounds.derivatives)
                                }
                            }
                        }
                    } else {
                        // d = m_d + softplus(r), ∂d/∂r = sigmoid(r).
                        if recording { T.apply(.sigmoid, derivativeValues, derivativeSlopes, count: count * derivativeCount) }
                        T.apply(.softplus, derivativeValues, derivativeValues, count: count * derivativeCount)
                    }

                    for e in 0..<count {
                        let i = blockStart + e
                        // A circular spline sees its input as an angle, wrapped into [−B, B).
                        let v = circular ? wrapAngle(x[i], bound: bound) : x[i]
                        let dRow = recording ? dOut.baseAddress! + i * stride : nil
                        guard v >= -bound && v <= bound else {
                            // Identity tails: y = x, log-derivative 0 (for a circular spline, only ±∞).
                            out[i] = x[i]
                            logOut[i] = 0
                            if let dRow {
                                dRow.initialize(repeating: 0, count: stride)
                                dRow[0] = 1
                            }
                            continue
                        }
                        let widths = exps + e * 2 * k, heights = widths + k
                        let (b, widthSum, heightSum, x0, y0, x1, y1) = RationalQuadraticSplineKernel.locateBin(
                            of: v, inverse: inverse, widths: widths, heights: heights, bins: k, bound: bound, minimumWidth: minimumWidth,
                            minimumHeight: minimumHeight, widthScale: widthScale, heightScale: heightScale)
                        // The end derivatives are 1 (linear tails) or the shared learned one (circular).
                        let derivativeRow = derivativeValues + e * derivativeCount
                        let end = circular ? minimumDerivative + derivativeRow[k - 1] : 1
                        let d0 = b == 0 ? end : minimumDerivative + derivativeRow[b - 1]
                        let d1 = b == k - 1 ? end : minimumDerivative + derivativeRow[b]
                        let bin = BinDerivatives(v, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1,
                                                 inverse: inverse, withPartials: dRow != nil)
                        // f(±B) = ±B, so a circular output of B (or just above, by rounding) is −B.
                        out[i] = circular ? wrapAngle(bin.output, bound: bound) : bin.output
                        logOut[i] = bin.logDerivative
                        guard let dRow else { continue }

                        let sums = (widthSum, widthSum + widths[b], heightSum, heightSum + heights[b])
                        if let clipBounds {
                            // The softmax's inputs are clip(raw): ∂/∂raw_m takes the factor clip′(raw_m),
                            // which joins softmax_m (the sums above are taken).
                            let row = raw.baseAddress! + i * p
                            for m in 0..<k {
                                widths[m] *= softClipSlope(row[m], bound: clipBounds.logits)
                                heights[m] *= softClipSlope(row[k + m], bound: clipBounds.logits)
                            }
                        }
                        let slopeRow = derivativeSlopes + e * derivativeCount
                        chain(bin.outputPartials, into: dRow, bin: b, bins: k, circular: circular, widths: widths, heights: heights,
                              sums: sums, derivativeSlopes: slopeRow, widthFactor: widthFactor, heightFactor: heightFactor)
                        chain(bin.logPartials, into: dRow + p + 1, bin: b, bins: k, circular: circular, widths: widths, heights: heights,
                              sums: sums, derivativeSlopes: slopeRow, widthFactor: widthFactor, heightFactor: heightFactor)
                    }
                    blockStart += count
                }
            }
        }}}}

        /// ∂L/∂x and ∂L/∂raw from g = [∂L/∂(output), ∂L/∂(log-derivative)].
        func gradients(_ g: Tensor, _ needs: [Bool]) -> [Tensor?] {
            RationalQuadraticSplineKernel.gradients(g, needs, derivatives: derivatives, inputShape: input.shape,
                                                    parametersShape: parameters.shape, parameterCount: p, as: T.self)
        }
        return outputs(values, inputs: inputs, recording: recording, backward: gradients)
    }

    /// Writes the derivatives of one output with respect to the element's input and raw parameters
    /// from its `partials` with respect to (v, x_b, x_{b+1}, y_b, y_{b+1}, d_b, d_{b+1}).
    ///
    /// Interior knot j is −B + 2B (j·m + scale·Σ_{m<j} softmax_m), so ∂knot_j/∂softmax_m =
    /// 2B·scale·[m < j]; knots 0 and K are fixed. Through the softmax, ∂/∂raw_m =
    /// softmax_m (g_m − Σ_j softmax_j g_j), where Σ_j softmax_j g_j needs only the running sums
    /// `sums` (Σ_{m<b} and Σ_{m≤b} of the width, then of the height softmax); the factors include
    /// the logit scale. `widths` and `heights` hold softmax_m times the slope of the softmax's
    /// input in raw_m (1 unless the logits are soft-clipped). Interior derivative j is a function
    /// of raw_{2K+j−1} with slope `derivativeSlopes[j − 1]` (the sigmoid for m_d + softplus). A
    /// `circular` spline's end derivative d_0 = d_K is the same function of raw_{3K−1}, with slope
    /// `derivativeSlopes[K − 1]`: it takes the partials of both bin ends that are spline ends.
    /// ∂L/∂x and ∂L/∂raw from g = [∂L/∂(output), ∂L/∂(log-derivative)] and the saved per-element
    /// partials `derivatives` (rows of 2(P + 1): ∂y/∂x and ∂y/∂raw, then ∂log y′/∂x and
    /// ∂log y′/∂raw). Shared by the rational-quadratic and linear-rational kernels, which save them alike.
    static func gradients<T: TensorScalar>(_ g: Tensor, _ needs: [Bool], derivatives: Tensor, inputShape: [Int], parametersShape: [Int],
                                           parameterCount p: Int, as _: T.Type) -> [Tensor?] {
        let n = inputShape.reduce(1, *), stride = 2 * (p + 1)
        return g.withUnsafeBufferPointer(as: T.self) { g in
        derivatives.withUnsafeBufferPointer(as: T.self) { d in
            let gOutput = g.baseAddress!, gLog = gOutput + n
            let gInput = needs[0] ? Tensor(shape: inputShape, as: T.self) { gx in
                Parallel.chunks(n) { start, end in
                    for i in start..<end { gx[i] = gOutput[i] * d[i * stride] + gLog[i] * d[i * stride + p + 1] }
                }
            } : nil
            let gRaw = needs[1] ? Tensor(shape: parametersShape, as: T.self) { gr in
                Parallel.chunks(n, threshold: 1024) { start, end in
                    for i in start..<end {
                        let (go, gl) = (gOutput[i], gLog[i]), target = gr.baseAddress! + i * p
                        let outputRow = d.baseAddress! + i * stride + 1, logRow = outputRow + p + 1
                        for m in 0..<p { target[m] = go * outputRow[m] + gl * logRow[m] }
                    }
                }
            } : nil
            return [gInput, gRaw]
        }}
    }

    /// Normalises one element's width and height softmax numerators (`widths`, `heights`, K each,
    /// in place) and walks the knots to the bin b with knot_b ≤ v < knot_{b+1} (knots in y for the
    /// inverse). Knot j is −B + 2B(j·m + scale·Σ_{m<j} softmax_m) for 0 < j < K; knots 0 and K are
    /// ∓B. Returns b, Σ_{m<b} of the width and height softmaxes, and the bin's corners. Shared by
    /// the rational-quadratic and linear-rational kernels, whose knots are the same.
    @inline(__always)
    static func locateBin<T: TensorScalar>(of v: T, inverse: Bool, widths: UnsafeMutablePointer<T>, heights: UnsafeMutablePointer<T>,
                                           bins k: Int, bound: T, minimumWidth: T, minimumHeight: T, widthScale: T, heightScale: T)
        -> (bin: Int, widthSum: T, heightSum: T, x0: T, y0: T, x1: T, y1: T) {
        var widthTotal: T = 0, heightTotal: T = 0
        for m in 0..<k {
            widthTotal += widths[m]
            heightTotal += heights[m]
        }
        let widthNormalizer = 1 / widthTotal, heightNormalizer = 1 / heightTotal
        for m in 0..<k {
            widths[m] *= widthNormalizer
            heights[m] *= heightNormalizer
        }
        var b = 0
        var widthSum: T = 0, heightSum: T = 0
        var x0 = -bound, y0 = -bound, x1 = bound, y1 = bound
        while b < k - 1 {
            let nextWidthSum = widthSum + widths[b], nextHeightSum = heightSum + heights[b]
            x1 = -bound + 2 * bound * (T(b + 1) * minimumWidth + widthScale * nextWidthSum)
            y1 = -bound + 2 * bound * (T(b + 1) * minimumHeight + heightScale * nextHeightSum)
            if (inverse ? y1 : x1) > v { break }
            widthSum = nextWidthSum
            heightSum = nextHeightSum
            x0 = x1
            y0 = y1
            x1 = bound
            y1 = bound
            b += 1
        }
        return (b, widthSum, heightSum, x0, y0, x1, y1)
    }

    @inline(__always)
    static func chain<T: TensorScalar>(_ partials: SIMD8<T>, into row: UnsafeMutablePointer<T>, bin b: Int, bins k: Int,
                                               circular: Bool, widths: UnsafePointer<T>, heights: UnsafePointer<T>, sums: (T, T, T, T),
                                               derivativeSlopes: UnsafePointer<T>, widthFactor: T, heightFactor: T) {
        row[0] = partials[0]
        let lowerInterior = b >= 1, upperInterior = b + 1 <= k - 1
        let wLower = lowerInterior ? widthFactor * partials[1] : 0, wUpper = upperInterior ? widthFactor * partials[2] : 0
        let hLower = lowerInterior ? heightFactor * partials[3] : 0, hUpper = upperInterior ? heightFactor * partials[4] : 0
        let wDot = wLower * sums.0 + wUpper * sums.1, hDot = hLower * sums.2 + hUpper * sums.3
        for m in 0..<k {
            let below = m < b, within = m <= b
            row[1 + m] = widths[m] * ((below ? wLower : 0) + (within ? wUpper : 0) - wDot)
            row[1 + k + m] = heights[m] * ((below ? hLower : 0) + (within ? hUpper : 0) - hDot)
        }
        let derivatives = row + 1 + 2 * k
        derivatives.initialize(repeating: 0, count: circular ? k : k - 1)
        if lowerInterior { derivatives[b - 1] = partials[5] * derivativeSlopes[b - 1] }
        if upperInterior { derivatives[b] = partials[6] * derivativeSlopes[b] }
        guard circular else { return }
        if !lowerInterior { derivatives[k - 1] += partials[5] * derivativeSlopes[k - 1] }
        if !upperInterior { derivatives[k - 1] += partials[6] * derivativeSlopes[k - 1] }
    }
}

/// z wrapped into [−B, B): z − 2B·⌊(z + B)/2B⌋, kept in range when rounding puts it a step
/// outside; NaN for ±∞ and NaN. The derivative is 1 wherever it is continuous.
@inline(__always)
func wrapAngle<T: TensorScalar>(_ z: T, bound: T) -> T {
    let period = 2 * bound
    let wrapped = z - period * ((z + bound) / period).rounded(.down)
    return wrapped < -bound || wrapped >= bound ? -bound : wrapped
}

extension RationalQuadraticSplineTransform {
    /// The constants of the kernels' formulas for this parameterization.
    struct KernelConstants {
        var minimumWidth: Double, minimumHeight: Double, minimumDerivative: Double, logitScale: Double
        /// The bounds b of the soft clip s/(1 + |s|/b) of the width and height logits and of the
        /// derivative raws, whose derivatives are then exp(clip(s)); nil for m_d + softplus(s).
        var clipBounds: (logits: Double, derivatives: Double)?
    }

    var kernelConstants: KernelConstants {
        switch parameterization {
        case .minimumSizes:
            KernelConstants(minimumWidth: minimumBinWidth, minimumHeight: minimumBinHeight, minimumDerivative: minimumDerivative,
                            logitScale: logitScale, clipBounds: nil)
        case .softClipped(let slope):
            // zuko: widths w/(1 + |2w/log slope|), derivatives d/(1 + |d/log slope|).
            KernelConstants(minimumWidth: 0, minimumHeight: 0, minimumDerivative: 0, logitScale: 1,
                            clipBounds: (logits: -Foundation.log(slope) / 2, derivatives: -Foundation.log(slope)))
        }
    }
}

/// One bin of the spline: output and log-derivative, with their partials with respect to
/// u = (v, x_k, xₖ₊₁, y_k, yₖ₊₁, d_k, dₖ₊₁) in closed form.
///
/// With w = xₖ₊₁ − x_k, h = yₖ₊₁ − y_k, s = h/w, δ = d_k + dₖ₊₁ − 2s, ξ ∈ [0, 1]:
///
///   Y(ξ) = y_k + h·R,  R = (sξ² + d_k ξ(1−ξ)) / D,  D = s + δ ξ(1−ξ),
///   log dY/dx = log(s² M / D²),  M = dₖ₊₁ξ² + 2s ξ(1−ξ) + d_k (1−ξ)².
///
/// Forward, ξ = (v − x_k)/w. Inverse, ξ solves Y(ξ) = v, so ∂ξ/∂v = 1/Y_ξ and ∂ξ/∂θ = −Y_θ/Y_ξ
/// (implicit differentiation); the output is x_k + ξw and the log-derivative is negated.
/// A ξ pushed outside [0, 1] by rounding is clamped and then carries no partials.
struct BinDerivatives<T: TensorScalar> {
    var output: T
    var logDerivative: T
    var outputPartials = SIMD8<T>.zero
    var logPartials = SIMD8<T>.zero

    @inline(__always)
    init(_ v: T, x0: T, x1: T, y0: T, y1: T, d0: T, d1: T, inverse: Bool, withPartials: Bool) {
        let w = x1 - x0, h = y1 - y0, s = h / w
        let curvature = d0 + d1 - 2 * s
        var xi: T
        if inverse {
            // Cancellation-free root 2c / (−b − √(b² − 4ac)) of aξ² + bξ + c = 0.
            let offset = v - y0
            let a = h * (s - d0) + offset * curvature
            let b = h * d0 - offset * curvature
            let c = -s * offset
            let discriminant = Swift.max(b * b - 4 * a * c, 0)
            xi = 2 * c / (-b - discriminant.squareRoot())
        } else {
            xi = (v - x0) / w
        }
        let clamped = !(xi >= 0 && xi <= 1)
        if clamped { xi = xi < 0 ? 0 : (xi > 1 ? 1 : 0) }
        let oneMinus = 1 - xi, xi1 = xi * oneMinus
        let denominator = s + curvature * xi1
        let ratio = (s * xi * xi + d0 * xi1) / denominator
        let numerator = d1 * xi * xi + 2 * s * xi1 + d0 * oneMinus * oneMinus
        let sOverD = s / denominator
        let log = T.log(sOverD * sOverD * numerator)
        output = inverse ? x0 + xi * w : y0 + h * ratio
        logDerivative = inverse ? -log : log
        guard withPartials else { return }

        // ∂s/∂u: s = (y_{k+1} − y_k)/(x_{k+1} − x_k).
        let sPartials = SIMD8<T>(0, s / w, -s / w, -1 / w, 1 / w, 0, 0, 0)
        // R and log(s²M/D²) as functions of (ξ, s, d_k, d_{k+1}).
        let twoXiMinus = 1 - 2 * xi
        let dDdXi = curvature * twoXiMinus
        let rXi = (2 * s * xi + d0 * twoXiMinus - ratio * dDdXi) / denominator
        let rS = (xi * xi - ratio * (1 - 2 * xi1)) / denominator
        let rD0 = xi1 * (1 - ratio) / denominator, rD1 = -ratio * xi1 / denominator
        let lXi = (2 * d1 * xi + 2 * s * twoXiMinus - 2 * d0 * oneMinus) / numerator - 2 * dDdXi / denominator
        let lS = 2 / s + 2 * xi1 / numerator - 2 * (1 - 2 * xi1) / denominator
        let lD0 = oneMinus * oneMinus / numerator - 2 * xi1 / denominator
        let lD1 = xi * xi / numerator - 2 * xi1 / denominator
        // Partials at fixed ξ, and dY/dξ.
        let yFixed = h * rS * sPartials + SIMD8<T>(0, 0, 0, 1 - ratio, ratio, h * rD0, h * rD1, 0)
        let lFixed = lS * sPartials + SIMD8<T>(0, 0, 0, 0, 0, lD0, lD1, 0)
        let yXi = h * rXi
        var xiPartials: SIMD8<T>
        if clamped {
            xiPartials = .zero
        } else if inverse {
            xiPartials = (SIMD8<T>(1, 0, 0, 0, 0, 0, 0, 0) - yFixed) / yXi
        } else {
            xiPartials = SIMD8<T>(1 / w, (xi - 1) / w, -xi / w, 0, 0, 0, 0, 0)
        }
        if inverse {
            outputPartials = w * xiPartials + SIMD8<T>(0, oneMinus, xi, 0, 0, 0, 0, 0)
            logPartials = -(lXi * xiPartials + lFixed)
        } else {
            outputPartials = yXi * xiPartials + yFixed
            logPartials = lXi * xiPartials + lFixed
        }
    }
}
