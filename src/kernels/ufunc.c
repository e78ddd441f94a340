/*
 * ufunc.c - the "ufunc" kernel (interface: ufunc.h): one of NumPy's own
 * elementwise inner loops, resolved at graph-build time by ufunc_py.c, run
 * over chunks on a C worker without the GIL.  Pure C: no Python here.
 *
 * Design.  A ufunc on chunks is a fused program of ONE step: the kernel
 * reads its cd_ufunc_params from the parameter bytes (memcpy: they need not
 * be aligned) straight into the step of a one-step cd_fused_params built on
 * the stack (its inputs: the chunks, of whatever dtypes they have), and
 * hands it to the fused kernel's engine (fused.c: cd_fused_run), which
 * broadcasts, walks the output in blocks, casts and calls the loop.  So
 * there is one elementwise engine; what the "ufunc" kernel keeps of its own
 * is how it asks to be run (a cd_fused_style):
 *
 *   - blocks of BLK = 8192 elements, never halved; where broadcasting leaves
 *     rows shorter than that (two or more merged axes), as many whole rows
 *     per block as fit: how NumPy's buffered iteration calls a loop, so the
 *     loop sees NumPy's call pattern and results are bit-for-bit NumPy's;
 *   - NumPy's wording of errors ("ufunc 'add': operands could not be
 *     broadcast together with shapes (2,3) (4,) ");
 *   - an empty result returns before anything is computed; no page hints.
 *
 * The kernel's out_bytes and work_bytes stay its own (work: one BLK-element
 * buffer per input, in the loop dtype).
 *
 * Inputs declared as NEP 50 weak Python ints (0-d int64/uint64 chunks) are
 * converted as NumPy converts the Python int: OverflowError when it does not
 * fit an integer loop dtype, through double for floating loop dtypes.
 *
 * NumPy's loops report floating-point errors through the thread's status
 * flags; the kernel is marked CD_KF_FPE and its callers clear and read them.
 * The one numeric loop family that uses the Python API is integer power with
 * a negative exponent (it raises ValueError): the kernel checks exponents of
 * such loops first and fails with the same message instead.
 *
 * Casts (cd_cast) are written out for every pair of the 14 dtypes by macros,
 * with NumPy's astype semantics.  float16 is kept as its bits and converted
 * as NumPy converts it (float16 <-> float32 over arrays: kernels/half.c,
 * with F16C where the CPU has it): to float32/float64 exactly (NaN payloads
 * kept bit for bit), from float32/float64 rounded once to nearest-even
 * (overflow to infinity raises FE_OVERFLOW; a NaN keeps its sign and top
 * payload bits and stays a NaN), integers through double (exact in the
 * float16 range), to integers through float32.  Float -> integer conversions of values out
 * of range (or NaN) are undefined in C; here they take an explicit branch that
 * yields what x86-64's truncating conversions yield for the int8..int64
 * targets and raises FE_INVALID, as the hardware (and NumPy's cast) does.
 */
#include "kernels/ufunc.h"
#include "kernels/broadcast.h"
#include "kernels/half.h"
#include "kernels/fused.h"

#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLK ((int64_t)8192)         /* elements per block: NumPy's buffer size */

typedef cd_complex64 ucf32;
typedef cd_complex128 ucf64;

/* ------------------------------------------------------------------ */
/* casts                                                               */

/* Truncate toward zero; out of range or NaN: INT32_MIN / INT64_MIN (as
 * cvttsd2si) and the invalid flag, with no undefined behaviour. */
static inline int32_t f2i32(double x)
{
    if (x > -2147483649.0 && x < 2147483648.0)
        return (int32_t)x;
    feraiseexcept(FE_INVALID);
    return INT32_MIN;
}

static inline int64_t f2i64(double x)
{
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0)
        return (int64_t)x;
    feraiseexcept(FE_INVALID);
    return INT64_MIN;
}

/* To uint32 as NumPy's float and complex casts give it on x86-64 (the
 * compilers' vectorised conversion): below 2^31 through the int32
 * conversion, from 2^31 through the int32 conversion of x - 2^31 with the
 * top bit flipped - so NaN and values below -2^31 give 2^31, 2^32 and above
 * (+inf) give 0, and FE_INVALID is raised for them.  (Its float16 casts go
 * through int64: CV_H_u32.) */
static inline uint32_t f2u32(double x)
{
    if (x >= 2147483648.0)
        return (uint32_t)f2i32(x - 2147483648.0) ^ 0x80000000u;
    return (uint32_t)f2i32(x);
}

static inline uint64_t f2u64(double x)
{
    if (x >= 0.0 && x < 18446744073709551616.0)
        return (uint64_t)x;
    if (x < 0.0 && x >= -9223372036854775808.0)
        return (uint64_t)(int64_t)x;   /* small negatives wrap, as NumPy's casts do */
    feraiseexcept(FE_INVALID);
    /* x86-64's unsigned conversion: 2^64 and above (+inf) give 0; NaN and
     * below -2^63, 2^63 */
    return x >= 18446744073709551616.0 ? 0 : (uint64_t)1 << 63;
}

/* float16 bits -> float64 (float16 <-> float32: kernels/half.h). */
static inline double h2d(uint16_t h)
{
    uint64_t sgn = (uint64_t)(h & 0x8000u) << 48, m = h & 0x3ffu, bits;
    double d;
    if (((h >> 10) & 0x1fu) == 31) {   /* inf, NaN: bits, not a float conversion */
        bits = sgn | 0x7ff0000000000000ull | (m << 42);
        memcpy(&d, &bits, 8);
        return d;
    }
    return (double)cd_h2f(h);
}

static inline uint16_t d2h(double d)
{
    uint64_t b;
    uint16_t s;
    memcpy(&b, &d, 8);
    s = (uint16_t)((b >> 48) & 0x8000u);
    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) {
        uint64_t m = b & 0x000fffffffffffffull;
        uint16_t r = (uint16_t)(0x7c00u | (m >> 42));
        return (uint16_t)(s | (m != 0 && r == 0x7c00u ? 0x7c01u : r));
    }
    return cd_finite_to_h(fabs(d), s);
}

/* to float16 from a real value of C type float or double (or an integer,
 * through double: exact, and integers past 65519 are infinity either way) */
#define TO_H(x) _Generic((x), float: cd_f2h, default: d2h)(x)

/* CV_<source kind>_<target>(x): N integer or bool source, F real floating
 * source, C complex source, H float16 (bits) source. */
#define CV_N_b(x) ((uint8_t)((x) != 0))
#define CV_F_b(x) ((uint8_t)((x) != 0))
#define CV_C_b(x) ((uint8_t)((x).re != 0 || (x).im != 0))

#define CV_N_i8(x) ((int8_t)(x))
#define CV_N_i16(x) ((int16_t)(x))
#define CV_N_i32(x) ((int32_t)(x))
#define CV_N_i64(x) ((int64_t)(x))
#define CV_N_u8(x) ((uint8_t)(x))
#define CV_N_u16(x) ((uint16_t)(x))
#define CV_N_u32(x) ((uint32_t)(x))
#define CV_N_u64(x) ((uint64_t)(x))
#define CV_F_i8(x) ((int8_t)(uint8_t)(uint32_t)f2i32(x))
#define CV_F_i16(x) ((int16_t)(uint16_t)(uint32_t)f2i32(x))
#define CV_F_i32(x) (f2i32(x))
#define CV_F_i64(x) (f2i64(x))
#define CV_F_u8(x) ((uint8_t)(uint32_t)f2i32(x))
#define CV_F_u16(x) ((uint16_t)(uint32_t)f2i32(x))
#define CV_F_u32(x) (f2u32(x))
#define CV_F_u64(x) (f2u64(x))
#define CV_C_i8(x) CV_F_i8((x).re)
#define CV_C_i16(x) CV_F_i16((x).re)
#define CV_C_i32(x) CV_F_i32((x).re)
#define CV_C_i64(x) CV_F_i64((x).re)
#define CV_C_u8(x) CV_F_u8((x).re)
#define CV_C_u16(x) CV_F_u16((x).re)
#define CV_C_u32(x) CV_F_u32((x).re)
#define CV_C_u64(x) CV_F_u64((x).re)

#define CV_N_f32(x) ((float)(x))
#define CV_N_f64(x) ((double)(x))
#define CV_F_f32(x) ((float)(x))
#define CV_F_f64(x) ((double)(x))
#define CV_C_f32(x) ((float)(x).re)
#define CV_C_f64(x) ((double)(x).re)

#define CV_N_f16(x) (d2h((double)(x)))
#define CV_F_f16(x) (TO_H(x))
#define CV_C_f16(x) (TO_H((x).re))
#define CV_H_b(x) ((uint8_t)(((x) & 0x7fffu) != 0))
#define CV_H_i8(x) CV_F_i8(cd_h2f(x))
#define CV_H_i16(x) CV_F_i16(cd_h2f(x))
#define CV_H_i32(x) CV_F_i32(cd_h2f(x))
#define CV_H_i64(x) CV_F_i64(cd_h2f(x))
#define CV_H_u8(x) CV_F_u8(cd_h2f(x))
#define CV_H_u16(x) CV_F_u16(cd_h2f(x))
#define CV_H_u32(x) ((uint32_t)(uint64_t)f2i64(cd_h2f(x)))
#define CV_H_u64(x) CV_F_u64(cd_h2f(x))
#define CV_H_f16(x) (x)
#define CV_H_f32(x) (cd_h2f(x))
#define CV_H_f64(x) (h2d(x))
#define CV_H_c64(x) ((ucf32){cd_h2f(x), 0.0f})
#define CV_H_c128(x) ((ucf64){h2d(x), 0.0})

#define CV_N_c64(x) ((ucf32){(float)(x), 0.0f})
#define CV_N_c128(x) ((ucf64){(double)(x), 0.0})
#define CV_F_c64(x) ((ucf32){(float)(x), 0.0f})
#define CV_F_c128(x) ((ucf64){(double)(x), 0.0})
#define CV_C_c64(x) ((ucf32){(float)(x).re, (float)(x).im})
#define CV_C_c128(x) ((ucf64){(double)(x).re, (double)(x).im})

typedef void (*castfn)(const void *src, void *dst, int64_t n);

/* LOAD turns the stored value into the value converted (bool: x != 0). */
#define DEF_CAST(S, TS, K, LOAD, D, TD)                                      \
    static void cast_##S##_##D(const void *src, void *dst, int64_t n)        \
    {                                                                        \
        const TS *a = src;                                                   \
        TD *b = dst;                                                         \
        for (int64_t i = 0; i < n; i++) {                                    \
            TS x = LOAD(a[i]);                                               \
            b[i] = CV_##K##_##D(x);                                          \
        }                                                                    \
    }

#define LOAD_PLAIN(v) (v)
#define LOAD_BOOL(v) ((uint8_t)((v) != 0))

#define DEF_CASTS_FROM(S, TS, K, LOAD)            \
    DEF_CAST(S, TS, K, LOAD, b, uint8_t)          \
    DEF_CAST(S, TS, K, LOAD, i8, int8_t)          \
    DEF_CAST(S, TS, K, LOAD, i16, int16_t)        \
    DEF_CAST(S, TS, K, LOAD, i32, int32_t)        \
    DEF_CAST(S, TS, K, LOAD, i64, int64_t)        \
    DEF_CAST(S, TS, K, LOAD, u8, uint8_t)         \
    DEF_CAST(S, TS, K, LOAD, u16, uint16_t)       \
    DEF_CAST(S, TS, K, LOAD, u32, uint32_t)       \
    DEF_CAST(S, TS, K, LOAD, u64, uint64_t)       \
    DEF_CAST(S, TS, K, LOAD, f16, uint16_t)       \
    DEF_CAST(S, TS, K, LOAD, f32, float)          \
    DEF_CAST(S, TS, K, LOAD, f64, double)         \
    DEF_CAST(S, TS, K, LOAD, c64, ucf32)          \
    DEF_CAST(S, TS, K, LOAD, c128, ucf64)

/* One DEF_CASTS_FROM per row of the dtype table (core/dtypes.h): the kind
 * picks the conversion family and how a stored value is loaded.  (The
 * targets inside DEF_CASTS_FROM and CAST_ROW are spelled out: a macro
 * cannot expand the table again from within its own expansion.) */
#define CV_KIND_B N
#define CV_KIND_I N
#define CV_KIND_U N
#define CV_KIND_H H
#define CV_KIND_F F
#define CV_KIND_C C
#define LOAD_KIND_B LOAD_BOOL
#define LOAD_KIND_I LOAD_PLAIN
#define LOAD_KIND_U LOAD_PLAIN
#define LOAD_KIND_H LOAD_PLAIN
#define LOAD_KIND_F LOAD_PLAIN
#define LOAD_KIND_C LOAD_PLAIN
#define DEF_CASTS_FROM_ROW(S, TS, K, LOAD) DEF_CASTS_FROM(S, TS, K, LOAD)
#define X(id, name, sfx, ctype, kind) DEF_CASTS_FROM_ROW(sfx, ctype, CV_KIND_##kind, LOAD_KIND_##kind)
CD_DTYPE_TABLE(X)
#undef X

#define CAST_ROW(S)                                                           \
    { cast_##S##_b, cast_##S##_i8, cast_##S##_i16, cast_##S##_i32,            \
      cast_##S##_i64, cast_##S##_u8, cast_##S##_u16, cast_##S##_u32,          \
      cast_##S##_u64, cast_##S##_f16, cast_##S##_f32, cast_##S##_f64,         \
      cast_##S##_c64,                                                         \
      cast_##S##_c128 }

/* Indexed [from][to] in cd_dtype order. */
static const castfn cast_table[CD_NDTYPES][CD_NDTYPES] = {
#define X(id, name, sfx, ctype, kind) [CD_##id] = CAST_ROW(sfx),
    CD_DTYPE_TABLE(X)
#undef X
};

void cd_cast(cd_dtype from, const void *src, cd_dtype to, void *dst, int64_t n)
{
    if (from == to) {
        if (src != dst && n > 0)
            memmove(dst, src, (size_t)n * (size_t)cd_dtype_itemsize[from]);
        return;
    }
    if (from == CD_FLOAT16 && to == CD_FLOAT32) {   /* vectorised where the CPU can */
        cd_half_to_float(src, dst, n);
        return;
    }
    if (from == CD_FLOAT32 && to == CD_FLOAT16) {
        cd_float_to_half(src, dst, n);
        return;
    }
    cast_table[from][to](src, dst, n);
}

/* ------------------------------------------------------------------ */
/* parameters and shapes                                               */

static int read_params(const cd_kctx *ctx, cd_ufunc_params *p, cd_err *err)
{
    if (ctx->params == NULL || ctx->params_size != sizeof(*p))
        return cd_err_set(err, CD_EINTERNAL, "kernel 'ufunc': bad parameters (%zu bytes)",
                          ctx->params_size);
    memcpy(p, ctx->params, sizeof(*p));
    p->name[CD_UFUNC_NAMELEN - 1] = '\0';
    if (p->magic != CD_UFUNC_MAGIC || p->nin < 1 || p->nin > CD_UFUNC_MAXIN ||
        p->nout != 1 || p->fn == NULL || !cd_ufunc_via_ok(p))
        return cd_err_set(err, CD_EINTERNAL, "kernel 'ufunc': corrupt parameters");
    for (int i = 0; i <= p->nin; i++)
        if (p->loop[i] < 0 || p->loop[i] >= CD_NDTYPES)
            return cd_err_set(err, CD_EINTERNAL, "kernel 'ufunc': corrupt parameters");
    return 0;
}

/* ------------------------------------------------------------------ */
/* the kernel                                                          */

int cd_ufunc_via_ok(const cd_ufunc_params *p)
{
    if (!(p->flags & CD_UF_HALF_VIA_F32))
        return 1;
    if (p->fn32 == NULL || p->nin > 2)
        return 0;
    for (int i = 0; i <= p->nin; i++)
        if (p->loop[i] != CD_FLOAT16)
            return 0;
    return 1;
}

/*
 * Any negative value among m elements at p (stride `step` bytes) of the
 * signed integer dtype dt?  Always 0 for other dtypes.  NumPy's integer
 * power loops raise through the Python API on a negative exponent, which a
 * worker without the GIL must never reach: callers check first.
 */
int cd_ufunc_any_negative(int32_t dt, const char *p, int64_t m, intptr_t step)
{
    if (dt < CD_INT8 || dt > CD_INT64)
        return 0;
    for (int64_t i = 0; i < m; i++, p += step) {
        int64_t v;
        switch (dt) {
        case CD_INT8: { int8_t x; memcpy(&x, p, 1); v = x; break; }
        case CD_INT16: { int16_t x; memcpy(&x, p, 2); v = x; break; }
        case CD_INT32: { int32_t x; memcpy(&x, p, 4); v = x; break; }
        default: { int64_t x; memcpy(&x, p, 8); v = x; break; }
        }
        if (v < 0)
            return 1;
        if (step == 0)
            break;
    }
    return 0;
}

/*
 * A 0-d chunk given for a NEP 50 "weak" Python int (it arrives as int64 or
 * uint64), converted into buf as NumPy converts the Python int itself: to an
 * integer loop dtype only if it fits (else NumPy's OverflowError), to a
 * floating or complex one through double (NumPy goes through
 * PyLong_AsDouble, so int -> float32 rounds twice, unlike an int64 cast).
 * 0, or CD_EOVERFLOW.
 */
static int convert_weak_int(const cd_chunk *c, cd_dtype to, void *buf, cd_err *err)
{
    int neg = 0;
    uint64_t mag;
    if (c->dtype == CD_UINT64) {
        memcpy(&mag, c->data, 8);
    } else {
        int64_t v;
        cd_cast(c->dtype, c->data, CD_INT64, &v, 1);
        neg = v < 0;
        mag = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    }
    if ((to >= CD_INT8 && to <= CD_INT64) || (to >= CD_UINT8 && to <= CD_UINT64)) {
        int sgn = to <= CD_INT64;
        int bits = 8 * cd_dtype_itemsize[to];
        uint64_t maxpos = sgn ? ((uint64_t)1 << (bits - 1)) - 1
                              : (bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1);
        uint64_t maxneg = sgn ? (uint64_t)1 << (bits - 1) : 0;
        if (neg ? mag > maxneg : mag > maxpos) {
            if (neg)
                return cd_err_set(err, CD_EOVERFLOW, "Python integer -%llu out of bounds for %s",
                                  (unsigned long long)mag, cd_dtype_name[to]);
            return cd_err_set(err, CD_EOVERFLOW, "Python integer %llu out of bounds for %s",
                              (unsigned long long)mag, cd_dtype_name[to]);
        }
        cd_cast(c->dtype, c->data, to, buf, 1);
    } else if (to == CD_BOOL) {
        /* NumPy converts the int through a C long here */
        if (!neg && mag > (uint64_t)INT64_MAX)
            return cd_err_set(err, CD_EOVERFLOW, "Python int too large to convert to C long");
        cd_cast(c->dtype, c->data, to, buf, 1);
    } else {
        double d = neg ? -(double)mag : (double)mag;
        cd_cast(CD_FLOAT64, &d, to, buf, 1);
    }
    return 0;
}

/* The ufunc as a one-step program, run by the engine (see the top of the file). */
static int k_ufunc(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    union {
        cd_fused_params h;
        unsigned char bytes[CD_FUSED_PARAMS_SIZE(1, 0)];
    } prog;
    cd_fused_params *p = &prog.h;
    cd_fused_step *st = &p->step[0];
    _Alignas(16) unsigned char weak[CD_UFUNC_MAXIN][16];
    cd_fused_input x[CD_UFUNC_MAXIN];
    cd_fused_style style = {
        .what = "ufunc", .trailing_space = 1, .block = BLK, .fixed_block = 1, .empty_first = 1,
    };
    int rc;

    *out = NULL;
    rc = read_params(ctx, &st->uf, err);
    if (rc < 0)
        return rc;
    if (nin != st->uf.nin)
        return cd_err_set(err, CD_ETYPE, "ufunc '%s' takes %d input%s, got %d",
                          st->uf.name, st->uf.nin, st->uf.nin == 1 ? "" : "s", nin);
    style.name = st->uf.name;
    /* the header fields the engine reads (no store, no reduction, no views) */
    p->magic = CD_FUSED_MAGIC;
    p->nin = nin;
    p->nsteps = 1;
    p->flags = 0;
    p->ntrail = 0;
    p->span_lo = 0;
    p->span_hi = -1;
    p->red.kind = CD_RED_NONE;
    for (int i = 0; i < nin; i++) {
        const cd_chunk *c = in[i];
        cd_dtype loop_dt = (cd_dtype)st->uf.loop[i];
        x[i] = (cd_fused_input){.dt = c->dtype, .ndim = c->ndim, .shape = c->shape,
                                .data = c->data, .chunk = c, .whole = 1};
        if (st->uf.declared[i] == CD_UF_WEAK_INT && c->ndim == 0 &&
            c->dtype <= CD_UINT64) {   /* bool or an integer */
            rc = convert_weak_int(c, loop_dt, weak[i], err);
            if (rc < 0)
                return rc;
            x[i].dt = loop_dt;
            x[i].data = (const char *)weak[i];
        }
        p->in_dtype[i] = x[i].dt;
        st->op[i].kind = CD_FR_IN;
        st->op[i].index = i;
    }
    return cd_fused_run(ctx, p, x, NULL, &style, out, err);
}

static int64_t ufunc_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_ufunc_params p;
    int64_t shape[CD_MAXDIMS], n = 1;
    int ndim = 0;
    int nds[CD_UFUNC_MAXIN];
    const int64_t *shapes[CD_UFUNC_MAXIN];
    if (read_params(ctx, &p, NULL) < 0 || nin != p.nin)
        return 0;
    for (int i = 0; i < nin; i++) {
        nds[i] = in[i]->ndim;
        shapes[i] = in[i]->shape;
    }
    if (cd_broadcast_shape(nin, NULL, nds, shapes, &ndim, shape) < 0)
        return 0;
    for (int a = 0; a < ndim; a++)
        if (__builtin_mul_overflow(n, shape[a], &n))
            return INT64_MAX;
    if (__builtin_mul_overflow(n, (int64_t)cd_dtype_itemsize[p.loop[nin]], &n))
        return INT64_MAX;
    return n;
}

static int64_t ufunc_work_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_ufunc_params p;
    int64_t b = 0;
    CD_UNUSED(in);
    if (read_params(ctx, &p, NULL) < 0 || nin != p.nin)
        return 0;
    for (int i = 0; i < nin; i++)   /* cast or gather buffers, at most */
        b += BLK * cd_dtype_itemsize[p.loop[i]];
    return b;
}

const cd_kernel_desc cd_ufunc_desc = {
    "ufunc",
    "ufunc(*inputs): a NumPy ufunc's own inner loop over broadcast chunks "
    "(made by cdask._core.ufunc_kernel).",
    1, CD_UFUNC_MAXIN, k_ufunc, ufunc_out_bytes, ufunc_work_bytes, CD_KF_FPE,
};

/* ------------------------------------------------------------------ */
/* np.where as a loop (fused programs use it as a step)               */

#define CD_WHERE_LOOP(NAME, N)                                                        \
    static void NAME(char **args, const intptr_t *dims, const intptr_t *steps, void *d) \
    {                                                                                 \
        const char *c = args[0], *a = args[1], *b = args[2];                          \
        char *o = args[3];                                                            \
        CD_UNUSED(d);                                                                 \
        for (intptr_t i = 0; i < dims[0]; i++) {                                      \
            memcpy(o, *c ? a : b, N);                                                 \
            c += steps[0];                                                            \
            a += steps[1];                                                            \
            b += steps[2];                                                            \
            o += steps[3];                                                            \
        }                                                                             \
    }

CD_WHERE_LOOP(where_1, 1)
CD_WHERE_LOOP(where_2, 2)
CD_WHERE_LOOP(where_4, 4)
CD_WHERE_LOOP(where_8, 8)
CD_WHERE_LOOP(where_16, 16)

cd_ufunc_loop cd_where_loop(int itemsize)
{
    switch (itemsize) {
    case 1: return where_1;
    case 2: return where_2;
    case 4: return where_4;
    case 8: return where_8;
    case 16: return where_16;
    default: return NULL;
    }
}
