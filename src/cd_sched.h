/*
 * cd_sched.h - plans (compiled task graphs) and the scheduler that runs them on
 * a pthread pool.  Pure C: no Python.h.
 *
 * A plan is an array of nodes.  Node i is one of
 *   CD_NODE_VALUE  a value known before the run (a literal): chunk and/or pyval set
 *   CD_NODE_C      a C kernel called on the values of its args, without the GIL
 *   CD_NODE_PY     a Python task; the glue runs it through the py_batch hook
 * Each node lists its args: node indices, in order, repeats allowed.  For a C
 * node they are the kernel's inputs; for a Python node they are the nodes its
 * program reads.  cd_plan_finalize derives unique dependencies, dependents,
 * finds cycles and fixes a static priority: the post-order of a depth-first
 * walk from the outputs, so that the inputs of one consumer are computed one
 * after the other and each intermediate is released soon after it is made
 * (the talk's "run tasks that free resources").  Priorities are unique, so the
 * ready heap never needs its last-in-first-out tie break.
 *
 * Legal call order: cd_plan_new, cd_plan_add_node/cd_plan_set_args/
 * cd_plan_set_output any number of times, cd_plan_finalize once, then any
 * number of runs one after the other (cd_run_new .. cd_run_free), cd_plan_free.
 *
 * A run is executed by the pool's workers and by its caller: the caller
 * waits in slices (cd_run_wait), runs Python tasks when asked, and, when it
 * is itself a pool worker (a task that calls get), runs C tasks too, so that
 * nested runs cannot deadlock the pool.
 */
#ifndef CD_CD_SCHED_H
#define CD_CD_SCHED_H

#include "kernel.h"

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
    uint8_t kind;
    uint8_t flags;
    int32_t nargs, ndeps, ndnts;
    int32_t arg_off, dep_off, dnt_off;   /* into plan->args, ->deps, ->dnts (< 2^31 args a plan) */
    int32_t priority;                    /* unique; smaller runs first */
    /* run state: set by cd_plan_finalize for the first run, reset by cd_run_new for later ones */
    int32_t waiting;                     /* dependencies not yet done */
    int32_t refs;                        /* dependents not yet done (+1 for outputs) */
    cd_chunk *chunk;                     /* value as a chunk, or NULL */
    void *pyval;                         /* value as a Python object (owned), or NULL */
    int64_t nbytes;                      /* bytes accounted for the value */
} cd_node;

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

cd_plan *cd_plan_new(cd_err *err);
void cd_plan_free(cd_plan *p);   /* frees values too: call with the GIL if any pyval may be set */
/* Make room for n nodes and nargs args in all (an optional speed-up). */
int cd_plan_reserve(cd_plan *p, int32_t n, int64_t nargs, cd_err *err);
/* Append a node of `kind`; returns its index or a negative code. */
int32_t cd_plan_add_node(cd_plan *p, int kind, cd_err *err);
/* Set the args of node i (once). */
int cd_plan_set_args(cd_plan *p, int32_t i, int32_t nargs, const int32_t *args, cd_err *err);
int cd_plan_add_output(cd_plan *p, int32_t i, cd_err *err);
/*
 * Check args, derive deps and dependents, consumer flags and priorities.
 * On a cycle returns CD_EVALUE and stores a node on the cycle in *cycle_node
 * (when cycle_node is not NULL).
 */
int cd_plan_finalize(cd_plan *p, int32_t *cycle_node, cd_err *err);
/* Dependency order of all nodes (a topological order by priority). */
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

/* ---- runs ---- */

typedef struct cd_record {
    int32_t node;
    int32_t worker;     /* pool worker index, -1 for the calling thread */
    int64_t start_ns, end_ns;
    int64_t nbytes;
} cd_record;

typedef struct cd_stats {
    int64_t done, total;           /* tasks */
    int64_t bytes_held, peak_bytes;
    int64_t running;
    int64_t spilled_bytes;         /* intermediates moved to disk (spill_limit) */
} cd_stats;

typedef struct cd_run_opts {
    int num_workers;      /* <= 0: the pool's default */
    int record;           /* keep one cd_record per task */
    int caller_runs_c;    /* the caller also runs C tasks (nested get, or no pool) */
    int64_t spill_limit;  /* > 0: when the chunks held exceed it, the oldest held
                             intermediates of 1 MiB or more are spilled to disk
                             (cd_chunk_spill) until they fit again */
    const char *spill_dir;  /* where (kept alive by the caller during the run) */
} cd_run_opts;

typedef struct cd_run cd_run;

/* Should a new value of `nbytes` be kept in a chunk that can be spilled?
 * True when the run spills and holds more than half its spill limit. */
int cd_run_spill_pressure(cd_run *r, int64_t nbytes);

/*
 * Hooks the glue installs.  py_batch is called on a pool worker, without the
 * GIL and without cdask locks, when `run` has ready Python tasks; it takes
 * the GIL, runs ready tasks (cd_run_pop_py / cd_run_finish) for a bounded
 * time and returns having released the GIL.  worker_exit is called by each
 * worker thread before it ends (to drop its Python thread state).
 */
typedef struct cd_sched_hooks {
    void (*py_batch)(cd_run *run, int worker);
    void (*worker_exit)(int worker);
} cd_sched_hooks;
extern cd_sched_hooks cd_hooks;

/* Make a run of a finalized plan (resets the plan's run state).  NULL on error. */
cd_run *cd_run_new(cd_plan *p, const cd_run_opts *opts, cd_err *err);
/* Hand the run to the pool; ready tasks start at once. */
int cd_run_start(cd_run *r, cd_err *err);

enum { CD_WAIT_TIMEOUT = 0, CD_WAIT_FINISHED = 1, CD_WAIT_PY = 2 };
/*
 * Caller side: block for at most timeout_ns until the run has finished
 * (every task done, or it failed and nothing is running any more), or a
 * Python task is ready.  Never called with the GIL held.
 */
int cd_run_wait(cd_run *r, int64_t timeout_ns);
/*
 * Caller side when caller_runs_c: run C tasks of this run until none is
 * ready or deadline_ns passes.  Returns the number run.
 */
int cd_run_help(cd_run *r, int64_t deadline_ns);

/* Pop the most urgent ready Python task; -1 if none (or the run failed). */
int32_t cd_run_pop_py(cd_run *r);
/*
 * Mark node i finished.  On success (status 0) its value must be set
 * (node->chunk and/or node->pyval, node->nbytes).  On failure the run fails
 * (the first failure wins, err is copied) and stops handing out tasks.
 * Values no longer needed are released (through cd_chunk_owner_release for
 * Python objects).
 */
void cd_run_finish(cd_run *r, int32_t i, int status, const cd_err *err, int64_t start_ns, int worker);
/* Fail the run from outside a task (Ctrl-C, a callback that raised). */
void cd_run_cancel(cd_run *r, int code, const char *msg);

int cd_run_failed(const cd_run *r);
/* First error and the node it came from (-1: not a task). */
const cd_err *cd_run_error(const cd_run *r, int32_t *node);
void cd_run_stats(cd_run *r, cd_stats *out);
/* Records of finished tasks; valid until cd_run_free. */
const cd_record *cd_run_records(const cd_run *r, int64_t *n);
cd_plan *cd_run_plan(const cd_run *r);
/* Floating-point flags (CD_FPE_*) raised by the run's kernels, and the
 * first node that raised each (by bit index); read after FINISHED. */
int cd_run_fpe(const cd_run *r, int32_t nodes[4]);
/* Record flags raised by node i outside a C worker (a kernel run from Python). */
void cd_run_note_fpe(cd_run *r, int32_t i, int fpe);
/* An opaque pointer for the glue (its own per-run context). */
void cd_run_set_user(cd_run *r, void *user);
void *cd_run_user(const cd_run *r);
/*
 * Withdraw from the pool and free the run: waits until no thread works on it
 * (call after FINISHED, or after cd_run_cancel).  Values of non-output nodes
 * still held are released; output values stay on the plan's nodes (take them
 * by setting node->chunk/pyval to NULL) and are released by the next
 * cd_run_new or by cd_plan_free.
 */
void cd_run_free(cd_run *r);

/* Convenience for pure C users: start, wait, return 0 or the run's error. */
int cd_run_plan_blocking(cd_plan *p, const cd_run_opts *opts, cd_stats *stats, cd_err *err);

/* ---- the pool ---- */
/* Default number of workers (CDASK_NUM_WORKERS, else the number of cores). */
int cd_pool_default_workers(void);
void cd_pool_set_default_workers(int n);
/* Index of the calling thread if it is a pool worker, else -1. */
int cd_pool_current_worker(void);
/* Stop and join every worker (interpreter exit).  Runs must be finished. */
void cd_pool_shutdown(void);
int cd_pool_size(void);

#endif /* CD_CD_SCHED_H */
