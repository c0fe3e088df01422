import Foundation
import Tensors

/// ``AffineTransform`` in one pass per direction, with hand-written backward passes.
///
/// For raw parameters (μ, s) per element and log σ = L(s) (``AffineScale``):
///
/// - forward: y = x·σ + μ, log |∂y/∂x| = L(s);
///   ∂y/∂x = σ, ∂y/∂μ = 1, ∂y/∂s = x·σ·L′(s).
/// - inverse: x = (y − μ)/σ, log |∂x/∂y| = −L(s);
///   ∂x/∂y = 1/σ, ∂x/∂μ = −1/σ, ∂x/∂s = −x·L′(s).
///
/// Composed from tensor operations (two parameter selections, an exponential, a product and a
/// sum, each recorded with its own backward) this would cost about ten operations per
/// autoregressive layer and step; here it is one loop forward and one per output backward.
enum AffineTransformKernel {
    /// Output and log-derivative for inputs of any shape and parameters of that shape + [2].
    static func evaluate(_ input: Tensor, parameters: Tensor, scale: AffineScale,
                         inverse: Bool) -> (output: Tensor, logAbsDerivative: Tensor) {
        precondition(parameters.shape == input.shape + [2] && parameters.dtype == input.dtype,
                     "affine: parameters \(parameters.shape) \(parameters.dtype) do not fit input \(input.shape) \(input.dtype) + [2]")
        switch input.dtype {
        case .float32: return evaluate(input, parameters: parameters, scale: scale, inverse: inverse, as: Float.self)
        case .float64: return evaluate(input, parameters: parameters, scale: scale, inverse: inverse, as: Double.self)
        }
    }

    private static func evaluate<T: TensorScalar>(_ input: Tensor, parameters: Tensor, scale: AffineScale,
                                                  inverse: Bool, as _: T.Type) -> (output: Tensor, logAbsDerivative: Tensor) {
        let n = input.count
        let sign: T = inverse ? -1 : 1
        // ±L(s), then the factor e^{±L(s)} that multiplies x (forward) or y − μ (inverse).
        let logAbs = Tensor(shape: input.shape, as: T.self) { out in
            parameters.withUnsafeBufferPointer(as: T.self) { raw in
                Parallel.chunks(n) { start, end in
                    if case .exp = scale {
                        for i in start..<end { out[i] = sign * raw[2 * i + 1] }
                    } else {
                        for i in start..<end { out[i] = sign * T(scale.logScaleValue(Double(raw[2 * i + 1]))) }
                    }
                }
            }
        }
        let factor = Tensor(shape: input.shape, as: T.self) { out in
            logAbs.withUnsafeBufferPointer(as: T.self) { logAbs in
                Parallel.chunks(n) { start, end in
                    T.apply(.exp, logAbs.baseAddress! + start, out.baseAddress! + start, count: end - start)
                }
            }
        }
        let output = Tensor(shape: input.shape, as: T.self) { out in
            input.withUnsafeBufferPointer(as: T.self) { x in
            parameters.withUnsafeBufferPointer(as: T.self) { raw in
            factor.withUnsafeBufferPointer(as: T.self) { f in
                Parallel.chunks(n) { start, end in
                    if inverse {
                        for i in start..<end { out[i] = (x[i] - raw[2 * i]) * f[i] }
                    } else {
                        for i in start..<end { out[i] = x[i] * f[i] + raw[2 * i] }
                    }
                }
            }}}
        }

        /// Gradients from an upstream gradient `g`: of the output (`ofOutput`) or of the log-derivative.
        func gradients(_ g: Tensor, ofOutput: Bool, _ needs: [Bool]) -> [Tensor?] {
            // ∂/∂s of the output is x·σ·L′ (forward) or −x·L′ (inverse, x the output); of ±L it is ±L′.
            let (values, valueSign): (Tensor, T) = inverse ? (output, -1) : (input, 1)
            let gInput: Tensor? = ofOutput && needs[0] ? Tensor(shape: input.shape, as: T.self) { gx in
                g.withUnsafeBufferPointer(as: T.self) { g in
                factor.withUnsafeBufferPointer(as: T.self) { f in
                    Parallel.chunks(n) { start, end in
                        for i in start..<end { gx[i] = g[i] * f[i] }
                    }
                }}
            } : nil
            let gRaw: Tensor? = needs[1] ? Tensor(shape: parameters.shape, as: T.self) { gp in
                g.withUnsafeBufferPointer(as: T.self) { g in
                factor.withUnsafeBufferPointer(as: T.self) { f in
                values.withUnsafeBufferPointer(as: T.self) { v in
                parameters.withUnsafeBufferPointer(as: T.self) { raw in
                    Parallel.chunks(n) { start, end in
                        for i in start..<end {
                            let slope: T
                            if case .exp = scale { slope = 1 } else { slope = T(scale.logScaleSlope(Double(raw[2 * i + 1]))) }
                            if ofOutput {
                                gp[2 * i] = inverse ? -g[i] * f[i] : g[i]
                                gp[2 * i + 1] = valueSign * g[i] * v[i] * (inverse ? 1 : f[i]) * slope
                            } else {
                                gp[2 * i] = 0
                                gp[2 * i + 1] = sign * g[i] * slope
                            }
                        }
                    }
                }}}}
            } : nil
            return [gInput, gRaw]
        }
        let inputs = [input, parameters]
        return (Tensor.recordOperation("affine", output: output, inputs: inputs) { g, needs in
                    gradients(g, ofOutput: true, needs)
                },
                Tensor.recordOperation("affineLogDerivative", output: logAbs, inputs: inputs) { g, needs in
                    gradients(g, ofOutput: false, needs)
                })
    }
}

extension AffineScale {
    /// L(s) = log σ for one raw parameter.
    func logScaleValue(_ s: Double) -> Double {
        switch self {
        case .softBounded(let b): b * Foundation.tanh(s / b)
        case .exp: s
        case .clamped(let lo, let hi): Swift.min(Swift.max(s, lo), hi)
        case .sigmoid(let bias): Swift.min(s + bias, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(s + bias)))
        case .softClipped(let b): softClip(s, bound: b)
        case .softplus(let floor):
            Foundation.log(Swift.max(s, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(s))) + floor)
        case .sigmoidWithFloor(let bias, let floor):
            // The derivation is at the case (AffineTransform.swift).
            s + bias <= 0 ? Foundation.log(1 / (1 + Foundation.exp(-(s + bias))) + floor)
                          : Foundation.log1p(floor - 1 / (1 + Foundation.exp(s + bias)))
        }
    }

    /// L′(s), with the clamp's gradient passing inside its bounds only (as ``Tensor/clamped(min:max:)``).
    func logScaleSlope(_ s: Double) -> Double {
        switch self {
        case .softBounded(let b):
            let t = Foundation.tanh(s / b)
            return 1 - t * t
        case .exp: return 1
        case .clamped(let lo, let hi): return s >= lo && s <= hi ? 1 : 0
        case .sigmoid(let bias): return 1 / (1 + Foundation.exp(s + bias))
        case .softClipped(let b): return softClipSlope(s, bound: b)
        case .softplus(let floor):
            let softplus = Swift.max(s, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(s)))
            // With no floor, sigmoid(s)/softplus(s) → 1 where both underflow (s < −745).
            return softplus + floor == 0 ? 1 : 1 / (1 + Foundation.exp(-s)) / (softplus + floor)
        case .sigmoidWithFloor(let bias, let floor):
            let p = 1 / (1 + Foundation.exp(-(s + bias))), q = 1 / (1 + Foundation.exp(s + bias))
            return floor == 0 ? q : q * (p / (p + floor))   // = L′ of log sigmoid with no floor
        }
    }
}

/// s/(1 + |s|/b): the identity near 0, bounded in (−b, b) (zuko's soft clip of log-scales and of
/// spline parameters).
@inline(__always)
func softClip<T: FloatingPoint>(_ s: T, bound b: T) -> T { s / (1 + abs(s) / b) }

/// d/ds s/(1 + |s|/b) = ((1 + |s|/b) − |s|/b)/(1 + |s|/b)² = 1/(1 + |s|/b)², the same on both
/// sides of 0.
@inline(__always)
func softClipSlope<T: FloatingPoint>(_ s: T, bound b: T) -> T {
    let denominator = 1 + abs(s) / b
    return 1 / (denominator * denominator)
}
