/*
 * half.c - float16 <-> float32 over arrays, and float16 loops run as float32
 * loops between those conversions (interface and why the bits are NumPy's:
 * half.h).  Pure C.
 *
 * Design.  The F16C versions are compiled for AVX + F16C by a target
 * attribute (the rest of the build stays at the baseline instruction set)
 * and chosen at run time from the CPU's features (__builtin_cpu_supports,
 * read on every call: it is a load of a word libgcc filled at start-up).
 * Elsewhere - other compilers or CPUs, or switched off by a test - the
 * software conversions of half.h run, and the engine calls NumPy's own
 * float16 loops instead of cd_half_via_f32.  Each group of eight elements
 * is checked for signalling NaNs with integer compares before F16C
 * converts it (F16C would quiet them); such a group is converted in
 * software instead, so no invalid flag is raised that NumPy's conversion
 * would not raise.
 */
#include "kernels/half.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CD_F16C_BUILD 1
#include <immintrin.h>
#else
#define CD_F16C_BUILD 0
#endif

#define SUB 1024   /* elements per block of cd_half_via_f32 (12 KiB on the stack);
                      a multiple of 8, the lanes of the float32 loops below */

static int hw_off;   /* tests: 1 keeps to the software path */

void cd_half_set_hw(int on)
{
    __atomic_store_n(&hw_off, !on, __ATOMIC_RELAXED);
}

int cd_half_hw(void)
{
#if CD_F16C_BUILD
    return !__atomic_load_n(&hw_off, __ATOMIC_RELAXED) && __builtin_cpu_supports("avx") &&
           __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

#if CD_F16C_BUILD
__attribute__((target("avx,f16c")))
static void h2f_f16c(const uint16_t *h, float *f, int64_t n)
{
    const __m128i mag = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00),
                  quiet = _mm_set1_epi16(0x7e00);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
        __m128i a = _mm_and_si128(v, mag);   /* signalling: 0x7c00 < a < 0x7e00 */
        __m128i sig = _mm_and_si128(_mm_cmpgt_epi16(a, inf), _mm_cmplt_epi16(a, quiet));
        if (_mm_movemask_epi8(sig) != 0) {
            for (int k = 0; k < 8; k++)
                f[i + k] = cd_h2f(h[i + k]);
            continue;
        }
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(v));
    }
    for (; i < n; i++)
        f[i] = cd_h2f(h[i]);
}

__attribute__((target("avx,f16c")))
static void f2h_f16c(const float *f, uint16_t *h, int64_t n)
{
    const __m128i mag = _mm_set1_epi32(0x7fffffff), inf = _mm_set1_epi32(0x7f800000),
                  quiet = _mm_set1_epi32(0x7fc00000);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(f + i);
        __m128i lo = _mm_and_si128(_mm_castps_si128(_mm256_castps256_ps128(v)), mag);
        __m128i hi = _mm_and_si128(_mm_castps_si128(_mm256_extractf128_ps(v, 1)), mag);
        __m128i sig = _mm_or_si128(
            _mm_and_si128(_mm_cmpgt_epi32(lo, inf), _mm_cmplt_epi32(lo, quiet)),
            _mm_and_si128(_mm_cmpgt_epi32(hi, inf), _mm_cmplt_epi32(hi, quiet)));
        if (_mm_movemask_epi8(sig) != 0) {
            for (int k = 0; k < 8; k++)
                h[i + k] = cd_f2h(f[i + k]);
            continue;
        }
        /* rounding to nearest-even whatever MXCSR says, as NumPy's software */
        _mm_storeu_si128((__m128i *)(void *)(h + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++)
        h[i] = cd_f2h(f[i]);
}
#endif

void cd_half_to_float(const uint16_t *h, float *f, int64_t n)
{
#if CD_F16C_BUILD
    if (cd_half_hw()) {
        h2f_f16c(h, f, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        f[i] = cd_h2f(h[i]);
}

void cd_float_to_half(const float *f, uint16_t *h, int64_t n)
{
#if CD_F16C_BUILD
    if (cd_half_hw()) {
        f2h_f16c(f, h, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        h[i] = cd_f2h(f[i]);
}

/*
 * The float32 loops of + - * / for cd_half_via_f32 (contiguous operands,
 * dims[0] rounded up to a multiple of 8: the caller pads its buffers).
 * When both operands are NaN, x86 returns the first source's payload
 * (quieted), but a compiler may give a commutative + or * its operands in
 * either order (NumPy's own float32 loops take one NaN in their vector
 * bodies and the other in their scalar tails), so the loops set the NaN of
 * such elements themselves: the first operand's (F) or the second's (S).
 */
#if CD_F16C_BUILD
#define CD_DEF_ARITH(NAME, INTRIN, WHICH)                                           \
    __attribute__((target("avx,f16c")))                                              \
    static void NAME(char **args, const intptr_t *dims, const intptr_t *steps, void *d) \
    {                                                                                \
        const float *x = (const float *)(const void *)args[0];                      \
        const float *y = (const float *)(const void *)args[1];                      \
        float *o = (float *)(void *)args[2];                                         \
        const __m256 quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x00400000));    \
        (void)steps;                                                                 \
        (void)d;                                                                     \
        for (intptr_t i = 0; i < dims[0]; i += 8) {                                  \
            __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(y + i);           \
            __m256 both = _mm256_and_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q),           \
                                        _mm256_cmp_ps(b, b, _CMP_UNORD_Q));          \
            __m256 nan = _mm256_or_ps(WHICH, quiet);                                 \
            /* a select by and/or, not blendv: GCC turned that blendv into a \
               branch per lane (four times slower) */                         \
            _mm256_storeu_ps(o + i, _mm256_or_ps(_mm256_andnot_ps(both, INTRIN(a, b)), \
                                                 _mm256_and_ps(both, nan)));           \
        }                                                                            \
    }
CD_DEF_ARITH(add_f, _mm256_add_ps, a)
CD_DEF_ARITH(add_s, _mm256_add_ps, b)
CD_DEF_ARITH(sub_f, _mm256_sub_ps, a)
CD_DEF_ARITH(sub_s, _mm256_sub_ps, b)
CD_DEF_ARITH(mul_f, _mm256_mul_ps, a)
CD_DEF_ARITH(mul_s, _mm256_mul_ps, b)
CD_DEF_ARITH(div_f, _mm256_div_ps, a)
CD_DEF_ARITH(div_s, _mm256_div_ps, b)
#undef CD_DEF_ARITH
#endif

cd_ufunc_loop cd_half_f32_arith(char op, int second_nan)
{
#if CD_F16C_BUILD
    switch (op) {
    case '+': return second_nan ? add_s : add_f;
    case '-': return second_nan ? sub_s : sub_f;
    case '*': return second_nan ? mul_s : mul_f;
    case '/': return second_nan ? div_s : div_f;
    default: return NULL;
    }
#else
    (void)op;
    (void)second_nan;
    return NULL;
#endif
}

void cd_half_via_f32(const cd_ufunc_params *uf, char **args, const intptr_t *dims,
                     const intptr_t *steps)
{
    _Alignas(32) float buf[3][SUB + 24];   /* rows 4 KiB + 96 B apart, so loads of one row and stores to another differ in their low 12 address bits (no 4K aliasing; measured: no change on the machines at hand) */
    char *a32[3] = {(char *)buf[0], (char *)buf[1], (char *)buf[2]};
    intptr_t s32[3] = {4, 4, 4}, len = dims[0];
    int n = uf->nin;
    a32[n] = (char *)buf[2];   /* the output (unary: a32[1]) */
    if (n > 2 || steps[n] != 2) {
        uf->fn(args, dims, steps, uf->data);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (steps[i] != 0 && steps[i] != 2) {
            uf->fn(args, dims, steps, uf->data);
            return;
        }
        if (steps[i] == 0) {   /* a scalar operand: converted once, to every lane */
            uint16_t h;
            float v;
            memcpy(&h, args[i], 2);
            v = cd_h2f(h);
            for (intptr_t k = 0; k < (len < SUB ? (len + 7) & ~(intptr_t)7 : SUB); k++)
                buf[i][k] = v;   /* (only the lanes a call of this length reads) */
        }
    }
    for (intptr_t off = 0; off < len; off += SUB) {
        intptr_t k = len - off < SUB ? len - off : SUB, k8 = (k + 7) & ~(intptr_t)7;
        for (int i = 0; i < n; i++) {
            if (steps[i] == 0)
                continue;
            cd_half_to_float((const uint16_t *)(const void *)(args[i] + 2 * off), buf[i], k);
            for (intptr_t j = k; j < k8; j++)   /* padding lanes: no flags from 1.0 */
                buf[i][j] = 1.0f;
        }
        uf->fn32(a32, &k8, s32, uf->data32);
        cd_float_to_half(buf[2], (uint16_t *)(void *)(args[n] + 2 * off), k);
    }
}
