/*
 * ufunc_py.c - glue of the "ufunc" kernel (interface: ufunc_py.h; the
 * kernel itself: kernels/ufunc.c): resolves a NumPy ufunc and input dtypes
 * to one of NumPy's own inner loops, with the GIL held, and wraps the
 * result as a cdask Kernel.
 *
 *   ufunc_kernel(ufunc, in_dtypes) -> Kernel
 *       in_dtypes: one entry per input - a NumPy dtype (or anything np.dtype
 *       accepts), or the Python types int / float / complex for NEP 50 "weak"
 *       Python scalars (bool is the strong NumPy bool).  Raises
 *       NotImplementedError when the computation cannot run as a C loop (a
 *       generalized or multi-output ufunc, a dtype cdask chunks cannot hold,
 *       a loop NumPy only offers as a new-style ArrayMethod): the caller then
 *       calls the ufunc from Python instead, which is always correct.  Errors
 *       of NumPy's own resolution (UFuncTypeError...) propagate.
 *   _ufunc_kernel_from_spec(name, dtype_strs) -> Kernel
 *       the pickle reconstructor: re-resolves numpy.<name> for the dtypes
 *       ("float64", ..., or "int"/"float"/"complex"); if this process cannot
 *       run it as a C loop it returns the NumPy ufunc itself.
 *
 * Design.  The dtypes of the loop come from NumPy itself:
 * ufunc.resolve_dtypes(...) applies NumPy 2's promotion (NEP 50) and type
 * resolution, so nothing of it is re-implemented here.  The inner loop for
 * exactly those dtypes is then looked up in the ufunc's legacy loop table
 * (types / functions / data of PyUFuncObject), taking the first entry whose
 * type numbers are equal (else equivalent: long and long long), as NumPy's
 * own legacy loop selector does; its data pointer is kept as-is.  NumPy 2's
 * experimental dtype API (numpy/dtype_api.h) declares the ArrayMethod loop
 * types but has no public function to obtain a ufunc's strided loop for given
 * descriptors (only the private, underscore-named ufunc methods), so the
 * legacy table - public, and still filled for every builtin numeric loop -
 * is used.  Loops touching object, string, datetime or long double dtypes
 * are refused: only the 14 chunk dtypes (float16 included: NumPy's own
 * float16 loops) are accepted, none of whose
 * numeric loops needs the GIL except integer power on a negative exponent,
 * which the kernel checks itself (CD_UF_CHECK_NEG_EXPONENT).
 *
 * Only ufuncs reachable as numpy.<name> are accepted, so that the kernel can
 * pickle by name (ufunc_kernel_reduce, registered for Kernel.__reduce__).
 */
#include "python/cdpy.h"
#define NO_IMPORT_UFUNC
#include <numpy/ufuncobject.h>

#include "python/chunk_py.h"
#include "python/kernel_py.h"
#include "python/ufunc_py.h"
#include "kernels/registry.h"

#include <fenv.h>
#include <string.h>

static PyObject *np_module;       /* numpy */
static PyObject *np_ufunc_type;   /* numpy.ufunc */
static PyObject *from_spec_fn;    /* cdask._core._ufunc_kernel_from_spec */

static const char *const weak_names[] = {"int", "float", "complex"};

/* Raise NotImplementedError; returns -1. */
static int not_impl(const char *fmt, ...)
{
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    PyErr_SetString(PyExc_NotImplementedError, buf);
    return -1;
}

/* cd_dtype of a type number; -1 if chunks cannot hold it. */
static int typenum_to_cd(int typenum)
{
    for (int dt = 0; dt < CD_NDTYPES; dt++)
        if (cd_dtype_typenum((cd_dtype)dt) == typenum)
            return dt;
    for (int dt = 0; dt < CD_NDTYPES; dt++)
        if (PyArray_EquivTypenums(cd_dtype_typenum((cd_dtype)dt), typenum))
            return dt;
    return -1;
}

/*
 * One declared input: a new reference to what resolve_dtypes takes (a
 * descriptor, or the Python type int/float/complex) in *res, and its code
 * (cd_dtype or CD_UF_WEAK_*) in *code.  0, -1 with an exception; 1 with
 * NotImplementedError for a dtype chunks cannot hold.
 */
static int convert_declared(PyObject *x, PyObject **res, int32_t *code)
{
    PyArray_Descr *d = NULL;
    int dt;
    if (x == (PyObject *)&PyLong_Type || x == (PyObject *)&PyFloat_Type ||
        x == (PyObject *)&PyComplex_Type) {
        *code = x == (PyObject *)&PyLong_Type ? CD_UF_WEAK_INT
              : x == (PyObject *)&PyFloat_Type ? CD_UF_WEAK_FLOAT : CD_UF_WEAK_COMPLEX;
        *res = Py_NewRef(x);
        return 0;
    }
    if (!PyArray_DescrConverter(x, &d))
        return -1;
    dt = typenum_to_cd(d->type_num);
    if (dt < 0 || !PyArray_ISNBO(d->byteorder)) {
        PyErr_Format(PyExc_NotImplementedError,
                     "cdask C ufunc loops do not support dtype %S", (PyObject *)d);
        Py_DECREF(d);
        return 1;
    }
    *code = dt;
    *res = (PyObject *)d;
    return 0;
}

/*
 * Resolve ufunc u for a sequence of declared input dtypes (see ufunc_kernel)
 * into *out: 0, or -1 with an exception (NotImplementedError when the
 * computation cannot run as a C loop).  Shared with the fused kernel.
 */
int cd_ufunc_resolve(PyObject *u, PyObject *in_dtypes, cd_ufunc_params *out)
{
    PyUFuncObject *uf;
    cd_ufunc_params p;
    PyObject *seq = NULL, *call = NULL, *resolved = NULL, *attr = NULL;
    int result = -1;
    int rc, match = -1;

    rc = PyObject_IsInstance(u, np_ufunc_type);
    if (rc <= 0) {
        if (rc == 0)
            PyErr_Format(PyExc_TypeError, "ufunc_kernel: expected a NumPy ufunc, got %.100s",
                         Py_TYPE(u)->tp_name);
        return -1;
    }
    uf = (PyUFuncObject *)u;
    if (uf->name == NULL)
        return not_impl("ufunc without a name");
    if (uf->core_enabled)
        return not_impl("ufunc '%s' is a generalized ufunc (signature %s)", uf->name,
                        uf->core_signature ? uf->core_signature : "?");
    if (uf->nout != 1)
        return not_impl("ufunc '%s' has %d outputs; C ufunc kernels make one", uf->name, uf->nout);
    if (uf->nin < 1 || uf->nin > CD_UFUNC_MAXIN)
        return not_impl("ufunc '%s' has %d inputs", uf->name, uf->nin);
    if (strlen(uf->name) >= CD_UFUNC_NAMELEN)
        return not_impl("ufunc name '%s' is too long", uf->name);
    /* only numpy.<name> (pickling goes by name) */
    attr = PyObject_GetAttrString(np_module, uf->name);
    if (attr != u) {
        Py_XDECREF(attr);
        PyErr_Clear();
        return not_impl("ufunc '%s' is not numpy.%s", uf->name, uf->name);
    }
    Py_DECREF(attr);

    memset(&p, 0, sizeof(p));
    memcpy(p.name, uf->name, strlen(uf->name) + 1);
    p.magic = CD_UFUNC_MAGIC;
    p.nin = uf->nin;
    p.nout = 1;

    seq = PySequence_Fast(in_dtypes, "ufunc_kernel: in_dtypes must be a sequence");
    if (seq == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != uf->nin) {
        PyErr_Format(PyExc_ValueError, "ufunc '%s' takes %d input%s, got %zd dtypes",
                     uf->name, uf->nin, uf->nin == 1 ? "" : "s", PySequence_Fast_GET_SIZE(seq));
        goto done;
    }
    call = PyTuple_New(uf->nargs);
    if (call == NULL)
        goto done;
    for (int i = 0; i < uf->nargs; i++) {
        PyObject *item;
        if (i >= uf->nin) {
            PyTuple_SET_ITEM(call, i, Py_NewRef(Py_None));
            continue;
        }
        rc = convert_declared(PySequence_Fast_GET_ITEM(seq, i), &item, &p.declared[i]);
        if (rc != 0)
            goto done;
        PyTuple_SET_ITEM(call, i, item);
    }
    /* NumPy's own promotion and type resolution */
    resolved = PyObject_CallMethod(u, "resolve_dtypes", "(O)", call);
    if (resolved == NULL)
        goto done;
    if (!PyTuple_Check(resolved) || PyTuple_GET_SIZE(resolved) != uf->nargs) {
        PyErr_Format(PyExc_RuntimeError, "ufunc '%s': unexpected resolve_dtypes result %R",
                     uf->name, resolved);
        goto done;
    }
    {
        int typenums[CD_UFUNC_MAXIN + 1];
        for (int i = 0; i < uf->nargs; i++) {
            PyObject *d = PyTuple_GET_ITEM(resolved, i);
            int dt;
            if (!PyArray_DescrCheck(d)) {
                PyErr_Format(PyExc_RuntimeError, "ufunc '%s': unexpected resolved dtype %R",
                             uf->name, d);
                goto done;
            }
            typenums[i] = ((PyArray_Descr *)d)->type_num;
            dt = typenum_to_cd(typenums[i]);
            if (dt < 0 || !PyArray_ISNBO(((PyArray_Descr *)d)->byteorder)) {
                PyErr_Format(PyExc_NotImplementedError,
                             "ufunc '%s' resolves to a loop on dtype %S, which cdask C "
                             "kernels do not support", uf->name, d);
                goto done;
            }
            p.loop[i] = dt;
        }
        /* first exact entry of the legacy table, else first equivalent one */
        for (int pass = 0; pass < 2 && match < 0; pass++) {
            for (int j = 0; j < uf->ntypes && match < 0; j++) {
                const char *t = uf->types + (size_t)j * (size_t)uf->nargs;
                int ok = uf->functions[j] != NULL;
                for (int i = 0; i < uf->nargs && ok; i++)
                    ok = pass == 0 ? t[i] == typenums[i] : typenum_to_cd(t[i]) == p.loop[i];
                if (ok)
                    match = j;
            }
        }
    }
    if (match < 0) {
        PyObject *r = PyObject_Repr(resolved);
        if (r != NULL) {
            PyErr_Format(PyExc_NotImplementedError,
                         "ufunc '%s' has no legacy inner loop for the resolved dtypes %U",
                         uf->name, r);
            Py_DECREF(r);
        }
        goto done;
    }
    p.fn = (cd_ufunc_loop)uf->functions[match];
    p.data = uf->data != NULL ? uf->data[match] : NULL;
    if (strcmp(uf->name, "power") == 0 && uf->nin == 2 &&
        p.loop[1] >= CD_INT8 && p.loop[1] <= CD_INT64)
        p.flags |= CD_UF_CHECK_NEG_EXPONENT;

    *out = p;
    result = 0;
done:
    Py_XDECREF(seq);
    Py_XDECREF(call);
    Py_XDECREF(resolved);
    return result;
}

/* The Kernel for ufunc u and a sequence of declared input dtypes. */
static PyObject *make_kernel(PyObject *u, PyObject *in_dtypes)
{
    cd_ufunc_params p;
    PyObject *pbytes;
    cd_KernelObject *k;
    if (cd_ufunc_resolve(u, in_dtypes, &p) < 0)
        return NULL;
    pbytes = PyBytes_FromStringAndSize((const char *)&p, (Py_ssize_t)sizeof(p));
    if (pbytes == NULL)
        return NULL;
    k = PyObject_New(cd_KernelObject, &cd_KernelType);
    if (k == NULL) {
        Py_DECREF(pbytes);
        return NULL;
    }
    k->desc = &cd_ufunc_desc;
    k->params = pbytes;
    return (PyObject *)k;
}

static PyObject *py_ufunc_kernel(PyObject *self, PyObject *args)
{
    PyObject *u, *dts;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "OO:ufunc_kernel", &u, &dts))
        return NULL;
    return make_kernel(u, dts);
}

static PyObject *py_from_spec(PyObject *self, PyObject *args)
{
    PyObject *name, *strs, *u = NULL, *seq = NULL, *dts = NULL, *res = NULL;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "UO:_ufunc_kernel_from_spec", &name, &strs))
        return NULL;
    u = PyObject_GetAttr(np_module, name);
    if (u == NULL)
        return NULL;
    seq = PySequence_Fast(strs, "_ufunc_kernel_from_spec: dtypes must be a sequence");
    if (seq == NULL)
        goto done;
    dts = PyTuple_New(PySequence_Fast_GET_SIZE(seq));
    if (dts == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *s = PySequence_Fast_GET_ITEM(seq, i), *v = NULL;
        if (PyUnicode_Check(s)) {
            if (PyUnicode_CompareWithASCIIString(s, "int") == 0)
                v = (PyObject *)&PyLong_Type;
            else if (PyUnicode_CompareWithASCIIString(s, "float") == 0)
                v = (PyObject *)&PyFloat_Type;
            else if (PyUnicode_CompareWithASCIIString(s, "complex") == 0)
                v = (PyObject *)&PyComplex_Type;
        }
        PyTuple_SET_ITEM(dts, i, Py_NewRef(v != NULL ? v : s));
    }
    res = make_kernel(u, dts);
    if (res == NULL && PyErr_ExceptionMatches(PyExc_NotImplementedError)) {
        /* this process cannot run it in C: NumPy's ufunc computes the same */
        PyErr_Clear();
        res = Py_NewRef(u);
    }
done:
    Py_XDECREF(u);
    Py_XDECREF(seq);
    Py_XDECREF(dts);
    return res;
}

static PyObject *ufunc_kernel_reduce(PyObject *kernel)
{
    cd_KernelObject *k = (cd_KernelObject *)kernel;
    cd_ufunc_params p;
    PyObject *strs, *res;
    if (PyBytes_GET_SIZE(k->params) != (Py_ssize_t)sizeof(p)) {
        PyErr_SetString(PyExc_RuntimeError, "cdask: corrupt ufunc kernel parameters");
        return NULL;
    }
    memcpy(&p, PyBytes_AS_STRING(k->params), sizeof(p));
    p.name[CD_UFUNC_NAMELEN - 1] = '\0';
    if (p.nin < 1 || p.nin > CD_UFUNC_MAXIN) {
        PyErr_SetString(PyExc_RuntimeError, "cdask: corrupt ufunc kernel parameters");
        return NULL;
    }
    strs = PyTuple_New(p.nin);
    if (strs == NULL)
        return NULL;
    for (int i = 0; i < p.nin; i++) {
        int32_t c = p.declared[i];
        const char *s = c >= CD_UF_WEAK_INT && c <= CD_UF_WEAK_COMPLEX
                            ? weak_names[c - CD_UF_WEAK_INT]
                            : (c >= 0 && c < CD_NDTYPES ? cd_dtype_name[c] : "?");
        PyObject *o = PyUnicode_FromString(s);
        if (o == NULL) {
            Py_DECREF(strs);
            return NULL;
        }
        PyTuple_SET_ITEM(strs, i, o);
    }
    res = Py_BuildValue("O(sN)", from_spec_fn, p.name, strs);
    return res;
}

/* _cast(a, dtype): the C casts (cd_cast, kernels/ufunc.c) on an array - the
 * conversions the ufunc and fused kernels apply to their operands - for tests
 * against NumPy's astype.  Floating-point flags it raises are cleared. */
static PyObject *py_cast(PyObject *self, PyObject *args)
{
    PyObject *obj, *dto;
    PyArray_Descr *d = NULL;
    PyArrayObject *a = NULL, *r = NULL;
    cd_dtype from, to;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "OO:_cast", &obj, &dto))
        return NULL;
    if (!PyArray_DescrConverter(dto, &d))
        return NULL;
    if (cd_dtype_from_descr(d, &to) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(d);
    a = (PyArrayObject *)PyArray_FROM_OF(obj, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED |
                                                  NPY_ARRAY_NOTSWAPPED);
    if (a == NULL)
        return NULL;
    if (cd_dtype_from_descr(PyArray_DESCR(a), &from) < 0)
        goto done;
    d = PyArray_DescrFromType(cd_dtype_typenum(to));
    if (d == NULL)
        goto done;
    r = (PyArrayObject *)PyArray_SimpleNewFromDescr(PyArray_NDIM(a), PyArray_DIMS(a), d);
    if (r == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    cd_cast(from, PyArray_DATA(a), to, PyArray_DATA(r), (int64_t)PyArray_SIZE(a));
    feclearexcept(FE_ALL_EXCEPT);
    Py_END_ALLOW_THREADS
done:
    Py_DECREF(a);
    return (PyObject *)r;
}

static PyMethodDef ufunc_methods[] = {
    {"_cast", py_cast, METH_VARARGS,
     "_cast(a, dtype) -> ndarray: a's elements converted by cdask's C casts (for tests)."},
    {"ufunc_kernel", py_ufunc_kernel, METH_VARARGS,
     "ufunc_kernel(ufunc, in_dtypes) -> Kernel\n\n"
     "A C kernel running NumPy's own inner loop of `ufunc` for inputs of\n"
     "`in_dtypes` (NumPy dtypes, or int/float/complex for Python scalars),\n"
     "as resolved by ufunc.resolve_dtypes.  Inputs are broadcast and cast to\n"
     "the loop dtypes; the result has the loop's output dtype.  Raises\n"
     "NotImplementedError when the ufunc cannot run as a C loop."},
    {"_ufunc_kernel_from_spec", py_from_spec, METH_VARARGS,
     "_ufunc_kernel_from_spec(name, dtype_strs): unpickle a ufunc kernel."},
    {NULL, NULL, 0, NULL},
};

/* Its params are pointers: show the ufunc instead. */
static PyObject *ufunc_kernel_repr(PyObject *kernel)
{
    cd_KernelObject *k = (cd_KernelObject *)kernel;
    return PyUnicode_FromFormat("<cdask ufunc kernel '%s'>",
                                cd_kernel_display_name(k->desc, PyBytes_AS_STRING(k->params),
                                                       (size_t)PyBytes_GET_SIZE(k->params)));
}

static const cd_kernel_py_ops ufunc_ops = {&cd_ufunc_desc, ufunc_kernel_reduce, ufunc_kernel_repr,
                                           NULL};

int cd_ufunc_py_init(PyObject *module)
{
    if (PyModule_AddFunctions(module, ufunc_methods) < 0 || cd_kernel_py_register(&ufunc_ops) < 0)
        return -1;
    np_module = PyImport_ImportModule("numpy");
    if (np_module == NULL)
        return -1;
    np_ufunc_type = PyObject_GetAttrString(np_module, "ufunc");
    if (np_ufunc_type == NULL)
        return -1;
    from_spec_fn = PyObject_GetAttrString(module, "_ufunc_kernel_from_spec");
    if (from_spec_fn == NULL)
        return -1;
    return 0;
}
