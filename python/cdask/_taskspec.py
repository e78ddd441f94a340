"""Turn dask task-spec objects that call a cdask Kernel into legacy tuples.

dask's newer graphs hold ``Task`` objects instead of ``(callable, *args)``
tuples.  cdask runs such objects as Python tasks through their own
``__call__``, which is always correct; but a ``Task`` whose function is a
``cdask.Kernel`` should run on a C worker without the GIL, so the plan
compiler asks :func:`kernel_task_as_tuple` for the equivalent legacy tuple
and compiles that instead.
"""

from ._core import Kernel


def _arg(a):
    # Returns the legacy form of one argument, or raises LookupError when
    # there is none (keyword arguments, unknown containers...).
    from dask._task_spec import DataNode, List, Task, TaskRef

    if isinstance(a, TaskRef):
        return a.key
    if isinstance(a, DataNode):
        return a.value
    if isinstance(a, List):
        return [_arg(x) for x in a.args]
    if isinstance(a, Task):
        if a.kwargs:
            raise LookupError
        return (a.func,) + tuple(_arg(x) for x in a.args)
    if isinstance(a, (list, tuple, dict, set)):
        # containers in task-spec args are themselves wrapped by dask; a
        # plain one here is a literal only if it holds no references
        raise LookupError
    return a


def kernel_task_as_tuple(task):
    """``(kernel, *args)`` for a Task calling a Kernel, else None."""
    from dask._task_spec import Task

    if type(task) is not Task or not isinstance(task.func, Kernel) or task.kwargs:
        return None
    try:
        return (task.func,) + tuple(_arg(a) for a in task.args)
    except LookupError:
        return None
