/// nflows' `ResidualNet` (nflows 0.14, `nflows/nn/nets/resnet.py`; the coupling networks of
/// Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows"), with pre-activation
/// residual blocks (He, Zhang, Ren & Sun 2016, "Identity Mappings in Deep Residual Networks"):
///
///     h₀   = W₀·[x, c] + b₀                    initial_layer (c only when conditional)
///     t    = W₂·act(W₁·act(hₖ) + b₁) + b₂      blocks.k.linear_layers.0 and .1
///     hₖ₊₁ = hₖ + t ⊙ sigmoid(W_c·c + b_c)     with a context: blocks.k.context_layer's GLU
///     hₖ₊₁ = hₖ + t                            without
///     y    = W_f·h_n + b_f                     final_layer (no activation before it)
///
/// nflows' batch norm and dropout options are not part of it (dropout is off at evaluation;
/// batch norm between the layers is refused when an nflows network is converted). The second
/// layer of each block starts uniform on ±10⁻³, as nflows' `zero_initialization`. Every step is
/// a recorded tensor operation, so gradients reach the weights, the input and the context.
public final class ResidualNet: Module {
    /// W₀, b₀: the inputs and context, I + C, to the hidden width H (nflows' `initial_layer`).
    public let initialLayer: Linear
    /// The residual blocks, applied in order (nflows' `blocks`).
    public let blocks: [ResidualBlock]
    /// W_f, b_f: the hidden width H to the O outputs, with no activation before it (nflows' `final_layer`).
    public let finalLayer: Linear
    /// The nonlinearity inside every block.
    public let activation: Activation

    /// A residual network with freshly drawn weights.
    ///
    /// - Parameters:
    ///   - inputs: I, the conditioning values.
    ///   - contextSize: C, the context's length, appended to the inputs (0: none).
    ///   - hidden: H, the width of every block.
    ///   - outputs: O.
    ///   - blocks: the number of residual blocks (≥ 0).
    ///   - activation: the nonlinearity inside each block.
    ///   - dtype: the parameters' dtype.
    ///   - generator: draws the initial weights.
    public init(inputs: Int, contextSize: Int, hidden: Int, outputs: Int, blocks: Int, activation: Activation,
                dtype: DType, generator: inout RandomGenerator) {
        initialLayer = Linear(inputs + contextSize, hidden, dtype: dtype, generator: &generator)
        self.blocks = (0..<blocks).map { _ in
            ResidualBlock(features: hidden, contextSize: contextSize, dtype: dtype, generator: &generator)
        }
        finalLayer = Linear(hidden, outputs, dtype: dtype, generator: &generator)
        self.activation = activation
    }
}

extension ResidualNet: ConditioningNetwork {
    func callAsFunction(_ x: Tensor, context: Tensor?) -> Tensor {
        var h = initialLayer(context.map { Tensor.concatenate([x, $0], alongAxis: -1) } ?? x)
        for block in blocks {
            var t = block.linearLayers[1](block.linearLayers[0](activation(h), activation: activation))
            if let context, let gate = block.contextLayer { t = t * gate(context).sigmoid() }
            h = h + t
        }
        return finalLayer(h)
    }
}

/// One block of ``ResidualNet``: two dense layers H → H and, in a conditional network, the
/// context's gate C → H.
public final class ResidualBlock: Module {
    /// W_c, b_c: the context C to the gate of width H, or `nil` without a context.
    public let contextLayer: Linear?
    /// The block's two layers H → H, W₁ then W₂ (nflows' `linear_layers`).
    public let linearLayers: [Linear]

    init(features: Int, contextSize: Int, dtype: DType, generator: inout RandomGenerator) {
        contextLayer = contextSize > 0 ? Linear(contextSize, features, dtype: dtype, generator: &generator) : nil
        let first = Linear(features, features, dtype: dtype, generator: &generator)
        let second = Linear(
            weight: .uniform([features, features], low: -1e-3, high: 1e-3, generator: &generator, dtype: dtype),
            bias: .uniform([features], low: -1e-3, high: 1e-3, generator: &generator, dtype: dtype))
        linearLayers = [first, second]
    }
}
