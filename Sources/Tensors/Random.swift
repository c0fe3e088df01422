import CKernels

/// A seeded, reproducible pseudo-random generator: xoshiro256** (Blackman & Vigna 2018) seeded
/// through SplitMix64.
///
/// The same seed gives the same numbers on every platform: uniforms use only integer arithmetic
/// and exact conversions; normals use the Marsaglia polar method with ``portableLog(_:)`` (built
/// from IEEE-exact operations) instead of the platform's `log`, whose last bit may differ.
///
/// ```swift
/// var generator = RandomGenerator(seed: 42)
/// let noise = Tensor.randn([256, 2], generator: &generator)
/// ```
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64
    /// A spare normal deviate from the last polar step.
    private var spareNormal: Double?

    /// A generator whose whole sequence is fixed by `seed` (PyTorch's `torch.manual_seed`, but
    /// owned by the caller: pass it `inout` to whatever draws).
    /// - Parameter seed: any 64-bit value; SplitMix64 expands it into the 256-bit state, so nearby
    ///   seeds give unrelated sequences.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform Double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal deviate (Marsaglia & Bray's polar method).
    public mutating func nextNormal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        while true {
            let u = 2 * nextUniform() - 1
            let v = 2 * nextUniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let factor = (-2 * portableLog(s) / s).squareRoot()
                spareNormal = v * factor
                return u * factor
            }
        }
    }

    /// Fills `count` elements with standard normal deviates: the numbers of `count` calls of
    /// ``nextNormal()``, bit for bit. The accepted points of a batch of pairs are drawn first (no
    /// branch on acceptance), then their factors are computed together (`ck_polar_factors`).
    public mutating func fillNormal<T: TensorScalar>(_ p: UnsafeMutablePointer<T>, count: Int) {
        var i = 0
        if count > 0, let spare = spareNormal {
            p[0] = T(spare)
            spareNormal = nil
            i = 1
        }
        let batch = 256
        // One slot more than the batch: a rejected point is written and then overwritten.
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 3 * (batch + 1)) { buffer in
            let us = buffer.baseAddress!, vs = us + batch + 1, factors = vs + batch + 1
            while count - i >= 2 {
                let pairs = Swift.min(batch, (count - i) / 2)
                var k = 0
                while k < pairs {
                    let u = 2 * nextUniform() - 1
                    let v = 2 * nextUniform() - 1
                    let s = u * u + v * v
                    us[k] = u
                    vs[k] = v
                    factors[k] = s
                    k += s > 0 && s < 1 ? 1 : 0
                }
                ck_polar_factors(factors, pairs)
                for k in 0..<pairs {
                    p[i + 2 * k] = T(us[k] * factors[k])
                    p[i + 2 * k + 1] = T(vs[k] * factors[k])
                }
                i += 2 * pairs
            }
        }
        if i < count { p[i] = T(nextNormal()) }
    }

    /// Fills `count` elements with uniforms on [low, high).
    public mutating func fillUniform<T: TensorScalar>(
        _ p: UnsafeMutablePointer<T>, count: Int, low: Double, high: Double
    ) {
        for i in 0..<count {
            var value = T(low + (high - low) * nextUniform())
            // Rounding to Float can land on `high`; keep the interval half-open.
            if value >= T(high) { value = T(high).nextDown }
            p[i] = value
        }
    }

    /// A uniform integer in 0..<upperBound (unbiased, by rejection).
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0, "nextInt(below:) needs a positive bound")
        let bound = UInt64(upperBound)
        let limit = UInt64.max - UInt64.max % bound
        while true {
            let r = next()
            if r < limit { return Int(r % bound) }
        }
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates with ``nextInt(below:)``).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            p.swapAt(i, nextInt(below: i + 1))
        }
        return p
    }
}

/// The natural logarithm of a positive, finite Double, computed only with IEEE-exact operations
/// (+, −, ×, ÷ and exponent extraction), so it gives the same bits on every platform.
///
/// x = 2ᵉ·m with m in [√½, √2); log m = 2·atanh(f), f = (m − 1)/(m + 1), |f| < 0.1716, summed as
/// the odd series 2(f + f³/3 + f⁵/5 + …) to 1e-17; then log x = e·ln 2 + log m with ln 2 split
/// into a high and a low part. Error below 1 ulp over the normal range (checked against libm).
public func portableLog(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite, "portableLog needs a positive finite value, not \(x)")
    var e = Int(x.exponent)
    var m = x.significand  // in [1, 2)
    if m > 1.4142135623730951 { m /= 2; e += 1 }
    let f = (m - 1) / (m + 1)
    let f2 = f * f
    // Horner form of Σ f^(2k)/(2k+1), k = 0…11. The coefficients are constant quotients, folded
    // at compile time to the same correctly rounded values a division would give.
    var series = 1.0 / 23
    series = series * f2 + 1.0 / 21
    series = series * f2 + 1.0 / 19
    series = series * f2 + 1.0 / 17
    series = series * f2 + 1.0 / 15
    series = series * f2 + 1.0 / 13
    series = series * f2 + 1.0 / 11
    series = series * f2 + 1.0 / 9
    series = series * f2 + 1.0 / 7
    series = series * f2 + 1.0 / 5
    series = series * f2 + 1.0 / 3
    series = series * f2 + 1.0 / 1
    let logM = 2 * f * series
    let ln2High = 0.693147180369123816490   // ln 2 rounded to 32 bits: e·ln2High is exact
    let ln2Low = 1.90821492927058770002e-10
    return Double(e) * ln2High + (logM + Double(e) * ln2Low)
}
