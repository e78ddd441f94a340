/*
 * kernel_py.h - the Python type cdask._core.Kernel: a C kernel descriptor
 * plus its parameter bytes, usable as a plain Python callable and as the
 * callable of a task that the scheduler runs on a C worker.  GIL held.
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

#endif /* CD_KERNEL_PY_H */
