/*
 * kernel.h - the C kernel interface.
 *
 * A kernel is a C function plus a descriptor.  The scheduler calls it on a
 * worker thread WITHOUT the GIL: it must never touch the Python C API.  It
 * receives its inputs as chunks (the task's arguments in order, lists
 * flattened, literals converted to 0-d or n-d chunks before the run starts)
 * and returns one new chunk in *out.
 *
 * Kernels are found by their stable name (cd_kernel_find) so that a Python
 * Kernel object pickles as its name plus its parameter bytes.  `params` is an
 * opaque, immutable byte string the kernel interprets (for example an axis);
 * kernels without parameters get params == NULL, params_size == 0.
 *
 * Errors: return a negative CD_E* code and fill err; *out must then be NULL
 * and every chunk the kernel made must be released.  Long kernels poll
 * ctx->cancel (non-zero: stop, return CD_ECANCEL) every few milliseconds.
 */
#ifndef CD_KERNEL_H
#define CD_KERNEL_H

#include "core/chunk.h"
#include "core/fpe.h"

typedef struct cd_kctx {
    const volatile int *cancel;   /* never NULL; non-zero asks the kernel to stop */
    const void *params;           /* kernel parameters, may be NULL */
    size_t params_size;
    int worker;                   /* index of the worker thread, -1 on a Python thread */
} cd_kctx;

/* True when the kernel should stop (poll this, not *ctx->cancel directly:
 * the atomic load keeps ThreadSanitizer runs clean). */
static inline int cd_cancelled(const cd_kctx *ctx)
{
    return __atomic_load_n((const int *)ctx->cancel, __ATOMIC_RELAXED) != 0;
}

typedef int (*cd_kernel_fn)(const cd_kctx *ctx, int nin, cd_chunk *const *in,
                            cd_chunk **out, cd_err *err);

/* Estimates used by the scheduler's memory accounting and plan checks. */
typedef int64_t (*cd_kernel_bytes_fn)(const cd_kctx *ctx, int nin, cd_chunk *const *in);

typedef struct cd_kernel_desc {
    const char *name;          /* stable, unique: "add", "sum", ... */
    const char *doc;           /* one line for the Python docstring */
    int min_in, max_in;        /* accepted number of inputs; max_in < 0: unbounded */
    cd_kernel_fn fn;
    cd_kernel_bytes_fn out_bytes;    /* bytes of the result, may be NULL */
    cd_kernel_bytes_fn work_bytes;   /* extra scratch bytes, may be NULL (0) */
    unsigned flags;                  /* CD_KF_* */
} cd_kernel_desc;

/*
 * CD_KF_FPE: the kernel may raise floating-point exception flags (NumPy's
 * loops do).  Flags are per thread: the caller of such a kernel clears them
 * before and reads them after (cd_fpe_clear / cd_fpe_read), and the Python
 * glue applies the np.errstate in force when the computation was asked for.
 */
enum { CD_KF_FPE = 1 };


#endif /* CD_KERNEL_H */
