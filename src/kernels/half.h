/*
 * half.h - float16 (IEEE binary16, held as its 16 bits) conversions to and
 * from float32, as NumPy makes them, one at a time (inline, below) and over
 * arrays (half.c: vectorised with the CPU's F16C instructions where it has
 * them), and float16 loops run as float32 loops between such conversions.
 * Pure C.
 *
 * NumPy (built for its x86-64 baseline, which has no F16C) converts in
 * software: half -> float exactly, a signalling NaN staying signalling
 * (payload shifted up); float -> half rounded to nearest-even, a NaN keeping
 * its sign and its top payload bits (a payload that would vanish becomes 1:
 * still a NaN), overflow raising FE_OVERFLOW.  F16C's instructions give the
 * same bits except for signalling NaNs, which they quiet (and flag invalid),
 * so the array conversions take F16C's result only for groups of eight
 * elements holding no signalling NaN and convert other groups in software:
 * bit for bit the software result either way.  (One flag differs: F16C
 * flags underflow by IEEE's "tiny after rounding", as cd_finite_to_h does,
 * NumPy's software also for a result that rounds up to the smallest
 * normal; NumPy ignores underflow unless asked.)
 *
 * float16 loops through float32.  NumPy's float16 loops of add, subtract,
 * multiply and divide, and every loop it builds as "the float32 function
 * between conversions" (PyUFunc_e_e_As_f_f, PyUFunc_ee_e_As_ff_f: power,
 * sqrt, floor, hypot, arctan2, fmod, ...), compute each element in float32
 * and round it to float16.  cd_half_via_f32 does the same work in blocks:
 * the operands converted to float32 (vectorised), a float32 loop (uf->fn32:
 * NumPy's own PyUFunc_ff_f / PyUFunc_f_f calling the same float function,
 * or for + - * / the loops below), the result converted back - the same
 * bits as NumPy's float16 loop, several times faster.  Which loops qualify,
 * and which NaN's payload the result of two NaNs keeps (GCC compiles
 * HALF_add's in1 + in2 as in2 + in1; NumPy's float32 loops even differ
 * between their vector bodies and their tails, which is why they are not
 * used), is decided when the loop is resolved, by comparing both on probe
 * values (ufunc_py.c); the engine (fused.c: run_step) takes this path only
 * while cd_half_hw() is on.
 */
#ifndef CD_HALF_H
#define CD_HALF_H

#include "kernels/ufunc.h"

#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* float16 bits -> float32, exactly (NaN payloads, signalling or not, kept). */
static inline float cd_h2f(uint16_t h)
{
    uint32_t sgn = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t bits;
    float f;
    if (e == 0) {                      /* zero or subnormal: m * 2^-24, exact */
        f = (float)m * 0x1p-24f;
        return sgn ? -f : f;
    }
    if (e == 31)                       /* inf, NaN (payload kept) */
        bits = sgn | 0x7f800000u | (m << 13);
    else
        bits = sgn | ((e + 112u) << 23) | (m << 13);
    memcpy(&f, &bits, 4);
    return f;
}

/* A finite double's magnitude a (not NaN) rounded to float16 bits, sign s. */
static inline uint16_t cd_finite_to_h(double a, uint16_t s)
{
    int ex;
    double q;
    if (a >= 65520.0) {                /* past the largest half + half an ulp */
        feraiseexcept(FE_OVERFLOW | FE_INEXACT);
        return s | 0x7c00u;
    }
    if (a < 0x1p-14) {                 /* subnormal range: units of 2^-24 */
        q = nearbyint(a * 0x1p24);
        if (q != a * 0x1p24 && q < 1024.0)
            feraiseexcept(FE_UNDERFLOW | FE_INEXACT);
        return (uint16_t)(s | (uint16_t)q);   /* q == 1024: the smallest normal */
    }
    (void)frexp(a, &ex);               /* a = 1.f * 2^(ex-1) */
    q = nearbyint(ldexp(a, 11 - ex));  /* 1024 <= q <= 2048, ties to even */
    return (uint16_t)(s | (uint16_t)(((uint32_t)(ex + 14) << 10) + (uint32_t)q - 1024u));
}

/* float32 -> float16 bits, as NumPy's software conversion. */
static inline uint16_t cd_f2h(float f)
{
    uint32_t b;
    uint16_t s;
    memcpy(&b, &f, 4);
    s = (uint16_t)((b >> 16) & 0x8000u);
    if ((b & 0x7f800000u) == 0x7f800000u) {   /* from the bits: no quieting */
        uint32_t m = b & 0x7fffffu;
        uint16_t r = (uint16_t)(0x7c00u | (m >> 13));
        return (uint16_t)(s | (m != 0 && r == 0x7c00u ? 0x7c01u : r));
    }
    return cd_finite_to_h(fabs((double)f), s);
}

/* n float16 -> float32 and back, contiguous, bit for bit as cd_h2f / cd_f2h
 * (F16C where cd_half_hw() is on). */
void cd_half_to_float(const uint16_t *h, float *f, int64_t n);
void cd_float_to_half(const float *f, uint16_t *h, int64_t n);

/* The vectorised conversions and cd_half_via_f32 are in use: the CPU has
 * F16C, and tests have not switched them off (cd_half_set_hw(0)). */
int cd_half_hw(void);
void cd_half_set_hw(int on);

/*
 * Loop uf (a float16 loop with CD_UF_HALF_VIA_F32, nin <= 2) over dims[0]
 * elements with NumPy's loop arguments: operands of stride 0 or 2 bytes,
 * output of stride 2, are converted in blocks and run through uf->fn32 on
 * contiguous float32 buffers whose length is rounded up to a multiple of 8
 * (padded with 1.0); any other strides go to NumPy's own loop uf->fn.  The
 * same bits and floating-point flags as uf->fn (see the top of this file).
 */
void cd_half_via_f32(const cd_ufunc_params *uf, char **args, const intptr_t *dims,
                     const intptr_t *steps);

/* The float32 loop of op ('+', '-', '*' or '/') for cd_half_via_f32: where
 * both operands are NaN, the result is the first's NaN (quieted), or the
 * second's with second_nan.  NULL for another op, or without F16C code. */
cd_ufunc_loop cd_half_f32_arith(char op, int second_nan);

#endif /* CD_HALF_H */
