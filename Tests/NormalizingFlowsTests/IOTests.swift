import Foundation
import Testing
@testable import NormalizingFlows

private func temporaryPath(_ name: String) -> String {
    "\(scratchFolder())/\(name)"
}

@Test("every saveable plan survives JSON", arguments: conformanceCases.filter { $0.plan is any SerializablePlan })
func planRoundTripsThroughJSON(_ testCase: ConformanceCase) throws {
    let json = try PlanCoding.json(testCase.plan)
    let decoded = try PlanCoding.plan(fromJSON: json)
    #expect(try PlanCoding.json(decoded) == json)
}

@Test func splinePlansWrittenBeforeTheLogitScaleKeepScaleOneAndTheMinimumSizes() throws {
    let plan = SplineAutoregressive(bins: 4, conditioner: DenseAutoregressive(hiddenSizes: [16, 64]))
    #expect(plan.transform.logitScale == 0.125)   // 1/√64, from the last hidden layer
    let json = try PlanCoding.json(plan)
    #expect(json.contains("logitScale"))
    // The same plan as an older version wrote it: no logitScale key.
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
    func strip(_ value: Any) -> Any {
        if let dictionary = value as? [String: Any] {
            // The spline's keys only (the conditioner has a parameterization of its own).
            let spline = dictionary["bins"] != nil
            return dictionary.filter { $0.key != "logitScale" && !(spline && $0.key == "parameterization") }.mapValues(strip)
        }
        if let array = value as? [Any] { return array.map(strip) }
        return value
    }
    let old = String(decoding: try JSONSerialization.data(withJSONObject: strip(object)), as: UTF8.self)
    #expect(!old.contains("logitScale") && !old.contains("minimumSizes") && json.contains(#""parameterization":{"minimumSizes":{}}"#))
    let decoded = try #require(try PlanCoding.plan(fromJSON: old) as? SplineAutoregressive)
    #expect(decoded.transform.logitScale == 1 && decoded.transform.parameterization == .minimumSizes)
    #expect(decoded.transform.bins == 4)
    var zeroScale = Spline(bins: 4)
    zeroScale.transform.logitScale = 0
    #expect(throws: FlowError.self) { try Flow(base: Normal.standard([2]), plan: zeroScale) }
}

@Test func closurePlansAndUnknownTypesAreRefused() {
    let rotation = VolumePreserving(name: "r", forward: { $0 }, inverse: { $0 })
    #expect(throws: Error.self) { try PlanCoding.json(Compose([Exp(), rotation])) }
    #expect(throws: FlowError.self) { try PlanCoding.plan(fromJSON: #"{"type": "Mystery", "options": {}}"#) }
    #expect(throws: FlowError.self) { try PlanCoding.plan(fromJSON: "not json") }
}

@Test func modelFilesRebuildTheSameFlowBitForBit() throws {
    let plan = Compose([MAF(layers: 2, conditioner: DenseAutoregressive(hiddenSizes: [8], order: .random)), Permute(), NSF(layers: 1, bins: 4)])
    let flow = try Flow(base: Normal.standard([3]), plan: plan, seed: 4)
    var g = RandomGenerator(seed: 1)
    for p in flow.parameters { p.value = p.value + Tensor.randn(p.shape, generator: &g) * 0.1 }
    let y = Tensor.randn([50, 3], generator: &g)
    let expected = try flow.logProb(y).floats
    let path = temporaryPath("model.safetensors")
    try flow.save(to: path)
    let loaded = try Flow.load(from: path)
    #expect(try loaded.logProb(y).floats == expected)
    var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
    #expect(try flow.sample(10, generator: &a).floats == loaded.sample(10, generator: &b).floats)
}

@Test func malformedModelFilesAreRefusedWithTheirPath() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])))
    let path = temporaryPath("good.safetensors")
    try flow.save(to: path)
    let good = try Data(contentsOf: URL(fileURLWithPath: path))
    let headerLength = Int(good[0]) | Int(good[1]) << 8
    var cases: [(String, Data)] = [
        ("truncated", good.prefix(good.count - 10)),
        ("tiny", good.prefix(5)),
        ("empty", Data()),
        ("corrupted length", { var d = good; d[7] = 0x7F; return d }()),
        ("corrupted header", { var d = good; d[8] = UInt8(ascii: "x"); return d }()),
        ("extra bytes", good + Data([1, 2, 3, 4])),
        ("not a model", Data("hello, world, this is not a model".utf8)),
    ]
    // A header whose dtype is BF16.
    if let header = String(data: good[8..<(8 + headerLength)], encoding: .utf8), header.contains("\"F32\"") {
        var d = good
        d.replaceSubrange(8..<(8 + headerLength), with: Data(header.replacingOccurrences(of: "\"F32\"", with: "\"I32\"").utf8))
        cases.append(("integer dtype", d))
    }
    for (name, data) in cases {
        let bad = temporaryPath("\(name).safetensors")
        try data.write(to: URL(fileURLWithPath: bad))
        #expect(throws: FileError.self, "\(name)") { try Flow.load(from: bad) }
        do { _ = try Flow.load(from: bad) } catch let error as FileError { #expect(error.path == bad) }
    }
    #expect(throws: FileError.self) { try Flow.load(from: temporaryPath("missing.safetensors")) }
}

@Test func savingIsAtomicAndNeverLeavesPartialFiles() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: Affine())
    let path = temporaryPath("model.safetensors")
    try flow.save(to: path)
    try flow.save(to: path)   // overwrite in place
    let folder = (path as NSString).deletingLastPathComponent
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["model.safetensors"])
    #expect(throws: FileError.self) { try flow.save(to: "/nonexistent-folder/model.safetensors") }
}

@Test func csvFilesParseAndBadOnesNameLineAndColumn() throws {
    func parse(_ text: String) throws -> Tensor {
        let path = temporaryPath("data.csv")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try DataFile.read(path)
    }
    #expect(try parse("x,y\n1,2\n3,4.5\n").floats == [1, 2, 3, 4.5])
    #expect(try parse("# comment\n1 2\n\n3\t4\n").shape == [2, 2])
    #expect(try parse("1,2\r\n3,4\r\n").shape == [2, 2])
    func error(_ text: String) -> FileError? {
        do { _ = try parse(text); return nil } catch { return error as? FileError }
    }
    #expect(error("1,2\n3\n")?.line == 2)
    let notNumber = error("1,2\n3,abc\n")
    #expect(notNumber?.line == 2 && notNumber?.column == 3 && notNumber?.message.contains("abc") == true)
    #expect(error("1,nan\n")?.message.contains("finite") == true)
    #expect(error("1,inf\n") != nil)
    #expect(error("") != nil)
    #expect(error("x,y\n") != nil)
    #expect(throws: FileError.self) { try DataFile.read(temporaryPath("missing.csv")) }
}

@Test func npyFilesParse() throws {
    func npy(_ descr: String, _ shape: String, _ payload: Data, fortran: Bool = false) throws -> Tensor {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)])
        data.append(Data(header.utf8))
        data.append(payload)
        let path = temporaryPath("data.npy")
        try data.write(to: URL(fileURLWithPath: path))
        return try DataFile.read(path)
    }
    let floats: [Float] = [1, 2, 3, 4, 5, 6]
    let f32 = floats.withUnsafeBytes { Data($0) }
    #expect(try npy("<f4", "(3, 2)", f32).floats == floats)
    #expect(try npy("<f4", "(2, 3)", f32, fortran: true).floats == [1, 3, 5, 2, 4, 6])
    let doubles: [Double] = [1.5, -2]
    #expect(try npy("<f8", "(2,)", doubles.withUnsafeBytes { Data($0) }).shape == [2, 1])
    #expect(throws: FileError.self) { try npy("<i4", "(3, 2)", f32) }
    #expect(throws: FileError.self) { try npy("<f4", "(4, 2)", f32) }   // too little data
    #expect(throws: FileError.self) { try npy("<f4", "(3, 2)", [Float.nan, 1, 1, 1, 1, 1].withUnsafeBytes { Data($0) }) }
}

@Test func versionOneFilesWithMaskedNetworksAreRefusedAndOthersLoad() throws {
    for (plan, refused) in [(MAF(layers: 1, conditioner: .init(hiddenSizes: [4])) as any BijectorPlan, true), (RealNVP(layers: 2), false)] {
        let flow = try Flow(base: Normal.standard([2]), plan: plan)
        let path = temporaryPath("version.safetensors")
        try flow.save(to: path)
        let (tensors, saved) = try SafeTensors.read(path)
        var metadata = saved
        #expect(metadata["format_version"] == "2")
        metadata["format_version"] = "1"
        try SafeTensors.write(tensors, metadata: metadata, to: path)
        if refused {
            #expect(throws: FileError.self) { try Flow.load(from: path) }
        } else {
            #expect(try Flow.load(from: path).parameterCount == flow.parameterCount)
        }
    }
}

/// A variational dequantizer makes a file version 3, which a reader of version 2 refuses by its
/// version (not by the `dequantizer` entries it does not know); files without one stay version 2,
/// and version-2 files holding a dequantizer (as written before the bump) still load.
@Test func dequantizerFilesAreVersionThreeAndOlderReadersRefuseThemByVersion() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: Affine(),
                        dequantization: VariationalDequantization(columns: [1], center: [0, 0], scale: [1, 1]))
    let path = temporaryPath("dequantizer.safetensors")
    try flow.save(to: path)
    let (tensors, metadata) = try SafeTensors.read(path)
    #expect(metadata["format_version"] == "3" && Flow.fileFormatVersion == 3)
    func refusal(_ metadata: [String: String], newestVersion: Int = Flow.fileFormatVersion) -> String? {
        do {
            _ = try Flow.load((tensors, metadata), path: path, newestVersion: newestVersion)
            return nil
        } catch {
            return "\(error)"
        }
    }
    #expect(refusal(metadata) == nil)
    #expect(refusal(metadata, newestVersion: 2)?.contains("format version 3 is newer than this library reads (2)") == true)
    var future = metadata
    future["format_version"] = "99"
    #expect(refusal(future)?.contains("format version 99 is newer than this library reads (3)") == true, "\(refusal(future) ?? "loaded")")
    var before = metadata
    before["format_version"] = "2"
    #expect(refusal(before) == nil)
}

/// How flows fit read the data (``DataLayout``) survives a model file without raising its
/// version, and a layout that does not fit the flow is refused on saving and on loading.
@Test func aDataLayoutSurvivesAModelFileAndMustFitTheFlow() throws {
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])), contextSize: 2)
    let layout = DataLayout(width: 4, contextColumns: [2, 0], dequantizedColumns: [1])
    flow.dataLayout = layout
    let path = temporaryPath("layout.safetensors")
    try flow.save(to: path)
    let (tensors, metadata) = try SafeTensors.read(path)
    #expect(metadata["data_layout"] == #"{"context_columns":[2,0],"dequantized_columns":[1],"width":4}"#)
    #expect(metadata["format_version"] == "2")
    #expect(try Flow.load(from: path).dataLayout == layout)
    flow.dataLayout = nil
    try flow.save(to: path)
    #expect(try SafeTensors.read(path).metadata["data_layout"] == nil && Flow.load(from: path).dataLayout == nil)

    let misfits = [
        DataLayout(width: 5, contextColumns: [0, 2]),                           // 3 y columns for 2 values
        DataLayout(width: 3, contextColumns: [0]),                              // 1 context column for 2 values
        DataLayout(width: 4, contextColumns: [0, 4]),                           // a column beyond the rows
        DataLayout(width: 4, contextColumns: [0, 0]),
        DataLayout(width: 3),                                                   // no context columns: 3 y columns
        DataLayout(width: 4, contextColumns: [0, 2], dequantizedColumns: [2]),  // y has 2 columns
        DataLayout(width: -1),
    ]
    let never = temporaryPath("never.safetensors")
    for misfit in misfits {
        flow.dataLayout = misfit
        #expect(throws: FlowError.self, "\(misfit)") { try flow.save(to: never) }
        var written = metadata
        written["data_layout"] = try String(decoding: JSONEncoder().encode(misfit), as: UTF8.self)
        #expect(throws: FileError.self, "\(misfit)") { try Flow.load((tensors, written), path: path) }
    }
    #expect(!FileManager.default.fileExists(atPath: never))
    for text in ["", "[1]", #"{"width":4}"#, #"{"width":4,"context_columns":[0,2],"dequantized_columns":[1e300]}"#] {
        var written = metadata
        written["data_layout"] = text
        #expect(throws: FileError.self, "\(text)") { try Flow.load((tensors, written), path: path) }
    }
    // Uniformly dequantized columns beside a variational dequantizer: one or the other.
    let variational = try Flow(base: Normal.standard([2]), plan: Affine(),
                               dequantization: VariationalDequantization(columns: [1], center: [0, 0], scale: [1, 1]))
    variational.dataLayout = DataLayout(width: 2, dequantizedColumns: [0])
    #expect(throws: FlowError.self) { try variational.save(to: path) }
}

/// The base is a module of the flow's tree: its buffers are in the flow's state under `base.`,
/// load with the bijector's, and a loaded σ that is not positive is refused with nothing changed.
@Test func theBaseIsPartOfTheFlowsModuleTree() throws {
    let base = Normal(loc: Tensor([1, -2], dtype: .float64), scale: Tensor([0.5, 3], dtype: .float64))
    let flow = try Flow(base: base, plan: AffineAutoregressive(hiddenSizes: [4]), seed: 1)
    let state = flow.state()
    #expect(state["base.loc"]?.doubles == [1, -2] && state["base.scale"]?.doubles == [0.5, 3])
    #expect(!flow.parameters.isEmpty && flow.parameters.allSatisfy { $0.name.hasPrefix("bijector.") })
    var g = RandomGenerator(seed: 2)
    let y = Tensor.randn([6, 2], generator: &g, dtype: .float64)
    let other = try Flow(base: Normal.standard([2], dtype: .float64), plan: AffineAutoregressive(hiddenSizes: [4]), seed: 5)
    let before = try other.logProb(y).doubles
    var broken = state
    broken["base.scale"] = Tensor([0.5, -1], dtype: .float64)
    #expect(throws: FlowError.self) { try other.load(state: broken) }
    #expect(try other.logProb(y).doubles == before)
    try other.load(state: state)
    #expect(try other.logProb(y).doubles == (try flow.logProb(y).doubles))
}
