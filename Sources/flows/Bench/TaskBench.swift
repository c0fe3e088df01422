import Foundation
import NormalizingFlows

/// The tasks of bench/TASKS.md, run with this library; one JSON record each.
struct TaskBench {
    var task: BenchTask
    var steps: Int?
    var seed: UInt64
    var dataDirectory: String
    /// The points a family task scores and samples (default ``defaultThroughputPoints``).
    var points: Int? = nil

    static let defaultThroughputPoints = 65_536

    func run() throws -> BenchRecord {
        switch task {
        case .firstFlow: return try firstFlow()
        case .mafMoons: return try mafMoons()
        case .nsfDigits: return try nsfDigits()
        case .mafThroughput: return try mafThroughput()
        case .planarVI: return try planarVI()
        case .mafLarge: return try mafLarge()
        case .lrsMoons, .lrsCouplingMoons, .nafMoons, .unafMoons, .sospfMoons, .bpfMoons, .ncsfTorus: return try familyTask(task.family!)
        case .gemm, .mlpStep, .vectorMath, .splineKernels: fatalError("not a training task")
        }
    }

    private func record(_ fields: [(String, Any)]) -> BenchRecord {
        BenchRecord(fields: [("task", task.rawValue), ("library", "swift-flows")] + fields + [("peak_rss_mb", Timing.peakResidentMegabytes), ("seed", seed)])
    }

    private func data(_ name: String) throws -> Tensor {
        try DataFile.read((dataDirectory as NSString).appendingPathComponent(name))
    }

    /// Trains `flow` with Adam on minibatches of `train` for `steps` steps (no validation, constant
    /// rate, the gradient norm clipped at `clipNorm` when given).
    private func train(_ flow: Flow, _ train: Tensor, steps: Int, batch: Int, lr: Double, clipNorm: Double? = nil) throws -> Double {
        let optimizer = Adam(flow.parameters, learningRate: lr)
        var generator = RandomGenerator(seed: seed)
        let n = train.shape[0]
        var order = generator.permutation(n), cursor = 0
        return try Timing.measure {
            for _ in 0..<steps {
                if cursor + batch > n { order = generator.permutation(n); cursor = 0 }
                let rows = train.indexSelect(alongAxis: 0, Array(order[cursor..<(cursor + batch)]))
                cursor += batch
                try optimizer.step(minimizingNegativeLogLikelihoodOf: flow, rows, clipNorm: clipNorm)
            }
        }
    }

    private func firstFlow() throws -> BenchRecord {
        let run = try FirstFlow(seed: seed, steps: (steps ?? 501) - 1)
        var generator = RandomGenerator(seed: seed)
        let result = try run.train(generator: &generator)
        return record([("steps_per_s", Double(run.steps + 1) / result.seconds), ("wall_s", result.seconds),
                       ("test_nll", result.testNLL), ("params", run.flow.parameterCount)])
    }

    private func mafMoons() throws -> BenchRecord {
        let plan = MAF(layers: 5, conditioner: DenseAutoregressive(hiddenSizes: [64, 64]))
        return try densityTask(base: Normal.standard([2]), plan: plan, files: ("moons_train.csv", "moons_test.csv"),
                               steps: steps ?? 2000, batch: 512, lr: 1e-3)
    }

    private func nsfDigits() throws -> BenchRecord {
        let plan = NSF(layers: 5, bins: 8, bound: 5, conditioner: DenseAutoregressive(hiddenSizes: [256, 256]))
        return try densityTask(base: Normal.standard([64]), plan: plan, files: ("digits_train.csv", "digits_test.csv"),
                               steps: steps ?? 1000, batch: 256, lr: 5e-4)
    }

    /// A density-estimation task, run twice from the same initialisation. With a fixed step count
    /// on every training row: `steps_per_s` and `test_nll`. With early stopping, as TASKS.md
    /// defines it: the last 10% of the training rows (in file order) held out, the validation NLL
    /// taken every 50 steps and at the end, and `test_nll_best` the test NLL of the parameters of
    /// the best validation step (`best_step`).
    private func densityTask(base: Normal, plan: some BijectorPlan, files: (train: String, test: String),
                             steps: Int, batch: Int, lr: Double) throws -> BenchRecord {
        let (trainRows, testRows) = try (data(files.train), data(files.test))
        let flow = try Flow(base: base, plan: plan, seed: seed)
        let initial = flow.state()
        let seconds = try train(flow, trainRows, steps: steps, batch: batch, lr: lr)
        let fixedStepNLL = try negativeLogLikelihood(flow, testRows)

        try flow.load(state: initial)
        let n = trainRows.shape[0], held = n / 10
        var options = FitOptions()
        options.steps = steps
        options.batchSize = batch
        options.learningRate = lr
        options.learningRatePolicy = .constant
        options.gradientClipNorm = nil
        options.evaluationInterval = 50
        options.patience = nil
        options.seed = seed
        let report = try fit(flow, data: trainRows.slice(alongAxis: 0, 0..<(n - held)),
                             validation: trainRows.slice(alongAxis: 0, (n - held)..<n), options: options)
        return record([("steps_per_s", Double(steps) / seconds), ("wall_s", seconds), ("test_nll", fixedStepNLL),
                       ("test_nll_best", try negativeLogLikelihood(flow, testRows)), ("best_step", report.bestStep ?? 0),
                       ("validation_nll_best", report.bestValidationNLL ?? .nan), ("params", flow.parameterCount)])
    }

    private func mafThroughput() throws -> BenchRecord {
        let flow = try Flow(base: Normal.standard([16]), plan: MAF(layers: 5, conditioner: DenseAutoregressive(hiddenSizes: [256, 256])), seed: seed)
        var generator = RandomGenerator(seed: seed &+ 1)
        // Random (not identity) parameters, as the task asks.
        for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &generator) * 0.01 }
        let points = 65_536
        let x = Tensor.randn([points, 16], generator: &generator)
        let logProbSeconds = try Timing.measure {
            for start in stride(from: 0, to: points, by: 4096) {
                _ = try withoutGradients { try flow.logProb(x.slice(alongAxis: 0, start..<(start + 4096))) }
            }
        }
        let sampleSeconds = try Timing.measure { _ = try flow.sample(points, generator: &generator) }
        return record([("logprob_points_per_s", Double(points) / logProbSeconds), ("sample_points_per_s", Double(points) / sampleSeconds),
                       ("wall_s", logProbSeconds + sampleSeconds), ("params", flow.parameterCount)])
    }

    private func planarVI() throws -> BenchRecord {
        let flow = try Flow(base: Normal.standard([2]), plan: PlanarFlow(layers: 32), seed: seed)
        var options = VariationalOptions()
        options.steps = steps ?? 5000
        options.samplesPerStep = 256
        options.learningRate = 1e-3
        options.seed = seed
        let report = try fitVariational(flow, logDensity: Energy.u1.logDensity, options: options)
        let kl = try klDivergence(flow, logDensity: Energy.u1.logDensity, logNormalizer: Energy.u1.logNormalizer(), samples: 100_000, seed: seed &+ 1)
        return record([("steps_per_s", Double(options.steps) / report.seconds), ("wall_s", report.seconds), ("kl", kl),
                       ("params", flow.parameterCount)])
    }

    private func mafLarge() throws -> BenchRecord {
        let hidden = 1024, d = 64, layers = 5, batch = 1024
        let flow = try Flow(base: Normal.standard([d]), plan: MAF(layers: layers, conditioner: DenseAutoregressive(hiddenSizes: [hidden, hidden])), seed: seed)
        var generator = RandomGenerator(seed: seed &+ 2)
        let n = steps ?? 50
        let seconds = try train(flow, Tensor.randn([batch * 4, d], generator: &generator), steps: n, batch: batch, lr: 1e-4)
        // Dense-layer multiply-adds per MADE pass, ×2 flops, ×3 for forward and both backward products.
        let macs = Double(batch) * Double(d * hidden + hidden * hidden + hidden * 2 * d)
        let flops = 2 * macs * 3 * Double(layers) * Double(n)
        return record([("steps_per_s", Double(n) / seconds), ("wall_s", seconds), ("gflops", flops / seconds / 1e9),
                       ("params", flow.parameterCount)])
    }

    /// A `flows fit --flow` family on 2-D data: `flows fit`'s default plan and base for the
    /// family, trained as `flows fit` trains it (Adam, the gradient norm clipped at
    /// ``FitOptions/gradientClipNorm``'s default 5) at learning rate 1e-3 on batches of 512 for
    /// 1000 steps by default, on 20,000 rows, then `test_nll` on 10,000 test rows, and the throughput of log p on
    /// `points` points (batches of 4096) and of drawing as many samples (batches of 4096).
    /// The data are drawn here: two moons (make_moons' construction: half the points on the
    /// upper unit half-circle, half on the lower one shifted by (1, 0.5), at uniform angles, plus
    /// N(0, 0.05²) noise) for the families on ℝ², and ``TorusMixture`` for ncsf's angles.
    private func familyTask(_ family: FlowChoice) throws -> BenchRecord {
        var generator = RandomGenerator(seed: seed &+ 3)
        let draw = { (n: Int, generator: inout RandomGenerator) -> Tensor in
            family.isCircular ? TorusMixture.sample(n, generator: &generator, dtype: .float32) : Self.twoMoons(n, generator: &generator)
        }
        let trainRows = draw(20_000, &generator), testRows = draw(10_000, &generator)
        let base = try BaseChoice(name: nil, degreesOfFreedom: nil, components: nil, flow: family)
            .base(for: trainRows, degreesOfFreedom: nil, components: nil, seed: seed)
        let flow = try Flow(base: base, plan: family.plan(layers: nil, hidden: nil, bins: nil, dimension: 2), seed: seed)
        let steps = steps ?? 1000
        let seconds = try train(flow, trainRows, steps: steps, batch: 512, lr: 1e-3, clipNorm: FitOptions().gradientClipNorm)
        let testNLL = try negativeLogLikelihood(flow, testRows)
        let points = points ?? Self.defaultThroughputPoints
        let scored = draw(points, &generator)
        let batches = stride(from: 0, to: points, by: 4096).map { $0..<Swift.min(points, $0 + 4096) }
        let logProbSeconds = try Timing.measure {
            for rows in batches { _ = try withoutGradients { try flow.logProb(scored.slice(alongAxis: 0, rows)) } }
        }
        let sampleSeconds = try Timing.measure {
            for rows in batches { _ = try flow.sample(rows.count, generator: &generator) }
        }
        return record([("family", family.rawValue), ("steps_per_s", Double(steps) / seconds), ("wall_s", seconds), ("test_nll", testNLL),
                       ("logprob_points_per_s", Double(points) / logProbSeconds), ("sample_points_per_s", Double(points) / sampleSeconds),
                       ("params", flow.parameterCount)])
    }

    /// `n` points [n, 2] of two interleaved half-circles with N(0, 0.05²) noise (float32).
    static func twoMoons(_ n: Int, generator: inout RandomGenerator) -> Tensor {
        var values = [Double]()
        values.reserveCapacity(2 * n)
        for i in 0..<n {
            let angle = Double.pi * generator.nextUniform()
            let (x, y) = i < n / 2 ? (Foundation.cos(angle), Foundation.sin(angle)) : (1 - Foundation.cos(angle), 0.5 - Foundation.sin(angle))
            values += [x + 0.05 * generator.nextNormal(), y + 0.05 * generator.nextNormal()]
        }
        return Tensor(values, shape: [n, 2], dtype: .float32)
    }
}
