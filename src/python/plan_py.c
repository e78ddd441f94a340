/*
 * plan_py.c - compile a dask-format graph into a cd_plan.  Interface:
 * plan_py.h.  Needs the GIL throughout.  The Python tasks it compiles into
 * little programs (pyprog.h) are run by pytask_py.c.
 *
 * Design.  Keys are discovered from the requested outputs (or, in analysis
 * mode, taken from the dict in order) and given node numbers through a small
 * open-addressing table keyed by the key's hash, so each argument costs one
 * hash and usually one pointer comparison.  Each discovered key's task is
 * parsed once:
 *
 *   Kernel task      -> C node; its args, with lists flattened, become input
 *                       nodes: keys, anonymous nodes for nested tasks, and
 *                       VALUE nodes for literals (converted to chunks before
 *                       the run, so a bad literal fails before anything runs).
 *   other task, list -> Python node with a little postfix program:
 *                       NODE i (push the value of node i), LIT k (push literal
 *                       k), CALL n (pop a callable and n args, push the
 *                       result), LIST n, SPEC n (dask task-spec object called
 *                       with a dict of n key/value pairs).  Running it needs
 *                       no hashing or dict lookups.
 *   a key            -> alias: a Python node whose program is NODE target.
 *   task-spec object -> Python node calling the object with its dependencies.
 *   anything else    -> VALUE node holding the literal.
 *
 * Nested Kernel tasks inside Python tasks get anonymous C nodes of their own,
 * so every C kernel runs on a worker without the GIL.
 */
#include "python/plan_py.h"
#include "python/pyprog.h"
#include "python/chunk_py.h"
#include "python/kernel_py.h"
#include "kernels/registry.h"

#include <stdlib.h>
#include <string.h>


/* ----------------------------------------------------------- small helpers */

static int grow(void **a, int64_t *cap, int64_t need, size_t elem)
{
    int64_t c = *cap ? *cap : 64;
    void *n;
    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    n = realloc(*a, (size_t)c * elem);
    if (n == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *a = n;
    *cap = c;
    return 0;
}

static int emit(priv *pv, int32_t v)
{
    if (pv->ncode == pv->code_cap &&
        grow((void **)&pv->code, &pv->code_cap, pv->ncode + 1, sizeof(int32_t)) < 0)
        return -1;
    pv->code[pv->ncode++] = v;
    return 0;
}

static int push_arg(priv *pv, int32_t v)
{
    if (pv->nargs_tmp == pv->args_cap &&
        grow((void **)&pv->args, &pv->args_cap, pv->nargs_tmp + 1, sizeof(int32_t)) < 0)
        return -1;
    pv->args[pv->nargs_tmp++] = v;
    return 0;
}

static int push_todo(priv *pv, int32_t v, PyObject *task)
{
    if (pv->ntodo == pv->todo_cap &&
        (grow((void **)&pv->todo, &pv->todo_cap, pv->ntodo + 1, sizeof(int32_t)) < 0 ||
         grow((void **)&pv->todo_task, &pv->todo_task_cap, pv->ntodo + 1, sizeof(PyObject *)) < 0))
        return -1;
    Py_INCREF(task);   /* a key's __eq__ could run code that mutates the graph */
    pv->todo_task[pv->ntodo] = task;
    pv->todo[pv->ntodo++] = v;
    return 0;
}

static int raise_err(const cd_err *e)
{
    cd_raise(e);
    return -1;
}

/* Add a node; keeps the per-node side arrays as long as the plan. */
static int32_t new_node(cd_pyplan *pp, int kind, PyObject *key, int32_t owner)
{
    priv *pv = PRIV(pp);
    cd_err err;
    int32_t i = cd_plan_add_node(pp->plan, kind, &err);
    if (i < 0)
        return raise_err(&err);
    if (i >= pv->keys_cap) {
        int64_t cap = pv->keys_cap, c2 = cap;
        if (grow((void **)&pp->keys, &c2, (int64_t)i + 1, sizeof(PyObject *)) < 0)
            return -1;
        c2 = cap;
        if (grow((void **)&pv->owner, &c2, (int64_t)i + 1, sizeof(int32_t)) < 0)
            return -1;
        c2 = cap;
        if (grow((void **)&pv->progs, &c2, (int64_t)i + 1, sizeof(pyprog)) < 0)
            return -1;
        c2 = cap;
        if (grow((void **)&pv->hashes, &c2, (int64_t)i + 1, sizeof(Py_hash_t)) < 0)
            return -1;
        pv->keys_cap = (int32_t)c2;
    }
    Py_XINCREF(key);
    pp->keys[i] = key;
    pv->owner[i] = owner;
    memset(&pv->progs[i], 0, sizeof(pyprog));
    return i;
}

/* ------------------------------------------------------------- key table */

static int table_grow_to(cd_pyplan *pp, size_t n);

static int table_grow(cd_pyplan *pp)
{
    priv *pv = PRIV(pp);
    return table_grow_to(pp, pv->nslots ? pv->nslots * 2 : 1024);
}

static int table_grow_to(cd_pyplan *pp, size_t n)
{
    priv *pv = PRIV(pp);
    int32_t *s = malloc(n * sizeof(int32_t));
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(s, 0xff, n * sizeof(int32_t));   /* every slot -1 */
    for (size_t k = 0; k < pv->nslots; k++) {
        int32_t node = pv->slots[k];
        if (node >= 0) {
            size_t j = (size_t)pv->hashes[node] & (n - 1);
            while (s[j] >= 0)
                j = (j + 1) & (n - 1);
            s[j] = node;
        }
    }
    free(pv->slots);
    pv->slots = s;
    pv->nslots = n;
    return 0;
}

/*
 * Node of `key` (hash h): >= 0 found; -1 not there; -2 error.  On -1,
 * *slot is where to insert it.
 */
static int32_t table_find(cd_pyplan *pp, PyObject *key, Py_hash_t h, size_t *slot)
{
    priv *pv = PRIV(pp);
    size_t mask = pv->nslots - 1, j = (size_t)h & mask;
    *slot = 0;
    for (;;) {
        int32_t node = pv->slots[j];
        if (node < 0) {
            *slot = j;
            return -1;
        }
        if (pv->hashes[node] == h) {
            PyObject *k = pp->keys[node];
            int eq;
            if (k == key)
                return node;
            eq = PyObject_RichCompareBool(k, key, Py_EQ);
            if (eq < 0)
                return -2;
            if (eq)
                return node;
        }
        j = (j + 1) & mask;
    }
}

/*
 * The node for `key` (hash h): found in the table, or, when the graph holds
 * the key, created (kind PY for now, parsed later from the todo list).
 * Returns the node, -1 when the graph does not hold key, -2 on error.
 */
static int32_t key_node(cd_pyplan *pp, PyObject *key, Py_hash_t h)
{
    priv *pv = PRIV(pp);
    size_t slot;
    int32_t i;
    PyObject *task;
    if ((pv->used + 1) * 2 > pv->nslots && table_grow(pp) < 0)
        return -2;
    i = table_find(pp, key, h, &slot);
    if (i != -1)
        return i;
    task = _PyDict_GetItem_KnownHash(pp->graph, key, h);
    if (task == NULL)
        return PyErr_Occurred() ? -2 : -1;
    i = new_node(pp, CD_NODE_PY, key, -1);
    if (i < 0)
        return -2;
    pv->slots[slot] = i;
    pv->hashes[i] = h;
    pv->used++;
    if (push_todo(pv, i, task) < 0)
        return -2;
    return i;
}

/*
 * If `arg` is a key of the graph, its node (>= 0); -1 if it is not a key;
 * -2 on error.  Unhashable objects are not keys.
 */
static int32_t as_key(cd_pyplan *pp, PyObject *arg)
{
    Py_hash_t h;
    PyObject *v;
    PyTypeObject *t = Py_TYPE(arg);
    if (t == &PyList_Type || t == &PyDict_Type || t == &PySet_Type)
        return -1;
    h = PyObject_Hash(arg);
    if (h == -1) {
        /* unhashable: not a key, a literal (NumPy's generic-unit timedelta64
         * raises ValueError rather than TypeError) */
        if (PyErr_ExceptionMatches(PyExc_TypeError) ||
            PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return -1;
        }
        return -2;
    }
    CD_UNUSED(v);
    return key_node(pp, arg, h);
}

static inline int is_task(PyObject *o)
{
    return PyTuple_CheckExact(o) && PyTuple_GET_SIZE(o) > 0 &&
           PyCallable_Check(PyTuple_GET_ITEM(o, 0));
}

static int is_spec(priv *pv, PyObject *o)
{
    if (pv->spec_type == NULL)
        return 0;
    return PyObject_TypeCheck(o, (PyTypeObject *)pv->spec_type);
}

/* ------------------------------------------------------------- parsing */

static int32_t parse_value(cd_pyplan *pp, int32_t node, PyObject *task, int32_t owner);

/*
 * VALUE node of a literal read by C tasks, or -2.  The same object read by
 * many tasks (the 4 of a million `(ones, 4)`) is one node, converted once.
 */
static int32_t literal_node(cd_pyplan *pp, PyObject *lit, int32_t owner)
{
    priv *pv = PRIV(pp);
    size_t mask, j;
    int32_t i;
    if ((pv->lit_used + 1) * 2 > pv->nlit) {
        size_t n = pv->nlit ? pv->nlit * 2 : 256;
        void *t = calloc(n, sizeof(*pv->lit));
        if (t == NULL) {
            PyErr_NoMemory();
            return -2;
        }
        for (size_t k = 0; k < pv->nlit; k++) {
            if (pv->lit[k].obj != NULL) {
                size_t q = ((size_t)pv->lit[k].obj >> 4) & (n - 1);
                while (((typeof(pv->lit))t)[q].obj != NULL)
                    q = (q + 1) & (n - 1);
                ((typeof(pv->lit))t)[q] = pv->lit[k];
            }
        }
        free(pv->lit);
        pv->lit = t;
        pv->nlit = n;
    }
    mask = pv->nlit - 1;
    for (j = ((size_t)lit >> 4) & mask; pv->lit[j].obj != NULL; j = (j + 1) & mask)
        if (pv->lit[j].obj == lit)
            return pv->lit[j].node;
    i = new_node(pp, CD_NODE_VALUE, NULL, owner);
    if (i < 0)
        return -2;
    Py_INCREF(lit);
    pp->plan->nodes[i].pyval = lit;
    pv->lit[j].obj = lit;
    pv->lit[j].node = i;
    pv->lit_used++;
    return i;
}

/* The VALUE node made for this very object, or -1. */
static int32_t known_literal(priv *pv, PyObject *obj)
{
    size_t mask, j;
    if (pv->nlit == 0)
        return -1;
    mask = pv->nlit - 1;
    for (j = ((size_t)obj >> 4) & mask; pv->lit[j].obj != NULL; j = (j + 1) & mask)
        if (pv->lit[j].obj == obj)
            return pv->lit[j].node;
    return -1;
}

static int c_args(cd_pyplan *pp, PyObject *arg, int32_t owner);

/*
 * A hint for the CPU: start loading the part of dict `d`'s hash table that a
 * lookup of hash h reads first.  Only an address is computed - from the
 * layout of CPython 3.11-3.13's dict keys object, which the public headers
 * do not describe - and a prefetch never faults, so a wrong guess costs
 * nothing but the hint.  Done for the keys of a reduction's input list, it
 * overlaps their cache misses instead of paying them one after the other.
 */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
typedef struct dk_head {
    Py_ssize_t refcnt;
    uint8_t log2_size, log2_index_bytes, kind;
    uint32_t version;
    Py_ssize_t usable, nentries;
    char indices[];
} dk_head;
#define CD_DICT_HINTS 1

/* stage 1: the index slot */
static inline void dict_prefetch_index(PyObject *d, Py_hash_t h)
{
    const dk_head *k = (const dk_head *)((PyDictObject *)d)->ma_keys;
    unsigned ls = k->log2_size, lb = k->log2_index_bytes;
    size_t ix = (size_t)h & (((size_t)1 << ls) - 1);
    if (ls < 8 * sizeof(size_t) && lb >= ls && lb - ls <= 3)
        __builtin_prefetch(k->indices + (ix << (lb - ls)));
}

/* stage 2 (once the index slot has arrived): the entry it names */
static inline void dict_prefetch_entry(PyObject *d, Py_hash_t h)
{
    const dk_head *k = (const dk_head *)((PyDictObject *)d)->ma_keys;
    unsigned ls = k->log2_size, lb = k->log2_index_bytes;
    size_t ix = (size_t)h & (((size_t)1 << ls) - 1);
    int64_t e;
    if (((PyDictObject *)d)->ma_values != NULL || k->kind != 0 || ls >= 8 * sizeof(size_t) ||
        lb < ls || lb - ls > 3)
        return;
    switch (lb - ls) {
    case 0: e = ((const int8_t *)k->indices)[ix]; break;
    case 1: e = ((const int16_t *)k->indices)[ix]; break;
    case 2: e = ((const int32_t *)k->indices)[ix]; break;
    default: e = ((const int64_t *)k->indices)[ix]; break;
    }
    if (e >= 0 && e < k->nentries)   /* entries: (hash, key, value) after the indices */
        __builtin_prefetch(k->indices + ((size_t)1 << lb) + (size_t)e * 3 * sizeof(void *));
}
#else
#define CD_DICT_HINTS 0
static inline void dict_prefetch_index(PyObject *d, Py_hash_t h) { (void)d; (void)h; }
static inline void dict_prefetch_entry(PyObject *d, Py_hash_t h) { (void)d; (void)h; }
#endif

/*
 * A list of (mostly) keys read by a C task - the inputs of a reduction's
 * combine step.  Their hashes are computed first and their table slots
 * prefetched, so that the cache misses of the lookups overlap instead of
 * coming one after the other; then each element is handled as in c_args.
 */
#define SEQ_ITEM(s, k) (PyList_Check(s) ? PyList_GET_ITEM(s, k) : PyTuple_GET_ITEM(s, k))

static int c_args_keys(cd_pyplan *pp, PyObject *seq, Py_ssize_t first, int32_t owner)
{
    priv *pv = PRIV(pp);
    Py_ssize_t n = PyList_Check(seq) ? PyList_GET_SIZE(seq) - first : PyTuple_GET_SIZE(seq) - first;
    Py_hash_t hs[64];
    size_t mask;
    if ((pv->used + (size_t)n + 1) * 2 > pv->nslots && table_grow(pp) < 0)
        return -1;
    mask = pv->nslots - 1;
    /* the key objects, then their items (hashing a tuple reads them) */
    for (Py_ssize_t k = 0; k < n; k++)
        __builtin_prefetch(SEQ_ITEM(seq, first + k));
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = SEQ_ITEM(seq, first + k);
        if (PyTuple_CheckExact(o))
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(o) && j < 4; j++)
                __builtin_prefetch(PyTuple_GET_ITEM(o, j));
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = SEQ_ITEM(seq, first + k);
        hs[k] = -1;
        if ((PyTuple_CheckExact(o) && !is_task(o)) || PyUnicode_CheckExact(o)) {
            hs[k] = PyObject_Hash(o);
            if (hs[k] == -1)
                PyErr_Clear();     /* unhashable: c_args treats it as a literal */
            else {
                __builtin_prefetch(&pv->slots[(size_t)hs[k] & mask]);
                dict_prefetch_index(pp->graph, hs[k]);
            }
        }
    }
    for (Py_ssize_t k = 0; k < n; k++)
        if (hs[k] != -1)
            dict_prefetch_entry(pp->graph, hs[k]);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *o = SEQ_ITEM(seq, first + k);
        int32_t i;
        if (hs[k] == -1) {
            if (c_args(pp, o, owner) < 0)
                return -1;
            continue;
        }
        i = known_literal(pv, o);
        if (i < 0)
            i = key_node(pp, o, hs[k]);
        if (i == -2)
            return -1;
        if (i < 0 && (i = literal_node(pp, o, owner)) < 0)
            return -1;
        if (push_arg(pv, i) < 0)
            return -1;
    }
    return 0;
}

/* Append the C-kernel inputs for `arg` (lists flattened) to pv->args. */
static int c_args(cd_pyplan *pp, PyObject *arg, int32_t owner)
{
    priv *pv = PRIV(pp);
    int32_t i;
    if (PyList_Check(arg)) {
        Py_ssize_t n = PyList_GET_SIZE(arg);
        if (n >= 4 && n <= 64)
            return c_args_keys(pp, arg, 0, owner);
        for (Py_ssize_t k = 0; k < n; k++)
            if (c_args(pp, PyList_GET_ITEM(arg, k), owner) < 0)
                return -1;
        return 0;
    }
    if (is_task(arg)) {
        i = new_node(pp, CD_NODE_PY, NULL, owner);
        if (i < 0)
            return -1;
        if (cd_Kernel_Check(PyTuple_GET_ITEM(arg, 0))) {
            /* parse_value uses pv->args from `saved` on; restore afterwards */
            int64_t saved = pv->nargs_tmp;
            if (parse_value(pp, i, arg, owner) < 0)
                return -1;
            pv->nargs_tmp = saved;
        } else {
            int64_t n = pv->ndefer + 1;
            if (grow((void **)&pv->dnode, &pv->dcap_n, n, sizeof(int32_t)) < 0 ||
                grow((void **)&pv->downer, &pv->dcap_o, n, sizeof(int32_t)) < 0 ||
                grow((void **)&pv->dtask, &pv->dcap_t, n, sizeof(PyObject *)) < 0)
                return -1;
            pv->dnode[pv->ndefer] = i;
            pv->downer[pv->ndefer] = owner;
            Py_INCREF(arg);
            pv->dtask[pv->ndefer++] = arg;
        }
        return push_arg(pv, i);
    }
    /* An object already known as a literal is not a key: skip the lookups. */
    i = known_literal(pv, arg);
    if (i < 0)
        i = as_key(pp, arg);
    if (i == -2)
        return -1;
    if (i < 0) {
        i = literal_node(pp, arg, owner);
        if (i < 0)
            return -1;
    }
    return push_arg(pv, i);
}

/* Emit the program that builds `arg` (Python node context); deps to pv->args. */
static int py_emit(cd_pyplan *pp, PyObject *arg, PyObject *lits, int32_t owner, int32_t *depth)
{
    priv *pv = PRIV(pp);
    int32_t i;
    if (PyList_Check(arg)) {
        Py_ssize_t n = PyList_GET_SIZE(arg);
        for (Py_ssize_t k = 0; k < n; k++)
            if (py_emit(pp, PyList_GET_ITEM(arg, k), lits, owner, depth) < 0)
                return -1;
        *depth -= (int32_t)n - 1;
        return emit(pv, OP_LIST) < 0 || emit(pv, (int32_t)n) < 0 ? -1 : 0;
    }
    if (is_task(arg)) {
        PyObject *f = PyTuple_GET_ITEM(arg, 0);
        Py_ssize_t n = PyTuple_GET_SIZE(arg);
        if (cd_Kernel_Check(f) && !(pv->flags & CD_PLAN_ANALYZE)) {
            /* a C kernel nested in a Python task: give it a node of its own */
            int64_t saved = pv->nargs_tmp;
            i = new_node(pp, CD_NODE_PY, NULL, owner);
            if (i < 0 || parse_value(pp, i, arg, owner) < 0)
                return -1;
            pv->nargs_tmp = saved;
            if (push_arg(pv, i) < 0)
                return -1;
            (*depth)++;
            return emit(pv, OP_NODE) < 0 || emit(pv, i) < 0 ? -1 : 0;
        }
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *a = PyTuple_GET_ITEM(arg, k);
            if (k == 0) {
                if (PyList_Append(lits, a) < 0)
                    return -1;
                (*depth)++;
                if (emit(pv, OP_LIT) < 0 || emit(pv, (int32_t)PyList_GET_SIZE(lits) - 1) < 0)
                    return -1;
            } else if (py_emit(pp, a, lits, owner, depth) < 0) {
                return -1;
            }
        }
        *depth -= (int32_t)n - 1;
        return emit(pv, OP_CALL) < 0 || emit(pv, (int32_t)n - 1) < 0 ? -1 : 0;
    }
    i = as_key(pp, arg);
    if (i == -2)
        return -1;
    (*depth)++;
    if (i >= 0) {
        if (push_arg(pv, i) < 0)
            return -1;
        return emit(pv, OP_NODE) < 0 || emit(pv, i) < 0 ? -1 : 0;
    }
    if (PyList_Append(lits, arg) < 0)
        return -1;
    return emit(pv, OP_LIT) < 0 || emit(pv, (int32_t)PyList_GET_SIZE(lits) - 1) < 0 ? -1 : 0;
}

/* Track the deepest stack a program needs. */
static void note_depth(pyprog *pg, int32_t depth)
{
    if (depth > pg->maxstack)
        pg->maxstack = depth;
}

/*
 * Parse the value `task` of node `node` (its kind is decided here); its
 * dependencies and args go through pv->args from the current position.
 */
static int32_t parse_value(cd_pyplan *pp, int32_t node, PyObject *task, int32_t owner)
{
    priv *pv = PRIV(pp);
    cd_plan *p = pp->plan;
    int64_t start = pv->nargs_tmp;
    cd_err err;
    int32_t self_owner = pp->keys[node] != NULL ? node : owner;

    if (is_task(task)) {
        PyObject *f = PyTuple_GET_ITEM(task, 0);
        Py_ssize_t n = PyTuple_GET_SIZE(task);
        if (cd_Kernel_Check(f) && !(pv->flags & CD_PLAN_ANALYZE)) {
            cd_KernelObject *ko = (cd_KernelObject *)f;
            int64_t nin;
            if (n - 1 >= 4 && n - 1 <= 64) {
                /* (kernel, k1, ..., kn): the inputs as one batch, like a list */
                if (c_args_keys(pp, task, 1, self_owner) < 0)
                    return -1;
            } else {
                for (Py_ssize_t k = 1; k < n; k++)
                    if (c_args(pp, PyTuple_GET_ITEM(task, k), self_owner) < 0)
                        return -1;
            }
            nin = pv->nargs_tmp - start;
            if (nin < ko->desc->min_in || (ko->desc->max_in >= 0 && nin > ko->desc->max_in)) {
                PyErr_Format(PyExc_TypeError,
                             "kernel '%s' takes %d%s inputs, got %lld (in the task of key %R)",
                             ko->desc->name, ko->desc->min_in,
                             ko->desc->max_in < 0 ? " or more" :
                             ko->desc->max_in > ko->desc->min_in ? " or more" : "",
                             (long long)nin, pp->keys[self_owner >= 0 ? self_owner : node]
                                             ? pp->keys[self_owner >= 0 ? self_owner : node] : Py_None);
                return -1;
            }
            p->nodes[node].kind = CD_NODE_C;
            {
                cd_kcall *kc = cd_plan_kcall(p, node);
                kc->kernel = ko->desc;
                kc->params_size = (size_t)PyBytes_GET_SIZE(ko->params);
                kc->params = kc->params_size ? PyBytes_AS_STRING(ko->params) : NULL;
            }
            /* keep the Kernel (and so its params) alive with the plan; it is
             * also what runs the task when an input is not one array */
            Py_INCREF(f);
            Py_XSETREF(pv->progs[node].lits, f);
            if (cd_plan_set_args(p, node, (int32_t)nin, pv->args + start, &err) < 0)
                return raise_err(&err);
            return 0;
        }
    }
    if (is_spec(pv, task) && !(pv->flags & CD_PLAN_ANALYZE)) {
        /* a dask Task calling a Kernel runs in C like its legacy tuple */
        PyObject *mod = PyImport_ImportModule("cdask._taskspec"), *tup;
        tup = mod ? PyObject_CallMethod(mod, "kernel_task_as_tuple", "O", task) : NULL;
        Py_XDECREF(mod);
        if (tup == NULL)
            return -1;
        if (tup != Py_None) {
            int32_t rc;
            /* the tuple lives as long as the plan: C nodes borrow from it */
            if (pv->keep == NULL && (pv->keep = PyList_New(0)) == NULL) {
                Py_DECREF(tup);
                return -1;
            }
            if (PyList_Append(pv->keep, tup) < 0) {
                Py_DECREF(tup);
                return -1;
            }
            rc = parse_value(pp, node, tup, owner);
            Py_DECREF(tup);
            return rc;
        }
        Py_DECREF(tup);
    }
    if (is_task(task) || PyList_Check(task) || is_spec(pv, task)) {
        pyprog *pg;
        PyObject *lits = PyList_New(0);
        int32_t depth = 0;
        int64_t off = pv->ncode;
        if (lits == NULL)
            return -1;
        if (is_spec(pv, task)) {
            PyObject *deps = PyObject_GetAttrString(task, "dependencies"), *it, *k;
            Py_ssize_t nd = 0;
            if (deps == NULL) {
                Py_DECREF(lits);
                return -1;
            }
            it = PyObject_GetIter(deps);
            Py_DECREF(deps);
            if (it == NULL || PyList_Append(lits, task) < 0 || emit(pv, OP_LIT) < 0 || emit(pv, 0) < 0) {
                Py_XDECREF(it);
                Py_DECREF(lits);
                return -1;
            }
            depth = 1;
            while ((k = PyIter_Next(it)) != NULL) {
                int32_t d;
                Py_hash_t h = PyObject_Hash(k);
                if (h == -1) {
                    Py_DECREF(k);
                    break;
                }
                if (_PyDict_GetItem_KnownHash(pp->graph, k, h) == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_Format(PyExc_KeyError, "task %R depends on key %R, which is not in the graph",
                                     pp->keys[self_owner >= 0 ? self_owner : node], k);
                    Py_DECREF(k);
                    break;
                }
                d = key_node(pp, k, h);
                if (d < 0 || PyList_Append(lits, k) < 0 || push_arg(pv, d) < 0 ||
                    emit(pv, OP_LIT) < 0 || emit(pv, (int32_t)PyList_GET_SIZE(lits) - 1) < 0 ||
                    emit(pv, OP_NODE) < 0 || emit(pv, d) < 0) {
                    Py_DECREF(k);
                    break;
                }
                Py_DECREF(k);
                nd++;
                depth += 2;
            }
            Py_DECREF(it);
            if (PyErr_Occurred() || emit(pv, OP_SPEC) < 0 || emit(pv, (int32_t)nd) < 0) {
                Py_DECREF(lits);
                return -1;
            }
            pg = &pv->progs[node];
            pg->maxstack = depth;
        } else {
            if (py_emit(pp, task, lits, self_owner, &depth) < 0) {
                Py_DECREF(lits);
                return -1;
            }
            pg = &pv->progs[node];
            pg->maxstack = 0;
        }
        pg->off = off;
        pg->len = (int32_t)(pv->ncode - off);
        pg->lits = lits;
        p->nodes[node].kind = CD_NODE_PY;
        if (cd_plan_set_args(p, node, (int32_t)(pv->nargs_tmp - start), pv->args + start, &err) < 0)
            return raise_err(&err);
        return 0;
    }
    /* an alias (a key), or a literal */
    {
        int32_t t = as_key(pp, task);
        if (t == -2)
            return -1;
        if (t >= 0) {
            pyprog *pg = &pv->progs[node];
            pg->off = pv->ncode;
            if (emit(pv, OP_NODE) < 0 || emit(pv, t) < 0 || push_arg(pv, t) < 0)
                return -1;
            pg->len = 2;
            pg->lits = PyList_New(0);
            if (pg->lits == NULL)
                return -1;
            p->nodes[node].kind = CD_NODE_PY;
            if (cd_plan_set_args(p, node, 1, &t, &err) < 0)
                return raise_err(&err);
            return 0;
        }
    }
    p->nodes[node].kind = CD_NODE_VALUE;
    Py_INCREF(task);
    p->nodes[node].pyval = task;
    return 0;
}

/* ------------------------------------------------------------ public API */

static void fix_maxstack(cd_pyplan *pp)
{
    /* A safe bound: the program length halves to its pushes. */
    priv *pv = PRIV(pp);
    for (int32_t i = 0; i < pp->plan->n; i++) {
        pyprog *pg = &pv->progs[i];
        if (pg->len > 0)
            note_depth(pg, pg->len / 2 + 1);
    }
}

static int flatten_outputs(cd_pyplan *pp, PyObject *keys, int depth)
{
    priv *pv = PRIV(pp);
    if (depth > 1000) {
        PyErr_SetString(PyExc_RecursionError, "cdask: requested keys are nested too deeply");
        return -1;
    }
    if (PyList_Check(keys)) {
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(keys); k++)
            if (flatten_outputs(pp, PyList_GET_ITEM(keys, k), depth + 1) < 0)
                return -1;
        return 0;
    }
    {
        Py_hash_t h = PyObject_Hash(keys);
        int32_t i;
        cd_err err;
        if (h == -1) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError,
                             "cdask.get: requested key %R is unhashable; keys are str, bytes, "
                             "numbers or tuples of them (a list asks for several keys)", keys);
            }
            return -1;
        }
        if (_PyDict_GetItem_KnownHash(pp->graph, keys, h) == NULL) {
            if (!PyErr_Occurred()) {
                PyObject *t = PyTuple_Pack(1, keys);
                if (t != NULL) {
                    PyErr_SetObject(PyExc_KeyError, t);
                    Py_DECREF(t);
                }
            }
            return -1;
        }
        i = key_node(pp, keys, h);
        if (i < 0)
            return -1;
        if (pp->noutputs % 64 == 0) {
            int32_t *o = realloc(pp->outputs, (size_t)(pp->noutputs + 64) * sizeof(int32_t));
            if (o == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            pp->outputs = o;
        }
        pp->outputs[pp->noutputs++] = i;
        if (cd_plan_add_output(pp->plan, i, &err) < 0)
            return raise_err(&err);
        CD_UNUSED(pv);
    }
    return 0;
}

static PyObject *find_spec_type(void)
{
    /* Only if dask is already imported: a graph cannot hold its objects otherwise. */
    PyObject *name, *mod, *t;
    name = PyUnicode_FromString("dask._task_spec");
    if (name == NULL)
        return NULL;
    mod = PyImport_GetModule(name);
    Py_DECREF(name);
    if (mod == NULL) {
        if (PyErr_Occurred())
            PyErr_Clear();
        return NULL;
    }
    t = PyObject_GetAttrString(mod, "GraphNode");
    Py_DECREF(mod);
    if (t == NULL || !PyType_Check(t)) {
        PyErr_Clear();
        Py_XDECREF(t);
        return NULL;
    }
    return t;
}

void cd_pyplan_free(cd_pyplan *pp)
{
    priv *pv;
    if (pp == NULL)
        return;
    pv = PRIV(pp);
    if (pp->plan != NULL) {
        int32_t n = pp->plan->n;
        for (int32_t i = 0; i < n; i++) {
            cd_node *nd = &pp->plan->nodes[i];
            if (pp->keys != NULL && i + 16 < n && pp->keys[i + 16] != NULL)
                __builtin_prefetch(pp->keys[i + 16], 1);   /* its refcount is written below */
            if (nd->chunk != NULL) {
                cd_chunk_decref_py(nd->chunk);
                nd->chunk = NULL;
            }
            Py_CLEAR(nd->pyval);
            if (pp->keys != NULL)
                Py_XDECREF(pp->keys[i]);
            if (pv != NULL && pv->progs != NULL)
                Py_XDECREF(pv->progs[i].lits);
        }
        pp->plan->values_released = 1;   /* cd_plan_free need not look again */
        cd_plan_free(pp->plan);
    }
    if (pv != NULL) {
        free(pv->slots);
        free(pv->hashes);
        free(pv->code);
        free(pv->progs);
        free(pv->owner);
        free(pv->args);
        for (int64_t k = 0; k < pv->ntodo; k++)   /* left by a failure */
            Py_DECREF(pv->todo_task[k]);
        free(pv->todo);
        free(pv->todo_task);
        free(pv->lit);
        for (int64_t k = 0; k < pv->ndefer; k++)
            Py_DECREF(pv->dtask[k]);
        free(pv->dnode);
        free(pv->downer);
        free(pv->dtask);
        Py_XDECREF(pv->spec_type);
        Py_XDECREF(pv->keep);
        free(pv);
    }
    free(pp->keys);
    free(pp->outputs);
    Py_XDECREF(pp->graph);
    free(pp);
}

/* Add a note naming `key` to the pending exception (PEP 678). */
static void add_key_note(PyObject *key)
{
    PyObject *t, *v, *tb, *note, *r;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    note = PyUnicode_FromFormat("cdask: raised by the task of key %R", key);
    r = (note != NULL && v != NULL) ? PyObject_CallMethod(v, "add_note", "O", note) : NULL;
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(note);
    PyErr_Restore(t, v, tb);
}

cd_pyplan *cd_pyplan_build(PyObject *dsk, PyObject *outputs, int flags)
{
    cd_pyplan *pp;
    priv *pv;
    cd_err err;
    if (!PyDict_Check(dsk)) {
        PyErr_Format(PyExc_SystemError, "cdask: the plan compiler needs a dict, got %.200s",
                     Py_TYPE(dsk)->tp_name);
        return NULL;
    }
    pp = calloc(1, sizeof(*pp));
    pv = calloc(1, sizeof(*pv));
    if (pp == NULL || pv == NULL) {
        free(pp);
        free(pv);
        PyErr_NoMemory();
        return NULL;
    }
    pp->priv = pv;
    pp->cycle_node = -1;
    pp->graph = Py_NewRef(dsk);
    pv->flags = flags;
    pv->spec_type = find_spec_type();
    pp->plan = cd_plan_new(&err);
    if (pp->plan == NULL) {
        raise_err(&err);
        goto fail;
    }
    {
        /* Size everything for the whole graph up front: growing tables of
         * a million entries step by step costs more than the walk. */
        Py_ssize_t nd = PyDict_GET_SIZE(dsk);
        size_t slots = 1024;
        while (slots < (size_t)nd * 2 + 2)
            slots *= 2;
        if (table_grow_to(pp, slots) < 0)
            goto fail;
        if (nd > 1024 && nd < INT32_MAX / 2) {
            int64_t cap = 0;
            int32_t want = (int32_t)(nd + nd / 8 + 16);
            if (cd_plan_reserve(pp->plan, want, (int64_t)nd * 2, &err) < 0) {
                raise_err(&err);
                goto fail;
            }
            if (grow((void **)&pp->keys, &cap, want, sizeof(PyObject *)) < 0)
                goto fail;
            cap = 0;
            if (grow((void **)&pv->owner, &cap, want, sizeof(int32_t)) < 0)
                goto fail;
            cap = 0;
            if (grow((void **)&pv->progs, &cap, want, sizeof(pyprog)) < 0)
                goto fail;
            cap = 0;
            if (grow((void **)&pv->hashes, &cap, want, sizeof(Py_hash_t)) < 0)
                goto fail;
            pv->keys_cap = (int32_t)cap;
        }
    }

    if (flags & CD_PLAN_ANALYZE) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(dsk, &pos, &k, &v)) {
            Py_hash_t h;
            int32_t got;
            Py_INCREF(k);   /* __hash__ may run code that mutates the dict */
            h = PyObject_Hash(k);
            got = h == -1 ? -2 : key_node(pp, k, h);
            Py_DECREF(k);
            if (got < 0) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_RuntimeError, "cdask: the graph changed while it was compiled");
                goto fail;
            }
        }
    } else if (flatten_outputs(pp, outputs, 0) < 0) {
        goto fail;
    }
    /* Parse every discovered key's task; parsing discovers more keys. */
    while (pv->ntodo > 0 || pv->ndefer > 0) {
        int32_t i;
        if (pv->ndefer > 0) {
            PyObject *t;
            int rc;
            pv->ndefer--;
            i = pv->dnode[pv->ndefer];
            t = pv->dtask[pv->ndefer];
            pv->nargs_tmp = 0;
            rc = parse_value(pp, i, t, pv->downer[pv->ndefer]);
            Py_DECREF(t);
            if (rc < 0)
                goto fail;
            continue;
        }
        i = pv->todo[--pv->ntodo];
        PyObject *task = pv->todo_task[pv->ntodo];   /* owned: see push_todo */
        if (pv->ntodo >= 2)   /* the task after next: its tuple is likely out of cache */
            __builtin_prefetch(pv->todo_task[pv->ntodo - 2]);
        pv->nargs_tmp = 0;
        if (parse_value(pp, i, task, -1) < 0) {
            Py_DECREF(task);
            goto fail;
        }
        Py_DECREF(task);
    }
    fix_maxstack(pp);
    {
        int32_t cyc = -1;
        if (cd_plan_finalize(pp->plan, &cyc, &err) < 0) {
            if (cyc >= 0) {
                int32_t k = cyc;
                while (k >= 0 && pp->keys[k] == NULL)
                    k = pv->owner[k];
                if (flags & CD_PLAN_ANALYZE) {
                    pp->cycle_node = k >= 0 ? k : cyc;
                    return pp;
                }
                PyErr_Format(PyExc_ValueError,
                             "cdask: the task graph has a cycle through key %R",
                             k >= 0 ? pp->keys[k] : Py_None);
            } else {
                raise_err(&err);
            }
            goto fail;
        }
    }
    if (!(flags & CD_PLAN_ANALYZE)) {
        /* Literals read by C kernels become chunks now: a bad one fails early. */
        for (int32_t i = 0; i < pp->plan->n; i++) {
            cd_node *nd = &pp->plan->nodes[i];
            if (nd->kind == CD_NODE_VALUE && (nd->flags & CD_NF_C_CONSUMER) && nd->chunk == NULL) {
                /* name the first C task that reads it in the message */
                char what[240];
                const int32_t *dn = cd_plan_node_dnts(pp->plan, i);
                int32_t c = -1;
                PyObject *key, *r = NULL;
                for (int32_t k = 0; k < nd->ndnts && c < 0; k++)
                    if (pp->plan->nodes[dn[k]].kind == CD_NODE_C)
                        c = dn[k];
                key = c >= 0 ? cd_pyplan_key_of(pp, c) : NULL;
                if (key != NULL && (r = PyObject_Repr(key)) == NULL)
                    PyErr_Clear();
                snprintf(what, sizeof(what), "a literal argument of kernel '%s' in the task of key %s",
                         c >= 0 ? cd_plan_kcall(pp->plan, c)->kernel->name : "?",
                         r != NULL ? PyUnicode_AsUTF8(r) : "?");
                Py_XDECREF(r);
                nd->chunk = cd_chunk_from_object(nd->pyval, what);
                if (nd->chunk == NULL) {
                    if (key != NULL)
                        add_key_note(key);
                    goto fail;
                }
            }
        }
    }
    return pp;
fail:
    cd_pyplan_free(pp);
    return NULL;
}

/* The key naming node i for messages: its own, or the key it is nested in. */
PyObject *cd_pyplan_key_of(cd_pyplan *pp, int32_t i)
{
    priv *pv = PRIV(pp);
    while (i >= 0 && pp->keys[i] == NULL)
        i = pv->owner[i];
    return i >= 0 ? pp->keys[i] : NULL;
}

/* A name for node i's work: kernel name or callable's __name__ (new ref). */
PyObject *cd_pyplan_task_name(cd_pyplan *pp, int32_t i)
{
    priv *pv = PRIV(pp);
    cd_node *nd = &pp->plan->nodes[i];
    pyprog *pg = &pv->progs[i];
    if (nd->kind == CD_NODE_C)
        return PyUnicode_FromString(cd_kernel_display_name(cd_plan_kcall(pp->plan, i)->kernel,
                                                           cd_plan_kcall(pp->plan, i)->params,
                                                           cd_plan_kcall(pp->plan, i)->params_size));
    if (nd->kind == CD_NODE_PY && pg->lits != NULL && PyList_GET_SIZE(pg->lits) > 0 && pg->len >= 2) {
        /* the callable of a task is the first literal pushed */
        PyObject *f = PyList_GET_ITEM(pg->lits, 0);
        PyObject *name = PyObject_GetAttrString(f, "__name__");
        if (name == NULL) {
            PyErr_Clear();
            name = PyObject_GetAttrString((PyObject *)Py_TYPE(f), "__name__");
            if (name == NULL) {
                PyErr_Clear();
                return PyUnicode_FromString("task");
            }
        }
        return name;
    }
    if (nd->kind == CD_NODE_PY)
        return PyUnicode_FromString(pg->len == 2 && pv->code[pg->off] == OP_NODE ? "alias" : "list");
    return PyUnicode_FromString("value");
}

/* What node i's task name is made from, to cache names per source: the
 * callable of a Python task (borrowed) or the display name of a C kernel
 * call (*is_c set).  NULL for other nodes (aliases, lists, values). */
const void *cd_pyplan_name_source(cd_pyplan *pp, int32_t i, int *is_c)
{
    priv *pv = PRIV(pp);
    cd_node *nd = &pp->plan->nodes[i];
    pyprog *pg = &pv->progs[i];
    *is_c = nd->kind == CD_NODE_C;
    if (*is_c) {
        const cd_kcall *kc = cd_plan_kcall(pp->plan, i);
        return cd_kernel_display_name(kc->kernel, kc->params, kc->params_size);
    }
    if (nd->kind == CD_NODE_PY && pg->lits != NULL && PyList_GET_SIZE(pg->lits) > 0 && pg->len >= 2)
        return PyList_GET_ITEM(pg->lits, 0);
    return NULL;
}
