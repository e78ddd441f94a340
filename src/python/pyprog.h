/*
 * pyprog.h - the compiled form of a plan's Python tasks, private to the two
 * files that share it: plan_py.c writes it (the compiler), pytask_py.c runs
 * it (the executor).  GIL held.
 *
 * Each Python node gets a little postfix program of (opcode, argument)
 * pairs in one code array: NODE i (push the value of node i), LIT k (push
 * literal k of the node's list), CALL n (pop a callable and n args, push the
 * result), LIST n, SPEC n (a dask task-spec object called with a dict of n
 * key/value pairs).  A C node whose inputs are not all arrays keeps its
 * Kernel object in `lits` and is called from Python instead.
 */
#ifndef CD_PYPROG_H
#define CD_PYPROG_H

#include "python/plan_py.h"

enum { OP_NODE = 1, OP_LIT, OP_CALL, OP_LIST, OP_SPEC };

typedef struct pyprog {
    int64_t off;        /* into priv->code */
    int32_t len;
    int32_t maxstack;
    PyObject *lits;     /* list of literals (strong) */
} pyprog;

/*
 * The key table is laid out like CPython's compact dicts: the open-addressed
 * part holds only int32 node numbers (-1: empty), and each node's hash sits
 * in an array indexed by node.  A million keys then take a 16 MiB table that
 * mostly stays in cache, instead of 64 MiB of (hash, node) slots that miss on
 * nearly every probe - the lookups are most of what compiling a graph costs.
 */

typedef struct priv {
    /* key table: node numbers by key; the keys live in pp->keys */
    int32_t *slots;
    size_t nslots, used;
    Py_hash_t *hashes;   /* node -> hash of its key (keyed nodes only) */
    /* programs of Python nodes */
    int32_t *code;
    int64_t ncode, code_cap;
    pyprog *progs;       /* indexed by node number (grown with the plan) */
    int32_t progs_cap;
    int32_t *owner;      /* anonymous node -> keyed node it is nested in */
    int32_t keys_cap;
    /* compile scratch */
    int32_t *args;
    int64_t nargs_tmp, args_cap;
    int32_t *todo;
    PyObject **todo_task;   /* borrowed from the graph dict */
    int64_t ntodo, todo_cap, todo_task_cap;
    /* literals of C tasks by identity: one VALUE node per object */
    struct { PyObject *obj; int32_t node; } *lit;
    size_t nlit, lit_used;
    /* anonymous Python tasks nested in C tasks, parsed after the current
     * task so that programs are never interleaved in `code` */
    int32_t *dnode, *downer;
    PyObject **dtask;    /* strong */
    int64_t ndefer, dcap_n, dcap_o, dcap_t;
    int flags;
    PyObject *spec_type; /* dask._task_spec.GraphNode, or NULL */
    PyObject *keep;      /* objects made while compiling that nodes borrow from */
} priv;

#define PRIV(pp) ((priv *)(pp)->priv)

#endif /* CD_PYPROG_H */
