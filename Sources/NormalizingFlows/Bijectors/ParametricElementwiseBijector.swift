/// An ``ParametricElementwiseTransform`` with its own free parameters per element (FlowTorch's
/// `Elementwise` with `parameters.Tensor`): shape `eventShape + [P]`, initialised at the identity
/// plus N(0, 10⁻⁶) noise. With a context, the parameters come from a linear map of the context
/// added to the free ones.
final class ParametricElementwiseBijector: Bijector {
    let transform: any ParametricElementwiseTransform
    let eventShape: [Int]
    let parameters: Parameter
    /// With a context: the linear map from the context to a shift of the parameters.
    let context: Linear?

    init(transform: any ParametricElementwiseTransform, spec: BijectorSpec, generator: inout RandomGenerator) throws {
        try transform.validate()
        self.transform = transform
        self.eventShape = spec.eventShape
        let p = transform.parameterCount
        parameters = Parameter(
            transform.initialParameters(elements: spec.eventSize, noise: 1e-3, dtype: spec.dtype, generator: &generator)
                .reshaped(to: spec.eventShape + [p]),
            name: "parameters")
        context = spec.contextSize > 0
            ? Linear(weight: .zeros([spec.eventSize * p, spec.contextSize], dtype: spec.dtype), bias: nil)
            : nil
    }

    private func currentParameters(_ context: Tensor?, leading: [Int]) throws -> Tensor {
        guard let contextWeight = self.context?.weight else {
            if context != nil { throw FlowError.shapeMismatch("a context was given, but this bijector was made without one") }
            return parameters.value
        }
        guard let context, context.shape.last == contextWeight.shape[1] else {
            throw FlowError.shapeMismatch("this bijector needs a context of size \(contextWeight.shape[1])")
        }
        let shift = linear(context, weight: contextWeight.value, bias: nil)
        return parameters.value + shift.reshaped(to: Array(context.shape.dropLast()) + eventShape + [transform.parameterCount])
    }

    var domain: Domain { transform.domain }
    var codomain: Domain { transform.domain }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        try transform.checkDomain(x, "input of \(type(of: transform)).forward")
        let (y, d) = transform.forward(x, parameters: try currentParameters(context, leading: leading))
        return (y, sumOverEvent(d))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        try transform.checkDomain(y, "input of \(type(of: transform)).inverse")
        let parameters = try currentParameters(context, leading: leading)
        let (x, d) = try reportingRows(elementsPerRow: eventShape.reduce(1, *)) { try transform.inverse(y, parameters: parameters) }
        return (x, sumOverEvent(d))
    }
}

/// A learnable elementwise affine map y = μ + σ·x with its own (μ, s) per element
/// (FlowTorch's `Affine`); log σ = ``AffineScale`` (s).
public struct Affine: BijectorPlan {
    /// How the raw log-scale s becomes log σ (default ``AffineScale/exp``: log σ = s).
    public var scale: AffineScale

    /// A learnable elementwise affine map, initialised at the identity.
    /// - Parameter scale: the log-scale map (default ``AffineScale/default``).
    public init(scale: AffineScale = .default) { self.scale = scale }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try ParametricElementwiseBijector(transform: AffineTransform(scale: scale), spec: spec, generator: &generator)
    }
}

extension Affine: SerializablePlan {}
