/*
 * ufunc.c - the "ufunc" kernel (interface: ufunc.h): one of NumPy's own
 * elementwise inner loops, resolved at graph-build time by ufunc_py.c, run
 * over chunks on a C worker without the GIL.  Pure C: no Python here.
 *
 * Design.  The kernel reads its cd_ufunc_params from the parameter bytes
 * (memcpy: they need not be aligned), broadcasts its input chunks by NumPy's
 * rules (dimensions aligned on the right; a dimension of 1, or a missing one,
 * stretches), allocates the output chunk in the loop's output dtype and walks
 * it:
 *
 *   - Every operand gets an element stride per output axis (0 where it is
 *     broadcast).  Adjacent axes whose strides chain for every operand are
 *     merged, so equal-shape inputs become one flat axis and a (n, 1) + (1, m)
 *     pair stays two axes.  The innermost merged axis is where the loop runs;
 *     there an input's stride is 0 (broadcast) or one element (inputs are
 *     C-contiguous chunks).
 *   - The inner axis is cut into blocks of BLK elements.  An input whose
 *     chunk dtype differs from the loop dtype is first cast into a scratch
 *     buffer of BLK elements (one element when its stride is 0); the loop
 *     then gets contiguous pointers, or stride 0 for broadcast inputs, and
 *     writes straight into the output chunk.  This is how NumPy's own
 *     buffered iteration calls it, so results are bit-for-bit NumPy's.
 *   - When broadcasting leaves short rows (two or more merged axes, an inner
 *     one shorter than BLK), rows are instead gathered into contiguous
 *     buffers of up to BLK elements (run_gathered), as NumPy 2's buffered
 *     iterator does, so the loop sees the same long contiguous runs.
 *   - Cancellation is polled after every POLL elements or so.
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
 * Casts (cd_cast) are written out for every pair of the 13 dtypes by macros,
 * with NumPy's astype semantics.  Float -> integer conversions of values out
 * of range (or NaN) are undefined in C; here they take an explicit branch that
 * yields what x86-64's truncating conversions yield for the int8..int64
 * targets and raises FE_INVALID, as the hardware (and NumPy's cast) does.
 */
#include "kernels/ufunc.h"
#include "kernels/broadcast.h"

#include <fenv.h>
#include <stdlib.h>
#include <string.h>

#define BLK ((int64_t)8192)         /* elements per loop call: NumPy's buffer size */
#define POLL ((int64_t)1 << 16)     /* elements between cancellation polls */

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

static inline uint64_t f2u64(double x)
{
    if (x >= 0.0 && x < 18446744073709551616.0)
        return (uint64_t)x;
    if (x < 0.0 && x >= -9223372036854775808.0)
        return (uint64_t)(int64_t)x;   /* small negatives wrap, as NumPy's casts do */
    feraiseexcept(FE_INVALID);
    return (uint64_t)1 << 63;
}

/* CV_<source kind>_<target>(x): N integer or bool source, F real floating
 * source, C complex source. */
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
#define CV_F_u32(x) ((uint32_t)(uint64_t)f2i64(x))
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
#define CV_KIND_F F
#define CV_KIND_C C
#define LOAD_KIND_B LOAD_BOOL
#define LOAD_KIND_I LOAD_PLAIN
#define LOAD_KIND_U LOAD_PLAIN
#define LOAD_KIND_F LOAD_PLAIN
#define LOAD_KIND_C LOAD_PLAIN
#define DEF_CASTS_FROM_ROW(S, TS, K, LOAD) DEF_CASTS_FROM(S, TS, K, LOAD)
#define X(id, name, sfx, ctype, kind) DEF_CASTS_FROM_ROW(sfx, ctype, CV_KIND_##kind, LOAD_KIND_##kind)
CD_DTYPE_TABLE(X)
#undef X

#define CAST_ROW(S)                                                           \
    { cast_##S##_b, cast_##S##_i8, cast_##S##_i16, cast_##S##_i32,            \
      cast_##S##_i64, cast_##S##_u8, cast_##S##_u16, cast_##S##_u32,          \
      cast_##S##_u64, cast_##S##_f32, cast_##S##_f64, cast_##S##_c64,         \
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
        p->nout != 1 || p->fn == NULL)
        return cd_err_set(err, CD_EINTERNAL, "kernel 'ufunc': corrupt parameters");
    for (int i = 0; i <= p->nin; i++)
        if (p->loop[i] < 0 || p->loop[i] >= CD_NDTYPES)
            return cd_err_set(err, CD_EINTERNAL, "kernel 'ufunc': corrupt parameters");
    return 0;
}

/* NumPy's broadcast of the inputs' shapes into shape[*ndim]; 0 or
 * CD_EVALUE with NumPy's message (err may be NULL). */
static int broadcast(const cd_ufunc_params *p, int nin, cd_chunk *const *in,
                     int *ndim, int64_t *shape, cd_err *err)
{
    int nds[CD_UFUNC_MAXIN];
    const int64_t *shapes[CD_UFUNC_MAXIN];
    for (int i = 0; i < nin; i++) {
        nds[i] = in[i]->ndim;
        shapes[i] = in[i]->shape;
    }
    if (cd_broadcast_shape(nin, NULL, nds, shapes, ndim, shape) == 0)
        return 0;
    if (err != NULL) {
        char buf[CD_ERRMSG];
        cd_fmt_shapes(buf, sizeof(buf), nin, NULL, nds, shapes, 1);
        cd_err_set(err, CD_EVALUE,
                   "ufunc '%s': operands could not be broadcast together with shapes %s",
                   p->name, buf);
    }
    return CD_EVALUE;
}

/* ------------------------------------------------------------------ */
/* the kernel                                                          */

#define NOPS (CD_UFUNC_MAXIN + 1)

typedef struct {
    int nd;                          /* merged axes, >= 1 */
    int64_t len[CD_MAXDIMS];
    int64_t st[NOPS][CD_MAXDIMS];    /* element strides per operand */
} walk;

/* Strides of each operand over the output's axes, then merge axes. */
static void plan_walk(int nin, cd_chunk *const *in, int ndim, const int64_t *shape, walk *w)
{
    int64_t st[NOPS][CD_MAXDIMS];
    for (int i = 0; i < nin; i++)
        cd_broadcast_strides(ndim, in[i]->ndim, in[i]->shape, NULL, st[i]);
    cd_broadcast_strides(ndim, ndim, shape, NULL, st[nin]);
    w->nd = cd_merge_axes(nin + 1, ndim, shape, (const int64_t (*)[CD_MAXDIMS])st, w->len, w->st);
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

/*
 * Broadcasting that leaves short rows (inner merged axis shorter than BLK):
 * as NumPy's buffered iteration does, gather whole rows of every input that
 * is not a scalar into contiguous buffers of the largest multiple of the row
 * length up to BLK elements, and run the loop once per buffer (contiguous
 * steps; stride 0 for inputs broadcast along every axis).  Same values as a
 * row-by-row walk, but the loop sees NumPy's call pattern (long contiguous
 * runs), which matters for loops whose vector and scalar paths differ in
 * details like the sign of fmax(-0.0, 0.0).
 */
static int run_gathered(const cd_kctx *ctx, const cd_ufunc_params *p, int nin,
                        const char *const *in_data, const cd_dtype *in_dt, cd_chunk *r,
                        const walk *w, cd_err *err)
{
    int inner = w->nd - 1, rc = 0;
    int64_t L = w->len[inner], rows_per = BLK / L, B = rows_per * L;
    int64_t total_rows = r->size / L, idx[CD_MAXDIMS], base[NOPS], since_poll = 0;
    int osz = cd_dtype_itemsize[r->dtype];
    void *buf[CD_UFUNC_MAXIN] = {NULL};
    int scalar[CD_UFUNC_MAXIN];
    _Alignas(16) unsigned char one[CD_UFUNC_MAXIN][16];

    for (int a = 0; a < w->nd; a++)
        idx[a] = 0;
    for (int o = 0; o <= nin; o++)
        base[o] = 0;
    for (int i = 0; i < nin; i++) {
        scalar[i] = 1;
        for (int a = 0; a < w->nd; a++)
            if (w->st[i][a] != 0)
                scalar[i] = 0;
        if (scalar[i]) {
            cd_cast(in_dt[i], in_data[i], (cd_dtype)p->loop[i], one[i], 1);
            continue;
        }
        buf[i] = malloc((size_t)B * (size_t)cd_dtype_itemsize[p->loop[i]]);
        if (buf[i] == NULL) {
            rc = cd_err_set(err, CD_ENOMEM, "ufunc '%s': out of memory", p->name);
            goto out;
        }
    }
    for (int64_t row0 = 0; row0 < total_rows; row0 += rows_per) {
        int64_t nrows = total_rows - row0 < rows_per ? total_rows - row0 : rows_per;
        int64_t m = nrows * L;
        char *args[NOPS];
        intptr_t steps[NOPS], dims[1];
        /* fill the buffers row by row, advancing the outer odometer */
        for (int64_t k = 0; k < nrows; k++) {
            for (int i = 0; i < nin; i++) {
                int lsz = cd_dtype_itemsize[p->loop[i]];
                char *dst = (char *)buf[i] + k * L * lsz;
                const char *src = in_data[i] + base[i] * cd_dtype_itemsize[in_dt[i]];
                if (scalar[i])
                    continue;
                if (w->st[i][inner] != 0) {
                    cd_cast(in_dt[i], src, (cd_dtype)p->loop[i], dst, L);
                } else {
                    cd_cast(in_dt[i], src, (cd_dtype)p->loop[i], dst, 1);
                    for (int64_t j = 1; j < L; j++)
                        memcpy(dst + j * lsz, dst, (size_t)lsz);
                }
            }
            for (int a = inner - 1; a >= 0; a--) {
                idx[a]++;
                for (int o = 0; o < nin; o++)
                    base[o] += w->st[o][a];
                if (idx[a] < w->len[a])
                    break;
                for (int o = 0; o < nin; o++)
                    base[o] -= w->st[o][a] * w->len[a];
                idx[a] = 0;
            }
        }
        for (int i = 0; i < nin; i++) {
            args[i] = scalar[i] ? (char *)one[i] : (char *)buf[i];
            steps[i] = scalar[i] ? 0 : cd_dtype_itemsize[p->loop[i]];
        }
        args[nin] = (char *)r->data + row0 * L * osz;
        steps[nin] = osz;
        if ((p->flags & CD_UF_CHECK_NEG_EXPONENT) && nin == 2 &&
            cd_ufunc_any_negative(p->loop[1], args[1], m, steps[1])) {
            rc = cd_err_set(err, CD_EVALUE, "Integers to negative integer powers are not allowed.");
            goto out;
        }
        dims[0] = (intptr_t)m;
        p->fn(args, dims, steps, p->data);
        since_poll += m;
        if (since_poll >= POLL) {
            since_poll = 0;
            if (cd_cancelled(ctx)) {
                rc = cd_err_set(err, CD_ECANCEL, "cancelled");
                goto out;
            }
        }
    }
out:
    for (int i = 0; i < nin; i++)
        free(buf[i]);
    return rc;
}

static int k_ufunc(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    _Alignas(16) unsigned char weak[CD_UFUNC_MAXIN][16];
    const char *in_data[CD_UFUNC_MAXIN];
    cd_dtype in_dt[CD_UFUNC_MAXIN];
    cd_ufunc_params p;
    int64_t shape[CD_MAXDIMS], idx[CD_MAXDIMS], base[NOPS], since_poll = 0;
    void *scratch[CD_UFUNC_MAXIN] = {NULL};
    int ndim = 0, rc = 0, inner;
    cd_chunk *r = NULL;
    walk w;

    *out = NULL;
    rc = read_params(ctx, &p, err);
    if (rc < 0)
        return rc;
    if (nin != p.nin)
        return cd_err_set(err, CD_ETYPE, "ufunc '%s' takes %d input%s, got %d",
                          p.name, p.nin, p.nin == 1 ? "" : "s", nin);
    rc = broadcast(&p, nin, in, &ndim, shape, err);
    if (rc < 0)
        return rc;
    r = cd_chunk_new((cd_dtype)p.loop[nin], ndim, shape, err);
    if (r == NULL)
        return err != NULL && err->code ? err->code : CD_ENOMEM;
    for (int i = 0; i < nin; i++) {
        in_data[i] = in[i]->data;
        in_dt[i] = in[i]->dtype;
        if (p.declared[i] == CD_UF_WEAK_INT && in[i]->ndim == 0 &&
            in_dt[i] <= CD_UINT64) {   /* bool or an integer */
            rc = convert_weak_int(in[i], (cd_dtype)p.loop[i], weak[i], err);
            if (rc < 0)
                goto fail;
            in_data[i] = (const char *)weak[i];
            in_dt[i] = (cd_dtype)p.loop[i];
        }
    }
    if (r->size == 0) {
        *out = r;
        return 0;
    }
    for (int i = 0; i < nin; i++) {
        if (in_dt[i] != (cd_dtype)p.loop[i]) {
            scratch[i] = malloc((size_t)BLK * (size_t)cd_dtype_itemsize[p.loop[i]]);
            if (scratch[i] == NULL) {
                rc = cd_err_set(err, CD_ENOMEM, "ufunc '%s': out of memory", p.name);
                goto fail;
            }
        }
    }
    plan_walk(nin, in, ndim, shape, &w);
    inner = w.nd - 1;
    for (int a = 0; a < w.nd; a++)
        idx[a] = 0;
    for (int o = 0; o <= nin; o++)
        base[o] = 0;
    if (w.nd > 1 && w.len[inner] < BLK) {
        rc = run_gathered(ctx, &p, nin, in_data, in_dt, r, &w, err);
        if (rc < 0)
            goto fail;
        goto done;
    }

    for (;;) {
        int64_t L = w.len[inner];
        for (int64_t off = 0; off < L; off += BLK) {
            int64_t m = L - off < BLK ? L - off : BLK;
            char *args[NOPS];
            intptr_t steps[NOPS], dims[1];
            for (int i = 0; i < nin; i++) {
                int64_t s = w.st[i][inner];
                int isz = cd_dtype_itemsize[in_dt[i]];
                const char *src = in_data[i] + (base[i] + off * s) * isz;
                if (scratch[i] == NULL) {
                    args[i] = (char *)src;
                    steps[i] = (intptr_t)(s * isz);
                } else {
                    cd_cast(in_dt[i], src, (cd_dtype)p.loop[i], scratch[i], s ? m : 1);
                    args[i] = scratch[i];
                    steps[i] = s ? cd_dtype_itemsize[p.loop[i]] : 0;
                }
            }
            args[nin] = (char *)r->data + (base[nin] + off) * cd_dtype_itemsize[r->dtype];
            steps[nin] = cd_dtype_itemsize[r->dtype];
            if ((p.flags & CD_UF_CHECK_NEG_EXPONENT) && nin == 2 &&
                cd_ufunc_any_negative(p.loop[1], args[1], m, steps[1])) {
                rc = cd_err_set(err, CD_EVALUE,
                                "Integers to negative integer powers are not allowed.");
                goto fail;
            }
            dims[0] = (intptr_t)m;
            p.fn(args, dims, steps, p.data);
            since_poll += m;
            if (since_poll >= POLL) {
                since_poll = 0;
                if (cd_cancelled(ctx)) {
                    rc = cd_err_set(err, CD_ECANCEL, "cancelled");
                    goto fail;
                }
            }
        }
        /* next position of the outer axes */
        {
            int a = inner - 1;
            for (; a >= 0; a--) {
                idx[a]++;
                for (int o = 0; o <= nin; o++)
                    base[o] += w.st[o][a];
                if (idx[a] < w.len[a])
                    break;
                for (int o = 0; o <= nin; o++)
                    base[o] -= w.st[o][a] * w.len[a];
                idx[a] = 0;
            }
            if (a < 0)
                break;
        }
    }
done:
    for (int i = 0; i < nin; i++)
        free(scratch[i]);
    *out = r;
    return 0;
fail:
    for (int i = 0; i < nin; i++)
        free(scratch[i]);
    if (r != NULL)
        cd_chunk_decref(r);
    return rc;
}

static int64_t ufunc_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    cd_ufunc_params p;
    int64_t shape[CD_MAXDIMS], n = 1;
    int ndim = 0;
    if (read_params(ctx, &p, NULL) < 0 || nin != p.nin ||
        broadcast(&p, nin, in, &ndim, shape, NULL) < 0)
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
