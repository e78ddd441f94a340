/*
 * chunk_py.c - chunks seen from Python (interface: chunk_py.h).
 *
 * Design.
 *
 * Python -> chunk.  Plain Python numbers (bool, int, float, complex) take a
 * fast path that never calls NumPy: a 0-d owned chunk whose value lives in
 * the chunk header.  NumPy scalars likewise become 0-d owned chunks.  An
 * ndarray that is already aligned, native-endian and C-contiguous with a
 * supported dtype is viewed without a copy: the chunk's owner is a strong
 * reference to the array.  Any other array is copied once by NumPy into that
 * form (the copy becomes the owner), and any other value goes through
 * PyArray_FromAny first.  Whatever is refused raises TypeError naming the
 * value's role (`what`, e.g. "argument 2 of kernel 'add'"), its type and its
 * dtype.
 *
 * Chunk -> Python.  A chunk becomes an ndarray over the same memory whose
 * base is a tiny _ChunkOwner object holding one chunk reference; a chunk that
 * views an ndarray becomes a plain view of that array.  A 0-d result becomes
 * a NumPy scalar (what np.sum returns).
 *
 * Owner release.  When the last reference of a chunk viewing an array is
 * dropped on a worker thread (no GIL), chunk.c calls the hook
 * cd_py_release_later, which appends the owner to a queue protected by a
 * pthread mutex (a growable array; if growing fails, a fixed reserve; if
 * that is full too, it sleeps and retries until a drain makes room, so a
 * reference is never lost).  cd_py_drain_releases, called with the GIL,
 * swaps the queue out and drops the references outside the lock (a
 * destructor may queue more).  cd_chunk_decref_py, used when the GIL is
 * held, sets a thread-local flag so that the hook releases the owner at
 * once instead of queueing it.  The lock is taken around fork() so that a
 * child never inherits it locked.
 */
#include "python/chunk_py.h"
#include <numpy/arrayscalars.h>

#include <pthread.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(npy_bool) == 1, "npy_bool is one byte");
_Static_assert(sizeof(npy_float32) == 4 && sizeof(npy_float64) == 8, "float sizes");
_Static_assert(sizeof(npy_cfloat) == 8 && sizeof(npy_cdouble) == 16, "complex sizes");
_Static_assert(sizeof(npy_intp) == sizeof(int64_t), "cdask needs a 64-bit platform");
_Static_assert(NPY_INT64 != NPY_INT32 && NPY_UINT64 != NPY_UINT32, "distinct int typenums");

/* NumPy's type number of each cd_dtype: NPY_<ID> for the table's CD_<ID>. */
static const int typenums[CD_NDTYPES] = {
#define X(id, name, sfx, ctype, kind) [CD_##id] = NPY_##id,
    CD_DTYPE_TABLE(X)
#undef X
};

/* Native descriptors, one per cd_dtype (strong references, set at init). */
static PyArray_Descr *descrs[CD_NDTYPES];

int cd_dtype_typenum(cd_dtype dt)
{
    if ((int)dt < 0 || dt >= CD_NDTYPES)
        return -1;
    return typenums[dt];
}

/* Map a descriptor (byte order ignored); 0, or -1 without an exception. */
static int dtype_lookup(PyArray_Descr *d, cd_dtype *out)
{
    npy_intp sz;
    if (d == NULL || d->type_num < 0 || d->type_num >= NPY_NTYPES_LEGACY)
        return -1;
    if (PyDataType_HASFIELDS(d) || PyDataType_HASSUBARRAY(d))
        return -1;
    sz = PyDataType_ELSIZE(d);
    switch (d->kind) {
    case 'b':
        if (sz != 1)
            return -1;
        *out = CD_BOOL;
        return 0;
    case 'i':
    case 'u': {
        int base = d->kind == 'i' ? CD_INT8 : CD_UINT8;
        switch (sz) {
        case 1: *out = (cd_dtype)(base + 0); return 0;
        case 2: *out = (cd_dtype)(base + 1); return 0;
        case 4: *out = (cd_dtype)(base + 2); return 0;
        case 8: *out = (cd_dtype)(base + 3); return 0;
        default: return -1;
        }
    }
    case 'f':
        /* long double is refused (where long double is a plain double it
         * maps to float64, which has the same layout) */
        if (sz == 2) { *out = CD_FLOAT16; return 0; }
        if (sz == 4) { *out = CD_FLOAT32; return 0; }
        if (sz == 8) { *out = CD_FLOAT64; return 0; }
        return -1;
    case 'c':
        if (sz == 8) { *out = CD_COMPLEX64; return 0; }
        if (sz == 16 && d->type_num != NPY_CLONGDOUBLE) { *out = CD_COMPLEX128; return 0; }
        if (sz == 16 && NPY_SIZEOF_LONGDOUBLE == 8) { *out = CD_COMPLEX128; return 0; }
        return -1;
    default:
        return -1;
    }
}

int cd_dtype_from_descr(PyArray_Descr *d, cd_dtype *out)
{
    if (dtype_lookup(d, out) == 0)
        return 0;
    if (d != NULL)
        PyErr_Format(PyExc_TypeError,
                     "cdask C kernels do not support dtype %S; supported dtypes: %s",
                     (PyObject *)d, CD_DTYPE_NAMES_LIST);
    else
        PyErr_SetString(PyExc_TypeError, "cdask: missing dtype");
    return -1;
}

/* ------------------------------------------------------------------ */
/* Python -> chunk                                                     */

/* The role of the value in error messages. */
static const char *describe(char *buf, size_t cap, const char *what, const char *kernel, int argno)
{
    if (kernel != NULL) {
        snprintf(buf, cap, "argument %d of kernel '%s'", argno, kernel);
        return buf;
    }
    return what != NULL ? what : "a value passed to a C kernel";
}

static cd_chunk *new_scalar(cd_dtype dt)
{
    cd_err err = {0, ""};
    cd_chunk *c = cd_chunk_new(dt, 0, NULL, &err);
    if (c == NULL)
        cd_raise(&err);
    return c;
}

static void unsupported_dtype(PyObject *obj, PyArray_Descr *d, const char *what,
                              const char *kernel, int argno)
{
    char buf[256];
    PyErr_Format(PyExc_TypeError,
                 "%s: a value of type '%s' with dtype %S is not supported by cdask C kernels; "
                 "supported dtypes: %s",
                 describe(buf, sizeof(buf), what, kernel, argno), Py_TYPE(obj)->tp_name,
                 (PyObject *)d, CD_DTYPE_NAMES_LIST);
}

/* A chunk over an ndarray (copying it first if it is not in C kernel form). */
/* 1 if the array's memory is a shared mapping of a file: it, or an array it
 * views, is an np.memmap opened 'r', 'r+' or 'w+' (never 'c': private
 * copy-on-write pages must not be dropped).  0 if not, -1 with an error. */
static int shared_file_mapping(PyObject *a)
{
    static PyObject *memmap_type;
    for (int depth = 0; a != NULL && PyArray_Check(a) && depth < 64; depth++) {
        int r;
        if (memmap_type == NULL) {
            PyObject *np = PyImport_ImportModule("numpy");
            if (np == NULL)
                return -1;
            memmap_type = PyObject_GetAttrString(np, "memmap");
            Py_DECREF(np);
            if (memmap_type == NULL)
                return -1;
        }
        r = PyObject_IsInstance(a, memmap_type);
        if (r < 0)
            return -1;
        if (r) {
            PyObject *mode = PyObject_GetAttrString(a, "mode");
            const char *m;
            int ok;
            if (mode == NULL) {
                PyErr_Clear();
                return 0;
            }
            m = PyUnicode_Check(mode) ? PyUnicode_AsUTF8(mode) : NULL;
            ok = m != NULL && (strcmp(m, "r") == 0 || strcmp(m, "r+") == 0 ||
                               strcmp(m, "w+") == 0 || strcmp(m, "readonly") == 0 ||
                               strcmp(m, "readwrite") == 0 || strcmp(m, "write") == 0);
            if (m == NULL)
                PyErr_Clear();
            Py_DECREF(mode);
            return ok;
        }
        a = PyArray_BASE((PyArrayObject *)a);
    }
    return 0;
}

/*
 * Pages of file mappings leave the process once their reader is done.  An
 * ndarray viewing a shared file mapping (np.memmap opened 'r', 'r+' or 'w+')
 * that is about to die - a getter's block of a memmap, a slice of one, a
 * block written into a memmap target - has the pages it covers dropped
 * (MADV_DONTNEED): they stay in the page cache, dirty ones included, and a
 * later access maps them again from there, so no data is lost and nothing
 * needs to be coordinated with other threads reading the same pages; only
 * the process's resident set shrinks.  For a strided view the whole range
 * it spans goes, neighbours' pages included (they come back by a minor
 * fault).  Copy-on-write memmaps ('c') are never touched: their changes
 * live only in the process's pages.  Views of a chunk that the scheduler
 * spilled (chunk.c: cd_chunk_spill, a shared mapping of its file over the
 * same addresses) are file mappings too: a slice read back from a spilled
 * block gives its pages back when the slice dies, not when the block does.
 */
static int views_spilled_chunk(PyObject *a);

int cd_py_drop_mapped(PyObject *obj)
{
    static long page;
    PyArrayObject *a;
    char *lo, *hi;
    uintptr_t plo, phi;
    int m;
    if (!PyArray_Check(obj))
        return 0;
    a = (PyArrayObject *)obj;
    if (PyArray_NBYTES(a) < 4096 || PyArray_SIZE(a) == 0)
        return 0;
    m = shared_file_mapping(obj);
    if (m < 0)
        PyErr_Clear();
    if (m <= 0 && !views_spilled_chunk(obj))
        return 0;
    if (page == 0) {
        long ps = sysconf(_SC_PAGESIZE);
        page = ps > 0 ? ps : 4096;
    }
    lo = hi = PyArray_BYTES(a);
    for (int k = 0; k < PyArray_NDIM(a); k++) {
        npy_intp ext = (PyArray_DIM(a, k) - 1) * PyArray_STRIDE(a, k);
        if (ext < 0)
            lo += ext;
        else
            hi += ext;
    }
    hi += PyArray_ITEMSIZE(a);
    plo = (uintptr_t)lo & ~((uintptr_t)page - 1);
    phi = ((uintptr_t)hi + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    Py_BEGIN_ALLOW_THREADS
    (void)madvise((void *)plo, phi - plo, MADV_DONTNEED);
    Py_END_ALLOW_THREADS
    return 1;
}

static cd_chunk *from_array(PyObject *orig, PyArrayObject *arr, const char *what,
                            const char *kernel, int argno)
{
    PyArray_Descr *d = PyArray_DESCR(arr);
    PyArrayObject *own;
    cd_dtype dt;
    int ndim = PyArray_NDIM(arr);
    int64_t shape[CD_MAXDIMS];
    cd_chunk *c;
    cd_err err = {0, ""};
    char buf[256];

    if (dtype_lookup(d, &dt) < 0) {
        unsupported_dtype(orig, d, what, kernel, argno);
        return NULL;
    }
    if (ndim > CD_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "%s: arrays of %d dimensions are not supported "
                     "(at most %d)", describe(buf, sizeof(buf), what, kernel, argno),
                     ndim, CD_MAXDIMS);
        return NULL;
    }
    if (PyArray_IS_C_CONTIGUOUS(arr) && PyArray_ISALIGNED(arr) && PyArray_ISNOTSWAPPED(arr)) {
        Py_INCREF(arr);
        own = arr;
    } else {
        Py_INCREF(descrs[dt]);
        own = (PyArrayObject *)PyArray_FromArray(arr, descrs[dt],
                                                 NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
        if (own == NULL)
            return NULL;
        if (!(PyArray_IS_C_CONTIGUOUS(own) && PyArray_ISALIGNED(own) &&
              PyArray_ISNOTSWAPPED(own) && PyArray_NDIM(own) == ndim)) {
            Py_DECREF(own);
            PyErr_Format(PyExc_RuntimeError, "%s: NumPy did not make a C-contiguous copy",
                         describe(buf, sizeof(buf), what, kernel, argno));
            return NULL;
        }
    }
    for (int i = 0; i < ndim; i++)
        shape[i] = (int64_t)PyArray_DIM(own, i);
    c = cd_chunk_view(dt, ndim, shape, PyArray_DATA(own), own, &err);
    if (c == NULL) {
        Py_DECREF(own);
        cd_raise(&err);
        return NULL;
    }
    if (own == arr) {
        int m = shared_file_mapping((PyObject *)arr);
        if (m < 0) {
            cd_chunk_decref_py(c);
            return NULL;
        }
        c->mapped = m;
    }
    return c;
}

/* Turn a failure of PyArray_FromAny into a TypeError naming the value. */
static void conversion_error(PyObject *obj, const char *what, const char *kernel, int argno)
{
    PyObject *t, *v, *tb, *t2, *v2, *tb2;
    char buf[256];
    /* out of memory, KeyboardInterrupt...: keep them as they are */
    if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception))
        return;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL)
        PyException_SetTraceback(v, tb);
    PyErr_Format(PyExc_TypeError,
                 "%s: cannot convert a value of type '%s' to an array for a C kernel (%S)",
                 describe(buf, sizeof(buf), what, kernel, argno), Py_TYPE(obj)->tp_name,
                 v != NULL ? v : Py_None);
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 != NULL && v != NULL) {
        Py_INCREF(v);
        PyException_SetCause(v2, v);
        PyException_SetContext(v2, v);   /* steals the reference still held */
        v = NULL;
    }
    PyErr_Restore(t2, v2, tb2);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
}

static cd_chunk *from_pylong(PyObject *obj, const char *what, const char *kernel, int argno)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    cd_chunk *c;
    char buf[256];
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (overflow == 0) {
        c = new_scalar(CD_INT64);
        if (c != NULL)
            *(int64_t *)c->data = (int64_t)v;
        return c;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(obj);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            c = new_scalar(CD_UINT64);   /* as NumPy does for 2**63 <= v < 2**64 */
            if (c != NULL)
                *(uint64_t *)c->data = (uint64_t)u;
            return c;
        }
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
    }
    PyErr_Format(PyExc_TypeError,
                 "%s: the Python int is too large for a C kernel (it fits neither int64 "
                 "nor uint64)", describe(buf, sizeof(buf), what, kernel, argno));
    return NULL;
}

static cd_chunk *from_object(PyObject *obj, const char *what, const char *kernel, int argno)
{
    cd_chunk *c;

    /* hot paths first: exact Python numbers, then ndarrays */
    if (PyFloat_CheckExact(obj)) {
        c = new_scalar(CD_FLOAT64);
        if (c != NULL)
            *(double *)c->data = PyFloat_AS_DOUBLE(obj);
        return c;
    }
    if (PyLong_CheckExact(obj))
        return from_pylong(obj, what, kernel, argno);
    if (PyArray_Check(obj))
        return from_array(obj, (PyArrayObject *)obj, what, kernel, argno);
    if (PyBool_Check(obj)) {
        c = new_scalar(CD_BOOL);
        if (c != NULL)
            *(npy_bool *)c->data = obj == Py_True;
        return c;
    }
    if (Py_IS_TYPE(obj, &PyDoubleArrType_Type)) {   /* np.float64: what sum returns */
        c = new_scalar(CD_FLOAT64);
        if (c != NULL)
            *(double *)c->data = PyArrayScalar_VAL(obj, Double);
        return c;
    }
    if (PyArray_IsScalar(obj, Generic)) {
        cd_dtype dt;
        PyArray_Descr *d = PyArray_DescrFromScalar(obj);
        if (d == NULL)
            return NULL;
        if (dtype_lookup(d, &dt) < 0) {
            unsupported_dtype(obj, d, what, kernel, argno);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(d);
        c = new_scalar(dt);
        if (c != NULL)
            PyArray_ScalarAsCtype(obj, c->data);
        return c;
    }
    if (PyComplex_Check(obj)) {
        Py_complex z = PyComplex_AsCComplex(obj);
        if (z.real == -1.0 && PyErr_Occurred())
            return NULL;
        c = new_scalar(CD_COMPLEX128);
        if (c != NULL) {
            ((double *)c->data)[0] = z.real;
            ((double *)c->data)[1] = z.imag;
        }
        return c;
    }
    if (PyFloat_Check(obj)) {
        double v = PyFloat_AsDouble(obj);
        if (v == -1.0 && PyErr_Occurred())
            return NULL;
        c = new_scalar(CD_FLOAT64);
        if (c != NULL)
            *(double *)c->data = v;
        return c;
    }
    if (PyLong_Check(obj))
        return from_pylong(obj, what, kernel, argno);

    /* anything else NumPy can turn into an array */
    {
        PyObject *arr = PyArray_FromAny(obj, NULL, 0, 0, 0, NULL);
        if (arr == NULL) {
            conversion_error(obj, what, kernel, argno);
            return NULL;
        }
        if (!PyArray_Check(arr)) {   /* cannot happen; never read wrong memory */
            Py_DECREF(arr);
            PyErr_SetString(PyExc_RuntimeError, "cdask: PyArray_FromAny returned a non-array");
            return NULL;
        }
        c = from_array(obj, (PyArrayObject *)arr, what, kernel, argno);
        Py_DECREF(arr);
        return c;
    }
}

cd_chunk *cd_chunk_from_object(PyObject *obj, const char *what)
{
    return from_object(obj, what, NULL, 0);
}

cd_chunk *cd_chunk_from_object_arg(PyObject *obj, const char *kernel, int argno)
{
    return from_object(obj, NULL, kernel != NULL ? kernel : "?", argno);
}

/* ------------------------------------------------------------------ */
/* chunk -> Python                                                     */

typedef struct {
    PyObject_HEAD
    cd_chunk *chunk;
} ChunkOwner;

static PyTypeObject ChunkOwnerType;

/* Does ndarray a view (through its bases) a chunk spilled to a file?  The
 * flag is set only once the file mapping is in place, and never cleared. */
static int views_spilled_chunk(PyObject *a)
{
    for (int depth = 0; a != NULL && depth < 64; depth++) {
        if (Py_TYPE(a) == &ChunkOwnerType) {
            cd_chunk *c = ((ChunkOwner *)a)->chunk;
            return c != NULL && __atomic_load_n(&c->spilled, __ATOMIC_ACQUIRE);
        }
        if (!PyArray_Check(a))
            return 0;
        a = PyArray_BASE((PyArrayObject *)a);
    }
    return 0;
}

int cd_py_chunk_base(PyObject *a, int64_t *nbytes, int *spilled)
{
    for (int depth = 0; a != NULL && depth < 64; depth++) {
        if (Py_TYPE(a) == &ChunkOwnerType) {
            cd_chunk *c = ((ChunkOwner *)a)->chunk;
            if (c == NULL)
                return 0;
            *nbytes = c->nbytes;
            *spilled = __atomic_load_n(&c->spilled, __ATOMIC_ACQUIRE);
            return 1;
        }
        if (!PyArray_Check(a))
            return 0;
        a = PyArray_BASE((PyArrayObject *)a);
    }
    return 0;
}

static void owner_dealloc(PyObject *self)
{
    cd_chunk *c = ((ChunkOwner *)self)->chunk;
    ((ChunkOwner *)self)->chunk = NULL;
    cd_chunk_decref_py(c);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *owner_repr(PyObject *self)
{
    cd_chunk *c = ((ChunkOwner *)self)->chunk;
    if (c == NULL)
        return PyUnicode_FromString("<cdask chunk owner (empty)>");
    return PyUnicode_FromFormat("<cdask chunk owner: %s, %lld bytes>",
                                cd_dtype_name[c->dtype], (long long)c->nbytes);
}

static PyTypeObject ChunkOwnerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cdask._core._ChunkOwner",
    .tp_basicsize = sizeof(ChunkOwner),
    .tp_dealloc = owner_dealloc,
    .tp_repr = owner_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Keeps one cdask chunk alive; the base object of arrays over chunk memory.",
};

/* Is the chunk exactly the memory of its ndarray owner? */
static int is_owner_view(const cd_chunk *c)
{
    PyArrayObject *o;
    cd_dtype dt;
    if (c->owner == NULL || !PyArray_Check((PyObject *)c->owner))
        return 0;
    o = (PyArrayObject *)c->owner;
    if (PyArray_DATA(o) != c->data || PyArray_NDIM(o) != c->ndim ||
        !PyArray_IS_C_CONTIGUOUS(o) || !PyArray_ISNOTSWAPPED(o) ||
        dtype_lookup(PyArray_DESCR(o), &dt) < 0 || dt != c->dtype)
        return 0;
    for (int i = 0; i < c->ndim; i++)
        if ((int64_t)PyArray_DIM(o, i) != c->shape[i])
            return 0;
    return 1;
}

PyObject *cd_chunk_as_array(cd_chunk *c)
{
    npy_intp dims[CD_MAXDIMS];
    PyObject *arr;
    ChunkOwner *own;

    if (c == NULL) {
        PyErr_SetString(PyExc_SystemError, "cdask: cd_chunk_as_array(NULL)");
        return NULL;
    }
    if (is_owner_view(c))
        return PyArray_View((PyArrayObject *)c->owner, NULL, &PyArray_Type);
    for (int i = 0; i < c->ndim; i++)
        dims[i] = (npy_intp)c->shape[i];
    Py_INCREF(descrs[c->dtype]);
    arr = PyArray_NewFromDescr(&PyArray_Type, descrs[c->dtype], c->ndim, dims, NULL,
                               c->data, NPY_ARRAY_CARRAY, NULL);
    if (arr == NULL)
        return NULL;
    own = PyObject_New(ChunkOwner, &ChunkOwnerType);
    if (own == NULL) {
        Py_DECREF(arr);
        return NULL;
    }
    cd_chunk_incref(c);
    own->chunk = c;
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)own) < 0) {   /* steals own */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyObject *cd_chunk_as_result(cd_chunk *c)
{
    if (c != NULL && c->ndim == 0)
        return PyArray_Scalar(c->data, descrs[c->dtype], NULL);
    return cd_chunk_as_array(c);
}

/* ------------------------------------------------------------------ */
/* the release queue                                                   */

#define RQ_RESERVE 1024

/* Guards the queue below.  Taken by threads with or without the GIL, and
 * never held while taking the GIL (the drain swaps the items out under it
 * and DECREFs after unlocking), so it cannot deadlock with the GIL. */
static pthread_mutex_t rq_lock = PTHREAD_MUTEX_INITIALIZER;
static void **rq_items;           /* rq_lock: growable array */
static size_t rq_n, rq_cap;       /* rq_lock */
static void *rq_reserve[RQ_RESERVE];   /* rq_lock: used when growing fails */
static size_t rq_nreserve;        /* rq_lock */
static Py_ssize_t rq_pending;     /* atomic: queued and not yet taken */
static _Thread_local int release_now;   /* set by cd_chunk_decref_py (GIL held) */

void cd_py_release_later(void *obj)
{
    if (obj == NULL)
        return;
    if (release_now) {
        /* inside cd_chunk_decref_py: we hold the GIL.  Destructors run by
         * this DECREF start with the flag clear (they may release the GIL). */
        release_now = 0;
        Py_DECREF((PyObject *)obj);
        release_now = 1;
        return;
    }
    for (;;) {
        pthread_mutex_lock(&rq_lock);
        if (rq_n == rq_cap) {
            size_t ncap = rq_cap ? rq_cap * 2 : 256;
            void **p = realloc(rq_items, ncap * sizeof(void *));
            if (p != NULL) {
                rq_items = p;
                rq_cap = ncap;
            }
        }
        if (rq_n < rq_cap) {
            rq_items[rq_n++] = obj;
            break;
        }
        if (rq_nreserve < RQ_RESERVE) {
            rq_reserve[rq_nreserve++] = obj;
            break;
        }
        /* out of memory and reserve full: wait for a drain, never drop the ref */
        pthread_mutex_unlock(&rq_lock);
        {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    __atomic_add_fetch(&rq_pending, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rq_lock);
}

Py_ssize_t cd_py_pending_releases(void)
{
    return __atomic_load_n(&rq_pending, __ATOMIC_RELAXED);
}

int cd_py_is_mapped(PyObject *obj)
{
    int m = shared_file_mapping(obj);
    if (m < 0)
        PyErr_Clear();
    return m > 0;
}

/* Drop a released value; a dying view of a file mapping takes its pages along. */
static void release_one(PyObject *o)
{
    if (Py_REFCNT(o) == 1 && PyArray_Check(o))
        (void)cd_py_drop_mapped(o);
    Py_DECREF(o);
}

Py_ssize_t cd_py_drain_releases(void)
{
    Py_ssize_t total = 0;
    void *reserve[RQ_RESERVE];
    PyObject *et = NULL, *ev = NULL, *etb = NULL;

    if (__atomic_load_n(&rq_pending, __ATOMIC_ACQUIRE) == 0)
        return 0;
    /* destructors must not run with a caller's exception pending */
    PyErr_Fetch(&et, &ev, &etb);
    while (__atomic_load_n(&rq_pending, __ATOMIC_ACQUIRE) != 0) {
        void **items;
        size_t n, cap, nres;

        pthread_mutex_lock(&rq_lock);
        items = rq_items;
        n = rq_n;
        cap = rq_cap;
        nres = rq_nreserve;
        memcpy(reserve, rq_reserve, nres * sizeof(void *));
        rq_items = NULL;
        rq_n = rq_cap = 0;
        rq_nreserve = 0;
        __atomic_sub_fetch(&rq_pending, (Py_ssize_t)(n + nres), __ATOMIC_RELAXED);
        pthread_mutex_unlock(&rq_lock);

        /* destructors may queue more: release outside the lock */
        for (size_t i = 0; i < n; i++)
            release_one((PyObject *)items[i]);
        for (size_t i = 0; i < nres; i++)
            release_one((PyObject *)reserve[i]);
        total += (Py_ssize_t)(n + nres);

        /* give the buffer back for reuse unless a new one was made meanwhile */
        pthread_mutex_lock(&rq_lock);
        if (rq_items == NULL && items != NULL) {
            rq_items = items;
            rq_cap = cap;
            items = NULL;
        }
        pthread_mutex_unlock(&rq_lock);
        free(items);
    }
    PyErr_Restore(et, ev, etb);
    return total;
}

void cd_chunk_decref_py(cd_chunk *c)
{
    int prev;
    if (c == NULL)
        return;
    if (c->owner == NULL) {
        cd_chunk_decref(c);
        return;
    }
    prev = release_now;
    release_now = 1;
    cd_chunk_decref(c);
    release_now = prev;
}

static void rq_atfork_prepare(void) { pthread_mutex_lock(&rq_lock); }
static void rq_atfork_parent(void) { pthread_mutex_unlock(&rq_lock); }
static void rq_atfork_child(void) { pthread_mutex_unlock(&rq_lock); }

/* ------------------------------------------------------------------ */
/* module functions and init                                           */

static PyObject *py_drain_releases(PyObject *self, PyObject *noargs)
{
    CD_UNUSED(self);
    CD_UNUSED(noargs);
    return PyLong_FromSsize_t(cd_py_drain_releases());
}

/* glibc keeps freed blocks of up to 32 MiB in its heap once it has seen
 * one freed (its mmap threshold grows), so the process's resident memory
 * stays at its high-water mark after blocks are freed; a fixed threshold
 * maps every bigger block on its own and unmaps it on free. */
static PyObject *py_set_malloc_mmap_threshold(PyObject *self, PyObject *arg)
{
    long long n = PyLong_AsLongLong(arg);
    CD_UNUSED(self);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n <= 0 || n > (1LL << 25)) {
        PyErr_SetString(PyExc_ValueError, "malloc mmap threshold must be in (0, 32 MiB]");
        return NULL;
    }
#ifdef __GLIBC__
    return PyBool_FromLong(mallopt(M_MMAP_THRESHOLD, (int)n) == 1);
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *py_drop_pages(PyObject *self, PyObject *arr)
{
    CD_UNUSED(self);
    return PyBool_FromLong(cd_py_drop_mapped(arr));
}

static PyObject *py_chunk_live_bytes(PyObject *self, PyObject *noargs)
{
    CD_UNUSED(self);
    CD_UNUSED(noargs);
    return PyLong_FromLongLong((long long)cd_chunk_live_bytes());
}

static PyObject *py_pending_releases(PyObject *self, PyObject *noargs)
{
    CD_UNUSED(self);
    CD_UNUSED(noargs);
    return PyLong_FromSsize_t(cd_py_pending_releases());
}

/*
 * _test_release_queue(values, nthreads): test hook.  Converts each value to a
 * chunk, then drops every chunk on `nthreads` new pthreads with the GIL
 * released, so the owners go through the release queue.  Returns the number
 * of chunks dropped; the owners stay referenced until _drain_releases().
 */
typedef struct {
    cd_chunk **chunks;
    Py_ssize_t lo, hi;
} drop_job;

static void *drop_thread(void *arg)
{
    drop_job *j = arg;
    for (Py_ssize_t i = j->lo; i < j->hi; i++)
        cd_chunk_decref(j->chunks[i]);
    return NULL;
}

static PyObject *py_test_release_queue(PyObject *self, PyObject *args)
{
    PyObject *seq, *fast = NULL;
    int nthreads;
    Py_ssize_t n, made = 0;
    cd_chunk **chunks = NULL;
    pthread_t *tids = NULL;
    drop_job *jobs = NULL;
    int started = 0;
    PyObject *res = NULL;

    CD_UNUSED(self);
    if (!PyArg_ParseTuple(args, "Oi:_test_release_queue", &seq, &nthreads))
        return NULL;
    if (nthreads < 1 || nthreads > 64) {
        PyErr_SetString(PyExc_ValueError, "nthreads must be in 1..64");
        return NULL;
    }
    fast = PySequence_Fast(seq, "values must be a sequence");
    if (fast == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(fast);
    chunks = PyMem_Calloc((size_t)(n ? n : 1), sizeof(*chunks));
    tids = PyMem_Calloc((size_t)nthreads, sizeof(*tids));
    jobs = PyMem_Calloc((size_t)nthreads, sizeof(*jobs));
    if (chunks == NULL || tids == NULL || jobs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (; made < n; made++) {
        chunks[made] = cd_chunk_from_object(PySequence_Fast_GET_ITEM(fast, made),
                                            "a value of _test_release_queue");
        if (chunks[made] == NULL)
            goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int t = 0; t < nthreads; t++) {
        jobs[t].chunks = chunks;
        jobs[t].lo = n * t / nthreads;
        jobs[t].hi = n * (t + 1) / nthreads;
        if (pthread_create(&tids[t], NULL, drop_thread, &jobs[t]) != 0)
            break;
        started++;
    }
    /* whatever a thread could not be started for is dropped here */
    for (int t = started; t < nthreads; t++) {
        jobs[t].lo = n * t / nthreads;
        jobs[t].hi = n * (t + 1) / nthreads;
        jobs[t].chunks = chunks;
        drop_thread(&jobs[t]);
    }
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    Py_END_ALLOW_THREADS
    made = 0;
    res = PyLong_FromSsize_t(n);
fail:
    for (Py_ssize_t i = 0; i < made; i++)
        cd_chunk_decref_py(chunks[i]);
    PyMem_Free(chunks);
    PyMem_Free(tids);
    PyMem_Free(jobs);
    Py_DECREF(fast);
    return res;
}

static PyMethodDef chunk_methods[] = {
    {"_test_release_queue", py_test_release_queue, METH_VARARGS,
     "_test_release_queue(values, nthreads): test hook; drops chunks of the values on "
     "new threads without the GIL."},
    {"_drain_releases", py_drain_releases, METH_NOARGS,
     "Release the Python objects queued by worker threads; returns how many."},
    {"set_malloc_mmap_threshold", py_set_malloc_mmap_threshold, METH_O,
     "Fix glibc's mmap threshold (mallopt M_MMAP_THRESHOLD); True if it was set."},
    {"drop_pages", py_drop_pages, METH_O,
     "drop_pages(a): if a is an ndarray viewing a shared file mapping (np.memmap opened "
     "'r', 'r+' or 'w+'), drop the pages it spans from the process's resident memory "
     "(they stay in the page cache; written data is kept) and return True; else False."},
    {"_chunk_live_bytes", py_chunk_live_bytes, METH_NOARGS,
     "Bytes of chunk heap memory allocated by cdask and not yet freed."},
    {"_pending_releases", py_pending_releases, METH_NOARGS,
     "Number of Python objects waiting in the release queue."},
    {NULL, NULL, 0, NULL},
};

int cd_chunk_py_init(PyObject *module)
{
    static int atfork_done = 0;

    for (int dt = 0; dt < CD_NDTYPES; dt++) {
        cd_dtype back;
        if (descrs[dt] == NULL) {
            descrs[dt] = PyArray_DescrFromType(typenums[dt]);
            if (descrs[dt] == NULL)
                return -1;
        }
        if (PyDataType_ELSIZE(descrs[dt]) != cd_dtype_itemsize[dt] ||
            dtype_lookup(descrs[dt], &back) < 0 || back != (cd_dtype)dt ||
            !PyArray_ISNBO(descrs[dt]->byteorder)) {
            PyErr_Format(PyExc_ImportError,
                         "cdask: NumPy's dtype %S does not match cdask's %s",
                         (PyObject *)descrs[dt], cd_dtype_name[dt]);
            return -1;
        }
    }
    {
        /* cdask._core.DTYPES: NumPy's names of the supported dtypes, in the
         * order of the table (core/dtypes.h), for the Python side to read */
        PyObject *names = PyTuple_New(CD_NDTYPES);
        if (names == NULL)
            return -1;
        for (int dt = 0; dt < CD_NDTYPES; dt++) {
            PyObject *s = PyUnicode_FromString(cd_dtype_name[dt]);
            if (s == NULL) {
                Py_DECREF(names);
                return -1;
            }
            PyTuple_SET_ITEM(names, dt, s);
        }
        if (PyModule_AddObjectRef(module, "DTYPES", names) < 0) {
            Py_DECREF(names);
            return -1;
        }
        Py_DECREF(names);
    }
    if (PyType_Ready(&ChunkOwnerType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "_ChunkOwner", (PyObject *)&ChunkOwnerType) < 0)
        return -1;
    if (PyModule_AddFunctions(module, chunk_methods) < 0)
        return -1;
    if (!atfork_done) {
        if (pthread_atfork(rq_atfork_prepare, rq_atfork_parent, rq_atfork_child) != 0) {
            PyErr_SetString(PyExc_ImportError, "cdask: pthread_atfork failed");
            return -1;
        }
        atfork_done = 1;
    }
    __atomic_store_n(&cd_chunk_owner_release, cd_py_release_later, __ATOMIC_RELEASE);
    return 0;
}
