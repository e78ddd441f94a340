/*
 * npy_py.c - cdask._core.npy_header(path): the validated header of a .npy
 * file (npy.c), read without evaluating anything.
 *
 *   npy_header(path) -> (descr, fortran_order, shape, data_offset, file_size)
 *
 * Raises FileNotFoundError / OSError for the file, ValueError naming the
 * file and what is wrong for a malformed header, and ValueError when the
 * file is shorter than the header says its data is (checked for the dtype
 * by the caller, which knows the item size: file_size is returned).
 */
#include "cdpy.h"

#include "npy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_READ_MAX (1 << 20)    /* headers are small; NumPy caps them far lower */

static PyObject *py_npy_header(PyObject *self, PyObject *arg)
{
    PyObject *bytes_path = NULL, *shape = NULL, *res = NULL;
    unsigned char *buf = NULL;
    cd_npy_header h;
    cd_err err = {0, ""};
    struct stat st;
    ssize_t got = 0;
    int fd = -1;
    CD_UNUSED(self);
    if (!PyUnicode_FSConverter(arg, &bytes_path))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    fd = open(PyBytes_AS_STRING(bytes_path), O_RDONLY | O_CLOEXEC);
    Py_END_ALLOW_THREADS
    if (fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
        goto done;
    }
    if (fstat(fd, &st) < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
        goto done;
    }
    buf = PyMem_Malloc(NPY_READ_MAX);
    if (buf == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    while (got < NPY_READ_MAX) {
        ssize_t r = read(fd, buf + got, (size_t)(NPY_READ_MAX - got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    Py_END_ALLOW_THREADS
    if (cd_npy_parse(buf, (size_t)got, &h, &err) < 0) {
        PyErr_Format(PyExc_ValueError, "from_npy: %R is not a valid .npy file: %s", arg, err.msg);
        goto done;
    }
    shape = PyTuple_New(h.ndim);
    if (shape == NULL)
        goto done;
    for (int i = 0; i < h.ndim; i++) {
        PyObject *v = PyLong_FromLongLong(h.shape[i]);
        if (v == NULL)
            goto done;
        PyTuple_SET_ITEM(shape, i, v);
    }
    res = Py_BuildValue("(sOOLL)", h.descr, h.fortran ? Py_True : Py_False, shape,
                        (long long)h.data_offset, (long long)st.st_size);
done:
    if (fd >= 0)
        close(fd);
    PyMem_Free(buf);
    Py_XDECREF(shape);
    Py_XDECREF(bytes_path);
    return res;
}

static PyMethodDef npy_methods[] = {
    {"npy_header", py_npy_header, METH_O,
     "npy_header(path) -> (descr, fortran_order, shape, data_offset, file_size)\n\n"
     "The header of a .npy file, parsed and validated in C (nothing is evaluated)."},
    {NULL, NULL, 0, NULL},
};

int cd_npy_py_init(PyObject *module)
{
    return PyModule_AddFunctions(module, npy_methods);
}
