/*
 * ufunc_py.h - the Python side of the "ufunc" kernel (kernels/ufunc.h):
 * resolving a NumPy ufunc into cd_ufunc_params with the GIL held (also used
 * by fused_py.c).  Implemented in ufunc_py.c, which also registers how such
 * a Kernel pickles (by ufunc name) and prints (kernel_py.h).
 */
#ifndef CD_UFUNC_PY_H
#define CD_UFUNC_PY_H

#include "python/cdpy.h"
#include "kernels/ufunc.h"

/* GIL held: resolve NumPy ufunc `ufunc` for the declared input dtypes (as
 * ufunc_kernel takes them) into *out.  0, or -1 with an exception
 * (NotImplementedError when it cannot run as a C loop). */
int cd_ufunc_resolve(PyObject *ufunc, PyObject *in_dtypes, cd_ufunc_params *out);

#endif /* CD_UFUNC_PY_H */
