import Foundation

/// How the rows of a data file map onto a flow, as `flows fit` read them: the file's number of
/// columns, which of them hold the context c of p(y | c), and which y columns held whole numbers
/// dequantized with uniform noise. A model file keeps it (``Flow/dataLayout``), so that files of
/// the same kind are scored without those options again.
///
/// ```swift
/// // Rows c₁, c₂, y₁ of a 3-column file, y₁ a count: p(y₁ | c₁, c₂) with y column 0 dequantized.
/// flow.dataLayout = DataLayout(width: 3, contextColumns: [0, 1], dequantizedColumns: [0])
/// try flow.save(to: "model.safetensors")
/// ```
///
/// A model file holds it as the JSON metadata `data_layout`,
/// `{"context_columns":[0,1],"dequantized_columns":[0],"width":3}` (`context_columns` absent
/// when the context does not come from the data file).
public struct DataLayout: Codable, Equatable, Sendable {
    /// The number of columns of the data file's rows.
    public var width: Int
    /// The columns holding the context, zero-based, in the order the flow takes them; the other
    /// columns, in file order, are y. `nil` when the context is not in the data file (an
    /// unconditional flow, or a context from a file of its own).
    public var contextColumns: [Int]?
    /// The y columns (zero-based among y's columns) that hold whole numbers, dequantized with
    /// uniform noise while fitting. A variational dequantizer's columns are its own
    /// (``Flow/dequantizer``), not listed here.
    public var dequantizedColumns: [Int]

    /// A layout of `width` columns with the context in `contextColumns` (`nil`: none in the file)
    /// and the `dequantizedColumns` y columns dequantized uniformly.
    public init(width: Int, contextColumns: [Int]? = nil, dequantizedColumns: [Int] = []) {
        self.width = width
        self.contextColumns = contextColumns
        self.dequantizedColumns = dequantizedColumns
    }

    private enum CodingKeys: String, CodingKey {
        case width, contextColumns = "context_columns", dequantizedColumns = "dequantized_columns"
    }

    /// Throws unless the layout fits a flow of `eventSize` y values and a context of `contextSize`:
    /// the context columns are `contextSize` distinct columns of the file (or `nil`), the other
    /// columns are the `eventSize` y values, and the dequantized columns are distinct y columns.
    public func validate(eventSize: Int, contextSize: Int) throws {
        func refuse(_ why: String) -> FlowError { .invalidConfiguration("the data layout \(why)") }
        guard width >= 1 else { throw refuse("has rows of \(width) columns") }
        let contextCount = contextColumns?.count ?? 0
        if let contextColumns {
            guard !contextColumns.isEmpty && contextColumns.count == contextSize else {
                throw refuse("names \(contextColumns.count) context columns, but the flow takes a context of \(contextSize) values")
            }
            if let outside = contextColumns.first(where: { !(0..<width).contains($0) }) {
                throw refuse("names context column \(outside) of rows of \(width) columns")
            }
            guard Set(contextColumns).count == contextColumns.count else { throw refuse("names a context column twice") }
        }
        guard width - contextCount == eventSize else {
            throw refuse("has rows of \(width) columns with \(contextCount) context columns, but the flow's events have \(eventSize) values")
        }
        if let outside = dequantizedColumns.first(where: { !(0..<eventSize).contains($0) }) {
            throw refuse("names dequantized y column \(outside), but y has \(eventSize) columns")
        }
        guard Set(dequantizedColumns).count == dequantizedColumns.count else { throw refuse("names a dequantized column twice") }
    }

    /// The layout as a model file's `data_layout` metadata: JSON with sorted keys.
    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
