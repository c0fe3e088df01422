import Foundation
import Testing
import Tensors

// Every Swift call of the Tensors catalog runs here, against the public API only (no
// `@testable`): the listings line by line and each code span of the PyTorch table's Swift
// column. `catalogMatchesTheseExamples` fails when an article and this file drift apart.
// Results are compared with independent computations on plain Swift arrays.

/// The module of "Tensors for PyTorch Users".
final class Net: Module {
    let body: MLP
    let logScale = Parameter(.zeros([1]))

    init(generator: inout RandomGenerator) {
        body = MLP([2, 64, 1], activation: .relu, generator: &generator)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { body(x) * logScale.value.exp() }
}

private func close(_ a: [Double], _ b: [Double], _ tolerance: Double = 1e-5) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { Swift.abs($0 - $1) <= tolerance * Swift.max(1, Swift.abs($1)) }
}

/// x = [[0, 1, 2], [3, 4, 5]] and its rows as arrays, the reference for the checks below.
private let xRows: [[Double]] = [[0, 1, 2], [3, 4, 5]]

@Suite struct DocumentationExamples {
    let x = Tensor(rows: xRows)

    @Test func creatingTensors() {
        #expect(Tensor(rows: [[1, 2], [3, 4]]).shape == [2, 2])
        #expect(Tensor([1, 2, 3], dtype: .float64).dtype == .float64)
        #expect(Tensor.zeros([2, 3]).doubles == [Double](repeating: 0, count: 6))
        #expect(Tensor.ones([2, 3]).doubles == [Double](repeating: 1, count: 6))
        #expect(Tensor.full([2, 3], 7).doubles == [Double](repeating: 7, count: 6))
        #expect(Tensor.zeros(like: x).shape == x.shape)
        #expect(Tensor.arange(0, 10, step: 2).doubles == [0, 2, 4, 6, 8])
        #expect(Tensor.linspace(0, 1, count: 5).doubles == [0, 0.25, 0.5, 0.75, 1])
        #expect(Tensor.eye(3).doubles == [1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(Tensor(scalar: 2.5).shape == [] && Tensor(scalar: 2.5).item == 2.5)
    }

    @Test func randomNumbers() {
        var generator = RandomGenerator(seed: 0)
        let normal = Tensor.randn([4, 2], generator: &generator)
        let uniform = Tensor.uniform([4, 2], generator: &generator)
        let wide = Tensor.uniform([4], low: -1, high: 1, generator: &generator)
        let permutation = generator.permutation(5)
        #expect(normal.shape == [4, 2] && uniform.doubles.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(wide.doubles.allSatisfy { $0 >= -1 && $0 < 1 })
        #expect(permutation.sorted() == [0, 1, 2, 3, 4])
        // The same seed gives the same numbers.
        var again = RandomGenerator(seed: 0)
        #expect(Tensor.randn([4, 2], generator: &again).doubles == normal.doubles)
    }

    @Test func shapesAndDTypes() {
        #expect(x.shape == [2, 3] && x.rank == 2 && x.count == 6)
        #expect(x.dtype == DType.float32 && x.converted(to: .float64).dtype == DType.float64)
        do {
            let x = Tensor(scalar: 3)
            #expect(x.item == 3)
        }
        #expect(x.floats == [0, 1, 2, 3, 4, 5] && x.doubles == xRows.flatMap { $0 })
    }

    @Test func reshapingJoiningAndIndexing() {
        let flat = xRows.flatMap { $0 }
        #expect(x.reshaped(to: [3, 2]).shape == [3, 2] && x.reshaped(to: [3, 2]).doubles == flat)
        #expect(x.reshaped(to: [-1, 2]).shape == [3, 2])
        #expect(x.flattened().shape == [6])
        #expect(x.unsqueezed(axis: 0).shape == [1, 2, 3])
        do {
            let x = Tensor.zeros([1, 3])
            #expect(x.squeezed(axis: 0).shape == [3])
        }
        let transpose = (0..<3).flatMap { j in (0..<2).map { i in xRows[i][j] } }
        #expect(x.permuted([1, 0]).doubles == transpose)
        #expect(x.transposed().doubles == transpose && x.transposed(0, 1).doubles == transpose)
        let (a, b) = (x, x * 10)
        #expect(Tensor.concatenate([a, b], alongAxis: 0).doubles == flat + flat.map { $0 * 10 })
        #expect(Tensor.stack([a, b], alongAxis: 0).shape == [2, 2, 3])
        #expect(x.broadcast(to: [4, 2, 3]).doubles == Array([[Double]](repeating: flat, count: 4).joined()))

        // Subscripts against the rows written out by hand.
        #expect(x[0].doubles == xRows[0])
        #expect(x[-1].doubles == xRows[1])
        #expect(x[0, 1].shape == [] && x[0, 1].item == xRows[0][1])
        #expect(x[1..<2].doubles == xRows[1])
        #expect(x[1...].doubles == xRows[1] && x[..<1].doubles == xRows[0])
        #expect(x[..., 0].doubles == xRows.map { $0[0] })
        #expect(x[0..., 0].doubles == xRows.map { $0[0] })
        #expect(x[1..<2, 2].doubles == [xRows[1][2]])
        #expect(x[..., 1..<3].doubles == xRows.flatMap { $0[1..<3] })
        #expect(x[0..., 0...1].doubles == xRows.flatMap { $0[0...1] })
        #expect(x[1, 1...].doubles == Array(xRows[1][1...]))
        let cube = Tensor(Array(0..<24).map(Double.init), shape: [2, 3, 4])
        #expect(cube[..., 1].shape == [2, 4] && cube[..., 1].doubles == cube.select(alongAxis: 1, index: 1).doubles)
        #expect(x.select(alongAxis: 1, index: 0).doubles == xRows.map { $0[0] })
        do {
            let x = cube
            #expect(x.select(alongAxis: 2, index: 0).doubles == stride(from: 0.0, to: 24, by: 4).map { $0 })
        }
        #expect(x.slice(alongAxis: 1, 0..<2).doubles == xRows.flatMap { $0[0..<2] })
        #expect(x.indexSelect(alongAxis: 1, [2, 0]).doubles == xRows.flatMap { [$0[2], $0[0]] })
        let idx = IndexTensor(shape: [2, 1], indices: [2, 0])
        #expect(x.gathering(alongAxis: 1, indices: idx).doubles == [xRows[0][2], xRows[1][0]])
    }

    /// The subscripts record their operation: the gradient of a picked element is 1 there, 0 elsewhere.
    @Test func subscriptsCarryGradients() {
        let leaf = x.converted(to: .float64).requiringGradient()
        (leaf[..., 1].sum() + leaf[1, 2] * 3).backward()
        #expect(leaf.grad?.doubles == [0, 1, 0, 0, 1, 3])
    }

    @Test func arithmeticAndFunctions() {
        let (a, b) = (x, Tensor(rows: [[2, 2, 2], [1, 5, 9]]))
        let (ar, br) = (a.doubles, b.doubles)
        #expect(close((a + b).doubles, zip(ar, br).map(+)) && close((a * b).doubles, zip(ar, br).map(*)))
        #expect(close((a / b).doubles, zip(ar, br).map(/)) && close((2 * a).doubles, ar.map { 2 * $0 }))
        #expect(close(x.exp().doubles, ar.map(Foundation.exp)) && close(x.sqrt().doubles, ar.map { $0.squareRoot() }))
        #expect(close((x + 1).log().doubles, ar.map { Foundation.log($0 + 1) }) && x.log().doubles[0] == -.infinity)
        #expect(close(x.pow(2).doubles, ar.map { $0 * $0 }) && close(x.pow(0.5).doubles, ar.map { $0.squareRoot() }))
        #expect(close(x.log1p().doubles, ar.map(Foundation.log1p)) && close(x.expm1().doubles, ar.map(Foundation.expm1)))
        #expect(close(x.sigmoid().doubles, ar.map { 1 / (1 + Foundation.exp(-$0)) }))
        #expect(close(x.tanh().doubles, ar.map(Foundation.tanh)) && x.relu().doubles == ar)
        #expect(close(x.softplus().doubles, ar.map { Foundation.log(1 + Foundation.exp($0)) }))
        #expect(close(x.logSigmoid().doubles, ar.map { -Foundation.log(1 + Foundation.exp(-$0)) }))
        #expect(x.clamped(min: -1, max: 1).doubles == ar.map { Swift.min(Swift.max($0, -1), 1) })
        #expect(Tensors.where(a.isGreater(than: b), a, b).doubles == zip(ar, br).map { Swift.max($0, $1) })
        #expect(x.isFinite && !(x.log()).isFinite)
    }

    @Test func reductions() {
        let rowSums = xRows.map { $0.reduce(0, +) }
        #expect(x.sum().item == rowSums.reduce(0, +))
        #expect(x.sum(alongAxis: 1).doubles == rowSums)
        #expect(x.sum(alongAxis: 1, keepingDimensions: true).shape == [2, 1])
        #expect(x.mean().item == 2.5)
        #expect(x.mean(alongAxis: 0).doubles == [1.5, 2.5, 3.5])
        #expect(x.max(alongAxis: 1).doubles == xRows.map { $0.max()! })
        let logSumExp = xRows.map { row in Foundation.log(row.map(Foundation.exp).reduce(0, +)) }
        #expect(close(x.logSumExp(alongAxis: 1).doubles, logSumExp))
        let softmax = zip(xRows, logSumExp).flatMap { row, l in row.map { Foundation.exp($0 - l) } }
        #expect(close(x.softmax(alongAxis: -1).doubles, softmax))
        #expect(close(x.logSoftmax(alongAxis: -1).doubles, softmax.map(Foundation.log)))
        #expect(x.cumulativeSum(alongAxis: 1).doubles == [0, 1, 3, 3, 7, 12])
        do {
            let x = Tensor([3, 1, 2])
            #expect(x.sorted(alongAxis: -1).values.doubles == [1, 2, 3])
        }
        let (edges, v) = (Tensor([0, 1, 2, 3]), Tensor([0.5, 2.5]))
        #expect(searchSorted(edges, v).indices == [1, 3])
    }

    @Test func linearAlgebra() {
        let (a, b) = (x, Tensor(rows: [[1, 0], [0, 1], [1, 1]]))
        // (x·b)ᵢⱼ = Σₖ xᵢₖ bₖⱼ, written out.
        #expect(matmul(a, b).doubles == [2, 3, 8, 9])
        do {
            let b = Tensor(rows: [[1, 0, 1], [0, 1, 1]])
            #expect(matmul(a, b, transposeB: true).doubles == [2, 3, 8, 9])
        }
        let m = Tensor(rows: [[4, 7], [2, 6]], dtype: .float64)
        #expect(close(m.matrixInverse().doubles, [0.6, -0.7, -0.2, 0.4]))
        let (w, bias) = (Tensor(rows: [[1, 1, 1]]), Tensor([0.5]))
        #expect(linear(x, weight: w, bias: bias).doubles == xRows.map { $0.reduce(0.5, +) })
    }

    @Test func autograd() {
        var x = Tensor([1, 2, 3], dtype: .float64)
        #expect(!x.requiresGradient)
        x = x.requiringGradient()
        #expect(x.requiresGradient)
        let loss = x.exp().sum()
        loss.backward()
        #expect(close(x.grad!.doubles, [1, 2, 3].map(Foundation.exp)))
        #expect(!x.detached().requiresGradient)
        let untracked = withoutGradients { x * 2 }
        #expect(!untracked.requiresGradient)
        #expect(gradCheck([x]) { $0[0].exp().sum() }.maxRelativeError < 1e-6)
    }

    @Test func requiringGradientListing() {
        let w = Tensor([1, 2, 3]).requiringGradient()
        let loss = (w * w).sum()
        loss.backward()
        print(w.grad!.floats)                   // [2.0, 4.0, 6.0]
        #expect(w.grad!.floats == [2, 4, 6])
    }

    @Test func modulesParametersAndOptimizers() {
        var generator = RandomGenerator(seed: 1)
        let t = Tensor([1, 2])
        let p = Parameter(t)
        #expect(p.value.doubles == [1, 2] && p.grad == nil)
        let layer = Linear(3, 2, generator: &generator)
        #expect(layer.weight.shape == [2, 3] && layer(x).shape == [2, 2])
        let mlp = MLP([2, 64, 1], activation: .relu, generator: &generator)
        #expect(mlp.namedParameters.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        let model = Net(generator: &generator)
        #expect(model.parameters.count == 5)
        #expect(model.namedParameters.last?.name == "log_scale")
        model.setTraining(true)
        model.setTraining(false)
        let params = model.parameters
        _ = Adam(model.parameters, learningRate: 1e-3)
        let adamW = Adam(params, learningRate: 1e-3, weightDecay: 0.01, decoupledWeightDecay: true)
        #expect(adamW.decoupledWeightDecay)
        let opt = SGD(params, learningRate: 0.1, momentum: 0.9)
        let input = Tensor.randn([8, 2], generator: &generator)
        // The gradients of this loss, taken first, give the expected first SGD step θ − η·g.
        model(input).square().mean().backward()
        let expected = params.map { p in zip(p.value.doubles, p.grad!.doubles).map { $0 - 0.1 * $1 } }
        let loss = model(input).square().mean()
        opt.step(minimizing: loss)
        #expect(zip(params, expected).allSatisfy { close($0.value.doubles, $1) })
        (model(input).square().sum() * 1e6).backward()
        let norm = clipGradientNorm(params, maxNorm: 1)
        let clipped = params.compactMap(\.grad).map { $0.doubles.map { $0 * $0 }.reduce(0, +) }.reduce(0, +).squareRoot()
        #expect(norm > 1 && Swift.abs(clipped - 1) < 1e-5)
        let schedule = CosineAnnealing(base: 1e-3, totalSteps: 1000)
        #expect(schedule.learningRate(atStep: 0) == 1e-3 && schedule.learningRate(atStep: 1000) == 0)
    }

    /// "Tensors for PyTorch Users": the training loop fits y = x₁ + x₂.
    @Test func trainingLoop() {
        var generator = RandomGenerator(seed: 0)
        let model = Net(generator: &generator)
        let optimizer = Adam(model.parameters, learningRate: 1e-2)
        let x = Tensor.randn([256, 2], generator: &generator)
        let y = x.sum(alongAxis: 1, keepingDimensions: true)
        let initial = (model(x) - y).square().mean().item
        for _ in 0..<200 {
            optimizer.step(minimizing: (model(x) - y).square().mean())
        }
        #expect((model(x) - y).square().mean().item < initial / 10)
    }

    /// The landing page: an MLP trained towards tanh.
    @Test func landingPage() {
        var generator = RandomGenerator(seed: 0)
        let net = MLP([2, 64, 64, 2], activation: .relu, generator: &generator)
        let adam = Adam(net.parameters, learningRate: 1e-3)
        let x = Tensor.randn([512, 2], generator: &generator)
        let initial = (net(x) - x.tanh()).square().mean().item
        for _ in 0..<100 {
            adam.step(minimizing: (net(x) - x.tanh()).square().mean())
        }
        #expect((net(x) - x.tanh()).square().mean().item < initial)
    }

    // The listings in the symbol documentation, one test each, against sums written out.

    @Test func gemmListing() {
        let a: [Float] = [1, 2, 3, 4, 5, 6]        // 2×3
        let b: [Float] = [1, 0, 0, 1, 1, 1]        // 3×2
        var c = [Float](repeating: 0, count: 4)    // 2×2
        Float.gemm(transA: false, transB: false, m: 2, n: 2, k: 3, alpha: 1, a: a, lda: 3,
                   b: b, ldb: 2, beta: 0, c: &c, ldc: 2)   // c == [4, 5, 10, 11]
        var expected = [Float](repeating: 0, count: 4)
        for i in 0..<2 {
            for j in 0..<2 {
                for k in 0..<3 { expected[i * 2 + j] += a[i * 3 + k] * b[k * 2 + j] }
            }
        }
        #expect(c == expected && c == [4, 5, 10, 11])
    }

    @Test func matmulListing() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        let c = matmul(a, b)                              // [[4, 5], [10, 11]]
        let g = matmul(a, a, transposeB: true)            // a·aᵀ, shape [2, 2]
        #expect(c.doubles == [4, 5, 10, 11])
        #expect(g.doubles == [14, 32, 32, 77])
    }

    @Test func tensorAndParameterListings() {
        let x = Tensor([1, 2, 3, 4], shape: [2, 2])
        let y = (x * x).sum()          // 30
        #expect(y.item == 30)
        let w = Parameter(Tensor([1, 2, 3] as [Float]))
        let loss = (w.value * w.value).sum()       // Σ w²
        loss.backward()
        // w.grad holds 2w = [2, 4, 6]
        #expect(w.grad?.doubles == [2, 4, 6])
    }

    @Test func layerAndOptimizerListings() {
        var generator = RandomGenerator(seed: 0)
        let layer = Linear(3, 2, generator: &generator)
        let y = layer(Tensor.ones([5, 3]))      // shape [5, 2]
        #expect(y.shape == [5, 2])
        let sgd = SGD(layer.parameters, learningRate: 0.1, momentum: 0.9)
        #expect(sgd.parameters.count == 2)
        let net = MLP([2, 32, 1], generator: &generator)
        let adam = Adam(net.parameters, learningRate: 1e-3)
        let x = Tensor.randn([64, 2], generator: &generator)
        let loss = adam.step(minimizing: net(x).square().mean())
        #expect(loss.isFinite && adam.stepCount == 1)
    }

    /// Every line of every Swift listing, and every code span in the Swift column of a table, of the
    /// Tensors catalog appears in this file.
    @Test func catalogMatchesTheseExamples() throws {
        let here = URL(fileURLWithPath: #filePath)
        let source = try String(contentsOf: here, encoding: .utf8)
        let lines = Set(source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        let catalog = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/Tensors/Tensors.docc")
        var listingLines = 0, tableCalls = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: catalog.path) where file.hasSuffix(".md") {
            let text = try String(contentsOf: catalog.appendingPathComponent(file), encoding: .utf8)
            for block in text.components(separatedBy: "```swift\n").dropFirst() {
                for line in block.components(separatedBy: "```")[0].split(separator: "\n") {
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    if trimmed.isEmpty || trimmed.hasPrefix("import ") { continue }
                    #expect(lines.contains(trimmed), "\(file): listing line not run by the tests: \(trimmed)")
                    listingLines += 1
                }
            }
            // Table rows "| PyTorch | Tensors |": each code span of the second column.
            for row in text.split(separator: "\n") where row.hasPrefix("| `") {
                let cells = row.split(separator: "|", omittingEmptySubsequences: false)
                guard cells.count >= 3 else { continue }
                for (index, span) in cells[2].split(separator: "`", omittingEmptySubsequences: false).enumerated() where index % 2 == 1 {
                    #expect(source.contains(span), "\(file): table call not run by the tests: \(span)")
                    tableCalls += 1
                }
            }
        }
        #expect(listingLines > 20 && tableCalls > 100)
    }
}
