/// The dense network of a coupling layer: it maps the conditioning part of an event (and an
/// optional context) to the parameters of the transformed part. Its last layer starts at zero
/// with the transform's identity parameters as bias, so a new coupling layer is the identity.
///
/// Two shapes:
/// - `residualBlocks == 0` (the default): a multilayer perceptron over `hiddenSizes`, fed the
///   conditioning values and the context side by side (Tensors' `MLP`; tensors `layers.<l>.weight`).
/// - `residualBlocks == n > 0`: nflows' `ResidualNet` (Durkan et al. 2019, after He et al. 2016)
///   of one hidden width `hiddenSizes == [H]` and n pre-activation residual blocks
///   (``ResidualNet``; tensors `initial_layer.*`, `blocks.<b>.linear_layers.{0,1}.*`,
///   `blocks.<b>.context_layer.*`, `final_layer.*`, nflows' own names).
public struct CouplingNetwork: Sendable, Equatable, Codable {
    /// The widths of the hidden layers (default [64, 64]); one width when `residualBlocks > 0`.
    public var hiddenSizes: [Int]
    /// The nonlinearity between layers (default ReLU).
    public var activation: Activation
    /// The number of residual blocks; 0 for a plain multilayer perceptron.
    public var residualBlocks: Int

    /// A coupling network's shape.
    /// - Parameters:
    ///   - hiddenSizes: the hidden widths (default [64, 64]); one width for a residual network.
    ///   - activation: the nonlinearity (default ReLU).
    ///   - residualBlocks: the number of residual blocks, 0 for a plain perceptron (default 0).
    public init(hiddenSizes: [Int] = [64, 64], activation: Activation = .relu, residualBlocks: Int = 0) {
        self.hiddenSizes = hiddenSizes
        self.activation = activation
        self.residualBlocks = residualBlocks
    }

    private enum CodingKeys: String, CodingKey { case hiddenSizes, activation, residualBlocks }

    /// Files written before residual networks existed have no `residualBlocks`: a perceptron.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSizes = try container.decode([Int].self, forKey: .hiddenSizes)
        activation = try container.decode(Activation.self, forKey: .activation)
        residualBlocks = try container.decodeIfPresent(Int.self, forKey: .residualBlocks) ?? 0
    }

    /// A perceptron is written as before (no `residualBlocks` key), so its files stay the same.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hiddenSizes, forKey: .hiddenSizes)
        try container.encode(activation, forKey: .activation)
        if residualBlocks != 0 { try container.encode(residualBlocks, forKey: .residualBlocks) }
    }

    /// The network from `inputs` conditioning values and `contextSize` context values to
    /// `outputs` values, its last layer zero with `outputBias` (cycled) as bias.
    func make(inputs: Int, contextSize: Int, outputs: Int, outputBias: [Double], dtype: DType,
              generator: inout RandomGenerator) throws -> any ConditioningNetwork {
        guard residualBlocks != 0 else {
            return try makePerceptron(inputs: inputs + contextSize, outputs: outputs, outputBias: outputBias, dtype: dtype, generator: &generator)
        }
        guard residualBlocks > 0, hiddenSizes.count == 1, hiddenSizes[0] >= 1 else {
            throw FlowError.invalidConfiguration(
                "a residual coupling network needs residualBlocks ≥ 0 and one positive hidden width, got \(residualBlocks) blocks of \(hiddenSizes)")
        }
        let net = ResidualNet(inputs: inputs, contextSize: contextSize, hidden: hiddenSizes[0], outputs: outputs, blocks: residualBlocks,
                              activation: activation, dtype: dtype, generator: &generator)
        Self.startAtIdentity(net.finalLayer, outputs: outputs, outputBias: outputBias, dtype: dtype)
        return net
    }

    /// The perceptron alone (a conditional base's network, which has no residual form).
    func makePerceptron(inputs: Int, outputs: Int, outputBias: [Double], dtype: DType, generator: inout RandomGenerator) throws -> MLP {
        guard hiddenSizes.allSatisfy({ $0 >= 1 }) else {
            throw FlowError.invalidConfiguration("coupling network hidden sizes must be positive, got \(hiddenSizes)")
        }
        let mlp = MLP([inputs] + hiddenSizes + [outputs], activation: activation, dtype: dtype, generator: &generator)
        Self.startAtIdentity(mlp.layers[mlp.layers.count - 1], outputs: outputs, outputBias: outputBias, dtype: dtype)
        return mlp
    }

    private static func startAtIdentity(_ last: Linear, outputs: Int, outputBias: [Double], dtype: DType) {
        last.weight.value = .zeros(last.weight.shape, dtype: dtype)
        last.bias?.value = Tensor((0..<outputs).map { outputBias[$0 % outputBias.count] }, dtype: dtype)
    }
}

/// A network from conditioning values x [..., I] and an optional context c [..., C] (already
/// broadcast to x's leading shape) to parameters [..., O]: a coupling layer's conditioner.
protocol ConditioningNetwork: Module {
    func callAsFunction(_ x: Tensor, context: Tensor?) -> Tensor
}

extension MLP: ConditioningNetwork {
    /// The perceptron of [x, c], the context appended to the conditioning values.
    func callAsFunction(_ x: Tensor, context: Tensor?) -> Tensor {
        guard let context else { return self(x) }
        return self(Tensor.concatenate([x, context], alongAxis: -1))
    }
}
