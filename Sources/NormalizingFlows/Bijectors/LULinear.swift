/// An invertible linear map with an LU parameterisation (Kingma & Dhariwal 2018, Glow's 1×1
/// convolution; Durkan et al. 2019, `LULinear`): y = W·x + b on events flattened to vectors,
/// W = L·(U + diag(eˢ)) with L unit lower triangular and U strictly upper triangular, so
/// log |det J| = Σ s in O(D). It starts at the identity.
///
/// Cost per point: O(D²) both ways; the inverse also inverts W once per call (O(D³)).
public struct LULinear: SerializablePlan {
    /// An LU-parameterised linear plan that starts near the identity: the off-diagonal entries of
    /// L and U are drawn from N(0, (10⁻³)²), s = 0 and b = 0.
    public init() {}

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        LULinearBijector(spec: spec, generator: &generator)
    }
}

final class LULinearBijector: Bijector {
    let eventShape: [Int]
    let lower: Parameter, upper: Parameter, logDiagonal: Parameter, bias: Parameter
    private let lowerMask: Tensor, upperMask: Tensor, identity: Tensor
    private var size: Int { bias.shape[0] }

    init(spec: BijectorSpec, generator: inout RandomGenerator) {
        eventShape = spec.eventShape
        let d = spec.eventSize, dt = spec.dtype
        lower = Parameter(.randn([d, d], generator: &generator, dtype: dt) * 1e-3, name: "lower")
        upper = Parameter(.randn([d, d], generator: &generator, dtype: dt) * 1e-3, name: "upper")
        logDiagonal = Parameter(.zeros([d], dtype: dt), name: "log_diagonal")
        bias = Parameter(.zeros([d], dtype: dt), name: "bias")
        lowerMask = Tensor((0..<(d * d)).map { $0 % d < $0 / d ? 1.0 : 0.0 }, shape: [d, d], dtype: dt)
        upperMask = Tensor((0..<(d * d)).map { $0 % d > $0 / d ? 1.0 : 0.0 }, shape: [d, d], dtype: dt)
        identity = Tensor.eye(d, dtype: dt)
    }

    private func weight() -> Tensor {
        let l = lower.value * lowerMask + identity
        let u = upper.value * upperMask + identity * logDiagonal.value.exp()
        return matmul(l, u)
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        let y = linear(x.reshaped(to: leading + [size]), weight: weight(), bias: bias.value)
        return (y.reshaped(to: x.shape), logDiagonal.value.sum().broadcast(to: leading))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        let x = linear(y.reshaped(to: leading + [size]) - bias.value, weight: weight().matrixInverse(), bias: nil)
        return (x.reshaped(to: y.shape), logDiagonal.value.sum().negated().broadcast(to: leading))
    }
}
