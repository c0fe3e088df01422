import RealModule

/// A dense layer y = x·Wᵀ + b with W of shape [out, in] (PyTorch's `nn.Linear` layout).
///
/// Weights and bias start uniform on ±1/√in, PyTorch's default, unless given.
public final class Linear {
    public let weight: Parameter
    public let bias: Parameter?

    public init(
        _ inputFeatures: Int, _ outputFeatures: Int, bias: Bool = true, dtype: DType = .float32,
        generator: inout RandomGenerator
    ) {
        precondition(inputFeatures > 0 && outputFeatures > 0,
            "Linear needs positive sizes, not \(inputFeatures) → \(outputFeatures)")
        let bound = 1 / Double(inputFeatures).squareRoot()
        weight = Parameter(
            .uniform([outputFeatures, inputFeatures], low: -bound, high: bound, generator: &generator, dtype: dtype),
            name: "weight")
        self.bias = bias
            ? Parameter(.uniform([outputFeatures], low: -bound, high: bound, generator: &generator, dtype: dtype), name: "bias")
            : nil
    }

    public var inputFeatures: Int { weight.shape[1] }
    public var outputFeatures: Int { weight.shape[0] }
    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        linear(x, weight: weight.value, bias: bias?.value)
    }
}

/// An activation function for hidden layers.
public enum Activation: String, Sendable, CaseIterable, Codable {
    case relu, tanh, elu, leakyRelu, sigmoid, softplus

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .tanh: x.tanh()
        case .elu: x.elu()
        case .leakyRelu: x.leakyRelu()
        case .sigmoid: x.sigmoid()
        case .softplus: x.softplus()
        }
    }
}

extension Activation {
    /// Applies the activation to `count` contiguous values in place (nothing recorded); ReLU runs
    /// in SIMD lanes, the others through their tensor kernels.
    @inlinable
    public func apply<T: TensorScalar>(inPlace x: UnsafeMutablePointer<T>, count: Int) {
        if self == .relu {
            rectify(x, count: count)
            return
        }
        let values = self(Tensor(shape: [count], scalars: Array(UnsafeBufferPointer(start: x, count: count))))
        values.withUnsafeBufferPointer(as: T.self) { x.update(from: $0.baseAddress!, count: count) }
    }
}

/// A multilayer perceptron: dense layers with an activation between them (none after the last).
public final class MLP {
    public let layers: [Linear]
    public let activation: Activation

    /// - Parameters:
    ///   - sizes: input size, hidden sizes…, output size (at least two entries).
    ///   - activation: applied after every layer but the last.
    ///   - dtype: the parameters' element type.
    ///   - generator: draws the initial weights.
    public init(_ sizes: [Int], activation: Activation = .relu, dtype: DType = .float32, generator: inout RandomGenerator) {
        precondition(sizes.count >= 2, "MLP needs at least an input and an output size, got \(sizes)")
        var layers: [Linear] = []
        for (a, b) in zip(sizes, sizes.dropFirst()) {
            layers.append(Linear(a, b, dtype: dtype, generator: &generator))
        }
        self.layers = layers
        self.activation = activation
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = linear(h, weight: layer.weight.value, mask: nil, bias: layer.bias?.value, blocks: nil,
                       activation: i < layers.count - 1 ? activation : nil)
        }
        return h
    }
}
