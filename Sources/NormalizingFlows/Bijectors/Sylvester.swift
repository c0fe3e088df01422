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
/// 1e-12 relative), O(M²) per point; one recorded Newton step gives exact gradients.
public struct Sylvester: SerializablePlan {
    public var variant: SylvesterVariant
    /// M for the orthogonal variant (default: D).
    public var columns: Int?
    /// K for the Householder variant (default: D).
    public var reflections: Int?

    public init(variant: SylvesterVariant = .orthogonal, columns: Int? = nil, reflections: Int? = nil) {
        self.variant = variant
        self.columns = columns
        self.reflections = reflections
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard spec.contextSize == 0 else { throw FlowError.invalidConfiguration("Sylvester takes no context") }
        let d = spec.eventSize
        let m = variant == .orthogonal ? (columns ?? d) : d
        guard m >= 1 && m <= d, (reflections ?? 1) >= 1 else {
            throw FlowError.invalidConfiguration("Sylvester needs 1 ≤ columns ≤ D (= \(d)) and at least one reflection")
        }
        return SylvesterBijector(variant: variant, columns: m, reflections: reflections ?? d, spec: spec, generator: &generator)
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
    private let upperMask: Tensor, identityM: Tensor

    init(variant: SylvesterVariant, columns m: Int, reflections k: Int, spec: BijectorSpec, generator: inout RandomGenerator) {
        self.variant = variant
        eventShape = spec.eventShape
        size = spec.eventSize
        columns = m
        let dt = spec.dtype
        func small(_ shape: [Int]) -> Tensor { Tensor.uniform(shape, low: -0.1, high: 0.1, generator: &generator, dtype: dt) }
        rDiagonal = Parameter(small([m]) + 1, name: "r_diagonal")
        rTildeDiagonal = Parameter(small([m]) + 1, name: "r_tilde_diagonal")
        rUpper = Parameter(small([m, m]), name: "r_upper")
        rTildeUpper = Parameter(small([m, m]), name: "r_tilde_upper")
        b = Parameter(.zeros([m], dtype: dt), name: "b")
        q = variant == .orthogonal ? Parameter(.randn([size, m], generator: &generator, dtype: dt), name: "q") : nil
        householderVectors = variant == .householder
            ? Parameter(.randn([k, size], generator: &generator, dtype: dt), name: "householder_vectors") : nil
        upperMask = Tensor((0..<(m * m)).map { $0 % m > $0 / m ? 1.0 : 0.0 }, shape: [m, m], dtype: dt)
        identityM = Tensor.eye(m, dtype: dt)
    }

    /// Q (D×M, orthonormal columns), R and R̃ (upper triangular, tanh diagonals).
    private func matrices() -> (q: Tensor, r: Tensor, rTilde: Tensor) {
        let r = rUpper.value * upperMask + identityM * rDiagonal.value.tanh()
        let rTilde = rTildeUpper.value * upperMask + identityM * rTildeDiagonal.value.tanh()
        let dt = rDiagonal.dtype
        switch variant {
        case .triangular:
            return (Tensor.eye(size, dtype: dt), r, rTilde)
        case .householder:
            var qMatrix = Tensor.eye(size, dtype: dt)
            let vectors = householderVectors!.value
            for i in 0..<vectors.shape[0] {
                let v = vectors.select(alongAxis: 0, index: i).unsqueezed(axis: 1)            // D×1
                qMatrix = qMatrix - matmul(matmul(qMatrix, v), v, transposeB: true) * (2 / (v.square().sum() + 1e-12))
            }
            return (qMatrix, r, rTilde)
        case .orthogonal:
            // Scale so the spectral norm is ≤ 1, then Björck iterations converge to the nearest
            // matrix with orthonormal columns; 30 steps reach 1e-7 from any full-rank start here.
            var qMatrix = q!.value / (q!.value.square().sum().sqrt() + 1e-12)
            for _ in 0..<30 {
                qMatrix = matmul(qMatrix, identityM * 3 - matmul(qMatrix, qMatrix, transposeA: true)) * 0.5
            }
            return (qMatrix, r, rTilde)
        }
    }

    private func logDet(_ hidden: Tensor, _ diagonalProduct: Tensor) -> Tensor {
        ((1 - hidden.square()) * diagonalProduct + 1).log().sum(alongAxis: -1)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let z = x.reshaped(to: leading + [size])
        let (qm, r, rTilde) = matrices()
        let u = matmul(matmul(z, qm), rTilde, transposeB: true) + b.value     // (R̃Qᵀz + b) as rows
        let h = u.tanh()
        let y = z + matmul(matmul(h, r, transposeB: true), qm, transposeB: true)  // + Q R h
        let diagonalProduct = rDiagonal.value.tanh() * rTildeDiagonal.value.tanh()
        return (y.reshaped(to: x.shape), logDet(h, diagonalProduct))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let yFlat = y.reshaped(to: leading + [size])
        let (qm, r, rTilde) = matrices()
        let t = matmul(matmul(yFlat, qm), rTilde, transposeB: true) + b.value
        let c = matmul(rTilde, r)                                                  // upper triangular
        let m = columns
        let cValues = c.doubles
        // Back substitution, one scalar equation per row, per point, in Double.
        let tValues = t.doubles
        let rows = tValues.count / m
        var solved = [Double](repeating: 0, count: tValues.count)
        for p in 0..<rows {
            for i in stride(from: m - 1, through: 0, by: -1) {
                var offset = 0.0
                for j in (i + 1)..<m { offset += cValues[i * m + j] * Foundation.tanh(solved[p * m + j]) }
                solved[p * m + i] = solveTanhEquation(target: tValues[p * m + i] - offset, slope: cValues[i * m + i])
            }
        }
        let uStar = Tensor(solved, shape: t.shape, dtype: t.dtype)
        // One Newton step on the tape: u = u* − J⁻¹g(u*), J = I + C·diag(1 − tanh² u*) (held
        // fixed; its derivative multiplies g(u*) ≈ 0), solved by back substitution.
        let hStar = uStar.tanh()
        let slopes = (1 - hStar.square()).detached()
        let g = uStar + matmul(hStar, c, transposeB: true) - t
        var delta = [Tensor?](repeating: nil, count: m)
        for i in stride(from: m - 1, through: 0, by: -1) {
            var numerator = g.select(alongAxis: -1, index: i)
            for j in (i + 1)..<m {
                numerator = numerator - delta[j]! * slopes.select(alongAxis: -1, index: j) * cValues[i * m + j]
            }
            delta[i] = numerator / (slopes.select(alongAxis: -1, index: i) * cValues[i * m + i] + 1)
        }
        let u = uStar - Tensor.stack(delta.map { $0! }, alongAxis: -1)
        let h = u.tanh()
        let x = yFlat - matmul(matmul(h, r, transposeB: true), qm, transposeB: true)
        let diagonalProduct = rDiagonal.value.tanh() * rTildeDiagonal.value.tanh()
        return (x.reshaped(to: y.shape), logDet(h, diagonalProduct).negated())
    }
}

/// `layers` Sylvester layers (van den Berg et al. 2018); the triangular variant reverses the
/// order between layers, as in the paper.
public struct SylvesterFlow: SerializablePlan {
    public var layers: Int
    public var variant: SylvesterVariant

    public init(layers: Int = 16, variant: SylvesterVariant = .orthogonal) {
        self.layers = layers
        self.variant = variant
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try stack(layers, Sylvester(variant: variant), reversing: variant == .triangular, spec, &generator)
    }
}
