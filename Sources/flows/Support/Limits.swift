import ArgumentParser
import Foundation
import NormalizingFlows

/// Sizes from the command line, checked against this machine before anything is allocated.
///
/// A request needing more than half the physical memory is refused with the option, the
/// estimate and the machine's memory, instead of dying in the allocator.
enum Limits {
    /// Bytes a command may plan to use: half the physical memory.
    static var memory: Double { Double(ProcessInfo.processInfo.physicalMemory) / 2 }

    static func gigabytes(_ bytes: Double) -> String { String(format: "%.3g GB", bytes / 1e9) }

    static func refuse(_ option: String, needs bytes: Double, for what: String) -> ValidationError {
        ValidationError("\(option): \(what) would need about \(gigabytes(bytes)) of memory; this machine allows \(gigabytes(memory)) (half its \(gigabytes(2 * memory)))")
    }

    /// Training `plan` on events of `eventSize` values, `rows` per step: the parameters with
    /// their gradients and Adam's two moments (16 bytes each in float32, 32 in float64), and
    /// the activations of a batch (a few copies of each hidden unit per row).
    static func checkTraining(_ plan: any BijectorPlan, eventSize: Int, contextSize: Int = 0, rows: Int, dtype: DType = .float32,
                              options: String, rowsOption: String) throws {
        let (parameters, units) = try PlanBudget.minimum(of: plan, eventSize: eventSize, contextSize: contextSize)
        let scalar = Double(dtype.byteSize)
        let weights = parameters * 4 * scalar
        guard weights <= memory else {
            throw refuse(options, needs: weights, for: String(format: "a flow with at least %.3g parameters", parameters))
        }
        let activations = Double(rows) * (units + Double(eventSize)) * 8 * scalar
        guard weights + activations <= memory else {
            throw refuse(rowsOption, needs: weights + activations, for: "\(rows) rows per step through \(Int(units)) hidden units")
        }
    }

    /// Drawing `rows` samples of `columns` values and holding them as CSV text (about 20 bytes
    /// per value with the float values).
    static func checkSamples(_ rows: Int, columns: Int, option: String) throws {
        let bytes = Double(rows) * Double(columns) * 24
        guard bytes <= memory else { throw refuse(option, needs: bytes, for: "\(rows) samples of \(columns) values") }
    }
}
