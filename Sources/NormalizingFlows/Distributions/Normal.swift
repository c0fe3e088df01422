import Foundation

/// The normal distribution with diagonal covariance: independent N(μᵢ, σᵢ²) per element.
///
/// log p(x) = Σ over the event of −½((x − μ)/σ)² − log σ − ½ log 2π.
///
/// `loc` and `scale` share one shape; its last `eventRank` dimensions form the event and the
/// rest are batch dimensions (by default every dimension is part of the event).
///
/// As a flow's base it is a module of the flow's tree, μ and σ its buffers `loc` and `scale`
/// (PyTorch's names), so a model file stores them as `base.loc` and `base.scale`.
///
/// ```swift
/// let base = Normal(loc: .zeros([2]), scale: .ones([2]))          // event shape [2]
/// let batched = Normal(loc: .zeros([4, 3]), scale: .ones([4, 3]), eventRank: 1)  // batch [4], event [3]
/// ```
public final class Normal: SerializableBase {
    private let locBuffer: Buffer, scaleBuffer: Buffer
    let layout: ParameterLayout

    /// A normal distribution N(μ, σ²) per element, independent across elements.
    /// - Parameters:
    ///   - loc: μ; its last `eventRank` dimensions form the event.
    ///   - scale: σ, positive and finite, of the shape and dtype of `loc`.
    ///   - eventRank: how many trailing dimensions of `loc` form one event (all of them by default).
    public init(loc: Tensor, scale: Tensor, eventRank: Int? = nil) {
        precondition(loc.shape == scale.shape && loc.dtype == scale.dtype,
            "Normal: loc \(loc.shape) \(loc.dtype) and scale \(scale.shape) \(scale.dtype) must match")
        precondition(scale.doubles.allSatisfy { $0 > 0 && $0.isFinite }, "Normal: every scale must be positive and finite")
        locBuffer = Buffer(loc)
        scaleBuffer = Buffer(scale)
        layout = ParameterLayout(loc.shape, eventRank: eventRank, "Normal")
    }

    /// μ, of the distribution's batch and event shape.
    public var loc: Tensor { locBuffer.value }
    /// σ > 0, of the shape of ``loc``.
    public var scale: Tensor { scaleBuffer.value }

    /// The buffers under PyTorch's names, which the stored properties' names are not.
    public var members: [(name: String, member: ModuleMember)] { [("loc", .buffer(locBuffer)), ("scale", .buffer(scaleBuffer))] }

    /// Checks the values a model file loaded into `loc` and `scale`, which bypass the
    /// initializer's checks.
    ///
    /// - Throws: ``FlowError/stateMismatch(_:)`` when the loaded μ is not finite or a σ is not
    ///   positive and finite.
    public func buffersDidLoad() throws {
        guard loc.isFinite else { throw FlowError.stateMismatch("the normal base's loc must be finite") }
        guard scale.doubles.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw FlowError.stateMismatch("the normal base's scale must be positive and finite")
        }
    }

    public static var typeName: String { "Normal" }
    public var fileSettings: [String: Any] { ["eventRank": eventRank] }

    /// A standard normal of the shape and dtype of the file's `base.loc`, for its values to be loaded.
    public convenience init(fileSettings settings: BaseSettings) throws {
        let (loc, eventRank) = try settings.shapeTensorAndEventRank("loc")
        self.init(loc: .zeros(loc.shape, dtype: loc.dtype), scale: .ones(loc.shape, dtype: loc.dtype), eventRank: eventRank)
    }

    /// N(0, I) over events of `shape`.
    public static func standard(_ shape: [Int], dtype: DType = .float32) -> Normal {
        Normal(loc: .zeros(shape, dtype: dtype), scale: .ones(shape, dtype: dtype))
    }

    /// The number of trailing dimensions of `loc` that form one event.
    public var eventRank: Int { layout.eventRank }
    public var eventShape: [Int] { layout.eventShape }
    public var batchShape: [Int] { layout.batchShape }
    public var dtype: DType { loc.dtype }

    public func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor {
        var noise = Tensor.randn(try layout.sampleShape(n), generator: &generator, dtype: dtype)
        guard hasOnePassKernels else { return loc + scale * noise }
        // μ + σ·ε in place, one pass.
        switch dtype {
        case .float32: shift(&noise, Float.self)
        case .float64: shift(&noise, Double.self)
        }
        return noise
    }

    /// Whether sampling and scoring run as one pass each: constant μ and σ (nothing recorded
    /// through them) and at least one element per event (an empty event takes the composed
    /// forms, which score it 0).
    private var hasOnePassKernels: Bool { loc.count > 0 && !Tensor.recordsOperation(on: [loc, scale]) }

    private func shift<T: TensorScalar>(_ noise: inout Tensor, _: T.Type) {
        loc.withUnsafeBufferPointer(as: T.self) { mu in
        scale.withUnsafeBufferPointer(as: T.self) { sigma in
        noise.withUnsafeMutableBufferPointer(as: T.self) { e in
            let period = mu.count
            for start in stride(from: 0, to: e.count, by: period) {
                for j in 0..<period { e[start + j] = mu[j] + sigma[j] * e[start + j] }
            }
        }}}
    }

    public func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor {
        _ = try checkInput(x)
        if hasOnePassKernels {
            switch dtype {
            case .float32: return fusedLogProb(x, Float.self)
            case .float64: return fusedLogProb(x, Double.self)
            }
        }
        let z = (x - loc) / scale
        let elementwise = z.square() * -0.5 - scale.log() - 0.5 * Foundation.log(2 * Double.pi)
        return layout.sumOverEvent(elementwise)
    }

    /// log p(x) in one pass and its gradient −g·(x − μ)/σ² in one more, for constant μ and σ
    /// (the composed form above records six operations).
    private func fusedLogProb<T: TensorScalar>(_ x: Tensor, _: T.Type) -> Tensor {
        let period = loc.count, event = eventShape.reduce(1, *)
        let sigmas = scale.doubles
        let inverseScale = sigmas.map { T(1 / $0) }
        // Σ over one event of −log σ − ½ log 2π, for each of the period's events.
        let logScales = sigmas.map { Foundation.log($0) + 0.5 * Foundation.log(2 * Double.pi) }
        let constants = stride(from: 0, to: period, by: event).map { start in
            T(-logScales[start..<(start + event)].reduce(0, +))
        }
        let mu = loc.detached()
        let output = Tensor(shape: Array(x.shape.dropLast(eventRank)), as: T.self) { out in
            x.withUnsafeBufferPointer(as: T.self) { x in
            mu.withUnsafeBufferPointer(as: T.self) { mu in
                for o in 0..<out.count {
                    let start = o * event, offset = start % period
                    var sum: T = 0
                    for j in 0..<event {
                        let z = (x[start + j] - mu[offset + j]) * inverseScale[offset + j]
                        sum += z * z
                    }
                    out[o] = constants[offset / event] - sum / 2
                }
            }}
        }
        return Tensor.recordOperation("normalLogProb", output: output, inputs: [x]) { g, _ in
            [Tensor(shape: x.shape, as: T.self) { gx in
                x.withUnsafeBufferPointer(as: T.self) { x in
                mu.withUnsafeBufferPointer(as: T.self) { mu in
                g.withUnsafeBufferPointer(as: T.self) { g in
                    for e in 0..<gx.count {
                        let j = e % period, r = inverseScale[j]
                        gx[e] = -g[e / event] * (x[e] - mu[j]) * r * r
                    }
                }}}
            }]
        }
    }
}
