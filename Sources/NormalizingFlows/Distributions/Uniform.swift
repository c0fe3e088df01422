import Foundation

/// The uniform distribution on the box [low, high) elementwise; log p(x) = −Σ log(high − low)
/// inside and −∞ outside.
public struct Uniform: Distribution {
    public let low: Tensor
    public let high: Tensor
    let layout: ParameterLayout

    public init(low: Tensor, high: Tensor, eventRank: Int? = nil) {
        precondition(low.shape == high.shape && low.dtype == high.dtype, "Uniform: low and high must have one shape and dtype")
        precondition(zip(low.doubles, high.doubles).allSatisfy { $0 < $1 && $0.isFinite && $1.isFinite },
            "Uniform: every low must be below its high, both finite")
        self.low = low
        self.high = high
        layout = ParameterLayout(low.shape, eventRank: eventRank, "Uniform")
    }

    /// The number of trailing dimensions of `low` that form one event.
    public var eventRank: Int { layout.eventRank }
    public var eventShape: [Int] { layout.eventShape }
    public var batchShape: [Int] { layout.batchShape }
    public var dtype: DType { low.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        let u = Tensor.uniform(try layout.sampleShape(n), generator: &generator, dtype: dtype)
        return low + (high - low) * u
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let inside = x.isGreaterOrEqual(to: low) * x.isLess(than: high)
        let logDensity = (high - low).log().negated().broadcast(to: x.shape)
        let elementwise = `where`(inside, logDensity, Tensor.full(x.shape, -.infinity, dtype: dtype))
        return layout.sumOverEvent(elementwise)
    }
}
