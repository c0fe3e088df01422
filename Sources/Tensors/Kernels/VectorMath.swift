// TEMPORARY scalar stub; replaced by the SIMD8 kernels.
import Foundation
public enum VectorMath {
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.exp(x[i]) } }
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.log(x[i]) } }
    public static func log1p(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.log1p(x[i]) } }
    public static func expm1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.expm1(x[i]) } }
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.tanh(x[i]) } }
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) } }
    public static func softplus(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { let v = x[i]; y[i] = max(v, 0) + Foundation.log1p(Foundation.exp(-abs(v))) } }
    public static func logSigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { let v = -x[i]; y[i] = -(max(v, 0) + Foundation.log1p(Foundation.exp(-abs(v)))) } }
    public static func exp(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.exp(x[i]) } }
    public static func log(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.log(x[i]) } }
    public static func log1p(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.log1p(x[i]) } }
    public static func expm1(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.expm1(x[i]) } }
    public static func tanh(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.tanh(x[i]) } }
    public static func sigmoid(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) } }
    public static func softplus(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { let v = x[i]; y[i] = max(v, 0) + Foundation.log1p(Foundation.exp(-abs(v))) } }
    public static func logSigmoid(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { let v = -x[i]; y[i] = -(max(v, 0) + Foundation.log1p(Foundation.exp(-abs(v)))) } }
}
