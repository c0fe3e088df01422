import Tensors

/// A MADE's weights in the one form that every pass applies: training (forward and a
/// hand-written backward pass), inference in chunks of rows, and sequential inversion.
///
/// The network's input columns are put in degree order: the context (degree 0), then the
/// dimensions by position in the order (1…D). Hidden units are in ascending degree already
/// (``MaskedAutoregressiveNetwork/hiddenDegrees(size:inputs:context:)``). In this order every
/// mask is a prefix per unit (Germain et al. 2015, §4): a hidden unit of degree g reads the
/// inputs of degree ≤ g, which are the first c + g columns or the previous layer's units of
/// degree ≤ g; an output of the dimension at position t reads the last layer's units of degree
/// < t (and, skipping, the first t − 1 dimensions). So a layer is its applied weight
/// W ⊙ M · m (m the parameterization's multiplier) with its columns in degree order, and the
/// number of leading columns each unit reads:
///
/// - forward products skip the zeros past each unit's reach by panels of 16 units, with the
///   weights packed once per layout for every chunk of rows (`PackedGEMMOperand`);
/// - backward products skip them by blocks of units (``Block``);
/// - sequential inversion multiplies only the units whose degree has just become known.
///
/// A layout is made from the parameters when one of them changes, once per training step, and
/// every pass shares it until the next change.
struct MADELayout<T: TensorScalar> {
    /// Units `units` of a layer, which read only the first `columns` inputs.
    struct Block: Equatable {
        var units: Range<Int>
        var columns: Int
    }

    /// One dense layer in degree order.
    struct Layer {
        /// W ⊙ M · m: [units, columns], columns in degree order.
        private(set) var weight: [T]
        private(set) var bias: [T]
        let units: Int, columns: Int
        /// Per unit, how many leading columns it reads.
        let reach: [Int]
        /// The units in blocks for the backward products (one block when splitting does not pay).
        let blocks: [Block]
        /// Wᵀ packed for the forward products.
        private(set) var packed: PackedGEMMOperand<T>

        /// A layer of `units` units over `columns` inputs, unit u reading the first `reach[u]`,
        /// its weights and biases zero until ``refill(weight:bias:columns:multiplier:)``.
        init(units: Int, columns: Int, reach: [Int], blockAlignment: Int) {
            self.weight = [T](repeating: 0, count: units * columns)
            self.bias = [T](repeating: 0, count: units)
            self.units = units
            self.columns = columns
            self.reach = reach
            self.blocks = Self.blocks(reach: reach, columns: columns, alignment: blockAlignment)
            self.packed = self.weight.withUnsafeBufferPointer { a in
                PackedGEMMOperand(transB: true, k: columns, n: units, b: a.baseAddress!, ldb: columns, columnDepths: reach)
            }
        }

        /// Takes new values of the stored weight and bias, in place when no pass holds a copy of
        /// this layer (a pass that does keeps the values it ran with). `order` nil: the stored
        /// columns are already in degree order.
        mutating func refill(weight stored: Tensor, bias storedBias: Tensor?, columns order: [Int]?, multiplier: Double) {
            let (units, columns, reach, fanIn, m) = (units, columns, reach, stored.shape[1], T(multiplier))
            stored.withUnsafeBufferPointer(as: T.self) { w in
                weight.withUnsafeMutableBufferPointer { a in
                    for u in 0..<units {
                        let (source, target) = (w.baseAddress! + u * fanIn, a.baseAddress! + u * columns)
                        if let order {
                            for k in 0..<reach[u] { target[k] = m * source[order[k]] }
                        } else {
                            for k in 0..<reach[u] { target[k] = m * source[k] }
                        }
                    }
                }
            }
            if let storedBias {
                storedBias.withUnsafeBufferPointer(as: T.self) { b in bias.withUnsafeMutableBufferPointer { _ = $0.update(from: b) } }
            }
            weight.withUnsafeBufferPointer { a in packed.pack(transB: true, b: a.baseAddress!, ldb: columns) }
        }

        /// Blocks of at least 32 units (a sixteenth of the layer, ending on a multiple of
        /// `alignment`), each reading the prefix its units reach; one block for layers under
        /// 2¹⁶ weights or when blocks would save less than 15% of the products.
        private static func blocks(reach: [Int], columns: Int, alignment: Int) -> [Block] {
            let units = reach.count, whole = [Block(units: 0..<units, columns: columns)]
            guard units * columns >= 1 << 16 else { return whole }
            let target = Swift.max(32, units / 16)
            var blocks: [Block] = [], start = 0
            for end in 1...units where end == units || (end - start >= target && end % alignment == 0) {
                blocks.append(Block(units: start..<end, columns: reach[start..<end].max() ?? 0))
                start = end
            }
            let work = blocks.reduce(0) { $0 + $1.units.count * $1.columns }
            return Double(work) < 0.85 * Double(units * columns) ? blocks : whole
        }

        /// out[:, units] = activation(bias + A · Wᵀ) for the n rows of A; a ReLU is applied as
        /// the product's tiles are stored.
        func evaluate(a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int, activation: Activation? = nil) {
            bias.withUnsafeBufferPointer { b in
                packed.multiply(m: n, a: a, lda: lda, bias: b.baseAddress!, c: out, ldc: ldc, rectify: activation == .relu)
            }
            if let activation, activation != .relu {
                activation.apply(inPlace: out, rows: n, columns: units, stride: ldc)
            }
        }

        /// out[:, units] += A · Wᵀ for the n rows of A.
        func accumulate(a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
            packed.multiply(m: n, a: a, lda: lda, beta: 1, c: out, ldc: ldc)
        }

        /// out[:, u − units.lowerBound] = bias + A[:, ..<seen] · W[u, ..<seen]ᵀ for the units
        /// `units` (all of whose inputs lie in the first `seen` columns) of the n rows of A.
        func evaluate(units: Range<Int>, seen: Int, a: UnsafePointer<T>, lda: Int, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
            guard !units.isEmpty, n > 0 else { return }
            bias.withUnsafeBufferPointer { b in
                broadcastRow(b.baseAddress! + units.lowerBound, count: units.count, into: out, rows: n, stride: ldc)
            }
            guard seen > 0 else { return }
            weight.withUnsafeBufferPointer { w in
                T.gemm(transA: false, transB: true, m: n, n: units.count, k: seen, alpha: 1,
                       a: a, lda: lda, b: w.baseAddress! + units.lowerBound * columns, ldb: columns, beta: 1, c: out, ldc: ldc)
            }
        }

        /// For the gradient `g` [n, units] (leading dimension `ldg`) of this layer's product with
        /// `a` [n, columns]: gᵀa into `gradWeight` [units, columns] (within each block; what lies
        /// past a unit's reach is not a gradient of anything and is left as it is) and Σ rows of g
        /// into `gradBias`, added to what they hold when `accumulating`, written otherwise; and
        /// g·W written to `gradInput` [n, columns] (leading dimension `ldi`, by default `columns`),
        /// or added to it when `addingToInput`.
        func backward(_ g: UnsafePointer<T>, ldg: Int, input a: UnsafePointer<T>, lda: Int, n: Int,
                      gradWeight: UnsafeMutablePointer<T>, gradBias: UnsafeMutablePointer<T>?, accumulating: Bool,
                      gradInput: UnsafeMutablePointer<T>?, ldi: Int? = nil, addingToInput: Bool = false) {
            let ldi = ldi ?? columns
            if let gradBias {
                if !accumulating { gradBias.update(repeating: 0, count: units) }
                for r in 0..<n { Tensors.accumulate(g + r * ldg, into: gradBias, count: units) }
            }
            // The widest block first: every other block's columns lie within its own, so only it
            // needs to overwrite the input's gradient, and only past it is there anything to zero.
            let active = blocks.filter { $0.columns > 0 && !$0.units.isEmpty }
            let widest = active.indices.max { active[$0].columns < active[$1].columns }
            let order = widest.map { w in [w] + active.indices.filter { $0 != w } } ?? []
            if let gradInput, !addingToInput {
                let written = widest.map { active[$0].columns } ?? 0
                if written < columns { for r in 0..<n { (gradInput + r * ldi + written).update(repeating: 0, count: columns - written) } }
            }
            weight.withUnsafeBufferPointer { w in
                for (rank, index) in order.enumerated() {
                    let block = active[index], first = block.units.lowerBound, count = block.units.count
                    T.gemm(transA: true, transB: false, m: count, n: block.columns, k: n, alpha: 1,
                           a: g + first, lda: ldg, b: a, ldb: lda, beta: accumulating ? 1 : 0, c: gradWeight + first * columns, ldc: columns)
                    if let gradInput {
                        T.gemm(transA: false, transB: false, m: n, n: block.columns, k: count, alpha: 1,
                               a: g + first, lda: ldg, b: w.baseAddress! + first * columns, ldb: columns,
                               beta: addingToInput || rank > 0 ? 1 : 0, c: gradInput, ldc: ldi)
                    }
                }
            }
        }

        /// The stored weight's gradient [units, fan-in] from `sorted`, the applied weight's in degree
        /// order: column `order[k]` (column k when `order` is nil) of unit u takes m · sorted[u, k]
        /// for k < reach[u], the rest 0.
        func storedGradient(_ sorted: UnsafePointer<T>, columns order: [Int]?, fanIn: Int, multiplier: Double) -> Tensor {
            let m = T(multiplier), (units, columns, reach) = (units, columns, reach)
            return Tensor(shape: [units, fanIn], as: T.self) { buffer in
                let out = buffer.baseAddress!
                out.update(repeating: 0, count: units * fanIn)
                for u in 0..<units {
                    let (source, target) = (sorted + u * columns, out + u * fanIn)
                    if let order {
                        for k in 0..<reach[u] { target[order[k]] = m * source[k] }
                    } else {
                        for k in 0..<reach[u] { target[k] = m * source[k] }
                    }
                }
            }
        }
    }

    private(set) var hidden: [Layer]
    private(set) var output: Layer
    private(set) var skip: Layer?
    /// unitEnd[l][g]: how many units of hidden layer l have degree ≤ g (g = 0…D).
    let unitEnd: [[Int]]
    /// Column k of the input in degree order is column `inputColumns[k]` of [x, context].
    let inputColumns: [Int]
    let contextSize: Int
    let activation: Activation
    /// n > 0: the hidden layers are nflows' residual MADE (``DenseAutoregressive/residualBlocks``):
    /// layer 0, then blocks of two layers (2k + 1, 2k + 2), all of one width and one degree per
    /// unit; 0: feedforward layers, each followed by the activation.
    let residualBlocks: Int
    /// The width of a pass's context offsets (``MaskedAutoregressiveNetwork/contextOffsets(_:)``):
    /// (1 + n)·H when the context has layers of its own (``DenseAutoregressive/contextLayers``),
    /// else 0. Block 0 is added to the first layer's pre-activation, block k + 1 to residual
    /// block k's first layer's.
    let offsetWidth: Int

    init(_ network: MaskedAutoregressiveNetwork) {
        let d = network.variableOrder.count, c = network.inputContextSize, p = network.outputsPerDimension
        inputColumns = (0..<c).map { d + $0 } + network.variableOrder
        contextSize = c
        activation = network.activation
        residualBlocks = network.residualBlocks
        var hidden: [Layer] = [], unitEnd: [[Int]] = [], columns = c + d
        for (l, size) in network.hiddenSizes.enumerated() {
            let degrees = MaskedAutoregressiveNetwork.hiddenDegrees(size: size, inputs: d, context: c > 0)
            let previousEnd = l == 0 ? [] : unitEnd[l - 1]
            hidden.append(Layer(units: size, columns: columns, reach: degrees.map { l == 0 ? c + $0 : previousEnd[$0] }, blockAlignment: 1))
            unitEnd.append((0...d).map { g in degrees.filter { $0 <= g }.count })
            columns = size
        }
        // The outputs of the dimension at position t (1…D) read the last layer's units of degree < t.
        var position = [Int](repeating: 0, count: d)
        for (t, dimension) in network.variableOrder.enumerated() { position[dimension] = t + 1 }
        let outputPosition = (0..<(d * p)).map { position[$0 / p] }
        let lastEnd = unitEnd[unitEnd.count - 1]
        output = Layer(units: d * p, columns: columns, reach: outputPosition.map { lastEnd[$0 - 1] }, blockAlignment: p)
        skip = network.skipWeight == nil ? nil
            : Layer(units: d * p, columns: d, reach: outputPosition.map { $0 - 1 }, blockAlignment: p)
        offsetWidth = network.contextLayers.isEmpty ? 0 : (1 + network.residualBlocks) * hidden[0].units
        self.hidden = hidden
        self.unitEnd = unitEnd
        gradientOffsets = Self.gradientOffsets(hidden + [output], skip: skip)
        refresh(from: network)
    }

    /// Takes the network's current parameter values (same order and sizes), in place where no
    /// pass holds a copy: a training step then allocates no weight-sized buffers. The first
    /// layer's columns (and the skip layer's) are permuted into degree order; the others' already
    /// are, as hidden units are sorted by degree.
    mutating func refresh(from network: MaskedAutoregressiveNetwork) {
        let parameterization = network.parameterization, layers = network.layers
        for l in hidden.indices {
            hidden[l].refill(weight: layers[l].weight.value, bias: layers[l].bias?.value, columns: l == 0 ? inputColumns : nil,
                             multiplier: parameterization.multiplier(fanIn: hidden[l].columns))
        }
        output.refill(weight: layers[hidden.count].weight.value, bias: layers[hidden.count].bias?.value, columns: nil,
                      multiplier: parameterization.multiplier(fanIn: output.columns))
        if let skipWeight = network.skipWeight {
            skip?.refill(weight: skipWeight.value, bias: nil, columns: network.variableOrder,
                         multiplier: parameterization.multiplier(fanIn: skipWeight.shape[1]))
        }
    }

    var inputWidth: Int { inputColumns.count }
    var outputWidth: Int { output.units }

    /// a [n, c + D] ← the rows of x [n, D] (zeros when `nil`) and context [n, C] in degree order.
    func gatherInput(x: UnsafePointer<T>?, context: UnsafePointer<T>?, n: Int, into a: UnsafeMutablePointer<T>) {
        let d = inputWidth - contextSize, c = contextSize, width = inputWidth
        for r in 0..<n {
            let row = a + r * width
            if let context { for j in 0..<c { row[j] = context[r * c + j] } }
            for k in c..<width { row[k] = x.map { $0[r * d + inputColumns[k]] } ?? 0 }
        }
    }

    /// A scratch buffer of `count` elements for a pass: a tensor, so that the buffer cache
    /// reuses the same sizes step after step instead of the heap fragmenting under them.
    static func scratch(_ count: Int) -> (tensor: Tensor, pointer: UnsafeMutablePointer<T>) {
        let tensor = Tensor(uninitializedShape: [count], dtype: T.dtype)
        return (tensor, tensor.pointer(T.self))
    }

    /// The widths of the values a pass keeps for its backward pass (``forward(_:lda:n:hidden:output:ldo:)``'s
    /// `hidden` buffers): each hidden layer's activations; for a residual MADE, the stream h₀ and
    /// per block act(hₖ), the block's inner activations and hₖ₊₁. The output layer reads the last.
    var keptWidths: [Int] {
        residualBlocks == 0 ? hidden.map(\.units) : [Int](repeating: hidden[0].units, count: 1 + 3 * residualBlocks)
    }

    /// The scratch elements ``backward(gradOutput:ldo:input:n:hidden:gradients:accumulating:gradInput:scratch:)``
    /// needs for n rows: two (three for a residual MADE) buffers of n × the widest hidden layer.
    func backwardScratchCount(rows n: Int) -> Int {
        (residualBlocks == 0 ? 2 : 3) * n * hidden.map(\.units).max()!
    }

    /// The network on the n rows of `a` (degree order, leading dimension `lda`) and their context
    /// offsets (``offsetWidth`` per row, when the context has layers of its own): the values kept
    /// for the backward pass (``keptWidths``) into `hidden` ([n, width] each, dense), the
    /// parameters into `output` [n, D·P] (leading dimension `ldo`).
    func forward(_ a: UnsafePointer<T>, lda: Int, n: Int, offsets: UnsafePointer<T>? = nil, hidden buffers: [UnsafeMutablePointer<T>],
                 output out: UnsafeMutablePointer<T>, ldo: Int) {
        if residualBlocks > 0 { return forwardResidual(a, lda: lda, n: n, offsets: offsets, kept: buffers, output: out, ldo: ldo) }
        var input = a, ld = lda
        for (l, layer) in hidden.enumerated() {
            if l == 0, let offsets {   // act(W₀a + b₀ + offset)
                layer.evaluate(a: input, lda: ld, n: n, into: buffers[0], ldc: layer.units)
                addOffsets(offsets, block: 0, units: 0..<layer.units, n: n, into: buffers[0], ldc: layer.units)
                activation.apply(inPlace: buffers[0], rows: n, columns: layer.units, stride: layer.units)
            } else {
                layer.evaluate(a: input, lda: ld, n: n, into: buffers[l], ldc: layer.units, activation: activation)
            }
            (input, ld) = (UnsafePointer(buffers[l]), layer.units)
        }
        output.evaluate(a: input, lda: ld, n: n, into: out, ldc: ldo)
        skip?.accumulate(a: a + contextSize, lda: lda, n: n, into: out, ldc: ldo)
    }

    /// nflows' residual MADE (nflows 0.14 ``MADE(use_residual_blocks=True)``, ``MaskedResidualBlock``;
    /// pre-activation blocks after He et al. 2016): h₀ = W₀a + b₀ (no activation); per block
    /// uₖ = act(hₖ), vₖ = act(W₁uₖ + b₁), hₖ₊₁ = hₖ + W₂vₖ + b₂; the output layer reads h_n as it
    /// is. Every block layer has the units' own degrees, so the masks are those of feedforward
    /// hidden layers and the residual sum stays autoregressive. Kept: [h₀, u₀, v₀, h₁, u₁, …, h_n].
    private func forwardResidual(_ a: UnsafePointer<T>, lda: Int, n: Int, offsets: UnsafePointer<T>?, kept b: [UnsafeMutablePointer<T>],
                                 output out: UnsafeMutablePointer<T>, ldo: Int) {
        let h = hidden[0].units
        hidden[0].evaluate(a: a, lda: lda, n: n, into: b[0], ldc: h)
        if let offsets { addOffsets(offsets, block: 0, units: 0..<h, n: n, into: b[0], ldc: h) }
        for k in 0..<residualBlocks {
            let (stream, u, v, next) = (b[3 * k], b[3 * k + 1], b[3 * k + 2], b[3 * k + 3])
            u.update(from: stream, count: n * h)
            activation.apply(inPlace: u, rows: n, columns: h, stride: h)
            if let offsets {   // vₖ = act(W₁uₖ + b₁ + W_c,k·c + b_c,k)
                hidden[2 * k + 1].evaluate(a: u, lda: h, n: n, into: v, ldc: h)
                addOffsets(offsets, block: k + 1, units: 0..<h, n: n, into: v, ldc: h)
                activation.apply(inPlace: v, rows: n, columns: h, stride: h)
            } else {
                hidden[2 * k + 1].evaluate(a: u, lda: h, n: n, into: v, ldc: h, activation: activation)
            }
            hidden[2 * k + 2].evaluate(a: v, lda: h, n: n, into: next, ldc: h)
            Tensors.accumulate(stream, into: next, count: n * h)
        }
        output.evaluate(a: b[3 * residualBlocks], lda: h, n: n, into: out, ldc: ldo)
        skip?.accumulate(a: a + contextSize, lda: lda, n: n, into: out, ldc: ldo)
    }

    /// For sequential inversion: the units of degree `degree` of every layer, for the n rows of
    /// `a` (degree order, leading dimension `lda`) whose first `contextSize + degree` columns are
    /// known, and their context offsets (when the context has layers of its own), into the kept
    /// buffers `b` (``keptWidths``; units of lower degree already there).
    /// A unit of degree g reads only units (and inputs) of degree ≤ g, so these are final.
    func evaluateUnits(ofDegree degree: Int, input a: UnsafePointer<T>, lda: Int, n: Int, offsets: UnsafePointer<T>? = nil,
                       kept b: [UnsafeMutablePointer<T>]) {
        for l in hidden.indices {
            let units = (degree == 0 ? 0 : unitEnd[l][degree - 1])..<unitEnd[l][degree]
            if units.isEmpty { continue }
            let seen = l == 0 ? contextSize + degree : unitEnd[l - 1][degree]
            let ldc = hidden[l].units
            guard residualBlocks > 0 else {
                let target = b[l] + units.lowerBound
                hidden[l].evaluate(units: units, seen: seen, a: l == 0 ? a : UnsafePointer(b[l - 1]), lda: l == 0 ? lda : hidden[l - 1].units,
                                   n: n, into: target, ldc: ldc)
                if l == 0, let offsets { addOffsets(offsets, block: 0, units: units, n: n, into: target, ldc: ldc) }
                activation.apply(inPlace: target, rows: n, columns: units.count, stride: ldc)
                continue
            }
            if l == 0 {
                hidden[0].evaluate(units: units, seen: seen, a: a, lda: lda, n: n, into: b[0] + units.lowerBound, ldc: ldc)
                if let offsets { addOffsets(offsets, block: 0, units: units, n: n, into: b[0] + units.lowerBound, ldc: ldc) }
            } else if l % 2 == 1 {   // the block's first layer, on uₖ = act(hₖ) of these units
                let k = (l - 1) / 2, (stream, u) = (b[3 * k] + units.lowerBound, b[3 * k + 1] + units.lowerBound)
                for r in 0..<n { (u + r * ldc).update(from: stream + r * ldc, count: units.count) }
                activation.apply(inPlace: u, rows: n, columns: units.count, stride: ldc)
                let target = b[3 * k + 2] + units.lowerBound
                hidden[l].evaluate(units: units, seen: seen, a: b[3 * k + 1], lda: ldc, n: n, into: target, ldc: ldc)
                if let offsets { addOffsets(offsets, block: k + 1, units: units, n: n, into: target, ldc: ldc) }
                activation.apply(inPlace: target, rows: n, columns: units.count, stride: ldc)
            } else {                 // the block's second layer, added to the stream
                let k = (l - 2) / 2, (stream, target) = (b[3 * k] + units.lowerBound, b[3 * k + 3] + units.lowerBound)
                hidden[l].evaluate(units: units, seen: seen, a: b[3 * k + 2], lda: ldc, n: n, into: target, ldc: ldc)
                for r in 0..<n { Tensors.accumulate(stream + r * ldc, into: target + r * ldc, count: units.count) }
            }
        }
    }

    /// out[r, u − units.lowerBound] += offsets[r, block·H + u] for the n rows (leading dimension
    /// `ldc` in `out`, ``offsetWidth`` in `offsets`): the context layers' share of a pre-activation.
    func addOffsets(_ offsets: UnsafePointer<T>, block: Int, units: Range<Int>, n: Int, into out: UnsafeMutablePointer<T>, ldc: Int) {
        let start = block * hidden[0].units + units.lowerBound
        for r in 0..<n { Tensors.accumulate(offsets + r * offsetWidth + start, into: out + r * ldc, count: units.count) }
    }

    /// Rows per chunk of ``forward(rows:input:offsets:hidden:output:)``: 132 rows of a 256-unit layer are
    /// 132 KB, in a core's L2 cache with the next layer's, and a multiple of the GEMM kernel's 6 rows.
    static var chunkRows: Int { 132 }

    /// ``forward(_:lda:n:hidden:output:ldo:)`` on `rows` rows, in chunks spread over the threads:
    /// one fork and join per pass rather than per product, and each chunk's activations stay in
    /// the core's cache between layers. `hidden` (each [rows, units]) keeps the activations for a
    /// backward pass; without it each chunk uses scratch.
    func forward(rows: Int, input a: UnsafePointer<T>, offsets: UnsafePointer<T>? = nil, hidden: [UnsafeMutablePointer<T>]?,
                 output out: UnsafeMutablePointer<T>) {
        let chunk = Self.chunkRows, (width, outputs) = (inputWidth, outputWidth), widths = keptWidths
        Parallel.forEach((rows + chunk - 1) / chunk) { index in
            let start = index * chunk, n = Swift.min(chunk, rows - start)
            let offsets = offsets.map { $0 + start * offsetWidth }
            if let hidden {
                forward(a + start * width, lda: width, n: n, offsets: offsets, hidden: zip(hidden, widths).map { $0 + start * $1 },
                        output: out + start * outputs, ldo: outputs)
                return
            }
            let scratch = UnsafeMutablePointer<T>.allocate(capacity: n * widths.reduce(0, +))
            defer { scratch.deallocate() }   // at most a chunk's activations: from the heap
            var offset = 0
            let buffers = widths.map { units in defer { offset += n * units }; return scratch + offset }
            forward(a + start * width, lda: width, n: n, offsets: offsets, hidden: buffers, output: out + start * outputs, ldo: outputs)
        }
    }

    /// Where each layer's weight and bias gradient lies in a gradient buffer (``backward``):
    /// hidden layers, the output layer, then the skip layer's weight.
    private(set) var gradientOffsets: (weights: [Int], biases: [Int], count: Int) = ([], [], 0)

    private static func gradientOffsets(_ layers: [Layer], skip: Layer?) -> (weights: [Int], biases: [Int], count: Int) {
        var weights: [Int] = [], biases: [Int] = [], count = 0
        for layer in layers {
            weights.append(count); count += layer.units * layer.columns
            biases.append(count); count += layer.units
        }
        if let skip { weights.append(count); count += skip.units * skip.columns }
        return (weights, biases, count)
    }

    /// Back through the network for one pass of n rows: from `gradOutput` [n, D·P] (leading
    /// dimension `ldo`), the pass's input `a` and the activations `forward` kept in `hidden`,
    /// every layer's gradients (degree order) into `gradients` (laid out as ``gradientOffsets``),
    /// added to what it holds when `accumulating` (the passes of an inversion), written
    /// otherwise; when `gradInput` is given, ∂/∂a [n, c + D] written there; when `gradOffsets` is,
    /// the gradient of the context offsets [n, ``offsetWidth``] written there (the pre-activations'
    /// gradients they were added to). `scratch` holds ``backwardScratchCount(rows:)`` elements.
    func backward(gradOutput g: UnsafePointer<T>, ldo: Int, input a: UnsafePointer<T>, n: Int,
                  hidden buffers: [UnsafePointer<T>], gradients: UnsafeMutablePointer<T>, accumulating: Bool,
                  gradInput: UnsafeMutablePointer<T>?, gradOffsets: UnsafeMutablePointer<T>? = nil, scratch base: UnsafeMutablePointer<T>) {
        let offsets = gradientOffsets, last = hidden.count, stride = n * hidden.map(\.units).max()!
        if residualBlocks > 0 {
            backwardResidual(gradOutput: g, ldo: ldo, input: a, n: n, kept: buffers, gradients: gradients, accumulating: accumulating,
                             gradInput: gradInput, gradOffsets: gradOffsets, scratch: (base, base + stride, base + 2 * stride))
            return
        }
        var scratch = (base, base + stride)
        output.backward(g, ldg: ldo, input: buffers[last - 1], lda: hidden[last - 1].units, n: n,
                        gradWeight: gradients + offsets.weights[last], gradBias: gradients + offsets.biases[last],
                        accumulating: accumulating, gradInput: scratch.0)
        for l in (0..<last).reversed() {
            let layer = hidden[l]
            activation.multiplyByDerivative(scratch.0, output: buffers[l], count: n * layer.units)
            if l == 0, let gradOffsets { copyOffsetGradient(scratch.0, ldg: layer.units, block: 0, n: n, into: gradOffsets) }
            layer.backward(scratch.0, ldg: layer.units, input: l == 0 ? a : buffers[l - 1], lda: l == 0 ? inputWidth : hidden[l - 1].units,
                           n: n, gradWeight: gradients + offsets.weights[l], gradBias: gradients + offsets.biases[l],
                           accumulating: accumulating, gradInput: l == 0 ? gradInput : scratch.1)
            scratch = (scratch.1, scratch.0)
        }
        skip?.backward(g, ldg: ldo, input: a + contextSize, lda: inputWidth, n: n, gradWeight: gradients + offsets.weights[last + 1],
                       gradBias: nil, accumulating: accumulating, gradInput: gradInput.map { $0 + contextSize }, ldi: inputWidth,
                       addingToInput: true)
    }

    /// ``backward(gradOutput:ldo:input:n:hidden:gradients:accumulating:gradInput:scratch:)`` through
    /// ``forwardResidual(_:lda:n:kept:output:ldo:)``: ∂/∂h_n from the output layer; per block, in
    /// reverse, ∂/∂vₖ = (W₂ᵀ ∂/∂hₖ₊₁)·act′, ∂/∂uₖ = (W₁ᵀ ∂/∂vₖ)·act′ and ∂/∂hₖ = ∂/∂hₖ₊₁ + ∂/∂uₖ
    /// (the identity path); then the first layer, which has no activation.
    private func backwardResidual(gradOutput g: UnsafePointer<T>, ldo: Int, input a: UnsafePointer<T>, n: Int,
                                  kept b: [UnsafePointer<T>], gradients: UnsafeMutablePointer<T>, accumulating: Bool,
                                  gradInput: UnsafeMutablePointer<T>?, gradOffsets: UnsafeMutablePointer<T>?,
                                  scratch: (UnsafeMutablePointer<T>, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>)) {
        let offsets = gradientOffsets, last = hidden.count, h = hidden[0].units, (gh, gv, gu) = scratch
        output.backward(g, ldg: ldo, input: b[3 * residualBlocks], lda: h, n: n, gradWeight: gradients + offsets.weights[last],
                        gradBias: gradients + offsets.biases[last], accumulating: accumulating, gradInput: gh)
        for k in (0..<residualBlocks).reversed() {
            let (first, second) = (2 * k + 1, 2 * k + 2)
            hidden[second].backward(gh, ldg: h, input: b[3 * k + 2], lda: h, n: n, gradWeight: gradients + offsets.weights[second],
                                    gradBias: gradients + offsets.biases[second], accumulating: accumulating, gradInput: gv)
            activation.multiplyByDerivative(gv, output: b[3 * k + 2], count: n * h)
            if let gradOffsets { copyOffsetGradient(gv, ldg: h, block: k + 1, n: n, into: gradOffsets) }
            hidden[first].backward(gv, ldg: h, input: b[3 * k + 1], lda: h, n: n, gradWeight: gradients + offsets.weights[first],
                                   gradBias: gradients + offsets.biases[first], accumulating: accumulating, gradInput: gu)
            activation.multiplyByDerivative(gu, output: b[3 * k + 1], count: n * h)
            Tensors.accumulate(gu, into: gh, count: n * h)
        }
        if let gradOffsets { copyOffsetGradient(gh, ldg: h, block: 0, n: n, into: gradOffsets) }
        hidden[0].backward(gh, ldg: h, input: a, lda: inputWidth, n: n, gradWeight: gradients + offsets.weights[0],
                           gradBias: gradients + offsets.biases[0], accumulating: accumulating, gradInput: gradInput)
        skip?.backward(g, ldg: ldo, input: a + contextSize, lda: inputWidth, n: n, gradWeight: gradients + offsets.weights[last + 1],
                       gradBias: nil, accumulating: accumulating, gradInput: gradInput.map { $0 + contextSize }, ldi: inputWidth,
                       addingToInput: true)
    }

    /// gradOffsets[r, block·H ..< (block + 1)·H] = g[r, ..<H]: an offset's gradient is that of the
    /// pre-activation it was added to.
    private func copyOffsetGradient(_ g: UnsafePointer<T>, ldg: Int, block: Int, n: Int, into gradOffsets: UnsafeMutablePointer<T>) {
        let h = hidden[0].units
        for r in 0..<n { (gradOffsets + r * offsetWidth + block * h).update(from: g + r * ldg, count: h) }
    }

    /// The stored parameters' gradients [W₀, b₀, W₁, b₁, …, skip weight] from a gradient buffer
    /// filled by ``backward``, for `network`'s stored layout.
    func storedGradients(_ gradients: UnsafePointer<T>, network: MaskedAutoregressiveNetwork, needs: [Bool]) -> [Tensor?] {
        let offsets = gradientOffsets, parameterization = network.parameterization
        var result: [Tensor?] = []
        for (l, layer) in (hidden + [output]).enumerated() {
            result.append(needs[2 * l] ? layer.storedGradient(gradients + offsets.weights[l], columns: l == 0 ? inputColumns : nil, fanIn: layer.columns,
                                                              multiplier: parameterization.multiplier(fanIn: layer.columns)) : nil)
            result.append(needs[2 * l + 1] ? Tensor(shape: [layer.units], as: T.self) {
                $0.baseAddress!.update(from: gradients + offsets.biases[l], count: layer.units)
            } : nil)
        }
        if let skip {
            let d = inputWidth - contextSize
            result.append(needs[result.count] ? skip.storedGradient(gradients + offsets.weights[hidden.count + 1], columns: network.variableOrder,
                                                                    fanIn: d, multiplier: parameterization.multiplier(fanIn: d)) : nil)
        }
        return result
    }
}
