import Foundation

/// How a Sylvester flow builds its orthogonal matrix Q.
public enum SylvesterVariant: String, Sendable, Equatable, Codable, CaseIterable {
    /// Q with orthonormal columns from Björck iterations Q ← Q(3I − QᵀQ)/2 (O-SNF).
    case orthogonal
    /// Q = H₁⋯H_K, a product of Householder reflections I − 2vvᵀ/‖v‖² (H-SNF).
    case householder
    /// Q = I (T-SNF); ``SylvesterFlow`` reverses the order between layers.
    case triangular
}

/// The Sylvester flow of van den Berg, Hasenclever, Tomczak & Welling (2018):
/// y = z + Q R tanh(R̃ Qᵀ z + b) on events flattened to vectors of size D, with Q of size D×M
/// (orthonormal columns), R and R̃ upper triangular M×M. By Sylvester's determinant identity
/// log |det J| = Σᵢ log(1 + (1 − tanh² uᵢ)·R̃ᵢᵢRᵢᵢ), u = R̃Qᵀz + b. The diagonals are tanh of free
/// parameters, so R̃ᵢᵢRᵢᵢ > −1 and the map is invertible (the paper's condition for tanh).
///
/// Cost: `forward` is closed-form, O(DM) per point. `inverse` has no closed form: with
/// t = R̃Qᵀy + b it becomes the triangular system u + R̃R·tanh(u) = t, solved by back
/// substitution, one monotone scalar equation per row (Newton with bisection in Double, to
/// 1e-12 relative), O(M²) per point; one recorded Newton step gives exact gradients. A point
/// whose equation does not converge throws ``FlowError/notConverged(row:_:)`` with its index, and
/// so does a Q that Björck's iteration cannot make orthonormal: the log-determinant identity
/// holds only for QᵀQ = I, so no approximate Q or root is ever used.
///
/// Made for variational inference (the paper's use: a posterior in a VAE, trained by reverse KL).
/// As a density estimator it scores data only through those per-point solves, layer after layer,
/// and fits data less well than ``MAF`` or ``NSF``.
///
/// **Conditional.** In a flow with a context (the paper's amortised form, where an encoder
/// gives each data point its own flow), R, R̃ and b are shifted by a dense network of the
/// context (``contextNetwork``): R(c) = R + g_R(c) and so on, with the tanh diagonals applied to
/// the shifted values, so each context gets a valid map. Q stays shared by all contexts: the
/// paper amortises it too, but a Q per point would need a Björck iteration per point. The
/// network starts at zero: a new conditional layer is the unconditional one. With a context per
/// point, the triangular products are per point: O(M³) per point instead of one matrix product.
public struct Sylvester: SerializablePlan {
    /// How Q is built: orthonormal columns, Householder reflections or the identity (default ``SylvesterVariant/orthogonal``).
    public var variant: SylvesterVariant
    /// M for the orthogonal variant (default: D).
    public var columns: Int?
    /// K for the Householder variant (default: D).
    public var reflections: Int?
    /// The hidden sizes and activation of the network from the context to the shifts of R, R̃
    /// and b, in a flow with a context; `nil` (the default) for two hidden layers of 10·D units.
    /// Unused without a context.
    public var contextNetwork: CouplingNetwork?

    /// A Sylvester layer y = z + Q R tanh(R̃ Qᵀ z + b) with Q built as `variant` says.
    ///
    /// - Parameters:
    ///   - variant: how Q is built.
    ///   - columns: M for the orthogonal variant, 1 ≤ M ≤ D; `nil` for D.
    ///   - reflections: K ≥ 1 for the Householder variant; `nil` for D.
    ///   - contextNetwork: the network from a context to the shifts of R, R̃ and b; `nil` for two
    ///     hidden layers of 10·D units.
    public init(variant: SylvesterVariant = .orthogonal, columns: Int? = nil, reflections: Int? = nil,
                contextNetwork: CouplingNetwork? = nil) {
        self.variant = variant
        self.columns = columns
        self.reflections = reflections
        self.contextNetwork = contextNetwork
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        let d = spec.eventSize
        let m = variant == .orthogonal ? (columns ?? d) : d
        guard m >= 1 && m <= d, (reflections ?? 1) >= 1 else {
            throw FlowError.invalidConfiguration("Sylvester needs 1 ≤ columns ≤ D (= \(d)) and at least one reflection")
        }
        return try SylvesterBijector(variant: variant, columns: m, reflections: reflections ?? d, spec: spec,
                                     contextNetwork: contextNetwork, generator: &generator)
    }
}

final class SylvesterBijector: Bijector {
    let eventShape: [Int]
    let variant: SylvesterVariant
    let size: Int, columns: Int
    let rDiagonal: Parameter, rUpper: Parameter, rTildeDiagonal: Parameter, rTildeUpper: Parameter
    /// The shift b.
    let b: Parameter
    /// Q's free matrix (orthogonal variant) or reflection vectors (Householder variant).
    let q: Parameter?, householderVectors: Parameter?
    /// With a context: the network that shifts R's and R̃'s diagonals and upper parts and b.
    let contextNetwork: ContextParameterNetwork?
    private let upperMask: Tensor, identityM: Tensor
    /// Björck steps allowed for Q, and Newton/bisection steps per scalar equation of the inverse,
    /// before ``FlowError/notConverged(row:_:)`` (tests lower them to make one fail).
    var maximumOrthogonalizationSteps = 100, maximumIterations = 100

    init(variant: SylvesterVariant, columns m: Int, reflections k: Int, spec: BijectorSpec, contextNetwork: CouplingNetwork?,
         generator: inout RandomGenerator) throws {
        self.variant = variant
        eventShape = spec.eventShape
        size = spec.eventSize
        columns = m
        let dt = spec.dtype
        func small(_ shape: [Int]) -> Tensor { Tensor.uniform(shape, low: -0.1, high: 0.1, generator: &generator, dtype: dt) }
        rDiagonal = Parameter(small([m]), name: "r_diagonal")
        rTildeDiagonal = Parameter(small([m]), name: "r_tilde_diagonal")
        rUpper = Parameter(small([m, m]), name: "r_upper")
        rTildeUpper = Parameter(small([m, m]), name: "r_tilde_upper")
        b = Parameter(.zeros([m], dtype: dt), name: "b")
        q = variant == .orthogonal ? Parameter(.randn([size, m], generator: &generator, dtype: dt), name: "q") : nil
        householderVectors = variant == .householder
            ? Parameter(.randn([k, size], generator: &generator, dtype: dt), name: "householder_vectors") : nil
        upperMask = Tensor((0..<(m * m)).map { $0 % m > $0 / m ? 1.0 : 0.0 }, shape: [m, m], dtype: dt)
        identityM = Tensor.eye(m, dtype: dt)
        self.contextNetwork = spec.contextSize > 0
            ? try ContextParameterNetwork(contextSize: spec.contextSize, shifting: [[m], [m, m], [m], [m, m], [m]],
                                          shape: contextNetwork ?? .contextNetworkDefault(eventSize: size), dtype: dt, generator: &generator)
            : nil
    }

    /// R and R̃ (upper triangular, M×M), the products of their diagonals and b for the context:
    /// R and R̃ `leading + [M, M]`, the rest `leading + [M]`, where `leading` is [] without a
    /// context or for a one-row context.
    private func triangularFactors(context: Tensor?, eventsLeading: [Int]) throws
        -> (r: Tensor, rTilde: Tensor, diagonalProduct: Tensor, b: Tensor) {
        let raw = try contextNetwork.shifting([rDiagonal.value, rUpper.value, rTildeDiagonal.value, rTildeUpper.value, b.value], for: context, eventsLeading: eventsLeading)
        let diagonal = raw[0].tanh(), tildeDiagonal = raw[2].tanh()
        let r = raw[1] * upperMask + identityM * diagonal.unsqueezed(axis: -2)
        let rTilde = raw[3] * upperMask + identityM * tildeDiagonal.unsqueezed(axis: -2)
        return (r, rTilde, diagonal * tildeDiagonal, raw[4])
    }

    /// Q (D×M, orthonormal columns), shared by every context.
    /// Throws ``FlowError/notConverged(row:_:)`` when Q's orthogonalisation does not converge.
    private func orthogonalMatrix() throws -> Tensor {
        let dt = rDiagonal.dtype
        switch variant {
        case .triangular:
            return Tensor.eye(size, dtype: dt)
        case .householder:
            var qMatrix = Tensor.eye(size, dtype: dt)
            let vectors = householderVectors!.value
            for i in 0..<vectors.shape[0] {
                let v = vectors.select(alongAxis: 0, index: i).unsqueezed(axis: 1)            // D×1
                // ‖v‖² floored, not offset: I − 2vvᵀ/(‖v‖² + ε) is not orthogonal, and with ‖v‖²
                // near 1e-6 an offset of 1e-12 put 2e-6 into log |det J|.
                qMatrix = qMatrix - matmul(matmul(qMatrix, v), v, transposeB: true) * (2 / v.square().sum().clamped(min: 1e-30))
            }
            return qMatrix
        case .orthogonal:
            // Scaled to Frobenius norm 1 the singular values lie in (0, 1], where Björck & Bowie's
            // iteration Q ← Q(3I − QᵀQ)/2 raises each towards 1 (σ ← σ(3 − σ²)/2: by half while
            // small, quadratically near 1). The log-determinant identity needs QᵀQ = I, so it
            // runs until max |QᵀQ − I| ≤ 1e-4 (Float32) or 1e-8 (Float64) and one more step
            // (error ≈ ¾·1e-8 and 1e-16: the dtype's rounding), or throws.
            var qMatrix = q!.value / (q!.value.square().sum().sqrt() + 1e-12)
            let tolerance = dt == .float32 ? 1e-4 : 1e-8
            var steps = 0
            while true {
                let gram = matmul(qMatrix, qMatrix, transposeA: true)
                let error = zip(gram.detached().doubles, identityM.doubles).map { Swift.abs($0 - $1) }.max()!
                let converged = error <= tolerance
                guard converged || steps < maximumOrthogonalizationSteps else {
                    throw FlowError.notConverged(row: nil, "the Sylvester layer's Björck orthogonalisation of Q left "
                        + "max |QᵀQ − I| = \(error) after \(steps) steps (Q's free matrix is nearly rank-deficient)")
                }
                qMatrix = matmul(qMatrix, identityM * 3 - gram) * 0.5
                steps += 1
                if converged { break }
            }
            return qMatrix
        }
    }

    /// Each row of `rows` [..., M] times its matrix, (A v) per row: one matrix A [M, M] for all
    /// rows (a matrix product), or one per row, `matrices` [..., M, M].
    private func applying(_ matrices: Tensor, to rows: Tensor) -> Tensor {
        matrices.rank == 2 ? matmul(rows, matrices, transposeB: true) : (matrices * rows.unsqueezed(axis: -2)).sum(alongAxis: -1)
    }

    private func logDet(_ hidden: Tensor, _ diagonalProduct: Tensor) -> Tensor {
        ((1 - hidden.square()) * diagonalProduct + 1).log().sum(alongAxis: -1)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let z = x.reshaped(to: leading + [size])
        let qm = try orthogonalMatrix()
        let (r, rTilde, diagonalProduct, b) = try triangularFactors(context: context, eventsLeading: leading)
        let u = applying(rTilde, to: matmul(z, qm)) + b                       // (R̃Qᵀz + b) as rows
        let h = u.tanh()
        let y = z + matmul(applying(r, to: h), qm, transposeB: true)          // + Q R h
        return (y.reshaped(to: x.shape), logDet(h, diagonalProduct))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let yFlat = y.reshaped(to: leading + [size])
        let qm = try orthogonalMatrix()
        let (r, rTilde, diagonalProduct, b) = try triangularFactors(context: context, eventsLeading: leading)
        let t = applying(rTilde, to: matmul(yFlat, qm)) + b
        // C = R̃R, upper triangular: one, or one per point ((R̃R)_ij = Σ_k R̃_ik R_kj).
        let c = rTilde.rank == 2 ? matmul(rTilde, r) : (rTilde.unsqueezed(axis: -1) * r.unsqueezed(axis: -3)).sum(alongAxis: -2)
        let m = columns
        let cValues = c.detached().doubles
        let perPoint = c.rank > 2
        // Back substitution, one scalar equation per row, per point, in Double.
        let tValues = t.doubles
        let rows = tValues.count / m
        var solved = [Double](repeating: 0, count: tValues.count)
        for p in 0..<rows {
            let base = perPoint ? p * m * m : 0
            for i in stride(from: m - 1, through: 0, by: -1) {
                var offset = 0.0
                for j in (i + 1)..<m { offset += cValues[base + i * m + j] * Foundation.tanh(solved[p * m + j]) }
                solved[p * m + i] = try solveTanhEquation(target: tValues[p * m + i] - offset, slope: cValues[base + i * m + i],
                                                          maximumIterations: maximumIterations, row: p, in: "Sylvester (component \(i))")
            }
        }
        let uStar = Tensor(solved, shape: t.shape, dtype: t.dtype)
        // One Newton step on the tape whose value is the solution and whose derivative is the
        // implicit one: u = u* − J⁻¹(g − ḡ), g = u* + C·tanh u* − t, ḡ its value held fixed (so
        // g's rounding error is not divided by J, near-singular when a diagonal of C is near −1),
        // J = I + C·diag(1 − tanh² u*) held fixed (its derivative multiplies g − ḡ = 0), solved
        // by back substitution.
        let hStar = uStar.tanh()
        let slopes = (1 - hStar.square()).detached()
        let residual = uStar + applying(c, to: hStar) - t
        let g = residual - residual.detached()
        // C's entry (i, j), held fixed: a number, or one per point.
        func entry(_ i: Int, _ j: Int) -> Tensor {
            perPoint ? c.detached().select(alongAxis: -2, index: i).select(alongAxis: -1, index: j)
                     : Tensor(scalar: cValues[i * m + j], dtype: c.dtype)
        }
        var delta = [Tensor?](repeating: nil, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            var numerator = g.select(alongAxis: -1, index: i)
            for j in (i + 1)..<m {
                numerator = numerator - delta[j]! * slopes.select(alongAxis: -1, index: j) * entry(i, j)
            }
            delta[i] = numerator / (slopes.select(alongAxis: -1, index: i) * entry(i, i) + 1).clamped(min: 1e-30)
        }
        let u = uStar - Tensor.stack(delta.map { $0! }, alongAxis: -1)
        let h = u.tanh()
        let x = yFlat - matmul(applying(r, to: h), qm, transposeB: true)
        return (x.reshaped(to: y.shape), logDet(h, diagonalProduct).negated())
    }
}

/// `layers` Sylvester layers (van den Berg et al. 2018); the triangular variant reverses the
/// order between layers, as in the paper.
///
/// Its layers start near the identity and move points by bounded amounts, so they train slowly at
/// the default learning rate of 1e-3 (``FitOptions``, ``VariationalOptions``): use about 1e-2, the
/// default of `flows fit` and `flows vi` for this family (fitted to two moons for 2,000 steps:
/// held-out NLL 1.814 at 1e-3, 0.537 at 1e-2; a Gaussian 1.884).
public struct SylvesterFlow: SerializablePlan {
    /// The number of Sylvester layers (default 16).
    public var layers: Int
    /// How every layer builds Q (default ``SylvesterVariant/orthogonal``).
    public var variant: SylvesterVariant

    /// A stack of Sylvester layers.
    /// - Parameters:
    ///   - layers: the number of layers (default 16).
    ///   - variant: how each layer builds Q (default orthogonal).
    public init(layers: Int = 16, variant: SylvesterVariant = .orthogonal) {
        self.layers = layers
        self.variant = variant
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Sylvester(variant: variant), reversing: variant == .triangular, spec, &generator)
    }
}
