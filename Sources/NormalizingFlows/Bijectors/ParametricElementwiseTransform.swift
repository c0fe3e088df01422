/// A monotonic map of one real number with P raw parameters per element, y = f(x; θ): the
/// operation that affine and spline bijectors share, separate from where θ comes from (free
/// tensors as in ``Affine``, a MADE network, a coupling network). Unlike an
/// ``ElementwiseFunction``, which is a fixed map and a plan by itself, it is a bijection only once
/// it is given its parameters.
public protocol ParametricElementwiseTransform: Sendable {
    /// Raw parameters per element.
    var parameterCount: Int { get }
    /// y = f(x; θ) and log |∂y/∂x| elementwise. `parameters` has shape `x.shape + [P]` or
    /// broadcasts to it.
    func forward(_ x: Tensor, parameters: Tensor) -> (y: Tensor, logAbsDerivative: Tensor)
    /// x = f⁻¹(y; θ) and log |∂x/∂y| elementwise.
    ///
    /// Transforms without a closed-form inverse solve for x iteratively (``ParametricElementwiseTransform/monotoneInverse(_:parameters:finder:)``).
    /// - Throws: ``FlowError/notConverged(row:_:)`` when an iterative inverse misses its
    ///   tolerance, with `row` the index of the element in `y` flattened (the bijector that
    ///   applies the transform reports the row of the event instead).
    func inverse(_ y: Tensor, parameters: Tensor) throws -> (x: Tensor, logAbsDerivative: Tensor)
    /// The values f accepts, and produces: ℝ by default; ``Domain/circle`` for maps of angles.
    /// The bijectors built on the transform refuse input outside it (other than ℝ) with
    /// ``FlowError/outsideDomain(_:)``.
    var domain: Domain { get }
    /// Raw parameters (P values) for which f is the identity.
    var identityParameters: [Double] { get }
    /// Throws when the settings cannot work.
    func validate() throws
}

extension ParametricElementwiseTransform {
    public func validate() throws {}
    public var domain: Domain { .real }

    /// Throws ``FlowError/outsideDomain(_:)`` when `x` has a value outside ``domain`` (ℝ is not checked).
    func checkDomain(_ x: Tensor, _ what: @autoclosure () -> String) throws {
        if domain != .real { try domain.check(x, what()) }
    }

    /// Raw parameters for `elements` elements: the identity plus N(0, scale²) noise, as
    /// FlowTorch initialises free parameters (scale 10⁻³), shape [elements, P].
    func initialParameters(elements: Int, noise scale: Double, dtype: DType, generator: inout RandomGenerator) -> Tensor {
        let identity = Tensor(identityParameters, shape: [1, parameterCount], dtype: dtype)
        let noise = Tensor.randn([elements, parameterCount], generator: &generator, dtype: dtype) * scale
        return identity + noise
    }
}

extension Tensor {
    /// Raw parameter `index` of the trailing parameter axis: shape `self.shape.dropLast()`.
    func parameter(_ index: Int) -> Tensor { select(alongAxis: -1, index: index) }
}

/// The earlier name of ``ParametricElementwiseTransform``.
@available(*, deprecated, renamed: "ParametricElementwiseTransform")
public typealias ElementwiseTransform = ParametricElementwiseTransform
