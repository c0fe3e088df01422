import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of
/// JSON `{"name": {"dtype": "F32", "shape": […], "data_offsets": [begin, end]}, …,
/// "__metadata__": {string: string}}`, then the raw little-endian tensor bytes, offsets counted
/// from the end of the header. PyTorch reads and writes it with `safetensors.torch`.
public enum SafeTensors {
    /// Largest header accepted when reading (guards against a corrupted length field).
    static let maximumHeaderBytes = 100_000_000

    /// Writes tensors (F32 or F64) and string metadata atomically: a temporary file in the same
    /// folder, renamed over `path` only when complete.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String], to path: String) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * t.dtype.byteSize
            header[name] = ["dtype": t.dtype == .float32 ? "F32" : "F64", "shape": t.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }   // pad so the data is 8-byte aligned
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for name in names {
            let t = tensors[name]!
            t.withUnsafeBytes { file.append(contentsOf: $0) }
        }
        try FileAccess.write(file, to: path)
    }

    /// Reads and validates a safetensors file.
    /// - Throws: ``FileError`` for a missing, truncated or malformed file, naming what is wrong.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try parse(FileAccess.read(path), path: path)
    }

    /// Parses the bytes of a safetensors file read from `path` (named in errors).
    static func parse(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ message: String) -> FileError { FileError(path: path, "not a valid model file: \(message)") }
        guard data.count >= 8 else { throw fail("\(data.count) bytes is too short for a safetensors header") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(maximumHeaderBytes), headerLength <= UInt64(data.count - 8) else {
            throw fail("the header length \(headerLength) exceeds the file (\(data.count) bytes): truncated or corrupted")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)),
              let header = object as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let bufferSize = data.count - headerEnd
        var metadata: [String: String] = [:]
        var spans: [(begin: Int, end: Int, name: String)] = []
        var tensors: [String: Tensor] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeValues = entry["shape"] as? [Any], let offsetValues = entry["data_offsets"] as? [Any] else {
                throw fail("tensor '\(clipped(name))' lacks a dtype, shape or data_offsets")
            }
            // Only whole numbers that fit in Int: 1e300 or 2.5 is an error, not a conversion trap.
            let dimensions = shapeValues.map(exactInteger), offsets = offsetValues.map(exactInteger)
            guard dimensions.allSatisfy({ ($0 ?? -1) >= 0 }), dimensions.count <= 8 else {
                throw fail("tensor '\(clipped(name))' has an invalid shape \(clipped("\(shapeValues)")): want at most 8 whole numbers ≥ 0")
            }
            guard offsets.count == 2, let begin = offsets[0], let end = offsets[1] else {
                throw fail("tensor '\(clipped(name))' has invalid data_offsets \(clipped("\(offsetValues)")): want two whole numbers")
            }
            let dtype: DType
            switch dtypeName {
            case "F32": dtype = .float32
            case "F64": dtype = .float64
            default: throw fail("tensor '\(clipped(name))' has dtype \(clipped(dtypeName)); only F32 and F64 are supported")
            }
            let dims = dimensions.map { $0! }
            guard begin >= 0, end >= begin, end <= bufferSize else {
                throw fail("tensor '\(clipped(name))' spans bytes \(begin)..<\(end) of a \(bufferSize)-byte buffer: truncated or corrupted")
            }
            // The product of the dimensions, in bytes, or nil if it overflows Int.
            let bytes = dims.reduce(Optional(dtype.byteSize)) { product, d in
                product.flatMap { p in
                    let (r, overflow) = p.multipliedReportingOverflow(by: d)
                    return overflow ? nil : r
                }
            }
            guard let bytes, end - begin == bytes else {
                let needed = bytes.map { "\($0) bytes" } ?? "more bytes than a 64-bit size can count"
                throw fail("tensor '\(clipped(name))' of shape \(dims) \(dtypeName) needs \(needed), not \(end - begin)")
            }
            let shape = dims
            tensors[name] = data.withUnsafeBytes { raw in
                Tensor(shape: shape, dtype: dtype, copyingBytes: UnsafeRawBufferPointer(rebasing: raw[(headerEnd + begin)..<(headerEnd + end)]))
            }
            spans.append((begin, end, name))
        }
        spans.sort { $0.begin < $1.begin }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(clipped(a.name))' and '\(clipped(b.name))' overlap")
        }
        if let last = spans.last?.end, last != bufferSize {
            throw fail("\(bufferSize - last) unexpected bytes after the last tensor")
        }
        return (tensors, metadata)
    }

    /// A JSON number as an Int if it is a whole number that fits (not 1e300, 2.5, true or "3").
    private static func exactInteger(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        return Int(exactly: number)
    }
}
