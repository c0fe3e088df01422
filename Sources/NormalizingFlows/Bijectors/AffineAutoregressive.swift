/// An affine autoregressive bijector (IAF/MAF, Kingma et al. 2016; Papamakarios et al. 2017):
/// y_i = μ_i(x_<i) + σ_i(x_<i)·x_i with (μ, s) from a MADE network and log σ from ``AffineScale``.
///
/// `forward` (sampling) is one network pass; `inverse` (density evaluation) takes D sequential
/// steps (one pass's work in all when no gradients are recorded).
/// Wrap it in ``Invert`` for the MAF direction (parallel density, sequential sampling).
///
/// Defaults differ from FlowTorch's where FlowTorch's fail on its own tutorial: the network
/// starts close to the identity (a small last layer, see ``DenseAutoregressive``), and the
/// log-scale is unbounded (``AffineScale/exp``) instead of hard-clamped (a hard clamp passes no
/// gradient once saturated).
public struct AffineAutoregressive: BijectorPlan {
    /// The MADE network that outputs (μ_i, s_i) for each dimension from the dimensions before it.
    public var conditioner: DenseAutoregressive
    /// How the network's raw output s becomes log σ (default ``AffineScale/default``).
    public var scale: AffineScale

    /// An affine autoregressive plan with the given network and scale map.
    /// - Parameters:
    ///   - conditioner: the MADE network (by default ``DenseAutoregressive``'s defaults).
    ///   - scale: how the raw output s becomes log σ (default ``AffineScale/default``).
    public init(conditioner: DenseAutoregressive = DenseAutoregressive(), scale: AffineScale = .default) {
        self.conditioner = conditioner
        self.scale = scale
    }

    /// FlowTorch's spelling: hidden sizes and log-scale clamp bounds.
    public init(hiddenSizes: [Int], activation: Activation = DenseAutoregressive().activation, scale: AffineScale = .default) {
        self.init(conditioner: DenseAutoregressive(hiddenSizes: hiddenSizes, activation: activation), scale: scale)
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        // The fused pass takes the context as inputs; a context with layers of its own
        // (``DenseAutoregressive/contextLayers``) runs the network's pass and the transform's.
        try makeAutoregressive(AffineTransform(scale: scale), conditioner: conditioner, spec: spec, generator: &generator) {
            $0.contextLayers.isEmpty ? AffineAutoregressiveKernel(network: $0, scale: scale) : nil
        }
    }
}

extension AffineAutoregressive: SerializablePlan {}
