import Foundation

/// The uniform distribution on the box [low, high) elementwise; log p(x) = −Σ log(high − low)
/// inside and −∞ outside.
///
/// As a flow's base it is a module with the buffers `low` and `high` (PyTorch's names, stored as
/// `base.low` and `base.high`, not trained); the model file's `base` metadata holds the
/// `eventRank`.
public final class Uniform: SerializableBase {
    private let lowBuffer: Buffer, highBuffer: Buffer
    let layout: ParameterLayout

    /// The uniform distribution on the box [low, high), elementwise.
    ///
    /// - Parameters:
    ///   - low: the lower ends; `high` must be larger everywhere.
    ///   - high: the upper ends, of `low`'s shape.
    ///   - eventRank: how many trailing dimensions form one event (default: all of them).
    public init(low: Tensor, high: Tensor, eventRank: Int? = nil) {
        precondition(low.shape == high.shape && low.dtype == high.dtype, "Uniform: low and high must have one shape and dtype")
        precondition(Self.isValidBox(low: low, high: high), "Uniform: every low must be below its high, both finite, with a finite width")
        lowBuffer = Buffer(low)
        highBuffer = Buffer(high)
        layout = ParameterLayout(low.shape, eventRank: eventRank, "Uniform")
    }

    /// Whether low < high elementwise with both ends and the width high − low finite in their dtype.
    private static func isValidBox(low: Tensor, high: Tensor) -> Bool {
        zip(low.doubles, high.doubles).allSatisfy { $0 < $1 && $0.isFinite && $1.isFinite } && (high - low).isFinite
    }

    /// The uniform distribution on the torus [−π, π)ᴰ, density (2π)⁻ᴰ: the base of ``NCSF``
    /// (zuko's is the box [−π − 10⁻⁵, π + 10⁻⁵]ᴰ). In float32 the ends are ±π rounded to the
    /// nearest float32, just outside ±π, as ``Domain/circle`` accepts.
    /// - Parameters:
    ///   - dimension: D, the number of angles per event.
    ///   - dtype: the dtype of the ends.
    public static func circle(_ dimension: Int, dtype: DType = .float32) -> Uniform {
        Uniform(low: .full([dimension], -.pi, dtype: dtype), high: .full([dimension], .pi, dtype: dtype), eventRank: 1)
    }

    /// The lower corner of the box, of the distribution's batch and event shape.
    public var low: Tensor { lowBuffer.value }
    /// The upper corner of the box, above ``low`` everywhere.
    public var high: Tensor { highBuffer.value }

    /// The buffers `low` and `high`, under PyTorch's names (stored as `base.low`, `base.high`).
    public var members: [(name: String, member: ModuleMember)] { [("low", .buffer(lowBuffer)), ("high", .buffer(highBuffer))] }

    /// Checks the box a model file loaded: low below high everywhere, both finite, with a finite
    /// width, so that log-densities and samples stay finite.
    ///
    /// - Throws: ``FlowError/stateMismatch(_:)`` when a loaded low is not below its high, or an
    ///   end or the width is not finite.
    public func buffersDidLoad() throws {
        guard Self.isValidBox(low: low, high: high) else {
            throw FlowError.stateMismatch("the uniform base's low must lie below its high, both finite with a finite width")
        }
    }

    /// "Uniform", the name in a model file's `base` metadata.
    public static var typeName: String { "Uniform" }
    public var fileSettings: [String: Any] { ["eventRank": eventRank] }

    /// The unit box of the shape and dtype of the file's `base.low`, for its values to be loaded.
    public convenience init(fileSettings settings: BaseSettings) throws {
        let (low, eventRank) = try settings.shapeTensorAndEventRank("low")
        self.init(low: .zeros(low.shape, dtype: low.dtype), high: .ones(low.shape, dtype: low.dtype), eventRank: eventRank)
    }

    /// The number of trailing dimensions of `low` that form one event.
    public var eventRank: Int { layout.eventRank }
    public var eventShape: [Int] { layout.eventShape }
    public var batchShape: [Int] { layout.batchShape }
    public var dtype: DType { low.dtype }

    /// `n` draws low + (high − low)·U, U ~ U[0, 1) elementwise; the context is ignored.
    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        let u = Tensor.uniform(try layout.sampleShape(n), generator: &generator, dtype: dtype)
        return low + (high - low) * u
    }

    /// −Σ log(high − low) over the event for points inside the box, −∞ outside.
    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let inside = x.isGreaterOrEqual(to: low) * x.isLess(than: high)
        let logDensity = (high - low).log().negated().broadcast(to: x.shape)
        let elementwise = `where`(inside, logDensity, Tensor.full(x.shape, -.infinity, dtype: dtype))
        return layout.sumOverEvent(elementwise)
    }
}
