import ArgumentParser
import Foundation
import NormalizingFlows

/// `flows info`: what a model file holds.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's base, plan, dimension, context size (conditional or not) and parameter count.",
        discussion: """
            For a model written by flows fit, also how it read the data file: the context columns and the file's \
            column count (--context-columns), the dequantized columns (--dequantize, uniform or variational) and \
            the bounds (--bounds), which flows logprob applies without those options.
            """)

    @Option(help: "The model file.")
    var model: String
    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let flow = try Flow.load(from: model)
        let plan = try PlanCoding.json(flow.plan)
        let base = try BaseCoding.json(flow.base)
        let dimension = flow.eventShape.reduce(1, *)
        let dequantizerPlan = try flow.dequantizer.map { try PlanCoding.json($0.settings.plan) }
        let layout = flow.dataLayout, uniform = layout?.dequantizedColumns ?? []
        // --bounds: the last part of the plan, on the data side.
        let bounds = (flow.plan as? Compose)?.parts.last as? Bounds
        if json {
            let dequantizer = flow.dequantizer.map { q in
                Output.RawJSON(text: Output.json([("kind", "variational"), ("columns", q.columns), ("parameters", q.noise.parameterCount),
                                                  ("plan", Output.RawJSON(text: dequantizerPlan!))]))
            } ?? (uniform.isEmpty ? nil : Output.RawJSON(text: Output.json([("kind", "uniform"), ("columns", uniform)])))
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let dataLayout = layout.map {
                Output.RawJSON(text: Output.json([("width", $0.width), ("context_columns", $0.contextColumns), ("dequantized_columns", $0.dequantizedColumns)]))
            }
            print(Output.json([("dimension", dimension), ("parameters", flow.parameterCount), ("dtype", flow.dtype.rawValue),
                               ("context_size", flow.contextSize), ("base", Output.RawJSON(text: base)), ("plan", Output.RawJSON(text: plan)),
                               ("dequantizer", dequantizer), ("data_layout", dataLayout), ("bounds", try bounds.map { Output.RawJSON(text: String(decoding: try encoder.encode($0), as: UTF8.self)) })]))
        } else {
            print("dimension:  \(dimension)")
            func list(_ columns: [Int]) -> String { "column\(columns.count == 1 ? "" : "s") \(columnList(columns))" }
            if let layout, let columns = layout.contextColumns {
                let y = (0..<layout.width).filter { !columns.contains($0) }
                print("context:    \(flow.contextSize) values (conditional: p(y | c)) from \(list(columns)) of \(layout.width)-column rows, y from \(list(y)); "
                      + "logprob reads such rows as they are (or takes --context-columns or --context), sample takes --context")
            } else {
                print(flow.contextSize == 0 ? "context:    none (unconditional: p(y))"
                    : "context:    \(flow.contextSize) values (conditional: p(y | c); logprob takes --context-columns or --context, sample --context)")
            }
            print("parameters: \(flow.parameterCount)")
            print("dtype:      \(flow.dtype)")
            print("base:       \(base)")
            print("plan:       \(plan)")
            if let q = flow.dequantizer {
                print("dequantizer: variational over the whole numbers k of y \(list(q.columns)); "
                      + "q(u | k) has \(q.noise.parameterCount) of the parameters, plan \(dequantizerPlan!) then a sigmoid; logprob estimates log P(k)")
            }
            if !uniform.isEmpty {
                print("dequantizer: uniform over the whole numbers k of y \(list(uniform)); logprob estimates log P(k) (--dequantize none: the density at k)")
            }
            if let bounds {
                let intervals = zip(bounds.lower, bounds.upper).map { "(\(Self.number($0)), \(Self.number($1)))" }
                print("bounds:     y in \(intervals.joined(separator: " × ")); logprob refuses rows outside")
            }
        }
    }

    /// A bound as --bounds takes it: a number, or -inf or inf.
    static func number(_ value: Double) -> String {
        value.isFinite ? (value == value.rounded() && value.magnitude < 1e15 ? String(Int(value)) : "\(value)") : (value < 0 ? "-inf" : "inf")
    }
}
