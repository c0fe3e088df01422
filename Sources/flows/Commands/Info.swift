import ArgumentParser
import NormalizingFlows

/// `flows info`: what a model file holds.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a model's base, plan, dimension, context size (conditional or not) and parameter count.")

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
        if json {
            let dequantizer = flow.dequantizer.map { q in
                Output.RawJSON(text: Output.json([("kind", "variational"), ("columns", q.columns), ("parameters", q.noise.parameterCount),
                                                  ("plan", Output.RawJSON(text: dequantizerPlan!))]))
            }
            print(Output.json([("dimension", dimension), ("parameters", flow.parameterCount), ("dtype", flow.dtype.rawValue),
                               ("context_size", flow.contextSize), ("base", Output.RawJSON(text: base)), ("plan", Output.RawJSON(text: plan)),
                               ("dequantizer", dequantizer)]))
        } else {
            print("dimension:  \(dimension)")
            print(flow.contextSize == 0 ? "context:    none (unconditional: p(y))"
                : "context:    \(flow.contextSize) values (conditional: p(y | c); logprob takes --context-columns or --context, sample --context)")
            print("parameters: \(flow.parameterCount)")
            print("dtype:      \(flow.dtype)")
            print("base:       \(base)")
            print("plan:       \(plan)")
            if let q = flow.dequantizer {
                print("dequantizer: variational over the whole numbers k of y column\(q.columns.count == 1 ? "" : "s") \(q.columns.map(String.init).joined(separator: ",")); "
                      + "q(u | k) has \(q.noise.parameterCount) of the parameters, plan \(dequantizerPlan!) then a sigmoid; logprob estimates log P(k)")
            }
        }
    }
}
