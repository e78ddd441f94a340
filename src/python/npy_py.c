/*
 * npy_py.c - cdask._core.npy_header(path): the validated header of a .npy
 * file (io/npy.c), read without evaluating anything; and pread_region /
 * pwrite_region (io/region.c).
 *
 *   npy_header(path) -> (descr, fortran_order, shape, data_offset, file_size)
 *
 * Raises FileNotFoundError / OSError for the file, ValueError naming the
 * file and what is wrong for a malformed header, and ValueError when the
 * file is shorter than the header says its data is (checked for the dtype
 * by the caller, which knows the item size: file_size is returned).
 */
#include "python/cdpy.h"

#include "io/npy.h"
#include "io/region.h"

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

/*
 * pread_region(path, offset, strides, out) / pwrite_region(path, offset,
 * strides, src): copy between the C-contiguous array out (src) and the
 * elements of a file laid out from byte `offset` with byte `strides` (one
 * per axis; the last one must be the itemsize), a row at a time with pread
 * (pwrite), the GIL released: io/region.c does the copy, this checks the
 * arguments and raises OSError naming the file on failure.
 */
static PyObject *region_io(PyObject *args, int writing)
{
    PyObject *path_obj, *strides_obj, *fast = NULL, *bytes = NULL;
    PyArrayObject *out;
    long long offset;
    npy_intp st[NPY_MAXDIMS];
    int64_t dims[NPY_MAXDIMS], st64[NPY_MAXDIMS];
    int nd, err = 0;
    const char *path;
    if (!PyArg_ParseTuple(args, "OLOO!:file_region", &path_obj, &offset, &strides_obj,
                          &PyArray_Type, &out))
        return NULL;
    if (!PyArray_IS_C_CONTIGUOUS(out) || (!writing && !PyArray_ISWRITEABLE(out))) {
        PyErr_SetString(PyExc_ValueError, "pread_region/pwrite_region: the array must be "
                        "C-contiguous (and writeable to read into)");
        return NULL;
    }
    nd = PyArray_NDIM(out);
    fast = PySequence_Fast(strides_obj, "file region: strides must be a sequence");
    if (fast == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != nd || nd == 0) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "file region: one stride per axis of the array");
        return NULL;
    }
    for (int k = 0; k < nd; k++) {
        st[k] = (npy_intp)PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(fast, k));
        if (st[k] == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return NULL;
        }
    }
    Py_DECREF(fast);
    if (st[nd - 1] != PyArray_ITEMSIZE(out) || offset < 0) {
        PyErr_SetString(PyExc_ValueError, "file region: the last stride must be the itemsize "
                        "and the offset non-negative");
        return NULL;
    }
    if (PyArray_SIZE(out) == 0)
        Py_RETURN_NONE;
    for (int k = 0; k < nd - 1; k++) {
        if (st[k] < 0) {
            PyErr_SetString(PyExc_ValueError, "file region: negative strides are not supported");
            return NULL;
        }
    }
    if (!PyUnicode_FSConverter(path_obj, &bytes))
        return NULL;
    path = PyBytes_AS_STRING(bytes);
    for (int k = 0; k < nd; k++) {
        dims[k] = (int64_t)PyArray_DIM(out, k);
        st64[k] = (int64_t)st[k];
    }
    Py_BEGIN_ALLOW_THREADS
    err = cd_region_io(path, writing, (int64_t)offset, nd, dims, st64, PyArray_BYTES(out));
    Py_END_ALLOW_THREADS
    if (err) {
        errno = err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        Py_DECREF(bytes);
        return NULL;
    }
    Py_DECREF(bytes);
    Py_RETURN_NONE;
}

static PyObject *py_pread_region(PyObject *self, PyObject *args)
{
    CD_UNUSED(self);
    return region_io(args, 0);
}

static PyObject *py_pwrite_region(PyObject *self, PyObject *args)
{
    CD_UNUSED(self);
    return region_io(args, 1);
}

static PyMethodDef npy_methods[] = {
    {"pwrite_region", py_pwrite_region, METH_VARARGS,
     "pwrite_region(path, offset, strides, src): write C-contiguous src to the file's "
     "elements at byte offset + sum(i_k * strides[k]), a row at a time (pwrite)."},
    {"pread_region", py_pread_region, METH_VARARGS,
     "pread_region(path, offset, strides, out): fill C-contiguous out with the file's "
     "elements at byte offset + sum(i_k * strides[k]), a row at a time (pread)."},
    {"npy_header", py_npy_header, METH_O,
     "npy_header(path) -> (descr, fortran_order, shape, data_offset, file_size)\n\n"
     "The header of a .npy file, parsed and validated in C (nothing is evaluated)."},
    {NULL, NULL, 0, NULL},
};

int cd_npy_py_init(PyObject *module)
{
    return PyModule_AddFunctions(module, npy_methods);
}
