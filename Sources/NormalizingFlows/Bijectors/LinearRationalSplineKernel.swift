import Foundation
import Tensors

/// The linear-rational spline evaluated in one pass per element, from its raw parameters, with a
/// closed-form backward pass (Dolatabadi, Erfani & Leckie 2020, eq. 8–10; see
/// ``LinearRationalSplineTransform`` for the form evaluated).
///
/// Per element the kernel turns the 4K − 1 raw values into knots (softmax of the scaled logits
/// and running sums for widths and heights), interior derivatives (softplus) and intermediate
/// points (sigmoid), finds the bin, and evaluates the linear-rational piece, its closed-form
/// inverse or the identity tails; the exponentials, softpluses and sigmoids of a block of elements
/// go through the vector kernels at once. The arithmetic is in the storage type (`Float` for
/// float32, as in the PyTorch libraries).
///
/// When a gradient will be needed, the forward pass also writes, per element, the derivatives of
/// the output and of the log-derivative with respect to the input and the 4K − 1 raw parameters
/// (``LinearRationalBin`` chained through the running sums and the softmaxes with
/// `RationalQuadraticSplineKernel.chain`, which both splines share, and through the sigmoid of
/// λ). The backward passes are then one scaled copy each: ∂L/∂raw = ∂L/∂y · ∂y/∂raw.
enum LinearRationalSplineKernel {
    /// y = f(x) (or x = f⁻¹(y) when `inverse`) and log |df/dx| (or log |df⁻¹/dy|) for inputs [N]
    /// and raw parameters [N, 4K − 1] of `spline`.
    static func evaluate(_ input: Tensor, parameters: Tensor, spline: LinearRationalSplineTransform,
                         inverse: Bool) -> (output: Tensor, logAbsDerivative: Tensor) {
        precondition(parameters.shape == [input.count, spline.parameterCount] && parameters.dtype == input.dtype,
                     "linear-rational spline: parameters \(parameters.shape) \(parameters.dtype) do not fit \(input.count) inputs of \(input.dtype)")
        switch input.dtype {
        case .float32: return evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Float.self)
        case .float64: return evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Double.self)
        }
    }

    /// Elements whose exponentials, softpluses and sigmoids are computed together.
    private static let blockSize = 32

    private static func evaluate<T: TensorScalar>(_ input: Tensor, parameters: Tensor, spline: LinearRationalSplineTransform,
                                                  inverse: Bool, as _: T.Type) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count, k = spline.bins, p = spline.parameterCount
        let inputs = [input, parameters]
        let recording = Tensor.recordsOperation(on: inputs)
        // Per element: [∂y/∂x, ∂y/∂raw (P values), ∂log/∂x, ∂log/∂raw (P values)].
        let stride = 2 * (p + 1)
        // Outputs, then log-derivatives: one operation, so that the backward pass reads the
        // derivatives once and writes one gradient for the raw parameters.
        var values = Tensor(uninitializedShape: [2, n], dtype: T.dtype)
        var derivatives = Tensor(uninitializedShape: [recording ? n * stride : 0], dtype: T.dtype)
        let bound = T(spline.bound), minimumWidth = T(spline.minimumBinWidth), minimumHeight = T(spline.minimumBinHeight)
        let minimumDerivative = T(spline.minimumDerivative), logitScale = T(spline.logitScale)
        let minimumLambda = T(spline.minimumLambda), lambdaScale = 1 - 2 * minimumLambda
        let widthScale = 1 - minimumWidth * T(k), heightScale = 1 - minimumHeight * T(k)
        // ∂knot/∂softmax per included bin, times the logit scale that the chain rule adds.
        let widthFactor = 2 * bound * widthScale * logitScale, heightFactor = 2 * bound * heightScale * logitScale
        input.withUnsafeBufferPointer(as: T.self) { x in
        parameters.withUnsafeBufferPointer(as: T.self) { raw in
        values.withUnsafeMutableBufferPointer(as: T.self) { valuesOut in
        derivatives.withUnsafeMutableBufferPointer(as: T.self) { dOut in
            let out = valuesOut.baseAddress!, logOut = out + n
            Parallel.chunks(n, threshold: 2048) { start, end in
                // Per block element: 2K softmax numerators, the K − 1 interior derivatives without
                // their minimum and their slopes in the raw parameters, then the K sigmoids of
                // the λ raws (λ without its affine map).
                let rowScratch = 2 * k + 2 * (k - 1) + k
                let scratch = UnsafeMutablePointer<T>.allocate(capacity: blockSize * rowScratch)
                defer { scratch.deallocate() }
                let exps = scratch, derivativeValues = scratch + blockSize * 2 * k
                let derivativeSlopes = derivativeValues + blockSize * (k - 1)
                let lambdaSigmoids = derivativeSlopes + blockSize * (k - 1)
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
                        for m in 0..<k {
                            exps[e * 2 * k + m] = logitScale * (row[m] - largestWidth)
                            exps[e * 2 * k + k + m] = logitScale * (row[k + m] - largestHeight)
                            lambdaSigmoids[e * k + m] = row[3 * k - 1 + m]
                        }
                        for m in 0..<(k - 1) { derivativeValues[e * (k - 1) + m] = row[2 * k + m] }
                    }
                    T.apply(.exp, exps, exps, count: count * 2 * k)
                    // d = m_d + softplus(r), ∂d/∂r = sigmoid(r); λ = m_λ + (1 − 2m_λ) sigmoid(r).
                    if recording { T.apply(.sigmoid, derivativeValues, derivativeSlopes, count: count * (k - 1)) }
                    T.apply(.softplus, derivativeValues, derivativeValues, count: count * (k - 1))
                    T.apply(.sigmoid, lambdaSigmoids, lambdaSigmoids, count: count * k)

                    for e in 0..<count {
                        let i = blockStart + e
                        let v = x[i]
                        let dRow = recording ? dOut.baseAddress! + i * stride : nil
                        guard v >= -bound && v <= bound else {
                            // Identity tails: y = x, log-derivative 0.
                            out[i] = v
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
                        let derivativeRow = derivativeValues + e * (k - 1)
                        let d0 = b == 0 ? 1 : minimumDerivative + derivativeRow[b - 1]
                        let d1 = b == k - 1 ? 1 : minimumDerivative + derivativeRow[b]
                        let sigmoid = lambdaSigmoids[e * k + b]
                        let bin = LinearRationalBin(v, x0: x0, x1: x1, y0: y0, y1: y1, d0: d0, d1: d1,
                                                    lambda: minimumLambda + lambdaScale * sigmoid,
                                                    inverse: inverse, withPartials: dRow != nil)
                        out[i] = bin.output
                        logOut[i] = bin.logDerivative
                        guard let dRow else { continue }

                        let sums = (widthSum, widthSum + widths[b], heightSum, heightSum + heights[b])
                        let slopeRow = derivativeSlopes + e * (k - 1)
                        // ∂λ_b/∂raw = (1 − 2m_λ) σ (1 − σ).
                        let lambdaSlope = lambdaScale * sigmoid * (1 - sigmoid)
                        /// Knots and derivatives as for the rational-quadratic spline, then the λ raws.
                        @inline(__always) func chain(_ partials: SIMD8<T>, into row: UnsafeMutablePointer<T>) {
                            RationalQuadraticSplineKernel.chain(
                                partials, into: row, bin: b, bins: k, circular: false, widths: widths, heights: heights, sums: sums,
                                derivativeSlopes: slopeRow, widthFactor: widthFactor, heightFactor: heightFactor)
                            let lambdas = row + 3 * k
                            lambdas.initialize(repeating: 0, count: k)
                            lambdas[b] = partials[7] * lambdaSlope
                        }
                        chain(bin.outputPartials, into: dRow)
                        chain(bin.logPartials, into: dRow + p + 1)
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
        let both = recording ? Tensor.recordOperation("lrSpline", output: values, inputs: inputs, backward: gradients) : values
        return (both.select(alongAxis: 0, index: 0).reshaped(to: input.shape),
                both.select(alongAxis: 0, index: 1).reshaped(to: input.shape))
    }
}

/// One bin of the linear-rational spline: output and log-derivative, with their partials with
/// respect to u = (v, x_k, xₖ₊₁, y_k, yₖ₊₁, d_k, dₖ₊₁, λ) in closed form.
///
/// With w = xₖ₊₁ − x_k, h = yₖ₊₁ − y_k, s = h/w, N = λ√d_k + (1 − λ)√dₖ₊₁ and the end e
/// of the bin's half that holds the point (k below the intermediate point, k + 1 above; f_e = λ
/// or 1 − λ), the forward map is
///
///   Y = y_e + d_e δ/E,  δ = v − x_e,  E = 1 + (c_e − 1) τ,  τ = |δ|/(f_e w),  c_e = √d_e N/s,
///   log dY/dx = log d_e − 2 log E,
///
/// so ∇Y = e_{y_e} + (δ/E) ∇d_e + (d_e/E) ∇δ − (d_e δ/E²) ∇E and ∇log = ∇d_e/d_e − 2 ∇E/E, with
/// ∇E = τ ∇c_e + (c_e − 1) ∇τ, ∇c_e = c_e (∇√d_e/√d_e + ∇N/N − ∇s/s) and
/// ∇τ = ±∇δ/(f_e w) − τ (∇f_e/f_e + ∇w/w). The inverse finds τ = r/(c_e(1 − r) + r) from
/// r = |v − y_e|/|y_c − y_e| and differentiates implicitly: ∂x/∂v = 1/Y_x, ∂x/∂θ = −Y_θ/Y_x,
/// and the log-derivative −log Y_x(x(v, θ), θ) takes the chain rule through x.
struct LinearRationalBin<T: TensorScalar> {
    var output: T
    var logDerivative: T
    var outputPartials = SIMD8<T>.zero
    var logPartials = SIMD8<T>.zero

    @inline(__always)
    init(_ v: T, x0: T, x1: T, y0: T, y1: T, d0: T, d1: T, lambda: T, inverse: Bool, withPartials: Bool) {
        let w = x1 - x0, h = y1 - y0, s = h / w
        let rootLower = d0.squareRoot(), rootUpper = d1.squareRoot()
        let n = lambda * rootLower + (1 - lambda) * rootUpper
        // The half: lower (anchored at x_k) or upper (anchored at x_{k+1}).
        let lower: Bool
        if inverse {
            // y_c − y_k = λ √d_k h / N.
            lower = v - y0 <= lambda * rootLower * h / n
        } else {
            lower = v - x0 <= lambda * w
        }
        let xe = lower ? x0 : x1, ye = lower ? y0 : y1, de = lower ? d0 : d1
        let root = lower ? rootLower : rootUpper, fraction = lower ? lambda : 1 - lambda
        let c = root * n / s
        // The half's length in x and height in y: f_e w and d_e f_e w / c (y_c − y_e in size).
        let span = fraction * w
        var tau: T, e: T, delta: T
        if inverse {
            let height = de * span / c
            let r = Swift.min(Swift.max((v - ye).magnitude / height, 0), 1)
            let g = c * (1 - r) + r
            tau = r / g
            e = c / g
            delta = lower ? tau * span : -(tau * span)
            output = xe + delta
        } else {
            delta = v - xe
            tau = delta.magnitude / span
            e = (1 - tau) + c * tau
            output = ye + de * delta / e
        }
        // log d_e − 2 log E in one logarithm: E lies between 1 and c_e, so d_e/E² stays finite.
        let log = T.log(de / (e * e))
        logDerivative = inverse ? -log : log
        guard withPartials else { return }

        // Basis vectors of u = (v, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}, λ).
        func unit(_ i: Int) -> SIMD8<T> {
            var u = SIMD8<T>.zero
            u[i] = 1
            return u
        }
        let gW = unit(2) - unit(1), gS = (unit(4) - unit(3) - s * gW) / w
        let gRootLower = unit(5) / (2 * rootLower), gRootUpper = unit(6) / (2 * rootUpper)
        let gN = (rootLower - rootUpper) * unit(7) + lambda * gRootLower + (1 - lambda) * gRootUpper
        let gDe = lower ? unit(5) : unit(6), gRoot = lower ? gRootLower : gRootUpper
        let gFraction = lower ? unit(7) : -unit(7)
        let gC = c * (gRoot / root + gN / n - gS / s)
        // The forward map's partials at x = output (inverse) or v (forward): δ = x − x_e.
        let gDelta = unit(0) - (lower ? unit(1) : unit(2))
        let gTau = (lower ? gDelta : -gDelta) / span - tau * (gFraction / fraction + gW / w)
        let gE = tau * gC + (c - 1) * gTau
        let yPartials = (lower ? unit(3) : unit(4)) + (delta / e) * gDe + (de / e) * gDelta - (de * delta / (e * e)) * gE
        let lPartials = gDe / de - 2 * gE / e
        if inverse {
            // x(v, θ): ∂x/∂v = 1/Y_x, ∂x/∂θ = −Y_θ/Y_x (Y_v is Y_x here; the v slot holds the output).
            let slope = yPartials[0]
            var xPartials = -yPartials / slope
            xPartials[0] = 1 / slope
            outputPartials = xPartials
            // −log Y_x(x(v, θ), θ): L_x ∂x/∂u plus L_θ at fixed x.
            var fixed = lPartials
            fixed[0] = 0
            logPartials = -(lPartials[0] * xPartials + fixed)
        } else {
            outputPartials = yPartials
            logPartials = lPartials
        }
    }
}
