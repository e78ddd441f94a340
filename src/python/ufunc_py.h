/*
 * ufunc_py.h - the Python side of the "ufunc" kernel (kernels/ufunc.h):
 * resolving a NumPy ufunc into cd_ufunc_params with the GIL held, and
 * pickling such a Kernel by ufunc name.  Implemented in ufunc_py.c.
 */
#ifndef CD_UFUNC_PY_H
#define CD_UFUNC_PY_H

#include "python/cdpy.h"
#include "kernels/ufunc.h"

/* GIL held (ufunc_py.c): Kernel.__reduce__ of a "ufunc" kernel - the
 * reconstructor cdask._core._ufunc_kernel_from_spec and (name, dtype strings). */
PyObject *cd_ufunc_kernel_reduce(PyObject *kernel);
/* GIL held: resolve NumPy ufunc `ufunc` for the declared input dtypes (as
 * ufunc_kernel takes them) into *out.  0, or -1 with an exception
 * (NotImplementedError when it cannot run as a C loop). */
int cd_ufunc_resolve(PyObject *ufunc, PyObject *in_dtypes, cd_ufunc_params *out);

#endif /* CD_UFUNC_PY_H */
