/// The inverse of a bijector: forward and inverse swap, and so do domain and codomain.
///
/// `Invert(AffineAutoregressive())` is a MAF layer: density evaluation (its inverse) takes one
/// network pass, sampling takes D.
public struct Invert: BijectorPlan {
    /// The plan whose inverse this is.
    public var inner: any BijectorPlan

    /// The inverse of a plan.
    /// - Parameter inner: the plan to invert; its forward becomes this one's inverse.
    public init(_ inner: any BijectorPlan) { self.inner = inner }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        InvertedBijector(inner: try inner.makeBijector(for: spec, generator: &generator))
    }
}

final class InvertedBijector: Bijector {
    let inner: any Bijector

    init(inner: any Bijector) { self.inner = inner }

    var eventShape: [Int] { inner.eventShape }
    var domain: Domain { inner.codomain }
    var codomain: Domain { inner.domain }
    var rowsAreIndependent: Bool { inner.rowsAreIndependent }
    /// Transparent: the inner bijector's members keep their names.
    var members: [(name: String, member: ModuleMember)] { [("", .module(inner))] }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let (y, d) = try inner.inverse(x, context: context)
        return (y, d)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let (x, d) = try inner.forward(y, context: context)
        return (x, d)
    }
}
