import ArgumentParser
import Foundation
import NormalizingFlows

/// Data that do not live on all of ℝᴰ, for `flows fit`: bounded or positive columns
/// (`--bounds`, a fixed ``Bounds`` bijector on the data side of the flow) and whole-number
/// columns (`--dequantize`, uniform dequantization while training, or variational with
/// `--dequantizer variational`).
struct SupportOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: "The open interval each y column lies in, so the flow is a density on it: "
                + "LOW:HIGH for every column, or one LOW:HIGH per y column separated by commas; an empty end, inf or -inf is unbounded "
                + "(e.g. 0:1 or 0:,0:1,: for positive, unit-interval and unbounded columns). Every data row must lie strictly inside. "
                + "Default: none (y on all of ℝᴰ)."))
    var bounds: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: "y columns that hold whole numbers (zero-based, as 0,1 or 0-2, or all): "
                + "each training batch adds fresh noise in [0, 1) to them (uniform, or learned with --dequantizer variational), and the reported NLLs bound the integer data's NLL from above, in nats per row "
                + "(flows logprob --dequantize estimates log P(k)). With --bounds, bound such a column by whole numbers, e.g. 0:256 for 0…255. "
                + "Default: none."))
    var dequantize: String?
    @Option(parsing: .unconditional, help: ArgumentHelp(stringLiteral: "How --dequantize fills each unit cell: uniform (fresh U(0, 1) noise) or variational "
                + "(noise drawn from a small conditional flow q(u | k) trained with the model on the variational bound E_q[log p(k + u) − log q(u | k)], "
                + "Ho et al. 2019; tighter, saved with the model, and used by flows logprob to estimate log P(k)). Default: uniform."))
    var dequantizer: Dequantizer = .uniform

    enum Dequantizer: String, ExpressibleByArgument, CaseIterable {
        case uniform, variational
    }

    func validate() throws {
        _ = try parsedBounds(columns: nil)
        if let dequantize { _ = try Self.dequantizedColumns(dequantize, columns: nil) }
        if dequantizer == .variational && dequantize == nil {
            throw ValidationError("--dequantizer variational dequantizes whole-number columns: give them with --dequantize (e.g. --dequantize all)")
        }
    }

    /// The `--bounds` for `columns` y columns (any count when `nil`), or `nil` without the option.
    func parsedBounds(columns: Int?) throws -> Bounds? {
        guard let text = bounds else { return nil }
        func refuse(_ why: String) -> ValidationError {
            ValidationError("--bounds \(FileError.clip(text)): \(why); give LOW:HIGH (for every column) or one LOW:HIGH per y column, "
                            + "an empty end, inf or -inf for none, e.g. 0:1 or 0:,:")
        }
        func end(_ item: Substring, infinite: Double) throws -> Double {
            let item = item.trimmingCharacters(in: .whitespaces).lowercased()
            if (infinite > 0 ? ["", "inf", "+inf"] : ["", "-inf"]).contains(item) { return infinite }
            guard let value = Double(item), value.isFinite else { throw refuse("'\(FileError.clip(item))' is not a finite number") }
            return value
        }
        var pairs: [(Double, Double)] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: ":", omittingEmptySubsequences: false)
            guard ends.count == 2 else { throw refuse("'\(FileError.clip(String(part)))' is not LOW:HIGH") }
            let pair = (try end(ends[0], infinite: -.infinity), try end(ends[1], infinite: .infinity))
            guard pair.0 < pair.1 else { throw refuse("'\(part)' is empty: LOW must be below HIGH") }
            pairs.append(pair)
        }
        guard let columns else { return Bounds(lower: pairs.map(\.0), upper: pairs.map(\.1)) }
        if pairs.count == 1 { pairs = Array(repeating: pairs[0], count: columns) }
        guard pairs.count == columns else {
            throw refuse("it gives \(pairs.count) intervals for \(columns) y columns")
        }
        return Bounds(lower: pairs.map(\.0), upper: pairs.map(\.1))
    }

    /// `rows` with the `dequantized` columns' whole numbers k moved to their cells' midpoints
    /// k + ½, where the flow sees such values (inside any bounds).
    static func cellMidpoints(_ rows: Tensor, dequantized: [Int]) -> Tensor {
        dequantized.isEmpty ? rows : rows + Tensor((0..<rows.shape[1]).map { dequantized.contains($0) ? 0.5 : 0 }, dtype: rows.dtype)
    }

    /// `rows` where the flow sees them: mapped from the `bounds` box onto ℝᴰ (unchanged without bounds).
    static func flowSpace(_ rows: Tensor, bounds: Bounds?) throws -> Tensor {
        guard let bounds else { return rows }
        var generator = RandomGenerator(seed: 0)
        let bijector = try bounds.makeBijector(for: BijectorSpec(eventShape: [rows.shape[1]], dtype: rows.dtype), generator: &generator)
        return try withoutGradients { try bijector.inverse(rows, context: nil).x }
    }

    /// The `--dequantize` columns among `columns` y columns (empty without the option).
    func dequantizedColumns(columns: Int) throws -> [Int] {
        try dequantize.map { try Self.dequantizedColumns($0, columns: columns) } ?? []
    }

    /// A `--dequantize` value (`all` or a column list) as columns among `columns` y columns
    /// (the syntax alone, and `all` as no columns, when `columns` is `nil`).
    static func dequantizedColumns(_ text: String, columns: Int?) throws -> [Int] {
        if text == "all" { return Array(0..<(columns ?? 0)) }
        let list = try parseColumnList(text, option: "--dequantize")
        if let columns, let outside = list.first(where: { $0 >= columns }) {
            throw ValidationError("--dequantize \(FileError.clip(text)): y has \(columns) columns (0-\(columns - 1)), so there is no column \(outside)")
        }
        return list
    }

    /// Refuses the first value of `rows` (from `path`) in a dequantized column that is not a whole
    /// number, or outside `bounds`, by row and column; a dequantized column's whole number k
    /// needs its whole cell [k, k + 1] inside the bounds.
    func check(_ rows: Tensor, of path: String, against bounds: Bounds?, dequantized: [Int]) throws {
        let values = rows.doubles, width = rows.shape[1], cells = Set(dequantized)
        for (i, value) in values.enumerated() where cells.contains(i % width) && value != value.rounded() {
            throw FileError(path: path, "row \(i / width + 1), y column \(i % width) holds \(value): the --dequantize columns must hold whole numbers")
        }
        guard let bounds else { return }
        for (i, value) in values.enumerated() {
            let (a, b) = (bounds.lower[i % width], bounds.upper[i % width])
            if cells.contains(i % width) {
                guard value >= a && value + 1 <= b else {
                    throw FileError(path: path, "row \(i / width + 1), y column \(i % width) holds \(value), whose dequantized cell [\(value), \(value + 1)) "
                                    + "is not inside its --bounds interval (\(a), \(b))")
                }
            } else if !(value > a && value < b) {
                throw FileError(path: path, "row \(i / width + 1), y column \(i % width) holds \(value), outside its --bounds interval (\(a), \(b)); "
                                + "the bounds are open: every value must lie strictly inside")
            }
        }
    }
}
