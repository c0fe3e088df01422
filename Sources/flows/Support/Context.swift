import ArgumentParser
import Foundation
import NormalizingFlows

/// Where the context of a conditional flow p(y | c) comes from, for `flows fit` and `flows
/// logprob`: columns of the data file (`--context-columns`), or a file of its own with one
/// context row per data row (`--context`); for `flows logprob` without either, the context
/// columns recorded in the model file by `flows fit` (``DataLayout``).
struct ContextOptions: ParsableArguments {
    @Option(name: .customLong("context-columns"), parsing: .unconditional,
            help: ArgumentHelp(stringLiteral: "Columns of the data file that hold the context c of a conditional flow p(y | c): zero-based numbers and ranges, "
                + "e.g. 0,1 or 0-2 or 0,3-4, in the order the model takes them; the other columns, in file order, are y. "
                + "fit records them in the model file, and logprob uses the recorded ones when neither option is given. "
                + "Default: none (no context), or for logprob the model's recorded columns."))
    var contextColumns: String?
    @Option(help: ArgumentHelp(stringLiteral: "A file with one context row per data row (\(dataFormats)), for a conditional flow p(y | c). "
                + "Default: none; the context then comes from --context-columns, if given (or the model's recorded columns)."))
    var context: String?

    func validate() throws {
        if contextColumns != nil && context != nil {
            throw ValidationError("--context-columns and --context both give the context; give one of them")
        }
        _ = try columns()
    }

    /// Whether a context was asked for.
    var isGiven: Bool { contextColumns != nil || context != nil }

    /// The option as the user gave it, for messages: `--context-columns 0,1` or `--context c.csv`.
    var described: String {
        if let contextColumns { return "--context-columns \(FileError.clip(contextColumns))" }
        return context.map { "--context \($0)" } ?? "no --context-columns or --context"
    }

    /// The parsed `--context-columns` (duplicates refused), `nil` when it is not given.
    func columns() throws -> [Int]? {
        try contextColumns.map { try parseColumnList($0, option: "--context-columns") }
    }

    /// Splits the rows read from `path` into y and the context, or returns them whole with no
    /// context when none was asked for. The context is read from `contextPath` (default
    /// `--context`) when the context comes from a file of its own.
    func split(_ rows: Tensor, of path: String, contextPath: String? = nil, dtype: DType) throws -> (y: Tensor, context: Tensor?) {
        if let columns = try columns() { return try Self.split(rows, of: path, columns: columns, described: described) }
        guard let file = contextPath ?? context else { return (rows, nil) }
        let context = try readData(file, dtype: dtype)
        guard context.shape[0] == rows.shape[0] else {
            throw FileError(path: file, "has \(context.shape[0]) rows, but \(path) has \(rows.shape[0]); the context file needs one context row per data row")
        }
        return (rows, context)
    }

    /// The `columns` of `rows` (from `path`) as the context and the others, in file order, as y;
    /// columns beyond the rows, or all of them, are refused naming the option (`described`).
    static func split(_ rows: Tensor, of path: String, columns: [Int], described: String) throws -> (y: Tensor, context: Tensor) {
        let width = rows.shape[1]
        if let outside = columns.first(where: { $0 >= width }) {
            throw FileError(path: path, "has \(width) columns (0-\(width - 1)), so \(described) names column \(outside), which it does not have")
        }
        guard columns.count < width else {
            throw FileError(path: path, "has \(width) columns and \(described) takes all of them as the context, leaving none for y; name fewer columns")
        }
        let context = Set(columns), rest = (0..<width).filter { !context.contains($0) }
        return (rows.indexSelect(alongAxis: 1, rest), rows.indexSelect(alongAxis: 1, columns))
    }

    /// Reads `path` and splits it as ``split(_:of:contextPath:dtype:)`` does for `flow`: a
    /// conditional flow needs a context of its size, an unconditional one takes none, and y must
    /// have the model's dimension. Without --context-columns, --context or `contextPath`, the
    /// context columns recorded in the model file (``Flow/dataLayout``) are used, for rows of the
    /// recorded width.
    func load(_ path: String, for flow: Flow, model: String, contextPath: String? = nil) throws -> (y: Tensor, context: Tensor?) {
        if !isGiven, contextPath == nil, let layout = flow.dataLayout, let columns = layout.contextColumns {
            let rows = try readData(path, dtype: flow.dtype), list = columnList(columns)
            guard rows.shape[1] == layout.width else {
                let yWidth = layout.width - columns.count
                throw CommandError("\(path) has \(rows.shape[1]) columns, but \(model) was fitted on \(layout.width)-column rows with context columns \(list): "
                    + "give rows of \(layout.width) columns, or --context FILE with y-only rows (\(yWidth) column\(yWidth == 1 ? "" : "s")), "
                    + "or --context-columns for another layout")
            }
            let (y, context) = try Self.split(rows, of: path, columns: columns, described: "the recorded context columns \(list)")
            return (try checkColumns(y, of: path, for: flow), context)
        }
        try checkConditional(flow, model: model, accepted: "--context-columns COLUMNS (the data file's context columns) or --context FILE")
        let (y, context) = try split(readData(path, dtype: flow.dtype), of: path, contextPath: contextPath, dtype: flow.dtype)
        if let context, context.shape[1] != flow.contextSize {
            let source = contextColumns == nil ? "\(contextPath ?? self.context!) has \(context.shape[1]) columns" : "\(described) selects \(context.shape[1]) columns"
            throw CommandError("\(source), but \(model) takes a context of \(flow.contextSize) values")
        }
        let after = contextColumns == nil ? "" : " after the \(context!.shape[1]) context columns of \(described)"
        return (try checkColumns(y, of: path, for: flow, after: after), context)
    }

    /// Refuses a conditional model without a context and an unconditional one with a context.
    func checkConditional(_ flow: Flow, model: String, accepted: String) throws {
        try checkContextGiven(isGiven, described: described, flow: flow, model: model, accepted: accepted)
    }
}

/// Refuses a conditional model without a context (naming what is `accepted`) and an
/// unconditional one with a context (`described`, the option and value given).
func checkContextGiven(_ given: Bool, described: String, flow: Flow, model: String, accepted: String) throws {
    if flow.contextSize > 0 && !given {
        throw CommandError("\(model) is a conditional model p(y | c) with a context of \(flow.contextSize) values: give \(accepted)")
    }
    if flow.contextSize == 0 && given {
        throw CommandError("\(described): \(model) is not a conditional model (it takes no context); leave the option out")
    }
}

/// Columns as ``parseColumnList(_:option:)`` reads them back: `0,2`.
func columnList(_ columns: [Int]) -> String { columns.map(String.init).joined(separator: ",") }

/// Zero-based column numbers and ranges such as `0,1`, `0-2` or `0,3-4`, in the order given;
/// duplicates and more than a million columns are refused, naming `option`.
func parseColumnList(_ text: String, option: String) throws -> [Int] {
    var columns: [Int] = [], named = Set<Int>()
    func refuse(_ why: String) -> ValidationError {
        ValidationError("\(option) \(FileError.clip(text)): \(why); give zero-based column numbers or ranges such as 0,1 or 0-2")
    }
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
        let item = part.trimmingCharacters(in: .whitespaces)
        let ends = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let first = ends.first ?? nil, let last = ends.last ?? nil, first >= 0, last >= 0 else {
            throw refuse("'\(FileError.clip(item))' is not a column number or a range of them")
        }
        guard first <= last else { throw refuse("the range '\(item)' runs backwards") }
        guard last - first < 1_000_000 - columns.count else { throw refuse("it names more than 1000000 columns") }
        for column in first...last {
            guard named.insert(column).inserted else { throw refuse("column \(column) is named twice") }
            columns.append(column)
        }
    }
    return columns
}
