/*
 * plan_py.h - compiling a dask-format graph (a dict of tasks, dask task-spec
 * objects) into a cd_plan.  Needs the GIL.  Implemented in plan_py.c; the
 * Python tasks are run by pytask_py.c (pytask_py.h).
 *
 * Dask's rules decide what an argument is: a tuple whose first element is
 * callable is a task; a list is a list of arguments; a hashable object that
 * is a key of the graph is a reference to that key's value; anything else is
 * a literal.  A graph value that is a key is an alias of it.  dask task-spec
 * objects (dask._task_spec.GraphNode subclasses) run as Python tasks through
 * their own __call__.
 *
 * In run mode (flags 0) the walk starts from the requested keys, so the plan
 * holds only what they need (culling); a task whose callable is a cdask
 * Kernel becomes a C node; a Kernel task nested in another task becomes an
 * anonymous C node of its own; literals read by C nodes become VALUE nodes
 * converted to chunks before the run.  In analysis mode (CD_PLAN_ANALYZE)
 * every key of the graph becomes exactly one node, in the graph's order,
 * nothing is split or converted, and a cycle is reported in pp->cycle_node
 * instead of raising.
 */
#ifndef CD_PLAN_PY_H
#define CD_PLAN_PY_H

#include "python/cdpy.h"
#include "core/sched.h"

enum { CD_PLAN_ANALYZE = 1 };

typedef struct cd_pyplan {
    cd_plan *plan;
    PyObject *graph;        /* the dict compiled (strong) */
    PyObject **keys;        /* node -> key (strong) or NULL for anonymous/literal nodes */
    int32_t *outputs;       /* node of each requested key, in request order */
    Py_ssize_t noutputs;
    int32_t cycle_node;     /* analysis mode: a node on a cycle, or -1 */
    void *priv;             /* programs of Python nodes, literals... (pyprog.h) */
    struct cd_run *run;     /* the run using the plan (set by sched_py.c), or NULL:
                               Python results are moved into spillable chunks
                               when it is near its spill limit */
} cd_pyplan;

/*
 * Compile.  `dsk` is a dict (a cdask Graph or another Mapping is turned into
 * one first by cd_graph_as_dict, graph_py.h); `outputs` a sequence of keys
 * (ignored in analysis mode).  Returns NULL with an exception set:
 * KeyError naming a requested key that is missing, TypeError for an
 * unhashable key, ValueError naming a key on a cycle, TypeError for a literal
 * a C kernel cannot take.
 */
cd_pyplan *cd_pyplan_build(PyObject *dsk, PyObject *outputs, int flags);
void cd_pyplan_free(cd_pyplan *pp);   /* GIL held */

/* The key naming node i (its own, or the key its task is nested in);
 * borrowed, NULL for none. */
PyObject *cd_pyplan_key_of(cd_pyplan *pp, int32_t i);
/* A short name for node i's work: kernel name or callable name (new ref). */
PyObject *cd_pyplan_task_name(cd_pyplan *pp, int32_t i);
/* What that name is made from, for caching it: a kernel's display name (a C
 * string, *is_c = 1) or a Python task's callable (a borrowed PyObject *);
 * NULL when the node has neither.  Nodes with the same source have the same
 * name. */
const void *cd_pyplan_name_source(cd_pyplan *pp, int32_t i, int *is_c);

#endif /* CD_PLAN_PY_H */
