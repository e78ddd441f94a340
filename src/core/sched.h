/*
 * sched.h - the scheduler: runs of a finalized plan (plan.h, graph.h) on the
 * worker pool (pool.h) and on the calling thread.  Pure C: no Python.h.
 * Implemented in sched.c.
 *
 * Priorities come from cd_plan_finalize (graph.h): smaller runs first, so
 * the inputs of one consumer are computed one after the other and each
 * intermediate is released soon after it is made (the talk's "run tasks
 * that free resources").
 *
 * Legal call order: after cd_plan_finalize, any number of runs one after
 * the other: cd_run_new, cd_run_start, cd_run_wait / cd_run_help /
 * cd_run_pop_py + cd_run_finish until CD_WAIT_FINISHED (or cd_run_cancel),
 * cd_run_free.
 *
 * A run is executed by the pool's workers and by its caller: the caller
 * waits in slices (cd_run_wait), runs Python tasks when asked, and, when it
 * is itself a pool worker (a task that calls get), runs C tasks too, so that
 * nested runs cannot deadlock the pool.
 */
#ifndef CD_SCHED_H
#define CD_SCHED_H

#include "core/plan.h"
#include "core/graph.h"
#include "core/pool.h"

/* ---- runs ---- */

typedef struct cd_record {
    int32_t node;
    int32_t worker;     /* pool worker index, -1 for the calling thread */
    int64_t start_ns, end_ns;   /* cd_run_stamp() until cd_run_take_records */
    int64_t nbytes;     /* bytes of the value the task made */
    int64_t held;       /* st.bytes_held once the task's inputs were released */
    int64_t spilled;    /* st.spilled_bytes then */
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

/* Make a run of a finalized plan (resets the plan's run state, releasing the
 * outputs of an earlier run).  NULL with err set on failure (CD_EINTERNAL
 * for a plan not finalized, CD_ENOMEM); the plan is then left as it was, or
 * reset, and another cd_run_new may be tried. */
cd_run *cd_run_new(cd_plan *p, const cd_run_opts *opts, cd_err *err);
/* Hand the run to the pool; ready tasks start at once.  Returns 0: when no
 * worker thread can be started the run falls back on its caller, which
 * then runs every task itself (opts.caller_runs_c is turned on). */
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
/* Fail the run from outside a task (Ctrl-C, a callback that raised); a
 * no-op for the error if the run already failed (the first failure wins). */
void cd_run_cancel(cd_run *r, int code, const char *msg);

/* Non-zero once the run has failed (any thread). */
int cd_run_failed(const cd_run *r);
/* First error and the node it came from (-1: not a task), or NULL if the
 * run has not failed; read once the run is over. */
const cd_err *cd_run_error(const cd_run *r, int32_t *node);
/* A consistent copy of the run's counters (any thread, takes the lock). */
void cd_run_stats(cd_run *r, cd_stats *out);
/* Records of finished tasks, in the order they finished (so end_ns never
 * decreases), times in cd_run_stamp() units; valid until cd_run_free.
 * Failed tasks have none. */
const cd_record *cd_run_records(const cd_run *r, int64_t *n);
/*
 * The clock of records while a run goes on: the TSC on x86-64 (a third of
 * what reading CLOCK_MONOTONIC costs, and at a million tasks the clock is
 * most of what recording costs), CLOCK_MONOTONIC ns elsewhere.  Pass it as
 * cd_run_finish's start_ns; cd_run_take_records turns every stamp into
 * CLOCK_MONOTONIC ns (cd_now_ns), calibrated over the run.
 */
static inline int64_t cd_run_stamp(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return (int64_t)__builtin_ia32_rdtsc();
#else
    return cd_now_ns();
#endif
}
/* The same array, with its times in cd_now_ns() nanoseconds, handed to the
 * caller, who frees it with cd_records_free
 * (cap: the entries it has room for); the run keeps none.  Read once the run
 * is over.  NULL when the run recorded nothing. */
cd_record *cd_run_take_records(cd_run *r, int64_t *n, size_t *cap);
/* Free records taken from a run (any thread; NULL is ignored).  The
 * largest array of at most 64 MiB is kept for the next run that records. */
void cd_records_free(cd_record *rec, size_t cap);
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

/* Convenience for pure C users: start, run on the calling thread too, wait;
 * returns 0, or the negative code of the run's first error (copied to
 * err), or that of cd_run_new when the run cannot be made. */
int cd_run_plan_blocking(cd_plan *p, const cd_run_opts *opts, cd_stats *stats, cd_err *err);

#endif /* CD_SCHED_H */
