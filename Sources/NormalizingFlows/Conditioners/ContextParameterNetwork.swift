/// The context network of a conditional layer whose parameters are not produced by an
/// autoregressive or coupling conditioner (``Planar``, ``Radial``, ``Householder``,
/// ``Sylvester``): a dense network (a hypernetwork, Ha, Dai & Le 2016) maps the context c to a
/// shift of the layer's own free parameters,
///
///   θ(c) = θ + g(c),
///
/// so one layer becomes a family of layers indexed by the context, as in Pyro's
/// `ConditionalPlanar`, `ConditionalRadial` and `ConditionalHouseholder`. The network's last
/// layer starts at zero, so a new conditional layer is the unconditional one for every context
/// and training starts from the same map. Constraints (invertibility conditions, positivity)
/// apply to θ(c) exactly as to θ, so every context gives a valid bijection.
///
/// A context is one row [C], shared by every event, or one row per event: [..., C] with the
/// events' leading shape.
final class ContextParameterNetwork: Module {
    /// g: the context [..., C] to the shifts of all parameters, flattened and concatenated.
    let network: MLP
    /// Each shifted parameter's shape, in the order of the network's outputs.
    private let shapes: [[Int]]
    private var contextSize: Int { network.layers[0].inputFeatures }

    /// - Parameters:
    ///   - contextSize: C ≥ 1.
    ///   - shapes: the shapes of the parameters the context shifts, in order.
    ///   - shape: the network's hidden sizes and activation (a perceptron).
    ///   - dtype: the weights' dtype.
    ///   - generator: draws the hidden layers' initial weights.
    init(contextSize: Int, shifting shapes: [[Int]], shape: CouplingNetwork, dtype: DType, generator: inout RandomGenerator) throws {
        guard shape.residualBlocks == 0 else {
            throw FlowError.invalidConfiguration("a layer's context network is a perceptron (residualBlocks 0), got \(shape.residualBlocks) residual blocks")
        }
        self.shapes = shapes
        let outputs = shapes.reduce(0) { $0 + $1.reduce(1, *) }
        network = try shape.makePerceptron(inputs: contextSize, outputs: outputs, outputBias: [0], dtype: dtype, generator: &generator)
    }

    /// The parameters shifted for `context`: each `leading + shape`, where `leading` is [] for a
    /// one-row context [C] and the events' leading shape otherwise.
    ///
    /// - Parameters:
    ///   - parameters: the free parameters, of the shapes given at init.
    ///   - context: [C], or [..., C] whose leading shape broadcasts to `eventsLeading`.
    ///   - eventsLeading: the leading shape of the events the layer is applied to.
    /// - Throws: ``FlowError/shapeMismatch(_:)`` for a missing context or one of another shape.
    func shifted(_ parameters: [Tensor], context: Tensor?, eventsLeading: [Int]) throws -> [Tensor] {
        guard let context else {
            throw FlowError.shapeMismatch("this layer is conditional: pass a context of size \(contextSize)")
        }
        let contextLeading = Array(context.shape.dropLast())
        // A context's leading shape must stretch to the events' ([1, C] for N events, say).
        let stretches = contextLeading.count <= eventsLeading.count
            && zip(contextLeading.reversed(), eventsLeading.reversed()).allSatisfy { $0 == $1 || $0 == 1 }
        guard context.shape.last == contextSize, stretches else {
            throw FlowError.shapeMismatch(
                "this layer needs a context [\(contextSize)] or \(eventsLeading + [contextSize]), got \(context.shape)")
        }
        // One row serves every event as it is; other contexts are stretched to one row per event.
        let leading = contextLeading.isEmpty ? [] : eventsLeading
        let output = contextLeading.isEmpty ? network(context) : network(context).broadcast(to: leading + [network.layers.last!.outputFeatures])
        var start = 0
        return zip(parameters, shapes).map { parameter, shape in
            let count = shape.reduce(1, *)
            defer { start += count }
            return parameter + output.slice(alongAxis: leading.count, start..<(start + count)).reshaped(to: leading + shape)
        }
    }
}

extension Optional where Wrapped == ContextParameterNetwork {
    /// The parameters a layer uses for `context`: its own (`own`) when it has no context network
    /// (`nil`), else shifted by the network.
    ///
    /// - Throws: ``FlowError/shapeMismatch(_:)`` for a context given to a layer made without
    ///   one, or a context of the wrong shape.
    func shifting(_ own: [Tensor], for context: Tensor?, eventsLeading: [Int]) throws -> [Tensor] {
        guard let network = self else {
            if context != nil { throw FlowError.shapeMismatch("a context was given, but this layer was made without one") }
            return own
        }
        return try network.shifted(own, context: context, eventsLeading: eventsLeading)
    }
}

extension CouplingNetwork {
    /// The context network of a conditional planar, radial, Householder or Sylvester layer on
    /// events of `size` values when the plan names none: two hidden layers of 10·size units, as
    /// Pyro's conditional flows use.
    static func contextNetworkDefault(eventSize size: Int) -> CouplingNetwork {
        CouplingNetwork(hiddenSizes: [10 * size, 10 * size])
    }
}
