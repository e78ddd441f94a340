/*
 * fused_py.h - the Python side of the "fused" kernel (kernels/fused.h):
 * pickling, repr and inspection of a fused Kernel.  Implemented in
 * fused_py.c.
 */
#ifndef CD_FUSED_PY_H
#define CD_FUSED_PY_H

#include "python/cdpy.h"
#include "kernels/fused.h"

/* GIL held (fused_py.c): Kernel.__reduce__ and repr of a "fused" kernel. */
PyObject *cd_fused_kernel_reduce(PyObject *kernel);
PyObject *cd_fused_kernel_repr(PyObject *kernel);
/* GIL held: does this "fused" Kernel store into its last input? */
int cd_fused_is_store(PyObject *kernel);

#endif /* CD_FUSED_PY_H */
