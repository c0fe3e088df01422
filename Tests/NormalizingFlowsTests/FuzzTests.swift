import Foundation
import Testing
@testable import NormalizingFlows

// Seeded property-based fuzzing of every reader (issue 28): the CSV, NPY and safetensors
// parsers and the plan decoder on the model-file load path. Each target starts from the corpus
// in Tests/Fuzz/corpus/<target> (valid files and the hostile cases found by hand) and applies
// random mutations: bit flips, interesting bytes, insertions, deletions, duplications, splices
// of two corpus files, and numbers replaced by boundary values (1e300, 2^62, -1, nan…).
//
// The property: a reader returns or throws a FileError/FlowError; it never traps, and a loaded
// flow's first use does not trap either. A trap kills the test process; a signal handler first
// writes the input being tried to $TMPDIR/fuzz-crash-<target>.bin, to be added to the corpus.
//
// Time per target: FUZZ_SECONDS (default 2; CI runs 10). FUZZ_SEED picks the random stream
// (default 1, so a failure reproduces). Each target prints its execution count.

private let corpusRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fuzz/corpus")

private var fuzzSeconds: Double { ProcessInfo.processInfo.environment["FUZZ_SECONDS"].flatMap(Double.init) ?? 2 }
private var fuzzSeed: UInt64 { ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 1 }

func corpus(_ target: String) throws -> [Data] {
    let folder = corpusRoot.appendingPathComponent(target)
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    return try names.map { try Data(contentsOf: folder.appendingPathComponent($0)) }
}

/// SplitMix64: a small seeded generator for the mutator.
struct FuzzRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}

/// Numbers that break naive arithmetic, as text.
private let interestingNumbers = [
    "0", "-1", "1", "2", "-0", "1e300", "-1e300", "3e38", "1e39", "4611686018427387904", "9223372036854775807",
    "9223372036854775808", "18446744073709551616", "99999999999999999999999", "2.5", "nan", "inf", "-inf", "1e-320",
    "0x10", "65536", "2147483648", "1000000000",
]
private let interestingBytes: [UInt8] = [0, 0xFF, 0x7F, 0x80, 0x0A, 0x0D, 0x2C, 0x20, 0x22, 0x7B, 0x7D, 0x5B, 0x5D, 0x3A, 0x2D, 0x2E, 0x65]

/// One random mutation of `input` (sometimes several), using `others` for splices.
func mutate(_ input: Data, others: [Data], random: inout FuzzRandom) -> Data {
    var bytes = [UInt8](input)
    for _ in 0...random.below(3) {
        switch random.below(9) {
        case 0 where !bytes.isEmpty:   // flip a bit
            let i = random.below(bytes.count)
            bytes[i] ^= 1 << UInt8(random.below(8))
        case 1 where !bytes.isEmpty:   // an interesting byte
            bytes[random.below(bytes.count)] = interestingBytes[random.below(interestingBytes.count)]
        case 2:   // insert random bytes
            let at = random.below(bytes.count + 1)
            bytes.insert(contentsOf: (0..<(1 + random.below(8))).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        case 3 where !bytes.isEmpty:   // delete a range
            let start = random.below(bytes.count), length = 1 + random.below(Swift.min(32, bytes.count - start))
            bytes.removeSubrange(start..<(start + length))
        case 4 where !bytes.isEmpty:   // duplicate a range
            let start = random.below(bytes.count), length = 1 + random.below(Swift.min(64, bytes.count - start))
            bytes.insert(contentsOf: bytes[start..<(start + length)], at: random.below(bytes.count + 1))
        case 5 where !others.isEmpty:   // splice with another corpus file
            let other = [UInt8](others[random.below(others.count)])
            let cut = random.below(bytes.count + 1), from = random.below(other.count + 1)
            bytes = Array(bytes[..<cut]) + Array(other[from...])
        case 6, 7:   // replace a run of digits with an interesting number
            let digits = bytes.indices.filter { (0x30...0x39).contains(bytes[$0]) }
            guard !digits.isEmpty else { continue }
            var start = digits[random.below(digits.count)], end = start
            while start > 0 && (0x30...0x39).contains(bytes[start - 1]) { start -= 1 }
            while end < bytes.count && ((0x30...0x39).contains(bytes[end]) || bytes[end] == 0x2E) { end += 1 }
            bytes.replaceSubrange(start..<end, with: Array(interestingNumbers[random.below(interestingNumbers.count)].utf8))
        case 8 where !bytes.isEmpty:   // truncate
            bytes.removeLast(random.below(bytes.count))
        default:
            continue
        }
    }
    if bytes.count > 1 << 16 { bytes.removeLast(bytes.count - (1 << 16)) }
    return Data(bytes)
}

// MARK: Crash capture

/// The input being tried, copied where a signal handler can write it out.
private enum CurrentInput {
    nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 17)
    nonisolated(unsafe) static var count = 0
    nonisolated(unsafe) static var path = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)

    static func set(_ data: Data) {
        count = 0
        data.withUnsafeBytes { raw in
            let n = Swift.min(raw.count, 1 << 17)
            buffer.update(from: raw.bindMemory(to: UInt8.self).baseAddress!, count: n)
            count = n
        }
    }

    static func target(_ name: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-crash-\(name).bin").path
        _ = file.withCString { strncpy(path, $0, 4095) }
        path[4095] = 0
    }

    static func installHandlers() {
        for signalNumber in [SIGILL, SIGTRAP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE] {
            signal(signalNumber) { received in
                let fd = open(CurrentInput.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                if fd >= 0 {
                    _ = write(fd, CurrentInput.buffer, CurrentInput.count)
                    close(fd)
                }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
}

/// Mutates the corpus of `target` (or the `folder` it shares with another target) for
/// FUZZ_SECONDS, feeding each input to `body`; returns the number of executions. Errors thrown by `body` are the expected outcome for most inputs.
func fuzz(_ target: String, corpus folder: String? = nil, _ body: (Data) throws -> Void) throws -> Int {
    let seeds = try corpus(folder ?? target)
    #expect(!seeds.isEmpty)
    CurrentInput.installHandlers()
    CurrentInput.target(target)
    var random = FuzzRandom(state: fuzzSeed &* 0x2545_F491_4F6C_DD1D ^ UInt64(target.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
    let deadline = Date().addingTimeInterval(fuzzSeconds)
    var executions = 0
    // Every corpus file as it is, then mutations until the deadline.
    var queue = seeds
    while executions < seeds.count || Date() < deadline {
        let input = executions < seeds.count ? seeds[executions] : mutate(queue[random.below(queue.count)], others: seeds, random: &random)
        CurrentInput.set(input)
        do {
            try body(input)
            // Inputs that pass stay in the queue to be mutated further (a little coverage guidance).
            if executions >= seeds.count && queue.count < 4096 && random.below(4) == 0 { queue.append(input) }
        } catch is FileError {
        } catch is FlowError {
        } catch is TrainingError {
        }
        executions += 1
    }
    print("fuzz \(target): \(executions) executions in \(fuzzSeconds) s, seed \(fuzzSeed), 0 crashes")
    return executions
}

@Suite("Fuzz", .serialized)
struct FuzzTests {
    @Test func csvReader() throws {
        let n = try fuzz("csv") { data in
            for dtype in [DType.float32, .float64] {
                let t = try DataFile.parseCSV(data, path: "fuzz.csv", dtype: dtype)
                #expect(t.rank == 2 && t.count == t.shape[0] * t.shape[1] && t.isFinite)
            }
        }
        #expect(n > 0)
    }

    @Test func npyReader() throws {
        let n = try fuzz("npy") { data in
            let t = try DataFile.parseNPY(data, path: "fuzz.npy", dtype: .float32)
            #expect(t.rank == 2 && t.isFinite)
        }
        #expect(n > 0)
    }

    @Test func safetensorsReader() throws {
        let n = try fuzz("safetensors") { data in
            let (tensors, _) = try SafeTensors.parse(data, path: "fuzz.safetensors")
            #expect(tensors.values.reduce(0) { $0 + $1.count * $1.dtype.byteSize } <= data.count)
        }
        #expect(n > 0)
    }

    /// The plan JSON on the model-file load path: a mutated plan put into a valid model file,
    /// loaded, and the flow used once.
    @Test func planDecoderAndModelLoad() throws {
        let models = try corpus("safetensors").compactMap { try? SafeTensors.parse($0, path: "seed") }
            .filter { $0.metadata["plan"] != nil }
        #expect(!models.isEmpty)
        var pick = 0
        let n = try fuzz("plan") { planText in
            pick += 1
            var (tensors, metadata) = models[pick % models.count]
            metadata["plan"] = String(decoding: planText, as: UTF8.self)
            let flow = try Flow.load((tensors, metadata), path: "fuzz.safetensors")
            let d = flow.eventShape.reduce(1, *)
            var generator = RandomGenerator(seed: 1)
            _ = try withoutGradients { try flow.logProb(Tensor.randn([4, d], generator: &generator, dtype: flow.dtype)) }
        }
        #expect(n > 0)
    }

    /// Whole model files through the public load path.
    @Test func modelFiles() throws {
        let n = try fuzz("modelFiles", corpus: "safetensors") { data in
            let flow = try Flow.load(SafeTensors.parse(data, path: "fuzz.safetensors"), path: "fuzz.safetensors")
            var generator = RandomGenerator(seed: 1)
            _ = try withoutGradients { try flow.sample(4, generator: &generator) }
        }
        #expect(n > 0)
    }
}
