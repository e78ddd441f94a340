/*
 * plan.h - plans: a compiled task graph as flat arrays of nodes and
 * arguments.  Pure C: no Python.h.  Implemented in plan.c; the analysis that
 * completes a plan (dependencies, dependents, cycles, priorities) is graph.c
 * (graph.h), and the run is sched.c (sched.h).
 *
 * A plan is an array of nodes.  Node i is one of
 *   CD_NODE_VALUE  a value known before the run (a literal): chunk and/or pyval set
 *   CD_NODE_C      a C kernel called on the values of its args, without the GIL
 *   CD_NODE_PY     a Python task; the glue runs it through the py_batch hook
 * Each node lists its args: node indices, in order, repeats allowed.  For a C
 * node they are the kernel's inputs; for a Python node they are the nodes its
 * program reads.
 *
 * Legal call order: cd_plan_new, cd_plan_add_node/cd_plan_set_args/
 * cd_plan_add_output any number of times, cd_plan_finalize (graph.h) once,
 * then any number of runs one after the other (cd_run_new .. cd_run_free,
 * sched.h), cd_plan_free.
 *
 * Threads.  A plan is built and finalized by one thread.  During a run the
 * fields marked "run state" in cd_node are written by the threads of the
 * run under the pool's lock (cd_pool.mu, see sched.c); everything else is
 * immutable from cd_plan_finalize to cd_plan_free.
 */
#ifndef CD_PLAN_H
#define CD_PLAN_H

#include "core/kernel.h"

enum { CD_NODE_VALUE = 0, CD_NODE_C = 1, CD_NODE_PY = 2 };

enum {
    CD_NF_OUTPUT = 1,        /* requested by the caller: kept to the end */
    CD_NF_C_CONSUMER = 2,    /* some C node reads it: needs a chunk */
    CD_NF_PY_CONSUMER = 4,   /* some Python node reads it */
};

/*
 * What a C node calls: kept beside the nodes rather than in them, so that a
 * node is one 64-byte cache line (finalize, the run and the frees walk a
 * million of them).
 */
typedef struct cd_kcall {
    const cd_kernel_desc *kernel;
    const void *params;                  /* kernel parameters (kept alive by the glue) */
    size_t params_size;
} cd_kcall;

typedef struct cd_node {
    /* const: fixed by cd_plan_add_node / cd_plan_set_args / cd_plan_finalize,
     * never written during a run */
    uint8_t kind;
    uint8_t flags;
    int32_t nargs, ndeps, ndnts;
    int32_t arg_off, dep_off, dnt_off;   /* into plan->args, ->deps, ->dnts (< 2^31 args a plan) */
    int32_t priority;                    /* unique; smaller runs first */
    /* run state: set by cd_plan_finalize for the first run, reset by
     * cd_run_new for later ones (no run in progress then) */
    int32_t waiting;                     /* mu: dependencies not yet done; never < 0 */
    int32_t refs;                        /* mu: dependents not yet done (+1 for outputs); never < 0 */
    /* The value.  Written without the lock only by the one thread running
     * the node's task, before cd_run_finish publishes it under mu; read by
     * consumers, which become ready only after that (the mutex orders the
     * two); taken away (released) under mu when refs reaches 0. */
    cd_chunk *chunk;                     /* value as a chunk, or NULL */
    void *pyval;                         /* value as a Python object (owned; GIL to
                                            touch it), or NULL */
    int64_t nbytes;                      /* bytes accounted for the value (mu once published) */
} cd_node;

/* Everything in a plan but the nodes' run state and values (see cd_node)
 * is written by the one thread that builds and finalizes it and is constant
 * during runs; fresh and init_* are handed over by cd_run_new, before the
 * run starts. */
typedef struct cd_plan {
    cd_node *nodes;                       /* 64-byte aligned */
    cd_kcall *kcalls;                     /* by node: C nodes only */
    int32_t n, cap;
    int32_t *args; int64_t nargs, args_cap;
    int32_t *deps;                        /* unique deps, filled by finalize */
    int32_t *dnts;                        /* dependents, filled by finalize */
    int32_t *outputs; int32_t noutputs, outputs_cap;
    int32_t *order;                       /* nodes sorted by priority, filled by finalize */
    int32_t ntasks;                       /* nodes that run (not VALUE) */
    int finalized;
    /* Left by finalize for the first run: the run state of every node is
     * already reset (fresh), and the C and Python tasks ready at the start,
     * in priority order (taken over by cd_run_new). */
    int fresh;
    int32_t *init_c, *init_py;
    int32_t ninit_c, ninit_py;
    int32_t nsinks;                       /* tasks no one reads that are not outputs */
    int values_released;                  /* the glue released every value (cd_plan_free skips them) */
} cd_plan;

/* A new empty plan, or NULL with err set (CD_ENOMEM). */
cd_plan *cd_plan_new(cd_err *err);
/* Free a plan and the values its nodes still hold (call with the GIL if any
 * pyval may be set, unless the glue released them: values_released).
 * NULL is allowed.  Never fails. */
void cd_plan_free(cd_plan *p);
/* Make room for n nodes and nargs args in all (an optional speed-up).  0, or
 * CD_ENOMEM with err set and the plan unchanged (still usable). */
int cd_plan_reserve(cd_plan *p, int32_t n, int64_t nargs, cd_err *err);
/* Append a node of `kind` with no args; returns its index, or a negative
 * code with err set (CD_ENOMEM, CD_EOVERFLOW past 2^30 nodes, CD_EINTERNAL
 * after finalize) and the plan unchanged. */
int32_t cd_plan_add_node(cd_plan *p, int kind, cd_err *err);
/* Set the args of node i (once; args are copied).  0, or a negative code
 * with err set (CD_EINTERNAL for a bad node, CD_ENOMEM, CD_EOVERFLOW) and
 * the node's args unchanged. */
int cd_plan_set_args(cd_plan *p, int32_t i, int32_t nargs, const int32_t *args, cd_err *err);
/* Request node i's value (kept to the end of a run).  0, or CD_EINTERNAL
 * (bad node) / CD_ENOMEM with err set and the outputs unchanged. */
int cd_plan_add_output(cd_plan *p, int32_t i, cd_err *err);
static inline const int32_t *cd_plan_node_deps(const cd_plan *p, int32_t i)
{
    return p->deps + p->nodes[i].dep_off;
}
static inline const int32_t *cd_plan_node_dnts(const cd_plan *p, int32_t i)
{
    return p->dnts + p->nodes[i].dnt_off;
}
static inline const int32_t *cd_plan_node_args(const cd_plan *p, int32_t i)
{
    return p->args + p->nodes[i].arg_off;
}
/* What C node i calls (set it after cd_plan_add_node). */
static inline cd_kcall *cd_plan_kcall(const cd_plan *p, int32_t i)
{
    return &p->kcalls[i];
}

#endif /* CD_PLAN_H */
