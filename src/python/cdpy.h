/*
 * cdpy.h - included first by every glue file (*_py.c, module.c): Python and
 * NumPy headers with one shared NumPy C-API table, and the init function of
 * each glue file.  Core files (chunk.c, kernels.c, sched.c) never include it.
 */
#ifndef CD_CDPY_H
#define CD_CDPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL cdask_ARRAY_API
#ifndef CD_MODULE_C
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "core/common.h"

/* Raise the Python exception matching err (see common.h); returns NULL. */
PyObject *cd_raise(const cd_err *err);

/* Each glue file adds its types and functions to the module; 0 or -1. */
int cd_chunk_py_init(PyObject *module);
int cd_kernel_py_init(PyObject *module);
int cd_graph_py_init(PyObject *module);
int cd_sched_py_init(PyObject *module);
int cd_ufunc_py_init(PyObject *module);
int cd_fused_py_init(PyObject *module);
int cd_npy_py_init(PyObject *module);

#endif /* CD_CDPY_H */
