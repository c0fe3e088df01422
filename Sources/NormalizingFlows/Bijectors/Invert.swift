/// The inverse of a bijector: forward and inverse swap, and so do domain and codomain.
///
/// `Invert(AffineAutoregressive())` is a MAF layer: density evaluation (its inverse) takes one
/// network pass, sampling takes D.
public struct Invert: BijectorPlan {
    public var inner: any BijectorPlan

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
    var namedParameters: [(name: String, parameter: Parameter)] { inner.namedParameters }
    var namedBuffers: [(name: String, value: Tensor)] { inner.namedBuffers }
    var rowsAreIndependent: Bool { inner.rowsAreIndependent }
    func loadBuffer(named name: String, _ value: Tensor) throws { try inner.loadBuffer(named: name, value) }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        let (y, d) = try inner.inverse(x, context: context)
        return (y, d)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        let (x, d) = try inner.forward(y, context: context)
        return (x, d)
    }
}
