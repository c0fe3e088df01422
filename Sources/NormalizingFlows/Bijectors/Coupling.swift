/// Which elements of a (flattened) event a coupling layer keeps and conditions on.
public enum CouplingMask: Sendable, Equatable, Codable {
    /// Elements with index parity `parity` (0 or 1) condition; the others are transformed.
    case alternating(parity: Int)
    /// `true` marks the conditioning elements.
    case given([Bool])

    func conditioning(_ d: Int) throws -> [Bool] {
        switch self {
        case .alternating(let parity):
            return (0..<d).map { $0 % 2 == parity % 2 }
        case .given(let mask):
            guard mask.count == d else {
                throw FlowError.invalidConfiguration("coupling mask has \(mask.count) entries for events of \(d) elements")
            }
            return mask
        }
    }
}

/// A coupling layer (Dinh, Krueger & Bengio 2015, NICE; Dinh, Sohl-Dickstein & Bengio 2017,
/// RealNVP): the elements selected by the mask pass through unchanged and, through a dense
/// network, parameterise an elementwise transform of the others:
/// y_A = x_A, y_B = f(x_B; θ(x_A, context)). The Jacobian is triangular, so
/// log |det J| = Σ_B log |f′|. Both directions take one network pass.
final class CouplingBijector: Bijector {
    let transform: any ParametricElementwiseTransform
    let conditioner: any ConditioningNetwork
    let eventShape: [Int]
    let conditioningIndices: [Int]
    let transformedIndices: [Int]
    let mergeOrder: [Int]
    let contextSize: Int

    init(transform: any ParametricElementwiseTransform, mask: CouplingMask, conditioner: CouplingNetwork,
         spec: BijectorSpec, generator: inout RandomGenerator) throws {
        try transform.validate()
        let d = spec.eventSize
        let conditioning = try mask.conditioning(d)
        conditioningIndices = (0..<d).filter { conditioning[$0] }
        transformedIndices = (0..<d).filter { !conditioning[$0] }
        guard !transformedIndices.isEmpty, !conditioningIndices.isEmpty || spec.contextSize > 0 else {
            throw FlowError.invalidConfiguration("a coupling layer needs elements on both sides of its mask (events of \(d) elements)")
        }
        var merge = [Int](repeating: 0, count: d)
        for (k, i) in (conditioningIndices + transformedIndices).enumerated() { merge[i] = k }
        mergeOrder = merge
        self.transform = transform
        self.eventShape = spec.eventShape
        self.contextSize = spec.contextSize
        self.conditioner = try conditioner.make(
            inputs: conditioningIndices.count, contextSize: spec.contextSize, outputs: transformedIndices.count * transform.parameterCount,
            outputBias: transform.identityParameters, dtype: spec.dtype, generator: &generator)
    }

    var domain: Domain { transform.domain }
    var codomain: Domain { transform.domain }

    private func apply(_ input: Tensor, context: Tensor?, inverse: Bool) throws -> (Tensor, Tensor) {
        let leading = try leadingShape(of: input, "input")
        try transform.checkDomain(input, "input of a coupling \(type(of: transform)).\(inverse ? "inverse" : "forward")")
        if contextSize == 0, context != nil { throw FlowError.shapeMismatch("a context was given, but this coupling layer takes none") }
        if contextSize > 0 {
            guard let context, context.shape.last == contextSize, broadcastable(Array(context.shape.dropLast()), leading) else {
                throw FlowError.shapeMismatch("this coupling layer needs a context of shape [..., \(contextSize)]")
            }
        }
        let flat = input.reshaped(to: leading + [eventShape.reduce(1, *)])
        let kept = flat.indexSelect(alongAxis: -1, conditioningIndices)
        let changed = flat.indexSelect(alongAxis: -1, transformedIndices)
        let parameters = conditioner(kept, context: context?.broadcast(to: leading + [contextSize])).reshaped(to: leading + [transformedIndices.count, transform.parameterCount])
        let (out, logDerivative) = try inverse
            ? reportingRows(elementsPerRow: transformedIndices.count) { try transform.inverse(changed, parameters: parameters) }
            : transform.forward(changed, parameters: parameters)
        let merged = Tensor.concatenate([kept, out], alongAxis: -1).indexSelect(alongAxis: -1, mergeOrder)
        return (merged.reshaped(to: input.shape), logDerivative.sum(alongAxis: -1))
    }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try apply(x, context: context, inverse: false)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try apply(y, context: context, inverse: true)
    }
}

/// An affine coupling layer (RealNVP): y_B = μ(x_A) + σ(x_A)·x_B with log σ from ``AffineScale``.
public struct AffineCoupling: SerializablePlan {
    /// Which elements condition the others and pass through unchanged (x_A); the rest (x_B) are transformed.
    public var mask: CouplingMask
    /// The network from x_A (and any context) to (μ, s) for each element of x_B.
    public var conditioner: CouplingNetwork
    /// How the network's raw output s becomes log σ (default ``AffineScale/default``).
    public var scale: AffineScale

    /// An affine coupling plan.
    /// - Parameters:
    ///   - mask: the conditioning elements (default: the even positions, `.alternating(parity: 0)`).
    ///   - conditioner: the network (default two hidden layers of 64 ReLU units).
    ///   - scale: how the raw output s becomes log σ (default ``AffineScale/default``).
    public init(mask: CouplingMask = .alternating(parity: 0), conditioner: CouplingNetwork = CouplingNetwork(), scale: AffineScale = .default) {
        self.mask = mask
        self.conditioner = conditioner
        self.scale = scale
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try CouplingBijector(transform: AffineTransform(scale: scale), mask: mask, conditioner: conditioner, spec: spec, generator: &generator)
    }
}

/// An additive coupling layer (NICE): y_B = x_B + t(x_A); volume preserving.
public struct AdditiveCoupling: SerializablePlan {
    /// Which elements condition the others and pass through unchanged (x_A); the rest (x_B) are shifted.
    public var mask: CouplingMask
    /// The network from x_A (and any context) to the shift t of each element of x_B.
    public var conditioner: CouplingNetwork

    /// An additive coupling plan.
    /// - Parameters:
    ///   - mask: the conditioning elements (default: the even positions, `.alternating(parity: 0)`).
    ///   - conditioner: the network (default two hidden layers of 64 ReLU units).
    public init(mask: CouplingMask = .alternating(parity: 0), conditioner: CouplingNetwork = CouplingNetwork()) {
        self.mask = mask
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try CouplingBijector(transform: ShiftTransform(), mask: mask, conditioner: conditioner, spec: spec, generator: &generator)
    }
}

/// A rational-quadratic spline coupling layer (NSF-C, Durkan et al. 2019).
public struct SplineCoupling: SerializablePlan {
    /// Which elements condition the spline of the others and pass through unchanged.
    public var mask: CouplingMask
    /// The spline's settings (bins, bound B outside which it is the identity, minimums, logit scale).
    public var transform: RationalQuadraticSplineTransform
    /// The network from the kept elements (and any context) to the spline parameters of the others.
    public var conditioner: CouplingNetwork

    /// The spline's logit scale is 1/√(the conditioner's last hidden width) (see
    /// ``RationalQuadraticSplineTransform/logitScale``). A ``RationalQuadraticSplineTransform/Boundary/circular``
    /// `boundary` (with bound π) makes it a coupling layer on the torus.
    public init(mask: CouplingMask = .alternating(parity: 0), bins: Int = 8, bound: Double = 5, conditioner: CouplingNetwork = CouplingNetwork(),
                parameterization: RationalQuadraticSplineTransform.Parameterization = .minimumSizes,
                boundary: RationalQuadraticSplineTransform.Boundary = .linearTails) {
        self.mask = mask
        self.transform = RationalQuadraticSplineTransform(
            bins: bins, bound: bound, logitScale: RationalQuadraticSplineTransform.networkLogitScale(hiddenSizes: conditioner.hiddenSizes),
            parameterization: parameterization, boundary: boundary)
        self.conditioner = conditioner
    }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        try CouplingBijector(transform: transform, mask: mask, conditioner: conditioner, spec: spec, generator: &generator)
    }
}

/// y = x + t: a shift by one parameter per element; log |∂y/∂x| = 0.
public struct ShiftTransform: ParametricElementwiseTransform {
    /// A shift transform; it has no settings.
    public init() {}
    public var parameterCount: Int { 1 }
    public var identityParameters: [Double] { [0] }

    public func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x + parameters.parameter(0), Tensor.zeros(x.shape, dtype: x.dtype))
    }

    public func inverse(_ y: Tensor, parameters: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        (y - parameters.parameter(0), Tensor.zeros(y.shape, dtype: y.dtype))
    }
}
