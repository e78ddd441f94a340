/*
 * fpe.h - the floating-point exception flags of the calling thread, in
 * NumPy's bit values.  Implemented in fpe.c (<fenv.h>).
 *
 * Flags are per thread: whoever calls a kernel marked CD_KF_FPE (kernel.h)
 * clears them before and reads them after; the Python glue then applies the
 * np.errstate that was in force when the computation was asked for.
 */
#ifndef CD_FPE_H
#define CD_FPE_H

/* NumPy's bits: NPY_FPE_DIVIDEBYZERO 1, OVERFLOW 2, UNDERFLOW 4, INVALID 8. */
enum { CD_FPE_DIVIDE = 1, CD_FPE_OVERFLOW = 2, CD_FPE_UNDERFLOW = 4, CD_FPE_INVALID = 8 };

/* Clear the calling thread's flags.  Never fails. */
void cd_fpe_clear(void);
/* CD_FPE_* bits raised on the calling thread since the last clear.  Never fails. */
int cd_fpe_read(void);

#endif /* CD_FPE_H */
