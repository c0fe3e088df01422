import Tensors

extension Flow {
    /// Rows per thread below which splitting a batch does not pay.
    static let minimumRowsPerThread = 64
    /// Parameters above which a batch is not split. Each extra thread holds a parameter-sized
    /// gradient, and such flows' operations are large enough to split by themselves: maf-large
    /// (6.2M parameters, 1024-wide layers) gained nothing from splitting its batch and its peak
    /// memory grew by a third.
    static let maximumParametersToSplit = 4_000_000

    /// Back-propagates the mean negative log-likelihood of `rows`, in training mode
    /// (``isTraining``, restored afterwards), adding its gradient to the parameters' accumulated
    /// gradients, and returns its value.
    ///
    /// The gradient is that of `-logProb(rows, context: context).mean()` followed by `backward()`.
    /// When the bijector's rows are independent (``Bijector/rowsAreIndependent``), the batch
    /// has at least 64 rows per thread and the flow at most 4M parameters, the rows are split
    /// into one slice per thread and each slice's forward and backward pass runs on its own
    /// thread (`Tensor.backward(parts:_:)`). Small flows train faster this way (maf-moons on two cores:
    /// 1.3× the steps per second of splitting each operation): their operations take
    /// microseconds, and threads that meet at each of hundreds of operations spend much of a
    /// step waiting.
    ///
    /// - Parameters:
    ///   - rows: the batch, shape [N] + event shape.
    ///   - context: for a conditional flow, one context row per batch row, shape [N, C].
    /// - Returns: −(1/N) Σ log p(rows).
    /// - Throws: what ``logProb(_:context:)`` throws.
    public func backwardNegativeLogLikelihood(_ rows: Tensor, context: Tensor? = nil) throws -> Double {
        // Rows of one event each, or none (another shape is left to logProb to accept or refuse).
        let n = rows.rank == eventShape.count + 1 ? rows.shape[0] : 0
        let parts = Swift.min(Parallel.workers, n / Self.minimumRowsPerThread)
        let wasTraining = isTraining
        isTraining = true
        defer { isTraining = wasTraining }
        guard parts > 1, parameterCount <= Self.maximumParametersToSplit, bijector.rowsAreIndependent else {
            let loss = try -logProb(rows, context: context).mean()
            loss.backward()
            return loss.item
        }
        Tensors.refreshDerivedValues(of: _moduleTree, for: dtype)
        let scale = -1 / Double(n)
        // A context with one row per batch row is split with the rows; a shared one is not.
        let contextPerRow = context.map { $0.rank == 2 && $0.shape[0] == n } ?? false
        let values = try Tensor.backward(parts: parts) { part in
            let range = (part * n / parts)..<((part + 1) * n / parts)
            return try logProb(rows.slice(alongAxis: 0, range),
                               context: contextPerRow ? context!.slice(alongAxis: 0, range) : context).sum() * scale
        }
        return values.reduce(0, +)
    }
}

extension Optimizer {
    /// The training step that every loop here takes (``fit(_:data:context:validation:validationContext:optimizer:options:progress:)``,
    /// ``fitVariational(_:logDensity:context:optimizer:options:progress:)``, `flows`, the benchmarks): zeroes the
    /// gradients, lets `backward` evaluate the loss and back-propagate it, clips the gradients'
    /// joint norm to `clipNorm`, updates the parameters and releases the gradients.
    ///
    /// - Returns: the loss before the update.
    /// - Throws: what `backward` throws, and ``TrainingError/nonFiniteLoss(step:value:)`` (without
    ///   a step number) when the loss or the gradient norm is NaN or infinite; the parameters are
    ///   then unchanged.
    @discardableResult
    public func step(clipNorm: Double? = nil, backward: () throws -> Double) throws -> Double {
        zeroGrad()
        defer { zeroGrad() }
        let loss = try backward()
        guard loss.isFinite else { throw TrainingError.nonFiniteLoss(step: nil, value: loss) }
        if let clipNorm {
            let norm = clipGradientNorm(parameters, maxNorm: clipNorm)
            guard norm.isFinite else { throw TrainingError.nonFiniteLoss(step: nil, value: norm) }
        }
        step()
        return loss
    }

    /// One maximum-likelihood step on a batch: the mean negative log-likelihood of `rows`,
    /// back-propagated by ``Flow/backwardNegativeLogLikelihood(_:context:)`` (in training mode,
    /// split across threads when that pays), then ``step(clipNorm:backward:)``.
    ///
    /// ```swift
    /// let optimizer = Adam(flow.parameters, learningRate: 1e-3)
    /// for batch in batches {
    ///     try optimizer.step(minimizingNegativeLogLikelihoodOf: flow, batch)
    /// }
    /// ```
    /// - Returns: the batch's mean negative log-likelihood before the update.
    /// - Throws: what ``Flow/logProb(_:context:)`` throws, or a non-finite loss; the parameters are
    ///   then unchanged.
    @discardableResult
    public func step(minimizingNegativeLogLikelihoodOf flow: Flow, _ rows: Tensor, context: Tensor? = nil,
                     clipNorm: Double? = nil) throws -> Double {
        try step(clipNorm: clipNorm) { try flow.backwardNegativeLogLikelihood(rows, context: context) }
    }

    /// One reverse-KL step toward the unnormalised density exp(`logDensity`): the mean of
    /// log q(z) − log p̃(z) over `samples` reparameterised draws z ∼ q (in training mode), then
    /// ``step(clipNorm:backward:)``. With a `context` (one row, or one per sample), q and p̃ are
    /// conditional: amortised inference.
    /// - Returns: the estimate of KL(q ‖ p) − log Z before the update.
    @discardableResult
    public func step(minimizingReverseKLOf flow: Flow, to logDensity: (Tensor) -> Tensor, samples: Int,
                     context: Tensor? = nil, generator: inout RandomGenerator, clipNorm: Double? = nil) throws -> Double {
        try step(clipNorm: clipNorm) {
            let wasTraining = flow.isTraining
            flow.isTraining = true
            defer { flow.isTraining = wasTraining }
            let (z, logQ) = try flow.rsampleAndLogProb(samples, context: context, generator: &generator)
            let target = logDensity(z)
            guard target.shape == logQ.shape else {
                throw TrainingError.invalidOption("logDensity returned shape \(target.shape) for samples of shape \(z.shape); expected \(logQ.shape)")
            }
            let loss = (logQ - target).mean()
            loss.backward()
            return loss.item
        }
    }
}
