/// The dense network of a coupling layer: it maps the conditioning part of an event (and an
/// optional context) to the parameters of the transformed part. Its last layer starts at zero
/// with the transform's identity parameters as bias, so a new coupling layer is the identity.
public struct CouplingNetwork: Sendable, Equatable, Codable {
    public var hiddenSizes: [Int]
    public var activation: Activation

    public init(hiddenSizes: [Int] = [64, 64], activation: Activation = .relu) {
        self.hiddenSizes = hiddenSizes
        self.activation = activation
    }

    func make(inputs: Int, outputs: Int, outputBias: [Double], dtype: DType, generator: inout RandomGenerator) throws -> MLP {
        guard hiddenSizes.allSatisfy({ $0 >= 1 }) else {
            throw FlowError.invalidConfiguration("coupling network hidden sizes must be positive, got \(hiddenSizes)")
        }
        let mlp = MLP([inputs] + hiddenSizes + [outputs], activation: activation, dtype: dtype, generator: &generator)
        let last = mlp.layers[mlp.layers.count - 1]
        last.weight.value = .zeros(last.weight.shape, dtype: dtype)
        last.bias?.value = Tensor((0..<outputs).map { outputBias[$0 % outputBias.count] }, dtype: dtype)
        return mlp
    }
}
