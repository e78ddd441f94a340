"""A tiny pure-Python reference executor for graphs in dask's legacy format.

Used by the tests as the oracle that cdask.get is compared against.  It
follows the rules of docs/api-core.md and dask:

* a task is a tuple whose first element is callable: ``(func, *args)``;
* a list is recursed into (and evaluates to a list);
* a hashable value that is a key of the graph is replaced by that key's value
  (so a value that is a key is an alias);
* everything else is a literal and is passed through unchanged.

Evaluation is recursive with a memo, so each key is computed once.  Deep
chains are evaluated iteratively (dependencies first, in a topological order
found with an explicit stack) so the recursion depth stays bounded by the
nesting of a single task, not the length of the graph.
"""

__all__ = ["istask", "iskey", "dependencies", "toposort", "get", "find_cycle",
           "flatten_keys"]


def istask(x):
    return type(x) is tuple and len(x) > 0 and callable(x[0])


def iskey(x, dsk):
    try:
        return x in dsk
    except TypeError:  # unhashable
        return False


def _collect(x, dsk, out):
    if istask(x):
        for a in x[1:]:
            _collect(a, dsk, out)
    elif type(x) is list:
        for a in x:
            _collect(a, dsk, out)
    elif iskey(x, dsk):
        out.add(x)


def dependencies(dsk, key=None):
    """Keys the task of ``key`` refers to; without key, a dict for every key."""
    if key is not None:
        out = set()
        _collect(dsk[key], dsk, out)
        return out
    return {k: dependencies(dsk, k) for k in dsk}


def dependents(dsk):
    deps = dependencies(dsk)
    out = {k: set() for k in dsk}
    for k, ds in deps.items():
        for d in ds:
            out[d].add(k)
    return out


def find_cycle(dsk):
    """A list of keys forming a cycle (each depends on the next, the last on the
    first), or None."""
    deps = dependencies(dsk)
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(dsk, WHITE)
    for root in dsk:
        if colour[root] != WHITE:
            continue
        path = [root]
        iters = [iter(deps[root])]
        colour[root] = GREY
        while iters:
            for d in iters[-1]:
                if colour[d] == GREY:
                    return path[path.index(d):]
                if colour[d] == WHITE:
                    colour[d] = GREY
                    path.append(d)
                    iters.append(iter(deps[d]))
                    break
            else:
                colour[path.pop()] = BLACK
                iters.pop()
    return None


def toposort(dsk, keys=None):
    """Keys (all, or those ``keys`` need) with every key after its dependencies."""
    deps = dependencies(dsk)
    roots = list(dsk) if keys is None else list(keys)
    seen = set()
    order = []
    for root in roots:
        if root in seen:
            continue
        stack = [(root, iter(deps[root]))]
        seen.add(root)
        while stack:
            k, it = stack[-1]
            for d in it:
                if d not in seen:
                    seen.add(d)
                    stack.append((d, iter(deps[d])))
                    break
            else:
                stack.pop()
                order.append(k)
    return order


def flatten_keys(keys):
    if type(keys) is list:
        for k in keys:
            yield from flatten_keys(k)
    else:
        yield keys


def _eval(x, dsk, cache):
    if istask(x):
        func, args = x[0], x[1:]
        return func(*[_eval(a, dsk, cache) for a in args])
    if type(x) is list:
        return [_eval(a, dsk, cache) for a in x]
    if iskey(x, dsk):
        return cache[x]
    return x


def get(dsk, keys, cache=None):
    """Compute ``keys`` (a key or a nested list of keys) of graph ``dsk``."""
    if cache is None:
        cache = {}
    wanted = list(flatten_keys(keys))
    for k in wanted:
        if not iskey(k, dsk):
            raise KeyError(k)
    if find_cycle(dsk) is not None:
        raise ValueError("cycle: %r" % (find_cycle(dsk),))
    for k in toposort(dsk, wanted):
        if k not in cache:
            cache[k] = _eval(dsk[k], dsk, cache)

    def build(ks):
        if type(ks) is list:
            return [build(k) for k in ks]
        return cache[ks]

    return build(keys)
