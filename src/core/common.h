/*
 * common.h - status codes, the error record and small helpers shared by
 * every C file of cdask.
 *
 * Only src/python/ includes Python.h; core/, kernels/ and io/ never do.  A function
 * of the core returns 0 on success or a negative CD_E* code on failure and, on
 * failure, fills the caller-owned cd_err with a code and a message.  The glue
 * files (*_py.c, module.c) turn a cd_err into a Python exception once they hold
 * the GIL: CD_ETYPE -> TypeError, CD_EVALUE -> ValueError, CD_ENOMEM ->
 * MemoryError, CD_ECANCEL -> KeyboardInterrupt-or-cancel, others -> RuntimeError.
 */
#ifndef CD_COMMON_H
#define CD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

enum {
    CD_OK = 0,
    CD_ENOMEM = -1,     /* an allocation failed */
    CD_ETYPE = -2,      /* wrong dtype, wrong kind of argument */
    CD_EVALUE = -3,     /* right type, bad value (shapes that do not match...) */
    CD_ECANCEL = -4,    /* the run was cancelled (another task failed, Ctrl-C) */
    CD_EPYTHON = -5,    /* a Python exception is pending in the glue */
    CD_EINTERNAL = -6,  /* a broken invariant: a bug in cdask */
    CD_EOVERFLOW = -7,  /* a size computation overflowed */
    CD_ENEEDPY = -8,    /* scheduler: a C task's input is not an array; run it in Python */
    CD_EIO = -9,        /* a file could not be made, reserved or written (disk full...) */
};

#define CD_ERRMSG 400

typedef struct cd_err {
    int code;
    char msg[CD_ERRMSG];
} cd_err;

/* Fill `e` (if not NULL) with `code` and a printf-style message; returns code. */
static inline int cd_err_set(cd_err *e, int code, const char *fmt, ...)
{
    if (e != NULL) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Monotonic clock in nanoseconds. */
static inline int64_t cd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define CD_UNUSED(x) ((void)(x))

#include <sys/mman.h>

/*
 * Ask for transparent huge pages on a big, not yet touched allocation: the
 * plan's tables are read in random order, and with 4 KiB pages nearly every
 * access would also miss the TLB.  Only the 2 MiB-aligned interior is
 * advised; a no-op for small blocks or where THP is unavailable.
 */
static inline void cd_advise_huge(void *p, size_t size)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + size) & ~(huge - 1);
    if (p != NULL && size >= ((size_t)4 << 20) && e > a)
        madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)size;
#endif
}
#define CD_LIKELY(x) __builtin_expect(!!(x), 1)
#define CD_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif /* CD_COMMON_H */
