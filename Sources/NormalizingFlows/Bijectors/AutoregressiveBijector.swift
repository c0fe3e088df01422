/// An ``ParametricElementwiseTransform`` whose parameters for dimension i come from a MADE network fed the
/// dimensions before i: y_i = f(x_i; θ_i(x_<i)) (Kingma et al. 2016; Papamakarios et al. 2017).
///
/// The Jacobian is triangular in the network's order, so log |det J| = Σᵢ log |∂y_i/∂x_i|.
/// `forward` (noise → data) takes one network pass. `inverse` is sequential: step k fixes the
/// k-th dimension in the order. Without gradients (sampling a MAF, scoring an IAF) the steps
/// compute only the network units whose inputs became known, one network pass in all (see
/// `sequentialInverse`); with gradients they are D full passes, the first on zeros (and, without
/// context, on a single row). ``Invert`` swaps the costs (MAF versus IAF).
final class AutoregressiveBijector: Bijector {
    let transform: any ParametricElementwiseTransform
    let conditioner: MaskedAutoregressiveNetwork
    let eventShape: [Int]
    let contextSize: Int
    /// The recorded pass as one fused operation, when the plan chose one for this transform
    /// (``AffineAutoregressiveKernel``); otherwise the network and the transform are recorded as
    /// operations of their own.
    let fusedPass: AffineAutoregressiveKernel?

    init(transform: any ParametricElementwiseTransform, conditioner: MaskedAutoregressiveNetwork, spec: BijectorSpec,
         fusedPass: AffineAutoregressiveKernel?) {
        self.transform = transform
        self.conditioner = conditioner
        self.eventShape = spec.eventShape
        self.contextSize = spec.contextSize
        self.fusedPass = fusedPass
    }

    private var size: Int { eventShape.reduce(1, *) }

    var domain: Domain { transform.domain }
    var codomain: Domain { transform.domain }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: x, "input")
        try checkContext(context, leading: leading)
        try transform.checkDomain(x, "input of an autoregressive \(type(of: transform)).forward")
        if let fused = recordedFusedPass(x, context: context, leading: leading, inverse: false) { return fused }
        let flat = x.reshaped(to: leading + [size])
        let (y, d) = transform.forward(flat, parameters: conditioner(flat, context: context))
        return (y.reshaped(to: x.shape), d.sum(alongAxis: -1))
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let leading = try leadingShape(of: y, "input")
        try checkContext(context, leading: leading)
        try transform.checkDomain(y, "input of an autoregressive \(type(of: transform)).inverse")
        let flat = y.reshaped(to: leading + [size])
        if !GradientMode.isEnabled {
            let rows = leading.reduce(1, *)
            let flatContext = context.map { $0.broadcast(to: leading + [contextSize]).reshaped(to: [rows, contextSize]) }
            let (x, d) = try conditioner.sequentialInverse(flat.reshaped(to: [rows, size]), context: flatContext, transform: transform)
            return (x.reshaped(to: y.shape), d.sum(alongAxis: -1).reshaped(to: leading))
        }
        if let fused = recordedFusedPass(y, context: context, leading: leading, inverse: true) { return fused }
        // Pass 1: the input is all zeros, identical for every row.
        let firstInput = context == nil ? Tensor.zeros([1, size], dtype: y.dtype) : Tensor.zeros(flat.shape, dtype: y.dtype)
        var (x, d) = try reportingRows(elementsPerRow: size) { try transform.inverse(flat, parameters: conditioner(firstInput, context: context)) }
        for _ in 1..<size {
            (x, d) = try reportingRows(elementsPerRow: size) { try transform.inverse(flat, parameters: conditioner(x, context: context)) }
        }
        return (x.reshaped(to: y.shape), d.sum(alongAxis: -1))
    }

    /// The fused pass's result when there is one and the pass is recorded; `nil` otherwise.
    private func recordedFusedPass(_ value: Tensor, context: Tensor?, leading: [Int], inverse: Bool) -> (Tensor, Tensor)? {
        let rows = leading.reduce(1, *)
        guard let fusedPass, GradientMode.isEnabled, rows > 0 else { return nil }
        let flatContext = context.map { $0.broadcast(to: leading + [contextSize]).reshaped(to: [rows, contextSize]) }
        let (result, logDet) = fusedPass.evaluate(value.reshaped(to: [rows, size]), context: flatContext, inverse: inverse)
        return (result.reshaped(to: value.shape), logDet.reshaped(to: leading))
    }

    private func checkContext(_ context: Tensor?, leading: [Int]) throws {
        guard contextSize > 0 else {
            if context != nil {
                throw FlowError.shapeMismatch("a context was given, but this bijector was made without one (contextSize 0)")
            }
            return
        }
        guard let context else {
            throw FlowError.shapeMismatch("this bijector needs a context of size \(contextSize)")
        }
        guard context.shape.last == contextSize,
              broadcastable(Array(context.shape.dropLast()), leading) else {
            throw FlowError.shapeMismatch("context shape \(context.shape) does not fit inputs with leading shape \(leading) and context size \(contextSize)")
        }
    }
}

/// An autoregressive bijector for `transform` with a MADE `conditioner`; for a single dimension
/// without context the parameters depend on nothing, so they are free per-element parameters.
/// `fusedPass` makes the plan's fused kernel for the network, when the plan has one.
func makeAutoregressive(
    _ transform: any ParametricElementwiseTransform, conditioner: DenseAutoregressive, spec: BijectorSpec,
    generator: inout RandomGenerator, fusedPass: (MaskedAutoregressiveNetwork) -> AffineAutoregressiveKernel? = { _ in nil }
) throws -> any Bijector {
    try transform.validate()
    if spec.eventSize == 1 && spec.contextSize == 0 {
        return try ParametricElementwiseBijector(transform: transform, spec: spec, generator: &generator)
    }
    let network = try conditioner.makeNetwork(
        inputSize: spec.eventSize, contextSize: spec.contextSize, outputsPerDimension: transform.parameterCount,
        outputBias: transform.identityParameters, dtype: spec.dtype, generator: &generator)
    return AutoregressiveBijector(transform: transform, conditioner: network, spec: spec, fusedPass: fusedPass(network))
}

/// Whether `shape` broadcasts to `target` without changing `target`.
func broadcastable(_ shape: [Int], _ target: [Int]) -> Bool {
    guard shape.count <= target.count else { return false }
    return zip(shape.reversed(), target.reversed()).allSatisfy { $0 == $1 || $0 == 1 }
}
