/// Something that updates parameters from their accumulated gradients.
///
/// ```swift
/// let optimizer = Adam(model.parameters, learningRate: 1e-3)
/// for batch in batches {
///     let loss = model.loss(batch)
///     optimizer.step(minimizing: loss)     // zero gradients, backward, update
/// }
/// ```
public protocol Optimizer: AnyObject {
    /// The parameters this optimizer updates.
    var parameters: [Parameter] { get }
    /// The step size; a ``LearningRateSchedule`` may set it before each step.
    var learningRate: Double { get set }
    /// Applies one update using the gradients currently accumulated in ``parameters``.
    /// Parameters without a gradient are left alone.
    func step()
}

extension Optimizer {
    /// Forgets every parameter's accumulated gradient.
    public func zeroGrad() {
        for p in parameters { p.zeroGrad() }
    }

    /// Zeroes the gradients, back-propagates `loss`, applies one update and releases the
    /// gradients.
    ///
    /// Releasing them keeps a parameter-sized buffer per parameter out of the next forward
    /// pass, which is when memory peaks (the loss argument is evaluated before this call runs).
    /// To inspect gradients, call ``zeroGrad()``, `loss.backward()` and ``step()`` yourself.
    /// - Returns: the value of `loss`.
    @discardableResult
    public func step(minimizing loss: Tensor) -> Double {
        zeroGrad()
        loss.backward()
        step()
        zeroGrad()
        return loss.item
    }
}

/// Runs `body` with a parameter's value, gradient and per-parameter state buffers as raw
/// pointers of its element type, updating the value in place.
func updateInPlace(
    _ parameter: Parameter, state: inout [Tensor],
    float: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, [UnsafeMutablePointer<Float>], Int) -> Void,
    double: (UnsafeMutablePointer<Double>, UnsafePointer<Double>, [UnsafeMutablePointer<Double>], Int) -> Void
) {
    guard let grad = parameter.grad else { return }
    precondition(grad.dtype == parameter.dtype, "gradient dtype \(grad.dtype) differs from parameter '\(parameter.name)' dtype \(parameter.dtype)")
    if state.first.map({ $0.dtype != parameter.dtype || $0.shape != parameter.shape }) ?? false {
        state = state.map { _ in Tensor.zeros(parameter.shape, dtype: parameter.dtype) }
    }
    for i in state.indices where !isKnownUniquelyReferenced(&state[i].storage) {
        state[i] = Tensor(storage: state[i].storage.copy(), shape: state[i].shape)
    }
    let n = parameter.count
    parameter.update { value in
        withExtendedLifetime((grad, state)) {
            switch value.dtype {
            case .float32:
                value.withUnsafeMutableBufferPointer(as: Float.self) { p in
                    float(p.baseAddress!, grad.pointer(Float.self), state.map { $0.pointer(Float.self) }, n)
                }
            case .float64:
                value.withUnsafeMutableBufferPointer(as: Double.self) { p in
                    double(p.baseAddress!, grad.pointer(Double.self), state.map { $0.pointer(Double.self) }, n)
                }
            }
        }
    }
}
