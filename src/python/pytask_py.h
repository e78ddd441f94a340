/*
 * pytask_py.h - running the Python nodes of a compiled plan (plan_py.h) and
 * handing node values to Python.  GIL held.  Implemented in pytask_py.c.
 */
#ifndef CD_PYTASK_PY_H
#define CD_PYTASK_PY_H

#include "python/plan_py.h"

/*
 * Run Python node i of the plan (or C node i through its Kernel's Python
 * call, when an input is not one array): sets the node's value (pyval,
 * and a chunk when a C node reads it).  0, or -1 with an exception set and
 * the node's value unchanged.
 */
int cd_pyplan_exec_py(cd_pyplan *pp, int32_t i);

/*
 * The value of node i as a Python object (new reference): its pyval, made
 * once from its chunk (an ndarray viewing it, or a NumPy scalar for a 0-d
 * chunk) and kept.  NULL with an exception set when the node has no value
 * (RuntimeError) or the conversion fails.
 */
PyObject *cd_pyplan_node_value(cd_pyplan *pp, int32_t i);

#endif /* CD_PYTASK_PY_H */
