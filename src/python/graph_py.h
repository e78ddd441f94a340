/*
 * graph_py.h - the Python type cdask._core.Graph: a task graph in dask's
 * format (a dict of key -> task) with a cached dependency analysis, also a
 * collections.abc.Mapping (registered, not inherited).  GIL held.
 * Implemented in graph_py.c, which uses the compiler (plan_py.h) for its
 * analysis; the compiler itself knows nothing of Graph objects.
 *
 * Other glue files only need to recognise a Graph and reach its dict; they
 * do that through cd_graph_as_dict, so the object layout stays private to
 * graph_py.c.
 */
#ifndef CD_GRAPH_PY_H
#define CD_GRAPH_PY_H

#include "python/cdpy.h"

extern PyTypeObject cd_GraphType;
#define cd_Graph_Check(o) PyObject_TypeCheck((o), &cd_GraphType)

/* The dict held by a Graph, or obj itself if it is a dict; borrowed.  NULL
 * with TypeError for anything else that is not a Mapping (a Mapping is copied
 * into a new dict: then *owned is set and the caller must DECREF). */
PyObject *cd_graph_as_dict(PyObject *obj, int *owned);

#endif /* CD_GRAPH_PY_H */
