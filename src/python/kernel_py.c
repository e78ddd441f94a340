/*
 * kernel_py.c - the Python type cdask._core.Kernel (interface: kernel_py.h)
 * and the dict cdask._core.kernels of the built-in kernels.
 *
 * Design.  A Kernel is a descriptor pointer (found by the kernel's stable
 * name) plus immutable parameter bytes.  The scheduler reads both directly
 * and runs the C function on a worker.  So that dask, dask.distributed or
 * plain code can run the same graphs, a Kernel is also an ordinary callable:
 * __call__ flattens list/tuple arguments (a task (sum, [a, b, c]) gives the
 * kernel three inputs), converts each value to a chunk (zero-copy for
 * suitable arrays), runs the kernel on the calling thread - releasing the
 * GIL when its inputs plus its output exceed 64 KiB, or for "spin" (which
 * cannot be interrupted when called this way: its cancel flag is a constant
 * zero) - and returns the result
 * as an ndarray over the result chunk's memory (a NumPy scalar for 0-d).
 * Up to 16 inputs are kept in a stack array; more use a heap array.
 * Kernels pickle by (name, params), so any process importing cdask can load
 * them - except "ufunc" and "fused" kernels, whose params hold pointers into
 * NumPy: they pickle through a reconstructor that resolves the loops again
 * (ufunc_py.c, fused_py.c).
 * Kernels marked CD_KF_FPE run between cd_fpe_clear and cd_fpe_read here too,
 * and raised flags go to cdask._errstate.report, so that a direct call obeys
 * np.errstate as the NumPy operation would.
 */
#include "python/kernel_py.h"
#include "core/fault.h"
#include "kernels/registry.h"
#include "python/chunk_py.h"

#include <stdlib.h>
#include <string.h>

/* Ops of the kernels registered by ufunc_py.c and fused_py.c (GIL). */
#define MAX_PY_OPS 4
static const cd_kernel_py_ops *py_ops[MAX_PY_OPS];
static int n_py_ops;

int cd_kernel_py_register(const cd_kernel_py_ops *ops)
{
    for (int i = 0; i < n_py_ops; i++)
        if (py_ops[i]->desc == ops->desc) {
            py_ops[i] = ops;
            return 0;
        }
    if (n_py_ops == MAX_PY_OPS) {
        PyErr_SetString(PyExc_RuntimeError, "cdask: too many kernel ops registered");
        return -1;
    }
    py_ops[n_py_ops++] = ops;
    return 0;
}

/* The ops registered for desc, or NULL. */
static const cd_kernel_py_ops *ops_of(const cd_kernel_desc *desc)
{
    for (int i = 0; i < n_py_ops; i++)
        if (py_ops[i]->desc == desc)
            return py_ops[i];
    return NULL;
}

#define GIL_RELEASE_BYTES ((int64_t)64 * 1024)
#define NSTACK 16

static const volatile int never_cancel = 0;
static const cd_kernel_desc *spin_desc;   /* always run without the GIL */

/* ------------------------------------------------------------------ */
/* argument conversion                                                 */

typedef struct {
    cd_chunk *stack[NSTACK];
    cd_chunk **v;
    int n, cap;
} chunk_list;

static void cl_init(chunk_list *l)
{
    l->v = l->stack;
    l->n = 0;
    l->cap = NSTACK;
}

static void cl_clear(chunk_list *l)
{
    for (int i = 0; i < l->n; i++)
        cd_chunk_decref_py(l->v[i]);
    if (l->v != l->stack)
        PyMem_Free(l->v);
    l->v = l->stack;
    l->n = 0;
    l->cap = NSTACK;
}

static int cl_push(chunk_list *l, cd_chunk *c)
{
    if (l->n == l->cap) {
        int ncap;
        cd_chunk **p;
        if (l->cap > INT32_MAX / 2) {
            PyErr_SetString(PyExc_OverflowError, "cdask: too many kernel inputs");
            return -1;
        }
        ncap = l->cap * 2;
        p = PyMem_Malloc((size_t)ncap * sizeof(*p));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(p, l->v, (size_t)l->n * sizeof(*p));
        if (l->v != l->stack)
            PyMem_Free(l->v);
        l->v = p;
        l->cap = ncap;
    }
    l->v[l->n++] = c;
    return 0;
}

/* Convert one argument, flattening lists and tuples (recursively). */
static int add_arg(chunk_list *l, const char *name, PyObject *arg, int depth)
{
    if (PyList_Check(arg) || PyTuple_Check(arg)) {
        if (depth > 100) {
            PyErr_Format(PyExc_RecursionError,
                         "kernel '%s': argument lists nested too deeply", name);
            return -1;
        }
        /* a list may change under us if an element's conversion runs Python
         * code: index it afresh each time */
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(arg); i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(arg, i);
            int rc;
            Py_INCREF(item);
            rc = add_arg(l, name, item, depth + 1);
            Py_DECREF(item);
            if (rc < 0)
                return -1;
        }
        return 0;
    } else {
        cd_chunk *c = cd_chunk_from_object_arg(arg, name, l->n + 1);
        if (c == NULL)
            return -1;
        if (cl_push(l, c) < 0) {
            cd_chunk_decref_py(c);
            return -1;
        }
        return 0;
    }
}

static int convert_args(cd_KernelObject *k, PyObject *args, PyObject *kwargs, chunk_list *l)
{
    const cd_kernel_desc *d = k->desc;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_Format(PyExc_TypeError, "kernel '%s' takes no keyword arguments", d->name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
        if (add_arg(l, d->name, PyTuple_GET_ITEM(args, i), 0) < 0)
            return -1;
    if (l->n < d->min_in || (d->max_in >= 0 && l->n > d->max_in)) {
        if (d->max_in == d->min_in)
            PyErr_Format(PyExc_TypeError, "kernel '%s' takes %d input%s, got %d",
                         d->name, d->min_in, d->min_in == 1 ? "" : "s", l->n);
        else if (d->max_in < 0)
            PyErr_Format(PyExc_TypeError, "kernel '%s' takes %d or more inputs, got %d",
                         d->name, d->min_in, l->n);
        else
            PyErr_Format(PyExc_TypeError, "kernel '%s' takes %d to %d inputs, got %d",
                         d->name, d->min_in, d->max_in, l->n);
        return -1;
    }
    return 0;
}

static void make_ctx(cd_KernelObject *k, cd_kctx *ctx)
{
    ctx->cancel = &never_cancel;
    ctx->params_size = (size_t)PyBytes_GET_SIZE(k->params);
    ctx->params = ctx->params_size ? PyBytes_AS_STRING(k->params) : NULL;
    ctx->worker = -1;
}

/* ------------------------------------------------------------------ */
/* the type                                                            */

static PyObject *kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"name", "params", NULL};
    PyObject *name, *params = NULL, *pbytes = NULL;
    const char *cname;
    const cd_kernel_desc *d;
    cd_KernelObject *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|O:Kernel", kwlist, &name, &params))
        return NULL;
    cname = PyUnicode_AsUTF8(name);
    if (cname == NULL)
        return NULL;
    d = cd_kernel_find(cname);
    if (d == NULL) {
        PyObject *names = PyUnicode_FromString(""), *sep = PyUnicode_FromString(", ");
        PyObject *list = PyList_New(0), *joined = NULL;
        if (names != NULL && sep != NULL && list != NULL) {
            int ok = 1;
            for (const cd_kernel_desc *const *p = cd_builtin_kernels; *p && ok; p++) {
                PyObject *s = PyUnicode_FromString((*p)->name);
                ok = s != NULL && PyList_Append(list, s) == 0;
                Py_XDECREF(s);
            }
            if (ok)
                joined = PyUnicode_Join(sep, list);
        }
        if (joined != NULL)
            PyErr_Format(PyExc_ValueError, "unknown cdask kernel %R; known kernels: %U",
                         name, joined);
        Py_XDECREF(names);
        Py_XDECREF(sep);
        Py_XDECREF(list);
        Py_XDECREF(joined);
        return NULL;
    }
    if (params == NULL || params == Py_None) {
        pbytes = PyBytes_FromStringAndSize(NULL, 0);
    } else if (PyBytes_CheckExact(params)) {
        pbytes = Py_NewRef(params);
    } else if (PyObject_CheckBuffer(params) && !PyUnicode_Check(params)) {
        pbytes = PyBytes_FromObject(params);
    } else {
        PyErr_Format(PyExc_TypeError, "Kernel params must be bytes, not %.100s",
                     Py_TYPE(params)->tp_name);
        return NULL;
    }
    if (pbytes == NULL)
        return NULL;
    self = (cd_KernelObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(pbytes);
        return NULL;
    }
    self->desc = d;
    self->params = pbytes;
    return (PyObject *)self;
}

static void kernel_dealloc(PyObject *o)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    Py_CLEAR(self->params);
    Py_TYPE(o)->tp_free(o);
}

/* Floating-point flags raised by a direct call: cdask._errstate decides. */
static int report_fpe(cd_KernelObject *k, int flags)
{
    const char *name = cd_kernel_display_name(k->desc, PyBytes_AS_STRING(k->params),
                                              (size_t)PyBytes_GET_SIZE(k->params));
    PyObject *mod = PyImport_ImportModule("cdask._errstate"), *r;
    if (mod == NULL)
        return -1;
    r = PyObject_CallMethod(mod, "report", "i(ssss)", flags, name, name, name, name);
    Py_DECREF(mod);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *kernel_call(PyObject *o, PyObject *args, PyObject *kwargs)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    const cd_kernel_desc *d = self->desc;
    chunk_list l;
    cd_kctx ctx;
    cd_chunk *out = NULL;
    cd_err err = {0, ""};
    PyObject *res = NULL;
    int64_t in_bytes = 0;
    const cd_kernel_py_ops *ops;
    int rc, fpe;

    cl_init(&l);
    if (convert_args(self, args, kwargs, &l) < 0)
        goto done;
    ops = ops_of(d);
    if (ops != NULL && ops->is_store != NULL && ops->is_store(o)) {
        /* the result goes into the last argument: it must be that very array */
        PyObject *dst = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, PyTuple_GET_SIZE(args) - 1) : NULL;
        if (dst == NULL || !PyArray_Check(dst) || !PyArray_ISWRITEABLE((PyArrayObject *)dst) ||
            l.n < 1 || l.v[l.n - 1]->data != PyArray_DATA((PyArrayObject *)dst)) {
            PyErr_SetString(PyExc_TypeError, "fused kernel: the destination of a store must be "
                            "a writeable, C-contiguous, aligned NumPy array in native byte order");
            goto done;
        }
    }
    make_ctx(self, &ctx);
    for (int i = 0; i < l.n; i++)
        in_bytes += l.v[i]->nbytes;
    /* big outputs from small inputs (ones(10**7)) are worth it too */
    if (in_bytes <= GIL_RELEASE_BYTES && d->out_bytes != NULL)
        in_bytes += d->out_bytes(&ctx, l.n, l.v);
    /* a guarded call (core/fault.h): a mapped file that shrank raises OSError */
    if (in_bytes > GIL_RELEASE_BYTES || d == spin_desc) {
        Py_BEGIN_ALLOW_THREADS
        rc = cd_fault_call(d, &ctx, l.n, l.v, &out, &err, &fpe);
        Py_END_ALLOW_THREADS
    } else {
        rc = cd_fault_call(d, &ctx, l.n, l.v, &out, &err, &fpe);
    }
    if (rc < 0 || out == NULL) {
        if (out != NULL)
            cd_chunk_decref_py(out);
        if (rc >= 0)
            cd_err_set(&err, CD_EINTERNAL, "kernel '%s' returned no result", d->name);
        else if (err.code == 0)
            cd_err_set(&err, rc, "kernel '%s' failed (code %d)", d->name, rc);
        cd_raise(&err);
        goto done;
    }
    if (fpe != 0 && report_fpe(self, fpe) < 0) {
        cd_chunk_decref_py(out);
        goto done;
    }
    res = cd_chunk_as_result(out);
    cd_chunk_decref_py(out);
done:
    cl_clear(&l);
    if (cd_py_pending_releases() != 0)
        cd_py_drain_releases();
    return res;
}

static PyObject *bytes_method(cd_KernelObject *self, PyObject *args, cd_kernel_bytes_fn fn)
{
    chunk_list l;
    cd_kctx ctx;
    PyObject *res = NULL;

    cl_init(&l);
    if (convert_args(self, args, NULL, &l) < 0)
        goto done;
    make_ctx(self, &ctx);
    res = PyLong_FromLongLong(fn != NULL ? (long long)fn(&ctx, l.n, l.v) : 0LL);
done:
    cl_clear(&l);
    return res;
}

static PyObject *kernel_out_bytes(PyObject *o, PyObject *args)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    return bytes_method(self, args, self->desc->out_bytes);
}

static PyObject *kernel_work_bytes(PyObject *o, PyObject *args)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    return bytes_method(self, args, self->desc->work_bytes);
}

static PyObject *kernel_reduce(PyObject *o, PyObject *noargs)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    const cd_kernel_py_ops *ops = ops_of(self->desc);
    CD_UNUSED(noargs);
    if (ops != NULL && ops->reduce != NULL)
        return ops->reduce(o);
    return Py_BuildValue("O(sO)", (PyObject *)Py_TYPE(o), self->desc->name, self->params);
}

static PyObject *kernel_repr(PyObject *o)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    const cd_kernel_py_ops *ops = ops_of(self->desc);
    PyObject *hex, *r;
    if (ops != NULL && ops->repr != NULL)   /* params that are pointers: its own repr */
        return ops->repr(o);
    if (PyBytes_GET_SIZE(self->params) == 0)
        return PyUnicode_FromFormat("<cdask kernel '%s'>", self->desc->name);
    hex = PyObject_CallMethod(self->params, "hex", NULL);
    if (hex == NULL)
        return NULL;
    r = PyUnicode_FromFormat("<cdask kernel '%s' params=%U>", self->desc->name, hex);
    Py_DECREF(hex);
    return r;
}

static Py_hash_t kernel_hash(PyObject *o)
{
    cd_KernelObject *self = (cd_KernelObject *)o;
    PyObject *t = Py_BuildValue("(sO)", self->desc->name, self->params);
    Py_hash_t h;
    if (t == NULL)
        return -1;
    h = PyObject_Hash(t);
    Py_DECREF(t);
    return h;
}

static PyObject *kernel_richcompare(PyObject *a, PyObject *b, int op)
{
    int eq;
    if ((op != Py_EQ && op != Py_NE) || !cd_Kernel_Check(a) || !cd_Kernel_Check(b))
        Py_RETURN_NOTIMPLEMENTED;
    eq = ((cd_KernelObject *)a)->desc == ((cd_KernelObject *)b)->desc;
    if (eq) {
        eq = PyObject_RichCompareBool(((cd_KernelObject *)a)->params,
                                      ((cd_KernelObject *)b)->params, Py_EQ);
        if (eq < 0)
            return NULL;
    }
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *get_name(PyObject *o, void *closure)
{
    CD_UNUSED(closure);
    return PyUnicode_FromString(((cd_KernelObject *)o)->desc->name);
}

static PyObject *get_params(PyObject *o, void *closure)
{
    CD_UNUSED(closure);
    return Py_NewRef(((cd_KernelObject *)o)->params);
}

static PyObject *get_min_in(PyObject *o, void *closure)
{
    CD_UNUSED(closure);
    return PyLong_FromLong(((cd_KernelObject *)o)->desc->min_in);
}

static PyObject *get_max_in(PyObject *o, void *closure)
{
    const cd_kernel_desc *d = ((cd_KernelObject *)o)->desc;
    CD_UNUSED(closure);
    if (d->max_in < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(d->max_in);
}

static PyObject *get_doc(PyObject *o, void *closure)
{
    const cd_kernel_desc *d = ((cd_KernelObject *)o)->desc;
    CD_UNUSED(closure);
    return PyUnicode_FromString(d->doc != NULL ? d->doc : "");
}

static PyGetSetDef kernel_getset[] = {
    {"name", get_name, NULL, "The kernel's stable name.", NULL},
    {"params", get_params, NULL, "The kernel's parameter bytes.", NULL},
    {"min_in", get_min_in, NULL, "Fewest inputs the kernel accepts.", NULL},
    {"max_in", get_max_in, NULL, "Most inputs the kernel accepts (None: unbounded).", NULL},
    {"doc", get_doc, NULL, "One-line description of the kernel.", NULL},
    {"__doc__", get_doc, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef kernel_methods[] = {
    {"__reduce__", kernel_reduce, METH_NOARGS, "Pickle by (name, params)."},
    {"out_bytes", kernel_out_bytes, METH_VARARGS,
     "out_bytes(*args): bytes of the result the kernel would make for these inputs."},
    {"work_bytes", kernel_work_bytes, METH_VARARGS,
     "work_bytes(*args): scratch bytes the kernel would need for these inputs."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject cd_KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cdask._core.Kernel",
    .tp_basicsize = sizeof(cd_KernelObject),
    .tp_dealloc = kernel_dealloc,
    .tp_repr = kernel_repr,
    .tp_hash = kernel_hash,
    .tp_call = kernel_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Kernel(name, params=b'')\n--\n\n"
              "A cdask C kernel: callable like a Python function (lists among the\n"
              "arguments are flattened), and run without the GIL on a C worker when\n"
              "it is the callable of a task given to cdask.get.  Pickles by name.",
    .tp_richcompare = kernel_richcompare,
    .tp_methods = kernel_methods,
    .tp_getset = kernel_getset,
    .tp_new = kernel_new,
};

int cd_kernel_py_init(PyObject *module)
{
    PyObject *dict = NULL;

    if (PyType_Ready(&cd_KernelType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Kernel", (PyObject *)&cd_KernelType) < 0)
        return -1;
    spin_desc = cd_kernel_find("spin");
    dict = PyDict_New();
    if (dict == NULL)
        return -1;
    for (const cd_kernel_desc *const *p = cd_builtin_kernels; *p != NULL; p++) {
        cd_KernelObject *k = PyObject_New(cd_KernelObject, &cd_KernelType);
        int rc;
        if (k == NULL)
            goto fail;
        k->desc = *p;
        k->params = PyBytes_FromStringAndSize(NULL, 0);
        if (k->params == NULL) {
            Py_DECREF(k);
            goto fail;
        }
        rc = PyDict_SetItemString(dict, (*p)->name, (PyObject *)k);
        Py_DECREF(k);
        if (rc < 0)
            goto fail;
    }
    if (PyModule_AddObjectRef(module, "kernels", dict) < 0)
        goto fail;
    Py_DECREF(dict);
    return 0;
fail:
    Py_XDECREF(dict);
    return -1;
}
