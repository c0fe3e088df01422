import Foundation

/// What a plan will allocate, bounded from below before any of it is allocated: a plan read
/// from a file (or typed on a command line) may ask for a hidden size of 10⁹ or 2⁶² layers.
///
/// The bound comes from the plan's JSON (``PlanCoding``), so it covers every saved plan without
/// knowing each bijector: a `hiddenSizes` list [h₁, …, hₖ] is a network with at least
/// h₁h₂ + … + hₖ₋₁hₖ + min(h₁, hₖ)·D weights (its inputs and outputs together cover the D event
/// values), and under `bins` K at least hₖ·T·(3K − 1): the widths, heights and inner derivatives
/// of a spline for each of the T values it transforms (all D for an autoregressive network, which
/// has an `order`; at least ⌊D/2⌋ in a coupling), which for 200000 columns is what fills memory;
/// `bins` splines without a network hold at least K parameters; LULinear, Householder and
/// Sylvester layers hold matrices over the event (D² or D·M values); a residual network's
/// `residualBlocks` n of width H hold 2nH² weights; a plan with `layers` L
/// repeats its content L times, at least one parameter each.
public enum PlanBudget {
    /// The deepest nesting of plans accepted.
    public static let maximumDepth = 64

    /// A lower bound on the parameters and buffer values `plan` holds for events of
    /// `eventSize` values, and on the hidden units one row passes through.
    /// - Throws: ``FlowError/invalidConfiguration(_:)`` for a plan that cannot be encoded or is
    ///   nested deeper than ``maximumDepth``.
    ///
    /// A single dimension without context has no conditioner networks (its autoregressive
    /// layers hold free parameters), so there `hiddenSizes` count for nothing.
    public static func minimum(of plan: any BijectorPlan, eventSize: Int, contextSize: Int = 0) throws -> (parameters: Double, units: Double) {
        try minimum(ofJSON: PlanCoding.json(plan), eventSize: eventSize, contextSize: contextSize)
    }

    /// ``minimum(of:eventSize:contextSize:)`` for a plan's JSON text.
    public static func minimum(ofJSON text: String, eventSize: Int, contextSize: Int = 0) throws -> (parameters: Double, units: Double) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            throw FlowError.invalidConfiguration("the plan is not valid JSON")
        }
        return try walk(object, key: nil, eventSize: Double(Swift.max(eventSize, 1)), networks: eventSize > 1 || contextSize > 0,
                        context: Double(Swift.max(contextSize, 0)), splineOutputs: 0, depth: 0)
    }

    /// `splineOutputs`: the values a network below produces per transformed event value (3K − 1
    /// under `bins` K, else 0: not counted); for a `hiddenSizes` list, all the values its last
    /// layer gives.
    private static func walk(_ value: Any, key: String?, eventSize d: Double, networks: Bool, context: Double, splineOutputs: Double,
                             depth: Int) throws -> (parameters: Double, units: Double) {
        guard depth <= 2 * maximumDepth else {
            throw FlowError.invalidConfiguration("the plan is nested deeper than \(maximumDepth) levels")
        }
        if let dictionary = value as? [String: Any] {
            var total = (parameters: 0.0, units: 0.0)
            let outputs = number(dictionary["bins"]).map { Swift.max(3 * $0 - 1, 0) } ?? splineOutputs
            let transformed = dictionary["order"] != nil ? d : (d / 2).rounded(.down)
            for (k, v) in dictionary where k != "layers" {
                let part = try walk(v, key: k, eventSize: d, networks: networks, context: context,
                                    splineOutputs: k == "hiddenSizes" ? outputs * transformed : outputs, depth: depth + 1)
                total.parameters += part.parameters
                total.units += part.units
            }
            total.parameters += matrices(dictionary, eventSize: d)
            if networks, let blocks = number(dictionary["residualBlocks"]), let widths = dictionary["hiddenSizes"] as? [Any],
               let width = widths.last.flatMap(number) {
                total.parameters += Swift.max(blocks, 0) * 2 * width * width
                total.units += Swift.max(blocks, 0) * 2 * width
            }
            if let layers = number(dictionary["layers"]) {
                total.parameters = Swift.max(total.parameters, 1) * Swift.max(layers, 0)
                total.units = Swift.max(total.units, d) * Swift.max(layers, 0)
            }
            return total
        }
        if let array = value as? [Any] {
            if key == "hiddenSizes" {
                guard networks else { return (0, 0) }
                let sizes = array.map { Swift.max(number($0) ?? 0, 0) }
                guard let first = sizes.first, let last = sizes.last else { return (0, 0) }
                let inner = zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 }
                // The context feeds the first layer (MADE) or every layer's input (coupling): h₁·C at least.
                return (inner + Swift.max(Swift.min(first, last) * d, last * splineOutputs) + first * context,
                        sizes.reduce(0, +) + splineOutputs)
            }
            var total = (parameters: 0.0, units: 0.0)
            for v in array {
                let part = try walk(v, key: key, eventSize: d, networks: networks, context: context, splineOutputs: splineOutputs, depth: depth + 1)
                total.parameters += part.parameters
                total.units += part.units
            }
            return total
        }
        if key == "bins", let n = number(value) {
            return (Swift.max(n, 0), 0)
        }
        return (0, 0)
    }

    /// The D×D-sized parameters of the layers that hold matrices over the event: LULinear (L and
    /// U, 2D²), Householder (K reflection vectors, K·D; K defaults to D) and Sylvester (R and R̃,
    /// 2M², plus Q, D·M, or K Householder vectors, K·D; M is `columns` or D).
    private static func matrices(_ dictionary: [String: Any], eventSize d: Double) -> Double {
        if let type = dictionary["type"] as? String, let options = dictionary["options"] as? [String: Any] {
            switch type {
            case "LULinear": return 2 * d * d
            case "Householder": return Swift.max(number(options["reflections"]) ?? d, 0) * d
            default: return 0
            }
        }
        guard let variant = dictionary["variant"] as? String else { return 0 }   // Sylvester's options
        switch variant {
        case "orthogonal":
            let m = Swift.min(Swift.max(number(dictionary["columns"]) ?? d, 0), d)
            return 2 * m * m + d * m
        case "householder": return 2 * d * d + Swift.max(number(dictionary["reflections"]) ?? d, 0) * d
        default: return 2 * d * d
        }
    }

    private static func number(_ value: Any?) -> Double? {
        guard let value, !(value is String), let n = value as? NSNumber else { return nil }
        let d = n.doubleValue
        return d.isFinite ? d : nil
    }
}
