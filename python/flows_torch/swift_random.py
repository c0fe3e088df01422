"""The Swift library's random generator, bit for bit, so tests can rebuild the base noise
behind ``flows sample --seed S`` (Sources/Tensors/Random.swift, Sources/CKernels/polar.c).

xoshiro256** seeded through SplitMix64; uniforms are (next() >> 11)·2⁻⁵³; normals come from
Marsaglia & Bray's polar method, u, v = 2·uniform − 1, accepted when 0 < s = u² + v² < 1, giving
u·f and v·f with f = √(−2·log s / s), where log is ``portable_log`` (IEEE-exact operations only).
"""

import math
import struct

_MASK = (1 << 64) - 1


def portable_log(x):
    """Swift ``portableLog``: log x = e·ln 2 + 2·atanh((m − 1)/(m + 1)) for x = 2ᵉ·m, m in [√½, √2)."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    e = ((bits >> 52) & 0x7FF) - 1023
    m = struct.unpack("<d", struct.pack("<Q", (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000))[0]
    if m > 1.4142135623730951:
        m /= 2
        e += 1
    f = (m - 1) / (m + 1)
    f2 = f * f
    series = 1.0 / 23
    for k in (21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1):
        series = series * f2 + 1.0 / k
    log_m = 2 * f * series
    return float(e) * 0.693147180369123816490 + (log_m + float(e) * 1.90821492927058770002e-10)


class SwiftRandom:
    """``RandomGenerator(seed:)`` of the Swift library."""

    def __init__(self, seed):
        x = seed & _MASK
        state = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & _MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
            state.append(z ^ (z >> 31))
        self.s = state
        self.spare = None

    def next(self):
        s0, s1, s2, s3 = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & _MASK
        result = (rotl((s1 * 5) & _MASK, 7) * 9) & _MASK
        t = (s1 << 17) & _MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def uniform(self):
        return (self.next() >> 11) * 2.0 ** -53

    def normal(self):
        if self.spare is not None:
            spare, self.spare = self.spare, None
            return spare
        while True:
            u = 2 * self.uniform() - 1
            v = 2 * self.uniform() - 1
            s = u * u + v * v
            if 0 < s < 1:
                factor = math.sqrt(-2 * portable_log(s) / s)
                self.spare = v * factor
                return u * factor

    def normals(self, count):
        """``count`` deviates as ``Tensor.randn`` draws them (Float64 values; round to float32 yourself)."""
        return [self.normal() for _ in range(count)]

    def gamma(self, a):
        """Gamma(a, 1) as Swift's ``StudentT.gamma`` draws it: Marsaglia & Tsang (2000), with the
        a < 1 boost G(a + 1)·U^(1/a) (the uniform drawn first)."""
        if a < 1:
            u = self.uniform()
            return self.gamma(a + 1) * math.pow(max(u, 2.2250738585072014e-308), 1 / a)
        d = a - 1.0 / 3
        c = 1 / math.sqrt(9 * d)
        while True:
            x = self.normal()
            v = 1 + c * x
            if v <= 0:
                continue
            v3 = v * v * v
            u = self.uniform()
            if (math.log(u) if u > 0 else -math.inf) < 0.5 * x * x + d - d * v3 + d * math.log(v3):
                return d * v3

    def student_ts(self, nu, count):
        """``count`` standard t deviates Z/√(G/ν), G = 2·Gamma(ν/2), as Swift's ``StudentT.rsample``
        draws them (Float64 values)."""
        values = []
        for _ in range(count):
            z = self.normal()
            chi_squared = 2 * self.gamma(nu / 2)
            values.append(z / math.sqrt(chi_squared / nu))
        return values
