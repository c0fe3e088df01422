import Foundation

/// Student's t distribution with ν degrees of freedom, location μ and scale σ per element.
///
/// log p(x) = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log σ − (ν+1)/2 · log(1 + z²/ν),
/// z = (x − μ)/σ, summed over the event. Samples are μ + σ·Z/√(G/ν) with Z ~ N(0, 1) and
/// G ~ χ²_ν (Marsaglia & Tsang's gamma sampler).
///
/// As a flow's base it is a module with the buffers `loc` and `scale` (PyTorch's names, stored as
/// `base.loc` and `base.scale`, not trained); a model file's `base` metadata holds ν as
/// `degreesOfFreedom` beside the `eventRank`. A heavy-tailed base lets a flow model heavy-tailed
/// data, which a Gaussian base pushed through Lipschitz layers cannot (Jaini et al. 2020,
/// "Tails of Lipschitz triangular flows").
public final class StudentT: SerializableBase {
    /// ν > 0.
    public let degreesOfFreedom: Double
    private let locBuffer: Buffer, scaleBuffer: Buffer
    let layout: ParameterLayout

    /// A Student's t distribution with ν degrees of freedom per element, independent across elements.
    /// - Parameters:
    ///   - degreesOfFreedom: ν > 0.
    ///   - loc: μ; its last `eventRank` dimensions form the event.
    ///   - scale: σ, positive and finite, of the shape and dtype of `loc`.
    ///   - eventRank: how many trailing dimensions of `loc` form one event (all of them by default).
    public init(degreesOfFreedom: Double, loc: Tensor, scale: Tensor, eventRank: Int? = nil) {
        precondition(degreesOfFreedom > 0 && degreesOfFreedom.isFinite, "StudentT: degrees of freedom must be positive and finite")
        precondition(loc.shape == scale.shape && loc.dtype == scale.dtype, "StudentT: loc and scale must match")
        precondition(scale.doubles.allSatisfy { $0 > 0 && $0.isFinite }, "StudentT: every scale must be positive and finite")
        self.degreesOfFreedom = degreesOfFreedom
        locBuffer = Buffer(loc)
        scaleBuffer = Buffer(scale)
        layout = ParameterLayout(loc.shape, eventRank: eventRank, "StudentT")
    }

    /// μ, of the distribution's batch and event shape.
    public var loc: Tensor { locBuffer.value }
    /// σ > 0, of the shape of ``loc``.
    public var scale: Tensor { scaleBuffer.value }

    /// The buffers under PyTorch's names, `loc` and `scale` (no trained parameters), stored as
    /// `base.loc` and `base.scale`.
    public var members: [(name: String, member: ModuleMember)] { [("loc", .buffer(locBuffer)), ("scale", .buffer(scaleBuffer))] }

    /// Checks the values a model file loaded into `loc` and `scale`, which bypass the
    /// initializer's checks.
    ///
    /// - Throws: ``FlowError/stateMismatch(_:)`` when the loaded μ is not finite or a σ is not
    ///   positive and finite.
    public func buffersDidLoad() throws {
        guard loc.isFinite else { throw FlowError.stateMismatch("the Student's t base's loc must be finite") }
        guard scale.doubles.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw FlowError.stateMismatch("the Student's t base's scale must be positive and finite")
        }
    }

    public static var typeName: String { "StudentT" }
    public var fileSettings: [String: Any] { ["eventRank": eventRank, "degreesOfFreedom": degreesOfFreedom] }

    /// ν from the file (at least 10⁻³, so that samples stay finite) and a standard t of the
    /// shape and dtype of the file's `base.loc`, for its values to be loaded.
    public convenience init(fileSettings settings: BaseSettings) throws {
        let (loc, eventRank) = try settings.shapeTensorAndEventRank("loc")
        let nu = try settings.double("degreesOfFreedom", "at least 0.001") { $0 >= 1e-3 }
        self.init(degreesOfFreedom: nu, loc: .zeros(loc.shape, dtype: loc.dtype), scale: .ones(loc.shape, dtype: loc.dtype), eventRank: eventRank)
    }

    /// The number of trailing dimensions of `loc` that form one event.
    public var eventRank: Int { layout.eventRank }
    public var eventShape: [Int] { layout.eventShape }
    public var batchShape: [Int] { layout.batchShape }
    public var dtype: DType { loc.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        let shape = try layout.sampleShape(n)
        let count = shape.reduce(1, *)
        let nu = degreesOfFreedom
        var values = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let z = generator.nextNormal()
            let chiSquared = 2 * Self.gamma(shape: nu / 2, generator: &generator)
            values[i] = z / (chiSquared / nu).squareRoot()
        }
        return loc + scale * Tensor(values, shape: shape, dtype: dtype)
    }

    /// Gamma(shape a, scale 1) by Marsaglia & Tsang (2000), with the a < 1 boost G(a+1)·U^(1/a).
    static func gamma(shape a: Double, generator: inout RandomGenerator) -> Double {
        if a < 1 {
            let u = generator.nextUniform()
            return gamma(shape: a + 1, generator: &generator) * Foundation.pow(Swift.max(u, .leastNormalMagnitude), 1 / a)
        }
        let d = a - 1.0 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            let x = generator.nextNormal()
            let v = 1 + c * x
            if v <= 0 { continue }
            let v3 = v * v * v
            let u = generator.nextUniform()
            if Foundation.log(u) < 0.5 * x * x + d - d * v3 + d * Foundation.log(v3) { return d * v3 }
        }
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let nu = degreesOfFreedom
        let z = (x - loc) / scale
        let constant = lgamma((nu + 1) / 2) - lgamma(nu / 2) - 0.5 * Foundation.log(nu * Double.pi)
        let elementwise = (z.square() / nu).log1p() * (-(nu + 1) / 2) - scale.log() + constant
        return layout.sumOverEvent(elementwise)
    }
}
