import RealModule

/// A dense layer y = x·Wᵀ + b with W of shape [out, in] (PyTorch's `nn.Linear` layout).
///
/// Weights and bias start uniform on ±1/√in, PyTorch's default, unless given.
public final class Linear: Module {
    /// The weight W, shape [out, in] (PyTorch's layout, so `state_dict` tensors exchange unchanged).
    public let weight: Parameter
    /// The bias b, shape [out], or `nil` for a layer made with `bias: false`.
    public let bias: Parameter?

    /// A layer with weights and bias drawn uniformly on ±1/√in.
    ///
    /// ```swift
    /// var generator = RandomGenerator(seed: 0)
    /// let layer = Linear(3, 2, generator: &generator)
    /// let y = layer(Tensor.ones([5, 3]))      // shape [5, 2]
    /// ```
    /// - Parameters:
    ///   - inputFeatures: `in`, the size of the inputs' last dimension.
    ///   - outputFeatures: `out`, the size of the outputs' last dimension.
    ///   - bias: whether the layer adds a learnable bias.
    ///   - dtype: the parameters' element type; inputs must have it too.
    ///   - generator: draws the initial values.
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

    /// A layer with the given weight [out, in] and optional bias [out].
    /// - Parameters:
    ///   - weight: W, shape [out, in] (as PyTorch stores it).
    ///   - bias: b, shape [out] in W's dtype, or `nil` for none.
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2 && bias.map { $0.shape == [weight.shape[0]] && $0.dtype == weight.dtype } ?? true,
            "Linear needs a weight [out, in] and a bias [out] of its dtype, got \(weight.shape) and \(bias?.shape ?? [])")
        self.weight = Parameter(weight, name: "weight")
        self.bias = bias.map { Parameter($0, name: "bias") }
    }

    /// The size of the last input dimension, `in`.
    public var inputFeatures: Int { weight.shape[1] }
    /// The size of the last output dimension, `out`.
    public var outputFeatures: Int { weight.shape[0] }

    /// The layer, followed by `activation` when given (ReLU fused into the product, see
    /// the package `linear` with a mask and an activation).
    /// - Parameters:
    ///   - x: inputs of shape [..., in].
    ///   - activation: applied to the result, or `nil` for none.
    /// - Returns: shape [..., out].
    public func callAsFunction(_ x: Tensor, activation: Activation? = nil) -> Tensor {
        linear(x, weight: weight.value, bias: bias?.value, activation: activation)
    }
}

/// An activation function for hidden layers.
public enum Activation: String, Sendable, CaseIterable, Codable {
    /// max(x, 0).
    case relu
    /// The hyperbolic tangent, ``Tensor/tanh()``.
    case tanh
    /// x for x > 0, eˣ − 1 otherwise (``Tensor/elu(alpha:)`` with α = 1).
    case elu
    /// x for x > 0, 0.01·x otherwise (``Tensor/leakyRelu(negativeSlope:)``).
    case leakyRelu
    /// σ(x) = 1 / (1 + e⁻ˣ).
    case sigmoid
    /// log(1 + eˣ), a smooth ReLU.
    case softplus

    /// The activation applied to every element of `x`.
    /// - Parameter x: any tensor.
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
    /// Applies the activation in place (nothing recorded) to a `rows` × `columns` block whose rows
    /// start `stride` elements apart; ReLU runs in SIMD lanes on each row, the others through
    /// their tensor kernels on a contiguous copy, so every path computes the same function.
    @inlinable
    package func apply<T: TensorScalar>(inPlace x: UnsafeMutablePointer<T>, rows: Int, columns: Int, stride: Int) {
        guard rows > 0, columns > 0 else { return }
        if self == .relu {
            if stride == columns { rectify(x, count: rows * columns); return }
            for r in 0..<rows { rectify(x + r * stride, count: columns) }
            return
        }
        var block = [T](); block.reserveCapacity(rows * columns)
        for r in 0..<rows { block.append(contentsOf: UnsafeBufferPointer(start: x + r * stride, count: columns)) }
        let values = self(Tensor(shape: [rows, columns], scalars: block))
        values.withUnsafeBufferPointer(as: T.self) { v in
            for r in 0..<rows { (x + r * stride).update(from: v.baseAddress! + r * columns, count: columns) }
        }
    }

    /// g ← g·f′ in place for `count` elements, from the activation's outputs y = f(x), for
    /// hand-written backward passes that keep a layer's outputs but not its inputs. Every
    /// activation's derivative is a function of its output: ReLU 1 where y > 0 (NaN gives 0),
    /// tanh 1 − y², ELU (α = 1) 1 where y > 0 and y + 1 elsewhere, leaky ReLU 1 where y > 0 and
    /// its slope 0.01 elsewhere, sigmoid y(1 − y), softplus σ(x) = 1 − e⁻ʸ.
    package func multiplyByDerivative<T: TensorScalar>(_ g: UnsafeMutablePointer<T>, output y: UnsafePointer<T>, count: Int) {
        switch self {
        case .relu: keepPositive(g, where: y, into: g, count: count)
        case .tanh: for i in 0..<count { g[i] *= 1 - y[i] * y[i] }
        case .elu: for i in 0..<count where !(y[i] > 0) { g[i] *= y[i] + 1 }
        case .leakyRelu: for i in 0..<count where !(y[i] > 0) { g[i] *= T(0.01) }
        case .sigmoid: for i in 0..<count { g[i] *= y[i] * (1 - y[i]) }
        case .softplus: for i in 0..<count { g[i] *= T(-Double.expMinusOne(-Double(y[i]))) }
        }
    }
}

/// A multilayer perceptron: dense layers with an activation between them (none after the last).
public final class MLP: Module {
    /// The dense layers, input first; their parameters are named `layers.0.weight`, `layers.0.bias`, ….
    public let layers: [Linear]
    /// The activation applied after every layer but the last.
    public let activation: Activation

    /// A network of `sizes.count − 1` dense layers, each initialised like ``Linear``'s default.
    ///
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

    /// The network applied to `x`: every layer, with the activation between them.
    /// - Parameter x: inputs of shape [..., sizes.first].
    /// - Returns: shape [..., sizes.last].
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = layer(h, activation: i < layers.count - 1 ? activation : nil)
        }
        return h
    }
}
