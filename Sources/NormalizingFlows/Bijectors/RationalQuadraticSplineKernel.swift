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

/// The rational-quadratic spline evaluated in one pass per element, with exact derivatives
/// (Durkan et al. 2019, eq. 4–8): the bin search, the rational function, the closed-form inverse
/// and the identity tails, fused. Each element's output and log-derivative carry their partials
/// with respect to x and the six knot values of its bin (forward-mode), so the backward pass only
/// scatters seven numbers per element: no intermediate tensors, one kernel each way.
enum RationalQuadraticSplineKernel {
    /// y = f(x) (or x = f⁻¹(y) when `inverse`) and log |df/dx| (or log |df⁻¹/dy|) for inputs [N]
    /// and knots [N, K+1]: x-positions, y-positions and derivatives.
    static func evaluate(_ input: Tensor, xKnots: Tensor, yKnots: Tensor, derivatives: Tensor,
                         bound: Double, inverse: Bool) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count, k1 = xKnots.shape[xKnots.rank - 1]
        let values = input.doubles, xs = xKnots.doubles, ys = yKnots.doubles, ds = derivatives.doubles
        var out = [Double](repeating: 0, count: n), logDerivative = [Double](repeating: 0, count: n)
        // Partials per element: 7 for the output, 7 for the log-derivative; the bin index.
        var outPartials = [SIMD8<Double>](repeating: .zero, count: n)
        var logPartials = [SIMD8<Double>](repeating: .zero, count: n)
        var bins = [Int](repeating: -1, count: n)
        for i in 0..<n {
            let v = values[i]
            guard v >= -bound && v <= bound else {
                out[i] = v
                outPartials[i][0] = 1
                continue
            }
            let row = i * k1
            let knots = inverse ? ys : xs
            var lo = 0, hi = k1 - 1                    // the bin: knots[lo] ≤ v < knots[lo+1]
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if knots[row + mid] <= v { lo = mid } else { hi = mid }
            }
            bins[i] = lo
            let x0 = SplineDual.input(xs[row + lo], 1), x1 = SplineDual.input(xs[row + lo + 1], 2)
            let y0 = SplineDual.input(ys[row + lo], 3), y1 = SplineDual.input(ys[row + lo + 1], 4)
            let d0 = SplineDual.input(ds[row + lo], 5), d1 = SplineDual.input(ds[row + lo + 1], 6)
            let w = x1 - x0, h = y1 - y0, s = h / w
            let curvature = d1 + d0 - s * 2
            let xi: SplineDual
            if inverse {
                let offset = SplineDual.input(v, 0) - y0
                let a = h * (s - d0) + offset * curvature
                let b = h * d0 - offset * curvature
                let c = -(s * offset)
                var discriminant = b * b - a * c * 4
                if discriminant.value < 0 { discriminant = SplineDual(0) }
                xi = ((c * 2) / (-b - discriminant.squareRoot())).clampedUnit()
                out[i] = (xi * w + x0).value
                outPartials[i] = (xi * w + x0).partials
            } else {
                xi = ((SplineDual.input(v, 0) - x0) / w).clampedUnit()
                let xi1 = xi * (SplineDual(1) - xi)
                let y = y0 + h * (s * xi * xi + d0 * xi1) / (s + curvature * xi1)
                out[i] = y.value
                outPartials[i] = y.partials
            }
            let xi1 = xi * (SplineDual(1) - xi)
            let oneMinus = SplineDual(1) - xi
            let numerator = d1 * xi * xi + s * xi1 * 2 + d0 * oneMinus * oneMinus
            let denominator = s + curvature * xi1
            var log = s.log() * 2 + numerator.log() - denominator.log() * 2
            if inverse { log = -log }
            logDerivative[i] = log.value
            logPartials[i] = log.partials
        }
        let dtype = input.dtype
        let output = Tensor(out, shape: input.shape, dtype: dtype)
        let logAbs = Tensor(logDerivative, shape: input.shape, dtype: dtype)
        let inputs = [input, xKnots, yKnots, derivatives]

        /// Gradients of the inputs from an output gradient and per-element partials.
        func scatter(_ g: Tensor, _ partials: [SIMD8<Double>], _ needs: [Bool]) -> [Tensor?] {
            let gv = g.doubles
            var gInput = [Double](repeating: 0, count: n)
            var gx = [Double](repeating: 0, count: n * k1), gy = gx, gd = gx
            for i in 0..<n {
                let p = partials[i] * gv[i]
                gInput[i] = p[0]
                let b = bins[i]
                guard b >= 0 else { continue }
                let row = i * k1 + b
                gx[row] += p[1]; gx[row + 1] += p[2]
                gy[row] += p[3]; gy[row + 1] += p[4]
                gd[row] += p[5]; gd[row + 1] += p[6]
            }
            return [
                needs[0] ? Tensor(gInput, shape: input.shape, dtype: dtype) : nil,
                needs[1] ? Tensor(gx, shape: xKnots.shape, dtype: dtype) : nil,
                needs[2] ? Tensor(gy, shape: yKnots.shape, dtype: dtype) : nil,
                needs[3] ? Tensor(gd, shape: derivatives.shape, dtype: dtype) : nil,
            ]
        }
        return (Tensor.recordOperation("rqSpline", output: output, inputs: inputs) { g, needs in scatter(g, outPartials, needs) },
                Tensor.recordOperation("rqSplineLogDerivative", output: logAbs, inputs: inputs) { g, needs in scatter(g, logPartials, needs) })
    }
}
