/*
 * pytask_py.c - running the Python nodes of a compiled plan (interface:
 * pytask_py.h): the interpreter of the programs of pyprog.h, the conversion
 * of node values to Python objects, and the publication of a task's result
 * as its node's value.  GIL held throughout.
 *
 * Design.  A program runs on a small value stack (on the C stack up to 16
 * entries); NODE pushes a node's value converted once (a chunk becomes an
 * ndarray viewing it, kept as the node's pyval), CALL uses vectorcall.  A
 * result that a C node reads is also converted to a chunk at once, so the C
 * consumer never needs the GIL; near the run's spill limit a big array
 * result is copied into a chunk the scheduler can spill.
 */
#include "python/pytask_py.h"
#include "python/pyprog.h"
#include "python/chunk_py.h"

#include <string.h>

PyObject *cd_pyplan_node_value(cd_pyplan *pp, int32_t i)
{
    cd_node *nd = &pp->plan->nodes[i];
    if (nd->pyval == NULL) {
        if (nd->chunk == NULL) {
            PyErr_Format(PyExc_RuntimeError, "cdask: value of node %d is missing", (int)i);
            return NULL;
        }
        nd->pyval = cd_chunk_as_result(nd->chunk);
        if (nd->pyval == NULL)
            return NULL;
    }
    Py_INCREF(nd->pyval);
    return nd->pyval;
}

/*
 * Make `res` (stolen) the value of node i.  A C consumer needs it as a chunk:
 * when it is not one array (a list of arrays, a string...) the chunk stays
 * NULL and the consumer runs through its Kernel's Python call instead, which
 * flattens lists or raises a TypeError naming the kernel.
 */
/* A big C-contiguous array result of a Python task, copied into an owned
 * chunk (which the scheduler can spill), or NULL (no error) if not taken. */
static cd_chunk *spillable_copy(PyObject *res)
{
    PyArrayObject *a;
    cd_dtype dt;
    int64_t shape[CD_MAXDIMS];
    cd_err err = {0, ""};
    cd_chunk *c;
    int64_t base_bytes;
    int base_spilled;
    if (!PyArray_CheckExact(res))
        return NULL;
    a = (PyArrayObject *)res;
    /* A view of a cdask block: worth copying only when it is a small part of
     * the block (a slice), which it would otherwise keep alive; not when it
     * is most of it (a transpose) or the block is on disk already. */
    if (cd_py_chunk_base(res, &base_bytes, &base_spilled) &&
        (base_spilled || 2 * (int64_t)PyArray_NBYTES(a) >= base_bytes))
        return NULL;
    if (PyArray_NBYTES(a) < ((npy_intp)1 << 20) || PyArray_NDIM(a) > CD_MAXDIMS ||
        !PyArray_ISNOTSWAPPED(a) || cd_dtype_from_descr(PyArray_DESCR(a), &dt) < 0 ||
        cd_py_is_mapped(res)) {
        PyErr_Clear();
        return NULL;
    }
    for (int k = 0; k < PyArray_NDIM(a); k++)
        shape[k] = (int64_t)PyArray_DIM(a, k);
    c = cd_chunk_new(dt, PyArray_NDIM(a), shape, &err);
    if (c == NULL)
        return NULL;
    if (PyArray_IS_C_CONTIGUOUS(a) && PyArray_ISALIGNED(a)) {
        memcpy(c->data, PyArray_DATA(a), (size_t)c->nbytes);
    } else {
        /* a strided view (a slice of a block): NumPy copies it into place */
        PyObject *dst = cd_chunk_as_array(c);
        if (dst == NULL || PyArray_CopyInto((PyArrayObject *)dst, a) < 0) {
            Py_XDECREF(dst);
            cd_chunk_decref_py(c);
            PyErr_Clear();
            return NULL;
        }
        Py_DECREF(dst);
    }
    return c;
}

static int publish(cd_pyplan *pp, int32_t node, PyObject *res)
{
    cd_node *nd = &pp->plan->nodes[node];
    if (pp->run != NULL && PyArray_CheckExact(res) &&
        cd_run_spill_pressure(pp->run, (int64_t)PyArray_NBYTES((PyArrayObject *)res))) {
        /* near the spill limit: keep the value where it can be spilled */
        cd_chunk *c = spillable_copy(res);
        if (c != NULL) {
            if (Py_REFCNT(res) == 1)
                (void)cd_py_drop_mapped(res);   /* a slice of a spilled block: its pages go */
            Py_DECREF(res);
            nd->chunk = c;
            nd->pyval = NULL;
            nd->nbytes = c->nbytes;
            return 0;
        }
    }
    nd->pyval = res;
    nd->nbytes = PyArray_Check(res) ? (int64_t)PyArray_NBYTES((PyArrayObject *)res) : 0;
    /* a view of a file mapping holds page cache, not heap: not counted as
     * held (its pages leave the process when it dies: cd_py_drop_mapped) */
    if (nd->nbytes >= 65536 && cd_py_is_mapped(res))
        nd->nbytes = 0;
    if ((nd->flags & CD_NF_C_CONSUMER) && nd->chunk == NULL &&
        !PyList_Check(res) && !PyTuple_Check(res)) {
        nd->chunk = cd_chunk_from_object(res, "a task's value");
        if (nd->chunk == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError))
                return -1;
            PyErr_Clear();
        }
    }
    return 0;
}

int cd_pyplan_exec_py(cd_pyplan *pp, int32_t node)
{
    priv *pv = PRIV(pp);
    pyprog *pg = &pv->progs[node];
    cd_node *nd = &pp->plan->nodes[node];
    const int32_t *code = pv->code + pg->off;
    PyObject *small[16], **st = small, *res = NULL;
    int32_t sp = 0, cap = pg->maxstack + 2;
    int rc = -1;

    if (nd->kind == CD_NODE_C) {
        /* A C task with an input that is not one array: call the Kernel
         * from Python, which flattens lists and converts or raises. */
        const int32_t *args = cd_plan_node_args(pp->plan, node);
        PyObject *tup = PyTuple_New(nd->nargs);
        if (tup == NULL)
            return -1;
        for (int32_t k = 0; k < nd->nargs; k++) {
            PyObject *v = cd_pyplan_node_value(pp, args[k]);
            if (v == NULL) {
                Py_DECREF(tup);
                return -1;
            }
            PyTuple_SET_ITEM(tup, k, v);
        }
        res = PyObject_Call(pg->lits, tup, NULL);
        Py_DECREF(tup);
        if (res == NULL)
            return -1;
        return publish(pp, node, res);
    }
    if (cap > 16) {
        st = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (st == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    for (int32_t pc = 0; pc < pg->len; pc += 2) {
        int32_t op = code[pc], a = code[pc + 1];
        PyObject *v;
        switch (op) {
        case OP_NODE:
            v = cd_pyplan_node_value(pp, a);
            if (v == NULL)
                goto done;
            st[sp++] = v;
            break;
        case OP_LIT:
            v = PyList_GET_ITEM(pg->lits, a);
            Py_INCREF(v);
            st[sp++] = v;
            break;
        case OP_CALL:
            sp -= a + 1;
            v = PyObject_Vectorcall(st[sp], st + sp + 1, (size_t)a, NULL);
            for (int32_t k = 0; k <= a; k++)
                Py_DECREF(st[sp + k]);
            if (v == NULL)
                goto done;
            st[sp++] = v;
            break;
        case OP_LIST:
            sp -= a;
            v = PyList_New(a);
            if (v == NULL)
                goto done;
            for (int32_t k = 0; k < a; k++)
                PyList_SET_ITEM(v, k, st[sp + k]);   /* steals */
            st[sp++] = v;
            break;
        case OP_SPEC: {
            PyObject *vals = PyDict_New(), *obj;
            sp -= 2 * a;
            obj = st[sp - 1];
            for (int32_t k = 0; k < a && vals != NULL; k++)
                if (PyDict_SetItem(vals, st[sp + 2 * k], st[sp + 2 * k + 1]) < 0)
                    Py_CLEAR(vals);
            for (int32_t k = 0; k < 2 * a; k++)
                Py_DECREF(st[sp + k]);
            if (vals == NULL) {
                Py_DECREF(obj);
                sp--;
                goto done;
            }
            v = PyObject_CallOneArg(obj, vals);
            Py_DECREF(vals);
            Py_DECREF(obj);
            sp--;
            if (v == NULL)
                goto done;
            st[sp++] = v;
            break;
        }
        default:
            PyErr_SetString(PyExc_SystemError, "cdask: bad task program");
            goto done;
        }
    }
    if (sp != 1) {
        PyErr_SetString(PyExc_SystemError, "cdask: unbalanced task program");
        goto done;
    }
    res = st[--sp];
    rc = publish(pp, node, res);
done:
    while (sp > 0)
        Py_DECREF(st[--sp]);
    if (st != small)
        PyMem_Free(st);
    return rc;
}
