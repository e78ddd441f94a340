/*
 * module.c - the cdask._core extension module: imports NumPy's C API once,
 * then lets each glue file add its types and functions.
 */
#define CD_MODULE_C
#include "python/cdpy.h"
#include "core/fault.h"

PyObject *cd_raise(const cd_err *err)
{
    PyObject *type;
    switch (err->code) {
    case CD_ETYPE: type = PyExc_TypeError; break;
    case CD_EVALUE: type = PyExc_ValueError; break;
    case CD_ENOMEM: type = PyExc_MemoryError; break;
    case CD_EOVERFLOW: type = PyExc_OverflowError; break;
    case CD_ECANCEL: type = PyExc_KeyboardInterrupt; break;
    case CD_EIO: type = PyExc_OSError; break;
    default: type = PyExc_RuntimeError; break;
    }
    PyErr_SetString(type, err->msg[0] ? err->msg : "cdask: unknown error");
    return NULL;
}

static struct PyModuleDef cd_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cdask._core",
    .m_doc = "cdask's C core: chunks, kernels, task graphs and the scheduler.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m;
    import_array();
    m = PyModule_Create(&cd_module);
    if (m == NULL)
        return NULL;
    if (cd_chunk_py_init(m) < 0 || cd_kernel_py_init(m) < 0 ||
        cd_graph_py_init(m) < 0 || cd_sched_py_init(m) < 0 || cd_ufunc_py_init(m) < 0 ||
        cd_fused_py_init(m) < 0 || cd_npy_py_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    /* reads of mapped files that shrank: errors, not crashes (core/fault.h);
     * without the handler they crash as before */
    (void)cd_fault_init();
    return m;
}
