/// y = loc + scale·x with fixed scalars; log |det J| = Σ log |scale|.
public struct AffineFixed: ElementwiseFunction {
    /// The shift added after scaling (default 0).
    public var loc: Double
    /// The factor on x (default 1); finite and non-zero, negative values flip the axis.
    public var scale: Double

    /// y = loc + scale·x.
    /// - Parameters:
    ///   - loc: the shift (default 0).
    ///   - scale: the factor, finite and non-zero (default 1: with loc 0, the identity).
    public init(loc: Double = 0, scale: Double = 1) {
        self.loc = loc
        self.scale = scale
    }

    public func validate() throws {
        guard scale != 0, scale.isFinite, loc.isFinite else {
            throw FlowError.invalidConfiguration("AffineFixed needs a finite non-zero scale and a finite loc, got scale \(scale), loc \(loc)")
        }
    }

    public func forward(_ x: Tensor) -> (y: Tensor, logAbsDerivative: Tensor) {
        (x * scale + loc, Tensor.full(x.shape, Foundation.log(Swift.abs(scale)), dtype: x.dtype))
    }

    public func inverse(_ y: Tensor) -> (x: Tensor, logAbsDerivative: Tensor) {
        ((y - loc) / scale, Tensor.full(y.shape, -Foundation.log(Swift.abs(scale)), dtype: y.dtype))
    }
}

import Foundation

extension AffineFixed: SerializablePlan {}
