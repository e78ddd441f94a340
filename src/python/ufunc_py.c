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
#include <numpy/ufuncobject.h>   /* its C-API table: this file's alone (cd_ufunc_py_init) */

#include "python/chunk_py.h"
#include "python/kernel_py.h"
#include "python/ufunc_py.h"
#include "kernels/registry.h"
#include "kernels/half.h"
#include "kernels/fused.h"
#include "kernels/scan.h"

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

/* ------------------------------------------------------------------ */
/* float16 loops through float32 (kernels/half.h)                     */

/* Values every candidate is compared on (each pair, for two inputs): signed
 * zeros, subnormals, the smallest normal, ties, the largest finite halves,
 * infinities, quiet and signalling NaNs with payloads of either sign. */
static const uint16_t probe_vals[] = {
    0x0000, 0x8000, 0x0001, 0x8001, 0x0200, 0x03ff, 0x0400, 0x13ff, 0x3555, 0x3800,
    0x3c00, 0x3c01, 0xbc00, 0x4000, 0x4200, 0x4248, 0xc500, 0x5640, 0x6400, 0x7bff,
    0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7e01, 0xfe3f, 0x7c01, 0xfd55,
};
#define NPROBE ((int)(sizeof(probe_vals) / sizeof(probe_vals[0])))
#define PROBE_FLAGS (FE_DIVBYZERO | FE_OVERFLOW | FE_INVALID)

/* The float32 loops that may do the float16 loop u->functions[j]'s work
 * (see half.h), into fn32/data32 [0 .. count): for + - * / cdask's own, the
 * first operand's NaN kept from two, then the second's; for the loops NumPy
 * builds around a float function, NumPy's float32 loop calling it. */
static int f32_twins(PyUFuncObject *u, int j, cd_ufunc_loop *fn32, void **data32)
{
    PyUFuncGenericFunction f = u->functions[j];
    void *data = u->data != NULL ? u->data[j] : NULL;
    static const char *const arith[] = {"add", "subtract", "multiply", "divide"};
    static const char ops[] = "+-*/";
    if (u->nin == 1 && f == PyUFunc_e_e_As_f_f) {
        fn32[0] = (cd_ufunc_loop)PyUFunc_f_f;
        data32[0] = data;
        return 1;
    }
    if (u->nin == 2 && f == PyUFunc_ee_e_As_ff_f) {
        fn32[0] = (cd_ufunc_loop)PyUFunc_ff_f;
        data32[0] = data;
        return 1;
    }
    for (int a = 0; a < 4 && u->nin == 2; a++) {
        if (strcmp(u->name, arith[a]) == 0 && cd_half_f32_arith(ops[a], 0) != NULL) {
            fn32[0] = cd_half_f32_arith(ops[a], 0);
            fn32[1] = cd_half_f32_arith(ops[a], 1);
            data32[0] = data32[1] = NULL;
            return 2;
        }
    }
    return 0;
}

/* Loop p as its float32 twin gives the same bits and flags as NumPy's
 * float16 loop on every probe (in blocks long enough for the vector
 * conversions)?  The thread's floating-point flags are left as found. */
static int probe_same(const cd_ufunc_params *p)
{
    enum { N = NPROBE * NPROBE, G = 13 };   /* G: a vector group and a tail */
    uint16_t a[N], b[N], r1[N], r2[N], ga[G], gb[G], g1[G], g2[G];
    char *args[3];
    intptr_t steps[3] = {2, 2, 2}, dims[1];
    fexcept_t saved;
    int n = p->nin == 1 ? NPROBE : N, same = 1;
    for (int i = 0; i < N; i++) {
        a[i] = probe_vals[i % NPROBE];
        b[i] = probe_vals[i / NPROBE];
    }
    fegetexceptflag(&saved, FE_ALL_EXCEPT);
    args[0] = (char *)a;
    args[1] = p->nin == 1 ? (char *)r1 : (char *)b;
    args[p->nin] = (char *)r1;
    dims[0] = n;
    p->fn(args, dims, steps, p->data);
    args[p->nin] = (char *)r2;
    cd_half_via_f32(p, args, dims, steps);
    same = memcmp(r1, r2, (size_t)n * 2) == 0;
    for (int i = 0; i < n && same; i++) {   /* flags, value by value */
        int f1, f2;
        for (int k = 0; k < G; k++) {
            ga[k] = a[i];
            gb[k] = b[i];
        }
        args[0] = (char *)ga;
        args[1] = p->nin == 1 ? (char *)g1 : (char *)gb;
        args[p->nin] = (char *)g1;
        dims[0] = G;
        feclearexcept(FE_ALL_EXCEPT);
        p->fn(args, dims, steps, p->data);
        f1 = fetestexcept(PROBE_FLAGS);
        args[p->nin] = (char *)g2;
        feclearexcept(FE_ALL_EXCEPT);
        cd_half_via_f32(p, args, dims, steps);
        f2 = fetestexcept(PROBE_FLAGS);
        same = f1 == f2 && memcmp(g1, g2, sizeof(g1)) == 0;
    }
    fesetexceptflag(&saved, FE_ALL_EXCEPT);
    return same;
}

/* Probed loops, by NumPy loop and data pointer (the GIL guards the table). */
static struct {
    cd_ufunc_loop fn;
    void *data;
    uint32_t flags;
    cd_ufunc_loop fn32;
    void *data32;
} via_cache[64];
static int via_n;

/* Mark p (resolved to u->functions[j]) CD_UF_HALF_VIA_F32 with the first
 * float32 twin that reproduces it on the probes; else leave it as it is. */
static void half_via_f32(PyUFuncObject *u, int j, cd_ufunc_params *p)
{
    cd_ufunc_loop fn32[2];
    void *data32[2];
    int n;
    for (int i = 0; i <= p->nin; i++)
        if (p->loop[i] != CD_FLOAT16)
            return;
    if (p->nin > 2 || !cd_half_hw())
        return;
    for (int c = 0; c < via_n; c++) {
        if (via_cache[c].fn == p->fn && via_cache[c].data == p->data) {
            p->flags |= via_cache[c].flags;
            p->fn32 = via_cache[c].fn32;
            p->data32 = via_cache[c].data32;
            return;
        }
    }
    n = f32_twins(u, j, fn32, data32);
    for (int t = 0; t < n; t++) {
        p->flags |= CD_UF_HALF_VIA_F32;
        p->fn32 = fn32[t];
        p->data32 = data32[t];
        if (probe_same(p))
            break;
        p->flags &= ~(uint32_t)CD_UF_HALF_VIA_F32;
        p->fn32 = NULL;
        p->data32 = NULL;
    }
    if (via_n < (int)(sizeof(via_cache) / sizeof(via_cache[0]))) {
        via_cache[via_n].fn = p->fn;
        via_cache[via_n].data = p->data;
        via_cache[via_n].flags = p->flags & CD_UF_HALF_VIA_F32;
        via_cache[via_n].fn32 = p->fn32;
        via_cache[via_n].data32 = p->data32;
        via_n++;
    }
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
    half_via_f32(uf, match, &p);

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

/* scan_minmax(is_max, src, out, carry): out (2-d, rows contiguous, src's
 * shape and dtype) becomes the running maximum or minimum of each row of src
 * (kernels/scan.h: NumPy's accumulate bits), from carry (None, or one
 * element per row, contiguous) when given.  False, with nothing written,
 * for a dtype or layout it does not take.  Runs without the GIL. */
static PyObject *py_scan_minmax(PyObject *self, PyObject *args)
{
    int is_max, rc;
    PyObject *so, *oo, *co;
    PyArrayObject *src, *out, *carry = NULL;
    cd_dtype dt;
    npy_intp rows, n, isz;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "pOOO:scan_minmax", &is_max, &so, &oo, &co))
        return NULL;
    if (!PyArray_Check(so) || !PyArray_Check(oo) || (co != Py_None && !PyArray_Check(co))) {
        PyErr_SetString(PyExc_TypeError, "scan_minmax: src, out and carry must be ndarrays");
        return NULL;
    }
    src = (PyArrayObject *)so;
    out = (PyArrayObject *)oo;
    if (co != Py_None)
        carry = (PyArrayObject *)co;
    if (PyArray_NDIM(src) != 2 || PyArray_NDIM(out) != 2 ||
        !PyArray_EquivTypes(PyArray_DESCR(src), PyArray_DESCR(out)) ||
        PyArray_DIM(src, 0) != PyArray_DIM(out, 0) || PyArray_DIM(src, 1) != PyArray_DIM(out, 1))
        Py_RETURN_FALSE;
    if (cd_dtype_from_descr(PyArray_DESCR(src), &dt) < 0) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    rows = PyArray_DIM(src, 0);
    n = PyArray_DIM(src, 1);
    isz = PyArray_ITEMSIZE(src);
    if (!PyArray_ISNOTSWAPPED(src) || !PyArray_ISALIGNED(src) || !PyArray_ISALIGNED(out) ||
        !PyArray_ISWRITEABLE(out) || !PyArray_ISNOTSWAPPED(out) ||
        (n > 1 && (PyArray_STRIDE(src, 1) != isz || PyArray_STRIDE(out, 1) != isz)) ||
        PyArray_STRIDE(src, 0) % isz != 0 || PyArray_STRIDE(out, 0) % isz != 0)
        Py_RETURN_FALSE;
    if (carry != NULL &&
        (!PyArray_EquivTypes(PyArray_DESCR(carry), PyArray_DESCR(src)) ||
         PyArray_SIZE(carry) != rows || !PyArray_IS_C_CONTIGUOUS(carry) ||
         !PyArray_ISALIGNED(carry) || !PyArray_ISNOTSWAPPED(carry)))
        Py_RETURN_FALSE;
    if (rows > 0 && n > 0 && (dt == CD_FLOAT16 || dt == CD_BOOL || dt == CD_COMPLEX64 ||
                              dt == CD_COMPLEX128))
        Py_RETURN_FALSE;
    Py_BEGIN_ALLOW_THREADS
    rc = rows == 0 || n == 0 ? 0 :
        cd_scan_minmax(is_max, dt, PyArray_DATA(src), PyArray_STRIDE(src, 0) / isz,
                       PyArray_DATA(out), PyArray_STRIDE(out, 0) / isz, rows, n,
                       carry != NULL ? PyArray_DATA(carry) : NULL);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(rc == 0);
}

/* _half_hw([on]): whether float16 runs on F16C (conversions, loops through
 * float32), switched first when `on` is given - for tests of both paths. */
static PyObject *py_half_hw(PyObject *self, PyObject *args)
{
    int on = -1;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "|p:_half_hw", &on))
        return NULL;
    if (on >= 0)
        cd_half_set_hw(on);
    return PyBool_FromLong(cd_half_hw());
}

/* _half_tables([on]): (whether float16 chains run as tables, the tables
 * built so far, the most kept), switched first when `on` is given - for
 * tests. */
static PyObject *py_half_tables(PyObject *self, PyObject *args)
{
    int on = -1, n = 0, most = 0, now;
    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "|p:_half_tables", &on))
        return NULL;
    if (on >= 0)
        cd_fused_set_tables(on);
    now = cd_fused_tables(&n, &most);
    return Py_BuildValue("(Nii)", PyBool_FromLong(now), n, most);
}

/* _half_route(ufunc): how the ufunc's float16 loop runs - "float32" (a
 * float32 loop between conversions), "float32, NaN of the second" (the
 * same, where NumPy's float16 loop keeps the second of two NaNs) or "numpy"
 * (NumPy's own float16 loop). */
static PyObject *py_half_route(PyObject *self, PyObject *u)
{
    cd_ufunc_params p;
    PyObject *dts;
    int rc, n;
    CD_UNUSED(self);
    if (!PyObject_IsInstance(u, np_ufunc_type)) {
        PyErr_SetString(PyExc_TypeError, "_half_route: expected a NumPy ufunc");
        return NULL;
    }
    n = ((PyUFuncObject *)u)->nin;
    dts = PyTuple_New(n);
    if (dts == NULL)
        return NULL;
    for (int i = 0; i < n; i++)
        PyTuple_SET_ITEM(dts, i, PyUnicode_FromString("float16"));
    rc = cd_ufunc_resolve(u, dts, &p);
    Py_DECREF(dts);
    if (rc < 0)
        return NULL;
    if (!(p.flags & CD_UF_HALF_VIA_F32))
        return PyUnicode_FromString("numpy");
    if (p.fn32 == cd_half_f32_arith('+', 1) || p.fn32 == cd_half_f32_arith('-', 1) ||
        p.fn32 == cd_half_f32_arith('*', 1) || p.fn32 == cd_half_f32_arith('/', 1))
        return PyUnicode_FromString("float32, NaN of the second");
    return PyUnicode_FromString("float32");
}

static PyMethodDef ufunc_methods[] = {
    {"_half_hw", py_half_hw, METH_VARARGS,
     "_half_hw([on]) -> bool: float16 on F16C in use (switched first if on is given; tests)."},
    {"scan_minmax", py_scan_minmax, METH_VARARGS,
     "scan_minmax(is_max, src, out, carry) -> bool: running max/min along the rows of a "
     "2-d array into out, from carry (None or one per row); False if not taken."},
    {"_half_tables", py_half_tables, METH_VARARGS,
     "_half_tables([on]) -> (bool, int, int): float16 chains as tables in use, tables "
     "built, the most kept (switched first if on is given; tests)."},
    {"_half_route", py_half_route, METH_O,
     "_half_route(ufunc) -> str: how its float16 loop runs (tests)."},
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
    if (_import_umath() < 0)
        return -1;
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
