import RealModule

/// Pointwise functions computed by plain loops (the transcendental ones go through ``VectorMath``).
enum PointwiseOperation {
    case negate, abs, sqrt, square, reciprocal, relu, sign, sin, cos
    case elu(alpha: Double)
    case leakyRelu(slope: Double)
    case clamp(lower: Double, upper: Double)
    case power(Double)
    case integerPower(Int)
}

/// Fused `g · f′` kernels for backward passes: one loop, no temporaries. `saved` is the input `x`
/// or the output `y`, as noted.
enum PointwiseGradient {
    case tanh            // saved y: g·(1 − y²)
    case sigmoid         // saved y: g·y·(1 − y)
    case exp             // saved y: g·y
    case expm1           // saved y: g·(y + 1)
    case log             // saved x: g / x
    case log1p           // saved x: g / (1 + x)
    case sqrt            // saved y: g / (2y)
    case relu            // saved x: g where x > 0
    case abs             // saved x: g·sign(x)
    case elu(alpha: Double)          // saved x: g where x > 0, else g·α·eˣ
    case leakyRelu(slope: Double)    // saved x: g where x > 0, else g·slope
    case clamp(lower: Double, upper: Double)  // saved x: g where lower ≤ x ≤ upper
    case power(Double)               // saved x: g·p·x^(p−1)
    case integerPower(Int)           // saved x: g·n·x^(n−1)
    case sin             // saved x: g·cos x
    case cos             // saved x: −g·sin x
    case softplus        // saved x: g·σ(x)
    case logSigmoid      // saved x: g·σ(−x)
}

extension Tensor {
    /// Applies `body` to every element; the closure is inlined into a specialised loop.
    @inline(__always)
    func mapElements<T: TensorScalar>(_: T.Type, _ body: (T) -> T) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        let x = pointer(T.self), y = out.pointer(T.self)
        withExtendedLifetime(self) {
            for i in 0..<count { y[i] = body(x[i]) }
        }
        return out
    }

    static func pointwise(_ op: PointwiseOperation, _ x: Tensor) -> Tensor {
        switch x.dtype {
        case .float32: pointwise(op, x, Float.self)
        case .float64: pointwise(op, x, Double.self)
        }
    }

    private static func pointwise<T: TensorScalar>(_ op: PointwiseOperation, _ x: Tensor, _: T.Type) -> Tensor {
        switch op {
        case .negate: return x.mapElements(T.self) { -$0 }
        case .abs: return x.mapElements(T.self) { Swift.abs($0) }
        case .sqrt: return x.mapElements(T.self) { $0.squareRoot() }
        case .square: return x.mapElements(T.self) { $0 * $0 }
        case .reciprocal: return x.mapElements(T.self) { 1 / $0 }
        case .relu: return x.mapElements(T.self) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }
        case .sign: return x.mapElements(T.self) { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) }
        case .sin: return x.mapElements(T.self) { T.sin($0) }
        case .cos: return x.mapElements(T.self) { T.cos($0) }
        case .elu(let alpha):
            let a = T(alpha)
            return x.mapElements(T.self) { $0 > 0 ? $0 : a * T.expMinusOne($0) }
        case .leakyRelu(let slope):
            let s = T(slope)
            return x.mapElements(T.self) { $0 > 0 ? $0 : s * $0 }
        case .clamp(let lower, let upper):
            let lo = T(lower), hi = T(upper)
            return x.mapElements(T.self) { $0 < lo ? lo : ($0 > hi ? hi : $0) }
        case .power(let p):
            let e = T(p)
            return x.mapElements(T.self) { T.pow($0, e) }
        case .integerPower(let n):
            return x.mapElements(T.self) { T.pow($0, n) }
        }
    }

    static func pointwiseGradient(_ kind: PointwiseGradient, _ g: Tensor, _ saved: Tensor) -> Tensor {
        switch g.dtype {
        case .float32: pointwiseGradient(kind, g, saved, Float.self)
        case .float64: pointwiseGradient(kind, g, saved, Double.self)
        }
    }

    private static func pointwiseGradient<T: TensorScalar>(
        _ kind: PointwiseGradient, _ g: Tensor, _ s: Tensor, _: T.Type
    ) -> Tensor {
        switch kind {
        case .tanh: return zipBroadcast(g, s, T.self) { g, y in g * (1 - y * y) }
        case .sigmoid: return zipBroadcast(g, s, T.self) { g, y in g * y * (1 - y) }
        case .exp: return zipBroadcast(g, s, T.self) { g, y in g * y }
        case .expm1: return zipBroadcast(g, s, T.self) { g, y in g * (y + 1) }
        case .log: return zipBroadcast(g, s, T.self) { g, x in g / x }
        case .log1p: return zipBroadcast(g, s, T.self) { g, x in g / (1 + x) }
        case .sqrt: return zipBroadcast(g, s, T.self) { g, y in g / (2 * y) }
        case .relu: return zipBroadcast(g, s, T.self) { g, x in x > 0 ? g : 0 }
        case .abs: return zipBroadcast(g, s, T.self) { g, x in x > 0 ? g : (x < 0 ? -g : 0) }
        case .elu(let alpha):
            let a = T(alpha)
            return zipBroadcast(g, s, T.self) { g, x in x > 0 ? g : g * a * T.exp(x) }
        case .leakyRelu(let slope):
            let k = T(slope)
            return zipBroadcast(g, s, T.self) { g, x in x > 0 ? g : g * k }
        case .clamp(let lower, let upper):
            let lo = T(lower), hi = T(upper)
            return zipBroadcast(g, s, T.self) { g, x in x >= lo && x <= hi ? g : 0 }
        case .power(let p):
            let e = T(p)
            return zipBroadcast(g, s, T.self) { g, x in g * e * T.pow(x, e - 1) }
        case .integerPower(let n):
            let e = T(n)
            switch n {
            case 0: return zipBroadcast(g, s, T.self) { _, _ in 0 }
            case 1: return zipBroadcast(g, s, T.self) { g, _ in g }
            case 2: return zipBroadcast(g, s, T.self) { g, x in 2 * g * x }
            default: return zipBroadcast(g, s, T.self) { g, x in g * e * T.pow(x, n - 1) }
            }
        case .sin: return zipBroadcast(g, s, T.self) { g, x in g * T.cos(x) }
        case .cos: return zipBroadcast(g, s, T.self) { g, x in -g * T.sin(x) }
        case .softplus:
            return zipBroadcast(g, s, T.self) { g, x in g / (1 + T.exp(-x)) }
        case .logSigmoid:
            return zipBroadcast(g, s, T.self) { g, x in g / (1 + T.exp(x)) }
        }
    }

    /// Applies a vectorised transcendental function without recording it; large tensors are
    /// split over the cores (these kernels are compute-bound).
    func applying(_ function: VectorFunction) -> Tensor {
        let out = Tensor(uninitializedShape: shape, dtype: dtype)
        withExtendedLifetime(self) {
            switch dtype {
            case .float32:
                let x = pointer(Float.self), y = out.pointer(Float.self)
                Parallel.chunks(count) { start, end in Float.apply(function, x + start, y + start, count: end - start) }
            case .float64:
                let x = pointer(Double.self), y = out.pointer(Double.self)
                Parallel.chunks(count) { start, end in Double.apply(function, x + start, y + start, count: end - start) }
            }
        }
        return out
    }

    /// Records a unary op whose backward is a fused gradient kernel over the saved input or output.
    private func unary(
        _ name: String, _ out: Tensor, _ gradient: PointwiseGradient, savingOutput: Bool
    ) -> Tensor {
        let saved = savingOutput ? out : detached()
        return Tensor.record(name, out, [self]) { g, _ in [Tensor.pointwiseGradient(gradient, g, saved)] }
    }
}

// MARK: - Public unary operations

extension Tensor {
    /// −x elementwise.
    public func negated() -> Tensor {
        Tensor.record("negate", Tensor.pointwise(.negate, self), [self]) { g, _ in [Tensor.pointwise(.negate, g)] }
    }

    /// |x| elementwise; the gradient is sign(x) (0 at 0).
    public func abs() -> Tensor { unary("abs", Tensor.pointwise(.abs, self), .abs, savingOutput: false) }
    /// √x elementwise (NaN for x < 0); the gradient is 1/(2√x).
    public func sqrt() -> Tensor { unary("sqrt", Tensor.pointwise(.sqrt, self), .sqrt, savingOutput: true) }
    /// x² elementwise; the gradient is 2x.
    public func square() -> Tensor { unary("square", Tensor.pointwise(.square, self), .integerPower(2), savingOutput: false) }
    /// eˣ elementwise (8-wide polynomial kernel for `Float`); the gradient is eˣ, reused from the output.
    public func exp() -> Tensor { unary("exp", applying(.exp), .exp, savingOutput: true) }
    /// The natural logarithm elementwise (−∞ at 0, NaN below); the gradient is 1/x.
    public func log() -> Tensor { unary("log", applying(.log), .log, savingOutput: false) }
    /// log(1 + x), accurate for small x.
    public func log1p() -> Tensor { unary("log1p", applying(.log1p), .log1p, savingOutput: false) }
    /// eˣ − 1, accurate for small x.
    public func expm1() -> Tensor { unary("expm1", applying(.expm1), .expm1, savingOutput: true) }
    /// The hyperbolic tangent elementwise; the gradient is 1 − tanh²x, reused from the output.
    public func tanh() -> Tensor { unary("tanh", applying(.tanh), .tanh, savingOutput: true) }
    /// σ(x) = 1 / (1 + e⁻ˣ).
    public func sigmoid() -> Tensor { unary("sigmoid", applying(.sigmoid), .sigmoid, savingOutput: true) }
    /// softplus(x) = log(1 + eˣ), computed without overflow as max(x, 0) + log1p(e^−|x|); its
    /// derivative is σ(x). A smooth positive map, used for scales and bin widths.
    public func softplus() -> Tensor { unary("softplus", applying(.softplus), .softplus, savingOutput: false) }
    /// log σ(x) = −softplus(−x), computed without overflow.
    public func logSigmoid() -> Tensor { unary("logSigmoid", applying(.logSigmoid), .logSigmoid, savingOutput: false) }
    /// sin x elementwise (radians); the gradient is cos x.
    public func sin() -> Tensor { unary("sin", Tensor.pointwise(.sin, self), .sin, savingOutput: false) }
    /// cos x elementwise (radians); the gradient is −sin x.
    public func cos() -> Tensor { unary("cos", Tensor.pointwise(.cos, self), .cos, savingOutput: false) }
    /// max(x, 0) elementwise; the gradient is 1 where x > 0 and 0 elsewhere.
    public func relu() -> Tensor { unary("relu", Tensor.pointwise(.relu, self), .relu, savingOutput: true) }

    /// x for x > 0, α(eˣ − 1) otherwise (Clevert et al. 2016).
    public func elu(alpha: Double = 1) -> Tensor {
        unary("elu", Tensor.pointwise(.elu(alpha: alpha), self), .elu(alpha: alpha), savingOutput: false)
    }

    /// x for x > 0, slope·x otherwise.
    public func leakyRelu(negativeSlope: Double = 0.01) -> Tensor {
        unary("leakyRelu", Tensor.pointwise(.leakyRelu(slope: negativeSlope), self),
              .leakyRelu(slope: negativeSlope), savingOutput: false)
    }

    /// Each element limited to [lower, upper]; the gradient is zero where the bound is active.
    public func clamped(min lower: Double = -.infinity, max upper: Double = .infinity) -> Tensor {
        precondition(lower <= upper, "clamp: lower bound \(lower) exceeds upper bound \(upper)")
        return unary("clamp", Tensor.pointwise(.clamp(lower: lower, upper: upper), self),
                     .clamp(lower: lower, upper: upper), savingOutput: false)
    }

    /// xᵖ elementwise for a real exponent (defined for x > 0, or x ≥ 0 with p > 0).
    public func pow(_ exponent: Double) -> Tensor {
        unary("pow", Tensor.pointwise(.power(exponent), self), .power(exponent), savingOutput: false)
    }

    /// xⁿ elementwise for an integer exponent (any sign of x).
    public func pow(_ exponent: Int) -> Tensor {
        unary("pow", Tensor.pointwise(.integerPower(exponent), self), .integerPower(exponent), savingOutput: false)
    }

    /// 1 / x.
    public func reciprocal() -> Tensor { scalarLike(1) / self }

    /// −1, 0 or 1 by the sign of each element (no gradient).
    public func sign() -> Tensor { Tensor.pointwise(.sign, detached()) }

    /// Converts to another dtype; gradients convert back.
    public func converted(to dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        let out: Tensor
        switch dtype {
        case .float32: out = Tensor(shape: shape, scalars: floats)
        case .float64: out = Tensor(shape: shape, scalars: doubles)
        }
        let source = self.dtype
        return Tensor.record("convert", out, [self]) { g, _ in [g.converted(to: source)] }
    }

    /// Whether every element is finite (no NaN or ±∞).
    public var isFinite: Bool {
        switch dtype {
        case .float32: withUnsafeBufferPointer(as: Float.self) { $0.allSatisfy(\.isFinite) }
        case .float64: withUnsafeBufferPointer(as: Double.self) { $0.allSatisfy(\.isFinite) }
        }
    }
}
