import Foundation

/// Chandrupatla's bracketing root finder for strictly increasing elementwise maps
/// (Chandrupatla 1997, "A new hybrid quadratic/bisection algorithm for finding the zero of a
/// nonlinear function without using derivatives", Advances in Engineering Software 28(3)):
/// solves f(xᵢ) = yᵢ for every element i at once, where f is evaluated on all elements together
/// (one call per iteration, so a transform's tensor ops run over the whole batch).
///
/// 1. **Bracket.** Each element starts from [s − 1, s + 1] around its starting point s. While
///    f(lo) > y the bracket moves down and doubles, [lo − (hi − lo), lo] (the old lower end is a
///    valid upper end), and while f(hi) < y it moves up likewise: a root at distance R is
///    bracketed after about log₂ R evaluations, for maps unbounded in both directions. At most
///    ``maximumExpansions`` doublings (a bracket of width 2⁶⁴ by default).
/// 2. **Narrow.** Chandrupatla's step: with a the newest point, b the end of opposite sign and
///    c the point dropped last, ξ = (a − b)/(c − b) and Φ = (f_a − f_b)/(f_c − f_b); when
///    1 − √(1 − ξ) < Φ < √ξ (Φ² < ξ and (1 − Φ)² < 1 − ξ) the inverse quadratic interpolation
///    through the three points is safe and
///    t = f_a/(f_b − f_a)·f_c/(f_b − f_c) + (c − a)/(b − a)·f_a/(f_c − f_a)·f_b/(f_c − f_b),
///    otherwise t = ½ (bisection); the next point is a + t(b − a), with t kept in
///    [τ, 1 − τ] for τ = tol/|b − a| so that every step moves at least the tolerance. The
///    bracket never loses the root, and bisection bounds the iterations.
/// 3. **Stop** when |b − a| ≤ 2·tol with tol = ``tolerance``·(1 + |x|), when f(x) = y exactly,
///    or when a and b are neighbouring Doubles (nothing lies between them to try); the answer
///    is the end with the smaller residual.
///
/// An element that cannot be bracketed, whose map is NaN at a trial point, or that is not
/// narrowed within ``maximumIterations`` steps throws ``FlowError/notConverged(row:_:)`` with
/// the element's index (in the flattened input): never an approximate value. A non-finite
/// target gives NaN, an overflow upstream that ``Flow/logProb(_:context:)`` scores −∞.
public struct MonotoneRootFinder: Sendable {
    /// The relative bracket tolerance: the root is located within tol·(1 + |x|).
    public var tolerance: Double
    /// Chandrupatla steps allowed per element after bracketing.
    public var maximumIterations = 100
    /// Bracket doublings allowed per element.
    public var maximumExpansions = 64

    /// 10⁻¹⁴ for Float64 (about 45 ulps of 1 + |x|: tight enough that finite differences of an
    /// inverted map with steps of 10⁻⁶ keep eight digits); 10⁻⁶ for Float32, where f itself is
    /// evaluated in Float32 (machine ε 1.2·10⁻⁷), so that the bracket is a few ulps wide when it stops.
    /// - Parameter dtype: the dtype the map is evaluated in, which sets ``tolerance``.
    public init(dtype: DType) {
        tolerance = dtype == .float64 ? 1e-14 : 1e-6
    }

    /// The x with f(x) = `targets` elementwise, starting near `start`.
    /// - Parameters:
    ///   - targets: the values y to invert, one per element.
    ///   - start: where each element's first bracket is centred (same count as `targets`).
    ///   - what: the map's name for error messages (built only on failure).
    ///   - evaluate: f at one trial point per element, for all elements at once; it must be
    ///     strictly increasing in each element.
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the first element that failed.
    public func solve(targets: [Double], start: [Double], what: @autoclosure () -> String,
               evaluate: ([Double]) throws -> [Double]) throws -> [Double] {
        let n = targets.count
        var result = [Double](repeating: .nan, count: n)
        var active = targets.map(\.isFinite)
        func failure(_ i: Int, _ reason: String) -> FlowError {
            .notConverged(row: i, "inverting \(what()) at y = \(targets[i]): \(reason)")
        }
        // 1. Bracket: lo < hi with f(lo) ≤ y ≤ f(hi).
        var lo = start.map { $0.isFinite ? $0 - 1 : -1 }, hi = lo.map { $0 + 2 }
        var fLo = try evaluate(lo), fHi = try evaluate(hi)
        var trial = lo
        for round in 0...maximumExpansions {
            var moving = false
            for i in 0..<n where active[i] {
                guard !fLo[i].isNaN, !fHi[i].isNaN else {
                    throw failure(i, "the map is NaN at x = \(fLo[i].isNaN ? lo[i] : hi[i])")
                }
                let width = hi[i] - lo[i]
                if fLo[i] > targets[i] {
                    (hi[i], fHi[i]) = (lo[i], fLo[i])
                    trial[i] = lo[i] - 2 * width
                    moving = true
                } else if fHi[i] < targets[i] {
                    (lo[i], fLo[i]) = (hi[i], fHi[i])
                    trial[i] = hi[i] + 2 * width
                    moving = true
                } else {
                    trial[i] = lo[i]
                }
            }
            guard moving else { break }
            guard round < maximumExpansions else {
                let i = (0..<n).first { active[$0] && (fLo[$0] > targets[$0] || fHi[$0] < targets[$0]) }!
                throw failure(i, "no bracket within \(maximumExpansions) doublings (f ranges over [\(fLo[i]), \(fHi[i])] on [\(lo[i]), \(hi[i])])")
            }
            let values = try evaluate(trial)
            for i in 0..<n where active[i] && trial[i] != lo[i] && trial[i] != hi[i] {
                if trial[i] < lo[i] { (lo[i], fLo[i]) = (trial[i], values[i]) } else { (hi[i], fHi[i]) = (trial[i], values[i]) }
            }
        }
        // 2. Chandrupatla's iteration on residuals r = f − y; a is the newest point.
        var a = hi, b = lo, c = hi
        var ra = [Double](repeating: 0, count: n), rb = ra, rc = ra
        var t = [Double](repeating: 0.5, count: n)
        for i in 0..<n where active[i] {
            ra[i] = fHi[i] - targets[i]
            rb[i] = fLo[i] - targets[i]
            rc[i] = ra[i]
            if ra[i] == 0 || rb[i] == 0 {
                result[i] = ra[i] == 0 ? a[i] : b[i]
                active[i] = false
            }
        }
        for _ in 0..<maximumIterations {
            guard active.contains(true) else { return result }
            for i in 0..<n { trial[i] = active[i] ? a[i] + t[i] * (b[i] - a[i]) : a[i] }
            let values = try evaluate(trial)
            for i in 0..<n where active[i] {
                let r = values[i] - targets[i]
                guard !r.isNaN else { throw failure(i, "the map is NaN at x = \(trial[i])") }
                if (r > 0) == (ra[i] > 0) {
                    (c[i], rc[i]) = (a[i], ra[i])
                } else {
                    (c[i], rc[i]) = (b[i], rb[i])
                    (b[i], rb[i]) = (a[i], ra[i])
                }
                (a[i], ra[i]) = (trial[i], r)
                let (x, residual) = Swift.abs(ra[i]) < Swift.abs(rb[i]) ? (a[i], ra[i]) : (b[i], rb[i])
                let tol = tolerance * (1 + Swift.abs(x))
                let limit = tol / Swift.abs(b[i] - a[i])
                if residual == 0 || limit > 0.5 || Swift.min(a[i], b[i]).nextUp >= Swift.max(a[i], b[i]) {
                    result[i] = x
                    active[i] = false
                    continue
                }
                let xi = (a[i] - b[i]) / (c[i] - b[i]), phi = (ra[i] - rb[i]) / (rc[i] - rb[i])
                var next = 0.5
                if phi * phi < xi && (1 - phi) * (1 - phi) < 1 - xi {
                    next = ra[i] / (rb[i] - ra[i]) * rc[i] / (rb[i] - rc[i])
                        + (c[i] - a[i]) / (b[i] - a[i]) * ra[i] / (rc[i] - ra[i]) * rb[i] / (rc[i] - rb[i])
                    if !next.isFinite { next = 0.5 }
                }
                t[i] = Swift.min(1 - limit, Swift.max(limit, next))
            }
        }
        if let i = active.firstIndex(of: true) {
            throw failure(i, "the bracket [\(Swift.min(a[i], b[i])), \(Swift.max(a[i], b[i]))] did not narrow to "
                          + "\(tolerance)·(1 + |x|) in \(maximumIterations) Chandrupatla steps")
        }
        return result
    }
}

extension ParametricElementwiseTransform {
    /// x = f⁻¹(y; θ) for a transform whose `forward` is strictly increasing in x and has no
    /// closed-form inverse, and log |∂x/∂y| = −log f′(x): the root by ``MonotoneRootFinder``
    /// (without gradients), then, when gradients are recorded, one Newton step on the tape,
    /// x = x* − (g − ḡ)/ḡ′ with g = f(x*; θ) − y and ḡ, ḡ′ its value and derivative held fixed:
    /// its value is x* exactly and its derivatives are the implicit-function ones,
    /// ∂x/∂y = 1/f′ and ∂x/∂θ = −(∂f/∂θ)/f′. The log-derivative is then f's at that recorded x.
    ///
    /// - Parameters:
    ///   - y: the values to invert.
    ///   - parameters: raw parameters, shape `y.shape + [P]` or broadcasting to it.
    ///   - finder: the root finder (tolerance and caps); by default the one for `y`'s dtype.
    /// - Throws: ``FlowError/notConverged(row:_:)`` naming the element (its index in `y`
    ///   flattened) whose root was not found; bijectors turn it into the event's row.
    public func monotoneInverse(_ y: Tensor, parameters: Tensor, finder: MonotoneRootFinder? = nil) throws -> (x: Tensor, logAbsDerivative: Tensor) {
        let finder = finder ?? MonotoneRootFinder(dtype: y.dtype)
        let fixed = parameters.detached()
        let roots = try withoutGradients {
            try finder.solve(targets: y.doubles, start: y.doubles, what: "\(Self.self)") { trial in
                forward(Tensor(trial, shape: y.shape, dtype: y.dtype), parameters: fixed).y.doubles
            }
        }
        let solved = Tensor(roots, shape: y.shape, dtype: y.dtype)
        guard GradientMode.isEnabled else {
            return (solved, forward(solved, parameters: fixed).logAbsDerivative.negated())
        }
        let (image, logDerivative) = forward(solved, parameters: parameters)
        let g = image - y
        let x = solved - (g - g.detached()) / logDerivative.detached().exp()
        return (x, forward(x, parameters: parameters).logAbsDerivative.negated())
    }
}

extension FlowError {
    /// The error with an element's index (``notConverged(row:_:)`` from an elementwise
    /// transform) turned into the index of its row, `offset + element / elementsPerRow`;
    /// other errors unchanged.
    func elementAsRow(elementsPerRow: Int, offset: Int = 0) -> FlowError {
        guard case .notConverged(let element?, let message) = self else { return self }
        return .notConverged(row: offset + element / Swift.max(elementsPerRow, 1), message)
    }
}

/// Runs `body`, turning a ``FlowError/notConverged(row:_:)`` about an element into one about
/// its row (see ``FlowError/elementAsRow(elementsPerRow:offset:)``).
func reportingRows<R>(elementsPerRow: Int, offset: Int = 0, _ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch let error as FlowError {
        throw error.elementAsRow(elementsPerRow: elementsPerRow, offset: offset)
    }
}
