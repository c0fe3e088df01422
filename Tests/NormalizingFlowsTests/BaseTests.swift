import Foundation
import Testing
@testable import NormalizingFlows

// Bases beyond the standard normal (issue 25): each saves and loads, and a hostile model file
// naming one is refused with one error.

/// A flow saved to a scratch file and loaded back.
private func savedAndLoaded(_ flow: Flow) throws -> Flow {
    let path = "\(scratchFolder())/model.safetensors"
    try flow.save(to: path)
    return try Flow.load(from: path)
}

/// Gives every parameter of the flow's bijector a small random offset, so a round trip that
/// dropped one would show.
private func perturb(_ flow: Flow, seed: UInt64) {
    var g = RandomGenerator(seed: seed)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g, dtype: p.dtype) * 0.1 }
}

/// The bases of the round-trip test, each with values a round trip that lost one would change.
private func roundTripBases(_ dtype: DType) -> [any Distribution] {
    [
        StudentT(degreesOfFreedom: 2.3, loc: Tensor([0.5, -1, 2], dtype: dtype), scale: Tensor([1.5, 0.25, 1], dtype: dtype)),
        StudentT(degreesOfFreedom: 1.0 / 3, loc: .zeros([3], dtype: dtype), scale: .ones([3], dtype: dtype)),
        Uniform(low: Tensor([-1, -2, 0], dtype: dtype), high: Tensor([1, 3, 0.5], dtype: dtype)),
        Normal(loc: Tensor([0.1, 0.2, 0.3], dtype: dtype), scale: Tensor([1, 2, 3], dtype: dtype)),
    ]
}

@Test("bases round trip through model files bit for bit", arguments: [DType.float32, .float64])
func basesRoundTripThroughModelFiles(_ dtype: DType) throws {
    for base in roundTripBases(dtype) {
        let flow = try Flow(base: base, plan: MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8])), seed: 3)
        perturb(flow, seed: 4)
        var g = RandomGenerator(seed: 5)
        // Points inside a uniform base's image: the flow's own samples.
        let y = base is Uniform ? try flow.sample(64, generator: &g) : Tensor.randn([64, 3], generator: &g, dtype: dtype) * 2
        let loaded = try savedAndLoaded(flow)
        #expect(type(of: loaded.base) == type(of: base))
        #expect(loaded.dtype == dtype)
        let expected = try flow.logProb(y).doubles
        #expect(expected.allSatisfy { $0.isFinite })
        #expect(try loaded.logProb(y).doubles == expected, "\(type(of: base))")
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        #expect(try flow.sample(10, generator: &a).doubles == loaded.sample(10, generator: &b).doubles)
        if let t = loaded.base as? StudentT, let original = base as? StudentT {
            #expect(t.degreesOfFreedom == original.degreesOfFreedom)
        }
    }
}

/// A base no model file can hold is refused by name when saving.
@Test func unsaveableBasesAreRefusedByName() throws {
    struct Custom: Distribution {
        var eventShape: [Int] { [2] }
        var batchShape: [Int] { [] }
        var dtype: DType { .float32 }
        func rsample(_ n: Int, context: Tensor?, generator: inout RandomGenerator) throws -> Tensor { .randn([n, 2], generator: &generator) }
        func logProb(_ x: Tensor, context: Tensor?) throws -> Tensor { x.sum(alongAxis: 1) }
    }
    let flow = try Flow(base: Custom(), plan: Affine())
    do {
        try flow.save(to: "\(scratchFolder())/custom.safetensors")
        Issue.record("a Custom base was saved")
    } catch let error as FlowError {
        #expect(error.description.contains("Custom") && error.description.contains("StudentT"))
    }
}

/// Malformed `base` metadata and base tensors: each file is refused with one FileError naming
/// the path and the problem, never a trap.
@Test func malformedBaseMetadataIsRefusedWithOneClearError() throws {
    let flow = try Flow(base: StudentT(degreesOfFreedom: 4, loc: .zeros([2]), scale: .ones([2])),
                        plan: MAF(layers: 1, conditioner: DenseAutoregressive(hiddenSizes: [4])))
    let path = "\(scratchFolder())/t.safetensors"
    try flow.save(to: path)
    let good = try SafeTensors.read(path)
    #expect(good.metadata["base"] == #"{"degreesOfFreedom":4,"eventRank":1,"type":"StudentT"}"#)
    let uniform = try Flow(base: Uniform(low: .zeros([2]), high: .ones([2])), plan: Affine())
    let uniformPath = "\(scratchFolder())/u.safetensors"
    try uniform.save(to: uniformPath)
    let goodUniform = try SafeTensors.read(uniformPath)
    #expect(goodUniform.metadata["base"] == #"{"eventRank":1,"type":"Uniform"}"#)

    func base(_ json: String, _ contents: (tensors: [String: Tensor], metadata: [String: String]) = good) -> (tensors: [String: Tensor], metadata: [String: String]) {
        var contents = contents
        contents.metadata["base"] = json
        return contents
    }
    func tensors(_ change: (inout [String: Tensor]) -> Void, _ contents: (tensors: [String: Tensor], metadata: [String: String]) = good) -> (tensors: [String: Tensor], metadata: [String: String]) {
        var contents = contents
        change(&contents.tensors)
        return contents
    }
    let cases: [(String, (tensors: [String: Tensor], metadata: [String: String]), String)] = [
        ("not JSON", base("{"), "not a JSON object"),
        ("a list", base("[1, 2]"), "not a JSON object"),
        ("no type", base(#"{"eventRank": 1}"#), "names no type"),
        ("unknown type", base(#"{"type": "Cauchy", "eventRank": 1}"#), "unsupported base distribution 'Cauchy'"),
        ("type not a string", base(#"{"type": 7}"#), "names no type"),
        ("no degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1}"#), "'degreesOfFreedom' is missing"),
        ("negative degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": -2}"#), "at least 0.001"),
        ("zero degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 0}"#), "at least 0.001"),
        ("tiny degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 1e-300}"#), "at least 0.001"),
        ("huge degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 1e400}"#), "not a JSON object"),
        ("string degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": "4"}"#), "not a finite number"),
        ("boolean degrees of freedom", base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": true}"#), "not a finite number"),
        ("no event rank", base(#"{"type": "StudentT", "degreesOfFreedom": 4}"#), "'eventRank' is missing"),
        ("negative event rank", base(#"{"type": "StudentT", "eventRank": -1, "degreesOfFreedom": 4}"#), "not in 0...1"),
        ("event rank too large", base(#"{"type": "StudentT", "eventRank": 9223372036854775807, "degreesOfFreedom": 4}"#), "not in 0...1"),
        ("fractional event rank", base(#"{"type": "StudentT", "eventRank": 1.5, "degreesOfFreedom": 4}"#), "not a whole number"),
        ("missing loc", tensors { $0["base.loc"] = nil }, "'base.loc' is missing"),
        ("mis-shaped scale", tensors { $0["base.scale"] = .ones([3]) }, "'base.scale' has shape [3]"),
        ("negative scale", tensors { $0["base.scale"] = Tensor([1, -1] as [Float]) }, "scale must be positive"),
        ("zero scale", tensors { $0["base.scale"] = Tensor([1, 0] as [Float]) }, "scale must be positive"),
        ("NaN loc", tensors { $0["base.loc"] = Tensor([.nan, 0] as [Float]) }, "NaN"),
        ("extra base tensor", tensors { $0["base.df"] = .ones([1]) }, "'base.df'"),
        ("a uniform's tensors under a t", tensors({ $0["base.loc"] = nil; $0["base.scale"] = nil }, base(#"{"type": "StudentT", "eventRank": 1, "degreesOfFreedom": 4}"#, goodUniform)), "'base.loc' is missing"),
        ("a t's tensors under a uniform", base(#"{"type": "Uniform", "eventRank": 1}"#), "'base.low' is missing"),
        ("low above high", tensors({ $0["base.low"] = Tensor([0, 2] as [Float]) }, goodUniform), "low must lie below its high"),
        ("low equal to high", tensors({ $0["base.low"] = Tensor([0, 1] as [Float]) }, goodUniform), "low must lie below its high"),
        ("width beyond Float", tensors({ $0["base.low"] = Tensor([-3e38, 0] as [Float]); $0["base.high"] = Tensor([3e38, 1] as [Float]) }, goodUniform), "finite width"),
        ("infinite high", tensors({ $0["base.high"] = Tensor([.infinity, 1] as [Float]) }, goodUniform), "NaN or ±∞"),
    ]
    for (name, contents, expected) in cases {
        do {
            let loaded = try Flow.load(contents, path: "hostile.safetensors")
            Issue.record("\(name): loaded a \(type(of: loaded.base)) base")
        } catch let error as FileError {
            #expect(error.path == "hostile.safetensors")
            #expect(error.description.contains(expected), "\(name): \(error.description)")
            #expect(!error.description.contains("\n"), "\(name): \(error.description)")
        }
    }
}
