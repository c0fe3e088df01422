import Foundation

/// The uniform distribution on the box [low, high) elementwise; log p(x) = −Σ log(high − low)
/// inside and −∞ outside.
public struct Uniform: Distribution {
    public let low: Tensor
    public let high: Tensor
    public let eventRank: Int

    public init(low: Tensor, high: Tensor, eventRank: Int? = nil) {
        precondition(low.shape == high.shape && low.dtype == high.dtype, "Uniform: low and high must have one shape and dtype")
        precondition(zip(low.doubles, high.doubles).allSatisfy { $0 < $1 && $0.isFinite && $1.isFinite },
            "Uniform: every low must be below its high, both finite")
        let rank = eventRank ?? low.rank
        precondition(rank >= 0 && rank <= low.rank, "Uniform: eventRank \(rank) exceeds the rank of \(low.shape)")
        self.low = low
        self.high = high
        self.eventRank = rank
    }

    public var eventShape: [Int] { Array(low.shape.suffix(eventRank)) }
    public var batchShape: [Int] { Array(low.shape.dropLast(eventRank)) }
    public var dtype: DType { low.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        guard n >= 0 else { throw FlowError.invalidConfiguration("sample count must be non-negative, got \(n)") }
        let u = Tensor.uniform([n] + low.shape, generator: &generator, dtype: dtype)
        return low + (high - low) * u
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let inside = x.isGreaterOrEqual(to: low) * x.isLess(than: high)
        let logDensity = (high - low).log().negated().broadcast(to: x.shape)
        let elementwise = `where`(inside, logDensity, Tensor.full(x.shape, -.infinity, dtype: dtype))
        return eventRank == 0 ? elementwise : elementwise.sum(alongAxes: Array((x.rank - eventRank)..<x.rank))
    }
}
