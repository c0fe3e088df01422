/// Bijectors applied in sequence: forward runs them first to last, inverse last to first, and
/// the log-determinants add. Every part returns log-dets already summed over the event, so
/// autoregressive and elementwise parts mix freely (unlike FlowTorch 0.8, issue #115).
public struct Compose: BijectorPlan {
    /// The plans in the order `forward` applies them; at least one.
    public var parts: [any BijectorPlan]

    /// Composes plans; `forward` applies `parts[0]` first.
    /// - Parameter parts: the plans, at least one (checked when the plan is made concrete).
    public init(_ parts: [any BijectorPlan]) { self.parts = parts }

    /// Makes every part concrete, then fuses what a kernel covers: runs of two or more planar
    /// layers without a context network become one `PlanarStack` step. This is the one place where a composition looks at
    /// what its parts are; evaluation runs the steps without asking.
    public func makeBijector(for spec: BijectorSpec, generator: inout RandomGenerator) throws -> any Bijector {
        guard !parts.isEmpty else { throw FlowError.invalidConfiguration("Compose needs at least one bijector") }
        var concrete: [any Bijector] = []
        for part in parts { concrete.append(try part.makeBijector(for: spec, generator: &generator)) }
        var steps: [any Bijector] = [], start = 0
        while start < concrete.count {
            let planar = concrete[start...].prefix { ($0 as? PlanarBijector).map { $0.contextNetwork == nil } ?? false }
                .compactMap { $0 as? PlanarBijector }
            if planar.count >= 2 {
                steps.append(PlanarStack(layers: planar))
                start += planar.count
            } else {
                steps.append(concrete[start])
                start += 1
            }
        }
        return ComposedBijector(parts: concrete, steps: steps, eventShape: spec.eventShape)
    }
}

/// Parts in sequence. The parts are the module's children, named by position; the steps are
/// what runs: the parts, with fused runs in place of the layers they cover.
final class ComposedBijector: Bijector {
    let parts: [any Bijector]
    private let steps: [any Bijector]
    let eventShape: [Int]

    init(parts: [any Bijector], steps: [any Bijector], eventShape: [Int]) {
        self.parts = parts
        self.steps = steps
        self.eventShape = eventShape
    }

    var members: [(name: String, member: ModuleMember)] { parts.enumerated().map { ("\($0)", .module($1)) } }
    var domain: Domain { parts.first!.domain }
    var codomain: Domain { parts.last!.codomain }
    var rowsAreIndependent: Bool { parts.allSatisfy(\.rowsAreIndependent) }

    func forward(_ x: Tensor, context: Tensor?) throws -> (y: Tensor, logAbsDetJacobian: Tensor) {
        try applyInTurn(steps, x) { try $0.forward($1, context: context) }
    }

    func inverse(_ y: Tensor, context: Tensor?) throws -> (x: Tensor, logAbsDetJacobian: Tensor) {
        try applyInTurn(steps.reversed(), y) { try $0.inverse($1, context: context) }
    }
}

/// `step` applied to `bijectors` in turn, starting from `value`, with the log-determinants added.
func applyInTurn<B>(_ bijectors: some Collection<B>, _ value: Tensor,
                    _ step: (B, Tensor) throws -> (Tensor, Tensor)) throws -> (Tensor, Tensor) {
    var (result, total) = try step(bijectors.first!, value)
    for bijector in bijectors.dropFirst() {
        let (next, d) = try step(bijector, result)
        result = next
        total = total + d
    }
    return (result, total)
}
