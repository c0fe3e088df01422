import Foundation

/// The normal distribution with diagonal covariance: independent N(μᵢ, σᵢ²) per element.
///
/// log p(x) = Σ over the event of −½((x − μ)/σ)² − log σ − ½ log 2π.
///
/// `loc` and `scale` share one shape; its last `eventRank` dimensions form the event and the
/// rest are batch dimensions (by default every dimension is part of the event).
///
/// ```swift
/// let base = Normal(loc: .zeros([2]), scale: .ones([2]))          // event shape [2]
/// let batched = Normal(loc: .zeros([4, 3]), scale: .ones([4, 3]), eventRank: 1)  // batch [4], event [3]
/// ```
public struct Normal: Distribution {
    public let loc: Tensor
    public let scale: Tensor
    public let eventRank: Int

    public init(loc: Tensor, scale: Tensor, eventRank: Int? = nil) {
        precondition(loc.shape == scale.shape && loc.dtype == scale.dtype,
            "Normal: loc \(loc.shape) \(loc.dtype) and scale \(scale.shape) \(scale.dtype) must match")
        precondition(scale.doubles.allSatisfy { $0 > 0 && $0.isFinite }, "Normal: every scale must be positive and finite")
        let rank = eventRank ?? loc.rank
        precondition(rank >= 0 && rank <= loc.rank, "Normal: eventRank \(rank) exceeds the rank of \(loc.shape)")
        self.loc = loc
        self.scale = scale
        self.eventRank = rank
    }

    /// N(0, I) over events of `shape`.
    public static func standard(_ shape: [Int], dtype: DType = .float32) -> Normal {
        Normal(loc: .zeros(shape, dtype: dtype), scale: .ones(shape, dtype: dtype))
    }

    public var eventShape: [Int] { Array(loc.shape.suffix(eventRank)) }
    public var batchShape: [Int] { Array(loc.shape.dropLast(eventRank)) }
    public var dtype: DType { loc.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        guard n >= 0 else { throw FlowError.invalidConfiguration("sample count must be non-negative, got \(n)") }
        return loc + scale * Tensor.randn([n] + loc.shape, generator: &generator, dtype: dtype)
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let z = (x - loc) / scale
        let elementwise = z.square() * -0.5 - scale.log() - 0.5 * Foundation.log(2 * Double.pi)
        return eventRank == 0 ? elementwise : elementwise.sum(alongAxes: Array((x.rank - eventRank)..<x.rank))
    }
}
