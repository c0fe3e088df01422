import Foundation

/// Student's t distribution with ν degrees of freedom, location μ and scale σ per element.
///
/// log p(x) = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log σ − (ν+1)/2 · log(1 + z²/ν),
/// z = (x − μ)/σ, summed over the event. Samples are μ + σ·Z/√(G/ν) with Z ~ N(0, 1) and
/// G ~ χ²_ν (Marsaglia & Tsang's gamma sampler).
public struct StudentT: Distribution {
    public let degreesOfFreedom: Double
    public let loc: Tensor
    public let scale: Tensor
    let layout: ParameterLayout

    public init(degreesOfFreedom: Double, loc: Tensor, scale: Tensor, eventRank: Int? = nil) {
        precondition(degreesOfFreedom > 0 && degreesOfFreedom.isFinite, "StudentT: degrees of freedom must be positive and finite")
        precondition(loc.shape == scale.shape && loc.dtype == scale.dtype, "StudentT: loc and scale must match")
        precondition(scale.doubles.allSatisfy { $0 > 0 && $0.isFinite }, "StudentT: every scale must be positive and finite")
        self.degreesOfFreedom = degreesOfFreedom
        self.loc = loc
        self.scale = scale
        layout = ParameterLayout(loc.shape, eventRank: eventRank, "StudentT")
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
