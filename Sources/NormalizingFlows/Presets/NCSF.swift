/// A neural circular spline flow for angles, data on the torus [−π, π)ᴰ (Rezende, Papamakarios,
/// Racanière, Albergo, Kanwar, Shanahan & Cranmer 2020, "Normalizing Flows on Tori and Spheres",
/// ICML, section 3; zuko's `NCSF`): `layers` autoregressive circular rational-quadratic splines
/// (``SplineAutoregressive`` with a ``RationalQuadraticSplineTransform/Boundary/circular``
/// boundary, bound π) in the MAF direction, with reversed orders and a half-turn
/// ``CircularShift`` between them. Its base is ``Uniform/circle(_:dtype:)``, the uniform density
/// on the torus.
///
/// A circular spline keeps ±π fixed; the half turn between layers moves the next layer's fixed
/// point to the previous one's 0, so no point stays fixed through the flow (zuko composes a half
/// turn with every spline for the same reason). Each spline's end derivative is learned, shared
/// by its two ends (Rezende et al.; zuko keeps it at 1).
///
/// The MADE networks are fed the angles themselves, as zuko's are; Rezende et al. feed
/// (cos x, sin x), which makes the conditioner continuous across ±π. Fed x, a later dimension's
/// density is smooth in the earlier angles except across the cut at ±π (and, after a half turn,
/// at 0 in the previous layer's output).
public struct NCSF: SerializablePlan {
    /// The number of circular spline layers (default 5).
    public var layers: Int
    /// K, the bins of each circular spline on [−π, π) (default 8).
    public var bins: Int
    /// The MADE network of every layer (default: two hidden layers of 64 ReLU units).
    public var conditioner: DenseAutoregressive

    /// An NCSF of `layers` layers.
    ///
    /// - Parameters:
    ///   - layers: spline layers (at least 1).
    ///   - bins: bins K of each spline (at least 2).
    ///   - conditioner: the MADE network of every layer (a context size comes from the flow).
    public init(layers: Int = 5, bins: Int = 8, conditioner: DenseAutoregressive = DenseAutoregressive()) {
        self.layers = layers
        self.bins = bins
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        let spline = Invert(SplineAutoregressive(bins: bins, bound: .pi, conditioner: conditioner, boundary: .circular))
        return try stack(layers, reversing: true, spec, &generator) { i in
            i == 0 ? spline as any BijectorPlan : Compose([CircularShift(.fixed(.pi)), spline])
        }
    }
}
