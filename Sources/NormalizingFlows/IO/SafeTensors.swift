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
        do {
            try file.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FileError(path: path, "cannot write: \(error.localizedDescription)")
        }
    }

    /// Reads and validates a safetensors file.
    /// - Throws: ``FileError`` for a missing, truncated or malformed file, naming what is wrong.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileError(path: path, FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
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
                  let shape = (entry["shape"] as? [Any])?.map({ ($0 as? NSNumber)?.intValue ?? -1 }),
                  let offsets = (entry["data_offsets"] as? [Any])?.map({ ($0 as? NSNumber)?.intValue ?? -1 }),
                  offsets.count == 2 else {
                throw fail("tensor '\(name)' lacks a dtype, shape or data_offsets")
            }
            let dtype: DType
            switch dtypeName {
            case "F32": dtype = .float32
            case "F64": dtype = .float64
            default: throw fail("tensor '\(name)' has dtype \(dtypeName); only F32 and F64 are supported")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor '\(name)' has an invalid shape \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            let count = shape.reduce(1, *)
            guard begin >= 0, end >= begin, end <= bufferSize else {
                throw fail("tensor '\(name)' spans bytes \(begin)..<\(end) of a \(bufferSize)-byte buffer: truncated or corrupted")
            }
            guard end - begin == count * dtype.byteSize else {
                throw fail("tensor '\(name)' of shape \(shape) \(dtypeName) needs \(count * dtype.byteSize) bytes, not \(end - begin)")
            }
            tensors[name] = data.withUnsafeBytes { raw in
                Tensor(shape: shape, dtype: dtype, copyingBytes: UnsafeRawBufferPointer(rebasing: raw[(headerEnd + begin)..<(headerEnd + end)]))
            }
            spans.append((begin, end, name))
        }
        spans.sort { $0.begin < $1.begin }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        if let last = spans.last?.end, last != bufferSize {
            throw fail("\(bufferSize - last) unexpected bytes after the last tensor")
        }
        return (tensors, metadata)
    }
}
