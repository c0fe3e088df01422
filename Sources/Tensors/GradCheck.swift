/// The outcome of ``gradCheck(_:epsilon:seed:_:)``.
public struct GradCheckResult: Sendable, CustomStringConvertible {
    /// Per input: max |analytic − numeric| / max(‖analytic‖∞, ‖numeric‖∞, 10⁻³).
    public var relativeErrors: [Double]
    /// Per input: max |analytic − numeric|.
    public var absoluteErrors: [Double]
    /// The gradients computed by autograd, per input.
    public var analytic: [Tensor]
    /// The gradients computed by central differences, per input.
    public var numeric: [Tensor]

    /// The largest relative error over all inputs.
    public var maxRelativeError: Double { relativeErrors.max() ?? 0 }

    /// The relative and absolute errors per input, for test failure messages.
    public var description: String {
        "GradCheckResult(relative errors \(relativeErrors), absolute errors \(absoluteErrors))"
    }
}

/// Compares the gradient autograd computes for `function` with central finite differences,
/// in Float64.
///
/// The inputs are converted to Float64 and made leaves of the graph. A tensor-valued output y is
/// reduced to the scalar L = Σ y ⊙ v with a fixed random v, so every entry of the Jacobian
/// contributes. For each input element, the numeric derivative is
/// (L(x + h) − L(x − h)) / 2h with h = `epsilon`·max(1, |x|); its error is O(h²) truncation plus
/// O(ε_machine·|L| / h) rounding, about 10⁻¹⁰ for h = 10⁻⁶.
///
/// - Parameters:
///   - inputs: the points at which to check (any dtype; converted to Float64).
///   - epsilon: the relative step h.
///   - seed: seeds the projection vector v.
///   - function: the computation to check; it receives the Float64 inputs.
public func gradCheck(
    _ inputs: [Tensor], epsilon: Double = 1e-6, seed: UInt64 = 0,
    _ function: ([Tensor]) -> Tensor
) -> GradCheckResult {
    let points = inputs.map { $0.detached().converted(to: .float64) }
    let leaves = points.map { $0.requiringGradient() }
    let output = function(leaves)
    precondition(output.dtype == .float64, "gradCheck: the function returned \(output.dtype); keep it in Float64")
    var generator = RandomGenerator(seed: seed)
    let projection = Tensor.randn(output.shape, generator: &generator, dtype: .float64)
    let objective = (output * projection).sum()

    var analytic: [Tensor] = leaves.map { Tensor.zeros($0.shape, dtype: .float64) }
    if objective.requiresGradient {
        objective.backward()
        for (i, leaf) in leaves.enumerated() { if let g = leaf.grad { analytic[i] = g } }
    }

    func evaluate(_ xs: [Tensor]) -> Double {
        withoutGradients { (function(xs) * projection).sum().item }
    }

    var numeric: [Tensor] = []
    var relative: [Double] = []
    var absolute: [Double] = []
    for (i, point) in points.enumerated() {
        var values = point.doubles
        var derivative = [Double](repeating: 0, count: values.count)
        for j in values.indices {
            let x = values[j]
            let h = epsilon * Swift.max(1, Swift.abs(x))
            var xs = points
            values[j] = x + h
            xs[i] = Tensor(values, shape: point.shape, dtype: .float64)
            let up = evaluate(xs)
            values[j] = x - h
            xs[i] = Tensor(values, shape: point.shape, dtype: .float64)
            let down = evaluate(xs)
            values[j] = x
            derivative[j] = (up - down) / (2 * h)
        }
        let n = Tensor(derivative, shape: point.shape, dtype: .float64)
        let a = analytic[i].doubles
        let maxDiff = zip(a, derivative).map { Swift.abs($0 - $1) }.max() ?? 0
        let scale = Swift.max(a.map(Swift.abs).max() ?? 0, derivative.map(Swift.abs).max() ?? 0, 1e-3)
        numeric.append(n)
        absolute.append(maxDiff)
        relative.append(maxDiff / scale)
    }
    return GradCheckResult(relativeErrors: relative, absoluteErrors: absolute, analytic: analytic, numeric: numeric)
}
