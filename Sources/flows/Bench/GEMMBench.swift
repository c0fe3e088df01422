import NormalizingFlows

/// The `gemm` task: single-precision GFLOP/s of (M×K)·(K×N) for the shapes in bench/TASKS.md,
/// with 1 and 2 threads.
enum GEMMBench {
    /// A product's sizes and whether A and B are read transposed.
    struct Shape {
        var m, k, n: Int
        var transA = false, transB = false

        /// Parses `MxKxN`, optionally followed by `:` and two letters N/T for A and B (`64x512x64:TN`).
        init?(_ text: String) {
            let parts = text.split(separator: ":")
            guard let first = parts.first else { return nil }
            let sizes = first.split(separator: "x").compactMap { Int($0) }
            guard sizes.count == 3, sizes.allSatisfy({ $0 > 0 && $0 <= Shape.maximumSize }), parts.count <= 2 else { return nil }
            (m, k, n) = (sizes[0], sizes[1], sizes[2])
            if parts.count == 2 {
                let flags = Array(parts[1].uppercased())
                guard flags.count == 2, flags.allSatisfy({ $0 == "N" || $0 == "T" }) else { return nil }
                (transA, transB) = (flags[0] == "T", flags[1] == "T")
            }
        }

        init(m: Int, k: Int, n: Int) { (self.m, self.k, self.n) = (m, k, n) }

        /// The largest size accepted for M, K or N (products stay far from Int's range).
        static let maximumSize = 1 << 20
    }

    static let taskShapes = [Shape(m: 512, k: 256, n: 256), Shape(m: 1024, k: 1024, n: 1024)]

    static func run(repetitions: Int?, shapes: [Shape] = taskShapes) -> [BenchRecord] {
        var records: [BenchRecord] = []
        var generator = RandomGenerator(seed: 0)
        for shape in shapes {
            let (m, k, n) = (shape.m, shape.k, shape.n)
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
                                GEMM.sgemm(transA: shape.transA, transB: shape.transB, m: m, n: n, k: k,
                                           a: pa.baseAddress!, lda: shape.transA ? m : k,
                                           b: pb.baseAddress!, ldb: shape.transB ? k : n,
                                           c: pc.baseAddress!, ldc: n, threads: threads)
                            }
                        }
                    }
                }
                records.append(BenchRecord(fields: [
                    ("task", "gemm"), ("library", "swift-flows"), ("m", m), ("k", k), ("n", n),
                    ("trans", (shape.transA ? "T" : "N") + (shape.transB ? "T" : "N")),
                    ("threads", threads), ("gflops", flops / t / 1e9), ("median_s", t),
                    ("fma_kernel", GEMM.usesFMAKernel), ("kernel", GEMM.kernelName),
                ]))
            }
        }
        return records
    }
}
