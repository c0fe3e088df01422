extension Tensor {
    /// Computes and back-propagates `parts` one-element losses concurrently, one per pool thread,
    /// and adds the sum of their gradients to the leaves: the same gradients as
    /// `(loss(0) + loss(1) + …).backward()`, up to the order of floating-point additions.
    ///
    /// This is data parallelism for small models. A training step of a small flow is hundreds of
    /// operations of 10–100 µs each; splitting every operation over the threads leaves them
    /// waiting on one another between operations. Splitting the *batch* instead gives each thread
    /// a whole forward and backward pass on its rows, and the operations inside run serially on
    /// their thread (a ``Parallel`` loop started inside a running loop does), so the threads meet
    /// once per step.
    ///
    /// Requirements, which the caller guarantees:
    /// - The losses' graphs share no recorded interior tensor; they may share leaves (parameters).
    ///   Typically each part applies the same model to its own slice of a batch.
    /// - Nothing in the computation mutates shared state (running statistics, lazy
    ///   initialisation from the first batch).
    /// - Task-local settings such as ``GradientMode`` are not inherited by the pool's thread: bind
    ///   any the computation needs inside `loss`.
    ///
    /// - Parameters:
    ///   - parts: how many losses; usually ``Parallel/workers``.
    ///   - loss: the `i`-th loss, a tensor with one element that requires gradients.
    /// - Returns: the losses' values, in order.
    /// - Throws: the first error that `loss` threw (no gradient is added then).
    package static func backward(parts: Int, _ loss: (Int) throws -> Tensor) throws -> [Double] {
        precondition(parts >= 1, "backward(parts:) needs at least one part, got \(parts)")
        precondition(GradientMode.isEnabled, "backward(parts:) inside withoutGradients records nothing to differentiate")
        typealias LeafGradients = [ObjectIdentifier: (node: GradNode, grad: Tensor)]
        var results = [Result<(value: Double, leaves: LeafGradients), any Error>?](repeating: nil, count: parts)
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = UncheckedSendable(buffer.baseAddress!)
            Parallel.forEach(parts) { i in
                slots.value[i] = Result {
                    let value = try loss(i)
                    guard let root = value.gradNode else {
                        preconditionFailure("part \(i) of backward(parts:) does not require gradients")
                    }
                    precondition(value.count == 1, "part \(i) of backward(parts:) has shape \(value.shape), not one element")
                    var leaves: LeafGradients = [:]
                    propagate(from: root, seed: .ones(value.shape, dtype: value.dtype), retainGraph: false) { leaf, g in
                        let key = ObjectIdentifier(leaf)
                        if leaves[key] == nil {
                            leaves[key] = (leaf, g.detached())
                        } else {
                            leaves[key]!.grad.addInPlace(g)
                        }
                    }
                    return (value.item, leaves)
                }
            }
        }
        // Each leaf's partial gradients, moved out of the parts' results so that the first is the
        // only reference to its buffer and the others add into it in place; one leaf per item.
        var values: [Double] = []
        var perLeaf: [[(node: GradNode, grad: Tensor)]] = []
        var index: [ObjectIdentifier: Int] = [:]
        for i in results.indices {
            let (value, leaves) = try results[i]!.get()
            results[i] = nil
            values.append(value)
            for (key, entry) in leaves {
                if let k = index[key] { perLeaf[k].append(entry) } else { index[key] = perLeaf.count; perLeaf.append([entry]) }
            }
        }
        perLeaf.withUnsafeMutableBufferPointer { buffer in
            let leaves = UncheckedSendable(buffer.baseAddress!)
            Parallel.forEach(buffer.count) { k in
                let entries = leaves.value + k
                for j in 1..<entries.pointee.count {
                    let other = entries.pointee[j].grad
                    entries.pointee[0].grad.addInPlace(other)
                }
                entries.pointee[0].node.accumulate(entries.pointee[0].grad)
            }
        }
        return values
    }
}
