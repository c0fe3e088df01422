import Foundation

/// Model files: safetensors holding the flow's module tree (``Flow/state()``: the bijector's
/// parameters and buffers under `bijector.<dotted path>`, the base's under `base.` (`base.loc`
/// and `base.scale` for a ``Normal``), a variational dequantizer's under `dequantizer.noise.`),
/// and in `__metadata__` the plan and the base (``BaseCoding``: its type and settings) as JSON,
/// with a variational dequantizer's settings under `dequantizer` (its columns, center and
/// scale, as JSON) and `dequantizer_plan`, so a file rebuilds the same flow; and, when known,
/// how a data file's rows map onto the flow under `data_layout` (``DataLayout``, as JSON).
///
/// Dense weights use PyTorch's [out, in] layout. MADE weights are stored unmasked; the applied
/// weight is stored weight ⊙ mask (divided by the fan-in under ``WeightParameterization/meanField``).
extension Flow {
    /// The metadata value identifying this library's model files.
    public static let fileFormat = "swift-normalizing-flows"
    /// The newest model file version this library reads; a newer file is refused with a message
    /// saying so. Version 2 changed the order of a masked autoregressive network's hidden units
    /// (ascending degree, and degree 0 with a context), so version 1 files holding such a network
    /// are refused rather than misread. Version 3 added the variational dequantizer (its
    /// `dequantizer` metadata and tensors), which a version-2 reader cannot load: a file holding
    /// one is written as version 3, any other as version 2, which every reader since then loads
    /// (one that predates `data_layout` ignores it, and asks for the context again).
    public static let fileFormatVersion = 3

    /// The version ``save(to:)`` writes: the oldest that reads this flow right.
    var savedFormatVersion: Int { dequantizer == nil ? 2 : 3 }

    /// Saves the flow atomically (a temporary file renamed into place).
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` if the plan or base cannot be saved (a
    ///   base must be a ``SerializableBase``) or the ``dataLayout`` does not fit the flow,
    ///   ``FileError`` if the file cannot be written.
    public func save(to path: String) throws {
        let baseJSON = try BaseCoding.json(base)
        let tensors = state()
        var metadata = [
            "format": Flow.fileFormat,
            "format_version": String(savedFormatVersion),
            "plan": try PlanCoding.json(plan),
            "base": baseJSON,
            "context_size": String(contextSize),
        ]
        if let settings = dequantizer?.settings {
            let coded = DequantizerCoding(kind: "variational", columns: settings.columns, center: settings.center, scale: settings.scale)
            metadata["dequantizer"] = String(decoding: try JSONEncoder().encode(coded), as: UTF8.self)
            metadata["dequantizer_plan"] = try PlanCoding.json(settings.plan)
        }
        if let dataLayout {
            try checkDataLayout(dataLayout)
            metadata["data_layout"] = try dataLayout.json()
        }
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    /// Loads a flow saved by ``save(to:)``.
    /// - Throws: ``FileError`` naming the file and what is wrong with it.
    public static func load(from path: String) throws -> Flow {
        try load(SafeTensors.read(path), path: path)
    }

    /// Builds the flow from a model file's tensors and metadata (read from `path`, named in errors),
    /// refusing versions above `newestVersion` (``fileFormatVersion``; lower to test how a reader of
    /// an older version meets a newer file).
    static func load(_ contents: (tensors: [String: Tensor], metadata: [String: String]), path: String,
                     newestVersion: Int = fileFormatVersion) throws -> Flow {
        let (tensors, metadata) = contents
        func fail(_ message: String) -> FileError { FileError(path: path, "not a valid model file: \(message)") }
        guard metadata["format"] == fileFormat else { throw fail("it was not written by this library (no '\(fileFormat)' format tag)") }
        guard let version = metadata["format_version"].flatMap(Int.init), version <= newestVersion else {
            throw fail("format version \(metadata["format_version"] ?? "missing") is newer than this library reads (\(newestVersion))")
        }
        if version < 2, tensors.keys.contains(where: { $0.hasSuffix("conditioner.order") }) {
            throw fail("format version \(version) stored masked autoregressive networks with another layout of hidden units than version 2 and later; fit the model again")
        }
        guard let planJSON = metadata["plan"], let baseJSON = metadata["base"],
              let contextSize = metadata["context_size"].flatMap(Int.init), contextSize >= 0 else {
            throw fail("the metadata lacks the plan, base or context size")
        }
        try checkIndexBuffers(tensors, fail: fail)
        // Sizes taken from the file are checked against the file before anything is allocated:
        // the plan (and the base) cannot need more parameters than the file holds values.
        let stored = tensors.values.reduce(0) { $0 + $1.count }
        let base: any SerializableBase
        do {
            base = try BaseCoding.base(fromJSON: baseJSON, tensors: tensors, storedValues: stored)
        } catch let error as FlowError {
            throw fail(error.description)
        }
        let eventSize = base.eventShape.reduce(1, *)
        func checkBudget(_ needed: Double) throws {
            guard needed <= Double(stored) else {
                throw fail(String(format: "the plan needs at least %.3g parameters for %d-dimensional events, but the file holds only %d values", needed, eventSize, stored))
            }
        }
        do {
            // The text first (it also bounds the nesting), then the plan as decoded: JSON with a
            // key twice may be read one way here and the other way by the decoder.
            try checkBudget(PlanBudget.minimum(ofJSON: planJSON, eventSize: eventSize, contextSize: contextSize).parameters)
            let plan = try PlanCoding.plan(fromJSON: planJSON)
            try checkBudget(PlanBudget.minimum(of: plan, eventSize: eventSize, contextSize: contextSize).parameters)
            let dequantization = try metadata["dequantizer"].map { text -> VariationalDequantization in
                guard let coded = try? JSONDecoder().decode(DequantizerCoding.self, from: Data(text.utf8)), coded.kind == "variational",
                      let planJSON = metadata["dequantizer_plan"] else {
                    throw fail("the dequantizer's metadata is not a variational dequantizer's columns, center, scale and plan")
                }
                let noiseContext = eventSize + contextSize
                try checkBudget(PlanBudget.minimum(ofJSON: planJSON, eventSize: coded.columns.count, contextSize: noiseContext).parameters)
                let plan = try PlanCoding.plan(fromJSON: planJSON)
                try checkBudget(PlanBudget.minimum(of: plan, eventSize: coded.columns.count, contextSize: noiseContext).parameters)
                return VariationalDequantization(columns: coded.columns, plan: plan, center: coded.center, scale: coded.scale)
            }
            let flow = try Flow(base: base, plan: plan, contextSize: contextSize, dequantization: dequantization)
            for (name, value) in tensors where !value.isFinite { throw fail("'\(FileError.clip(name))' holds NaN or ±∞") }
            try flow.load(state: tensors)
            if let text = metadata["data_layout"] {
                guard let layout = try? JSONDecoder().decode(DataLayout.self, from: Data(text.utf8)) else {
                    throw fail("the data layout's metadata is not a JSON object of the width, context columns and dequantized columns")
                }
                try flow.checkDataLayout(layout)
                flow.dataLayout = layout
            }
            return flow
        } catch let error as FlowError {
            throw fail(error.description)
        }
    }

    /// Throws unless `layout` fits this flow (``DataLayout/validate(eventSize:contextSize:)``) and
    /// lists no uniformly dequantized columns beside a variational dequantizer.
    private func checkDataLayout(_ layout: DataLayout) throws {
        try layout.validate(eventSize: eventShape.reduce(1, *), contextSize: contextSize)
        if dequantizer != nil && !layout.dequantizedColumns.isEmpty {
            throw FlowError.invalidConfiguration("the data layout names uniformly dequantized columns, but the flow has a variational dequantizer")
        }
    }

    /// Buffers holding indices (a permutation, an autoregressive order) must hold whole
    /// numbers in 0..<count before anything converts them to Int (1e300 would trap).
    private static func checkIndexBuffers(_ tensors: [String: Tensor], fail: (String) -> FileError) throws {
        for (name, value) in tensors where name.hasSuffix(".order") || name.hasSuffix(".permutation") || name == "bijector.permutation" {
            let values = value.doubles
            if let bad = values.first(where: { !($0 >= 0 && $0 < Double(values.count) && $0 == $0.rounded()) }) {
                throw fail("'\(FileError.clip(name))' holds \(bad), not an index in 0..<\(values.count)")
            }
        }
    }
}

/// The `dequantizer` metadata of a model file: a variational dequantizer's settings (its plan is
/// stored beside, as `dequantizer_plan`).
private struct DequantizerCoding: Codable {
    var kind: String
    var columns: [Int]
    var center: [Double]
    var scale: [Double]
}
