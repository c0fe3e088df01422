import Foundation

/// A benchmark density on the torus [−π, π)², with exact samples and log-density: the data of
/// the `ncsf` measurements and of the circular-flow tests.
///
/// An equal mixture of two parts, both of which cross the cut at ±π, so that a flow must join
/// the torus' edges to fit them:
/// - a correlated ridge, p₁(θ) = exp(κ₁ cos(θ₁ + θ₂)) / (4π² I₀(κ₁)) with κ₁ = 4: θ₁ is uniform
///   and θ₁ + θ₂ follows a von Mises distribution around 0 (the "correlated" kind of torus
///   target of Rezende et al. 2020, "Normalizing Flows on Tori and Spheres", section 5);
/// - a von Mises bump, p₂(θ) = Πᵢ exp(κ₂ cos(θᵢ − μᵢ)) / (2π I₀(κ₂)) with μ = (2.8, −1.2) and
///   κ₂ = 6, close to θ₁ = π.
///
/// `benchmarks/data/torus.py` writes the same density's samples as CSV files and its entropy.
public enum TorusMixture {
    /// Concentration of the ridge, κ₁.
    public static let ridgeConcentration = 4.0
    /// Centre μ = (μ₁, μ₂) of the von Mises bump, in radians: (2.8, −1.2), so that the bump
    /// crosses the cut at θ₁ = ±π.
    public static let bumpCentre = (2.8, -1.2)
    /// Concentration κ₂ of the von Mises bump in each angle (6: a standard deviation of about
    /// 1/√κ₂ ≈ 0.41 rad per angle).
    public static let bumpConcentration = 6.0

    /// `n` points [n, 2] in [−π, π)², float64 unless `dtype` says otherwise.
    /// - Parameters:
    ///   - n: the number of points.
    ///   - generator: the source of randomness.
    ///   - dtype: the tensor's dtype.
    public static func sample(_ n: Int, generator: inout RandomGenerator, dtype: DType = .float64) -> Tensor {
        var values = [Double]()
        values.reserveCapacity(2 * n)
        for _ in 0..<n {
            if generator.nextUniform() < 0.5 {
                let first = -Double.pi + 2 * .pi * generator.nextUniform()
                let sum = vonMises(mean: 0, concentration: ridgeConcentration, generator: &generator)
                values += [first, wrapAngle(sum - first, bound: .pi)]
            } else {
                values += [vonMises(mean: bumpCentre.0, concentration: bumpConcentration, generator: &generator),
                           vonMises(mean: bumpCentre.1, concentration: bumpConcentration, generator: &generator)]
            }
        }
        // Rounding to float32 can give π, which is −π on the circle.
        let tensor = Tensor(values, shape: [n, 2], dtype: dtype)
        return dtype == .float64 ? tensor : withoutGradients { tensor.wrappedAngles() }
    }

    /// log p(θ) for points θ [..., 2] (any real angles; the density has period 2π), in float64.
    /// - Parameter points: the angles, last axis (θ₁, θ₂).
    public static func logDensity(_ points: Tensor) -> [Double] {
        let values = points.doubles
        return stride(from: 0, to: values.count, by: 2).map { logDensity(values[$0], values[$0 + 1]) }
    }

    /// log p(θ₁, θ₂).
    public static func logDensity(_ first: Double, _ second: Double) -> Double {
        let ridge = ridgeConcentration * Foundation.cos(first + second) - Foundation.log(4 * .pi * .pi * besselI0(ridgeConcentration))
        let bump = bumpConcentration * (Foundation.cos(first - bumpCentre.0) + Foundation.cos(second - bumpCentre.1))
            - 2 * Foundation.log(2 * .pi * besselI0(bumpConcentration))
        let larger = Swift.max(ridge, bump)
        return larger + Foundation.log(0.5 * Foundation.exp(ridge - larger) + 0.5 * Foundation.exp(bump - larger))
    }

    /// The modified Bessel function I₀(κ) = Σₖ (κ/2)²ᵏ / (k!)², summed until the terms
    /// stop changing the sum (κ up to about 50).
    static func besselI0(_ kappa: Double) -> Double {
        var sum = 1.0, term = 1.0, k = 1.0
        while term > sum * 1e-17 {
            term *= (kappa / 2) * (kappa / 2) / (k * k)
            sum += term
            k += 1
        }
        return sum
    }

    /// A von Mises angle in [−π, π) with density exp(κ cos(θ − μ)) / (2π I₀(κ)), by the rejection
    /// sampler of Best & Fisher (1979, "Efficient simulation of the von Mises distribution",
    /// Applied Statistics 28(2), 152–157).
    static func vonMises(mean: Double, concentration kappa: Double, generator: inout RandomGenerator) -> Double {
        let tau = 1 + (1 + 4 * kappa * kappa).squareRoot()
        let rho = (tau - (2 * tau).squareRoot()) / (2 * kappa)
        let r = (1 + rho * rho) / (2 * rho)
        while true {
            let z = Foundation.cos(.pi * generator.nextUniform())
            let f = (1 + r * z) / (r + z)
            let c = kappa * (r - f)
            let u = generator.nextUniform()
            guard c * (2 - c) - u > 0 || Foundation.log(c / u) + 1 - c >= 0 else { continue }
            let angle = Foundation.acos(Swift.min(Swift.max(f, -1), 1))
            return wrapAngle(mean + (generator.nextUniform() < 0.5 ? -angle : angle), bound: .pi)
        }
    }
}
