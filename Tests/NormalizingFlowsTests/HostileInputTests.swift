import Foundation
import Testing
@testable import NormalizingFlows

// Hostile files (issue 28): every one is refused with a FileError naming the file, never a trap.

/// A safetensors file from a header object and a body.
func safetensorsFile(_ header: [String: Any], body: Data) throws -> Data {
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    while (8 + json.count) % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    return file + json + body
}

/// An .npy file (version 1) with a given header dictionary text.
func npyFile(_ header: String, payload: Data, version: UInt8 = 1) -> Data {
    var data = Data([0x93] + Array("NUMPY".utf8) + [version, 0])
    let bytes = Array(header.utf8)
    if version == 1 {
        data.append(contentsOf: [UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)])
    } else {
        withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { data.append(contentsOf: $0) }
    }
    return data + bytes + payload
}

/// The header and body of a small saved MAF (2-D, hidden [4]).
func savedModelParts() throws -> (header: [String: Any], body: Data) {
    let flow = try Flow(base: Normal.standard([2]), plan: MAF(layers: 1, conditioner: .init(hiddenSizes: [4])))
    let path = "\(scratchFolder())/model.safetensors"
    try flow.save(to: path)
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as! [String: Any]
    return (header, data.subdata(in: (8 + length)..<data.count))
}

private func loadError(_ data: Data) -> FileError? {
    let path = "\(scratchFolder())/hostile.safetensors"
    do {
        try data.write(to: URL(fileURLWithPath: path))
        _ = try Flow.load(from: path)
        return nil
    } catch {
        return error as? FileError
    }
}

private func readError(_ data: Data, name: String = "hostile.csv", dtype: DType = .float32) -> FileError? {
    let path = "\(scratchFolder())/\(name)"
    do {
        try data.write(to: URL(fileURLWithPath: path))
        _ = try DataFile.read(path, dtype: dtype)
        return nil
    } catch {
        return error as? FileError
    }
}

@Test func untrustedShapesAndOffsetsAreCheckedArithmetic() throws {
    let (header, body) = try savedModelParts()
    func with(_ key: String, _ field: String, _ value: Any) throws -> Data {
        var h = header
        var entry = h[key] as! [String: Any]
        entry[field] = value
        h[key] = entry
        return try safetensorsFile(h, body: body)
    }
    let cases: [(String, Data, String)] = [
        ("shape product overflows", try with("base.loc", "shape", [1 << 40, 1 << 40]), "64-bit"),
        ("shape 1e300", try with("base.loc", "shape", [1e300]), "invalid shape"),
        ("negative shape", try with("base.loc", "shape", [-2]), "invalid shape"),
        ("fractional shape", try with("base.loc", "shape", [2.5]), "invalid shape"),
        ("offset 1e300", try with("base.loc", "data_offsets", [1e300, 8]), "data_offsets"),
        ("offset Int.max", try with("base.loc", "data_offsets", [0, Int.max]), "spans bytes"),
        ("negative offset", try with("base.loc", "data_offsets", [-8, 8]), "spans bytes"),
        ("one offset", try with("base.loc", "data_offsets", [0]), "data_offsets"),
        ("string shape", try with("base.loc", "shape", ["2"]), "invalid shape"),
        ("header length 2^64-1", Data([255, 255, 255, 255, 255, 255, 255, 255]) + Data("{}".utf8), "header length"),
    ]
    for (name, data, fragment) in cases {
        let error = loadError(data)
        #expect(error?.message.contains(fragment) == true, "\(name): \(String(describing: error))")
    }
}

@Test func indexBuffersHoldingHugeOrFractionalValuesAreRefused() throws {
    let (header, body) = try savedModelParts()
    let entry = header["bijector.0.conditioner.order"] as! [String: Any]
    let offsets = entry["data_offsets"] as! [Int]
    for values in [[1e300, 0], [3e38, 0], [0.5, 1], [-1, 0], [2, 0], [Double.nan, 0], [-Double.infinity, 0]] {
        var b = body
        values.withUnsafeBytes { b.replaceSubrange(offsets[0]..<offsets[1], with: $0) }
        let error = loadError(try safetensorsFile(header, body: b))
        #expect(error?.message.contains("not an index in 0..<2") == true, "\(values): \(String(describing: error))")
    }
}

@Test func planSizesAreCheckedAgainstTheFileBeforeAllocating() throws {
    let (header, body) = try savedModelParts()
    func withPlan(_ change: (inout [String: Any]) -> Void) throws -> Data {
        var h = header
        var metadata = h["__metadata__"] as! [String: String]
        var plan = try JSONSerialization.jsonObject(with: Data(metadata["plan"]!.utf8)) as! [String: Any]
        var options = plan["options"] as! [String: Any]
        change(&options)
        plan["options"] = options
        metadata["plan"] = String(decoding: try JSONSerialization.data(withJSONObject: plan), as: UTF8.self)
        h["__metadata__"] = metadata
        return try safetensorsFile(h, body: body)
    }
    let hugeHidden = try withPlan { options in
        var conditioner = options["conditioner"] as! [String: Any]
        conditioner["hiddenSizes"] = [1_000_000_000]
        options["conditioner"] = conditioner
    }
    let manyLayers = try withPlan { $0["layers"] = 1 << 62 }
    let wideAndDeep = try withPlan { options in
        var conditioner = options["conditioner"] as! [String: Any]
        conditioner["hiddenSizes"] = [100_000, 100_000]
        options["conditioner"] = conditioner
    }
    // A key given twice: JSONSerialization and JSONDecoder may each keep a different one (found by the fuzzer).
    var twice = header
    var twiceMetadata = twice["__metadata__"] as! [String: String]
    twiceMetadata["plan"] = #"{"options":{"conditioner":{"activation":"relu","hiddenSizes":[1000000000],"order":{"natural":{}},"parameterization":"standard","skipConnections":false,"hiddenSizes":[4]},"layers":1,"scale":{"exp":{}}},"type":"MAF"}"#
    twice["__metadata__"] = twiceMetadata
    let duplicateKey = try safetensorsFile(twice, body: body)
    for (name, data) in [("hidden 1e9", hugeHidden), ("2^62 layers", manyLayers), ("hidden 1e5²", wideAndDeep), ("duplicate key", duplicateKey)] {
        let error = loadError(data)
        #expect(error?.message.contains("the plan needs at least") == true, "\(name): \(String(describing: error))")
    }
    // The bound never refuses a real plan: every preset, saved, loads back.
    let plans: [any BijectorPlan] = [
        MAF(layers: 3, conditioner: .init(hiddenSizes: [8, 8])), IAF(layers: 2), NSF(layers: 2, bins: 6),
        RealNVP(layers: 2), NSFCoupling(layers: 2, bins: 5), LRS(layers: 2, bins: 6), LRSCoupling(layers: 2, bins: 5),
        PlanarFlow(layers: 4), RadialFlow(layers: 4),
        SylvesterFlow(layers: 2), SylvesterFlow(layers: 2, variant: .householder), SylvesterFlow(layers: 2, variant: .triangular),
        Sylvester(columns: 2), Compose([Permute(), MAF(layers: 1)]), Householder(reflections: 3), Householder(), LULinear(),
    ]
    // One dimension: autoregressive layers hold free parameters, no networks (a 1-D NSF was refused).
    let oneD = try Flow(base: Normal.standard([1]), plan: NSF(layers: 2, bins: 4))
    let oneDPath = "\(scratchFolder())/one.safetensors"
    try oneD.save(to: oneDPath)
    #expect(try Flow.load(from: oneDPath).parameterCount == oneD.parameterCount)
    #expect(try PlanBudget.minimum(of: NSF(layers: 2), eventSize: 1, contextSize: 3).parameters > 1000)
    for plan in plans {
        let flow = try Flow(base: Normal.standard([3]), plan: plan)
        let (needed, _) = try PlanBudget.minimum(of: plan, eventSize: 3)
        #expect(needed <= Double(flow.parameterCount + 3 * 8), "\(plan)")
        // Layers with D×D matrices: a bound that grows with D², checked before allocating.
        if plan is LULinear || plan is SylvesterFlow {
            #expect(try PlanBudget.minimum(of: plan, eventSize: 1_000_000).parameters >= 1e12, "\(plan)")
        }
        let path = "\(scratchFolder())/preset.safetensors"
        try flow.save(to: path)
        #expect(try Flow.load(from: path).parameterCount == flow.parameterCount, "\(plan)")
    }
    // Spline conditioners count their output layer, hₖ·T·(3K − 1) (T = D autoregressive, ⌊D/2⌋
    // coupling), and stay below the real count.
    for d in [2, 3, 5, 16] {
        let splines: [any BijectorPlan] = [NSF(layers: 2, bins: 8), NSFCoupling(layers: 2, bins: 8), NSF(layers: 1, bins: 2),
                                           NSFCoupling(layers: 1, bins: 3, conditioner: .init(hiddenSizes: [5])),
                                           LRS(layers: 2, bins: 8), LRSCoupling(layers: 1, bins: 3, conditioner: .init(hiddenSizes: [5]))]
        for plan in splines {
            let flow = try Flow(base: Normal.standard([d]), plan: plan)
            #expect(try PlanBudget.minimum(of: plan, eventSize: d).parameters <= Double(flow.parameterCount), "\(plan) D=\(d)")
        }
    }
    // 200000 columns through NSF: 5 layers × 64 × 200000 × 23 at least (a fit the kernel killed at 23 GB).
    #expect(try PlanBudget.minimum(of: NSF(layers: 5, conditioner: .init(hiddenSizes: [64, 64])), eventSize: 200_000).parameters >= 5 * 64 * 200_000 * 23)
    #expect(try PlanBudget.minimum(of: NSFCoupling(layers: 5, conditioner: .init(hiddenSizes: [64, 64])), eventSize: 200_000).parameters >= 5 * 64 * 100_000 * 23)
}

@Test func npyHeadersWithOverflowingShapesAreRefused() {
    let cases: [(String, Data, String)] = [
        ("2^62 × 4", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", payload: Data(count: 32)), "64-bit"),
        ("Int.max²", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 9223372036854775807), }", payload: Data(count: 32)), "64-bit"),
        ("beyond Int", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 2), }", payload: Data(count: 32)), "whole sizes"),
        ("negative", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", payload: Data(count: 16)), "whole sizes"),
        ("reversed parentheses", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': )2, 2(, }", payload: Data(count: 16)), "shape"),
        ("header length past the end", npyFile("{}", payload: Data(), version: 2).prefix(8) + Data([255, 255, 255, 255]), "truncated"),
        ("float32 overflow", npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", payload: [1e39, 1.0].withUnsafeBytes { Data($0) }), "row 1, column 1 is 1e+39, outside the float32 range"),
    ]
    for (name, data, fragment) in cases {
        let error = readError(data, name: "hostile.npy")
        #expect(error?.message.contains(fragment) == true, "\(name): \(String(describing: error))")
    }
}

@Test func csvFieldsMustBeWholeNumbersInRange() throws {
    let nul = readError(Data("1,2\n3\u{0}abc,4\n".utf8))
    #expect(nul?.line == 2 && nul?.column == 1 && nul?.message.contains("NUL") == true, "\(String(describing: nul))")
    let overflow = readError(Data("1,2\n3,1e39\n".utf8))
    #expect(overflow?.line == 2 && overflow?.column == 3 && overflow?.message.contains("float32 range") == true)
    #expect(readError(Data("1,2\n3,1e39\n".utf8), dtype: .float64) == nil)
    #expect(readError(Data("1,2\n3,1e400\n".utf8), dtype: .float64)?.message.contains("float64 range") == true)
    #expect(readError(Data("1,2\n3,1.5x\n".utf8))?.message.contains("'1.5x' is not a number") == true)
    #expect(readError(Data("1,2\n3,infinity\n".utf8))?.message.contains("not a finite number") == true)
    // Hexadecimal floats, which strtod reads, are refused; a field that merely holds an x is not a number.
    let hex = readError(Data("1,2\n3,-0X1.8p1\n".utf8))
    #expect(hex?.line == 2 && hex?.column == 3 && hex?.message == "'-0X1.8p1' is a hexadecimal number; write decimal numbers such as 8 or 1.5e3")
    #expect(readError(Data("1,2\n0x,2\n".utf8))?.message == "'0x' is not a number")
    // A 400-digit decimal overflows the range (it is not called an infinity); a byte order mark is skipped.
    let digits = readError(Data(("1,2\n" + String(repeating: "1", count: 400) + ",2\n").utf8))
    #expect(digits?.message.contains("outside the float32 range") == true, "\(String(describing: digits))")
    let bomPath = "\(scratchFolder())/bom.csv"
    try Data([0xEF, 0xBB, 0xBF] + Array("x,y\n1,2\n".utf8)).write(to: URL(fileURLWithPath: bomPath))
    #expect(try DataFile.read(bomPath).floats == [1, 2])
    // A plan of the wrong types says where, not the decoder's debug dump.
    for (json, fragment) in [(#"{"options":{"layers":"2","scale":{"exp":{}}},"type":"MAF"}"#, "options.layers: expected Int"),
                             (#"{"type":"MAF"}"#, "'options' is missing")] {
        do {
            _ = try PlanCoding.plan(fromJSON: json)
            Issue.record("\(json) was decoded")
        } catch {
            #expect("\(error)".contains(fragment) && !"\(error)".contains("Debug description"), "\(error)")
        }
    }
    // A 5 MB field is clipped in the message.
    let huge = readError(Data(("1,2\n3," + String(repeating: "x", count: 5_000_000) + "\n").utf8))
    #expect(huge != nil && huge!.description.count < 200, "\(huge?.description.count ?? -1) characters")
    #expect(huge?.message.contains("5000000 characters") == true)
    // Binary data is not taken for a header line.
    #expect(readError(Data([0, 1, 2, 10, 0x31, 0x2C, 0x32, 10]))?.message.contains("binary") == true)
    // Old behaviour kept: headers, comments, CR/CRLF, whitespace-separated rows, columns in characters.
    let path = "\(scratchFolder())/ok.csv"
    try "température,y\r# note\r\n1 ,\t2\n3,4".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try DataFile.read(path).floats == [1, 2, 3, 4])
    let column = readError(Data("é,ü\n1,x\n".utf8))
    #expect(column?.line == 2 && column?.column == 3)
}

@Test func streamsAndFoldersAreReadWithinLimits() throws {
    let folder = scratchFolder()
    #expect(throws: FileError(path: folder, "is a folder, not a file")) { try DataFile.read(folder) }
    // A FIFO no one writes to is an error at once instead of blocking (or reading as empty).
    let fifo = "\(folder)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    #expect(throws: FileError(path: fifo, "is a named pipe (FIFO) that gave no data: no process was writing to it; start the writer first, or save the data to a file")) {
        try DataFile.read(fifo)
    }
    // An endless stream stops at the limit.
    #expect(throws: FileError.self) { try FileAccess.read("/dev/zero", streamLimit: 1 << 20) }
    let big = "\(folder)/big.csv"
    try Data(count: 4096).write(to: URL(fileURLWithPath: big))
    let error = #expect(throws: FileError.self) { try FileAccess.read(big, limit: 1000) }
    #expect(error?.message.contains("more than") == true)
}

@Test func writesKeepTheModeReplaceLinksTargetsAndLeaveNoTemporaryFiles() throws {
    let folder = scratchFolder()
    let path = "\(folder)/out.csv"
    try DataFile.writeCSV(Tensor([1, 2], shape: [1, 2]), to: path)
    #expect(chmod(path, 0o640) == 0)
    try DataFile.writeCSV(Tensor([3, 4], shape: [1, 2]), to: path)
    var info = stat()
    #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o640)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "3,4\n")
    // A link: the file it names is replaced, the link stays a link.
    #expect(symlink(path, "\(folder)/link.csv") == 0)
    try DataFile.writeCSV(Tensor([5, 6], shape: [1, 2]), to: "\(folder)/link.csv")
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "5,6\n")
    #expect(lstat("\(folder)/link.csv", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
    // A FIFO is written directly, not replaced by a regular file.
    let fifo = "\(folder)/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    #expect(throws: FileError(path: fifo, "cannot be written: no process is reading this FIFO")) {
        try DataFile.writeCSV(Tensor([7, 8], shape: [1, 2]), to: fifo)
    }
    let reader = open(fifo, O_RDONLY | O_NONBLOCK)
    defer { close(reader) }
    try DataFile.writeCSV(Tensor([7, 8], shape: [1, 2]), to: fifo)
    var buffer = [UInt8](repeating: 0, count: 16)
    #expect(read(reader, &buffer, buffer.count) == 4 && buffer.prefix(4) == Array("7,8\n".utf8)[...])
    #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
    // Failures say why in words, and leave nothing behind.
    let error = #expect(throws: FileError.self) { try DataFile.writeCSV(Tensor([1], shape: [1, 1]), to: "\(folder)/missing/out.csv") }
    #expect(error?.message.contains("no such file") == true && error?.message.contains("NSCocoa") == false)
    #expect(throws: FileError.self) { try DataFile.writeCSV(Tensor([1], shape: [1, 1]), to: folder) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["fifo", "link.csv", "out.csv"])
    #expect(FileAccess.sameFile(path, "\(folder)/link.csv") && !FileAccess.sameFile(path, fifo))
}
