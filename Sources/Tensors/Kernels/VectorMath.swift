import Foundation

// SIMD8 building blocks. A default x86-64 build has no FMA, so polynomials use plain a·b + c;
// clamps use `replacing(with:where:)`, rounding uses the 1.5·2²³ trick, and exponents are built
// from integer bit patterns (the SIMD int↔float initialisers are slow).

@usableFromInline typealias Float8 = SIMD8<Float>

@inline(__always) @usableFromInline
func bits(_ v: Float8) -> SIMD8<Int32> { unsafeBitCast(v, to: SIMD8<Int32>.self) }

@inline(__always) @usableFromInline
func float8(_ v: SIMD8<Int32>) -> Float8 { unsafeBitCast(v, to: Float8.self) }

/// eˣ: x = n·ln 2 + r with |r| ≤ ½ ln 2 (ln 2 split in two parts), eʳ by a degree-6 polynomial
/// (Cephes `expf` coefficients), then scaled by 2ⁿ built in the exponent bits. Overflows to +∞
/// above 88.72; returns 0 below −87.34 (no denormal results); NaN stays NaN.
@inline(__always) @usableFromInline
func simdExp(_ x: Float8) -> Float8 {
    let hi = Float8(repeating: 88.72283), lo = Float8(repeating: -87.33654)
    var v = x.replacing(with: hi, where: x .> hi)
    v = v.replacing(with: lo, where: v .< lo)
    let magic = Float8(repeating: 12_582_912)   // 1.5·2²³
    let shifted = v * 1.442_695_04 + magic
    let n = shifted - magic                        // round(x / ln 2)
    let r = (v - n * 0.693_359_375) - n * -2.121_944_4e-4
    let z = r * r
    var p = r * 1.987_569_15e-4 + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * z + r + 1
    // 2ⁿ: the rounded n sits in the low bits of `shifted`. It is applied as 2^⌊n/2⌋·2^⌈n/2⌉
    // because 2ⁿ alone is not representable at n = 128, where eˣ still is.
    let n32 = bits(shifted) &- 0x4B40_0000
    let half = n32 &>> 1
    var y = p * float8((half &+ 127) &<< 23) * float8((n32 &- half &+ 127) &<< 23)
    y = y.replacing(with: .infinity, where: x .> hi)
    y = y.replacing(with: 0, where: x .< lo)
    return y.replacing(with: x, where: x .!= x)
}

/// log x: x = m·2ᵉ with m in [√½, √2), log m = f − f²/2 + f³·P(f) for f = m − 1 (Cephes `logf`
/// coefficients), plus e·ln 2 in two parts. Denormals are scaled by 2²³ first. log 0 = −∞,
/// log(x < 0) = NaN, log ∞ = ∞.
@inline(__always) @usableFromInline
func simdLog(_ x: Float8) -> Float8 {
    let tiny = x .< Float8(repeating: Float.leastNormalMagnitude)
    let scaled = x.replacing(with: x * 8_388_608, where: tiny)   // ·2²³
    let b = bits(scaled)
    // The frexp exponent (biased exponent − 126) as a float, via the 1.5·2²³ magic number.
    var e = float8(((b &>> 23) & 0xFF) &+ 0x4B40_0000) - (12_582_912 + 126)
    e = e.replacing(with: e - 23, where: tiny)
    var m = float8((b & 0x007F_FFFF) | 0x3F00_0000)   // in [0.5, 1)
    let small = m .< Float8(repeating: 0.707_106_78)
    e = e.replacing(with: e - 1, where: small)
    m = m.replacing(with: m + m, where: small)
    let f = m - 1
    let z = f * f
    var p = f * 7.037_683_6e-2 - 1.151_461_0e-1
    p = p * f + 1.167_699_9e-1
    p = p * f - 1.242_014_1e-1
    p = p * f + 1.424_932_3e-1
    p = p * f - 1.666_805_8e-1
    p = p * f + 2.000_071_5e-1
    p = p * f - 2.499_999_4e-1
    p = p * f + 3.333_333_1e-1
    var y = p * f * z
    y = y + e * -2.121_944_4e-4
    y = y - z * 0.5
    y = f + y + e * 0.693_359_375
    y = y.replacing(with: -.infinity, where: x .== 0)
    y = y.replacing(with: .nan, where: x .< 0)
    y = y.replacing(with: .infinity, where: x .== .infinity)
    return y.replacing(with: x, where: x .!= x)
}

/// log(1 + x) accurate near 0: with u = 1 + x rounded, log1p x = log u − ((u − 1) − x)/u
/// (the rounding error of u, corrected to first order; Goldberg 1991, Theorem 4).
@inline(__always) @usableFromInline
func simdLog1p(_ x: Float8) -> Float8 {
    let u = x + 1
    let d = u - 1
    let y = simdLog(u) - (d - x) / u
    return y.replacing(with: x, where: d .== 0).replacing(with: .infinity, where: x .== .infinity)
}

/// eˣ − 1 accurate near 0: with u = eˣ rounded, (u − 1)·x / log u (Kahan's trick).
@inline(__always) @usableFromInline
func simdExpm1(_ x: Float8) -> Float8 {
    let u = simdExp(x)
    let d = u - 1
    var y = d * x / simdLog(u)
    y = y.replacing(with: d, where: (d .== -1) .| (u .== .infinity) .| (x .> 20))
    return y.replacing(with: x, where: (u .== 1) .| (x .!= x))
}

/// tanh x: an odd degree-11 polynomial (Cephes `tanhf`) for |x| < 0.625, else
/// sign(x)·(1 − 2/(exp(2|x|) + 1)); exactly ±1 beyond |x| = 9.
@inline(__always) @usableFromInline
func simdTanh(_ x: Float8) -> Float8 {
    let a = x.replacing(with: -x, where: x .< 0)
    let z = x * x
    var p = z * -5.704_988_7e-3 + 2.063_908_9e-2
    p = p * z - 5.373_971_6e-2
    p = p * z + 1.333_144_2e-1
    p = p * z - 3.333_328_2e-1
    let small = p * z * x + x
    var large = 1 - 2 / (simdExp(a + a) + 1)
    large = large.replacing(with: 1, where: a .> 9)
    large = large.replacing(with: -large, where: x .< 0)
    return large.replacing(with: small, where: a .< 0.625).replacing(with: x, where: x .!= x)
}

/// σ(x) = 1 / (1 + e⁻ˣ); saturates to exactly 0 and 1.
@inline(__always) @usableFromInline
func simdSigmoid(_ x: Float8) -> Float8 {
    1 / (1 + simdExp(-x))
}

/// log(1 + eˣ) = max(x, 0) + log1p(exp(−|x|)): no overflow, equals x for large x and eˣ for very negative x.
@inline(__always) @usableFromInline
func simdSoftplus(_ x: Float8) -> Float8 {
    let a = x.replacing(with: -x, where: x .< 0)
    let positive = x.replacing(with: 0, where: x .< 0)
    return (positive + simdLog1p(simdExp(-a))).replacing(with: x, where: x .!= x)
}

/// log σ(x) = −softplus(−x).
@inline(__always) @usableFromInline
func simdLogSigmoid(_ x: Float8) -> Float8 {
    -simdSoftplus(-x)
}

/// Vectorised transcendental functions over buffers.
///
/// `Float` runs SIMD8 polynomial kernels (measured on this project's machine: about 1 ns per
/// element against 4–15 ns for scalar libm); `Double` runs libm per element, since Float64
/// serves reference checks. Accuracy of the `Float` kernels, measured against Double libm over
/// dense sweeps: a few ulp (see `VectorMathTests`). `x` and `y` may be the same buffer.
@usableFromInline package enum VectorMath {
    @inline(__always)
    static func map8(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                     padding: Float, _ f: (Float8) -> Float8) {
        var i = 0
        let raw = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(y)
        while i + 8 <= count {
            out.storeBytes(of: f(raw.loadUnaligned(fromByteOffset: i * 4, as: Float8.self)), toByteOffset: i * 4, as: Float8.self)
            i += 8
        }
        if i < count {
            var tail = Float8(repeating: padding)
            for k in 0..<(count - i) { tail[k] = x[i + k] }
            let r = f(tail)
            for k in 0..<(count - i) { y[i + k] = r[k] }
        }
    }

    @usableFromInline package static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdExp) }
    @usableFromInline package static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 1, simdLog) }
    @usableFromInline package static func log1p(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdLog1p) }
    @usableFromInline package static func expm1(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdExpm1) }
    @usableFromInline package static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdTanh) }
    @usableFromInline package static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdSigmoid) }
    @usableFromInline package static func softplus(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdSoftplus) }
    @usableFromInline package static func logSigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { map8(x, y, count, padding: 0, simdLogSigmoid) }

    @usableFromInline package static func exp(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.exp(x[i]) } }
    @usableFromInline package static func log(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.log(x[i]) } }
    @usableFromInline package static func log1p(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.log1p(x[i]) } }
    @usableFromInline package static func expm1(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.expm1(x[i]) } }
    @usableFromInline package static func tanh(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) { for i in 0..<count { y[i] = Foundation.tanh(x[i]) } }
    @usableFromInline package static func sigmoid(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) }
    }
    @usableFromInline package static func softplus(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { let v = x[i]; y[i] = v.isNaN ? v : Swift.max(v, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(v))) }
    }
    @usableFromInline package static func logSigmoid(_ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count { let v = -x[i]; y[i] = v.isNaN ? v : -(Swift.max(v, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(v)))) }
    }
}
