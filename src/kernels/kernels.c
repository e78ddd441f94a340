/*
 * kernels.c - the basic C kernels (interface: kernels.h; their descriptors
 * are in the registry, registry.h).
 *
 *   add, sub, mul   elementwise on two chunks of one dtype; equal shapes, or
 *                   one side with a single element broadcast as a scalar
 *   sum             0-d sum of every element of any number of chunks
 *   ones, zeros     float64 vector of length n (a 0-d integer input)
 *   dot             float32/float64 vector.vector (BLAS ?dot) and
 *                   matrix@matrix (BLAS ?gemm)
 *   spin            busy-wait a number of seconds, polling cancellation
 *   fail            always fails (tests the error path)
 *
 * Design.  Kernels run on worker threads without the GIL, so nothing here
 * touches Python.  Dtype-generic loops are stamped out by macros: each
 * elementwise operation has three loops per dtype (vector-vector,
 * scalar-vector, vector-scalar) written as plain indexed loops the compiler
 * vectorises, picked from a table indexed by operation and dtype.  Signed
 * integer arithmetic goes through the matching unsigned type (at least
 * `unsigned int` wide, so that narrow types are not promoted to signed int)
 * and wraps modulo 2^bits like NumPy, with no undefined behaviour.  Complex
 * values are pairs of reals with NumPy's textbook product formula.
 *
 * Floating-point sums are pairwise: below 8 elements a plain loop; up to a
 * block of 128 reals, eight independent accumulators combined as a balanced
 * tree; above that the range is split in two (at a multiple of 8) and each
 * half summed recursively, so the rounding error grows like O(log n) rather
 * than O(n).  float32 data is accumulated in double.  "sum" is also the leaf
 * and combine step of the scheduler's large reduction trees, so its only
 * allocation is the result chunk, whose 0-d payload lives inside the chunk.
 *
 * Long loops work in blocks and poll the cancel flag between blocks.  Every
 * error path releases what it made and leaves *out NULL.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>

#include "cblas.h"

#define BLOCK ((int64_t)1 << 18)   /* elements between cancellation polls */

typedef struct { float re, im; } cf32;
typedef struct { double re, im; } cf64;

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int is_int(cd_dtype d) { return d >= CD_INT8 && d <= CD_INT64; }
static int is_uint(cd_dtype d) { return d >= CD_UINT8 && d <= CD_UINT64; }
static int is_real_float(cd_dtype d) { return d == CD_FLOAT32 || d == CD_FLOAT64; }

/* "(3, 4)", "(5,)", "()" into buf (truncated with "..." if too long). */
static const char *fmt_shape(char *buf, size_t cap, const cd_chunk *c)
{
    cd_fmt_shape(buf, cap, c->ndim, c->shape, ", ");
    return buf;
}

static int arity_error(const char *name, const char *expected, int nin, cd_err *err)
{
    return cd_err_set(err, CD_ETYPE, "kernel '%s' takes %s input%s, got %d",
                      name, expected, strcmp(expected, "1") == 0 ? "" : "s", nin);
}

static int dtype_mismatch(const char *name, const cd_chunk *a, const cd_chunk *b, cd_err *err)
{
    return cd_err_set(err, CD_ETYPE,
                      "kernel '%s': inputs have dtypes %s and %s; cast them to one dtype first",
                      name, cd_dtype_name[a->dtype], cd_dtype_name[b->dtype]);
}

/* Read a 0-d integer chunk. 0, or CD_ETYPE/CD_EVALUE. */
static int read_int0(const char *name, const cd_chunk *c, int64_t *v, cd_err *err)
{
    if (c->ndim != 0 || !(is_int(c->dtype) || is_uint(c->dtype)))
        return cd_err_set(err, CD_ETYPE,
                          "kernel '%s' takes a 0-d integer (a length), got a %d-d %s chunk",
                          name, c->ndim, cd_dtype_name[c->dtype]);
    switch (c->dtype) {
    case CD_INT8: *v = *(const int8_t *)c->data; break;
    case CD_INT16: *v = *(const int16_t *)c->data; break;
    case CD_INT32: *v = *(const int32_t *)c->data; break;
    case CD_INT64: *v = *(const int64_t *)c->data; break;
    case CD_UINT8: *v = *(const uint8_t *)c->data; break;
    case CD_UINT16: *v = *(const uint16_t *)c->data; break;
    case CD_UINT32: *v = *(const uint32_t *)c->data; break;
    default: {
        uint64_t u = *(const uint64_t *)c->data;
        if (u > (uint64_t)INT64_MAX)
            return cd_err_set(err, CD_EVALUE, "kernel '%s': length %llu is too large",
                              name, (unsigned long long)u);
        *v = (int64_t)u;
    }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* add, sub, mul                                                       */

typedef void (*binloop)(const void *a, const void *b, void *o, int64_t n);

#define DEF_BIN(NAME, T, EXPR)                                                   \
    static void NAME##_vv(const void *a_, const void *b_, void *o_, int64_t n)   \
    {                                                                            \
        const T *restrict a = a_;                                                \
        const T *restrict b = b_;                                                \
        T *restrict o = o_;                                                      \
        for (int64_t i = 0; i < n; i++) {                                        \
            T x = a[i], y = b[i];                                                \
            o[i] = (EXPR);                                                       \
        }                                                                        \
    }                                                                            \
    static void NAME##_sv(const void *a_, const void *b_, void *o_, int64_t n)   \
    {                                                                            \
        const T x = *(const T *)a_;                                              \
        const T *restrict b = b_;                                                \
        T *restrict o = o_;                                                      \
        for (int64_t i = 0; i < n; i++) {                                        \
            T y = b[i];                                                          \
            o[i] = (EXPR);                                                       \
        }                                                                        \
    }                                                                            \
    static void NAME##_vs(const void *a_, const void *b_, void *o_, int64_t n)   \
    {                                                                            \
        const T *restrict a = a_;                                                \
        const T y = *(const T *)b_;                                              \
        T *restrict o = o_;                                                      \
        for (int64_t i = 0; i < n; i++) {                                        \
            T x = a[i];                                                          \
            o[i] = (EXPR);                                                       \
        }                                                                        \
    }

/* integers: wrap-around through an unsigned type UW at least int-wide */
#define DEF_INT3(SUF, T, UW)                              \
    DEF_BIN(add_##SUF, T, (T)((UW)x + (UW)y))             \
    DEF_BIN(sub_##SUF, T, (T)((UW)x - (UW)y))             \
    DEF_BIN(mul_##SUF, T, (T)((UW)x * (UW)y))

#define DEF_FLT3(SUF, T)                                  \
    DEF_BIN(add_##SUF, T, x + y)                          \
    DEF_BIN(sub_##SUF, T, x - y)                          \
    DEF_BIN(mul_##SUF, T, x * y)

#define DEF_CPX3(SUF, T)                                                          \
    DEF_BIN(add_##SUF, T, ((T){x.re + y.re, x.im + y.im}))                        \
    DEF_BIN(sub_##SUF, T, ((T){x.re - y.re, x.im - y.im}))                        \
    DEF_BIN(mul_##SUF, T, ((T){x.re * y.re - x.im * y.im, x.re * y.im + x.im * y.re}))

DEF_BIN(add_b, uint8_t, (uint8_t)((x != 0) | (y != 0)))
DEF_BIN(mul_b, uint8_t, (uint8_t)((x != 0) & (y != 0)))
DEF_INT3(i8, int8_t, uint32_t)
DEF_INT3(i16, int16_t, uint32_t)
DEF_INT3(i32, int32_t, uint32_t)
DEF_INT3(i64, int64_t, uint64_t)
DEF_INT3(u8, uint8_t, uint32_t)
DEF_INT3(u16, uint16_t, uint32_t)
DEF_INT3(u32, uint32_t, uint32_t)
DEF_INT3(u64, uint64_t, uint64_t)
DEF_FLT3(f32, float)
DEF_FLT3(f64, double)
DEF_CPX3(c64, cf32)
DEF_CPX3(c128, cf64)

enum { OP_ADD, OP_SUB, OP_MUL };
enum { M_VV, M_SV, M_VS };

#define E3(OP, SUF) { OP##_##SUF##_vv, OP##_##SUF##_sv, OP##_##SUF##_vs }
#define ROW(OP)                                                                   \
    [CD_INT8] = E3(OP, i8), [CD_INT16] = E3(OP, i16), [CD_INT32] = E3(OP, i32),   \
    [CD_INT64] = E3(OP, i64), [CD_UINT8] = E3(OP, u8), [CD_UINT16] = E3(OP, u16), \
    [CD_UINT32] = E3(OP, u32), [CD_UINT64] = E3(OP, u64),                         \
    [CD_FLOAT32] = E3(OP, f32), [CD_FLOAT64] = E3(OP, f64),                       \
    [CD_COMPLEX64] = E3(OP, c64), [CD_COMPLEX128] = E3(OP, c128)

static const binloop bin_table[3][CD_NDTYPES][3] = {
    [OP_ADD] = { [CD_BOOL] = E3(add, b), ROW(add) },
    [OP_SUB] = { ROW(sub) },                 /* no boolean subtract, as NumPy */
    [OP_MUL] = { [CD_BOOL] = E3(mul, b), ROW(mul) },
};

static int same_shape(const cd_chunk *a, const cd_chunk *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/*
 * The chunk whose shape the result takes, and the loop mode; NULL if the
 * shapes cannot be combined.  A single-element side broadcasts only when it
 * has no more dimensions than the other, so the result shape is exactly
 * NumPy's.
 */
static const cd_chunk *bin_shape(const cd_chunk *a, const cd_chunk *b, int *mode)
{
    if (same_shape(a, b)) {
        *mode = M_VV;
        return a;
    }
    if (a->size == 1 && a->ndim <= b->ndim) {
        *mode = M_SV;
        return b;
    }
    if (b->size == 1 && b->ndim <= a->ndim) {
        *mode = M_VS;
        return a;
    }
    return NULL;
}

static int binary(const cd_kctx *ctx, int op, const char *name, int nin,
                  cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    const cd_chunk *a, *b, *shp;
    cd_chunk *r;
    binloop loop;
    int mode;
    int64_t isz, n;
    char s1[160], s2[160];

    *out = NULL;
    if (nin != 2)
        return arity_error(name, "2", nin, err);
    a = in[0];
    b = in[1];
    if (a->dtype != b->dtype)
        return dtype_mismatch(name, a, b, err);
    loop = bin_table[op][a->dtype][0];
    if (loop == NULL && a->dtype != CD_BOOL)
        return cd_err_set(err, CD_ETYPE, "kernel '%s' does not take %s chunks (the ufunc "
                          "kernel runs NumPy's loops for every dtype)", name,
                          cd_dtype_name[a->dtype]);
    if (loop == NULL)
        return cd_err_set(err, CD_ETYPE,
                          "kernel '%s': boolean subtract is not supported (NumPy refuses it "
                          "too); use logical_xor, or cast to an integer dtype", name);
    shp = bin_shape(a, b, &mode);
    if (shp == NULL)
        return cd_err_set(err, CD_EVALUE,
                          "kernel '%s': shapes %s and %s cannot be combined; they must be "
                          "equal, or one input must have a single element",
                          name, fmt_shape(s1, sizeof(s1), a), fmt_shape(s2, sizeof(s2), b));
    r = cd_chunk_new(a->dtype, shp->ndim, shp->shape, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    loop = bin_table[op][a->dtype][mode];
    isz = cd_dtype_itemsize[a->dtype];
    n = r->size;
    for (int64_t off = 0; off < n; off += BLOCK) {
        int64_t m = n - off < BLOCK ? n - off : BLOCK;
        const char *pa = (const char *)a->data + (mode == M_SV ? 0 : off * isz);
        const char *pb = (const char *)b->data + (mode == M_VS ? 0 : off * isz);
        if (off != 0 && cd_cancelled(ctx)) {
            cd_chunk_decref(r);
            return cd_err_set(err, CD_ECANCEL, "cancelled");
        }
        loop(pa, pb, (char *)r->data + off * isz, m);
    }
    *out = r;
    return 0;
}

int cd_k_add(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    return binary(ctx, OP_ADD, "add", nin, in, out, err);
}

int cd_k_sub(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    return binary(ctx, OP_SUB, "sub", nin, in, out, err);
}

int cd_k_mul(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    return binary(ctx, OP_MUL, "mul", nin, in, out, err);
}

int64_t cd_k_bin_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    const cd_chunk *shp;
    int mode;
    CD_UNUSED(ctx);
    if (nin != 2 || in[0]->dtype != in[1]->dtype)
        return 0;
    shp = bin_shape(in[0], in[1], &mode);
    return shp != NULL ? shp->nbytes : 0;
}

/* ------------------------------------------------------------------ */
/* sum                                                                 */

#define PW_BLOCK 128   /* reals summed by the 8-accumulator loop */

/* pairwise sum of n reals of type TIN, accumulated in TACC */
#define DEF_PAIRWISE(NAME, TIN, TACC)                                           \
    static TACC NAME(const TIN *x, int64_t n)                                   \
    {                                                                           \
        if (n < 8) {                                                            \
            TACC s = -0.0;                                                      \
            for (int64_t i = 0; i < n; i++)                                     \
                s += (TACC)x[i];                                                \
            return s;                                                           \
        }                                                                       \
        if (n <= PW_BLOCK) {                                                    \
            TACC r[8], s;                                                       \
            int64_t i;                                                          \
            for (int j = 0; j < 8; j++)                                         \
                r[j] = (TACC)x[j];                                              \
            for (i = 8; i + 8 <= n; i += 8)                                     \
                for (int j = 0; j < 8; j++)                                     \
                    r[j] += (TACC)x[i + j];                                     \
            s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])); \
            for (; i < n; i++)                                                  \
                s += (TACC)x[i];                                                \
            return s;                                                           \
        }                                                                       \
        {                                                                       \
            int64_t h = (n / 2) & ~(int64_t)7;                                  \
            return NAME(x, h) + NAME(x + h, n - h);                             \
        }                                                                       \
    }

/* pairwise sum of n complex values stored as 2n interleaved reals */
#define DEF_PAIRWISE_CPX(NAME, TIN, TACC)                                       \
    static void NAME(const TIN *x, int64_t n, TACC *re, TACC *im)               \
    {                                                                           \
        if (n < 4) {                                                            \
            TACC sr = -0.0, si = -0.0;                                          \
            for (int64_t i = 0; i < n; i++) {                                   \
                sr += (TACC)x[2 * i];                                           \
                si += (TACC)x[2 * i + 1];                                       \
            }                                                                   \
            *re = sr;                                                           \
            *im = si;                                                           \
            return;                                                             \
        }                                                                       \
        if (2 * n <= PW_BLOCK) {                                                \
            TACC r[8], sr, si;                                                  \
            int64_t i;                                                          \
            for (int j = 0; j < 8; j++)                                         \
                r[j] = (TACC)x[j];                                              \
            for (i = 4; i + 4 <= n; i += 4)                                     \
                for (int j = 0; j < 8; j++)                                     \
                    r[j] += (TACC)x[2 * i + j];                                 \
            sr = (r[0] + r[2]) + (r[4] + r[6]);                                 \
            si = (r[1] + r[3]) + (r[5] + r[7]);                                 \
            for (; i < n; i++) {                                                \
                sr += (TACC)x[2 * i];                                           \
                si += (TACC)x[2 * i + 1];                                       \
            }                                                                   \
            *re = sr;                                                           \
            *im = si;                                                           \
            return;                                                             \
        }                                                                       \
        {                                                                       \
            int64_t h = (n / 2) & ~(int64_t)3;                                  \
            TACC r1, i1, r2, i2;                                                \
            NAME(x, h, &r1, &i1);                                               \
            NAME(x + 2 * h, n - h, &r2, &i2);                                   \
            *re = r1 + r2;                                                      \
            *im = i1 + i2;                                                      \
        }                                                                       \
    }

DEF_PAIRWISE(pw_f32, float, double)
DEF_PAIRWISE(pw_f64, double, double)
DEF_PAIRWISE_CPX(pw_c64, float, double)
DEF_PAIRWISE_CPX(pw_c128, double, double)

/* integer sums wrap modulo 2^64, as NumPy's int64/uint64 accumulators do */
#define DEF_ISUM(NAME, T)                                   \
    static uint64_t NAME(const void *p, int64_t n)          \
    {                                                       \
        const T *x = p;                                     \
        uint64_t s = 0;                                     \
        for (int64_t i = 0; i < n; i++)                     \
            s += (uint64_t)x[i];                            \
        return s;                                           \
    }

DEF_ISUM(isum_i8, int8_t)
DEF_ISUM(isum_i16, int16_t)
DEF_ISUM(isum_i32, int32_t)
DEF_ISUM(isum_i64, int64_t)
DEF_ISUM(isum_u8, uint8_t)
DEF_ISUM(isum_u16, uint16_t)
DEF_ISUM(isum_u32, uint32_t)
DEF_ISUM(isum_u64, uint64_t)

static uint64_t isum_b(const void *p, int64_t n)
{
    const uint8_t *x = p;
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++)
        s += x[i] != 0;
    return s;
}

static uint64_t (*const isum_table[CD_NDTYPES])(const void *, int64_t) = {
    [CD_BOOL] = isum_b,
    [CD_INT8] = isum_i8, [CD_INT16] = isum_i16, [CD_INT32] = isum_i32, [CD_INT64] = isum_i64,
    [CD_UINT8] = isum_u8, [CD_UINT16] = isum_u16, [CD_UINT32] = isum_u32, [CD_UINT64] = isum_u64,
};

static cd_dtype sum_result_dtype(cd_dtype d)
{
    if (d == CD_BOOL || is_int(d))
        return CD_INT64;
    if (is_uint(d))
        return CD_UINT64;
    return d;
}

int cd_k_sum(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    cd_dtype dt;
    cd_chunk *r;
    int64_t total = 0;
    double acc = -0.0, acci = -0.0;
    uint64_t iacc = 0;

    *out = NULL;
    if (nin < 1)
        return arity_error("sum", "1 or more", nin, err);
    dt = in[0]->dtype;
    for (int k = 1; k < nin; k++)
        if (in[k]->dtype != dt)
            return dtype_mismatch("sum", in[0], in[k], err);
    if (dt == CD_FLOAT16)
        return cd_err_set(err, CD_ETYPE, "kernel 'sum' does not take float16 chunks (NumPy "
                          "accumulates them in float32)");

    for (int k = 0; k < nin; k++) {
        const cd_chunk *c = in[k];
        int64_t n = c->size;
        total += n;
        for (int64_t off = 0; off < n; off += BLOCK) {
            int64_t m = n - off < BLOCK ? n - off : BLOCK;
            if (off != 0 && cd_cancelled(ctx))
                return cd_err_set(err, CD_ECANCEL, "cancelled");
            switch (dt) {
            case CD_FLOAT32:
                acc += pw_f32((const float *)c->data + off, m);
                break;
            case CD_FLOAT64:
                acc += pw_f64((const double *)c->data + off, m);
                break;
            case CD_COMPLEX64: {
                double re, im;
                pw_c64((const float *)c->data + 2 * off, m, &re, &im);
                acc += re;
                acci += im;
                break;
            }
            case CD_COMPLEX128: {
                double re, im;
                pw_c128((const double *)c->data + 2 * off, m, &re, &im);
                acc += re;
                acci += im;
                break;
            }
            default:
                iacc += isum_table[dt]((const char *)c->data + off * cd_dtype_itemsize[dt], m);
                break;
            }
        }
    }
    if (total == 0) {   /* the empty sum is +0, not the -0 seed */
        acc = 0.0;
        acci = 0.0;
    }

    r = cd_chunk_new(sum_result_dtype(dt), 0, NULL, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    switch (r->dtype) {
    case CD_INT64: *(int64_t *)r->data = (int64_t)iacc; break;
    case CD_UINT64: *(uint64_t *)r->data = iacc; break;
    case CD_FLOAT32: *(float *)r->data = (float)acc; break;
    case CD_FLOAT64: *(double *)r->data = acc; break;
    case CD_COMPLEX64: *(cf32 *)r->data = (cf32){(float)acc, (float)acci}; break;
    case CD_COMPLEX128: *(cf64 *)r->data = (cf64){acc, acci}; break;
    default:
        cd_chunk_decref(r);
        return cd_err_set(err, CD_EINTERNAL, "kernel 'sum': unexpected result dtype");
    }
    *out = r;
    return 0;
}

int64_t cd_k_sum_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    CD_UNUSED(ctx);
    if (nin < 1)
        return 0;
    return cd_dtype_itemsize[sum_result_dtype(in[0]->dtype)];
}

/* ------------------------------------------------------------------ */
/* ones, zeros                                                         */

static int fill(const cd_kctx *ctx, const char *name, double value, int nin,
                cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    int64_t n = 0;
    cd_chunk *r;
    double *d;
    int rc;

    *out = NULL;
    if (nin != 1)
        return arity_error(name, "1", nin, err);
    rc = read_int0(name, in[0], &n, err);
    if (rc < 0)
        return rc;
    if (n < 0)
        return cd_err_set(err, CD_EVALUE, "kernel '%s': length must be >= 0, got %lld",
                          name, (long long)n);
    r = cd_chunk_new(CD_FLOAT64, 1, &n, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    d = r->data;
    for (int64_t off = 0; off < n; off += BLOCK) {
        int64_t m = n - off < BLOCK ? n - off : BLOCK;
        if (off != 0 && cd_cancelled(ctx)) {
            cd_chunk_decref(r);
            return cd_err_set(err, CD_ECANCEL, "cancelled");
        }
        if (value == 0.0) {
            memset(d + off, 0, (size_t)m * sizeof(double));
        } else {
            for (int64_t i = 0; i < m; i++)
                d[off + i] = value;
        }
    }
    *out = r;
    return 0;
}

int cd_k_ones(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    return fill(ctx, "ones", 1.0, nin, in, out, err);
}

int cd_k_zeros(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    return fill(ctx, "zeros", 0.0, nin, in, out, err);
}

int64_t cd_k_fill_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    int64_t n = 0, b;
    CD_UNUSED(ctx);
    if (nin != 1 || read_int0("ones", in[0], &n, NULL) < 0 || n < 0)
        return 0;
    if (__builtin_mul_overflow(n, (int64_t)sizeof(double), &b))
        return INT64_MAX;
    return b;
}

/* ------------------------------------------------------------------ */
/* dot                                                                 */

int cd_k_dot(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    const cd_chunk *a, *b;
    cd_chunk *r;
    char s1[160], s2[160];
    int f64;

    CD_UNUSED(ctx);
    *out = NULL;
    if (nin != 2)
        return arity_error("dot", "2", nin, err);
    a = in[0];
    b = in[1];
    if (a->dtype != b->dtype)
        return dtype_mismatch("dot", a, b, err);
    if (!is_real_float(a->dtype))
        return cd_err_set(err, CD_ETYPE, "kernel 'dot' takes float32 or float64 inputs, not %s",
                          cd_dtype_name[a->dtype]);
    f64 = a->dtype == CD_FLOAT64;

    if (a->ndim == 1 && b->ndim == 1) {
        int64_t n = a->shape[0];
        if (b->shape[0] != n)
            goto mismatch;
        if (n > INT32_MAX)
            goto too_big;
        r = cd_chunk_new(a->dtype, 0, NULL, err);
        if (r == NULL)
            return err != NULL ? err->code : CD_ENOMEM;
        if (f64)
            *(double *)r->data = n ? scipy_cblas_ddot((blasint)n, a->data, 1, b->data, 1) : 0.0;
        else
            *(float *)r->data = n ? scipy_cblas_sdot((blasint)n, a->data, 1, b->data, 1) : 0.0f;
        *out = r;
        return 0;
    }
    if (a->ndim == 2 && b->ndim == 2) {
        int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1], shape[2];
        if (b->shape[0] != k)
            goto mismatch;
        if (m > INT32_MAX || k > INT32_MAX || n > INT32_MAX)
            goto too_big;
        shape[0] = m;
        shape[1] = n;
        r = cd_chunk_new(a->dtype, 2, shape, err);
        if (r == NULL)
            return err != NULL ? err->code : CD_ENOMEM;
        if (r->size == 0) {
            /* nothing to compute */
        } else if (k == 0) {
            memset(r->data, 0, (size_t)r->nbytes);
        } else if (f64) {
            scipy_cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                              (blasint)m, (blasint)n, (blasint)k, 1.0, a->data, (blasint)k,
                              b->data, (blasint)n, 0.0, r->data, (blasint)n);
        } else {
            scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                              (blasint)m, (blasint)n, (blasint)k, 1.0f, a->data, (blasint)k,
                              b->data, (blasint)n, 0.0f, r->data, (blasint)n);
        }
        *out = r;
        return 0;
    }
    return cd_err_set(err, CD_EVALUE,
                      "kernel 'dot' takes two 1-d or two 2-d inputs, got shapes %s and %s",
                      fmt_shape(s1, sizeof(s1), a), fmt_shape(s2, sizeof(s2), b));
mismatch:
    return cd_err_set(err, CD_EVALUE, "kernel 'dot': shapes %s and %s are not aligned",
                      fmt_shape(s1, sizeof(s1), a), fmt_shape(s2, sizeof(s2), b));
too_big:
    return cd_err_set(err, CD_EVALUE,
                      "kernel 'dot': shapes %s and %s exceed BLAS's 32-bit size limit",
                      fmt_shape(s1, sizeof(s1), a), fmt_shape(s2, sizeof(s2), b));
}

int64_t cd_k_dot_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    int64_t b;
    CD_UNUSED(ctx);
    if (nin != 2 || in[0]->dtype != in[1]->dtype)
        return 0;
    if (in[0]->ndim == 1 && in[1]->ndim == 1)
        return cd_dtype_itemsize[in[0]->dtype];
    if (in[0]->ndim == 2 && in[1]->ndim == 2 &&
        !__builtin_mul_overflow(in[0]->shape[0], in[1]->shape[1], &b) &&
        !__builtin_mul_overflow(b, (int64_t)cd_dtype_itemsize[in[0]->dtype], &b))
        return b;
    return 0;
}

/* ------------------------------------------------------------------ */
/* spin, fail                                                          */

int cd_k_spin(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    const cd_chunk *c;
    double secs;
    int64_t start, deadline, now;
    cd_chunk *r;

    *out = NULL;
    if (nin != 1)
        return arity_error("spin", "1", nin, err);
    c = in[0];
    if (c->ndim != 0 || !(is_real_float(c->dtype) || is_int(c->dtype) || is_uint(c->dtype)))
        return cd_err_set(err, CD_ETYPE,
                          "kernel 'spin' takes a 0-d number of seconds, got a %d-d %s chunk",
                          c->ndim, cd_dtype_name[c->dtype]);
    if (c->dtype == CD_FLOAT64) {
        secs = *(const double *)c->data;
    } else if (c->dtype == CD_FLOAT32) {
        secs = *(const float *)c->data;
    } else {
        int64_t v;
        int rc = read_int0("spin", c, &v, err);
        if (rc < 0)
            return rc;
        secs = (double)v;
    }
    if (!(secs >= 0.0))
        return cd_err_set(err, CD_EVALUE, "kernel 'spin': seconds must be >= 0, got %g", secs);
    start = cd_now_ns();
    deadline = secs * 1e9 < 4e18 ? start + (int64_t)(secs * 1e9) : INT64_MAX;
    for (;;) {
        now = cd_now_ns();
        if (now >= deadline)
            break;
        if (cd_cancelled(ctx))
            return cd_err_set(err, CD_ECANCEL, "cancelled");
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    r = cd_chunk_new(CD_FLOAT64, 0, NULL, err);
    if (r == NULL)
        return err != NULL ? err->code : CD_ENOMEM;
    *(double *)r->data = (double)(now - start) * 1e-9;
    *out = r;
    return 0;
}

int64_t cd_k_scalar8_out_bytes(const cd_kctx *ctx, int nin, cd_chunk *const *in)
{
    CD_UNUSED(ctx);
    CD_UNUSED(nin);
    CD_UNUSED(in);
    return 8;
}

int cd_k_fail(const cd_kctx *ctx, int nin, cd_chunk *const *in, cd_chunk **out, cd_err *err)
{
    CD_UNUSED(ctx);
    CD_UNUSED(nin);
    CD_UNUSED(in);
    *out = NULL;
    return cd_err_set(err, CD_EVALUE, "cdask.kernels.fail was called");
}
