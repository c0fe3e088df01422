import Foundation

/// Round tick values (steps of 1, 2 or 5 × 10ᵏ) in [a, b], about `count` of them.
func niceTicks(_ a: Double, _ b: Double, count: Int = 5) -> [Double] {
    guard a.isFinite, b.isFinite, b > a else { return [] }
    let raw = (b - a) / Double(count)
    let magnitude = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
    let first = Foundation.ceil(a / step), last = Foundation.floor(b / step)
    guard first <= last, last - first < 100 else { return [] }
    return stride(from: first, through: last, by: 1).map { $0 * step }
}

/// A tick value without float noise ("0.3", not "0.30000000000000004"; "0", not "-0").
func tickLabel(_ v: Double) -> String {
    let rounded = (v * 1e6).rounded() / 1e6
    return String(format: "%g", rounded == 0 ? 0 : rounded)
}
