import NormalizingFlows

/// The `mlp-step` task: one Adam step (forward, backward, update) of a 2→64→64→2 ReLU MLP on a
/// batch of 512, squared-error loss.
enum MLPStepBench {
    static func run(steps: Int?) -> BenchRecord {
        var generator = RandomGenerator(seed: 0)
        let net = MLP([2, 64, 64, 2], activation: .relu, generator: &generator)
        let x = Tensor.randn([512, 2], generator: &generator)
        let y = Tensor.randn([512, 2], generator: &generator)
        let adam = Adam(net.parameters, learningRate: 1e-3)
        let t = Timing.median(repetitions: steps ?? 2000, warmup: 50) {
            adam.step(minimizing: (net(x) - y).square().mean())
        }
        return BenchRecord(fields: [
            ("task", "mlp-step"), ("library", "swift-flows"), ("batch", 512),
            ("params", net.parameters.reduce(0) { $0 + $1.count }),
            ("step_us", t * 1e6), ("steps_per_s", 1 / t),
            ("peak_rss_mb", Timing.peakResidentMegabytes),
        ])
    }
}
