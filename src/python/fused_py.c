/*
 * fused_py.c - glue of the "fused" kernel (kernels/fused.c): builds a fused
 * program from Python, with the GIL held, and registers the Kernel's repr
 * and pickling (cd_kernel_py_register, kernel_py.h).  No header of its own:
 * its interface is the module functions below.
 *
 *   fused_kernel(inputs_dtypes, steps) -> Kernel
 *       inputs_dtypes: one NumPy dtype (or anything np.dtype accepts) per
 *       input chunk.  steps: a non-empty list of (ufunc, operand_refs); each
 *       ref is ("in", i), ("step", j) with j an earlier step, or
 *       ("const", value) with value a Python bool/int/float/complex or a
 *       NumPy scalar (or 0-d array).  The last step's result is the output;
 *       every other step must be used by a later one.  The Kernel takes the
 *       N input chunks, which must have the declared dtypes.
 *
 * Design.  Each step is resolved exactly as a single "ufunc" kernel would be
 * (cd_ufunc_resolve, ufunc_py.c: NumPy's own resolve_dtypes, NEP 50), for
 * the dtypes its operands have when NumPy evaluates the chain step by step:
 * an input's dtype, an earlier step's loop output dtype (an array, so
 * "strong"), a constant's dtype - Python int/float/complex are NEP 50 "weak"
 * scalars, Python bool and NumPy scalars are strong.  A constant is then
 * converted to the loop's operand dtype here, by NumPy (np.asarray(value,
 * dtype=loop) for a weak scalar - which raises NumPy's OverflowError for an
 * int out of an integer loop's range - and astype for a strong one), and its
 * bytes are stored next to the value as given.  One case has no C loop: a
 * comparison of integers with a Python int out of the loop dtype's range,
 * which NumPy decides by value; fused_kernel raises NotImplementedError for
 * it (as ufunc.py routes such a comparison to NumPy).
 *
 * Pickling goes through fused_kernel itself: __reduce__ rebuilds
 * (input dtype names, [(numpy.<ufunc>, refs)]) from the params, so the loops
 * are resolved again in the unpickling process.
 */
#include "python/cdpy.h"

#include "python/chunk_py.h"
#include "kernels/fused.h"
#include "python/ufunc_py.h"
#include "python/kernel_py.h"

#include <string.h>

static PyObject *np_mod;         /* numpy */
static PyObject *np_where;       /* numpy.where: a step fused programs know */
static PyObject *fused_fn;       /* cdask._core.fused_kernel */

static PyObject *descr_of(int32_t dt)
{
    return (PyObject *)PyArray_DescrFromType(cd_dtype_typenum((cd_dtype)dt));
}

/* dtype-like -> supported native cd_dtype; 0 or -1 with an exception. */
static int dtype_arg(PyObject *x, int32_t *out)
{
    PyArray_Descr *d = NULL;
    cd_dtype dt;
    if (!PyArray_DescrConverter(x, &d))
        return -1;
    if (!PyArray_ISNBO(d->byteorder)) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: dtype %S is not in native byte order",
                     (PyObject *)d);
        Py_DECREF(d);
        return -1;
    }
    if (cd_dtype_from_descr(d, &dt) < 0) {
        Py_DECREF(d);
        return -1;
    }
    Py_DECREF(d);
    *out = (int32_t)dt;
    return 0;
}

/*
 * A constant: what resolve_dtypes gets for it (new reference in *decl: a
 * descriptor, or int/float/complex for a weak Python scalar) and the value
 * as given (*orig_dt, orig).  0 or -1 with an exception.
 */
static int const_arg(PyObject *v, PyObject **decl, int32_t *orig_dt, unsigned char *orig)
{
    memset(orig, 0, 16);
    if (PyArray_IsScalar(v, Generic) || (PyArray_Check(v) && PyArray_NDIM((PyArrayObject *)v) == 0)) {
        PyArrayObject *a = (PyArrayObject *)PyArray_FromAny(v, NULL, 0, 0, NPY_ARRAY_CARRAY, NULL);
        int32_t dt;
        if (a == NULL)
            return -1;
        if (PyArray_NDIM(a) != 0 || dtype_arg((PyObject *)PyArray_DESCR(a), &dt) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "fused_kernel: a constant must be 0-d");
            Py_DECREF(a);
            return -1;
        }
        memcpy(orig, PyArray_DATA(a), (size_t)cd_dtype_itemsize[dt]);
        *orig_dt = dt;
        *decl = descr_of(dt);
        Py_DECREF(a);
        return *decl == NULL ? -1 : 0;
    }
    if (PyBool_Check(v)) {   /* Python bool is NumPy's strong bool */
        orig[0] = v == Py_True;
        *orig_dt = CD_BOOL;
        *decl = descr_of(CD_BOOL);
        return *decl == NULL ? -1 : 0;
    }
    if (PyLong_Check(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (overflow == 0) {
            int64_t y = x;
            memcpy(orig, &y, 8);
            *orig_dt = CD_INT64;
        } else {
            unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(v) : 0;
            uint64_t y = u;
            if (overflow < 0 || (u == (unsigned long long)-1 && PyErr_Occurred())) {
                PyErr_Clear();
                PyErr_SetString(PyExc_OverflowError,
                                "fused_kernel: integer constant out of the int64/uint64 range");
                return -1;
            }
            memcpy(orig, &y, 8);
            *orig_dt = CD_UINT64;
        }
        *decl = Py_NewRef((PyObject *)&PyLong_Type);
        return 0;
    }
    if (PyFloat_Check(v)) {
        double x = PyFloat_AsDouble(v);
        memcpy(orig, &x, 8);
        *orig_dt = CD_FLOAT64;
        *decl = Py_NewRef((PyObject *)&PyFloat_Type);
        return 0;
    }
    if (PyComplex_Check(v)) {
        double x[2] = {PyComplex_RealAsDouble(v), PyComplex_ImagAsDouble(v)};
        memcpy(orig, x, 16);
        *orig_dt = CD_COMPLEX128;
        *decl = Py_NewRef((PyObject *)&PyComplex_Type);
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "fused_kernel: a constant must be a Python or NumPy scalar, got %.100s",
                 Py_TYPE(v)->tp_name);
    return -1;
}

/* The constant as given, rebuilt from a ref (new reference). */
static PyObject *const_value(const cd_fused_ref *r, int32_t declared)
{
    if (declared >= CD_UF_WEAK_INT && declared <= CD_UF_WEAK_COMPLEX) {
        if (r->orig_dtype == CD_INT64) {
            int64_t x;
            memcpy(&x, r->orig, 8);
            return PyLong_FromLongLong((long long)x);
        }
        if (r->orig_dtype == CD_UINT64) {
            uint64_t x;
            memcpy(&x, r->orig, 8);
            return PyLong_FromUnsignedLongLong((unsigned long long)x);
        }
        if (r->orig_dtype == CD_FLOAT64) {
            double x;
            memcpy(&x, r->orig, 8);
            return PyFloat_FromDouble(x);
        }
        if (r->orig_dtype == CD_COMPLEX128) {
            double x[2];
            memcpy(x, r->orig, 16);
            return PyComplex_FromDoubles(x[0], x[1]);
        }
    } else if (r->orig_dtype >= 0 && r->orig_dtype < CD_NDTYPES) {
        _Alignas(16) unsigned char buf[16];
        PyArray_Descr *d = PyArray_DescrFromType(cd_dtype_typenum((cd_dtype)r->orig_dtype));
        PyObject *res;
        if (d == NULL)
            return NULL;
        memcpy(buf, r->orig, 16);
        res = PyArray_Scalar(buf, d, NULL);
        Py_DECREF(d);
        return res;
    }
    PyErr_SetString(PyExc_RuntimeError, "cdask: corrupt fused kernel constant");
    return NULL;
}

/* The constant converted to loop dtype `dt` into r->val; 0 or -1. */
static int const_convert(PyObject *v, int32_t declared, int32_t dt, cd_fused_ref *r)
{
    PyArray_Descr *d = PyArray_DescrFromType(cd_dtype_typenum((cd_dtype)dt));
    PyArrayObject *a;
    if (d == NULL)
        return -1;
    if (declared >= CD_UF_WEAK_INT && declared <= CD_UF_WEAK_COMPLEX) {
        a = (PyArrayObject *)PyArray_FromAny(v, d, 0, 0, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST,
                                             NULL);   /* steals d */
    } else {
        PyObject *src = PyArray_FromAny(v, NULL, 0, 0, NPY_ARRAY_CARRAY, NULL);
        if (src == NULL) {
            Py_DECREF(d);
            return -1;
        }
        a = (PyArrayObject *)PyArray_CastToType((PyArrayObject *)src, d, 0);   /* steals d */
        Py_DECREF(src);
    }
    if (a == NULL)
        return -1;
    memset(r->val, 0, sizeof(r->val));
    memcpy(r->val, PyArray_DATA(a), (size_t)cd_dtype_itemsize[dt]);
    Py_DECREF(a);
    return 0;
}

/* Parse one ref into *r (kind, index; a constant's value in *cval, borrowed). */
static int ref_arg(PyObject *ref, int s, int nin, cd_fused_ref *r, PyObject **cval)
{
    PyObject *kind, *val;
    const char *k;
    *cval = NULL;
    if (!PyTuple_Check(ref) || PyTuple_GET_SIZE(ref) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(ref, 0))) {
        PyErr_Format(PyExc_TypeError,
                     "fused_kernel: step %d: an operand must be ('in', i), ('step', j) or "
                     "('const', value), got %R", s, ref);
        return -1;
    }
    kind = PyTuple_GET_ITEM(ref, 0);
    val = PyTuple_GET_ITEM(ref, 1);
    k = PyUnicode_AsUTF8(kind);
    if (k == NULL)
        return -1;
    memset(r, 0, sizeof(*r));
    if (strcmp(k, "const") == 0) {
        r->kind = CD_FR_CONST;
        *cval = val;
        return 0;
    }
    if (strcmp(k, "in") == 0 || strcmp(k, "step") == 0) {
        long i = PyLong_Check(val) && !PyBool_Check(val) ? PyLong_AsLong(val) : -2;
        int is_in = k[0] == 'i';
        if (i == -1 && PyErr_Occurred())
            return -1;
        if (i < 0 || i >= (is_in ? nin : s)) {
            PyErr_Format(PyExc_ValueError, "fused_kernel: step %d: bad operand %R (%s)", s, ref,
                         is_in ? "no such input" : "must name an earlier step");
            return -1;
        }
        r->kind = is_in ? CD_FR_IN : CD_FR_STEP;
        r->index = (int32_t)i;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "fused_kernel: step %d: unknown operand kind %R", s, kind);
    return -1;
}

static int is_comparison(const char *name)
{
    static const char *const cmp[] = {"equal", "not_equal", "less", "less_equal", "greater",
                                      "greater_equal"};
    for (size_t i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++)
        if (strcmp(name, cmp[i]) == 0)
            return 1;
    return 0;
}

/* np.where(cond, a, b) as a step: cond cast to bool, a and b to NumPy's
 * result_type of the two (Python scalars weak, NEP 50), then a select loop
 * (kernels/ufunc.c).  0, or -1 with an exception. */
static int where_resolve(PyObject *decl, PyObject *const *cvals, Py_ssize_t n,
                         cd_ufunc_params *uf)
{
    PyObject *rt = NULL, *args[2];
    int32_t r, dts[3];
    if (n != 3) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: where takes 3 operands, got %zd", n);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        PyObject *d = PyTuple_GET_ITEM(decl, i);
        if (PyArray_DescrCheck(d)) {
            if (dtype_arg(d, &dts[i]) < 0)
                return -1;
        } else {
            dts[i] = d == (PyObject *)&PyLong_Type ? CD_UF_WEAK_INT
                     : d == (PyObject *)&PyFloat_Type ? CD_UF_WEAK_FLOAT : CD_UF_WEAK_COMPLEX;
            if (i == 0) {
                PyErr_SetString(PyExc_NotImplementedError,
                                "fused_kernel: where with a scalar condition");
                return -1;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        args[i] = PyArray_DescrCheck(PyTuple_GET_ITEM(decl, i + 1)) ? PyTuple_GET_ITEM(decl, i + 1)
                                                                     : cvals[i + 1];
    rt = PyObject_CallMethod(np_mod, "result_type", "OO", args[0], args[1]);
    if (rt == NULL)
        return -1;
    if (dtype_arg(rt, &r) < 0) {
        Py_DECREF(rt);
        return -1;
    }
    Py_DECREF(rt);
    memset(uf, 0, sizeof(*uf));
    strcpy(uf->name, "where");
    uf->magic = CD_UFUNC_MAGIC;
    uf->nin = 3;
    uf->nout = 1;
    for (int i = 0; i < 3; i++)
        uf->declared[i] = dts[i];
    uf->loop[0] = CD_BOOL;
    uf->loop[1] = uf->loop[2] = uf->loop[3] = r;
    uf->fn = cd_where_loop(cd_dtype_itemsize[r]);
    if (uf->fn == NULL) {
        PyErr_Format(PyExc_NotImplementedError, "fused_kernel: no where loop for %s",
                     cd_dtype_name[r]);
        return -1;
    }
    return 0;
}

/* Resolve step s of the sequence into p->step[s]; 0 or -1. */
static int build_step(cd_fused_params *p, int s, PyObject *item)
{
    cd_fused_step *st = &p->step[s];
    PyObject *u, *refs = NULL, *decl = NULL, *cvals[CD_UFUNC_MAXIN] = {NULL};
    Py_ssize_t n;
    int rc = -1;
    if (!PyTuple_Check(item) && !PyList_Check(item)) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: step %d must be (ufunc, operand_refs)", s);
        return -1;
    }
    if (PySequence_Size(item) != 2) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: step %d must be (ufunc, operand_refs)", s);
        return -1;
    }
    u = PySequence_GetItem(item, 0);
    if (u == NULL)
        return -1;
    {
        PyObject *r = PySequence_GetItem(item, 1);
        if (r == NULL)
            goto done;
        refs = PySequence_Fast(r, "fused_kernel: operand_refs must be a sequence");
        Py_DECREF(r);
        if (refs == NULL)
            goto done;
    }
    n = PySequence_Fast_GET_SIZE(refs);
    if (n < 1 || n > CD_UFUNC_MAXIN) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: step %d has %zd operands", s, n);
        goto done;
    }
    decl = PyTuple_New(n);
    if (decl == NULL)
        goto done;
    memset(st, 0, sizeof(*st));
    for (Py_ssize_t i = 0; i < n; i++) {
        cd_fused_ref *r = &st->op[i];
        PyObject *d;
        if (ref_arg(PySequence_Fast_GET_ITEM(refs, i), s, p->nin, r, &cvals[i]) < 0)
            goto done;
        if (r->kind == CD_FR_CONST) {
            if (const_arg(cvals[i], &d, &r->orig_dtype, r->orig) < 0)
                goto done;
        } else if (r->kind == CD_FR_IN) {
            d = descr_of(p->in_dtype[r->index]);
        } else {
            const cd_ufunc_params *src = &p->step[r->index].uf;
            d = descr_of(src->loop[src->nin]);
        }
        if (d == NULL)
            goto done;
        PyTuple_SET_ITEM(decl, i, d);
    }
    if (u == np_where) {
        if (where_resolve(decl, cvals, n, &st->uf) < 0)
            goto done;
    } else if (cd_ufunc_resolve(u, decl, &st->uf) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (st->op[i].kind == CD_FR_CONST &&
            const_convert(cvals[i], st->uf.declared[i], st->uf.loop[i], &st->op[i]) < 0) {
            if (is_comparison(st->uf.name) && PyErr_ExceptionMatches(PyExc_OverflowError)) {
                /* NumPy compares an out-of-range Python int by value (no loop) */
                PyErr_Clear();
                PyErr_Format(PyExc_NotImplementedError,
                             "fused_kernel: step %d: %s with a Python int out of the range of "
                             "%s: NumPy compares it by value, not with a C loop", s,
                             st->uf.name, cd_dtype_name[st->uf.loop[i]]);
            }
            goto done;
        }
    }
    rc = 0;
done:
    Py_DECREF(u);
    Py_XDECREF(refs);
    Py_XDECREF(decl);
    return rc;
}

/* An int64 from a Python int (not bool) >= lo; 0 or -1 with an exception. */
static int int64_arg(PyObject *o, int64_t lo, const char *what, int64_t *out)
{
    long long v;
    if (!PyLong_Check(o) && !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: %s must be integers, got %R", what, o);
        return -1;
    }
    v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: %s must be >= %lld, got %lld", what,
                     (long long)lo, v);
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/* Append the ints of sequence `seq` (n of them, or any number if n < 0) to
 * trail[*at...]; returns the count or -1. */
static Py_ssize_t ints_arg(PyObject *seq, Py_ssize_t n, const char *what, int64_t *trail,
                           int32_t *at)
{
    PyObject *f = PySequence_Fast(seq, "fused_kernel: views and store take tuples of ints");
    Py_ssize_t k;
    if (f == NULL)
        return -1;
    k = PySequence_Fast_GET_SIZE(f);
    if ((n >= 0 && k != n) || k > CD_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: %s has %zd entries, expected %zd", what, k,
                     n >= 0 ? n : (Py_ssize_t)CD_MAXDIMS);
        Py_DECREF(f);
        return -1;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        if (int64_arg(PySequence_Fast_GET_ITEM(f, i), 0, what, &trail[*at]) < 0) {
            Py_DECREF(f);
            return -1;
        }
        (*at)++;
    }
    Py_DECREF(f);
    return k;
}

/* The views / store / span arguments into trail[] and p's header. */
static int sinks_arg(cd_fused_params *p, PyObject *views, PyObject *store, PyObject *span,
                     int64_t *trail)
{
    int32_t at = 0;
    p->span_lo = 0;
    p->span_hi = -1;
    if (views != NULL && views != Py_None) {
        PyObject *f = PySequence_Fast(views, "fused_kernel: views must be a sequence");
        if (f == NULL)
            return -1;
        if (PySequence_Fast_GET_SIZE(f) != p->nin) {
            PyErr_Format(PyExc_ValueError, "fused_kernel: views must have one entry per input "
                         "(%d), got %zd", p->nin, PySequence_Fast_GET_SIZE(f));
            Py_DECREF(f);
            return -1;
        }
        for (int i = 0; i < p->nin; i++) {
            PyObject *v = PySequence_Fast_GET_ITEM(f, i), *a, *b;
            int32_t head = at;
            Py_ssize_t nd;
            if (v == Py_None)
                continue;
            if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != 2) {
                PyErr_Format(PyExc_TypeError, "fused_kernel: view %d must be None or "
                             "(start, shape), got %R", i, v);
                Py_DECREF(f);
                return -1;
            }
            a = PyTuple_GET_ITEM(v, 0);
            b = PyTuple_GET_ITEM(v, 1);
            trail[at++] = i;
            at++;   /* ndim, below */
            nd = ints_arg(a, -1, "a view's start", trail, &at);
            if (nd < 0 || ints_arg(b, nd, "a view's shape", trail, &at) < 0) {
                Py_DECREF(f);
                return -1;
            }
            trail[head + 1] = nd;
        }
        Py_DECREF(f);
    }
    if (store != NULL && store != Py_None) {
        int32_t head = at;
        Py_ssize_t nd;
        p->flags |= CD_FUSED_STORE;
        trail[at++] = -1;
        at++;
        nd = ints_arg(store, -1, "store", trail, &at);
        if (nd < 0)
            return -1;
        trail[head + 1] = nd;
    }
    if (span != NULL && span != Py_None) {
        if (!(p->flags & CD_FUSED_STORE)) {
            PyErr_SetString(PyExc_ValueError, "fused_kernel: span needs store");
            return -1;
        }
        if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 2 ||
            int64_arg(PyTuple_GET_ITEM(span, 0), 0, "span", &p->span_lo) < 0 ||
            int64_arg(PyTuple_GET_ITEM(span, 1), -1, "span", &p->span_hi) < 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "fused_kernel: span must be (lo, hi), got %R",
                             span);
            return -1;
        }
    }
    p->ntrail = at;
    return 0;
}

static const char *const red_names[] = {"", "sum", "mean", "min", "max"};

/* A register reference ("in", i) / ("step", j) -> register number; -1 + error. */
static int reg_arg(const cd_fused_params *p, PyObject *ref, const char *what)
{
    cd_fused_ref r;
    PyObject *cval;
    if (ref_arg(ref, p->nsteps, p->nin, &r, &cval) < 0)
        return -1;
    if (r.kind == CD_FR_CONST) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: the %s of a reduction must be an input "
                     "or a step, got %R", what, ref);
        return -1;
    }
    return r.kind == CD_FR_IN ? r.index : p->nin + r.index;
}

static int32_t reg_dt(const cd_fused_params *p, int r)
{
    return r < p->nin ? p->in_dtype[r] : p->step[r - p->nin].uf.loop[p->step[r - p->nin].uf.nin];
}

/* reduce=(kind, value_ref, mask_ref or None, out_dtype or None) into p->red. */
static int reduce_arg(cd_fused_params *p, PyObject *spec)
{
    cd_fused_red *rd = &p->red;
    const char *kind;
    PyObject *ufn = NULL, *dts = NULL, *d = NULL;
    int rc = -1;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 4 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: reduce must be (kind, value, mask, "
                     "dtype), got %R", spec);
        return -1;
    }
    kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (kind == NULL)
        return -1;
    memset(rd, 0, sizeof(*rd));
    for (int k = CD_RED_SUM; k <= CD_RED_MAX; k++)
        if (strcmp(kind, red_names[k]) == 0)
            rd->kind = k;
    if (rd->kind == CD_RED_NONE) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: unknown reduction %R (sum, mean, min, "
                     "max)", PyTuple_GET_ITEM(spec, 0));
        return -1;
    }
    rd->value = reg_arg(p, PyTuple_GET_ITEM(spec, 1), "value");
    if (rd->value < 0)
        return -1;
    rd->mask = -1;
    if (PyTuple_GET_ITEM(spec, 2) != Py_None) {
        rd->mask = reg_arg(p, PyTuple_GET_ITEM(spec, 2), "mask");
        if (rd->mask < 0)
            return -1;
        if (reg_dt(p, rd->mask) != CD_BOOL) {
            PyErr_Format(PyExc_TypeError, "fused_kernel: a reduction's mask must be boolean, "
                         "got %s", cd_dtype_name[reg_dt(p, rd->mask)]);
            return -1;
        }
    }
    if (PyTuple_GET_ITEM(spec, 3) == Py_None)
        rd->out_dt = reg_dt(p, rd->value);
    else if (dtype_arg(PyTuple_GET_ITEM(spec, 3), &rd->out_dt) < 0)
        return -1;
    switch (rd->kind) {
    case CD_RED_SUM:
    case CD_RED_MEAN:
        switch (rd->out_dt) {
        case CD_FLOAT32: case CD_FLOAT64: rd->dt = CD_FLOAT64; break;
        case CD_COMPLEX64: case CD_COMPLEX128: rd->dt = CD_COMPLEX128; break;
        case CD_INT64: case CD_UINT64: rd->dt = rd->out_dt; break;
        default:
            PyErr_Format(PyExc_TypeError, "fused_kernel: a %s accumulates in int64, uint64, "
                         "float32/64 or complex64/128, not %s", kind, cd_dtype_name[rd->out_dt]);
            return -1;
        }
        if (rd->kind == CD_RED_MEAN && rd->dt != rd->out_dt) {
            PyErr_Format(PyExc_TypeError, "fused_kernel: a mean's partial is float64 or "
                         "complex128, not %s", cd_dtype_name[rd->out_dt]);
            return -1;
        }
        ufn = PyObject_GetAttrString(np_mod, "add");
        break;
    default:
        rd->dt = rd->out_dt;
        if (rd->out_dt != reg_dt(p, rd->value)) {
            PyErr_Format(PyExc_TypeError, "fused_kernel: a %s keeps its value's dtype (%s), "
                         "not %s", kind, cd_dtype_name[reg_dt(p, rd->value)],
                         cd_dtype_name[rd->out_dt]);
            return -1;
        }
        ufn = PyObject_GetAttrString(np_mod, rd->kind == CD_RED_MIN ? "minimum" : "maximum");
        break;
    }
    if (ufn == NULL)
        return -1;
    d = descr_of(rd->dt);
    dts = d == NULL ? NULL : PyTuple_Pack(2, d, d);
    if (dts == NULL)
        goto done;
    if (cd_ufunc_resolve(ufn, dts, &rd->uf) < 0)
        goto done;
    if (rd->uf.loop[0] != rd->dt || rd->uf.loop[1] != rd->dt || rd->uf.loop[2] != rd->dt) {
        PyErr_Format(PyExc_TypeError, "fused_kernel: no %s loop for %s", rd->uf.name,
                     cd_dtype_name[rd->dt]);
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(ufn);
    Py_XDECREF(dts);
    Py_XDECREF(d);
    return rc;
}

/* A "fused" Kernel whose params are p's header and steps followed by its
 * ntrail words from trail; NULL with an exception. */
static PyObject *new_fused_kernel(const cd_fused_params *p, const int64_t *trail)
{
    size_t head = CD_FUSED_PARAMS_SIZE(p->nsteps, 0);
    PyObject *pbytes;
    cd_KernelObject *k;
    pbytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(head + (size_t)p->ntrail * sizeof(int64_t)));
    if (pbytes == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(pbytes), p, head);
    if (p->ntrail > 0)
        memcpy(PyBytes_AS_STRING(pbytes) + head, trail, (size_t)p->ntrail * sizeof(int64_t));
    k = PyObject_New(cd_KernelObject, &cd_KernelType);
    if (k == NULL) {
        Py_DECREF(pbytes);
        return NULL;
    }
    k->desc = &cd_fused_desc;
    k->params = pbytes;
    return (PyObject *)k;
}

static PyObject *py_fused_kernel(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"inputs_dtypes", "steps", "views", "store", "span", "reduce", NULL};
    PyObject *dts, *steps, *views = NULL, *store = NULL, *span = NULL, *reduce = NULL;
    PyObject *dseq = NULL, *sseq = NULL, *res = NULL;
    cd_fused_params *p = NULL;
    int64_t *trail = NULL;
    Py_ssize_t nin, nsteps;
    CD_UNUSED(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OOOO:fused_kernel", kwlist, &dts, &steps,
                                     &views, &store, &span, &reduce))
        return NULL;
    dseq = PySequence_Fast(dts, "fused_kernel: inputs_dtypes must be a sequence");
    if (dseq == NULL)
        return NULL;
    sseq = PySequence_Fast(steps, "fused_kernel: steps must be a sequence");
    if (sseq == NULL)
        goto done;
    nin = PySequence_Fast_GET_SIZE(dseq);
    nsteps = PySequence_Fast_GET_SIZE(sseq);
    if (nin > CD_FUSED_MAXIN) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: at most %d inputs, got %zd", CD_FUSED_MAXIN, nin);
        goto done;
    }
    if (reduce == Py_None)
        reduce = NULL;
    if (nsteps < (reduce != NULL ? 0 : 1) || nsteps > CD_FUSED_MAXSTEPS) {
        PyErr_Format(PyExc_ValueError, "fused_kernel: %d to %d steps, got %zd",
                     reduce != NULL ? 0 : 1, CD_FUSED_MAXSTEPS, nsteps);
        goto done;
    }
    p = PyMem_Calloc(1, CD_FUSED_PARAMS_SIZE(nsteps, 0));
    trail = PyMem_Calloc(CD_FUSED_MAXIN + 1, (2 + 2 * CD_MAXDIMS) * sizeof(int64_t));
    if (p == NULL || trail == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    p->magic = CD_FUSED_MAGIC;
    p->nin = (int32_t)nin;
    p->nsteps = (int32_t)nsteps;
    for (Py_ssize_t i = 0; i < nin; i++)
        if (dtype_arg(PySequence_Fast_GET_ITEM(dseq, i), &p->in_dtype[i]) < 0)
            goto done;
    for (Py_ssize_t s = 0; s < nsteps; s++)
        if (build_step(p, (int)s, PySequence_Fast_GET_ITEM(sseq, s)) < 0)
            goto done;
    if (reduce != NULL && reduce_arg(p, reduce) < 0)
        goto done;
    /* every step but the last feeds a later one (with a reduction: every
     * step feeds a later one, the value or the mask) */
    for (int s = 0; s < p->nsteps - (reduce == NULL); s++) {
        int used = 0;
        for (int t = s + 1; t < p->nsteps && !used; t++)
            for (int i = 0; i < p->step[t].uf.nin; i++)
                if (p->step[t].op[i].kind == CD_FR_STEP && p->step[t].op[i].index == s)
                    used = 1;
        if (reduce != NULL && (p->red.value == p->nin + s || p->red.mask == p->nin + s))
            used = 1;
        if (!used) {
            PyErr_Format(PyExc_ValueError,
                         reduce != NULL ? "fused_kernel: step %d is used neither by a later "
                                          "step nor by the reduction"
                                        : "fused_kernel: step %d is not used by a later step "
                                          "(the last step is the result)", s);
            goto done;
        }
    }
    if (reduce != NULL && store != NULL && store != Py_None) {
        PyErr_SetString(PyExc_ValueError, "fused_kernel: a reduction has no store");
        goto done;
    }
    if (sinks_arg(p, views, store, span, trail) < 0)
        goto done;
    res = new_fused_kernel(p, trail);
done:
    PyMem_Free(p);
    PyMem_Free(trail);
    Py_XDECREF(dseq);
    Py_XDECREF(sseq);
    return res;
}

static cd_fused_params *kernel_params(PyObject *kernel);

/* fused_rebind(kernel, views=None, store=None, span=None): the same program
 * with other views, store and span (no loop is resolved again). */
static PyObject *py_fused_rebind(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kernel", "views", "store", "span", NULL};
    PyObject *kern, *views = NULL, *store = NULL, *span = NULL, *res = NULL;
    cd_fused_params *p = NULL;
    int64_t *trail = NULL;
    CD_UNUSED(self);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OOO:fused_rebind", kwlist, &kern, &views,
                                     &store, &span))
        return NULL;
    if (!PyObject_TypeCheck(kern, &cd_KernelType) ||
        ((cd_KernelObject *)kern)->desc != &cd_fused_desc) {
        PyErr_Format(PyExc_TypeError, "fused_rebind: expected a fused Kernel, got %R", kern);
        return NULL;
    }
    p = kernel_params(kern);
    if (p == NULL)
        return NULL;
    p->flags = 0;
    p->ntrail = 0;
    trail = PyMem_Calloc(CD_FUSED_MAXIN + 1, (2 + 2 * CD_MAXDIMS) * sizeof(int64_t));
    if (trail == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (sinks_arg(p, views, store, span, trail) < 0)
        goto done;
    if (p->red.kind != CD_RED_NONE && (p->flags & CD_FUSED_STORE)) {
        PyErr_SetString(PyExc_ValueError, "fused_rebind: a reduction has no store");
        goto done;
    }
    res = new_fused_kernel(p, trail);
done:
    PyMem_Free(p);
    PyMem_Free(trail);
    return res;
}

/* An aligned copy of a fused Kernel's params (PyMem_Free it); NULL + error. */
static cd_fused_params *kernel_params(PyObject *kernel)
{
    cd_KernelObject *k = (cd_KernelObject *)kernel;
    Py_ssize_t n = PyBytes_GET_SIZE(k->params);
    cd_fused_params h, *p;
    if (n < (Py_ssize_t)sizeof(h))
        goto bad;
    memcpy(&h, PyBytes_AS_STRING(k->params), sizeof(h));
    if (h.magic != CD_FUSED_MAGIC || h.nsteps < (h.red.kind ? 0 : 1) ||
        h.nsteps > CD_FUSED_MAXSTEPS || h.nin < 0 ||
        h.nin > CD_FUSED_MAXIN || h.ntrail < 0 ||
        (size_t)n != CD_FUSED_PARAMS_SIZE(h.nsteps, h.ntrail))
        goto bad;
    p = PyMem_Malloc((size_t)n);
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(p, PyBytes_AS_STRING(k->params), (size_t)n);
    for (int s = 0; s < p->nsteps; s++) {
        p->step[s].uf.name[CD_UFUNC_NAMELEN - 1] = '\0';
        if (p->step[s].uf.nin < 1 || p->step[s].uf.nin > CD_UFUNC_MAXIN) {
            PyMem_Free(p);
            goto bad;
        }
    }
    return p;
bad:
    PyErr_SetString(PyExc_RuntimeError, "cdask: corrupt fused kernel parameters");
    return NULL;
}

/* (views, store, span) of fused params as fused_kernel takes them; a new
 * reference to a 3-tuple, or NULL with an exception. */
static PyObject *sinks_of(const cd_fused_params *p)
{
    const int64_t *t = (const int64_t *)(const void *)&p->step[p->nsteps];
    PyObject *views = NULL, *store = Py_NewRef(Py_None), *span, *res = NULL;
    int64_t at = 0;
    int any = 0;
    views = PyList_New(p->nin);
    if (views == NULL)
        goto done;
    for (int i = 0; i < p->nin; i++)
        PyList_SET_ITEM(views, i, Py_NewRef(Py_None));
    while (at + 2 <= p->ntrail) {
        int64_t which = t[at], nd = t[at + 1];
        int is_store = which == -1;
        PyObject *a, *b = NULL;
        if (nd < 0 || nd > CD_MAXDIMS || at + 2 + nd * (is_store ? 1 : 2) > p->ntrail ||
            (!is_store && (which < 0 || which >= p->nin)))
            break;
        a = PyTuple_New(nd);
        if (a == NULL)
            goto done;
        for (int64_t k = 0; k < nd; k++)
            PyTuple_SET_ITEM(a, k, PyLong_FromLongLong(t[at + 2 + k]));
        if (is_store) {
            Py_SETREF(store, a);
            at += 2 + nd;
            continue;
        }
        b = PyTuple_New(nd);
        if (b == NULL) {
            Py_DECREF(a);
            goto done;
        }
        for (int64_t k = 0; k < nd; k++)
            PyTuple_SET_ITEM(b, k, PyLong_FromLongLong(t[at + 2 + nd + k]));
        PyList_SetItem(views, which, PyTuple_Pack(2, a, b));
        Py_DECREF(a);
        Py_DECREF(b);
        if (PyErr_Occurred())
            goto done;
        any = 1;
        at += 2 + 2 * nd;
    }
    if (!any)
        Py_SETREF(views, Py_NewRef(Py_None));
    if ((p->flags & CD_FUSED_STORE) && (p->span_lo != 0 || p->span_hi >= 0))
        span = Py_BuildValue("(LL)", (long long)p->span_lo, (long long)p->span_hi);
    else
        span = Py_NewRef(Py_None);
    if (span == NULL)
        goto done;
    res = PyTuple_Pack(3, views, store, span);
    Py_DECREF(span);
done:
    Py_XDECREF(views);
    Py_XDECREF(store);
    return res;
}

static PyObject *fused_kernel_reduce(PyObject *kernel)
{
    cd_fused_params *p = kernel_params(kernel);
    PyObject *dts = NULL, *steps = NULL, *res = NULL;
    if (p == NULL)
        return NULL;
    dts = PyTuple_New(p->nin);
    steps = PyList_New(p->nsteps);
    if (dts == NULL || steps == NULL)
        goto done;
    for (int i = 0; i < p->nin; i++) {
        int32_t dt = p->in_dtype[i];
        PyObject *o = PyUnicode_FromString(dt >= 0 && dt < CD_NDTYPES ? cd_dtype_name[dt] : "?");
        if (o == NULL)
            goto done;
        PyTuple_SET_ITEM(dts, i, o);
    }
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        PyObject *refs = PyTuple_New(st->uf.nin), *u, *item;
        if (refs == NULL)
            goto done;
        for (int i = 0; i < st->uf.nin; i++) {
            const cd_fused_ref *r = &st->op[i];
            PyObject *o;
            if (r->kind == CD_FR_CONST) {
                PyObject *v = const_value(r, st->uf.declared[i]);
                o = v == NULL ? NULL : Py_BuildValue("(sN)", "const", v);
            } else {
                o = Py_BuildValue("(si)", r->kind == CD_FR_IN ? "in" : "step", (int)r->index);
            }
            if (o == NULL) {
                Py_DECREF(refs);
                goto done;
            }
            PyTuple_SET_ITEM(refs, i, o);
        }
        u = PyObject_GetAttrString(np_mod, st->uf.name);
        if (u == NULL) {
            Py_DECREF(refs);
            goto done;
        }
        item = PyTuple_Pack(2, u, refs);
        Py_DECREF(u);
        Py_DECREF(refs);
        if (item == NULL)
            goto done;
        PyList_SET_ITEM(steps, s, item);
    }
    {
        PyObject *sk = sinks_of(p);
        if (sk == NULL)
            goto done;
        PyObject *red = Py_NewRef(Py_None);
        if (p->red.kind != CD_RED_NONE) {
            const cd_fused_red *rd = &p->red;
            PyObject *mask = rd->mask < 0 ? Py_NewRef(Py_None)
                             : Py_BuildValue("(si)", rd->mask < p->nin ? "in" : "step",
                                             rd->mask < p->nin ? rd->mask : rd->mask - p->nin);
            Py_SETREF(red, mask == NULL ? NULL
                      : Py_BuildValue("(s(si)Ns)", red_names[rd->kind],
                                      rd->value < p->nin ? "in" : "step",
                                      rd->value < p->nin ? rd->value : rd->value - p->nin, mask,
                                      cd_dtype_name[rd->out_dt]));
        }
        if (red == NULL) {
            Py_DECREF(sk);
            goto done;
        }
        res = Py_BuildValue("O(OONNNN)", fused_fn, dts, steps, Py_NewRef(PyTuple_GET_ITEM(sk, 0)),
                            Py_NewRef(PyTuple_GET_ITEM(sk, 1)), Py_NewRef(PyTuple_GET_ITEM(sk, 2)),
                            red);
        Py_DECREF(sk);
    }
done:
    Py_XDECREF(dts);
    Py_XDECREF(steps);
    PyMem_Free(p);
    return res;
}

static int fused_is_store(PyObject *kernel)
{
    cd_KernelObject *k = (cd_KernelObject *)kernel;
    cd_fused_params h;
    if (PyBytes_GET_SIZE(k->params) < (Py_ssize_t)sizeof(h))
        return 0;
    memcpy(&h, PyBytes_AS_STRING(k->params), sizeof(h));
    return (h.flags & CD_FUSED_STORE) != 0;
}

static PyObject *fused_kernel_repr(PyObject *kernel)
{
    cd_fused_params *p = kernel_params(kernel);
    PyObject *exprs = NULL, *res = NULL;
    if (p == NULL)
        return NULL;
    exprs = PyList_New(p->nsteps);
    if (exprs == NULL)
        goto done;
    for (int s = 0; s < p->nsteps; s++) {
        const cd_fused_step *st = &p->step[s];
        PyObject *parts = PyList_New(st->uf.nin), *sep, *joined, *e;
        if (parts == NULL)
            goto done;
        for (int i = 0; i < st->uf.nin; i++) {
            const cd_fused_ref *r = &st->op[i];
            PyObject *o;
            if (r->kind == CD_FR_IN) {
                o = PyUnicode_FromFormat("in%d", (int)r->index);
            } else if (r->kind == CD_FR_STEP && r->index >= 0 && r->index < s) {
                o = Py_NewRef(PyList_GET_ITEM(exprs, r->index));
            } else {
                PyObject *v = const_value(r, st->uf.declared[i]);
                o = v == NULL ? NULL : PyObject_Str(v);
                Py_XDECREF(v);
            }
            if (o == NULL) {
                Py_DECREF(parts);
                goto done;
            }
            PyList_SET_ITEM(parts, i, o);
        }
        sep = PyUnicode_FromString(", ");
        joined = sep == NULL ? NULL : PyUnicode_Join(sep, parts);
        Py_XDECREF(sep);
        Py_DECREF(parts);
        if (joined == NULL)
            goto done;
        e = PyUnicode_FromFormat("%s(%U)", st->uf.name, joined);
        Py_DECREF(joined);
        if (e == NULL)
            goto done;
        PyList_SET_ITEM(exprs, s, e);
    }
    {
        /* views and store, when any: "; in0 = in0[0:10, 5:15]; into out[10:, 0:]" */
        PyObject *sk = sinks_of(p), *extra = NULL;
        if (sk == NULL)
            goto done;
        extra = PyUnicode_FromString("");
        if (PyTuple_GET_ITEM(sk, 0) != Py_None) {
            PyObject *vl = PyTuple_GET_ITEM(sk, 0);
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(vl) && extra != NULL; i++) {
                PyObject *v = PyList_GET_ITEM(vl, i), *parts;
                if (v == Py_None)
                    continue;
                parts = PyUnicode_FromFormat("; in%zd = in%zd[", i, i);
                for (Py_ssize_t a = 0; parts != NULL && a < PyTuple_GET_SIZE(PyTuple_GET_ITEM(v, 0)); a++) {
                    long long st = PyLong_AsLongLong(PyTuple_GET_ITEM(PyTuple_GET_ITEM(v, 0), a));
                    long long sh = PyLong_AsLongLong(PyTuple_GET_ITEM(PyTuple_GET_ITEM(v, 1), a));
                    Py_SETREF(parts, PyUnicode_FromFormat("%U%s%lld:%lld", parts, a ? ", " : "",
                                                          st, st + sh));
                }
                if (parts != NULL)
                    Py_SETREF(parts, PyUnicode_FromFormat("%U]", parts));
                Py_SETREF(extra, parts == NULL ? NULL : PyUnicode_Concat(extra, parts));
                Py_XDECREF(parts);
            }
        }
        if (extra != NULL && PyTuple_GET_ITEM(sk, 1) != Py_None) {
            PyObject *st = PyTuple_GET_ITEM(sk, 1), *parts = PyUnicode_FromString("; into out[");
            for (Py_ssize_t a = 0; parts != NULL && a < PyTuple_GET_SIZE(st); a++)
                Py_SETREF(parts, PyUnicode_FromFormat("%U%s%S:", parts, a ? ", " : "",
                                                      PyTuple_GET_ITEM(st, a)));
            if (parts != NULL)
                Py_SETREF(parts, PyUnicode_FromFormat("%U]", parts));
            if (parts != NULL && PyTuple_GET_ITEM(sk, 2) != Py_None)
                Py_SETREF(parts, PyUnicode_FromFormat("%U, elements %S", parts,
                                                      PyTuple_GET_ITEM(sk, 2)));
            Py_SETREF(extra, parts == NULL ? NULL : PyUnicode_Concat(extra, parts));
            Py_XDECREF(parts);
        }
        Py_DECREF(sk);
        if (extra == NULL)
            goto done;
        if (p->red.kind != CD_RED_NONE) {
            const cd_fused_red *rd = &p->red;
            PyObject *v = rd->value < p->nin ? PyUnicode_FromFormat("in%d", rd->value)
                                             : Py_NewRef(PyList_GET_ITEM(exprs, rd->value - p->nin));
            PyObject *m = rd->mask < 0 ? PyUnicode_FromString("")
                          : rd->mask < p->nin ? PyUnicode_FromFormat("[in%d]", rd->mask)
                          : PyUnicode_FromFormat("[%U]", PyList_GET_ITEM(exprs, rd->mask - p->nin));
            if (v != NULL && m != NULL)
                res = PyUnicode_FromFormat("<cdask fused kernel %s(%U%U)%U>", red_names[rd->kind],
                                           v, m, extra);
            Py_XDECREF(v);
            Py_XDECREF(m);
        } else {
            res = PyUnicode_FromFormat("<cdask fused kernel %U%U>",
                                       PyList_GET_ITEM(exprs, p->nsteps - 1), extra);
        }
        Py_DECREF(extra);
    }
done:
    Py_XDECREF(exprs);
    PyMem_Free(p);
    return res;
}

static PyMethodDef fused_methods[] = {
    {"fused_kernel", (PyCFunction)(void (*)(void))py_fused_kernel, METH_VARARGS | METH_KEYWORDS,
     "fused_kernel(inputs_dtypes, steps, views=None, store=None, span=None,\n"
     "             reduce=None) -> Kernel\n\n"
     "A C kernel evaluating a chain of NumPy ufuncs in one blocked pass over\n"
     "its input chunks.  steps: list of (ufunc, operand_refs), each ref being\n"
     "('in', i), ('const', scalar) or ('step', j) for an earlier step j; the\n"
     "last step's result is the output.  Results are NumPy's, step by step.\n"
     "views: per input None or (start, shape), a box of its chunk to read.\n"
     "store: start of the box of an extra last input (the destination) that\n"
     "receives the result; the kernel then returns the count written (0-d\n"
     "int64).  span: (lo, hi), the output elements (C order) a store writes.\n"
     "reduce: (kind, value_ref, mask_ref or None, dtype or None), kind 'sum',\n"
     "'mean', 'min' or 'max': the kernel returns the partial of that reduction\n"
     "of the value register where the mask register is true (see fused.h)."},
    {"fused_rebind", (PyCFunction)(void (*)(void))py_fused_rebind, METH_VARARGS | METH_KEYWORDS,
     "fused_rebind(kernel, views=None, store=None, span=None) -> Kernel\n\n"
     "The fused kernel's program with other views, store and span (see\n"
     "fused_kernel); its loops are not resolved again."},
    {NULL, NULL, 0, NULL},
};

/* Its params hold pointers: pickled by its program, shown by its steps. */
static const cd_kernel_py_ops fused_ops = {&cd_fused_desc, fused_kernel_reduce, fused_kernel_repr,
                                           fused_is_store};

int cd_fused_py_init(PyObject *module)
{
    if (PyModule_AddFunctions(module, fused_methods) < 0 || cd_kernel_py_register(&fused_ops) < 0)
        return -1;
    np_mod = PyImport_ImportModule("numpy");
    if (np_mod == NULL)
        return -1;
    np_where = PyObject_GetAttrString(np_mod, "where");
    if (np_where == NULL)
        return -1;
    fused_fn = PyObject_GetAttrString(module, "fused_kernel");
    if (fused_fn == NULL)
        return -1;
    return 0;
}
