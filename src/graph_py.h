/*
 * graph_py.h - the Python type cdask._core.Graph: a task graph in dask's
 * format (a dict of key -> task) with a cached dependency analysis, also a
 * collections.abc.Mapping (registered, not inherited).  GIL held.
 *
 * Other glue files only need to recognise a Graph and reach its dict; they
 * do that through cd_graph_as_dict (declared in plan_py.h, defined in
 * graph_py.c), so the object layout stays private to graph_py.c.
 */
#ifndef CD_GRAPH_PY_H
#define CD_GRAPH_PY_H

#include "cdpy.h"

extern PyTypeObject cd_GraphType;
#define cd_Graph_Check(o) PyObject_TypeCheck((o), &cd_GraphType)

#endif /* CD_GRAPH_PY_H */
