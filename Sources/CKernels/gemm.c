// Single-precision GEMM in the Goto/BLIS scheme: pack a KC×NC panel of B into contiguous NR-wide
// micro-panels and run an MR×NR register-blocked micro-kernel over MC×KC blocks of A, which the
// kernel reads in place through its row and column strides. ck_sgemm_pack/ck_sgemm_packed keep
// B's packed panels for many products, each panel holding only the rows its columns reach.
// The AVX2+FMA and AVX-512 micro-kernels are compiled with target attributes and chosen at run
// time, so the package needs no unsafe build flags; other CPUs use a portable kernel with the same
// packing. AVX-512 keeps the 16-wide panels and runs two adjacent ones together (6×32 or 12×32
// tiles), which halves the loads of B per multiply-add and fills 12 or 24 of its 32 registers.

#include "gemm_internal.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { MR = 6, NR = 16, KC = 256, MC = 96, NC = 3072 };

typedef void (*microkernel_fn)(long kc, const float *a, long rs, long cs, const float *b, float *c,
                               long ldc, float alpha, float beta, const float *s, long lds, int relu);

// ---------------------------------------------------------------------------------------------
// Micro-kernels: C[0..MR, 0..NR] (ldc) = alpha * A·Bpanel + beta * S, then max(C, 0) when `relu`
// (NaN stays), where A(r, p) = a[r*rs + p*cs] (packed panels have rs = 1, cs = MR; row-major A
// has rs = lda, cs = 1; transposed A has rs = 1, cs = lda), Bpanel is kc × NR (NR values per k)
// and S(r, j) = s[r*lds + j] is read only when beta != 0: C itself (s = c, lds = ldc) to scale or
// accumulate, or a bias row broadcast down the tile (lds = 0).

static void microkernel_portable(long kc, const float *a, long rs, long cs, const float *b, float *c,
                                 long ldc, float alpha, float beta, const float *s, long lds, int relu) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (long p = 0; p < kc; p++) {
        const float *bp = b + p * NR;
        for (int r = 0; r < MR; r++) {
            float av = a[r * rs + p * cs];
            for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
        }
    }
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        const float *sr = s + r * lds;
        for (int j = 0; j < NR; j++) {
            float v = (beta == 0.0f ? 0.0f : beta * sr[j]) + alpha * acc[r][j];
            cr[j] = relu && v <= 0.0f ? 0.0f : v;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void microkernel_avx2(long kc, const float *a, long rs, long cs, const float *b, float *c,
                             long ldc, float alpha, float beta, const float *s, long lds, int relu) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a);          c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + rs);     c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2 * rs); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3 * rs); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4 * rs); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5 * rs); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += cs;
        b += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
    for (int r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        for (int h = 0; h < 2; h++) {
            __m256 v = _mm256_mul_ps(va, acc[r][h]);
            if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(s + r * lds + 8 * h), v);
            // max(0, v) returns v when v is NaN.
            if (relu) v = _mm256_max_ps(zero, v);
            _mm256_storeu_ps(cr + 8 * h, v);
        }
    }
}
#endif

// The package builds C at -O2, where clang keeps a loop over a dozen accumulators on the stack;
// the kernels' row loops must be unrolled to keep them in registers.
#define UNROLL _Pragma("GCC unroll 16")

#if defined(__x86_64__)
// AVX-512: the 6×16 tile is one zmm per row. Alone it has six accumulator chains, fewer than the
// FMA latency × throughput needs, so even and odd k accumulate separately and are summed at the
// end. The pair kernel below is the one that runs where it can.
__attribute__((target("avx512f")))
static void microkernel_avx512(long kc, const float *a, long rs, long cs, const float *b, float *c,
                               long ldc, float alpha, float beta, const float *s, long lds, int relu) {
    __m512 e[MR], o[MR];
    UNROLL for (int r = 0; r < MR; r++) e[r] = o[r] = _mm512_setzero_ps();
    long p = 0;
    for (; p + 2 <= kc; p += 2) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + NR);
        UNROLL for (int r = 0; r < MR; r++) {
            e[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * rs]), b0, e[r]);
            o[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * rs + cs]), b1, o[r]);
        }
        a += 2 * cs;
        b += 2 * NR;
    }
    if (p < kc) {
        __m512 b0 = _mm512_loadu_ps(b);
        UNROLL for (int r = 0; r < MR; r++) e[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * rs]), b0, e[r]);
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
    UNROLL for (int r = 0; r < MR; r++) {
        __m512 v = _mm512_mul_ps(va, _mm512_add_ps(e[r], o[r]));
        if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(s + r * lds), v);
        if (relu) v = _mm512_max_ps(zero, v);
        _mm512_storeu_ps(c + r * ldc, v);
    }
}

// AVX-512 over two adjacent panels: a ROWS×32 tile, columns 0..<16 from panel b0 and 16..<32 from
// b1, in 2·ROWS zmm accumulators; per k, two loads of B and ROWS broadcasts of A feed 2·ROWS FMAs.
#define PAIR_KERNEL(name, ROWS)                                                                            \
    __attribute__((target("avx512f"))) static void name(long kc, const float *a, long rs, long cs,         \
                                                        const float *b0, const float *b1, float *c,        \
                                                        long ldc, float alpha, float beta, const float *s, \
                                                        long lds, int relu) {                              \
        __m512 l[ROWS], h[ROWS];                                                                           \
        UNROLL for (int r = 0; r < ROWS; r++) l[r] = h[r] = _mm512_setzero_ps();                           \
        for (long p = 0; p < kc; p++) {                                                                    \
            __m512 x0 = _mm512_loadu_ps(b0), x1 = _mm512_loadu_ps(b1);                                     \
            UNROLL for (int r = 0; r < ROWS; r++) {                                                        \
                __m512 av = _mm512_set1_ps(a[r * rs]);                                                     \
                l[r] = _mm512_fmadd_ps(av, x0, l[r]);                                                      \
                h[r] = _mm512_fmadd_ps(av, x1, h[r]);                                                      \
            }                                                                                              \
            a += cs;                                                                                       \
            b0 += NR;                                                                                      \
            b1 += NR;                                                                                      \
        }                                                                                                  \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();          \
        UNROLL for (int r = 0; r < ROWS; r++) {                                                            \
            float *cr = c + r * ldc;                                                                       \
            __m512 v0 = _mm512_mul_ps(va, l[r]), v1 = _mm512_mul_ps(va, h[r]);                             \
            if (beta != 0.0f) {                                                                            \
                v0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(s + r * lds), v0);                                \
                v1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(s + r * lds + NR), v1);                           \
            }                                                                                              \
            if (relu) {                                                                                    \
                v0 = _mm512_max_ps(zero, v0);                                                              \
                v1 = _mm512_max_ps(zero, v1);                                                              \
            }                                                                                              \
            _mm512_storeu_ps(cr, v0);                                                                      \
            _mm512_storeu_ps(cr + NR, v1);                                                                 \
        }                                                                                                  \
    }
PAIR_KERNEL(microkernel_avx512_pair, MR)
PAIR_KERNEL(microkernel_avx512_pair2, 2 * MR)
#endif

typedef void (*pair_kernel_fn)(long kc, const float *a, long rs, long cs, const float *b0, const float *b1,
                               float *c, long ldc, float alpha, float beta, const float *s, long lds, int relu);

/// The kernels in use: `single` for one panel, `pair` (or NULL) for two adjacent panels, and
/// `pair2` (or NULL) for two adjacent panels and two blocks of MR rows read in place.
typedef struct kernels {
    microkernel_fn single;
    pair_kernel_fn pair, pair2;
} kernels;

// The widest kernels this CPU runs: 0 portable, 1 AVX2+FMA, 2 AVX-512 (computed once).
static int supported_level(void) {
    static int cached = -1;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level >= 0) return level;
    level = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        level = __builtin_cpu_supports("avx512f") ? 2 : 1;
#endif
    __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    return level;
}

static int level_cap = 2;  // ck_set_gemm_kernel_level

static int current_level(void) {
    int level = supported_level(), cap = __atomic_load_n(&level_cap, __ATOMIC_RELAXED);
    return level < cap ? level : cap;
}

static kernels kernel(void) {
    switch (current_level()) {
#if defined(__x86_64__)
    case 2: return (kernels){microkernel_avx512, microkernel_avx512_pair, microkernel_avx512_pair2};
    case 1: return (kernels){microkernel_avx2, 0, 0};
#endif
    default: return (kernels){microkernel_portable, 0, 0};
    }
}

// The CPU's capability, for the other kernels (thin products, Adam, normal deviates), which the
// GEMM level cap does not change.
int ck_uses_fma_kernel(void) { return supported_level() >= 1; }

int ck_gemm_kernel_level(void) { return current_level(); }

int ck_set_gemm_kernel_level(int cap) {
    __atomic_store_n(&level_cap, cap < 0 ? 0 : cap, __ATOMIC_RELAXED);
    return current_level();
}

// ---------------------------------------------------------------------------------------------
// Packing. op(A)[i][p] = trans ? a[p*lda + i] : a[i*lda + p]; likewise op(B)[p][j].

static void pack_a(int trans, long mc, long kc, const float *a, long lda, float *dst) {
    for (long i0 = 0; i0 < mc; i0 += MR) {
        long rows = mc - i0 < MR ? mc - i0 : MR;
        for (long p = 0; p < kc; p++) {
            for (long r = 0; r < rows; r++)
                dst[r] = trans ? a[p * lda + (i0 + r)] : a[(i0 + r) * lda + p];
            for (long r = rows; r < MR; r++) dst[r] = 0.0f;
            dst += MR;
        }
    }
}

#if defined(__x86_64__)
// One full panel of op(B) = Bᵀ: dst[p·NR + j] = b[j·ldb + p] for j < NR, p < kc, by 8×8
// transposes in registers (rows of B are read along p, contiguous).
__attribute__((target("avx2")))
static void pack_b_transposed_panel_avx2(long kc, const float *b, long ldb, float *dst) {
    long p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int h = 0; h < 2; h++) {
            const float *src = b + (8 * h) * ldb + p;
            __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ldb);
            __m256 r2 = _mm256_loadu_ps(src + 2 * ldb), r3 = _mm256_loadu_ps(src + 3 * ldb);
            __m256 r4 = _mm256_loadu_ps(src + 4 * ldb), r5 = _mm256_loadu_ps(src + 5 * ldb);
            __m256 r6 = _mm256_loadu_ps(src + 6 * ldb), r7 = _mm256_loadu_ps(src + 7 * ldb);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *out = dst + p * NR + 8 * h;
            _mm256_storeu_ps(out + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(out + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(out + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(out + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(out + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(out + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(out + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(out + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
    for (; p < kc; p++)
        for (long j = 0; j < NR; j++) dst[p * NR + j] = b[j * ldb + p];
}
#endif

// Packs op(B) [kc, nc] into NR-wide panels of kc rows each.
static void pack_b(int trans, long kc, long nc, const float *b, long ldb, float *dst) {
    const long full = nc / NR * NR;
    if (!trans) {
        // Row by row across all full panels: B's rows are read contiguously, which the hardware
        // prefetcher follows (panel by panel, each row's 64 bytes are a new page-strided miss).
        for (long p = 0; p < kc; p++) {
            const float *row = b + p * ldb;
            for (long j0 = 0; j0 < full; j0 += NR) memcpy(dst + j0 * kc + p * NR, row + j0, NR * sizeof(float));
        }
    } else {
#if defined(__x86_64__)
        const int avx2 = supported_level() >= 1;
#endif
        for (long j0 = 0; j0 < full; j0 += NR) {
#if defined(__x86_64__)
            if (avx2) { pack_b_transposed_panel_avx2(kc, b + j0 * ldb, ldb, dst + j0 * kc); continue; }
#endif
            for (long j = 0; j < NR; j++)
                for (long p = 0; p < kc; p++) dst[j0 * kc + p * NR + j] = b[(j0 + j) * ldb + p];
        }
    }
    if (full < nc) {
        float *last = dst + full * kc;
        const long cols = nc - full;
        for (long p = 0; p < kc; p++) {
            for (long j = 0; j < cols; j++)
                last[p * NR + j] = trans ? b[(full + j) * ldb + p] : b[p * ldb + (full + j)];
            for (long j = cols; j < NR; j++) last[p * NR + j] = 0.0f;
        }
    }
}

// Per-thread packing buffers, grown on demand and kept for the thread's lifetime.
static _Thread_local float *buffer_a = 0, *buffer_b = 0, *buffer_bias = 0;

static float *aligned_buffer(float **slot, size_t count) {
    if (!*slot) {
        size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
        *slot = (float *)aligned_alloc(64, bytes);
    }
    return *slot;
}

static void scale_c(long m, long n, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) memset(row, 0, (size_t)n * sizeof(float));
        else for (long j = 0; j < n; j++) row[j] *= beta;
    }
}

// C = max(C, 0) over a tile, for the tiles whose kernel could not apply the ReLU as it stored
// them (a pair whose deeper panel adds its rest afterwards): a select rather than a branch (the
// signs are random, and it vectorises); NaN stays.
static void rectify_tile(float *tile, long ldt, long rows, long width) {
    for (long r = 0; r < rows; r++) {
        float *row = tile + r * ldt;
        for (long j = 0; j < width; j++) row[j] = row[j] <= 0.0f ? 0.0f : row[j];
    }
}

// The rows of the block of k from p0 (kc rows) that panel j reaches: all of them without depths.
static long depth_in_block(const long *depth, long j, long p0, long kc) {
    if (!depth) return kc;
    long left = depth[j] - p0;
    return left < 0 ? 0 : (left < kc ? left : kc);
}

// C[0..mc, 0..nc] (ldc) = alpha·A·B + (accumulate ? C : bias ? bias row : beta·C) for one block:
// A is mc × kc with row and k strides (ars, acs) read from `asrc`, starting at k = p0 of B; B's
// panel j (NR columns) starts at panels[j] (already offset to row p0) and holds depth[j] − p0
// rows from there (all kc when depth is NULL); rows past a panel's depth are zero and are not
// read. `bias` (NULL or nc values padded with zeros to a whole pair of panels) is added to every
// row in place of C. With `rectify`, the stored tiles are clamped at zero (a fused ReLU, for the
// last block of k). A is read in place (measured faster than packing it, even at 1024³); only a
// final partial panel of fewer than MR rows is packed, zero-padded, into `pa`. Two adjacent full
// panels run through the pair kernels when there are some.
static void macro_kernel(kernels kern, long mc, long nc, long kc, long p0, int transA, const float *asrc,
                         long lda, float *pa, const float *const *panels, const long *depth, float *c, long ldc,
                         float alpha, float beta, const float *bias, int accumulate, int rectify) {
    float edge[MR * 2 * NR] __attribute__((aligned(64)));
    const long ars = transA ? 1 : lda, acs = transA ? lda : 1;
    long fullRows = mc / MR * MR;
    if (fullRows < mc) pack_a(transA, mc - fullRows, kc, asrc + fullRows * ars, lda, pa);
    // What the kernels add to alpha·A·B: the tile itself (s = the tile), or the bias row.
    const int withBias = bias && !accumulate;
    const float addend = accumulate || withBias ? 1.0f : beta;
    for (long jr = 0; jr < nc;) {
        const int pair = kern.pair && nc - jr >= 2 * NR;
        const long cols = pair ? 2 * NR : (nc - jr < NR ? nc - jr : NR), width = pair ? 2 * NR : NR;
        // Rows of this block of k that each panel reaches. A pair runs together down to the
        // shallower one; the deeper panel continues alone (`rest` rows, its tile at column `far`).
        const long d0 = depth_in_block(depth, jr / NR, p0, kc), d1 = pair ? depth_in_block(depth, jr / NR + 1, p0, kc) : d0;
        const long common = d0 < d1 ? d0 : d1, rest = (d0 < d1 ? d1 : d0) - common, far = d1 > d0 ? NR : 0;
        // A later block of k that these panels do not reach adds nothing.
        if (common + rest == 0 && accumulate && !rectify) { jr += cols; continue; }
        const float *bp = panels[jr / NR], *bq = pair ? panels[jr / NR + 1] : 0;
        const float *deeper = (far ? bq : bp) + common * NR;
        // The ReLU goes into the kernel's store unless the deeper panel still adds its rest.
        const int relu = rectify && rest == 0;
        for (long ir = 0; ir < mc; ir += MR) {
            if (pair && kern.pair2 && ir + 2 * MR <= fullRows) {
                float *cp = c + ir * ldc + jr;
                const float *ap = asrc + ir * ars;
                kern.pair2(common, ap, ars, acs, bp, bq, cp, ldc, alpha, addend, withBias ? bias + jr : cp,
                           withBias ? 0 : ldc, relu);
                for (long half = 0; rest > 0 && half < 2; half++) {
                    float *tile = cp + half * MR * ldc + far;
                    kern.single(rest, ap + half * MR * ars + common * acs, ars, acs, deeper, tile, ldc, alpha, 1.0f,
                                tile, ldc, 0);
                }
                if (rectify && !relu) rectify_tile(cp, ldc, 2 * MR, width);
                ir += MR;
                continue;
            }
            long rows = mc - ir < MR ? mc - ir : MR;
            int packed = ir >= fullRows;
            const float *ap = packed ? pa : asrc + ir * ars;
            long rs = packed ? 1 : ars, cs = packed ? MR : acs;
            float *cp = c + ir * ldc + jr;
            float *tile = cp;
            long ldt = ldc;
            if (rows < MR || cols < width) {
                // Edge tile: run the full kernel into a scratch tile, copy the valid part.
                if (!withBias && addend != 0.0f)
                    for (long r = 0; r < rows; r++)
                        for (long j = 0; j < cols; j++) edge[r * width + j] = cp[r * ldc + j];
                tile = edge;
                ldt = width;
            }
            const float *s = withBias ? bias + jr : tile;
            const long lds = withBias ? 0 : ldt;
            if (pair) {
                kern.pair(common, ap, rs, cs, bp, bq, tile, ldt, alpha, addend, s, lds, relu);
                if (rest > 0) kern.single(rest, ap + common * cs, rs, cs, deeper, tile + far, ldt, alpha, 1.0f, tile + far, ldt, 0);
            } else {
                kern.single(d0, ap, rs, cs, bp, tile, ldt, alpha, addend, s, lds, relu);
            }
            if (rectify && !relu) rectify_tile(tile, ldt, MR, width);
            if (tile == edge)
                for (long r = 0; r < rows; r++)
                    for (long j = 0; j < cols; j++) cp[r * ldc + j] = edge[r * width + j];
        }
        jr += cols;
    }
}

enum { MAX_PANELS = NC / NR };

void ck_sgemm(int transA, int transB, long m, long n, long k, float alpha,
              const float *a, long lda, const float *b, long ldb, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) { scale_c(m, n, beta, c, ldc); return; }
    if (ck_sgemm_thin(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
    kernels kern = kernel();
    float *pa = aligned_buffer(&buffer_a, (size_t)MC * KC);
    float *pb = aligned_buffer(&buffer_b, (size_t)KC * NC);
    const float *panels[MAX_PANELS];
    for (long j0 = 0; j0 < n; j0 += NC) {
        long nc = n - j0 < NC ? n - j0 : NC;
        for (long p0 = 0; p0 < k; p0 += KC) {
            long kc = k - p0 < KC ? k - p0 : KC;
            const float *bsrc = transB ? b + j0 * ldb + p0 : b + p0 * ldb + j0;
            pack_b(transB, kc, nc, bsrc, ldb, pb);
            for (long j = 0; j * NR < nc; j++) panels[j] = pb + j * kc * NR;
            for (long i0 = 0; i0 < m; i0 += MC) {
                long mc = m - i0 < MC ? m - i0 : MC;
                const float *asrc = transA ? a + p0 * lda + i0 : a + i0 * lda + p0;
                macro_kernel(kern, mc, nc, kc, p0, transA, asrc, lda, pa, panels, 0, c + i0 * ldc + j0, ldc,
                             alpha, beta, 0, p0 > 0, 0);
            }
        }
    }
}

static long panel_depth(const long *depth, long j, long k) {
    long d = depth ? depth[j] : k;
    return d < 0 ? 0 : (d > k ? k : d);
}

long ck_sgemm_packed_count(long k, long n, const long *depth) {
    long count = 0;
    for (long j = 0; j * NR < n; j++) count += panel_depth(depth, j, k) * NR;
    return count;
}

void ck_sgemm_pack(int transB, long k, long n, const float *b, long ldb, const long *depth, float *packed) {
    for (long j = 0; j * NR < n; j++) {
        long d = panel_depth(depth, j, k), cols = n - j * NR < NR ? n - j * NR : NR;
        if (d > 0) pack_b(transB, d, cols, transB ? b + j * NR * ldb : b + j * NR, ldb, packed);
        packed += d * NR;
    }
}

void ck_sgemm_packed(long m, long n, long k, float alpha, const float *a, long lda, const float *packed,
                     const long *depth, float beta, const float *bias, int rectify, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    kernels kern = kernel();
    float *pa = aligned_buffer(&buffer_a, (size_t)MC * KC);
    float *padded = bias ? aligned_buffer(&buffer_bias, (size_t)NC) : 0;
    // Panel j's rows start at start[j]; the rows p0.. of a block of k start p0·NR further.
    const float *panels[MAX_PANELS], *start[MAX_PANELS];
    long clamped[MAX_PANELS];
    for (long j0 = 0; j0 < n; j0 += NC) {
        long nc = n - j0 < NC ? n - j0 : NC, panelCount = (nc + NR - 1) / NR;
        for (long j = 0; j < panelCount; j++) {
            clamped[j] = panel_depth(depth, j0 / NR + j, k);
            start[j] = packed;
            packed += clamped[j] * NR;
        }
        if (bias) {
            // Whole panels, so that edge tiles read zeros past the last column.
            memcpy(padded, bias + j0, (size_t)nc * sizeof(float));
            memset(padded + nc, 0, (size_t)(panelCount * NR - nc) * sizeof(float));
        }
        long p0 = 0;
        do {
            long kc = k - p0 < KC ? k - p0 : KC;
            for (long j = 0; j < panelCount; j++) panels[j] = start[j] + (p0 < clamped[j] ? p0 : clamped[j]) * NR;
            for (long i0 = 0; i0 < m; i0 += MC) {
                long mc = m - i0 < MC ? m - i0 : MC;
                macro_kernel(kern, mc, nc, kc, p0, 0, a + i0 * lda + p0, lda, pa, panels, clamped,
                             c + i0 * ldc + j0, ldc, alpha, beta, padded, p0 > 0, rectify && p0 + kc >= k);
            }
            p0 += KC;
        } while (p0 < k);
    }
}

// ---------------------------------------------------------------------------------------------
// Double precision: i-p-j loops over blocks of K, vectorised by the compiler along j.

void ck_dgemm(int transA, int transB, long m, long n, long k, double alpha,
              const double *a, long lda, const double *b, long ldb, double beta, double *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    for (long i = 0; i < m; i++) {
        double *row = c + i * ldc;
        if (beta == 0.0) memset(row, 0, (size_t)n * sizeof(double));
        else if (beta != 1.0) for (long j = 0; j < n; j++) row[j] *= beta;
    }
    if (k <= 0 || alpha == 0.0) return;
    double *bt = 0;
    if (transB) {
        // Transpose B once so the inner loop runs along contiguous rows.
        bt = (double *)malloc((size_t)k * (size_t)n * sizeof(double));
        for (long j = 0; j < n; j++)
            for (long p = 0; p < k; p++) bt[p * n + j] = b[j * ldb + p];
        b = bt;
        ldb = n;
    }
    const long KB = 128;
    for (long p0 = 0; p0 < k; p0 += KB) {
        long p1 = k - p0 < KB ? k : p0 + KB;
        for (long i = 0; i < m; i++) {
            double *row = c + i * ldc;
            for (long p = p0; p < p1; p++) {
                double av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
                const double *brow = b + p * ldb;
                for (long j = 0; j < n; j++) row[j] += av * brow[j];
            }
        }
    }
    free(bt);
}
