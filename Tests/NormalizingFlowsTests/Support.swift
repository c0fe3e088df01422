import Foundation
import Testing
@testable import NormalizingFlows

/// One folder per test process under the system's temporary folder, removed when the process
/// exits; `scratchFolder()` makes a fresh subfolder in it for one test.
private let scratchRoot: String = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("flows-tests-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: scratchRoot) }
    return url.path
}()

func scratchFolder() -> String {
    let path = "\(scratchRoot)/\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// log |det A| of a square matrix (row-major) by LU decomposition with partial pivoting, in Double.
func logAbsDeterminant(_ a: [Double], n: Int) -> Double {
    var m = a
    var logDet = 0.0
    for col in 0..<n {
        let pivot = (col..<n).max { abs(m[$0 * n + col]) < abs(m[$1 * n + col]) }!
        if m[pivot * n + col] == 0 { return -.infinity }
        if pivot != col { for j in 0..<n { m.swapAt(col * n + j, pivot * n + j) } }
        let p = m[col * n + col]
        logDet += Foundation.log(abs(p))
        for r in (col + 1)..<n {
            let factor = m[r * n + col] / p
            if factor != 0 { for j in col..<n { m[r * n + j] -= factor * m[col * n + j] } }
        }
    }
    return logDet
}

/// The Jacobian ∂y/∂x of one event, by reverse-mode autograd: row k is the gradient of y_k.
func jacobian(of f: (Tensor) throws -> Tensor, at x: Tensor) rethrows -> [Double] {
    let n = x.count
    var rows: [Double] = []
    for k in 0..<n {
        let leaf = x.requiringGradient()
        let y = try f(leaf)
        precondition(y.count == n, "the map must keep the number of elements")
        var seed = [Double](repeating: 0, count: n)
        seed[k] = 1
        if y.requiresGradient {
            y.backward(Tensor(seed, shape: y.shape, dtype: .float64))
            rows += leaf.grad?.doubles ?? [Double](repeating: 0, count: n)
        } else {
            rows += [Double](repeating: 0, count: n)
        }
    }
    return rows
}

/// Central differences (f(v + h·eₖ) − f(v − h·eₖ)) / 2h of `f` at `values`, h = 1e-6·max(1, |vₖ|).
func centralDifferences(_ values: [Double], _ f: ([Double]) throws -> Double) rethrows -> [Double] {
    try values.indices.map { k in
        let h = 1e-6 * max(1, abs(values[k]))
        var up = values, down = values
        up[k] += h; down[k] -= h
        return (try f(up) - f(down)) / (2 * h)
    }
}

func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Samples from `domain`, shape `shape`, Float64.
func sample(in domain: Domain, shape: [Int], generator: inout RandomGenerator) -> Tensor {
    let z = Tensor.randn(shape, generator: &generator, dtype: .float64)
    switch domain {
    case .real: return z * 1.5
    case .positive: return z.exp()
    case .unitInterval: return z.sigmoid()
    case .open(let a, let b): return z.sigmoid() * (b - a) + a
    case .greaterThan(let a): return z.exp() + a
    case .circle: return z.sigmoid() * (2 * .pi) - .pi
    case .box:
        let values = z.doubles.enumerated().map { i, v -> Double in
            let (a, b) = domain.bounds(ofElement: i)
            switch (a.isFinite, b.isFinite) {
            case (true, true): return a + (b - a) / (1 + Foundation.exp(-v))
            case (true, false): return a + Foundation.exp(v)
            case (false, true): return b - Foundation.exp(v)
            case (false, false): return 1.5 * v
            }
        }
        return Tensor(values, shape: shape, dtype: .float64)
    }
}

/// `body`'s result with `flow` in training mode (``Flow/isTraining``), evaluation afterwards.
func training<R>(_ flow: Flow, _ body: () throws -> R) rethrows -> R {
    flow.isTraining = true
    defer { flow.isTraining = false }
    return try body()
}

/// The largest |autograd − central differences| over every parameter of a module, for the
/// gradient of `objective` (Float64 parameters); each parameter's error must stay below 1e-7 of
/// its gradient's largest entry (or of 1). Leaves the parameters as they were and their
/// gradients zeroed.
func parameterGradientError(_ module: any Module, _ objective: () throws -> Tensor) throws -> Double {
    for p in module.parameters { p.zeroGrad() }
    try objective().backward()
    var worst = 0.0
    for parameter in module.parameters {
        let analytic = try #require(parameter.grad).doubles
        let start = parameter.value.doubles
        let numeric = try centralDifferences(start) { values in
            parameter.value = Tensor(values, shape: parameter.shape, dtype: .float64)
            return try withoutGradients { try objective().item }
        }
        parameter.value = Tensor(start, shape: parameter.shape, dtype: .float64)
        let error = maxAbsDifference(analytic, numeric)
        worst = Swift.max(worst, error)
        #expect(error < 1e-7 * Swift.max(1, analytic.map(Swift.abs).max()!), "\(parameter.name)")
    }
    for p in module.parameters { p.zeroGrad() }
    return worst
}
