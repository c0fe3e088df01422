import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows bench`: the benchmark tasks, as a table or as JSON lines.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark task and report its figures.",
        discussion: """
            Tasks: \(BenchTask.allCases.map(\.rawValue).joined(separator: ", ")).
            Build in release mode for meaningful numbers: swift run -c release flows bench --task gemm
            """)

    @Option(help: "The task to run.")
    var task: BenchTask

    @Option(parsing: .unconditional, help: "Repetitions (or training steps) to time; the median is reported (default: the task's).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Seed for the training tasks' initialisation, minibatch order and data.")
    var seed: UInt64 = 0

    @Flag(help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(parsing: .unconditional, help: "gemm only: comma-separated shapes MxKxN[:AB] to time instead of the task's (AB: N or T for each operand).")
    var shapes: String?

    @Option(parsing: .unconditional, help: "Family tasks (\(BenchTask.familyTasks.map(\.rawValue).joined(separator: ", "))) only: the points whose log-density and sampling are timed (default \(TaskBench.defaultThroughputPoints)).")
    var points: Int?

    @Option(name: .customLong("data-dir"), help: "Folder with the tasks' data (moons_*.csv, digits_*.csv), relative to the current folder.")
    var dataDirectory = Bench.defaultDataDirectory

    static let defaultDataDirectory = "../shared/bench/data"

    func validate() throws {
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        // The timings of every repetition are kept for the median: 8 bytes each.
        if let steps, Double(steps) * 8 > Limits.memory { throw Limits.refuse("--steps \(steps)", needs: Double(steps) * 8, for: "keeping \(steps) timings") }
        _ = try gemmShapes()
        if let points {
            guard BenchTask.familyTasks.contains(task) else { throw ValidationError("--points applies to the family tasks only: \(BenchTask.familyTasks.map(\.rawValue).joined(separator: ", "))") }
            guard points >= 1 else { throw ValidationError("--points must be at least 1, got \(points)") }
            // Two coordinates per point, with the flow's activations for one batch of 4096.
            if Double(points) * 16 > Limits.memory { throw Limits.refuse("--points \(points)", needs: Double(points) * 16, for: "\(points) points") }
        }
    }

    private func gemmShapes() throws -> [GEMMBench.Shape] {
        guard let shapes else { return GEMMBench.taskShapes }
        return try shapes.split(separator: ",", omittingEmptySubsequences: false).map { (text: Substring) -> GEMMBench.Shape in
            guard let shape = GEMMBench.Shape(String(text)) else {
                throw ValidationError("--shapes \(FileError.clip(shapes)): '\(FileError.clip(text))' is not MxKxN or MxKxN:AB with whole sizes from 1 to \(GEMMBench.Shape.maximumSize)")
            }
            // A, B and C in float32, with the copies the benchmark makes of A and B.
            let bytes = 4 * (3 * Double(shape.m) * Double(shape.k) + 3 * Double(shape.k) * Double(shape.n) + Double(shape.m) * Double(shape.n))
            guard bytes <= Limits.memory else { throw Limits.refuse("--shapes \(FileError.clip(text))", needs: bytes, for: "the three matrices") }
            return shape
        }
    }

    func run() throws {
        let records: [BenchRecord]
        switch task {
        case .gemm: records = GEMMBench.run(repetitions: steps, shapes: try gemmShapes())
        case .mlpStep: records = [MLPStepBench.run(steps: steps)]
        case .vectorMath: records = VectorMathBench.run(repetitions: steps)
        case .splineKernels: records = try SplineKernelBench.run(repetitions: steps)
        default:
            var isFolder: ObjCBool = false
            guard !task.readsData || FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isFolder) && isFolder.boolValue else {
                let absolute = URL(fileURLWithPath: dataDirectory).standardizedFileURL.path
                throw CommandError("\(dataDirectory): no such folder (\(absolute)); task \(task.rawValue) reads its data (moons_*.csv, digits_*.csv) from --data-dir, by default \(Bench.defaultDataDirectory) relative to the current folder, i.e. beside a clone of this repository")
            }
            records = [try TaskBench(task: task, steps: steps, seed: seed, dataDirectory: dataDirectory, points: points).run()]
        }
        for record in records {
            print(json ? record.jsonLine : record.tableLine)
        }
    }
}

enum BenchTask: String, CaseIterable, ExpressibleByArgument {
    case firstFlow = "first-flow"
    case mafMoons = "maf-moons"
    case nsfDigits = "nsf-digits"
    case mafThroughput = "maf-throughput"
    case planarVI = "planar-vi"
    case mafLarge = "maf-large"
    case lrsMoons = "lrs-moons"
    case lrsCouplingMoons = "lrs-coupling-moons"
    case nafMoons = "naf-moons"
    case unafMoons = "unaf-moons"
    case sospfMoons = "sospf-moons"
    case bpfMoons = "bpf-moons"
    case ncsfTorus = "ncsf-torus"
    case gemm
    case mlpStep = "mlp-step"
    case vectorMath = "vector-math"
    case splineKernels = "spline-kernels"

    /// Whether the task reads data files from `--data-dir` (the others draw their own points).
    var readsData: Bool { self == .mafMoons || self == .nsfDigits }

    /// The `flows fit --flow` family a family task trains (with `flows fit`'s default plan), `nil` for the other tasks.
    var family: FlowChoice? {
        switch self {
        case .lrsMoons: .lrs
        case .lrsCouplingMoons: .lrsCoupling
        case .nafMoons: .naf
        case .unafMoons: .unaf
        case .sospfMoons: .sospf
        case .bpfMoons: .bpf
        case .ncsfTorus: .ncsf
        default: nil
        }
    }

    /// The tasks that train one `flows fit` family and time its log-density and sampling.
    static var familyTasks: [BenchTask] { allCases.filter { $0.family != nil } }
}

/// One line of benchmark output: ordered fields, as JSON or as aligned text.
struct BenchRecord {
    var fields: [(String, Any)]

    var jsonLine: String {
        "{" + fields.map { key, value in
            let rendered: String
            switch value {
            case let s as String: rendered = "\"\(s)\""
            case let d as Double: rendered = d.isFinite ? String(format: "%.6g", d) : "null"
            default: rendered = "\(value)"
            }
            return "\"\(key)\": \(rendered)"
        }.joined(separator: ", ") + "}"
    }

    var tableLine: String {
        fields.map { key, value in
            if let d = value as? Double { return "\(key)=\(String(format: "%.4g", d))" }
            return "\(key)=\(value)"
        }.joined(separator: "  ")
    }
}

/// Wall-clock timing helpers for benchmarks.
enum Timing {
    /// Seconds taken by `body`.
    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Seconds taken by a throwing `body`.
    static func measure(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// The median of `repetitions` timings of `body`, after `warmup` untimed runs.
    static func median(repetitions: Int, warmup: Int = 2, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        let times = (0..<repetitions).map { _ in seconds(body) }.sorted()
        return times[times.count / 2]
    }

    /// Peak resident memory of this process in MiB.
    static var peakResidentMegabytes: Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024          // kilobytes on Linux
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / (1024 * 1024)  // bytes on macOS
        #endif
    }
}
