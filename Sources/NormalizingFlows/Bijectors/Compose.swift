/// Bijectors applied in sequence: forward runs them first to last, inverse last to first, and
/// the log-determinants add. Every part returns log-dets already summed over the event, so
/// autoregressive and elementwise parts mix freely (unlike FlowTorch 0.8, issue #115).
public struct Compose: BijectorPlan {
    public var parts: [any BijectorPlan]

    public init(_ parts: [any BijectorPlan]) { self.parts = parts }

    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard !parts.isEmpty else { throw FlowError.invalidConfiguration("Compose needs at least one bijector") }
        var concrete: [any Bijector] = []
        for part in parts { concrete.append(try part.makeBijector(for: spec, generator: &generator)) }
        return ComposedBijector(parts: concrete, eventShape: spec.eventShape)
    }
}

final class ComposedBijector: Bijector {
    let parts: [any Bijector]
    let eventShape: [Int]

    init(parts: [any Bijector], eventShape: [Int]) {
        self.parts = parts
        self.eventShape = eventShape
    }

    var domain: Domain { parts.first!.domain }
    var codomain: Domain { parts.last!.codomain }
    var rowsAreIndependent: Bool { parts.allSatisfy(\.rowsAreIndependent) }

    var namedParameters: [(name: String, parameter: Parameter)] {
        parts.enumerated().flatMap { i, part in part.namedParameters.map { ("\(i).\($0.name)", $0.parameter) } }
    }

    var namedBuffers: [(name: String, value: Tensor)] {
        parts.enumerated().flatMap { i, part in part.namedBuffers.map { ("\(i).\($0.name)", $0.value) } }
    }

    func loadBuffer(named name: String, _ value: Tensor) throws {
        guard let dot = name.firstIndex(of: "."), let i = Int(name[..<dot]), parts.indices.contains(i) else {
            throw FlowError.stateMismatch("no part of this composition holds a buffer named '\(name)'")
        }
        try parts[i].loadBuffer(named: String(name[name.index(after: dot)...]), value)
    }

    /// Runs of two or more consecutive planar layers go through ``PlanarStackKernel`` as one step.
    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        var y = x, total: Tensor?
        var start = 0
        while start < parts.count {
            let planar = parts[start...].prefix { $0 is PlanarBijector }.map { $0 as! PlanarBijector }
            let step: (y: Tensor, logAbsDetJacobian: Tensor)
            if planar.count >= 2, let leading = try? planar[0].leadingShape(of: y, "input"), leading.reduce(1, *) > 0 {
                step = PlanarStackKernel.forward(y, layers: planar, leadingShape: leading)
                start += planar.count
            } else {
                step = try parts[start].forward(y, context: context)
                start += 1
            }
            y = step.y
            total = total.map { $0 + step.logAbsDetJacobian } ?? step.logAbsDetJacobian
        }
        return (y, total!)
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        var (x, total) = try parts[parts.count - 1].inverse(y, context: context)
        for part in parts.dropLast().reversed() {
            let (previous, d) = try part.inverse(x, context: context)
            x = previous
            total = total + d
        }
        return (x, total)
    }
}
