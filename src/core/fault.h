/*
 * fault.h - reads of memory-mapped files that fail (SIGBUS) become errors.
 * Implemented in fault.c.
 *
 * A file mapped into memory and made shorter afterwards (truncated by
 * another program, or a network file that went away) delivers SIGBUS on the
 * first access past its new end, which kills the process.  A C kernel run
 * through cd_fault_call instead jumps back to the guard there, which turns
 * the fault into a CD_EIO error naming the file.
 *
 * Only a kernel of pure C may run under a guard: the jump leaves it at any
 * point, without running its clean-up (a partial output chunk can leak; the
 * process survives, which is the point).  Faults elsewhere, and faults of
 * other kinds, go to the handler installed before cdask's (Python's
 * faulthandler, the sanitizers) or kill the process as before.
 */
#ifndef CD_FAULT_H
#define CD_FAULT_H

#include <setjmp.h>

#include "core/common.h"
#include "core/kernel.h"

/* Install the SIGBUS handler, unless it is installed (called at every run's
 * start, a system call).  0, or -1 if sigaction fails. */
int cd_fault_init(void);
/* k->fn(ctx, n, in, out, err) under a guard, between cd_fpe_clear and
 * cd_fpe_read (*fpe) for kernels marked CD_KF_FPE.  Returns the kernel's
 * status, or CD_EIO after a fault in a mapped file (err names the file from
 * /proc/self/maps when it can; *out is then NULL). */
int cd_fault_call(const cd_kernel_desc *k, const cd_kctx *ctx, int n, cd_chunk *const *in,
                  cd_chunk **out, cd_err *err, int *fpe);

#endif /* CD_FAULT_H */
