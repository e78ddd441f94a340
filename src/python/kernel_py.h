/*
 * kernel_py.h - the Python type cdask._core.Kernel: a C kernel descriptor
 * plus its parameter bytes, usable as a plain Python callable and as the
 * callable of a task that the scheduler runs on a C worker.  GIL held.
 * Implemented in kernel_py.c.
 */
#ifndef CD_KERNEL_PY_H
#define CD_KERNEL_PY_H

#include "python/cdpy.h"
#include "core/kernel.h"

typedef struct {
    PyObject_HEAD
    const cd_kernel_desc *desc;
    PyObject *params;   /* bytes, never NULL (empty bytes) */
} cd_KernelObject;

extern PyTypeObject cd_KernelType;
#define cd_Kernel_Check(o) PyObject_TypeCheck((o), &cd_KernelType)

/*
 * Kernels whose parameters hold pointers meaningful only in this process
 * (the "ufunc" and "fused" kernels) cannot pickle or print their bytes.  The
 * file that makes such Kernels (ufunc_py.c, fused_py.c) registers what
 * Kernel.__reduce__, repr() and a call do for its descriptor, once, at
 * module init - so that kernel_py.c calls no file that depends on it.
 */
typedef struct cd_kernel_py_ops {
    const cd_kernel_desc *desc;
    PyObject *(*reduce)(PyObject *kernel);   /* Kernel.__reduce__: new reference, or NULL
                                                with an exception */
    PyObject *(*repr)(PyObject *kernel);     /* NULL: the default repr */
    int (*is_store)(PyObject *kernel);       /* 1: the result goes into the last
                                                argument (never raises); NULL: never */
} cd_kernel_py_ops;

/* Register ops (static storage; GIL held).  0, or -1 with RuntimeError when
 * more than a few descriptors register. */
int cd_kernel_py_register(const cd_kernel_py_ops *ops);

#endif /* CD_KERNEL_PY_H */
