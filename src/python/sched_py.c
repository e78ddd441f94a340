/*
 * sched_py.c - cdask.get and cdask.Stats: the Python face of the scheduler.
 *
 * get() compiles the graph (plan_py.c) holding the GIL, starts a run on the
 * pool (core/sched.c), then loops on the calling thread:
 *
 *   - run ready Python tasks for up to ~20 ms (the caller already holds the
 *     GIL, so batching them here costs no thread hand-off);
 *   - drain the queue of Python objects released by workers;
 *   - call the progress callback when its interval has passed;
 *   - release the GIL and wait for the run (at most 20 ms) - a nested get
 *     called from a pool worker also runs C tasks here so it cannot starve;
 *   - take the GIL back and check for signals: Ctrl-C cancels the run.
 *
 * When the run is over, the first error is raised with a note naming the key
 * that failed, or the outputs are returned in the nesting the caller asked
 * for.  Pool workers run Python tasks too, through the py_batch hook, with a
 * thread state of their own made once per worker.
 */
#include "python/graph_py.h"
#include "python/plan_py.h"
#include "python/pytask_py.h"
#include "python/chunk_py.h"
#include "python/kernel_py.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>

#define SLICE_NS (20 * 1000000LL)
#define WORKER_BATCH_NS (2 * 1000000LL)

/* ------------------------------------------------------------- Stats */

/*
 * A run's records as the scheduler left them, turned into Python objects
 * only when first read: get(record=True) on a million tasks must cost a few
 * percent, and a million tuples cost more than the run.  At the end of the
 * run the array of cd_record is taken from it, the plan's array of keys is
 * taken from the plan (its references with it, so nothing is counted up),
 * and each record gets its key and the index of its name among the run's
 * distinct names, found through a small cache per name source (a kernel's
 * name, a task's callable).
 */
typedef struct rawrec {
    int64_t n;
    cd_record *rec;        /* n, owned (cd_records_free) */
    size_t cap;            /* rec's room, for cd_records_free */
    PyObject **keys;       /* node -> key (strong refs), anonymous nodes given their
                              owner's key; nkeys entries */
    int32_t *name;         /* node -> index into names (-1: a value, no task) */
    int32_t nkeys;
    PyObject *names;       /* list of distinct names (strong) */
} rawrec;

typedef struct {
    PyObject_HEAD
    long long done, total, bytes_held, peak_bytes, spilled_bytes;
    double elapsed;
    PyObject *records;     /* list of tuples, or None; NULL while raw is unread */
    PyObject *memory;      /* list of (end, held, spilled), or NULL until read */
    rawrec *raw;           /* the last run's records not yet read, or NULL */
} StatsObject;

static void rawrec_free(rawrec *rr)
{
    if (rr == NULL)
        return;
    if (rr->keys != NULL)
        for (int32_t i = 0; i < rr->nkeys; i++)
            Py_XDECREF(rr->keys[i]);
    free(rr->keys);
    Py_XDECREF(rr->names);
    cd_records_free(rr->rec, rr->cap);
    free(rr->name);
    free(rr);
}

/* Forget the last run's records (GIL held). */
static void stats_drop_records(StatsObject *self)
{
    rawrec *rr = self->raw;
    self->raw = NULL;
    Py_CLEAR(self->records);
    Py_CLEAR(self->memory);
    rawrec_free(rr);
}

/* stats.records: a list of (key, name, worker, start, end, nbytes), made from
 * raw at the first read (new reference). */
static PyObject *stats_get_records(StatsObject *self, void *closure)
{
    rawrec *rr = self->raw;
    PyObject *list;
    CD_UNUSED(closure);
    if (self->records != NULL) {
        Py_INCREF(self->records);
        return self->records;
    }
    if (rr == NULL)
        Py_RETURN_NONE;
    list = PyList_New((Py_ssize_t)rr->n);
    if (list == NULL)
        return NULL;
    for (int64_t k = 0; k < rr->n; k++) {
        const cd_record *r = &rr->rec[k];
        PyObject *key = rr->keys[r->node];
        PyObject *t = Py_BuildValue("(OOiddL)", key ? key : Py_None,
                                    PyList_GET_ITEM(rr->names, rr->name[r->node]), (int)r->worker,
                                    (double)r->start_ns * 1e-9, (double)r->end_ns * 1e-9,
                                    (long long)r->nbytes);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, t);
    }
    self->records = list;
    Py_INCREF(list);
    return list;
}

/* stats.memory: (end, held, spilled) after each recorded task (new ref). */
static PyObject *stats_get_memory(StatsObject *self, void *closure)
{
    rawrec *rr = self->raw;
    PyObject *list;
    CD_UNUSED(closure);
    if (self->memory != NULL) {
        Py_INCREF(self->memory);
        return self->memory;
    }
    if (rr == NULL)
        return PyList_New(0);
    list = PyList_New((Py_ssize_t)rr->n);
    if (list == NULL)
        return NULL;
    for (int64_t k = 0; k < rr->n; k++) {
        const cd_record *r = &rr->rec[k];
        PyObject *t = Py_BuildValue("(dLL)", (double)r->end_ns * 1e-9, (long long)r->held,
                                    (long long)r->spilled);
        if (t == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, t);
    }
    self->memory = list;
    Py_INCREF(list);
    return list;
}

static PyGetSetDef stats_getset[] = {
    {"records", (getter)stats_get_records, NULL,
     "(key, name, worker, start, end, nbytes) per task when get(record=True), in the order "
     "the tasks finished (tasks that failed have none), else []; None before any run", NULL},
    {"memory", (getter)stats_get_memory, NULL,
     "(end, bytes_held, spilled_bytes) after each recorded task, in the order of records: "
     "what the run held once the task's output was counted and its inputs freed", NULL},
    {NULL}
};

static PyMemberDef stats_members[] = {
    {"done", T_LONGLONG, offsetof(StatsObject, done), READONLY, "tasks finished"},
    {"total", T_LONGLONG, offsetof(StatsObject, total), READONLY, "tasks to run"},
    {"bytes_held", T_LONGLONG, offsetof(StatsObject, bytes_held), READONLY,
     "bytes of intermediate and output values held now"},
    {"peak_bytes", T_LONGLONG, offsetof(StatsObject, peak_bytes), READONLY,
     "largest bytes_held seen during the run"},
    {"spilled_bytes", T_LONGLONG, offsetof(StatsObject, spilled_bytes), READONLY,
     "bytes of intermediates moved to disk because the spill limit was passed"},
    {"elapsed", T_DOUBLE, offsetof(StatsObject, elapsed), READONLY, "seconds since the run started"},
    {NULL}
};

static int stats_init(StatsObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":Stats", kwlist))
        return -1;
    self->done = self->total = self->bytes_held = self->peak_bytes = self->spilled_bytes = 0;
    self->elapsed = 0.0;
    stats_drop_records(self);
    Py_INCREF(Py_None);
    self->records = Py_None;
    return 0;
}

static void stats_dealloc(StatsObject *self)
{
    PyObject_GC_UnTrack(self);
    stats_drop_records(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int stats_traverse(StatsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->records);
    Py_VISIT(self->memory);
    if (self->raw != NULL)
        Py_VISIT(self->raw->names);
    return 0;
}

static int stats_clear(StatsObject *self)
{
    stats_drop_records(self);
    return 0;
}

static PyObject *stats_repr(StatsObject *self)
{
    return PyUnicode_FromFormat("<cdask.Stats %lld/%lld tasks, %lld bytes held, peak %lld>",
                                self->done, self->total, self->bytes_held, self->peak_bytes);
}

static PyTypeObject StatsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cdask._core.Stats",
    .tp_basicsize = sizeof(StatsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Counters of a cdask.get run: pass one as get(..., stats=s) to read them.",
    .tp_members = stats_members,
    .tp_getset = stats_getset,
    .tp_init = (initproc)stats_init,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)stats_dealloc,
    .tp_traverse = (traverseproc)stats_traverse,
    .tp_clear = (inquiry)stats_clear,
    .tp_repr = (reprfunc)stats_repr,
};

/* ------------------------------------------------------- run context */

typedef struct gctx {
    cd_pyplan *pp;
    cd_run *run;
    PyObject *exc_type, *exc_value, *exc_tb;   /* first Python error */
    int pending_wins;      /* exc_* came from Ctrl-C or the callback */
} gctx;

static PyInterpreterState *g_interp;

/*
 * Floating-point flags reported by a Python task of a run (the NumPy
 * fallback blocks collect them with np.errstate(all="call") and pass them
 * to note_fpe); tls_in_task says this thread is running a run's task.
 */
static __thread int tls_py_fpe, tls_in_task;
/* Pool worker i's Python thread state: entry i is read and written only by
 * worker i (made on its first Python batch, dropped by hook_worker_exit),
 * and cleared by the atfork child handler when only one thread is left. */
static PyThreadState *g_worker_ts[CD_MAX_THREADS];

/* Record the pending exception of node i (GIL held) and fail the task. */
static void task_failed(gctx *g, int32_t i, int64_t t0, int worker)
{
    PyObject *t, *v, *tb;
    cd_err err;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL)
        PyException_SetTraceback(v, tb);
    if (g->exc_type == NULL && t != NULL) {
        g->exc_type = t;
        g->exc_value = v;
        g->exc_tb = tb;
        /* name the key in a note, once */
        if (v != NULL) {
            PyObject *key = cd_pyplan_key_of(g->pp, i);
            PyObject *note = key ? PyUnicode_FromFormat("cdask: raised by the task of key %R", key)
                                 : PyUnicode_FromString("cdask: raised by a task");
            PyObject *r = note ? PyObject_CallMethod(v, "add_note", "O", note) : NULL;
            if (r == NULL)
                PyErr_Clear();
            Py_XDECREF(r);
            Py_XDECREF(note);
        }
    } else {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    cd_err_set(&err, CD_EPYTHON, "a Python task raised");
    cd_run_finish(g->run, i, CD_EPYTHON, &err, t0, worker);
}

/* Run ready Python tasks (GIL held) until none or the time is up. */
static int run_py_tasks(gctx *g, int worker, int64_t budget_ns)
{
    int64_t end = cd_now_ns() + budget_ns;
    int n = 0;
    int32_t i;
    while ((i = cd_run_pop_py(g->run)) >= 0) {
        int64_t t0 = cd_run_stamp();   /* the records' clock */
        int rc, outer = tls_in_task, saved_fpe = tls_py_fpe;
        tls_in_task = 1;
        tls_py_fpe = 0;
        rc = cd_pyplan_exec_py(g->pp, i);
        if (tls_py_fpe)
            cd_run_note_fpe(g->run, i, tls_py_fpe);
        tls_in_task = outer;     /* a nested get restores its caller's state */
        tls_py_fpe = saved_fpe;
        if (rc < 0)
            task_failed(g, i, t0, worker);
        else
            cd_run_finish(g->run, i, 0, NULL, t0, worker);
        /* values whose last consumer this was go now, not at batch end */
        if (cd_py_pending_releases() > 0)
            cd_py_drain_releases();
        n++;
        if ((n & 7) == 0 && cd_now_ns() > end)
            break;
    }
    cd_py_drain_releases();
    return n;
}

static void hook_py_batch(cd_run *run, int worker)
{
    gctx *g = cd_run_user(run);
    PyThreadState *ts;
    if (worker < 0 || worker >= CD_MAX_THREADS)
        return;
    ts = g_worker_ts[worker];
    if (ts == NULL) {
        ts = PyThreadState_New(g_interp);
        if (ts == NULL)
            return;
        g_worker_ts[worker] = ts;
    }
    PyEval_RestoreThread(ts);
    run_py_tasks(g, worker, WORKER_BATCH_NS);
    PyEval_SaveThread();
}

static void hook_worker_exit(int worker)
{
    PyThreadState *ts;
    if (worker < 0 || worker >= CD_MAX_THREADS)
        return;
    ts = g_worker_ts[worker];
    g_worker_ts[worker] = NULL;
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
}

static void atfork_child(void)
{
    /* The child's interpreter already dropped other threads' states. */
    for (int i = 0; i < CD_MAX_THREADS; i++)
        g_worker_ts[i] = NULL;
}

/*
 * Cancel the run with the pending exception (Ctrl-C, a callback that
 * raised), which wins over any task error (GIL held).
 */
static void fail_with_pending(gctx *g, const char *why)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v != NULL && tb != NULL)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(g->exc_type);
    Py_XDECREF(g->exc_value);
    Py_XDECREF(g->exc_tb);
    g->exc_type = t;
    g->exc_value = v;
    g->exc_tb = tb;
    g->pending_wins = 1;
    cd_run_cancel(g->run, CD_EPYTHON, why);
}

/* ------------------------------------------------------------ results */

/* Build the result for `keys` in the caller's nesting (new ref). */
static PyObject *pack(gctx *g, PyObject *keys, Py_ssize_t *pos)
{
    if (PyList_Check(keys)) {
        Py_ssize_t n = PyList_GET_SIZE(keys);
        PyObject *out = PyList_New(n);
        if (out == NULL)
            return NULL;
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject *v = pack(g, PyList_GET_ITEM(keys, k), pos);
            if (v == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, k, v);
        }
        return out;
    }
    return cd_pyplan_node_value(g->pp, g->pp->outputs[(*pos)++]);
}

static void fill_stats(gctx *g, StatsObject *s, int64_t t_start)
{
    cd_stats st;
    cd_run_stats(g->run, &st);
    s->done = st.done;
    s->total = st.total;
    s->bytes_held = st.bytes_held;
    s->peak_bytes = st.peak_bytes;
    s->spilled_bytes = st.spilled_bytes;
    s->elapsed = (double)(cd_now_ns() - t_start) * 1e-9;
}

/* Index of `name` (a new reference, stolen) among rr->names, added if new;
 * -1 with an exception set. */
static int32_t intern_name(rawrec *rr, PyObject *index, PyObject *name)
{
    PyObject *at;
    Py_ssize_t n;
    if (name == NULL)
        return -1;
    at = PyDict_GetItemWithError(index, name);
    if (at != NULL) {
        Py_DECREF(name);
        return (int32_t)PyLong_AsLong(at);
    }
    if (PyErr_Occurred())
        goto fail;
    n = PyList_GET_SIZE(rr->names);
    at = PyLong_FromSsize_t(n);
    if (at == NULL || PyDict_SetItem(index, name, at) < 0 || PyList_Append(rr->names, name) < 0) {
        Py_XDECREF(at);
        goto fail;
    }
    Py_DECREF(at);
    Py_DECREF(name);
    return (int32_t)n;
fail:
    Py_DECREF(name);
    return -1;
}

#define NAME_CACHE 256

/*
 * Take the finished run's records into stats->raw (GIL held, run over): the
 * array from the run, the keys from the plan (g->pp->keys is NULL after, so
 * call it only once nothing else needs the keys), and a name for each node,
 * in one pass over the nodes in order (records come in the order tasks
 * finished, and reading the nodes in that order costs a cache miss a
 * record).  0, or -1 with an exception set (stats then keeps no records).
 */
static int take_records(gctx *g, StatsObject *stats)
{
    struct { const void *src; int is_c; int32_t idx; } cache[NAME_CACHE];
    cd_pyplan *pp = g->pp;
    int32_t n = pp->plan->n;
    rawrec *rr;
    PyObject *index = NULL;
    int64_t nrec;

    stats_drop_records(stats);
    rr = calloc(1, sizeof(*rr));
    if (rr == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rr->rec = cd_run_take_records(g->run, &nrec, &rr->cap);
    rr->n = rr->rec != NULL ? nrec : 0;
    rr->names = PyList_New(0);
    index = PyDict_New();
    rr->name = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (rr->names == NULL || index == NULL || rr->name == NULL || (pp->keys == NULL && n > 0)) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto fail;
    }
    memset(cache, 0, sizeof(cache));
    for (int32_t i = 0; i < n; i++) {
        int32_t idx;
        int is_c;
        const void *src;
        size_t slot;
        if (pp->keys[i] == NULL) {
            /* a nested or literal node: its owner's key (before the keys
             * leave the plan, since key_of walks them) */
            PyObject *k = cd_pyplan_key_of(pp, i);
            Py_XINCREF(k);
            pp->keys[i] = k;
        }
        if (pp->plan->nodes[i].kind == CD_NODE_VALUE) {
            rr->name[i] = -1;
            continue;
        }
        src = cd_pyplan_name_source(pp, i, &is_c);
        slot = ((uintptr_t)src >> 4) % NAME_CACHE;
        if (src != NULL && cache[slot].src == src && cache[slot].is_c == is_c) {
            rr->name[i] = cache[slot].idx;
            continue;
        }
        idx = intern_name(rr, index, is_c ? PyUnicode_FromString((const char *)src)
                                          : cd_pyplan_task_name(pp, i));
        if (idx < 0)
            goto fail;
        rr->name[i] = idx;
        if (src != NULL) {
            cache[slot].src = src;
            cache[slot].is_c = is_c;
            cache[slot].idx = idx;
        }
    }
    Py_DECREF(index);
    rr->keys = pp->keys;
    rr->nkeys = n;
    pp->keys = NULL;
    stats->raw = rr;
    return 0;
fail:
    Py_XDECREF(index);
    rawrec_free(rr);
    return -1;
}

/*
 * Floating-point flags raised by the run's kernels: let cdask._errstate act
 * on them under the np.errstate of this thread (warn, raise...).  0 or -1.
 */
static int report_fpe(gctx *g)
{
    int32_t nodes[4];
    int flags = cd_run_fpe(g->run, nodes);
    PyObject *mod, *names, *r;
    if (flags == 0)
        return 0;
    names = PyTuple_New(4);
    if (names == NULL)
        return -1;
    for (int b = 0; b < 4; b++) {
        PyObject *n = (flags & (1 << b)) ? cd_pyplan_task_name(g->pp, nodes[b]) : NULL;
        if (n == NULL) {
            PyErr_Clear();
            n = Py_None;
            Py_INCREF(n);
        }
        PyTuple_SET_ITEM(names, b, n);
    }
    mod = PyImport_ImportModule("cdask._errstate");
    r = mod ? PyObject_CallMethod(mod, "report", "iO", flags, names) : NULL;
    Py_XDECREF(mod);
    Py_DECREF(names);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---------------------------------------------------------------- get */

static PyObject *kwarg(PyObject *kw, const char *name)
{
    PyObject *v;
    if (kw == NULL)
        return NULL;
    v = PyDict_GetItemString(kw, name);
    return v == Py_None ? NULL : v;
}

PyDoc_STRVAR(get_doc,
"get(dsk, keys, num_workers=None, *, callback=None, interval=0.1, stats=None,\n"
"    record=False, **kwargs)\n\n"
"Compute `keys` (a key or nested lists of keys) of the dask-format task\n"
"graph `dsk` on cdask's C scheduler and return their values in the same\n"
"nesting.  C kernel tasks run on worker threads without the GIL; Python\n"
"tasks run in batches.  Unknown keyword arguments are ignored, as dask\n"
"passes some.  `callback(stats)` runs on this thread every `interval`\n"
"seconds and at the end; `stats` (a cdask.Stats) is filled in.");

static PyObject *cd_get(PyObject *module, PyObject *args, PyObject *kw)
{
    PyObject *dsk, *keys, *o, *callback = NULL, *result = NULL, *spill_dir = NULL;
    StatsObject *stats = NULL;
    long long spill_limit = 0;
    int num_workers = 0, record = 0, ran = 0;
    double interval = 0.1;
    gctx g = {0};
    cd_run_opts opts;
    cd_err err;
    int64_t t_start = cd_now_ns(), next_cb;
    Py_ssize_t pos = 0;
    CD_UNUSED(module);

    if (!PyArg_ParseTuple(args, "OO|O:get", &dsk, &keys, &o)) {
        return NULL;
    }
    o = PyTuple_GET_SIZE(args) > 2 ? PyTuple_GET_ITEM(args, 2) : kwarg(kw, "num_workers");
    if (o != NULL && o != Py_None) {
        long v = PyLong_AsLong(o);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        if (v <= 0 || v > CD_MAX_THREADS) {
            PyErr_Format(PyExc_ValueError, "cdask.get: num_workers must be between 1 and %d, got %ld", CD_MAX_THREADS, v);
            return NULL;
        }
        num_workers = (int)v;
    }
    callback = kwarg(kw, "callback");
    if (callback != NULL && !PyCallable_Check(callback)) {
        PyErr_SetString(PyExc_TypeError, "cdask.get: callback must be callable");
        return NULL;
    }
    if ((o = kwarg(kw, "interval")) != NULL) {
        interval = PyFloat_AsDouble(o);
        if (interval == -1.0 && PyErr_Occurred())
            return NULL;
        if (!(interval > 0)) {
            PyErr_SetString(PyExc_ValueError, "cdask.get: interval must be > 0 seconds");
            return NULL;
        }
    }
    if ((o = kwarg(kw, "stats")) != NULL) {
        if (!PyObject_TypeCheck(o, &StatsType)) {
            PyErr_SetString(PyExc_TypeError, "cdask.get: stats must be a cdask.Stats");
            return NULL;
        }
        stats = (StatsObject *)o;
        Py_INCREF(stats);
    }
    if ((o = kwarg(kw, "record")) != NULL) {
        record = PyObject_IsTrue(o);
        if (record < 0)
            goto done;
    }
    if (stats == NULL && callback != NULL) {
        stats = (StatsObject *)PyObject_CallNoArgs((PyObject *)&StatsType);
        if (stats == NULL)
            goto done;
    }
    if ((o = kwarg(kw, "spill_limit")) != NULL && o != Py_None) {
        spill_limit = PyLong_AsLongLong(o);
        if (spill_limit == -1 && PyErr_Occurred())
            goto done;
        if ((o = kwarg(kw, "spill_dir")) == NULL || o == Py_None) {
            PyErr_SetString(PyExc_ValueError, "cdask.get: spill_limit needs spill_dir");
            goto done;
        }
        if (!PyUnicode_FSConverter(o, &spill_dir))
            goto done;
    }

    {
        int owned = 0;
        PyObject *d = cd_graph_as_dict(dsk, &owned);
        if (d == NULL)
            goto done;
        g.pp = cd_pyplan_build(d, keys, 0);
        if (owned)
            Py_DECREF(d);
    }
    if (g.pp == NULL)
        goto done;
    opts.num_workers = num_workers;
    opts.record = record;
    opts.caller_runs_c = cd_pool_current_worker() >= 0;
    opts.spill_limit = spill_limit > 0 ? (int64_t)spill_limit : 0;
    opts.spill_dir = spill_dir != NULL ? PyBytes_AS_STRING(spill_dir) : NULL;
    g.run = cd_run_new(g.pp->plan, &opts, &err);
    if (g.run == NULL) {
        cd_raise(&err);
        goto done;
    }
    cd_run_set_user(g.run, &g);
    g.pp->run = g.run;
    cd_run_start(g.run, &err);
    next_cb = t_start + (int64_t)(interval * 1e9);

    for (;;) {
        int w;
        run_py_tasks(&g, -1, SLICE_NS);
        if (stats != NULL)
            fill_stats(&g, stats, t_start);
        if (callback != NULL && cd_now_ns() >= next_cb && !cd_run_failed(g.run)) {
            PyObject *r = PyObject_CallOneArg(callback, (PyObject *)stats);
            next_cb = cd_now_ns() + (int64_t)(interval * 1e9);
            if (r == NULL)
                fail_with_pending(&g, "the progress callback raised");
            Py_XDECREF(r);
        }
        Py_BEGIN_ALLOW_THREADS
        if (opts.caller_runs_c)
            cd_run_help(g.run, cd_now_ns() + SLICE_NS);
        w = cd_run_wait(g.run, SLICE_NS);
        Py_END_ALLOW_THREADS
        if (w == CD_WAIT_FINISHED)
            break;
        if (PyErr_CheckSignals() < 0)
            fail_with_pending(&g, "interrupted");
    }
    cd_py_drain_releases();
    ran = 1;
    if (stats != NULL) {
        fill_stats(&g, stats, t_start);
        stats_drop_records(stats);
        if (!record && (stats->records = PyList_New(0)) == NULL)
            goto done;
    }
    if (cd_run_failed(g.run)) {
        int32_t node;
        const cd_err *e = cd_run_error(g.run, &node);
        if ((e->code == CD_EPYTHON || g.pending_wins) && g.exc_type != NULL) {
            PyErr_Restore(g.exc_type, g.exc_value, g.exc_tb);
            g.exc_type = g.exc_value = g.exc_tb = NULL;
        } else {
            PyObject *key = cd_pyplan_key_of(g.pp, node), *t, *v, *tb;
            cd_raise(e);
            PyErr_Fetch(&t, &v, &tb);
            PyErr_NormalizeException(&t, &v, &tb);
            if (v != NULL && key != NULL) {
                PyObject *note = PyUnicode_FromFormat("cdask: raised by the C kernel task of key %R", key);
                PyObject *r = note ? PyObject_CallMethod(v, "add_note", "O", note) : NULL;
                Py_XDECREF(note);
                if (r == NULL)
                    PyErr_Clear();
                Py_XDECREF(r);
            }
            PyErr_Restore(t, v, tb);
        }
        goto done;
    }
    if (report_fpe(&g) < 0)
        goto done;
    if (callback != NULL) {
        PyObject *r = PyObject_CallOneArg(callback, (PyObject *)stats);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
    }
    result = pack(&g, keys, &pos);

done:
    if (ran && record && stats != NULL) {
        /* last, since it takes the keys from the plan: also after a failure
         * or a Ctrl-C, so a trace shows what ran until then */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (take_records(&g, stats) < 0) {
            if (t != NULL) {
                PyErr_Clear();    /* the run's own error wins */
            } else {
                Py_CLEAR(result);
            }
        }
        if (t != NULL)
            PyErr_Restore(t, v, tb);
    }
    if (g.run != NULL) {
        Py_BEGIN_ALLOW_THREADS
        cd_run_free(g.run);
        Py_END_ALLOW_THREADS
    }
    if (g.pp != NULL)
        cd_pyplan_free(g.pp);
    cd_py_drain_releases();
    Py_XDECREF(g.exc_type);
    Py_XDECREF(g.exc_value);
    Py_XDECREF(g.exc_tb);
    Py_XDECREF(stats);
    Py_XDECREF(spill_dir);
    return result;
}

/* plan_timing(dsk, keys): (seconds to compile, seconds to free) - for
 * measuring the compiler alone (benchmarks). */
static PyObject *cd_plan_timing(PyObject *m, PyObject *args)
{
    PyObject *dsk, *keys, *d;
    int64_t t0, t1, t2;
    int owned = 0;
    cd_pyplan *pp;
    CD_UNUSED(m);
    if (!PyArg_ParseTuple(args, "OO:plan_timing", &dsk, &keys))
        return NULL;
    t0 = cd_now_ns();
    d = cd_graph_as_dict(dsk, &owned);
    if (d == NULL)
        return NULL;
    pp = cd_pyplan_build(d, keys, 0);
    if (owned)
        Py_DECREF(d);
    if (pp == NULL)
        return NULL;
    t1 = cd_now_ns();
    cd_pyplan_free(pp);
    t2 = cd_now_ns();
    return Py_BuildValue("(dd)", (t1 - t0) * 1e-9, (t2 - t1) * 1e-9);
}

static PyObject *cd_note_fpe(PyObject *m, PyObject *arg)
{
    long bits = PyLong_AsLong(arg);
    CD_UNUSED(m);
    if (bits == -1 && PyErr_Occurred())
        return NULL;
    if (!tls_in_task)
        Py_RETURN_FALSE;
    tls_py_fpe |= (int)(bits & 15);
    Py_RETURN_TRUE;
}

static PyObject *cd_shutdown(PyObject *m, PyObject *noargs)
{
    CD_UNUSED(m);
    CD_UNUSED(noargs);
    Py_BEGIN_ALLOW_THREADS
    cd_pool_shutdown();
    Py_END_ALLOW_THREADS
    cd_py_drain_releases();
    Py_RETURN_NONE;
}

static PyObject *cd_set_default_workers(PyObject *m, PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    CD_UNUSED(m);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n <= 0 || n > CD_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "num_workers must be between 1 and %d, got %ld", CD_MAX_THREADS, n);
        return NULL;
    }
    cd_pool_set_default_workers((int)n);
    Py_RETURN_NONE;
}

static PyObject *cd_pool_info(PyObject *m, PyObject *noargs)
{
    CD_UNUSED(m);
    CD_UNUSED(noargs);
    return Py_BuildValue("{s:i,s:i}", "threads", cd_pool_size(), "default_workers",
                         cd_pool_default_workers());
}

static PyMethodDef sched_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cd_get, METH_VARARGS | METH_KEYWORDS, get_doc},
    {"shutdown", cd_shutdown, METH_NOARGS, "Stop and join the worker threads."},
    {"plan_timing", cd_plan_timing, METH_VARARGS,
     "_plan_timing(dsk, keys) -> (compile seconds, free seconds): the plan compiler alone."},
    {"note_fpe", cd_note_fpe, METH_O,
     "Report floating-point flags (NumPy's bits) raised by the Python task running on this "
     "thread; returns False when no cdask task is running here."},
    {"set_default_workers", cd_set_default_workers, METH_O, "Set the default number of workers."},
    {"pool_info", cd_pool_info, METH_NOARGS, "Threads in the pool and the default worker count."},
    {NULL, NULL, 0, NULL}
};

int cd_sched_py_init(PyObject *module)
{
    static int atfork_done = 0;
    g_interp = PyInterpreterState_Get();
    cd_hooks.py_batch = hook_py_batch;
    cd_hooks.worker_exit = hook_worker_exit;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, atfork_child);
        atfork_done = 1;
    }
    if (PyType_Ready(&StatsType) < 0)
        return -1;
    Py_INCREF(&StatsType);
    if (PyModule_AddObject(module, "Stats", (PyObject *)&StatsType) < 0) {
        Py_DECREF(&StatsType);
        return -1;
    }
    /* cdask._core.MAX_THREADS: the cap on num_workers (core/pool.h) */
    if (PyModule_AddIntConstant(module, "MAX_THREADS", CD_MAX_THREADS) < 0)
        return -1;
    return PyModule_AddFunctions(module, sched_methods);
}
