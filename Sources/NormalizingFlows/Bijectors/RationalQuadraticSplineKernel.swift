/// A number with its partial derivatives with respect to the seven inputs of one spline
/// evaluation (forward-mode differentiation): x (or y), x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}.
struct SplineDual {
    var value: Double
    var partials: SIMD8<Double>

    init(_ value: Double, _ partials: SIMD8<Double> = .zero) {
        self.value = value
        self.partials = partials
    }

    /// The input with index `i` (its own partial is 1).
    static func input(_ value: Double, _ i: Int) -> SplineDual {
        var p = SIMD8<Double>.zero
        p[i] = 1
        return SplineDual(value, p)
    }

    static func + (a: SplineDual, b: SplineDual) -> SplineDual { SplineDual(a.value + b.value, a.partials + b.partials) }
    static func - (a: SplineDual, b: SplineDual) -> SplineDual { SplineDual(a.value - b.value, a.partials - b.partials) }
    static func * (a: SplineDual, b: SplineDual) -> SplineDual {
        SplineDual(a.value * b.value, a.partials * b.value + b.partials * a.value)
    }
    static func / (a: SplineDual, b: SplineDual) -> SplineDual {
        SplineDual(a.value / b.value, (a.partials * b.value - b.partials * a.value) / (b.value * b.value))
    }
    static func * (a: SplineDual, c: Double) -> SplineDual { SplineDual(a.value * c, a.partials * c) }
    static func + (a: SplineDual, c: Double) -> SplineDual { SplineDual(a.value + c, a.partials) }
    static prefix func - (a: SplineDual) -> SplineDual { SplineDual(-a.value, -a.partials) }
    func log() -> SplineDual { SplineDual(Foundation.log(value), partials / value) }
    func squareRoot() -> SplineDual {
        let r = value.squareRoot()
        return SplineDual(r, r > 0 ? partials / (2 * r) : .zero)
    }
    func clampedUnit() -> SplineDual {
        value < 0 ? SplineDual(0) : (value > 1 ? SplineDual(1) : self)
    }
}

import Foundation

/// One element's spline evaluation: output and log-derivative with their partials with respect to
/// (v, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}), and the bin (−1 in the identity tails).
struct SplineElement {
    var output = 0.0
    var outputPartials = SIMD8<Double>.zero
    var logDerivative = 0.0
    var logPartials = SIMD8<Double>.zero
    var bin = -1
}

/// The rational-quadratic spline evaluated in one pass per element, from its raw parameters,
/// with exact derivatives (Durkan et al. 2019, eq. 4–8). Per element the kernel turns the
/// 3K − 1 raw values into knots (softmax and running sums for widths and heights, softplus for
/// the interior derivatives), finds the bin, and evaluates the rational function, its closed-form
/// inverse or the identity tails. The output and log-derivative carry their partials with respect
/// to x and the six knot values of the bin (forward mode); the backward pass chains those through
/// the running sums and the softmax by hand, O(K) per element. No intermediate tensors: one
/// kernel each way, split over the cores for large inputs.
enum RationalQuadraticSplineKernel {
    /// y = f(x) (or x = f⁻¹(y) when `inverse`) and log |df/dx| (or log |df⁻¹/dy|) for inputs [N]
    /// and raw parameters [N, 3K − 1] of `spline`.
    static func evaluate(_ input: Tensor, parameters: Tensor, spline: RationalQuadraticSplineTransform,
                         inverse: Bool) -> (output: Tensor, logAbsDerivative: Tensor) {
        switch input.dtype {
        case .float32: evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Float.self)
        case .float64: evaluate(input, parameters: parameters, spline: spline, inverse: inverse, as: Double.self)
        }
    }

    /// The kernel for storage type `T`: inputs, parameters and gradients are read and written in
    /// place, the arithmetic is in `Double`.
    private static func evaluate<T: TensorScalar>(_ input: Tensor, parameters: Tensor, spline: RationalQuadraticSplineTransform,
                                                  inverse: Bool, as _: T.Type) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count, k = spline.bins, p = spline.parameterCount, bound = spline.bound
        var elements = [SplineElement](repeating: SplineElement(), count: n)
        // The width and height softmaxes of every element, for the backward pass.
        var softmaxes = [Double](repeating: 0, count: n * 2 * k)
        let widthScale = 1 - spline.minimumBinWidth * Double(k), heightScale = 1 - spline.minimumBinHeight * Double(k)
        input.withUnsafeBufferPointer(as: T.self) { values in
        parameters.withUnsafeBufferPointer(as: T.self) { raw in
        elements.withUnsafeMutableBufferPointer { elements in
        softmaxes.withUnsafeMutableBufferPointer { softmaxes in
            Parallel.chunks(n, threshold: 4096) { start, end in
                var xs = [Double](repeating: 0, count: k + 1), ys = xs
                let scratch = UnsafeMutablePointer<T>.allocate(capacity: k)
                defer { scratch.deallocate() }
                for i in start..<end {
                    let v = Double(values[i])
                    guard v >= -bound && v <= bound else {
                        elements[i].output = v
                        elements[i].outputPartials[0] = 1
                        continue
                    }
                    let row = i * p, soft = i * 2 * k
                    softmax(raw, from: row, count: k, into: softmaxes, at: soft, scratch: scratch)
                    softmax(raw, from: row + k, count: k, into: softmaxes, at: soft + k, scratch: scratch)
                    xs[0] = -bound; ys[0] = -bound
                    var cx = 0.0, cy = 0.0
                    for j in 1..<k {
                        cx += spline.minimumBinWidth + widthScale * softmaxes[soft + j - 1]
                        cy += spline.minimumBinHeight + heightScale * softmaxes[soft + k + j - 1]
                        xs[j] = -bound + 2 * bound * cx
                        ys[j] = -bound + 2 * bound * cy
                    }
                    xs[k] = bound; ys[k] = bound
                    let knots = inverse ? ys : xs
                    var lo = 0, hi = k                     // the bin: knots[lo] ≤ v < knots[lo+1]
                    while hi - lo > 1 {
                        let mid = (lo + hi) / 2
                        if knots[mid] <= v { lo = mid } else { hi = mid }
                    }
                    // Only the bin's two knot derivatives: minimum + softplus inside, 1 at ±B.
                    func derivative(_ j: Int) -> Double {
                        j == 0 || j == k ? 1 : spline.minimumDerivative + softplus(Double(raw[row + 2 * k + j - 1]))
                    }
                    let result = evaluateBin(v, x0: xs[lo], x1: xs[lo + 1], y0: ys[lo], y1: ys[lo + 1],
                                             d0: derivative(lo), d1: derivative(lo + 1), inverse: inverse)
                    elements[i] = SplineElement(output: result.output.value, outputPartials: result.output.partials,
                                                logDerivative: result.log.value, logPartials: result.log.partials, bin: lo)
                }
            }
        }}}}
        let output = Tensor(shape: input.shape, as: T.self) { out in
            for i in 0..<n { out[i] = T(elements[i].output) }
        }
        let logAbs = Tensor(shape: input.shape, as: T.self) { out in
            for i in 0..<n { out[i] = T(elements[i].logDerivative) }
        }
        let inputs = [input, parameters]

        /// Gradients of the input and the raw parameters from an output gradient and per-element partials.
        func scatter(_ g: Tensor, _ partials: KeyPath<SplineElement, SIMD8<Double>>, _ needs: [Bool]) -> [Tensor?] {
            var gInput = Tensor.zeros(input.shape, dtype: T.dtype)
            var gRaw = Tensor.zeros(parameters.shape, dtype: T.dtype)
            g.withUnsafeBufferPointer(as: T.self) { gv in
            parameters.withUnsafeBufferPointer(as: T.self) { raw in
            gInput.withUnsafeMutableBufferPointer(as: T.self) { gInput in
            gRaw.withUnsafeMutableBufferPointer(as: T.self) { gRaw in
                Parallel.chunks(n, threshold: 4096) { start, end in
                    var gSoft = [Double](repeating: 0, count: k)
                    for i in start..<end {
                        let q = elements[i][keyPath: partials] * Double(gv[i])
                        gInput[i] = T(q[0])
                        let b = elements[i].bin
                        guard b >= 0 else { continue }
                        let row = i * p, soft = i * 2 * k
                        // Knot j (1 ≤ j ≤ K − 1) is −B + 2B Σ_{m<j} (minimum + scale·softmax_m); knots 0 and K are fixed.
                        func softmaxGradient(offset: Int, lower: Double, upper: Double, scale: Double) {
                            let gLower = b >= 1 ? lower : 0, gUpper = b + 1 <= k - 1 ? upper : 0
                            var dot = 0.0
                            for m in 0..<k {
                                let gCumulative = (m < b ? gLower : 0) + (m < b + 1 ? gUpper : 0)
                                gSoft[m] = 2 * bound * scale * gCumulative
                                dot += softmaxes[soft + offset + m] * gSoft[m]
                            }
                            for m in 0..<k {
                                gRaw[row + offset + m] = T(softmaxes[soft + offset + m] * (gSoft[m] - dot))
                            }
                        }
                        softmaxGradient(offset: 0, lower: q[1], upper: q[2], scale: widthScale)
                        softmaxGradient(offset: k, lower: q[3], upper: q[4], scale: heightScale)
                        // Interior derivative j is minimum + softplus(raw_{2K + j − 1}); d_0 = d_K = 1.
                        if b >= 1 { gRaw[row + 2 * k + b - 1] = T(q[5] * sigmoid(Double(raw[row + 2 * k + b - 1]))) }
                        if b + 1 <= k - 1 { gRaw[row + 2 * k + b] = T(q[6] * sigmoid(Double(raw[row + 2 * k + b]))) }
                    }
                }
            }}}}
            return [needs[0] ? gInput : nil, needs[1] ? gRaw : nil]
        }
        return (Tensor.recordOperation("rqSpline", output: output, inputs: inputs) { g, needs in scatter(g, \.outputPartials, needs) },
                Tensor.recordOperation("rqSplineLogDerivative", output: logAbs, inputs: inputs) { g, needs in scatter(g, \.logPartials, needs) })
    }

    /// Output and log-derivative of one bin, with partials with respect to
    /// (v, x_k, x_{k+1}, y_k, y_{k+1}, d_k, d_{k+1}).
    private static func evaluateBin(_ v: Double, x0 x0Value: Double, x1 x1Value: Double, y0 y0Value: Double, y1 y1Value: Double,
                                    d0 d0Value: Double, d1 d1Value: Double, inverse: Bool) -> (output: SplineDual, log: SplineDual) {
        let x0 = SplineDual.input(x0Value, 1), x1 = SplineDual.input(x1Value, 2)
        let y0 = SplineDual.input(y0Value, 3), y1 = SplineDual.input(y1Value, 4)
        let d0 = SplineDual.input(d0Value, 5), d1 = SplineDual.input(d1Value, 6)
        let w = x1 - x0, h = y1 - y0, s = h / w
        let curvature = d1 + d0 - s * 2
        let xi: SplineDual, output: SplineDual
        if inverse {
            let offset = SplineDual.input(v, 0) - y0
            let a = h * (s - d0) + offset * curvature
            let b = h * d0 - offset * curvature
            let c = -(s * offset)
            var discriminant = b * b - a * c * 4
            if discriminant.value < 0 { discriminant = SplineDual(0) }
            xi = ((c * 2) / (-b - discriminant.squareRoot())).clampedUnit()
            output = xi * w + x0
        } else {
            xi = ((SplineDual.input(v, 0) - x0) / w).clampedUnit()
            let xi1 = xi * (SplineDual(1) - xi)
            output = y0 + h * (s * xi * xi + d0 * xi1) / (s + curvature * xi1)
        }
        let xi1 = xi * (SplineDual(1) - xi)
        let oneMinus = SplineDual(1) - xi
        let numerator = d1 * xi * xi + s * xi1 * 2 + d0 * oneMinus * oneMinus
        let denominator = s + curvature * xi1
        let log = s.log() * 2 + numerator.log() - denominator.log() * 2
        return (output, inverse ? -log : log)
    }

    /// softmax(raw[from ..< from + count]) written to out[at ...]. The exponentials run in `T`
    /// through the vector kernels (eight `Float`s in one step), the sum and the division in Double.
    private static func softmax<T: TensorScalar>(_ raw: UnsafeBufferPointer<T>, from: Int, count: Int,
                                                into out: UnsafeMutableBufferPointer<Double>, at: Int,
                                                scratch: UnsafeMutablePointer<T>) {
        var largest = -T.infinity
        for m in 0..<count { largest = Swift.max(largest, raw[from + m]) }
        for m in 0..<count { scratch[m] = raw[from + m] - largest }
        T.apply(.exp, scratch, scratch, count: count)
        var total = 0.0
        for m in 0..<count { total += Double(scratch[m]) }
        for m in 0..<count { out[at + m] = Double(scratch[m]) / total }
    }

    /// log(1 + eˣ) without overflow.
    private static func softplus(_ x: Double) -> Double { Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x))) }

    private static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
}
