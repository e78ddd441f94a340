/*
 * ufunc.h - the "ufunc" kernel: one of NumPy's own inner loops run over
 * chunks on a C worker.  Shared by ufunc.c (pure C: runs the resolved loop
 * as a fused program of one step, through the fused kernel's engine, and
 * holds the casts) and ufunc_py.c (glue: resolves the loop with the GIL
 * held, builds and pickles the Kernel).
 *
 * Design.  The loop is resolved once, at graph-build time, by ufunc_py.c:
 * NumPy's own dtype resolution (ufunc.resolve_dtypes, NEP 50) picks the loop
 * dtypes, and the loop with exactly those dtypes is taken from the ufunc's
 * legacy loop table.  The result of that resolution is a plain struct,
 * cd_ufunc_params, stored as the Kernel's parameter bytes; the kernel reads
 * it (memcpy: the bytes need not be aligned) and never needs Python.  The
 * function and data pointers are only meaningful inside this process, so
 * such a Kernel pickles through a re-resolving reconstructor instead of its
 * bytes, and cannot be made from bytes by cdask._core.Kernel("ufunc", ...):
 * the descriptor is not in cd_builtin_kernels (cd_kernel_find does not know
 * it); only cd_ufunc_py's functions create Kernels that point at it.
 */
#ifndef CD_UFUNC_H
#define CD_UFUNC_H

#include "core/kernel.h"

#define CD_UFUNC_MAXIN 4          /* inputs a ufunc kernel accepts (NumPy's have <= 2) */
#define CD_UFUNC_NAMELEN 32       /* bytes kept of the ufunc's name, NUL included */
#define CD_UFUNC_MAGIC 0x75664e32u /* "ufN2": layout version of cd_ufunc_params */

/* Declared input kinds besides a cd_dtype: NEP 50 "weak" Python scalars. */
enum { CD_UF_WEAK_INT = 100, CD_UF_WEAK_FLOAT, CD_UF_WEAK_COMPLEX };

/* Flags of cd_ufunc_params. */
enum {
    /* NumPy's integer power loops raise ValueError (through the Python API)
     * for negative exponents: check input 1 before calling such a loop. */
    CD_UF_CHECK_NEG_EXPONENT = 1,
    /* A float16 loop that computes in float32 and rounds each result to
     * float16: it may run as fn32 (a float32 loop) between vectorised
     * conversions (kernels/half.h: cd_half_via_f32).  Set by ufunc_py.c
     * after comparing both on probe values. */
    CD_UF_HALF_VIA_F32 = 2,
};

/* NumPy's legacy inner loop signature (npy_intp is intptr_t). */
typedef void (*cd_ufunc_loop)(char **args, const intptr_t *dimensions,
                              const intptr_t *steps, void *data);

typedef struct cd_ufunc_params {
    char name[CD_UFUNC_NAMELEN];   /* ufunc name, NUL-terminated (first member) */
    uint32_t magic;                /* CD_UFUNC_MAGIC */
    int32_t nin, nout;             /* nout is always 1 */
    uint32_t flags;                /* CD_UF_* */
    int32_t declared[CD_UFUNC_MAXIN];  /* input dtypes asked for: cd_dtype or CD_UF_WEAK_* */
    int32_t loop[CD_UFUNC_MAXIN + 1];  /* cd_dtype of each loop operand, inputs then output */
    cd_ufunc_loop fn;              /* NumPy's loop */
    void *data;                    /* its data pointer, passed as-is */
    cd_ufunc_loop fn32;            /* CD_UF_HALF_VIA_F32: the float32 loop, */
    void *data32;                  /* and its data pointer; else NULL */
} cd_ufunc_params;

/* The kernel descriptor (name "ufunc", flags CD_KF_FPE). */
extern const cd_kernel_desc cd_ufunc_desc;

/*
 * Convert n elements from `src` (dtype `from`, contiguous) to `dst` (dtype
 * `to`, contiguous); as NumPy's astype: integers wrap, complex -> real keeps
 * the real part, anything -> bool is x != 0, float -> integer truncates
 * (values out of range or NaN give what x86-64's conversion instructions
 * give, without undefined behaviour).  src == dst with from == to is a no-op.
 */
void cd_cast(cd_dtype from, const void *src, cd_dtype to, void *dst, int64_t n);

/* np.where as a loop of NumPy's legacy signature: (bool cond, a, b) -> out,
 * all of one dtype of `itemsize` bytes (1, 2, 4, 8 or 16); NULL otherwise. */
cd_ufunc_loop cd_where_loop(int itemsize);

/* The CD_UF_HALF_VIA_F32 fields of p are consistent (a float16 loop of at
 * most two inputs with fn32 set), or unused: 1; else 0 (corrupt params). */
int cd_ufunc_via_ok(const cd_ufunc_params *p);

/* Negative values among m signed-integer elements (0 for other dtypes). */
int cd_ufunc_any_negative(int32_t dt, const char *p, int64_t m, intptr_t step);


#endif /* CD_UFUNC_H */
