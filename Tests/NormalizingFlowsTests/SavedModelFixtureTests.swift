import Foundation
import Testing
@testable import NormalizingFlows

/// Model files written by the library before the module-tree redesign (format version 2), with
/// the log-densities that library computed for a few points: they must still load and score the
/// same, so that users' saved models survive the redesign.
@Suite struct SavedModelFixtureTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// The rows of a fixture's expected-values file, each a list of numbers.
    static func rows(_ name: String) throws -> [[Double]] {
        try String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: ",").map { Double($0)! } }
    }

    @Test func mixedFlowSavedBeforeTheRedesignScoresTheSame() throws {
        let flow = try Flow.load(from: "\(Self.folder)/v2-mixed.safetensors")
        let rows = try Self.rows("v2-mixed.expected.csv")
        let points = Tensor(rows[0].map { Float($0) }, shape: [rows[1].count, 3])
        let scores = try flow.logProb(points).doubles
        for (got, expected) in zip(scores, rows[1]) {
            #expect(abs(got - expected) <= 1e-4 * max(1, abs(expected)), "\(got) vs \(expected)")
        }
    }

    @Test func conditionalSplineFlowSavedBeforeTheRedesignScoresTheSame() throws {
        let flow = try Flow.load(from: "\(Self.folder)/v2-conditional-nsf.safetensors")
        #expect(flow.contextSize == 2)
        let rows = try Self.rows("v2-conditional-nsf.expected.csv")
        let n = rows[2].count
        let y = Tensor(rows[0].map { Float($0) }, shape: [n, 2]), context = Tensor(rows[1].map { Float($0) }, shape: [n, 2])
        let scores = try flow.logProb(y, context: context).doubles
        for (got, expected) in zip(scores, rows[2]) {
            #expect(abs(got - expected) <= 1e-4 * max(1, abs(expected)), "\(got) vs \(expected)")
        }
    }

    /// IAF's default log-scale became soft-clipped; an IAF saved before (its plan names the
    /// unbounded scale) must load with that scale and score the same, and the new scale must
    /// survive a model file.
    @Test func iafFilesKeepTheirLogScaleAcrossTheDefaultsChange() throws {
        var g = RandomGenerator(seed: 3)
        let y = Tensor.randn([20, 3], generator: &g)
        for scale in [AffineScale.exp, .iafDefault, .softClipped(bound: 1.5)] {
            let loaded = try savedAndLoaded(IAF(layers: 2, conditioner: .init(hiddenSizes: [8]), scale: scale), scoring: y, generator: &g)
            #expect((loaded.plan as? IAF)?.scale == scale)
        }
        // The plan as it was written before the change: the unbounded scale is named in it.
        let old = #"{"options":{"conditioner":{"activation":"relu","hiddenSizes":[8],"order":{"natural":{}},"parameterization":"standard","skipConnections":false},"layers":2,"scale":{"exp":{}}},"type":"IAF"}"#
        #expect((try PlanCoding.plan(fromJSON: old) as? IAF)?.scale == .exp)
        #expect(IAF().scale == .softClipped(bound: log(1000)) && MAF().scale == .exp)
    }
}

/// The floored scales (nflows') are written in a plan under the names flows_torch reads, survive a
/// model file, and leave the older scales' JSON as it was.
@Test func flooredAffineScalesSurviveAModelFile() throws {
    var g = RandomGenerator(seed: 5)
    let y = Tensor.randn([20, 3], generator: &g)
    for scale in [AffineScale.softplus(floor: 1e-3), .sigmoidWithFloor(bias: 2, floor: 1e-3)] {
        let loaded = try savedAndLoaded(MAF(layers: 2, conditioner: .init(hiddenSizes: [8]), scale: scale), scoring: y, generator: &g)
        #expect((loaded.plan as? MAF)?.scale == scale)
    }
    let json = try PlanCoding.json(MAF(layers: 1, scale: .softplus(floor: 1e-3)))
    #expect(json.contains(#""scale":{"softplus":{"floor":0.001}}"#), "\(json)")
    let coupling = try PlanCoding.json(AffineCoupling(scale: .sigmoidWithFloor(bias: 2, floor: 1e-3)))
    #expect(coupling.contains(#""scale":{"sigmoidWithFloor":{"bias":2,"floor":0.001}}"#), "\(coupling)")
    let old = #"{"options":{"conditioner":{"activation":"relu","hiddenSizes":[8],"order":{"natural":{}},"parameterization":"standard","skipConnections":false},"layers":2,"scale":{"sigmoid":{"bias":2}}},"type":"MAF"}"#
    #expect((try PlanCoding.plan(fromJSON: old) as? MAF)?.scale == .sigmoid(bias: 2))
}

/// A flow of `plan` on a 3-D normal base, its parameters moved off their initial values, saved
/// to a model file and loaded back; the loaded flow scores `y` exactly as the original did.
private func savedAndLoaded(_ plan: any BijectorPlan, scoring y: Tensor, generator g: inout RandomGenerator) throws -> Flow {
    let flow = try Flow(base: Normal.standard([3]), plan: plan, seed: 2)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.3 }
    let path = "\(scratchFolder())/\(type(of: plan)).safetensors"
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    #expect(try loaded.logProb(y).floats == flow.logProb(y).floats)
    return loaded
}
