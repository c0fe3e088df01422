import Foundation

/// The plan of a variational dequantizer (Ho, Chen, Srinivas, Duan & Abbeel 2019, "Flow++",
/// §3.1): which elements of the event hold whole numbers, the flow that draws their noise, and
/// how the integer values are standardised before that flow sees them.
///
/// A flow p fitted to whole numbers k ∈ ℤᵈ models them through the continuous density of
/// y = k + u, u ∈ [0, 1)ᵈ: the probability of k is the mass of its unit cell,
/// P(k) = ∫ p(k + u) du over the cell u ∈ [0, 1)ᵈ. For any density q(u | k) on the cell,
///
///     log P(k) = log E over u ∼ q(·|k) of [p(k + u) / q(u | k)] ≥ E over u ∼ q(·|k) of [log p(k + u) − log q(u | k)],
///
/// by Jensen's inequality, with equality when q(u | k) = p(k + u) / P(k), p's own shape inside
/// the cell. Uniform dequantization fixes q = 1, so a smooth p pays the gap
/// E_q[log q − log p(k + u)] + log P(k) = KL(U[0,1)ᵈ ‖ p(k + ·)/P(k)) for every cell where it is not
/// flat. Variational dequantization learns q(u | k) jointly with p by maximising the bound
/// (the ELBO) over both: the gap shrinks to KL(q ‖ p(k + ·)/P(k)), and log P(k) is then estimated
/// by importance sampling with q as the proposal (Ho et al. 2019, eq. 9 – 12):
///
///     log P(k) ≈ log (1/K) Σⱼ p(k + uⱼ) / q(uⱼ | k),   uⱼ ∼ q(·|k),
///
/// an estimate whose expectation lies between the ELBO (K = 1) and log P(k), converging to
/// log P(k) as K grows (Burda, Grosse & Salakhutdinov 2016, theorem 1).
///
/// Here q(u | k) is a conditional flow: ε ∼ N(0, I_d) pushed through ``plan`` (its layers
/// see the context ((k − center)/scale, c): every element of the standardised row, and the model's
/// own context c for a conditional flow), then through a ``Sigmoid`` onto (0, 1)ᵈ:
///
///     u = σ(g(ε; k, c)),   log q(u | k, c) = log N(ε; 0, I) − log |det ∂g/∂ε| − Σᵢ log σ′(gᵢ).
///
/// Pass it to ``Flow/init(base:plan:contextSize:dequantization:seed:)``; the flow owns the
/// dequantizer's parameters (``Flow/parameters`` lists them after the model's), ``fit(_:data:context:validation:validationContext:optimizer:options:progress:)``
/// then maximises the ELBO and ``dequantizedLogProb(_:_:columns:context:samples:generator:)``
/// uses q as the proposal, and model files save and reload it.
public struct VariationalDequantization: Sendable {
    /// The elements of the event (flat, row-major indices) that hold whole numbers, ascending.
    public var columns: [Int]
    /// The flow g on ℝᵈ (d = `columns.count`), conditioned on the standardised row, whose
    /// output the sigmoid maps onto the unit cell (default ``defaultPlan``). It runs in its
    /// forward direction only (drawing u and scoring it), so an inverse autoregressive or a
    /// coupling plan is the fast choice.
    public var plan: any BijectorPlan
    /// Subtracted from each element of the event before q sees it (one value per element).
    public var center: [Double]
    /// Divides each centred element before q sees it (one positive value per element).
    public var scale: [Double]

    /// Three inverse autoregressive layers with two hidden layers of 32 units: IAF draws in one
    /// parallel pass per layer, the direction q runs in.
    public static var defaultPlan: any BijectorPlan { IAF(layers: 3, conditioner: DenseAutoregressive(hiddenSizes: [32, 32])) }

    /// A dequantizer with explicit standardisation.
    /// - Parameters:
    ///   - columns: the whole-number elements of each event (flat, row-major indices).
    ///   - plan: the flow g of q before its sigmoid (default ``defaultPlan``).
    ///   - center: one value per element of the event, subtracted before q sees the row.
    ///   - scale: one positive value per element, dividing the centred row.
    public init(columns: [Int], plan: any BijectorPlan = VariationalDequantization.defaultPlan, center: [Double], scale: [Double]) {
        self.columns = columns.sorted()
        self.plan = plan
        self.center = center
        self.scale = scale
    }

    /// A dequantizer that standardises each element by its mean and standard deviation over
    /// `data` (a constant element by 1), so that q's networks see values of order one whatever
    /// the counts' range.
    /// - Parameters:
    ///   - columns: the whole-number elements of each event (flat, row-major indices).
    ///   - data: training rows, shape [N] + event shape.
    ///   - plan: the flow g of q before its sigmoid (default ``defaultPlan``).
    public init(columns: [Int], standardizing data: Tensor, plan: any BijectorPlan = VariationalDequantization.defaultPlan) {
        let n = Swift.max(data.shape.first ?? 1, 1), values = data.doubles, event = values.count / n
        var center = [Double](repeating: 0, count: event), square = center
        for (i, value) in values.enumerated() {
            center[i % event] += value / Double(n)
            square[i % event] += value * value / Double(n)
        }
        let scale = zip(center, square).map { mean, meanSquare in
            let deviation = Foundation.sqrt(Swift.max(meanSquare - mean * mean, 0))
            return deviation > 1e-6 && deviation.isFinite ? deviation : 1
        }
        self.init(columns: columns, plan: plan, center: center, scale: scale)
    }
}

/// The module of a ``VariationalDequantization`` made concrete for a flow: q(u | k, c), a
/// conditional flow on the unit cell (see ``VariationalDequantization`` for the bound it serves).
/// Its parameters live in the owning ``Flow``'s module tree under `dequantizer.noise.`.
public final class VariationalDequantizer: Module {
    /// The plan this dequantizer was made from.
    public let settings: VariationalDequantization
    /// q as a flow on (0, 1)ᵈ: a standard normal base pushed through the plan and a sigmoid,
    /// with a context of the event's elements followed by the model's context.
    public let noise: Flow
    /// The whole-number elements of the event.
    public var columns: [Int] { settings.columns }
    /// [d, D]: row j holds 1 at `columns[j]`, placing q's d values into the D elements.
    private let _placement: Tensor
    private let _center: Tensor, _scale: Tensor
    private let _eventShape: [Int]

    /// Makes q for events of `eventShape` whose flow takes a context of `contextSize` values.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` for columns outside the event or given
    ///   twice, standardisation of another length than the event, or a plan that cannot work.
    init(_ settings: VariationalDequantization, eventShape: [Int], contextSize: Int, dtype: DType, seed: UInt64) throws {
        let event = eventShape.reduce(1, *), columns = settings.columns
        guard !columns.isEmpty, Set(columns).count == columns.count, columns.allSatisfy({ (0..<event).contains($0) }) else {
            throw FlowError.invalidConfiguration("the dequantized elements \(columns) must be distinct elements of the event of \(event) (0..<\(event))")
        }
        guard settings.center.count == event, settings.scale.count == event,
              settings.center.allSatisfy(\.isFinite), settings.scale.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw FlowError.invalidConfiguration("the dequantizer's center and scale need one finite value per element of the event (\(event)), the scale positive")
        }
        self.settings = settings
        _eventShape = eventShape
        noise = try Flow(base: Normal.standard([columns.count], dtype: dtype), plan: Compose([settings.plan, Sigmoid()]),
                         contextSize: event + contextSize, seed: seed)
        var placement = [Double](repeating: 0, count: columns.count * event)
        for (j, column) in columns.enumerated() { placement[j * event + column] = 1 }
        _placement = Tensor(placement, shape: [columns.count, event], dtype: dtype)
        _center = Tensor(settings.center, shape: [event], dtype: dtype)
        _scale = Tensor(settings.scale, shape: [event], dtype: dtype)
    }

    /// One reparameterised draw u ∼ q(· | k, c) per row: the rows with k + u in the
    /// dequantized elements (each kept inside its open cell (k, k + 1) after rounding to the
    /// dtype) and log q(u | k, c), differentiable in q's parameters.
    /// - Parameters:
    ///   - rows: whole numbers in ``columns``, shape [N] + event shape (checked by the callers).
    ///   - context: the model's context, one row per row or one shared row; `nil` for none.
    ///   - generator: the source of ε.
    public func sample(_ rows: Tensor, context: Tensor?, generator: inout RandomGenerator) throws -> (dequantized: Tensor, logQ: Tensor) {
        let n = rows.shape[0], event = _placement.shape[1]
        let flat = rows.reshaped(to: [n, event])
        var condition = (flat - _center) / _scale
        if let context {
            let c = context.rank == 1 ? context.reshaped(to: [1, context.shape[0]]) : context
            let perRow = c.shape[0] == n ? c : matmul(Tensor.ones([n, 1], dtype: c.dtype), c)
            condition = Tensor.concatenate([condition, perRow], alongAxis: 1)
        }
        let (u, logQ) = try noise.rsampleAndLogProb(n, context: condition, generator: &generator)
        // Rounding k + u to the dtype may reach k + 1 (or k); the open cell keeps it inside.
        let values = flat.doubles, float = rows.dtype == .float32
        var low = values, high = values
        for start in stride(from: 0, to: values.count, by: event) {
            for column in columns {
                let k = values[start + column]
                (low[start + column], high[start + column]) = float
                    ? (Double(Float(k).nextUp), Double(Float(k + 1).nextDown)) : (k.nextUp, (k + 1).nextDown)
            }
        }
        let y = minimum(maximum(flat + matmul(u, _placement), Tensor(low, shape: [n, event], dtype: rows.dtype)),
                        Tensor(high, shape: [n, event], dtype: rows.dtype))
        return (y.reshaped(to: rows.shape), logQ)
    }
}

extension Flow {
    /// log w = log p(k + u) − log q(u | k) for one draw u per row: the log importance weights
    /// whose mean is the dequantization ELBO and whose log-mean-exp estimates log P(k) (see
    /// ``VariationalDequantization``). With the flow's ``dequantizer`` u ∼ q(· | k) (`columns`
    /// must then be its columns, or empty); without, u ∼ U[0, 1) in `columns` and log q = 0.
    /// Differentiable in the flow's parameters (the dequantizer's included).
    /// - Parameters:
    ///   - rows: whole numbers in the dequantized elements, shape [N] + event shape.
    ///   - columns: the dequantized elements for uniform dequantization.
    ///   - context: for a conditional flow, one context row per row.
    ///   - generator: the source of the draws.
    /// - Returns: [N] log weights.
    /// - Throws: ``TrainingError/invalidData(_:)`` for rows that are not whole numbers in those
    ///   elements, ``TrainingError/invalidOption(_:)`` for columns that are not the dequantizer's,
    ///   and what ``logProb(_:context:)`` throws.
    public func dequantizationLogWeights(_ rows: Tensor, columns: [Int] = [], context: Tensor? = nil,
                                         generator: inout RandomGenerator) throws -> Tensor {
        let cells = try dequantizedColumns(columns)
        _ = try checkInput(rows)
        try checkWholeNumbers(rows, columns: cells, "rows")
        guard let dequantizer else { return try logProb(dequantize(rows, columns: cells, generator: &generator), context: context) }
        let (y, logQ) = try dequantizer.sample(rows, context: context, generator: &generator)
        return try logProb(y, context: context) - logQ
    }

    /// The elements to dequantize: the ``dequantizer``'s (`columns` empty or the same), or `columns`.
    func dequantizedColumns(_ columns: [Int]) throws -> [Int] {
        guard let dequantizer else { return columns }
        guard columns.isEmpty || columns.sorted() == dequantizer.columns else {
            throw TrainingError.invalidOption("the flow's variational dequantizer covers elements \(dequantizer.columns), not \(columns.sorted())")
        }
        return dequantizer.columns
    }

    /// Back-propagates the negative dequantization ELBO of `rows`, −(1/N) Σ log w, one draw per
    /// row (``dequantizationLogWeights(_:columns:context:generator:)``), in training mode, and returns its value:
    /// the training loss of a flow with a variational ``dequantizer``.
    func backwardNegativeDequantizationBound(_ rows: Tensor, context: Tensor?, generator: inout RandomGenerator) throws -> Double {
        let wasTraining = isTraining
        isTraining = true
        defer { isTraining = wasTraining }
        let loss = try -dequantizationLogWeights(rows, context: context, generator: &generator).mean()
        loss.backward()
        return loss.item
    }
}

/// The dequantization ELBO of each row, (1/S) Σₛ log w_s over `samples` draws (log w from
/// ``Flow/dequantizationLogWeights(_:columns:context:generator:)``), without gradients: a lower
/// bound on log P(k) in expectation, in nats; with uniform dequantization, E_u log p(k + u).
/// - Parameters:
///   - flow: a flow fitted with a variational dequantizer or with ``FitOptions/dequantizedColumns``.
///   - rows: integer-valued in the dequantized elements, shape [N] + event shape.
///   - columns: the dequantized elements (empty for the flow's dequantizer).
///   - context: for a conditional flow, one context row per row.
///   - samples: S, at least 1.
///   - generator: the source of the draws.
/// - Returns: [N] bounds.
public func dequantizationLowerBound(_ flow: Flow, _ rows: Tensor, columns: [Int] = [], context: Tensor? = nil, samples: Int = 1,
                                     generator: inout RandomGenerator) throws -> Tensor {
    guard samples >= 1 else { throw TrainingError.invalidOption("dequantization samples must be at least 1, got \(samples)") }
    var total = [Double](repeating: 0, count: rows.shape.first ?? 0)
    for _ in 0..<samples {
        let logWeights = try withoutGradients { try flow.dequantizationLogWeights(rows, columns: columns, context: context, generator: &generator).doubles }
        for (r, value) in logWeights.enumerated() { total[r] += value / Double(samples) }
    }
    return Tensor(total, shape: [total.count], dtype: rows.dtype)
}
