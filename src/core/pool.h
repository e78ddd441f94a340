/*
 * pool.h - the pthread worker pool.  Pure C.  Implemented in pool.c.
 *
 * The pool is a set of up to CD_MAX_THREADS threads, started lazily (the
 * first run that wants n workers starts them) and kept until
 * cd_pool_shutdown.  The pool does not know what work is: its one client,
 * the scheduler (sched.c), gives it a work function that a worker calls with
 * cd_pool.mu held; when that function finds nothing to do the worker sleeps
 * on cd_pool.cv until the client signals it.  The same mutex guards the
 * client's own shared state (the runs), so that finding work and going to
 * sleep happen under one lock and no wake-up is lost.
 *
 * Workers block every signal, so Ctrl-C is delivered to the main thread.
 * After fork() the child has no workers: an atfork handler resets the pool
 * (and tells the client) so that the next run starts fresh threads.
 */
#ifndef CD_POOL_H
#define CD_POOL_H

#include "core/common.h"

#include <pthread.h>

/* The most threads a pool (and a run) may use; num_workers above it is
 * refused by the Python glue and capped by the C functions. */
#define CD_MAX_THREADS 256

typedef struct cd_pool_client {
    /* Called by worker `id` with cd_pool.mu held: do some work (the function
     * may drop and retake the lock) and return 1, or return 0 at once when
     * there is nothing to do - the worker then waits on cd_pool.cv. */
    int (*work_locked)(int id);
    /* Called in the child after fork(), once the pool is reset. */
    void (*fork_child)(void);
    /* Called by each worker, without the lock, just before it ends. */
    void (*worker_exit)(int id);
} cd_pool_client;

typedef struct cd_pool_state {
    /* Guards every field below and all the client's shared state (the list
     * of runs and each run's queues and counters: see sched.c).  Never held
     * while waiting for the GIL. */
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* idle workers wait here (with mu) */
    int nthreads;                 /* mu: workers started and not told to stop;
                                     a worker whose id >= nthreads exits */
    int idle;                     /* mu: workers waiting on cv */
    int default_workers;          /* mu: cd_pool_set_default_workers, 0: unset */
    int atfork_done;              /* mu: pthread_atfork was called */
    const cd_pool_client *client; /* mu: set by the first cd_pool_grow_locked */
    pthread_t threads[CD_MAX_THREADS];   /* mu: [0, nthreads) are running */
} cd_pool_state;

/* The one pool of the process (hidden: reached without the GOT). */
extern cd_pool_state cd_pool __attribute__((visibility("hidden")));

/*
 * Start workers until there are n (capped at CD_MAX_THREADS) that run
 * `client`'s work (cd_pool.mu held).  Returns the number of threads running:
 * when a thread cannot be created the pool stays smaller (possibly 0), and
 * the caller decides what to do - the scheduler then runs tasks itself.
 */
int cd_pool_grow_locked(int n, const cd_pool_client *client);

/* Default number of workers (cd_pool_set_default_workers, else
 * CDASK_NUM_WORKERS, else the number of cores), capped at CD_MAX_THREADS. */
int cd_pool_default_workers(void);
void cd_pool_set_default_workers(int n);
/* Index of the calling thread if it is a pool worker, else -1. */
int cd_pool_current_worker(void);
/* Stop and join every worker (interpreter exit).  Runs must be finished. */
void cd_pool_shutdown(void);
/* Number of workers running now. */
int cd_pool_size(void);

#endif /* CD_POOL_H */
