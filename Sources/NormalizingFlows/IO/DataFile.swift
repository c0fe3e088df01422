import Foundation

/// Reading and writing data sets: rows of numbers as CSV (comma- or whitespace-separated,
/// optional header line, `#` comments) or NumPy `.npy` (float32 or float64, 1-D or 2-D).
///
/// Every problem is a ``FileError`` naming the file and, for text, the line and column:
/// missing or empty files, ragged rows, values that are not numbers, NaN or infinities.
public enum DataFile {
    /// Reads a 2-D data set (rows × columns) from CSV or NPY (recognised by its magic bytes).
    public static func read(_ path: String, dtype: DType = .float32) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw FileError(path: path, !exists ? "no such file" : isDirectory.boolValue ? "is a folder, not a data file" : "cannot read the file")
        }
        if data.starts(with: [0x93] + Array("NUMPY".utf8)) { return try parseNPY(data, path: path, dtype: dtype) }
        return try parseCSV(data, path: path, dtype: dtype)
    }

    // MARK: CSV

    static func parseCSV(_ data: Data, path: String, dtype: DType) throws -> Tensor {
        guard let text = String(data: data, encoding: .utf8) else {
            throw FileError(path: path, "is neither UTF-8 text (CSV) nor a NumPy .npy file")
        }
        var values: [Double] = []
        var width: Int?
        var widthLine = 0
        var rows = 0
        var comma: Bool?
        var lineNumber = 0
        var sawHeader = false
        // "\r\n" is a single Character in Swift, so split on every kind of newline.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let useComma = comma ?? trimmed.contains(",")
            comma = useComma
            // Fields with their starting column (1-based, in characters).
            var fields: [(text: Substring, column: Int)] = []
            if useComma {
                var column = 1
                for field in line.split(separator: ",", omittingEmptySubsequences: false) {
                    fields.append((field, column))
                    column += field.count + 1
                }
            } else {
                var column = 1, start: Substring.Index? = nil, startColumn = 1
                for index in line.indices {
                    let isSpace = line[index] == " " || line[index] == "\t"
                    if isSpace, let s = start { fields.append((line[s..<index], startColumn)); start = nil }
                    if !isSpace && start == nil { start = index; startColumn = column }
                    column += 1
                }
                if let s = start { fields.append((line[s...], startColumn)) }
            }
            var row: [Double] = []
            for (field, column) in fields {
                let f = field.trimmingCharacters(in: .whitespaces)
                guard let v = Double(f) else {
                    if rows == 0 && !sawHeader && fields.allSatisfy({ Double($0.text.trimmingCharacters(in: .whitespaces)) == nil }) {
                        row = []
                        break   // a header line
                    }
                    throw FileError(path: path, line: lineNumber, column: column,
                                    f.isEmpty ? "empty value" : "'\(f.prefix(40))' is not a number")
                }
                guard v.isFinite else {
                    throw FileError(path: path, line: lineNumber, column: column, "\(f) is not a finite number (NaN and infinities are not allowed)")
                }
                row.append(v)
            }
            if row.isEmpty { sawHeader = true; continue }
            if let width, row.count != width {
                throw FileError(path: path, line: lineNumber, "has \(row.count) values, but line \(widthLine) has \(width)")
            }
            if width == nil { width = row.count; widthLine = lineNumber }
            values += row
            rows += 1
        }
        guard let width, rows > 0 else { throw FileError(path: path, "contains no rows of numbers") }
        return Tensor(values, shape: [rows, width], dtype: dtype)
    }

    // MARK: NPY

    static func parseNPY(_ data: Data, path: String, dtype: DType) throws -> Tensor {
        func fail(_ message: String) -> FileError { FileError(path: path, "not a valid .npy file: \(message)") }
        guard data.count >= 10 else { throw fail("truncated header") }
        let bytes = [UInt8](data)
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = major == 1 ? (2, 10) : (4, 12)
        guard major >= 1 && major <= 3, data.count >= start else { throw fail("unsupported version \(major)") }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        guard start + headerLength <= data.count,
              let header = String(bytes: bytes[start..<(start + headerLength)], encoding: .utf8) else {
            throw fail("truncated header")
        }
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrField = field("descr"), let descr = descrField.split(separator: "'").first.map(String.init) else {
            throw fail("no 'descr' in the header")
        }
        let elementSize: Int
        switch descr {
        case "<f4", "|f4": elementSize = 4
        case "<f8", "|f8": elementSize = 8
        default: throw fail("dtype '\(descr)' is not supported; save float32 or float64 little-endian arrays")
        }
        let fortran = field("fortran_order")?.hasPrefix("True") ?? false
        guard let shapeField = field("shape"), let open = shapeField.firstIndex(of: "("), let close = shapeField.firstIndex(of: ")") else {
            throw fail("no 'shape' in the header")
        }
        let dims = shapeField[shapeField.index(after: open)..<close].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.allSatisfy({ ($0 ?? -1) >= 0 }), (1...2).contains(dims.count) else {
            throw fail("shape (\(shapeField[shapeField.index(after: open)..<close])) is not 1-D or 2-D")
        }
        let shape = dims.count == 1 ? [dims[0]!, 1] : [dims[0]!, dims[1]!]
        let count = shape[0] * shape[1]
        let payload = start + headerLength
        guard data.count - payload == count * elementSize else {
            throw fail("expected \(count * elementSize) bytes of data for shape \(shape), found \(data.count - payload)")
        }
        guard count > 0 else { throw FileError(path: path, "contains no rows of numbers") }
        var values = [Double](repeating: 0, count: count)
        data.withUnsafeBytes { raw in
            for i in 0..<count {
                values[i] = elementSize == 4
                    ? Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: payload + 4 * i, as: UInt32.self).littleEndian))
                    : Double(bitPattern: raw.loadUnaligned(fromByteOffset: payload + 8 * i, as: UInt64.self).littleEndian)
            }
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            let (r, c) = fortran ? (bad % shape[0], bad / shape[0]) : (bad / shape[1], bad % shape[1])
            throw FileError(path: path, "row \(r + 1), column \(c + 1) is \(values[bad]); NaN and infinities are not allowed")
        }
        let t = Tensor(values, shape: fortran ? [shape[1], shape[0]] : shape, dtype: dtype)
        return fortran ? t.transposed() : t
    }

    // MARK: Writing

    /// Rows of `tensor` (1-D: one value per line) as CSV text, with up to 9 significant digits
    /// for float32 (which round-trips) and 17 for float64.
    public static func csv(_ tensor: Tensor) -> String {
        let width = tensor.rank <= 1 ? 1 : tensor.shape[tensor.rank - 1]
        let digits = tensor.dtype == .float32 ? 9 : 17
        let values = tensor.doubles
        var out = ""
        out.reserveCapacity(values.count * 12)
        for start in stride(from: 0, to: values.count, by: width) {
            out += values[start..<(start + width)].map { String(format: "%.\(digits)g", $0) }.joined(separator: ",")
            out += "\n"
        }
        return out
    }

    /// Writes `tensor` as CSV atomically (a temporary file renamed into place).
    public static func writeCSV(_ tensor: Tensor, to path: String) throws {
        do {
            try Data(csv(tensor).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FileError(path: path, "cannot write: \(error.localizedDescription)")
        }
    }
}
