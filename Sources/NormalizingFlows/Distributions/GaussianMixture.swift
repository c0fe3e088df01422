import Foundation

/// A mixture of K Gaussians over vectors of D values, with diagonal or full covariances: a base
/// for a flow and a density model by itself (zuko's `GMM`, scikit-learn's `GaussianMixture`).
///
/// p(x) = Σⱼ wⱼ N(x; μⱼ, Σⱼ), w = softmax(logits), so
/// log p(x) = logsumexpⱼ (log wⱼ + log N(x; μⱼ, Σⱼ)) (Bishop, *Pattern Recognition and Machine
/// Learning*, 2006, §9.2), with
///
/// - **diagonal** covariances Σⱼ = diag(σⱼ²), σ = exp(log σ):
///   log N = Σᵢ −½((xᵢ − μⱼᵢ)/σⱼᵢ)² − log σⱼᵢ − ½ log 2π;
/// - **full** covariances parameterised by the Cholesky factor of the precision,
///   Σⱼ⁻¹ = PⱼPⱼᵀ with Pⱼ lower triangular, its diagonal exp(ℓⱼ) > 0 and its strictly lower part
///   free: log N = −½‖Pⱼᵀ(x − μⱼ)‖² + Σᵢ ℓⱼᵢ − (D/2) log 2π. Every value of the parameters is a
///   valid covariance, and scoring needs products only, no triangular solve (scikit-learn keeps
///   the same `precisions_cholesky`).
///
/// All of them — logits [K], means [K, D], and log σ [K, D] or ℓ [K, D] with the lower part
/// [K, D, D] (its diagonal and upper part unused) — are trained `Parameter`s: as a flow's base,
/// ``fit(_:data:context:validation:validationContext:optimizer:options:progress:)`` trains them
/// with the bijector; by itself, any optimizer on its `parameters` minimising
/// `-logProb(x).mean()`. ``init(kMeansOn:components:covariance:iterations:seed:)`` starts from
/// the clusters of data (k-means++ seeding, Arthur & Vassilvitskii 2007, then Lloyd's
/// iterations), which is already a fair density model.
///
/// Cost per point: O(KD) diagonal, O(KD²) full. Samples pick a component by its weight, then
/// μⱼ + σⱼ·ε (or μⱼ + Pⱼ⁻ᵀε, by back substitution); the choice of a component is discrete, so
/// samples carry no gradient to the mixture's parameters (as in PyTorch, whose mixtures have no
/// `rsample`).
public final class GaussianMixture: SerializableBase {
    /// The form of each component's covariance.
    public enum Covariance: String, Sendable, CaseIterable {
        /// Σ_k = diag(σ_k²): each component's coordinates are independent (``logScales``).
        case diagonal
        /// Any positive-definite Σ_k, through the Cholesky factor of its precision Σ_k⁻¹
        /// (``precisionLogDiagonal``, ``precisionLower``).
        case full
    }

    /// K, the number of components.
    public let components: Int
    /// D, the length of one event.
    public let features: Int
    /// Whether each component's covariance is diagonal or full.
    public let covariance: Covariance
    /// The unnormalised log-weights, [K].
    public let logits: Parameter
    /// μ, [K, D].
    public let means: Parameter
    /// log σ, [K, D], for diagonal covariances.
    public let logScales: Parameter?
    /// ℓ, the log of the precision Cholesky factor's diagonal, [K, D], for full covariances.
    public let precisionLogDiagonal: Parameter?
    /// The precision Cholesky factor's strictly lower part, [K, D, D] (the rest is unused), for
    /// full covariances.
    public let precisionLower: Parameter?
    private let _lowerMask: Tensor, _identity: Tensor

    /// A mixture with the given parameters (see the type's description for their shapes):
    /// `scales` are log σ for diagonal covariances; for full ones, `precisionLogDiagonal` and
    /// `precisionLower`.
    public init(logits: Tensor, means: Tensor, logScales: Tensor? = nil, precisionLogDiagonal: Tensor? = nil, precisionLower: Tensor? = nil) {
        precondition(means.rank == 2 && means.shape[0] >= 1 && means.shape[1] >= 1 && logits.shape == [means.shape[0]]
                     && logits.dtype == means.dtype, "GaussianMixture: logits [K] and means [K, D] must match, got \(logits.shape) and \(means.shape)")
        let (k, d) = (means.shape[0], means.shape[1])
        components = k
        features = d
        self.logits = Parameter(logits, name: "logits")
        self.means = Parameter(means, name: "means")
        if let logScales {
            precondition(logScales.shape == [k, d] && logScales.dtype == means.dtype && precisionLogDiagonal == nil && precisionLower == nil,
                "GaussianMixture: diagonal log scales must be [K, D] = [\(k), \(d)], without precision factors")
            covariance = .diagonal
            self.logScales = Parameter(logScales, name: "log_scales")
            self.precisionLogDiagonal = nil
            self.precisionLower = nil
        } else {
            guard let precisionLogDiagonal, let precisionLower else {
                preconditionFailure("GaussianMixture: give logScales (diagonal) or precisionLogDiagonal and precisionLower (full)")
            }
            precondition(precisionLogDiagonal.shape == [k, d] && precisionLower.shape == [k, d, d]
                         && precisionLogDiagonal.dtype == means.dtype && precisionLower.dtype == means.dtype,
                "GaussianMixture: full covariances need ℓ [K, D] and a lower part [K, D, D]")
            covariance = .full
            self.logScales = nil
            self.precisionLogDiagonal = Parameter(precisionLogDiagonal, name: "precision_log_diagonal")
            self.precisionLower = Parameter(precisionLower, name: "precision_lower")
        }
        _lowerMask = Tensor((0..<(d * d)).map { $0 / d > $0 % d ? 1 : 0 }, shape: [d, d], dtype: means.dtype)
        _identity = Tensor((0..<(d * d)).map { $0 / d == $0 % d ? 1 : 0 }, shape: [d, d], dtype: means.dtype)
    }

    /// K standard normals with means drawn from N(0, I) and equal weights.
    public convenience init(components: Int, features: Int, covariance: Covariance = .diagonal, dtype: DType = .float32, seed: UInt64 = 0) throws {
        guard components >= 1, features >= 1 else {
            throw FlowError.invalidConfiguration("a Gaussian mixture needs at least one component and one feature, got \(components) and \(features)")
        }
        var generator = RandomGenerator(seed: seed)
        let means = Tensor.randn([components, features], generator: &generator, dtype: dtype)
        self.init(components: .zeros([components], dtype: dtype), means: means, covariances: covariance,
                  unitCovariancesOf: dtype)
    }

    private convenience init(components logits: Tensor, means: Tensor, covariances: Covariance, unitCovariancesOf dtype: DType) {
        let (k, d) = (means.shape[0], means.shape[1])
        switch covariances {
        case .diagonal: self.init(logits: logits, means: means, logScales: .zeros([k, d], dtype: dtype))
        case .full: self.init(logits: logits, means: means, precisionLogDiagonal: .zeros([k, d], dtype: dtype), precisionLower: .zeros([k, d, d], dtype: dtype))
        }
    }

    /// A mixture started from the clusters of `data` [N, D]: k-means++ seeding and at most
    /// `iterations` of Lloyd's algorithm, then each component's weight, mean and covariance
    /// (diagonal or full) are its cluster's, its variances raised by 10⁻⁶ of the data's mean
    /// variance so that a cluster of one row keeps a proper density.
    /// - Throws: ``FlowError`` when the data are not [N, D] finite rows, or fewer than K rows.
    public convenience init(kMeansOn data: Tensor, components k: Int, covariance: Covariance = .diagonal,
                            iterations: Int = 100, seed: UInt64 = 0) throws {
        guard data.rank == 2, data.shape[1] >= 1 else { throw FlowError.shapeMismatch("k-means needs data [N, D], got \(data.shape)") }
        guard k >= 1, data.shape[0] >= k else {
            throw FlowError.invalidConfiguration("k-means needs at least one component and as many rows as components, got \(k) components for \(data.shape[0]) rows")
        }
        guard data.isFinite else { throw FlowError.nonFiniteValues("the data for k-means contain NaN or ±∞") }
        let clusters = KMeans(data.doubles, rows: data.shape[0], features: data.shape[1], components: k, iterations: iterations, seed: seed)
        let d = data.shape[1], dtype = data.dtype
        let logits = Tensor(clusters.weights.map { Foundation.log($0) }, dtype: dtype)
        let means = Tensor(clusters.centroids, shape: [k, d], dtype: dtype)
        switch covariance {
        case .diagonal:
            let logScales = (0..<(k * d)).map { 0.5 * Foundation.log(clusters.covariances[$0 / d][($0 % d) * (d + 1)]) }
            self.init(logits: logits, means: means, logScales: Tensor(logScales, shape: [k, d], dtype: dtype))
        case .full:
            var logDiagonal: [Double] = [], lower: [Double] = []
            for j in 0..<k {
                let p = KMeans.precisionCholesky(clusters.covariances[j], d)
                logDiagonal += (0..<d).map { Foundation.log(p[$0 * (d + 1)]) }
                lower += (0..<(d * d)).map { $0 / d > $0 % d ? p[$0] : 0 }
            }
            self.init(logits: logits, means: means, precisionLogDiagonal: Tensor(logDiagonal, shape: [k, d], dtype: dtype),
                      precisionLower: Tensor(lower, shape: [k, d, d], dtype: dtype))
        }
    }

    public static var typeName: String { "GaussianMixture" }
    public var fileSettings: [String: Any] { ["covariance": covariance.rawValue] }

    /// A mixture of the file's K and D (from `base.means`) and dtype, for its values to be loaded.
    public convenience init(fileSettings settings: BaseSettings) throws {
        let covariance = Covariance(rawValue: try settings.string("covariance", oneOf: Covariance.allCases.map(\.rawValue)))!
        let means = try settings.tensor("means", rank: 2...2)
        for name in covariance == .diagonal ? ["log_scales"] : ["precision_log_diagonal"] { _ = try settings.logScale(name) }
        let (k, d) = (means.shape[0], means.shape[1])
        guard k >= 1, d >= 1 else { throw FlowError.invalidConfiguration("the GaussianMixture base's means have shape \(means.shape); it needs K, D ≥ 1") }
        try settings.checkAllocation(Double(k) * Double(d) * Double(covariance == .full ? d + 2 : 2), "\(k) components of \(d) features")
        self.init(components: .zeros([k], dtype: means.dtype), means: .zeros([k, d], dtype: means.dtype), covariances: covariance,
                  unitCovariancesOf: means.dtype)
    }

    public var eventShape: [Int] { [features] }
    public var batchShape: [Int] { [] }
    public var dtype: DType { means.dtype }

    /// log wⱼ + log N(x; μⱼ, Σⱼ) for rows x [M, D]: [M, K].
    private func componentLogDensities(_ x: Tensor) -> Tensor {
        let logWeights = logits.value.logSoftmax(alongAxis: 0)
        let constant = -0.5 * Double(features) * Foundation.log(2 * Double.pi)
        switch covariance {
        case .diagonal:
            let logSigma = logScales!.value
            let z = (x.unsqueezed(axis: 1) - means.value) * logSigma.negated().exp()   // [M, K, D]
            return (z.square() * -0.5 - logSigma).sum(alongAxis: 2) + logWeights + constant
        case .full:
            let logDiagonal = precisionLogDiagonal!.value
            let factors = precisionLower!.value * _lowerMask + logDiagonal.exp().unsqueezed(axis: 2) * _identity   // [K, D, D]
            let mus = means.value
            let quadratic = (0..<components).map { j in
                matmul(x - mus.select(alongAxis: 0, index: j), factors.select(alongAxis: 0, index: j)).square().sum(alongAxis: 1)
            }
            return Tensor.stack(quadratic, alongAxis: 1) * -0.5 + logDiagonal.sum(alongAxis: 1) + logWeights + constant
        }
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        let leading = try checkInput(x)
        let rows = x.reshaped(to: [leading.reduce(1, *), features])
        return componentLogDensities(rows).logSumExp(alongAxis: 1).reshaped(to: leading)
    }

    /// The posterior probability of each component for each row x [M, D]: [M, K].
    public func responsibilities(_ x: Tensor) throws -> Tensor {
        let leading = try checkInput(x)
        return componentLogDensities(x.reshaped(to: [leading.reduce(1, *), features])).softmax(alongAxis: 1)
    }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        guard n >= 0 else { throw FlowError.invalidConfiguration("sample count must be non-negative, got \(n)") }
        let (k, d) = (components, features)
        let weights = logits.value.softmax(alongAxis: 0).doubles, mus = means.value.doubles
        let scales = logScales.map { $0.value.exp().doubles }
        let logDiagonal = precisionLogDiagonal?.value.doubles, lower = precisionLower?.value.doubles
        var values = [Double](repeating: 0, count: n * d)
        for row in 0..<n {
            var u = generator.nextUniform(), j = 0
            while j < k - 1 && u >= weights[j] { u -= weights[j]; j += 1 }
            let noise = (0..<d).map { _ in generator.nextNormal() }
            var offset = [Double](repeating: 0, count: d)
            if let scales {
                for i in 0..<d { offset[i] = scales[j * d + i] * noise[i] }
            } else if let logDiagonal, let lower {
                // Pⱼᵀ·offset = noise, Pⱼᵀ upper triangular: back substitution from the last value.
                for i in stride(from: d - 1, through: 0, by: -1) {
                    var sum = noise[i]
                    for r in (i + 1)..<d { sum -= lower[(j * d + r) * d + i] * offset[r] }
                    offset[i] = sum / Foundation.exp(logDiagonal[j * d + i])
                }
            }
            for i in 0..<d { values[row * d + i] = mus[j * d + i] + offset[i] }
        }
        return Tensor(values, shape: [n, d], dtype: dtype)
    }
}
