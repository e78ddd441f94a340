/*
 * graph_py.c - the Python type cdask._core.Graph (interface: graph_py.h),
 * the module function cdask._core.merge, and cd_graph_as_dict (declared in
 * plan_py.h).  GIL held throughout.
 *
 * Design.
 *
 *   Storage.  A Graph is a plain dict (key -> dask-format task) plus a
 *   cached analysis.  Everything a Mapping needs (lookup, len, iter, views,
 *   ==) is delegated to the dict, so those cost what a dict costs.  The
 *   scheduler compiles a Graph straight from its dict (cd_graph_as_dict hands
 *   it out borrowed), so passing a Graph to cdask.get copies nothing.
 *
 *   Mapping.  The type is a static C type registered with
 *   collections.abc.Mapping (Mapping.register at module init) rather than a
 *   Python class inheriting from both the C type and Mapping.  Registration
 *   makes isinstance(g, Mapping) true for Graph and every subclass, while
 *   cdask.Graph stays the C type itself: type(g) is cdask._core.Graph, the
 *   C glue creates Graphs without going through Python, no ABCMeta metaclass
 *   or Python-level mixin methods get in the way, and every Mapping method
 *   (keys/values/items/get/__contains__/__eq__) is implemented here in C on
 *   the dict, so nothing falls back to slow generic mixins.
 *
 *   Analysis.  dependencies/dependents/cull/toposort/order/find_cycle need
 *   the graph's edges.  They are computed on demand by the plan compiler in
 *   analysis mode (cd_pyplan_build with CD_PLAN_ANALYZE: node i is the i-th
 *   key of the dict, deps are unique, priorities are a topological order,
 *   a cycle is reported instead of raised).  The compiled plan is much
 *   bigger than the graph's structure (a 120-byte node, argument programs,
 *   literal lists...), so it is not kept: its structure is copied into a
 *   compact `ganal` (keys as a list, dependencies in CSR form, priorities)
 *   and the plan is freed at once.  Per task that is ~8 (key) + 8 (offset) +
 *   4 (priority) + 4 per dependency bytes, plus a key -> node hash index of
 *   int32 slots (load <= 1/2) built only when a method looks keys up
 *   (dependencies(key), cull).  Dependents are derived from the CSR when
 *   asked.  The analysis is dropped on every mutation.
 *
 *   Re-entrancy.  Hashing and comparing keys can run Python code, which may
 *   mutate the Graph (and drop its analysis) while a method walks it, or let
 *   another thread do so.  The compiler therefore works on a private copy of
 *   the dict (a fast clone, freed with the plan), and an analysis is
 *   reference counted: a method holds its own reference for as long as it
 *   uses it.  A version counter, bumped by every mutation, tells whether the
 *   Graph changed while its analysis was built; then the (consistent, but
 *   already stale) analysis serves the current call and is not cached.
 *
 *   GC.  The dict and the analysis' key list are the only Python references
 *   a Graph holds; tp_traverse visits both, tp_clear empties the dict (so
 *   the dict pointer is never NULL while the object lives).  Bulk work that
 *   allocates one container per task (compiling the analysis, the sets of
 *   dependencies()/dependents()) pauses the cyclic GC: otherwise the
 *   allocations trigger repeated full collections over the whole graph,
 *   which for 10^6 tasks doubles (compile) or quadruples (sets) the time.
 *   The GC is re-enabled only if it was enabled before.
 */
#include "python/graph_py.h"
#include "python/plan_py.h"

#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------- analysis */

typedef struct ganal {
    Py_ssize_t refs;      /* the Graph's cache + methods using it */
    Py_ssize_t n;         /* nodes == keys */
    int32_t cycle_node;   /* a node on a cycle, or -1 */
    PyObject *keys;       /* list: node -> key (strong) */
    int64_t *dep_off;     /* n + 1 offsets into deps */
    int32_t *deps;        /* unique dependencies of each node, CSR */
    int32_t *prio;        /* node -> priority 0..n-1; NULL with a cycle */
    int32_t *index;       /* key -> node hash index (-1 empty) or NULL until needed */
    size_t mask;          /* index slots - 1 */
} ganal;

typedef struct {
    PyObject_HEAD
    PyObject *dict;       /* key -> task (strong, never NULL while alive) */
    ganal *an;            /* cached analysis (one reference) or NULL */
    uint64_t version;     /* bumped by every mutation */
    PyObject *weakreflist;
} cd_GraphObject;

#define GRAPH(o) ((cd_GraphObject *)(o))

static PyObject *mapping_abc;   /* collections.abc.Mapping (strong, module lifetime) */

/* Pause the cyclic GC for bulk allocation; returns the previous state. */
static int gc_pause(void)
{
    return PyGC_Disable();
}

static void gc_resume(int was_enabled)
{
    if (was_enabled)
        PyGC_Enable();
}

static void an_release(ganal *an)
{
    if (an == NULL || --an->refs > 0)
        return;
    Py_XDECREF(an->keys);
    PyMem_Free(an->dep_off);
    PyMem_Free(an->deps);
    PyMem_Free(an->prio);
    PyMem_Free(an->index);
    PyMem_Free(an);
}

static inline PyObject *an_key(const ganal *an, Py_ssize_t i)
{
    return PyList_GET_ITEM(an->keys, i);   /* borrowed */
}

/* Bytes held by an analysis beyond the keys themselves. */
static Py_ssize_t an_nbytes(const ganal *an)
{
    Py_ssize_t b = (Py_ssize_t)sizeof(ganal);
    b += (Py_ssize_t)(sizeof(PyListObject) + 2 * sizeof(void *));   /* list head + GC head */
    b += an->n * (Py_ssize_t)sizeof(PyObject *);                    /* list items */
    b += (an->n + 1) * (Py_ssize_t)sizeof(int64_t);
    b += (Py_ssize_t)(an->dep_off[an->n] * (int64_t)sizeof(int32_t));
    if (an->prio != NULL)
        b += an->n * (Py_ssize_t)sizeof(int32_t);
    if (an->index != NULL)
        b += (Py_ssize_t)((an->mask + 1) * sizeof(int32_t));
    return b;
}

static void set_key_error(PyObject *key)
{
    PyObject *t = PyTuple_Pack(1, key);
    if (t != NULL) {
        PyErr_SetObject(PyExc_KeyError, t);
        Py_DECREF(t);
    }
}

static void set_changed_error(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "cdask: the Graph changed while it was being analysed");
}

/*
 * Copy the structure of an analysis-mode plan into a new ganal (one
 * reference), or NULL with an exception.  `expect_n` is the dict's size.
 */
static ganal *an_from_plan(const cd_pyplan *pp, Py_ssize_t expect_n)
{
    const cd_plan *p = pp->plan;
    Py_ssize_t n = p->n;
    int64_t ne = 0;
    uint8_t *seen = NULL;
    ganal *an;

    if (n != expect_n) {
        set_changed_error();
        return NULL;
    }
    an = PyMem_Calloc(1, sizeof(*an));
    if (an == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    an->refs = 1;
    an->n = n;
    an->cycle_node = pp->cycle_node;
    an->keys = PyList_New(n);
    if (an->keys == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = pp->keys[i];
        if (k == NULL) {
            PyErr_SetString(PyExc_SystemError, "cdask: analysis plan has a node without a key");
            goto fail;
        }
        Py_INCREF(k);
        PyList_SET_ITEM(an->keys, i, k);
        ne += p->nodes[i].ndeps;
    }
    an->dep_off = PyMem_Malloc((size_t)(n + 1) * sizeof(int64_t));
    an->deps = PyMem_Malloc((size_t)(ne > 0 ? ne : 1) * sizeof(int32_t));
    if (an->dep_off == NULL || an->deps == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    ne = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const cd_node *nd = &p->nodes[i];
        an->dep_off[i] = ne;
        if (nd->ndeps > 0)
            memcpy(an->deps + ne, cd_plan_node_deps(p, (int32_t)i), (size_t)nd->ndeps * sizeof(int32_t));
        ne += nd->ndeps;
    }
    an->dep_off[n] = ne;
    if (an->cycle_node < 0) {
        /* Priorities must be a permutation of 0..n-1 (toposort relies on it). */
        an->prio = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        seen = PyMem_Calloc((size_t)(n > 0 ? n : 1), 1);
        if (an->prio == NULL || seen == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            int32_t pr = p->nodes[i].priority;
            if (pr < 0 || pr >= n || seen[pr]) {
                PyErr_SetString(PyExc_SystemError, "cdask: analysis plan has bad priorities");
                goto fail;
            }
            seen[pr] = 1;
            an->prio[i] = pr;
        }
    } else if (an->cycle_node >= n) {
        PyErr_SetString(PyExc_SystemError, "cdask: analysis plan reports a bad cycle node");
        goto fail;
    }
    PyMem_Free(seen);
    return an;
fail:
    PyMem_Free(seen);
    an_release(an);
    return NULL;
}

/* Drop the cached analysis after (or around) a mutation. */
static void graph_changed(cd_GraphObject *g)
{
    ganal *an = g->an;
    g->version++;
    g->an = NULL;          /* before releasing: releasing may run Python code */
    an_release(an);
}

/*
 * The analysis of g: a new reference (release with an_release), or NULL
 * with an exception.  Built on first use and cached until a mutation.
 */
static ganal *graph_analysis(cd_GraphObject *g)
{
    uint64_t v;
    cd_pyplan *pp;
    ganal *an;
    PyObject *snap;
    int gc_was;

    if (g->an != NULL && g->an->n != PyDict_GET_SIZE(g->dict))
        graph_changed(g);   /* the dict was changed behind our back */
    if (g->an != NULL) {
        g->an->refs++;
        return g->an;
    }
    v = g->version;
    /* Compile a private snapshot: hashing keys runs Python code, which may
     * switch threads or mutate the Graph; the compiler holds borrowed
     * references into the dict it walks, so that dict must not change. */
    snap = PyDict_Copy(g->dict);
    if (snap == NULL)
        return NULL;
    gc_was = gc_pause();
    pp = cd_pyplan_build(snap, NULL, CD_PLAN_ANALYZE);
    if (pp == NULL) {
        gc_resume(gc_was);
        Py_DECREF(snap);
        return NULL;
    }
    an = an_from_plan(pp, PyDict_GET_SIZE(snap));
    cd_pyplan_free(pp);    /* may run Python code (DECREFs) */
    Py_DECREF(snap);
    gc_resume(gc_was);
    if (an == NULL)
        return NULL;
    if (g->version == v && g->an == NULL) {
        g->an = an;
        an->refs++;        /* the cache's reference */
    }
    return an;
}

/* Build the key -> node index of an analysis; 0 or -1 with an exception. */
static int an_build_index(ganal *an)
{
    size_t cap = 8, mask;
    int32_t *idx;
    while (cap < (size_t)an->n * 2)
        cap <<= 1;
    mask = cap - 1;
    idx = PyMem_Malloc(cap * sizeof(int32_t));
    if (idx == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(idx, 0xff, cap * sizeof(int32_t));
    for (Py_ssize_t i = 0; i < an->n; i++) {
        Py_hash_t h = PyObject_Hash(an_key(an, i));
        size_t j;
        if (h == -1) {
            PyMem_Free(idx);
            return -1;
        }
        /* keys of a dict are distinct: no comparisons needed to insert */
        j = (size_t)h & mask;
        while (idx[j] >= 0)
            j = (j + 1) & mask;
        idx[j] = (int32_t)i;
    }
    if (an->index == NULL) {   /* hashing may have let another thread build it */
        an->index = idx;
        an->mask = mask;
    } else {
        PyMem_Free(idx);
    }
    return 0;
}

/* Node of `key`: >= 0; -1 not a key of the graph; -2 error (e.g. unhashable). */
static Py_ssize_t an_find(ganal *an, PyObject *key)
{
    Py_hash_t h;
    size_t j;
    if (an->index == NULL && an_build_index(an) < 0)
        return -2;
    h = PyObject_Hash(key);
    if (h == -1)
        return -2;
    j = (size_t)h & an->mask;
    for (;;) {
        int32_t i = an->index[j];
        PyObject *k;
        Py_hash_t hk;
        if (i < 0)
            return -1;
        k = an_key(an, i);
        if (k == key)
            return i;
        /* like a dict: compare only keys of equal hash */
        hk = PyObject_Hash(k);
        if (hk == -1)
            return -2;
        if (hk == h) {
            int eq = PyObject_RichCompareBool(k, key, Py_EQ);
            if (eq < 0)
                return -2;
            if (eq)
                return i;
        }
        j = (j + 1) & an->mask;
    }
}

/* Set of the keys node i depends on (new reference). */
static PyObject *an_deps_set(const ganal *an, Py_ssize_t i)
{
    PyObject *s = PySet_New(NULL);
    if (s == NULL)
        return NULL;
    for (int64_t e = an->dep_off[i]; e < an->dep_off[i + 1]; e++) {
        if (PySet_Add(s, an_key(an, an->deps[e])) < 0) {
            Py_DECREF(s);
            return NULL;
        }
    }
    return s;
}

static void set_cycle_error(const ganal *an)
{
    PyErr_Format(PyExc_ValueError, "cdask: the task graph has a cycle: key %R depends on itself",
                 an_key(an, an->cycle_node));
}

/* --------------------------------------------------------- dict helpers */

/*
 * Update dict d from src: a Graph, a dict, anything with keys() (a
 * Mapping), or an iterable of (key, task) pairs.  0 or -1.
 */
static int dict_fill(PyObject *d, PyObject *src)
{
    PyObject *it;
    if (cd_Graph_Check(src))
        return PyDict_Update(d, GRAPH(src)->dict);
    if (PyDict_Check(src))
        return PyDict_Update(d, src);
    if (PyObject_HasAttrString(src, "keys"))
        return PyDict_Merge(d, src, 1);
    it = PyObject_GetIter(src);
    if (it == NULL) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "cdask.Graph: expected a mapping of keys to tasks, got %.200s",
                         Py_TYPE(src)->tp_name);
        }
        return -1;
    }
    Py_DECREF(it);
    return PyDict_MergeFromSeq2(d, src, 1);
}

/* A new dict holding the items of src (see dict_fill); new reference. */
static PyObject *dict_from(PyObject *src)
{
    PyObject *d;
    if (cd_Graph_Check(src))
        return PyDict_Copy(GRAPH(src)->dict);
    if (PyDict_Check(src))
        return PyDict_Copy(src);
    d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (dict_fill(d, src) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------ the type */

/* A Graph of `type` over dict d (a reference to d is stolen); new reference. */
static PyObject *graph_from_dict(PyTypeObject *type, PyObject *d)
{
    cd_GraphObject *g;
    if (d == NULL)
        return NULL;
    if (type != &cd_GraphType) {
        /* a subclass: let its __init__ run (it must accept a mapping) */
        PyObject *r = PyObject_CallOneArg((PyObject *)type, d);
        Py_DECREF(d);
        return r;
    }
    g = (cd_GraphObject *)type->tp_alloc(type, 0);
    if (g == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    g->dict = d;     /* stolen */
    g->an = NULL;
    g->version = 0;
    g->weakreflist = NULL;
    return (PyObject *)g;
}

static PyObject *graph_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    cd_GraphObject *g;
    CD_UNUSED(args);
    CD_UNUSED(kwargs);
    g = (cd_GraphObject *)type->tp_alloc(type, 0);
    if (g == NULL)
        return NULL;
    g->dict = PyDict_New();
    if (g->dict == NULL) {
        Py_DECREF(g);
        return NULL;
    }
    return (PyObject *)g;
}

static int graph_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"mapping", NULL};
    cd_GraphObject *g = GRAPH(self);
    PyObject *src = Py_None, *d, *old;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Graph", kwlist, &src))
        return -1;
    if (src == Py_None)
        d = PyDict_New();
    else
        d = dict_from(src);
    if (d == NULL)
        return -1;
    g->version++;
    old = g->dict;
    g->dict = d;
    graph_changed(g);
    Py_XDECREF(old);
    return 0;
}

static int graph_traverse(PyObject *self, visitproc visit, void *arg)
{
    cd_GraphObject *g = GRAPH(self);
    Py_VISIT(g->dict);
    if (g->an != NULL)
        Py_VISIT(g->an->keys);
    return 0;
}

static int graph_clear(PyObject *self)
{
    cd_GraphObject *g = GRAPH(self);
    graph_changed(g);
    if (g->dict != NULL)
        PyDict_Clear(g->dict);   /* breaks cycles; the pointer stays valid */
    return 0;
}

static void graph_dealloc(PyObject *self)
{
    cd_GraphObject *g = GRAPH(self);
    ganal *an = g->an;
    PyObject_GC_UnTrack(self);
    if (g->weakreflist != NULL)
        PyObject_ClearWeakRefs(self);
    g->an = NULL;
    an_release(an);
    Py_CLEAR(g->dict);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *graph_repr(PyObject *self)
{
    PyTypeObject *t = Py_TYPE(self);
    return PyUnicode_FromFormat("<%s with %zd tasks>",
                                t == &cd_GraphType ? "cdask.Graph" : t->tp_name,
                                PyDict_GET_SIZE(GRAPH(self)->dict));
}

/* ---- mapping protocol ---- */

static Py_ssize_t graph_length(PyObject *self)
{
    return PyDict_GET_SIZE(GRAPH(self)->dict);
}

static PyObject *graph_subscript(PyObject *self, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(GRAPH(self)->dict, key);   /* borrowed */
    if (v == NULL) {
        if (!PyErr_Occurred())
            set_key_error(key);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

static int graph_ass_subscript(PyObject *self, PyObject *key, PyObject *value)
{
    cd_GraphObject *g = GRAPH(self);
    int rc;
    /* bump first so an analysis built while the key is hashed/compared is
     * not cached; drop the cache after, so none survives the change */
    g->version++;
    if (value == NULL)
        rc = PyDict_DelItem(g->dict, key);
    else
        rc = PyDict_SetItem(g->dict, key, value);
    graph_changed(g);
    return rc;
}

static int graph_contains(PyObject *self, PyObject *key)
{
    return PyDict_Contains(GRAPH(self)->dict, key);
}

static PyObject *graph_iter(PyObject *self)
{
    return PyObject_GetIter(GRAPH(self)->dict);
}

static PyObject *graph_richcompare(PyObject *self, PyObject *other, int op)
{
    PyObject *b = NULL, *r;
    int owned = 0;
    if ((op != Py_EQ && op != Py_NE) || !cd_Graph_Check(self))
        Py_RETURN_NOTIMPLEMENTED;
    if (cd_Graph_Check(other)) {
        b = GRAPH(other)->dict;
    } else if (PyDict_Check(other)) {
        b = other;
    } else {
        int is_map = mapping_abc != NULL ? PyObject_IsInstance(other, mapping_abc) : 0;
        if (is_map < 0)
            return NULL;
        if (!is_map)
            Py_RETURN_NOTIMPLEMENTED;
        b = PyDict_New();
        if (b == NULL)
            return NULL;
        owned = 1;
        if (PyDict_Merge(b, other, 1) < 0) {
            Py_DECREF(b);
            return NULL;
        }
    }
    r = PyObject_RichCompare(GRAPH(self)->dict, b, op);
    if (owned)
        Py_DECREF(b);
    return r;
}

/* ---- plain Mapping methods ---- */

static PyObject *graph_keys(PyObject *self, PyObject *unused)
{
    CD_UNUSED(unused);
    return PyObject_CallMethod(GRAPH(self)->dict, "keys", NULL);
}

static PyObject *graph_values(PyObject *self, PyObject *unused)
{
    CD_UNUSED(unused);
    return PyObject_CallMethod(GRAPH(self)->dict, "values", NULL);
}

static PyObject *graph_items(PyObject *self, PyObject *unused)
{
    CD_UNUSED(unused);
    return PyObject_CallMethod(GRAPH(self)->dict, "items", NULL);
}

static PyObject *graph_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *v, *dflt = Py_None;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (nargs == 2)
        dflt = args[1];
    v = PyDict_GetItemWithError(GRAPH(self)->dict, args[0]);   /* borrowed */
    if (v == NULL) {
        if (PyErr_Occurred())
            return NULL;
        v = dflt;
    }
    Py_INCREF(v);
    return v;
}

static PyObject *graph_copy(PyObject *self, PyObject *unused)
{
    CD_UNUSED(unused);
    return graph_from_dict(Py_TYPE(self), PyDict_Copy(GRAPH(self)->dict));
}

static PyObject *graph_update(PyObject *self, PyObject *args, PyObject *kwargs)
{
    cd_GraphObject *g = GRAPH(self);
    PyObject *src = NULL;
    int rc = 0;
    if (!PyArg_UnpackTuple(args, "update", 0, 1, &src))
        return NULL;
    g->version++;
    if (src != NULL)
        rc = dict_fill(g->dict, src);
    if (rc == 0 && kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0)
        rc = PyDict_Update(g->dict, kwargs);
    graph_changed(g);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ---- merging ---- */

static PyObject *graph_merge(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *d = PyDict_Copy(GRAPH(self)->dict);
    if (d == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < nargs; k++) {
        int owned = 0, rc;
        PyObject *o = cd_graph_as_dict(args[k], &owned);
        if (o == NULL) {
            Py_DECREF(d);
            return NULL;
        }
        rc = PyDict_Update(d, o);
        if (owned)
            Py_DECREF(o);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return graph_from_dict(Py_TYPE(self), d);
}

/* cdask._core.merge(*graphs): a new Graph (of the first one's type if it is
 * a Graph), later graphs winning. */
static PyObject *module_merge(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyTypeObject *type = &cd_GraphType;
    PyObject *d = NULL;
    CD_UNUSED(module);
    if (nargs > 0 && cd_Graph_Check(args[0]))
        type = Py_TYPE(args[0]);
    for (Py_ssize_t k = 0; k < nargs; k++) {
        int owned = 0, rc = 0;
        PyObject *o = cd_graph_as_dict(args[k], &owned);
        if (o == NULL)
            goto fail;
        if (d == NULL) {
            /* the first one: take a copy (or the converted dict) whole */
            if (owned) {
                d = o;
                continue;
            }
            d = PyDict_Copy(o);
            if (d == NULL)
                goto fail;
            continue;
        }
        rc = PyDict_Update(d, o);
        if (owned)
            Py_DECREF(o);
        if (rc < 0)
            goto fail;
    }
    if (d == NULL && (d = PyDict_New()) == NULL)
        return NULL;
    return graph_from_dict(type, d);
fail:
    Py_XDECREF(d);
    return NULL;
}

/* ---- analysis methods ---- */

/* Mark the nodes named by `keys` (a key or nested lists of keys), pushing
 * newly marked ones on stack.  0 or -1. */
static int cull_collect(ganal *an, PyObject *keys, uint8_t *mark, int32_t *stack,
                        Py_ssize_t *top, int depth)
{
    Py_ssize_t i;
    if (depth > 1000) {
        PyErr_SetString(PyExc_RecursionError, "cdask: requested keys are nested too deeply");
        return -1;
    }
    if (PyList_Check(keys)) {
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(keys); k++) {
            PyObject *item = PyList_GET_ITEM(keys, k);
            int rc;
            Py_INCREF(item);   /* hashing may run code that changes the list */
            rc = cull_collect(an, item, mark, stack, top, depth + 1);
            Py_DECREF(item);
            if (rc < 0)
                return -1;
        }
        return 0;
    }
    i = an_find(an, keys);
    if (i == -2)
        return -1;
    if (i == -1) {
        set_key_error(keys);
        return -1;
    }
    if (!mark[i]) {
        mark[i] = 1;
        stack[(*top)++] = (int32_t)i;
    }
    return 0;
}

static PyObject *graph_cull(PyObject *self, PyObject *keys)
{
    cd_GraphObject *g = GRAPH(self);
    ganal *an;
    uint8_t *mark = NULL;
    int32_t *stack = NULL;
    Py_ssize_t top = 0;
    PyObject *d = NULL, *res = NULL;

    an = graph_analysis(g);
    if (an == NULL)
        return NULL;
    mark = PyMem_Calloc((size_t)(an->n > 0 ? an->n : 1), 1);
    stack = PyMem_Malloc((size_t)(an->n > 0 ? an->n : 1) * sizeof(int32_t));
    if (mark == NULL || stack == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (cull_collect(an, keys, mark, stack, &top, 0) < 0)
        goto fail;
    /* every node is pushed at most once (marked before it is pushed) */
    while (top > 0) {
        int32_t v = stack[--top];
        for (int64_t e = an->dep_off[v]; e < an->dep_off[v + 1]; e++) {
            int32_t w = an->deps[e];
            if (!mark[w]) {
                mark[w] = 1;
                stack[top++] = w;
            }
        }
    }
    d = PyDict_New();
    if (d == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < an->n; i++) {
        PyObject *k, *v;
        if (!mark[i])
            continue;
        k = an_key(an, i);
        v = PyDict_GetItemWithError(g->dict, k);   /* borrowed */
        if (v == NULL) {
            if (!PyErr_Occurred())
                set_changed_error();
            goto fail;
        }
        Py_INCREF(v);
        if (PyDict_SetItem(d, k, v) < 0) {
            Py_DECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    res = graph_from_dict(Py_TYPE(self), d);   /* steals d */
    d = NULL;
fail:
    Py_XDECREF(d);
    PyMem_Free(mark);
    PyMem_Free(stack);
    an_release(an);
    return res;
}

static PyObject *graph_dependencies(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"key", NULL};
    PyObject *key = Py_None, *res = NULL;
    ganal *an;
    int gc_was;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:dependencies", kwlist, &key))
        return NULL;
    an = graph_analysis(GRAPH(self));
    if (an == NULL)
        return NULL;
    if (key != Py_None) {
        Py_ssize_t i = an_find(an, key);
        if (i == -1)
            set_key_error(key);
        else if (i >= 0)
            res = an_deps_set(an, i);
        an_release(an);
        return res;
    }
    gc_was = gc_pause();
    res = PyDict_New();
    if (res == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < an->n; i++) {
        PyObject *s = an_deps_set(an, i);
        int rc;
        if (s == NULL)
            goto fail;
        rc = PyDict_SetItem(res, an_key(an, i), s);
        Py_DECREF(s);
        if (rc < 0)
            goto fail;
    }
    gc_resume(gc_was);
    an_release(an);
    return res;
fail:
    Py_XDECREF(res);
    gc_resume(gc_was);
    an_release(an);
    return NULL;
}

static PyObject *graph_dependents(PyObject *self, PyObject *unused)
{
    ganal *an;
    PyObject **sets = NULL, *res = NULL;
    Py_ssize_t n, made = 0;
    int gc_was;
    CD_UNUSED(unused);
    an = graph_analysis(GRAPH(self));
    if (an == NULL)
        return NULL;
    gc_was = gc_pause();
    n = an->n;
    sets = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(PyObject *));
    if (sets == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (; made < n; made++) {
        sets[made] = PySet_New(NULL);
        if (sets[made] == NULL)
            goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        for (int64_t e = an->dep_off[i]; e < an->dep_off[i + 1]; e++)
            if (PySet_Add(sets[an->deps[e]], an_key(an, i)) < 0)
                goto fail;
    res = PyDict_New();
    if (res == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyDict_SetItem(res, an_key(an, i), sets[i]) < 0)
            goto fail;
    goto done;
fail:
    Py_CLEAR(res);
done:
    for (Py_ssize_t i = 0; i < made; i++)
        Py_DECREF(sets[i]);
    PyMem_Free(sets);
    gc_resume(gc_was);
    an_release(an);
    return res;
}

/* The analysis of an order-dependent method (a reference: an_release it),
 * or NULL with an exception: ValueError naming a key on a cycle, or what
 * graph_analysis raised. */
static ganal *acyclic_analysis(cd_GraphObject *g)
{
    ganal *an = graph_analysis(g);
    if (an != NULL && an->cycle_node >= 0) {
        set_cycle_error(an);
        an_release(an);
        return NULL;
    }
    return an;
}

static PyObject *graph_toposort(PyObject *self, PyObject *unused)
{
    ganal *an;
    PyObject *res = NULL;
    CD_UNUSED(unused);
    an = acyclic_analysis(GRAPH(self));
    if (an == NULL)
        return NULL;
    res = PyList_New(an->n);
    if (res == NULL)
        goto done;
    /* prio is a permutation of 0..n-1 (checked in an_from_plan) */
    for (Py_ssize_t i = 0; i < an->n; i++) {
        PyObject *k = an_key(an, i);
        Py_INCREF(k);
        PyList_SET_ITEM(res, an->prio[i], k);
    }
done:
    an_release(an);
    return res;
}

static PyObject *graph_order(PyObject *self, PyObject *unused)
{
    ganal *an;
    PyObject *res = NULL;
    CD_UNUSED(unused);
    an = acyclic_analysis(GRAPH(self));
    if (an == NULL)
        return NULL;
    res = PyDict_New();
    if (res == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < an->n; i++) {
        PyObject *v = PyLong_FromLong(an->prio[i]);
        int rc;
        if (v == NULL) {
            Py_CLEAR(res);
            goto done;
        }
        rc = PyDict_SetItem(res, an_key(an, i), v);
        Py_DECREF(v);
        if (rc < 0) {
            Py_CLEAR(res);
            goto done;
        }
    }
done:
    an_release(an);
    return res;
}

/*
 * A cycle as a list of keys, each depending on the next and the last on
 * the first (a key depending on itself gives [key]); None without a cycle.
 * Depth-first walk over dependencies, starting at the node the plan
 * compiler found on a cycle; the first edge back into the walk's stack
 * closes a cycle made of the stack from that node up.
 */
static PyObject *graph_find_cycle(PyObject *self, PyObject *unused)
{
    ganal *an;
    uint8_t *color = NULL;        /* 0 unseen, 1 on the stack, 2 done */
    int32_t *stack = NULL;
    int64_t *cursor = NULL;
    PyObject *res = NULL;
    Py_ssize_t n;
    CD_UNUSED(unused);

    an = graph_analysis(GRAPH(self));
    if (an == NULL)
        return NULL;
    if (an->cycle_node < 0) {
        an_release(an);
        Py_RETURN_NONE;
    }
    n = an->n;
    color = PyMem_Calloc((size_t)n, 1);
    stack = PyMem_Malloc((size_t)n * sizeof(int32_t));
    cursor = PyMem_Malloc((size_t)n * sizeof(int64_t));
    if (color == NULL || stack == NULL || cursor == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = -1; r < n; r++) {
        int32_t root = r < 0 ? an->cycle_node : (int32_t)r;
        Py_ssize_t top = 0;
        if (color[root] != 0)
            continue;
        stack[top++] = root;
        color[root] = 1;
        cursor[root] = an->dep_off[root];
        while (top > 0) {
            int32_t v = stack[top - 1];
            if (cursor[v] < an->dep_off[v + 1]) {
                int32_t w = an->deps[cursor[v]++];
                if (color[w] == 0) {
                    color[w] = 1;
                    cursor[w] = an->dep_off[w];
                    stack[top++] = w;
                } else if (color[w] == 1) {
                    Py_ssize_t start = top - 1;
                    while (stack[start] != w)
                        start--;
                    res = PyList_New(top - start);
                    if (res == NULL)
                        goto done;
                    for (Py_ssize_t j = start; j < top; j++) {
                        PyObject *k = an_key(an, stack[j]);
                        Py_INCREF(k);
                        PyList_SET_ITEM(res, j - start, k);
                    }
                    goto done;
                }
            } else {
                color[v] = 2;
                top--;
            }
        }
    }
    /* the compiler said there is a cycle, but none was found */
    res = Py_None;
    Py_INCREF(res);
done:
    PyMem_Free(color);
    PyMem_Free(stack);
    PyMem_Free(cursor);
    an_release(an);
    return res;
}

/* ---- size, pickling ---- */

static Py_ssize_t dict_sizeof(PyObject *d)
{
    PyObject *r = PyObject_CallMethod(d, "__sizeof__", NULL);
    Py_ssize_t s;
    if (r == NULL)
        return -1;
    s = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    return s;
}

/* __sizeof__: the object, its dict's table and the cached analysis; keys
 * and tasks are not counted (as sys.getsizeof does for a dict). */
static PyObject *graph_sizeof(PyObject *self, PyObject *unused)
{
    cd_GraphObject *g = GRAPH(self);
    Py_ssize_t b = dict_sizeof(g->dict);
    CD_UNUSED(unused);
    if (b < 0)
        return NULL;
    b += Py_TYPE(self)->tp_basicsize;
    if (g->an != NULL)
        b += an_nbytes(g->an);
    return PyLong_FromSsize_t(b);
}

/*
 * nbytes_overhead(analyze=False): bytes this Graph holds beyond the keys and
 * tasks themselves (object + GC headers, the dict's tables, the cached
 * analysis).  With analyze=True the analysis is built first, so the number
 * includes what toposort/order/cull keep cached.
 */
static PyObject *graph_nbytes_overhead(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"analyze", NULL};
    cd_GraphObject *g = GRAPH(self);
    int analyze = 0;
    Py_ssize_t b;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:nbytes_overhead", kwlist, &analyze))
        return NULL;
    if (analyze) {
        ganal *an = graph_analysis(g);
        if (an == NULL)
            return NULL;
        an_release(an);
    }
    b = dict_sizeof(g->dict);
    if (b < 0)
        return NULL;
    b += (Py_ssize_t)(2 * 2 * sizeof(void *));   /* GC headers of the Graph and its dict */
    b += Py_TYPE(self)->tp_basicsize;
    if (g->an != NULL)
        b += an_nbytes(g->an);
    return PyLong_FromSsize_t(b);
}

/* Pickle as type(g)(dict), plus the instance __dict__ of a subclass. */
static PyObject *graph_reduce(PyObject *self, PyObject *unused)
{
    PyObject *state, *res;
    CD_UNUSED(unused);
    state = PyObject_GetAttrString(self, "__dict__");
    if (state == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
    } else if (!PyDict_Check(state) || PyDict_GET_SIZE(state) == 0) {
        Py_CLEAR(state);
    }
    if (state != NULL)
        res = Py_BuildValue("O(O)O", (PyObject *)Py_TYPE(self), GRAPH(self)->dict, state);
    else
        res = Py_BuildValue("O(O)", (PyObject *)Py_TYPE(self), GRAPH(self)->dict);
    Py_XDECREF(state);
    return res;
}

static PyMethodDef graph_methods[] = {
    {"keys", graph_keys, METH_NOARGS, "keys() -> a view of the graph's keys"},
    {"values", graph_values, METH_NOARGS, "values() -> a view of the graph's tasks"},
    {"items", graph_items, METH_NOARGS, "items() -> a view of (key, task) pairs"},
    {"get", (PyCFunction)(void (*)(void))graph_get, METH_FASTCALL,
     "get(key, default=None) -> the task of key, or default"},
    {"copy", graph_copy, METH_NOARGS, "copy() -> a shallow copy (a new Graph)"},
    {"update", (PyCFunction)(void (*)(void))graph_update, METH_VARARGS | METH_KEYWORDS,
     "update(mapping=(), **tasks): add or replace tasks (like dict.update)"},
    {"merge", (PyCFunction)(void (*)(void))graph_merge, METH_FASTCALL,
     "merge(*others) -> a new Graph with this graph's tasks, then the others' (later ones win)"},
    {"cull", graph_cull, METH_O,
     "cull(keys) -> a new Graph holding only the tasks `keys` (a key or nested lists of keys) need"},
    {"dependencies", (PyCFunction)(void (*)(void))graph_dependencies, METH_VARARGS | METH_KEYWORDS,
     "dependencies(key=None) -> the set of keys `key` depends on; without key a dict key -> set"},
    {"dependents", graph_dependents, METH_NOARGS,
     "dependents() -> dict key -> set of the keys that depend on it"},
    {"toposort", graph_toposort, METH_NOARGS,
     "toposort() -> list of all keys, each after its dependencies (the scheduler's order)"},
    {"order", graph_order, METH_NOARGS,
     "order() -> dict key -> priority the scheduler uses (0 runs first)"},
    {"find_cycle", graph_find_cycle, METH_NOARGS,
     "find_cycle() -> a list of keys on a cycle, each depending on the next and the last on the "
     "first, or None"},
    {"nbytes_overhead", (PyCFunction)(void (*)(void))graph_nbytes_overhead,
     METH_VARARGS | METH_KEYWORDS,
     "nbytes_overhead(analyze=False) -> bytes held beyond the keys and tasks themselves "
     "(dict tables, cached analysis); analyze=True builds the analysis first"},
    {"__sizeof__", graph_sizeof, METH_NOARGS, NULL},
    {"__reduce__", graph_reduce, METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMappingMethods graph_as_mapping = {
    .mp_length = graph_length,
    .mp_subscript = graph_subscript,
    .mp_ass_subscript = graph_ass_subscript,
};

static PySequenceMethods graph_as_sequence = {
    .sq_contains = graph_contains,
};

PyTypeObject cd_GraphType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cdask._core.Graph",
    .tp_basicsize = sizeof(cd_GraphObject),
    .tp_dealloc = graph_dealloc,
    .tp_repr = graph_repr,
    .tp_as_sequence = &graph_as_sequence,
    .tp_as_mapping = &graph_as_mapping,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Graph(mapping=None)\n--\n\n"
              "A task graph in dask's format: a mapping of key -> task, copied from\n"
              "`mapping` (a dict, a Graph, any Mapping or (key, task) pairs).  A\n"
              "collections.abc.Mapping with dict-speed lookups, plus dependency\n"
              "analysis (dependencies, dependents, cull, toposort, order, find_cycle)\n"
              "computed on demand and cached until the graph changes.  cdask.get\n"
              "accepts a Graph wherever it accepts a dict.",
    .tp_traverse = graph_traverse,
    .tp_clear = graph_clear,
    .tp_richcompare = graph_richcompare,
    .tp_weaklistoffset = offsetof(cd_GraphObject, weakreflist),
    .tp_iter = graph_iter,
    .tp_methods = graph_methods,
    .tp_init = graph_init,
    .tp_new = graph_new,
};

/* ------------------------------------------------------ cd_graph_as_dict */

PyObject *cd_graph_as_dict(PyObject *obj, int *owned)
{
    int is_map;
    PyObject *d;
    *owned = 0;
    if (cd_Graph_Check(obj))
        return GRAPH(obj)->dict;   /* borrowed */
    if (PyDict_Check(obj))
        return obj;                /* borrowed */
    is_map = mapping_abc != NULL ? PyObject_IsInstance(obj, mapping_abc) : 0;
    if (is_map < 0)
        return NULL;
    if (!is_map) {
        /* dask hands its schedulers expression objects: their graph is
         * what __dask_graph__() returns (as dask.threaded.get does) */
        PyObject *meth = PyObject_GetAttrString(obj, "__dask_graph__");
        if (meth != NULL) {
            PyObject *g = PyObject_CallNoArgs(meth), *inner;
            int inner_owned = 0;
            Py_DECREF(meth);
            if (g == NULL)
                return NULL;
            if (g == obj) {
                Py_DECREF(g);
                PyErr_SetString(PyExc_TypeError, "cdask: __dask_graph__() returned the object itself");
                return NULL;
            }
            inner = cd_graph_as_dict(g, &inner_owned);
            if (inner == NULL) {
                Py_DECREF(g);
                return NULL;
            }
            if (!inner_owned)
                Py_INCREF(inner);
            Py_DECREF(g);
            *owned = 1;
            return inner;          /* new reference */
        }
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "cdask: a task graph must be a dict or a cdask.Graph, got %.200s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (PyDict_Merge(d, obj, 1) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    *owned = 1;
    return d;                      /* new reference */
}

/* ------------------------------------------------------------------ init */

static PyMethodDef module_functions[] = {
    {"merge", (PyCFunction)(void (*)(void))module_merge, METH_FASTCALL,
     "merge(*graphs) -> a new Graph holding the tasks of all graphs (later ones win)"},
    {NULL, NULL, 0, NULL},
};

int cd_graph_py_init(PyObject *module)
{
    PyObject *abc = NULL, *r = NULL;
    if (PyType_Ready(&cd_GraphType) < 0)
        return -1;
    if (mapping_abc == NULL) {
        abc = PyImport_ImportModule("collections.abc");
        if (abc == NULL)
            goto fail;
        mapping_abc = PyObject_GetAttrString(abc, "Mapping");   /* kept for the module's life */
        if (mapping_abc == NULL)
            goto fail;
    }
    r = PyObject_CallMethod(mapping_abc, "register", "O", (PyObject *)&cd_GraphType);
    if (r == NULL)
        goto fail;
    Py_INCREF(&cd_GraphType);
    if (PyModule_AddObject(module, "Graph", (PyObject *)&cd_GraphType) < 0) {
        Py_DECREF(&cd_GraphType);
        goto fail;
    }
    if (PyModule_AddFunctions(module, module_functions) < 0)
        goto fail;
    Py_XDECREF(abc);
    Py_DECREF(r);
    return 0;
fail:
    Py_XDECREF(abc);
    Py_XDECREF(r);
    return -1;
}
