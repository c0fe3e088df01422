import Foundation

/// Reading and writing data sets: rows of numbers as CSV (comma- or whitespace-separated
/// decimal numbers, optional header line, `#` comments) or NumPy `.npy` (float32 or float64,
/// 1-D or 2-D).
///
/// A 1-D `.npy` array of N values is read as N rows of one column (N one-dimensional points),
/// as NumPy's `x[:, None]` would give: that is what a flow over one variable is fitted to.
/// Hexadecimal CSV fields (`0x1p3`, which `strtod` would take) are refused: in a table of
/// measurements they are more likely a mistake than a number.
///
/// Every problem is a ``FileError`` naming the file and, for text, the line and column:
/// missing or empty files, ragged rows, values that are not numbers, NaN or infinities.
public enum DataFile {
    /// Reads a 2-D data set (rows × columns) from CSV or NPY (recognised by its magic bytes);
    /// a 1-D `.npy` array of N values is N rows of one column.
    ///
    /// Values must be finite and, for `.float32`, within its range (±3.4e38): a value that would
    /// become ±∞ is an error naming its line and column. `progress` is called with (bytes read,
    /// file size) while a large file (32 MB or more) is read and parsed.
    public static func read(_ path: String, dtype: DType = .float32, progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        let data = try FileAccess.read(path, progress: progress.map { report in { done, total in report(done / 2, total) } })
        if data.starts(with: [0x93] + Array("NUMPY".utf8)) { return try parseNPY(data, path: path, dtype: dtype) }
        return try parseCSV(data, path: path, dtype: dtype, progress: data.count >= FileAccess.progressThreshold ? progress : nil)
    }

    // MARK: CSV

    /// Parses CSV bytes: comma-separated if the first data line has a comma, otherwise
    /// whitespace-separated; `#` starts a comment line; the first line may be a header (no field
    /// a number). Lines end in LF, CRLF or CR; a leading UTF-8 byte order mark is skipped.
    /// Numbers are decimal (`-1.5e3`), not hexadecimal.
    static func parseCSV(_ data: Data, path: String, dtype: DType, progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Tensor in
            let bytes = raw.bindMemory(to: UInt8.self)
            var parser = CSVParser(bytes: bytes, path: path, dtype: dtype)
            return try parser.parse(progress: progress)
        }
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
        guard open < close else { throw fail("no 'shape' in the header") }
        let shapeText = shapeField[shapeField.index(after: open)..<close]
        let dims = shapeText.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard dims.allSatisfy({ ($0 ?? -1) >= 0 }), (1...2).contains(dims.count) else {
            throw fail("shape (\(clipped(shapeText))) is not 1-D or 2-D with whole sizes")
        }
        let shape = dims.count == 1 ? [dims[0]!, 1] : [dims[0]!, dims[1]!]
        let payload = start + headerLength
        let (count, countOverflow) = shape[0].multipliedReportingOverflow(by: shape[1])
        let (bytesNeeded, bytesOverflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !countOverflow, !bytesOverflow, data.count - payload == bytesNeeded else {
            let needed = countOverflow || bytesOverflow ? "more bytes than a 64-bit size can count" : "\(bytesNeeded) bytes"
            throw fail("shape \(shape) needs \(needed) of data, but the file has \(data.count - payload)")
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
        let largest = dtype == .float32 ? Double(Float.greatestFiniteMagnitude) : .greatestFiniteMagnitude
        if let bad = values.firstIndex(where: { !($0.magnitude <= largest) }) {
            let (r, c) = fortran ? (bad % shape[0], bad / shape[0]) : (bad / shape[1], bad % shape[1])
            let what = values[bad].isFinite ? "outside the float32 range (±3.4e38)" : "not allowed (NaN and infinities are not)"
            throw FileError(path: path, "row \(r + 1), column \(c + 1) is \(values[bad]), \(what)")
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

    /// Writes `tensor` as CSV: atomically to a regular file (a temporary file renamed into
    /// place), directly to a device or FIFO (see ``FileAccess/write(_:to:)``).
    public static func writeCSV(_ tensor: Tensor, to path: String) throws {
        try FileAccess.write(Data(csv(tensor).utf8), to: path)
    }
}

/// The CSV reader of ``DataFile``, on bytes: a field is a number only if `strtod` takes all of
/// it (so `3\0abc` or `1.5x` is an error, not 3 or 1.5).
struct CSVParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let path: String
    let dtype: DType
    private var values: [Double] = []
    private var width: Int?
    private var widthLine = 0
    private var rows = 0
    private var comma: Bool?
    private var sawHeader = false

    init(bytes: UnsafeBufferPointer<UInt8>, path: String, dtype: DType) {
        self.bytes = bytes
        self.path = path
        self.dtype = dtype
    }

    mutating func parse(progress: ((Int, Int) -> Void)?) throws -> Tensor {
        let count = bytes.count
        // A UTF-8 byte order mark (spreadsheets write one) is not part of the first field.
        let bom = count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
        var lineStart = bom ? 3 : 0, lineNumber = 0, lastReport = 0
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && bytes[lineEnd] != 0x0A && bytes[lineEnd] != 0x0D { lineEnd += 1 }
            lineNumber += 1
            try parseLine(lineStart..<lineEnd, lineNumber: lineNumber)
            // LF, CR or CRLF.
            var next = lineEnd + 1
            if lineEnd < count && bytes[lineEnd] == 0x0D && next < count && bytes[next] == 0x0A { next += 1 }
            lineStart = next
            if let progress, lineStart - lastReport >= 8 << 20 {
                progress(count / 2 + Swift.min(lineStart, count) / 2, count)
                lastReport = lineStart
            }
        }
        progress?(count, count)
        guard let width, rows > 0 else { throw FileError(path: path, "contains no rows of numbers") }
        return Tensor(values, shape: [rows, width], dtype: dtype)
    }

    private func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// The column (1-based, in characters) of byte `index` of a line starting at `lineStart`.
    private func column(_ index: Int, lineStart: Int) -> Int {
        var column = 1
        for i in lineStart..<index where bytes[i] & 0xC0 != 0x80 { column += 1 }
        return column
    }

    private mutating func parseLine(_ line: Range<Int>, lineNumber: Int) throws {
        var first = line.lowerBound, last = line.upperBound
        while first < last && isBlank(bytes[first]) { first += 1 }
        while last > first && isBlank(bytes[last - 1]) { last -= 1 }
        if first == last || bytes[first] == UInt8(ascii: "#") { return }
        let useComma: Bool
        if let comma { useComma = comma } else {
            useComma = bytes[first..<last].contains(UInt8(ascii: ","))
            comma = useComma
        }
        // Field ranges (blanks trimmed).
        var fields: [Range<Int>] = []
        if useComma {
            var start = line.lowerBound
            for i in line.lowerBound...line.upperBound where i == line.upperBound || bytes[i] == UInt8(ascii: ",") {
                var a = start, b = i
                while a < b && isBlank(bytes[a]) { a += 1 }
                while b > a && isBlank(bytes[b - 1]) { b -= 1 }
                fields.append(a..<b)
                start = i + 1
            }
        } else {
            var i = first
            while i < last {
                let start = i
                while i < last && !isBlank(bytes[i]) { i += 1 }
                fields.append(start..<i)
                while i < last && isBlank(bytes[i]) { i += 1 }
            }
        }
        let rowStart = values.count
        for field in fields {
            if let value = self.number(field) {
                try check(value, field, line: line, lineNumber: lineNumber)
                values.append(value)
                continue
            }
            if rows == 0 && !sawHeader && values.count == rowStart && fields.allSatisfy({ self.number($0) == nil }) {
                let text = UnsafeBufferPointer(rebasing: bytes[line])
                guard !text.contains(0), String(validating: text, as: UTF8.self) != nil else {
                    throw FileError(path: path, line: lineNumber, "is binary data (a NUL byte or invalid UTF-8), neither CSV text nor a NumPy .npy file")
                }
                sawHeader = true   // a header line
                return
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[field]), as: UTF8.self)
            let problem: String
            if field.isEmpty {
                problem = "empty value"
            } else if bytes[field].contains(0) {
                problem = "'\(clipped(text))' is not a number (it holds a NUL byte: binary data, not CSV text)"
            } else if isHexadecimal(field) {
                problem = "'\(clipped(text))' is a hexadecimal number; write decimal numbers such as 8 or 1.5e3"
            } else {
                problem = "'\(clipped(text))' is not a number"
            }
            throw FileError(path: path, line: lineNumber, column: self.column(field.lowerBound, lineStart: line.lowerBound), problem)
        }
        let found = values.count - rowStart
        if let width, found != width {
            throw FileError(path: path, line: lineNumber, "has \(found) values, but line \(widthLine) has \(width)")
        }
        if width == nil { width = found; widthLine = lineNumber }
        rows += 1
    }

    /// Whether `strtod` reads all of the field as a hexadecimal number (`0x1p3`, `-0X1A`).
    private func isHexadecimal(_ field: Range<Int>) -> Bool {
        hasHexadecimalMark(field) && strtod(field) != nil
    }

    /// The field as a number if `strtod` reads all of it as a decimal number.
    private func number(_ field: Range<Int>) -> Double? {
        hasHexadecimalMark(field) ? nil : strtod(field)
    }

    /// Whether the field holds an x or X, which no decimal number (nor inf or nan) has.
    private func hasHexadecimalMark(_ field: Range<Int>) -> Bool {
        bytes[field].contains { $0 | 0x20 == UInt8(ascii: "x") }
    }

    /// The field's value if `strtod` reads all of it (no NUL byte, nothing left over).
    private func strtod(_ field: Range<Int>) -> Double? {
        let length = field.count
        guard length > 0 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer -> Double? in
            for k in 0..<length {
                let b = bytes[field.lowerBound + k]
                guard b != 0 else { return nil }
                buffer[k] = CChar(bitPattern: b)
            }
            buffer[length] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = Foundation.strtod(buffer.baseAddress!, &end)
            guard let end, end - buffer.baseAddress! == length else { return nil }
            return value
        }
    }

    private func check(_ value: Double, _ field: Range<Int>, line: Range<Int>, lineNumber number: Int) throws {
        let largest = dtype == .float32 ? Double(Float.greatestFiniteMagnitude) : .greatestFiniteMagnitude
        guard !(value.magnitude <= largest) else { return }
        let decimal = bytes[field].allSatisfy { Array("0123456789.eE+-".utf8).contains($0) }   // 1e999, not inf
        let text = clipped(String(decoding: UnsafeBufferPointer(rebasing: bytes[field]), as: UTF8.self))
        let column = self.column(field.lowerBound, lineStart: line.lowerBound)
        if value.isNaN || (value.isInfinite && !decimal) {
            throw FileError(path: path, line: number, column: column, "\(text) is not a finite number (NaN and infinities are not allowed)")
        }
        throw FileError(path: path, line: number, column: column,
                        "\(text) is outside the \(dtype == .float32 ? "float32 range (±3.4e38)" : "float64 range (±1.8e308)")")
    }
}
