import Foundation

/// A normal distribution with diagonal covariance whose mean and scale are trained: independent
/// N(μᵢ, σᵢ²) per element with σ = exp(log σ), μ and log σ `Parameter`s, so ``fit(_:data:context:validation:validationContext:optimizer:options:progress:)``
/// and every optimizer step on ``Flow/parameters`` update them with the bijector's.
///
/// log p(x) = Σ over the event of −½((x − μ)/σ)² − log σ − ½ log 2π.
/// Samples are μ + σ·ε with ε ~ N(0, I), differentiable in μ and log σ.
///
/// A type of its own rather than a `trainable:` flag on ``Normal``: ``Normal`` keeps PyTorch's
/// fixed buffers `loc` and `scale` (what `torch.distributions.Normal` and zuko's `DiagNormal`
/// hold, and what older model files store) and scores constant parameters in one fused pass;
/// a trained base holds parameters instead, and in log σ, unconstrained, so that no optimizer
/// step can make σ negative (nflows' `DiagonalNormal` does the same). Its model files store
/// `base.loc` and `base.log_scale`, and its type differs in the file's metadata.
///
/// ```swift
/// let flow = try Flow(base: DiagonalNormal.standard([2]), plan: MAF(layers: 3))
/// try fit(flow, data: data)        // trains the base's μ and log σ with the MAF
/// ```
public final class DiagonalNormal: SerializableBase {
    /// μ, of the distribution's batch and event shape.
    public let loc: Parameter
    /// log σ, of the shape of ``loc``.
    public let logScale: Parameter
    let layout: ParameterLayout

    /// A normal distribution with trainable μ and log σ per element, independent across elements.
    ///
    /// - Parameters:
    ///   - loc: μ; its last `eventRank` dimensions form the event (all of them by default).
    ///   - logScale: log σ, finite, of the shape and dtype of `loc`.
    ///   - eventRank: how many trailing dimensions of `loc` form one event (all of them by default).
    public init(loc: Tensor, logScale: Tensor, eventRank: Int? = nil) {
        precondition(loc.shape == logScale.shape && loc.dtype == logScale.dtype,
            "DiagonalNormal: loc \(loc.shape) \(loc.dtype) and logScale \(logScale.shape) \(logScale.dtype) must match")
        precondition(loc.isFinite && logScale.isFinite, "DiagonalNormal: loc and logScale must be finite")
        self.loc = Parameter(loc, name: "loc")
        self.logScale = Parameter(logScale, name: "log_scale")
        layout = ParameterLayout(loc.shape, eventRank: eventRank, "DiagonalNormal")
    }

    /// N(0, I) over events of `shape`, to be trained.
    public static func standard(_ shape: [Int], dtype: DType = .float32) -> DiagonalNormal {
        DiagonalNormal(loc: .zeros(shape, dtype: dtype), logScale: .zeros(shape, dtype: dtype))
    }

    public static var typeName: String { "DiagonalNormal" }
    public var fileSettings: [String: Any] { ["eventRank": eventRank] }

    /// A standard normal of the shape and dtype of the file's `base.loc`, for its values to be
    /// loaded. The file's log σ must keep σ and 1/σ finite in the dtype (|log σ| below
    /// log of its largest value, 88.7 for Float32).
    public convenience init(fileSettings settings: BaseSettings) throws {
        let (loc, eventRank) = try settings.shapeTensorAndEventRank("loc")
        _ = try settings.logScale("log_scale")
        self.init(loc: .zeros(loc.shape, dtype: loc.dtype), logScale: .zeros(loc.shape, dtype: loc.dtype), eventRank: eventRank)
    }

    /// The number of trailing dimensions of `loc` that form one event.
    public var eventRank: Int { layout.eventRank }
    public var eventShape: [Int] { layout.eventShape }
    public var batchShape: [Int] { layout.batchShape }
    public var dtype: DType { loc.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        let noise = Tensor.randn(try layout.sampleShape(n), generator: &generator, dtype: dtype)
        return loc.value + logScale.value.exp() * noise
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        let logSigma = logScale.value
        let z = (x - loc.value) * logSigma.negated().exp()
        let elementwise = z.square() * -0.5 - logSigma - 0.5 * Foundation.log(2 * Double.pi)
        return layout.sumOverEvent(elementwise)
    }
}
