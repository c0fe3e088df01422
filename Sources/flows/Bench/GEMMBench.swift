import NormalizingFlows

/// The `gemm` task: single-precision GFLOP/s of (M×K)·(K×N) for the shapes in bench/TASKS.md,
/// with 1 and 2 threads.
enum GEMMBench {
    static let shapes = [(m: 512, k: 256, n: 256), (m: 1024, k: 1024, n: 1024)]

    static func run(repetitions: Int?) -> [BenchRecord] {
        var records: [BenchRecord] = []
        var generator = RandomGenerator(seed: 0)
        for (m, k, n) in shapes {
            let a = Tensor.randn([m, k], generator: &generator).floats
            let b = Tensor.randn([k, n], generator: &generator).floats
            var c = [Float](repeating: 0, count: m * n)
            let flops = 2.0 * Double(m * n * k)
            // About a second of work per measurement at ~50 GFLOP/s.
            let reps = repetitions ?? max(5, min(200, Int(5e10 / flops)))
            for threads in [1, 2] {
                let t = Timing.median(repetitions: reps) {
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                GEMM.sgemm(transA: false, transB: false, m: m, n: n, k: k,
                                           a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n,
                                           c: pc.baseAddress!, ldc: n, threads: threads)
                            }
                        }
                    }
                }
                records.append(BenchRecord(fields: [
                    ("task", "gemm"), ("library", "swift-flows"), ("m", m), ("k", k), ("n", n),
                    ("threads", threads), ("gflops", flops / t / 1e9), ("median_s", t),
                    ("fma_kernel", GEMM.usesFMAKernel),
                ]))
            }
        }
        return records
    }
}
