/*
 * sched.c - runs of a plan on the worker pool.  Pure C: never includes
 * Python.h.
 *
 * Interface: sched.h.  Plans are built by plan.c and analysed (priorities,
 * initial ready lists) by graph.c; the threads are pool.c's.  Design:
 *
 *   Ready queues.  Nodes ready at the start are exactly the nodes of `order`
 *   with nothing to wait for, already sorted: a cursor walks them (O(1) a
 *   pop).  Nodes made ready while running go to a binary heap whose entries
 *   pack (priority << 32 | node) so comparisons touch only the heap array.
 *   A pop takes the smaller of the two heads.  C and Python tasks have queues
 *   of their own, since only threads that take the GIL can run the latter.
 *
 *   Locking.  One mutex (cd_pool.mu) protects the pool, the list of runs and all
 *   run state (queues, counters, node run state); each field of struct cd_run
 *   (below) and of cd_node (plan.h) says what guards it.  A worker holds it only to
 *   pop a task and, after running it, to record the result, release inputs
 *   no longer needed and pop the next one: one lock round trip per task.  No
 *   one ever waits for the GIL while holding cd_pool.mu (the GIL is taken only
 *   in the py_batch hook, called with cd_pool.mu released), so the GIL and
 *   cd_pool.mu cannot deadlock.  Freeing chunk memory happens outside the lock.
 *
 *   Waking.  Idle workers sleep on cd_pool.cv and are signalled only when a run
 *   has more ready work than the threads already on it will take; the caller
 *   sleeps on its run's cv in slices, so it can check for signals.
 *
 *   Workers block every signal, so Ctrl-C is delivered to the main thread,
 *   where the caller turns it into cd_run_cancel; kernels poll run->cancel.
 *
 *   fork(): the child has no workers; pool.c's atfork handler resets the pool
 *   and calls fork_child here, which forgets the runs, so
 *   the next run starts fresh threads.
 */
#include "core/sched.h"
#include "core/fault.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

cd_sched_hooks cd_hooks = {NULL, NULL};

/* ------------------------------------------------------------ ready heap */

typedef struct heap {
    uint64_t *a;
    int64_t n, cap;
} heap;

#ifdef CD_DEBUG
/* Debug builds only: every entry is no smaller than its parent - all of
 * them while the heap is small, else (so that a run of 100,000 ready
 * tasks stays linear) entry i, where the last push or pop left its value,
 * against its parent and its children. */
static int heap_ordered(const heap *h, int64_t i)
{
    if (h->n <= 4096) {
        for (int64_t j = 1; j < h->n; j++)
            if (h->a[(j - 1) / 2] > h->a[j])
                return 0;
        return 1;
    }
    if (i > 0 && h->a[(i - 1) / 2] > h->a[i])
        return 0;
    for (int64_t c = 2 * i + 1; c <= 2 * i + 2 && c < h->n; c++)
        if (h->a[i] > h->a[c])
            return 0;
    return 1;
}
#define HEAP_CHECK(h, i) assert(heap_ordered(h, i))
#else
#define HEAP_CHECK(h, i) ((void)0)
#endif

/* Push v; 0, or -1 (heap unchanged) when the heap cannot grow. */
static int heap_push(heap *h, uint64_t v)
{
    int64_t i;
    if (h->n == h->cap) {
        int64_t cap = h->cap ? h->cap * 2 : 256;
        uint64_t *a = realloc(h->a, (size_t)cap * sizeof(uint64_t));
        if (a == NULL)
            return -1;
        h->a = a;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0) {
        int64_t parent = (i - 1) / 2;
        if (h->a[parent] <= v)
            break;
        h->a[i] = h->a[parent];
        i = parent;
    }
    h->a[i] = v;
    HEAP_CHECK(h, i);
    return 0;
}

/* Pop the smallest entry of a heap that is not empty. */
static uint64_t heap_pop(heap *h)
{
    uint64_t top = h->a[0], v = h->a[--h->n];
    int64_t i = 0, n = h->n;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h->a[c + 1] < h->a[c])
            c++;
        if (v <= h->a[c])
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0)
        h->a[i] = v;
    HEAP_CHECK(h, i);
    return top;
}

#define PACK(prio, node) (((uint64_t)(uint32_t)(prio) << 32) | (uint32_t)(node))
#define UNPACK_NODE(v) ((int32_t)((v) & 0xffffffffu))

/* A ready queue: the initially ready nodes in priority order, plus a heap. */
typedef struct readyq {
    int32_t *init;          /* sorted by priority */
    int64_t init_pos, init_n;
    heap h;
} readyq;

static inline int64_t rq_len(const readyq *q)
{
    return (q->init_n - q->init_pos) + q->h.n;
}

static inline int32_t rq_pop(readyq *q, const cd_node *nodes)
{
    if (q->init_pos < q->init_n) {
        int32_t a = q->init[q->init_pos];
        if (q->h.n == 0 || (uint32_t)nodes[a].priority < (uint32_t)(q->h.a[0] >> 32)) {
            q->init_pos++;
            return a;
        }
    }
    return UNPACK_NODE(heap_pop(&q->h));
}

/* ------------------------------------------------------------------- runs */

/*
 * A run.  Beside each field, what keeps it safe to share between the
 * threads of the run (pool workers, the caller, Python threads in py_batch):
 *
 *   mu      read and written only with cd_pool.mu held;
 *   const   set by cd_run_new (or cd_run_start, under mu, before any worker
 *           can see the run) and never written again;
 *   atomic  written under mu with __atomic stores, read anywhere with
 *           __atomic loads (kernels poll it without the lock);
 *   final   written under mu while the run goes on, read without the lock
 *           only once the run is over (cd_run_wait returned FINISHED, or the
 *           run failed and nothing is running), when no thread writes it.
 *
 * The caller frees the run (cd_run_free) only after every thread has left
 * it: active_c, py_active and st.running are 0, under mu.
 */
struct cd_run {
    cd_plan *plan;         /* const */
    cd_run_opts opts;      /* const (caller_runs_c: set by cd_run_start under mu,
                              before the run is visible to workers) */
    int max_workers;       /* const: at most this many tasks run at once */
    int active_c;          /* mu: threads inside run_c_locked for this run */
    int py_active;         /* mu: threads inside py_batch for this run */
    int caller_waiting;    /* mu: the caller sleeps on cv in cd_run_wait */
    int closing;           /* mu: cd_run_free waits for the threads to leave */
    readyq cq, pq;         /* mu: ready C and Python tasks */
    cd_stats st;           /* mu (cd_run_stats copies it under mu) */
    int failed;            /* mu; final: the first failure sets it, nothing clears it */
    volatile int cancel;   /* atomic: kernels poll it (cd_cancelled) */
    cd_err err;            /* mu; final: written once, by the first failure */
    int32_t err_node;      /* mu; final: with err */
    pthread_cond_t cv;     /* the caller and cd_run_free wait on it, with mu */
    cd_record *records;    /* const pointer; entries mu, final */
    size_t records_cap;    /* const: entries records has room for */
    int64_t stamp0, ns0;   /* const: cd_run_stamp() and cd_now_ns() when made */
    int64_t nrecords;      /* mu; final */
    void *user;            /* const: set by the caller before cd_run_start */
    int fpe;               /* mu; final: CD_FPE_* raised by the run's kernels */
    int32_t fpe_node[4];   /* mu; final: first node that raised each flag */
    struct cd_run *next, *prev;   /* mu: the list g_runs */
    /* spilling (opts.spill_limit > 0): nodes holding spillable chunks, oldest
     * first (entries released since are skipped), and nodes already spilled */
    int32_t *held;         /* mu */
    int64_t nheld, held_cap;   /* mu */
    unsigned char *spilled;    /* const pointer; entries mu */
#ifdef CD_DEBUG
    unsigned char *state;  /* mu: TS_* of each node, checked by set_state */
#endif
};

/* The runs in progress (cd_pool.mu): the workers look for work in them. */
static cd_run *g_runs;

/*
 * Task states.  A node moves only forwards: WAITING (inputs not done) ->
 * READY (in a ready queue) -> RUNNING (popped: counted in st.running) ->
 * DONE (finished, failed or not); VALUE nodes are DONE from the start.  The
 * one step back is RUNNING -> READY for a C task handed to the Python
 * threads (CD_ENEEDPY).  Debug builds keep the state of every node and
 * assert each transition; other builds keep nothing.
 */
enum { TS_WAITING = 0, TS_READY, TS_RUNNING, TS_DONE };
#ifdef CD_DEBUG
static void set_state(cd_run *r, int32_t i, int from, int to)
{
    assert(r->state[i] == from && "task state transition out of order");
    r->state[i] = (unsigned char)to;
}
#define SET_STATE(r, i, from, to) set_state((r), (i), (from), (to))

/* A new run: VALUE nodes are DONE, the initially ready tasks READY. */
static void init_states(cd_run *r)
{
    const cd_plan *p = r->plan;
    for (int32_t i = 0; i < p->n; i++)
        if (p->nodes[i].kind == CD_NODE_VALUE)
            r->state[i] = TS_DONE;
    for (int64_t k = 0; k < r->cq.init_n; k++)
        set_state(r, r->cq.init[k], TS_WAITING, TS_READY);
    for (int64_t k = 0; k < r->pq.init_n; k++)
        set_state(r, r->pq.init[k], TS_WAITING, TS_READY);
}
#define INIT_STATES(r) init_states(r)
#else
#define SET_STATE(r, i, from, to) ((void)0)
#define INIT_STATES(r) ((void)0)
#endif

static inline int run_finished_locked(const cd_run *r)
{
    return r->st.running == 0 && (r->failed || r->st.done == r->st.total);
}

/* Fail r (cd_pool.mu held); the first failure wins. */
static void fail_locked(cd_run *r, int32_t node, int code, const char *msg)
{
    if (!r->failed) {
        r->failed = 1;
        r->err.code = code;
        snprintf(r->err.msg, sizeof(r->err.msg), "%s", msg);
        r->err_node = node;
    }
    __atomic_store_n(&r->cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&r->cv);
}

/* Values whose last consumer finished, released after cd_pool.mu is dropped;
 * and chunks to spill then (each holds a reference). */
typedef struct freelist {
    cd_chunk *chunks[64];
    void *objs[64];
    int nc, no;
    cd_chunk *spill[8];
    int ns;
} freelist;

/* Spill the chunks queued in fl (cd_pool.mu not held); a failure fails the run
 * unless it is over (the chunk then simply stays in memory). */
static void spill_flush(cd_run *r, freelist *fl)
{
    for (int k = 0; k < fl->ns; k++) {
        cd_err err = {0, ""};
        if (cd_chunk_spill(fl->spill[k], r->opts.spill_dir, &err) < 0) {
            pthread_mutex_lock(&cd_pool.mu);
            if (!run_finished_locked(r))
                fail_locked(r, -1, err.code, err.msg);
            pthread_mutex_unlock(&cd_pool.mu);
        }
        cd_chunk_decref(fl->spill[k]);
    }
    fl->ns = 0;
}

/*
 * Past the spill limit: queue held intermediates for spilling (cd_pool.mu held),
 * latest in the plan's order first.  A node's priority is its place in the
 * depth-first order the run follows, so the block made for the last consumer
 * is the one needed last (Belady's choice, approximated by the producer's own
 * place: cheap, and exact for the blocks of a rechunk or a transpose).  Each
 * call scans the held list once per chunk chosen and drops the entries
 * released or spilled since; entries are chunks of 1 MiB or more, so a scan
 * costs far less than the write it decides.
 */
static void choose_spills_locked(cd_run *r, freelist *fl)
{
    cd_plan *p = r->plan;
    while (r->st.bytes_held > r->opts.spill_limit && fl->ns < 8) {
        int64_t w = 0, best = -1;
        uint32_t best_prio = 0;
        int32_t j;
        cd_node *dn;
        for (int64_t k = 0; k < r->nheld; k++) {
            j = r->held[k];
            dn = &p->nodes[j];
            if (dn->chunk == NULL || r->spilled[j] || dn->chunk->owner != NULL || dn->nbytes <= 0)
                continue;                 /* released or spilled: leaves the list */
            r->held[w] = j;
            if (best < 0 || (uint32_t)dn->priority > best_prio) {
                best = w;
                best_prio = (uint32_t)dn->priority;
            }
            w++;
        }
        r->nheld = w;
        if (best < 0)
            break;
        j = r->held[best];
        r->held[best] = r->held[--r->nheld];
        dn = &p->nodes[j];
        r->spilled[j] = 1;
        cd_chunk_incref(dn->chunk);
        fl->spill[fl->ns++] = dn->chunk;
        r->st.bytes_held -= dn->nbytes;
        r->st.spilled_bytes += dn->nbytes;
        dn->nbytes = 0;        /* no longer in memory: not counted again on release */
    }
}

static void freelist_flush(freelist *fl)
{
    for (int i = 0; i < fl->nc; i++)
        cd_chunk_decref(fl->chunks[i]);
    for (int i = 0; i < fl->no; i++)
        cd_chunk_owner_release(fl->objs[i]);
    fl->nc = fl->no = 0;
}

static void release_value_locked(cd_run *r, cd_node *nd, freelist *fl)
{
    r->st.bytes_held -= nd->nbytes;
    nd->nbytes = 0;
    if (nd->chunk != NULL) {
        if (fl->nc == 64) {
            cd_chunk_decref(nd->chunk);   /* rare: list full, release in place */
        } else {
            fl->chunks[fl->nc++] = nd->chunk;
        }
        nd->chunk = NULL;
    }
    if (nd->pyval != NULL) {
        if (fl->no == 64)
            cd_chunk_owner_release(nd->pyval);
        else
            fl->objs[fl->no++] = nd->pyval;
        nd->pyval = NULL;
    }
}

/*
 * At most max_workers tasks of a run execute at once, whichever threads run
 * them (pool workers, the caller), so num_workers=1 really means one task at
 * a time - thread-unsafe task functions rely on that.
 */
static inline int has_slot(const cd_run *r)
{
    return r->st.running < r->max_workers;
}

/*
 * Should a worker run r's Python tasks?  The caller runs them first: a
 * caller asleep in cd_run_wait is woken for one ready task, so a worker
 * joins only for tasks beyond that one - or for any ready task while the
 * caller is busy running one (a task that sleeps or releases the GIL
 * should not hold the others up).
 */
static inline int py_help_wanted(const cd_run *r)
{
    int64_t extra = rq_len(&r->pq) - (r->caller_waiting ? 1 : 0);
    return cd_hooks.py_batch != NULL && extra > 0 && r->py_active < r->max_workers &&
           has_slot(r);
}

static inline uint32_t rq_head_prio(const readyq *q, const cd_node *nodes)
{
    uint32_t best = UINT32_MAX;
    if (q->init_pos < q->init_n)
        best = (uint32_t)nodes[q->init[q->init_pos]].priority;
    if (q->h.n > 0 && (uint32_t)(q->h.a[0] >> 32) < best)
        best = (uint32_t)(q->h.a[0] >> 32);
    return best;
}

/*
 * Back-pressure.  With a spill limit, once held intermediates pass half of
 * it, C tasks wait while a Python task that comes earlier in the plan's
 * order is ready: otherwise the C workers race ahead making blocks that the
 * Python consumers (stores into targets, slices, transposes) take more
 * slowly, and the surplus is spilled to disk and read back for nothing.
 */
static inline int c_defers(const cd_run *r)
{
    return r->opts.spill_limit > 0 && r->st.bytes_held > r->opts.spill_limit / 2 &&
           rq_len(&r->pq) > 0 &&
           rq_head_prio(&r->pq, r->plan->nodes) < rq_head_prio(&r->cq, r->plan->nodes);
}

/* C work a thread may take from r now. */
static inline int c_ready(const cd_run *r)
{
    return rq_len(&r->cq) > 0 && has_slot(r) && !c_defers(r);
}

/* Wake one idle worker if r has more ready work than its threads take. */
static inline void maybe_wake_locked(cd_run *r)
{
    if (cd_pool.idle > 0 && !r->failed) {
        if (c_ready(r) || py_help_wanted(r))
            pthread_cond_signal(&cd_pool.cv);
    }
}

/* Returns the end time recorded for the task, or 0 when none was. */
static int64_t finish_locked(cd_run *r, int32_t i, int status, const cd_err *err,
                             int64_t start_ns, int worker, freelist *fl)
{
    int64_t end_ns = 0;
    cd_plan *p = r->plan;
    cd_node *nd = &p->nodes[i];
    r->st.running--;
    assert(r->st.running >= 0);
    if (status == CD_ENEEDPY && cd_hooks.py_batch != NULL) {
        /* hand the C task to the threads that run Python */
        SET_STATE(r, i, TS_RUNNING, TS_READY);
        if (heap_push(&r->pq.h, PACK(nd->priority, i)) < 0)
            fail_locked(r, i, CD_ENOMEM, "out of memory in the ready queue");
        else
            pthread_cond_broadcast(&r->cv);
        return 0;
    }
    SET_STATE(r, i, TS_RUNNING, TS_DONE);
    if (status == CD_ENEEDPY) {
        cd_err e2;
        cd_err_set(&e2, CD_ETYPE, "kernel '%s': an input is not an array", p->kcalls[i].kernel->name);
        fail_locked(r, i, e2.code, e2.msg);
        if (run_finished_locked(r))
            pthread_cond_broadcast(&r->cv);
        return 0;
    }
    if (status != 0) {
        fail_locked(r, i, err ? err->code : status, err ? err->msg : "task failed");
        release_value_locked(r, nd, fl);
    } else {
        int64_t made = nd->nbytes;   /* spilling or a failure may zero it below */
        r->st.done++;
        r->st.bytes_held += nd->nbytes;
        if (r->st.bytes_held > r->st.peak_bytes)
            r->st.peak_bytes = r->st.bytes_held;
        if (r->opts.spill_limit > 0 && nd->chunk != NULL && nd->chunk->owner == NULL &&
            nd->nbytes >= ((int64_t)1 << 20)) {
            if (r->nheld == r->held_cap) {
                int64_t cap = r->held_cap ? 2 * r->held_cap : 256;
                int32_t *h = realloc(r->held, (size_t)cap * sizeof(int32_t));
                if (h != NULL) {
                    r->held = h;
                    r->held_cap = cap;
                }
            }
            if (r->nheld < r->held_cap)
                r->held[r->nheld++] = i;
        }
        /* Dependents that were waiting only for this node become ready. */
        for (int32_t j = 0; j < nd->ndnts; j++) {
            int32_t d = p->dnts[nd->dnt_off + j];
            cd_node *dn = &p->nodes[d];
            assert(dn->waiting > 0);
            if (--dn->waiting == 0) {
                heap *h = dn->kind == CD_NODE_C ? &r->cq.h : &r->pq.h;
                SET_STATE(r, d, TS_WAITING, TS_READY);
                if (heap_push(h, PACK(dn->priority, d)) < 0 && !r->failed)
                    fail_locked(r, d, CD_ENOMEM, "out of memory in the ready queue");
                else if (dn->kind == CD_NODE_PY && r->caller_waiting)
                    pthread_cond_broadcast(&r->cv);
            }
        }
        /* Inputs whose last consumer this was are released. */
        for (int32_t j = 0; j < nd->ndeps; j++) {
            cd_node *dn = &p->nodes[p->deps[nd->dep_off + j]];
            assert(dn->refs > 0);
            if (--dn->refs == 0 && dn->kind != CD_NODE_VALUE)
                release_value_locked(r, dn, fl);
        }
        if (r->failed)
            release_value_locked(r, nd, fl);
        else if (r->opts.spill_limit > 0 && r->st.bytes_held > r->opts.spill_limit &&
                 r->spilled != NULL)
            choose_spills_locked(r, fl);
        if (r->records != NULL) {
            /* after the releases and spills above, so the memory columns
             * say what the run held once this task was done */
            cd_record *rec = &r->records[r->nrecords++];
            rec->node = i;
            rec->worker = worker;
            rec->start_ns = start_ns;
            rec->end_ns = end_ns = cd_run_stamp();
            rec->nbytes = made;
            rec->held = r->st.bytes_held;
            rec->spilled = r->st.spilled_bytes;
        }
    }
    if (run_finished_locked(r))
        pthread_cond_broadcast(&r->cv);
    else {
        if (r->caller_waiting && rq_len(&r->pq) > 0)
            pthread_cond_broadcast(&r->cv);   /* a slot is free for the caller */
        maybe_wake_locked(r);
    }
    return end_ns;
}

static void note_fpe_locked(cd_run *r, int32_t i, int fpe)
{
    for (int b = 0; b < 4; b++)
        if ((fpe & (1 << b)) && !(r->fpe & (1 << b)))
            r->fpe_node[b] = i;
    r->fpe |= fpe;
}

void cd_run_note_fpe(cd_run *r, int32_t i, int fpe)
{
    pthread_mutex_lock(&cd_pool.mu);
    note_fpe_locked(r, i, fpe);
    pthread_mutex_unlock(&cd_pool.mu);
}

int cd_run_fpe(const cd_run *r, int32_t nodes[4])
{
    if (nodes != NULL)
        for (int b = 0; b < 4; b++)
            nodes[b] = r->fpe_node[b];
    return r->fpe;
}

#define SMALL_IN 16

/* Run C node i (cd_pool.mu not held).  Returns the status. */
static int exec_c(cd_run *r, int32_t i, int worker, cd_err *err, int *fpe)
{
    cd_plan *p = r->plan;
    cd_node *nd = &p->nodes[i];
    const cd_kcall *kc = &p->kcalls[i];
    cd_chunk *small[SMALL_IN], **in = small, *out = NULL;
    const int32_t *args = p->args + nd->arg_off;
    cd_kctx ctx;
    int rc;

    if (nd->nargs > SMALL_IN) {
        in = malloc((size_t)nd->nargs * sizeof(cd_chunk *));
        if (in == NULL)
            return cd_err_set(err, CD_ENOMEM, "out of memory");
    }
    for (int32_t j = 0; j < nd->nargs; j++) {
        in[j] = p->nodes[args[j]].chunk;
        if (in[j] == NULL) {
            /* A Python value that is not one array (a list of them, say):
             * the Kernel's Python call knows what to do with it. */
            rc = CD_ENEEDPY;
            goto done;
        }
    }
    ctx.cancel = &r->cancel;
    ctx.params = kc->params;
    ctx.params_size = kc->params_size;
    ctx.worker = worker;
    err->code = 0;
    err->msg[0] = '\0';
    rc = cd_fault_call(kc->kernel, &ctx, nd->nargs, in, &out, err, fpe);
    if (rc == 0 && out == NULL)
        rc = cd_err_set(err, CD_EINTERNAL, "kernel '%s' returned no result", kc->kernel->name);
    if (rc == 0) {
        nd->chunk = out;
        nd->nbytes = out->nbytes;
    } else if (err->code == 0) {
        cd_err_set(err, rc, "kernel '%s' failed", kc->kernel->name);
    }
done:
    if (in != small)
        free(in);
    return rc;
}

/*
 * Run C tasks of r while there are some (cd_pool.mu held on entry and exit).
 * Stops at deadline_ns (0: none) or when the run fails.
 */
static int run_c_locked(cd_run *r, int worker, int64_t deadline_ns)
{
    freelist fl;
    cd_err err;
    int count = 0, fpe;
    int64_t last_end = 0;
    fl.nc = fl.no = fl.ns = 0;
    r->active_c++;
    while (!r->failed && c_ready(r)) {
        int32_t i = rq_pop(&r->cq, r->plan->nodes);
        int64_t t0;
        int rc;
        SET_STATE(r, i, TS_READY, TS_RUNNING);
        /* this task's node and call, and those of an initially ready task a
         * few pops ahead: loaded while the lock is handed back */
        __builtin_prefetch(&r->plan->nodes[i]);
        __builtin_prefetch(&r->plan->kcalls[i]);
        if (r->cq.init_pos + 4 < r->cq.init_n) {
            int32_t a = r->cq.init[r->cq.init_pos + 4];
            __builtin_prefetch(&r->plan->nodes[a]);
            __builtin_prefetch(&r->plan->kcalls[a]);
        }
        r->st.running++;
        maybe_wake_locked(r);
        pthread_mutex_unlock(&cd_pool.mu);
        freelist_flush(&fl);
        if (fl.ns)
            spill_flush(r, &fl);
        /* Recording: a task this thread takes straight after finishing one
         * starts when that one ended (the clock is read once a task, not
         * twice: at a million tasks the second read costs more than the
         * record; the time between is this loop's own, lock and all). */
        t0 = r->records == NULL ? 0 : last_end ? last_end : cd_run_stamp();
        fpe = 0;
        rc = exec_c(r, i, worker, &err, &fpe);
        {
            /* the dependents' nodes are written under the lock: load them first */
            const cd_node *nd = &r->plan->nodes[i];
            const int32_t *dn = r->plan->dnts + nd->dnt_off;
            for (int32_t j = 0; j < nd->ndnts && j < 8; j++)
                __builtin_prefetch(&r->plan->nodes[dn[j]], 1);
        }
        pthread_mutex_lock(&cd_pool.mu);
        if (fpe)
            note_fpe_locked(r, i, fpe);
        last_end = finish_locked(r, i, rc, &err, t0, worker, &fl);
        count++;
        if (deadline_ns && (count & 15) == 0 && cd_now_ns() > deadline_ns)
            break;
    }
    if (fl.nc || fl.no || fl.ns) {
        pthread_mutex_unlock(&cd_pool.mu);
        freelist_flush(&fl);
        if (fl.ns)
            spill_flush(r, &fl);
        pthread_mutex_lock(&cd_pool.mu);
    }
    /* Only now: once active_c is 0 the caller may free r (cd_run_free). */
    r->active_c--;
    if (r->closing && r->active_c == 0 && r->py_active == 0)
        pthread_cond_broadcast(&r->cv);
    return count;
}

/*
 * The pool's work function (cd_pool.mu held): run the C tasks of the first
 * run that has some ready, or join a run's Python tasks through the
 * py_batch hook.  Returns 0 when no run has work for a worker.
 */
static int work_locked(int id)
{
    cd_run *r, *pick = NULL;
    int py = 0;
    for (r = g_runs; r != NULL; r = r->next) {
        if (r->failed || r->closing)
            continue;
        if (c_ready(r)) {
            pick = r;
            break;
        }
        if (py_help_wanted(r)) {
            pick = r;
            py = 1;
            break;
        }
    }
    if (pick == NULL)
        return 0;
    if (!py) {
        run_c_locked(pick, id, 0);
    } else {
        pick->py_active++;
        pthread_mutex_unlock(&cd_pool.mu);
        cd_hooks.py_batch(pick, id);
        pthread_mutex_lock(&cd_pool.mu);
        pick->py_active--;
        if (pick->closing && pick->active_c == 0 && pick->py_active == 0)
            pthread_cond_broadcast(&pick->cv);
    }
    return 1;
}

static void fork_child(void)
{
    g_runs = NULL;
}

static void worker_exit(int id)
{
    if (cd_hooks.worker_exit != NULL)
        cd_hooks.worker_exit(id);
}

static const cd_pool_client sched_client = {work_locked, fork_child, worker_exit};

/* ------------------------------------------------------------------- runs */

/*
 * The records of a run.  One spare array is kept when records are dropped
 * (cd_records_free), up to SPARE_MAX bytes, and handed to the next run that
 * fits in it: a fresh array's pages are faulted in and zeroed by the kernel
 * while the workers write records under cd_pool.mu, which on a million tasks
 * cost more than the records themselves.  A large new array is aligned for
 * huge pages and asks for them, for the same reason.  g_spare_mu guards the
 * spare; it is taken only to swap a pointer, never with cd_pool.mu waited on.
 */
#define SPARE_MAX ((size_t)64 << 20)
static pthread_mutex_t g_spare_mu = PTHREAD_MUTEX_INITIALIZER;
static cd_record *g_spare;     /* g_spare_mu */
static size_t g_spare_cap;     /* g_spare_mu: entries g_spare has room for */

static cd_record *records_alloc(size_t n, size_t *cap)
{
    size_t size = n * sizeof(cd_record), huge = (size_t)2 << 20;
    void *p = NULL;
    pthread_mutex_lock(&g_spare_mu);
    if (g_spare != NULL && g_spare_cap >= n) {
        p = g_spare;
        *cap = g_spare_cap;
        g_spare = NULL;
        g_spare_cap = 0;
    }
    pthread_mutex_unlock(&g_spare_mu);
    if (p != NULL)
        return p;
    *cap = n;
    if (size < 2 * huge)
        return malloc(size);
    size = (size + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, size) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    *cap = size / sizeof(cd_record);
    return p;
}

void cd_records_free(cd_record *rec, size_t cap)
{
    if (rec == NULL)
        return;
    if (cap * sizeof(cd_record) <= SPARE_MAX) {
        pthread_mutex_lock(&g_spare_mu);
        if (g_spare == NULL || g_spare_cap < cap) {   /* keep the larger */
            cd_record *old = g_spare;
            g_spare = rec;
            g_spare_cap = cap;
            rec = old;
        }
        pthread_mutex_unlock(&g_spare_mu);
    }
    free(rec);
}

cd_run *cd_run_new(cd_plan *p, const cd_run_opts *opts, cd_err *err)
{
    cd_run *r;
    int64_t ninit = 0, pinit = 0;
    if (!p->finalized) {
        cd_err_set(err, CD_EINTERNAL, "plan not finalized");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto nomem;
    r->plan = p;
    if (opts != NULL && opts->spill_limit > 0)
        cd_chunk_cache_cap((size_t)(opts->spill_limit / 8));   /* chunk.c: reuse of big blocks */
    r->opts = *opts;
    r->max_workers = opts->num_workers > 0 ? opts->num_workers : cd_pool_default_workers();
    if (r->max_workers > CD_MAX_THREADS)
        r->max_workers = CD_MAX_THREADS;
    r->err_node = -1;
    r->st.total = p->ntasks;
    pthread_cond_init(&r->cv, NULL);
    if (opts->record && p->ntasks > 0) {
        r->records = records_alloc((size_t)p->ntasks, &r->records_cap);
        if (r->records == NULL)
            goto nomem;
        r->stamp0 = cd_run_stamp();
        r->ns0 = cd_now_ns();
    }
    if (opts->spill_limit > 0 && opts->spill_dir != NULL && p->n > 0) {
        r->spilled = calloc((size_t)p->n, 1);
        if (r->spilled == NULL)
            goto nomem;
    } else {
        r->opts.spill_limit = 0;
    }
#ifdef CD_DEBUG
    r->state = calloc((size_t)(p->n > 0 ? p->n : 1), 1);   /* TS_WAITING */
    if (r->state == NULL)
        goto nomem;
#endif
    if (p->fresh) {
        /* First run: finalize left the run state reset and the ready lists */
        r->cq.init = p->init_c;
        r->cq.init_n = p->ninit_c;
        r->pq.init = p->init_py;
        r->pq.init_n = p->ninit_py;
        p->init_c = p->init_py = NULL;
        p->ninit_c = p->ninit_py = 0;
        p->fresh = 0;
        INIT_STATES(r);
        return r;
    }
    /* Reset run state; count what starts ready. */
    for (int32_t i = 0; i < p->n; i++) {
        cd_node *nd = &p->nodes[i];
        int32_t waiting = 0;
        for (int32_t j = 0; j < nd->ndeps; j++)
            if (p->nodes[p->deps[nd->dep_off + j]].kind != CD_NODE_VALUE)
                waiting++;
        nd->waiting = waiting;
        nd->refs = nd->ndnts + ((nd->flags & CD_NF_OUTPUT) ? 1 : 0);
        if (nd->kind != CD_NODE_VALUE) {
            if (nd->chunk != NULL)            /* outputs of an earlier run */
                cd_chunk_decref(nd->chunk);
            if (nd->pyval != NULL)
                cd_chunk_owner_release(nd->pyval);
            nd->chunk = NULL;
            nd->pyval = NULL;
            nd->nbytes = 0;
            if (waiting == 0) {
                if (nd->kind == CD_NODE_C)
                    ninit++;
                else
                    pinit++;
            }
        }
    }
    r->cq.init = malloc((size_t)(ninit ? ninit : 1) * sizeof(int32_t));
    r->pq.init = malloc((size_t)(pinit ? pinit : 1) * sizeof(int32_t));
    if (r->cq.init == NULL || r->pq.init == NULL)
        goto nomem;
    for (int32_t k = 0; k < p->n; k++) {
        int32_t i = p->order[k];
        cd_node *nd = &p->nodes[i];
        if (nd->kind == CD_NODE_VALUE || nd->waiting != 0)
            continue;
        if (nd->kind == CD_NODE_C)
            r->cq.init[r->cq.init_n++] = i;
        else
            r->pq.init[r->pq.init_n++] = i;
    }
    INIT_STATES(r);
    return r;
nomem:
    cd_err_set(err, CD_ENOMEM, "out of memory starting a run");
    if (r != NULL) {
        cd_records_free(r->records, r->records_cap);
        free(r->spilled);
        free(r->cq.init);
        free(r->pq.init);
#ifdef CD_DEBUG
        free(r->state);
#endif
        pthread_cond_destroy(&r->cv);
        free(r);
    }
    return NULL;
}

int cd_run_start(cd_run *r, cd_err *err)
{
    (void)cd_fault_init();
    pthread_mutex_lock(&cd_pool.mu);
    r->next = g_runs;
    r->prev = NULL;
    if (g_runs != NULL)
        g_runs->prev = r;
    g_runs = r;
    if (cd_pool.nthreads < r->max_workers && cd_pool_grow_locked(r->max_workers, &sched_client) == 0 &&
        !r->opts.caller_runs_c) {
        /* No thread could be started: the caller runs everything itself. */
        r->opts.caller_runs_c = 1;
    }
    if (cd_pool.idle > 0 && r->st.total > 0)
        pthread_cond_broadcast(&cd_pool.cv);
    pthread_mutex_unlock(&cd_pool.mu);
    CD_UNUSED(err);
    return 0;
}

int cd_run_wait(cd_run *r, int64_t timeout_ns)
{
    int rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ns / 1000000000;
    ts.tv_nsec += timeout_ns % 1000000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&cd_pool.mu);
    for (;;) {
        if (run_finished_locked(r)) {
            rc = CD_WAIT_FINISHED;
            break;
        }
        if (!r->failed && rq_len(&r->pq) > 0 && has_slot(r)) {
            rc = CD_WAIT_PY;
            break;
        }
        if (r->opts.caller_runs_c && !r->failed && c_ready(r)) {
            rc = CD_WAIT_PY;   /* work for the caller */
            break;
        }
        r->caller_waiting = 1;
        if (pthread_cond_timedwait(&r->cv, &cd_pool.mu, &ts) == ETIMEDOUT) {
            r->caller_waiting = 0;
            rc = run_finished_locked(r) ? CD_WAIT_FINISHED : CD_WAIT_TIMEOUT;
            break;
        }
        r->caller_waiting = 0;
    }
    pthread_mutex_unlock(&cd_pool.mu);
    return rc;
}

int cd_run_help(cd_run *r, int64_t deadline_ns)
{
    int n;
    pthread_mutex_lock(&cd_pool.mu);
    n = run_c_locked(r, cd_pool_current_worker(), deadline_ns);
    pthread_mutex_unlock(&cd_pool.mu);
    return n;
}

int32_t cd_run_pop_py(cd_run *r)
{
    int32_t i = -1;
    pthread_mutex_lock(&cd_pool.mu);
    if (!r->failed && rq_len(&r->pq) > 0 && has_slot(r)) {
        i = rq_pop(&r->pq, r->plan->nodes);
        SET_STATE(r, i, TS_READY, TS_RUNNING);
        r->st.running++;
        maybe_wake_locked(r);
    }
    pthread_mutex_unlock(&cd_pool.mu);
    return i;
}

void cd_run_finish(cd_run *r, int32_t i, int status, const cd_err *err, int64_t start_ns, int worker)
{
    freelist fl;
    fl.nc = fl.no = fl.ns = 0;
    pthread_mutex_lock(&cd_pool.mu);
    finish_locked(r, i, status, err, start_ns, worker, &fl);
    pthread_mutex_unlock(&cd_pool.mu);
    freelist_flush(&fl);
    if (fl.ns)
        spill_flush(r, &fl);
}

void cd_run_cancel(cd_run *r, int code, const char *msg)
{
    pthread_mutex_lock(&cd_pool.mu);
    fail_locked(r, -1, code, msg);
    pthread_mutex_unlock(&cd_pool.mu);
}

int cd_run_failed(const cd_run *r)
{
    int f;
    pthread_mutex_lock(&cd_pool.mu);
    f = r->failed;
    pthread_mutex_unlock(&cd_pool.mu);
    return f;
}

const cd_err *cd_run_error(const cd_run *r, int32_t *node)
{
    if (node != NULL)
        *node = r->err_node;
    return r->failed ? &r->err : NULL;
}

int cd_run_spill_pressure(cd_run *r, int64_t nbytes)
{
    int yes;
    if (r == NULL || r->opts.spill_limit <= 0)
        return 0;
    pthread_mutex_lock(&cd_pool.mu);
    yes = r->st.bytes_held + nbytes > r->opts.spill_limit / 2;
    pthread_mutex_unlock(&cd_pool.mu);
    return yes;
}

void cd_run_stats(cd_run *r, cd_stats *out)
{
    pthread_mutex_lock(&cd_pool.mu);
    *out = r->st;
    pthread_mutex_unlock(&cd_pool.mu);
}

const cd_record *cd_run_records(const cd_run *r, int64_t *n)
{
    *n = r->nrecords;
    return r->records;
}

cd_record *cd_run_take_records(cd_run *r, int64_t *n, size_t *cap)
{
    cd_record *rec = r->records;
    int64_t stamp1 = cd_run_stamp(), ns1 = cd_now_ns();
    /* nanoseconds a stamp, measured over the run (1 where stamps are ns) */
    double scale = stamp1 > r->stamp0 ? (double)(ns1 - r->ns0) / (double)(stamp1 - r->stamp0) : 1.0;
    for (int64_t k = 0; k < r->nrecords; k++) {
        rec[k].start_ns = r->ns0 + (int64_t)((double)(rec[k].start_ns - r->stamp0) * scale);
        rec[k].end_ns = r->ns0 + (int64_t)((double)(rec[k].end_ns - r->stamp0) * scale);
    }
    *n = r->nrecords;
    *cap = r->records_cap;
    r->records = NULL;
    r->records_cap = 0;
    r->nrecords = 0;
    return rec;
}

cd_plan *cd_run_plan(const cd_run *r)
{
    return r->plan;
}

void cd_run_set_user(cd_run *r, void *user)
{
    r->user = user;
}

void *cd_run_user(const cd_run *r)
{
    return r->user;
}

void cd_run_free(cd_run *r)
{
    cd_plan *p;
    int skip;
    if (r == NULL)
        return;
    p = r->plan;
    if (r->opts.spill_limit > 0)
        cd_chunk_cache_cap(SIZE_MAX);
    pthread_mutex_lock(&cd_pool.mu);
    r->closing = 1;
    __atomic_store_n(&r->cancel, 1, __ATOMIC_RELAXED);
    while (r->active_c > 0 || r->py_active > 0 || r->st.running > 0)
        pthread_cond_wait(&r->cv, &cd_pool.mu);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (g_runs == r)
        g_runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    /* Values still held by non-outputs (leftovers of a failed run; a run
     * that did every task left none unless some task has no reader). */
    skip = !r->failed && r->st.done == r->st.total && p->nsinks == 0;
    pthread_mutex_unlock(&cd_pool.mu);
    for (int32_t i = 0; i < p->n && !skip; i++) {
        cd_node *nd = &p->nodes[i];
        if (nd->kind == CD_NODE_VALUE || (nd->flags & CD_NF_OUTPUT))
            continue;
        if (nd->chunk != NULL) {
            cd_chunk_decref(nd->chunk);
            nd->chunk = NULL;
        }
        if (nd->pyval != NULL) {
            cd_chunk_owner_release(nd->pyval);
            nd->pyval = NULL;
        }
        nd->nbytes = 0;
    }
    cd_records_free(r->records, r->records_cap);
    free(r->cq.init);
    free(r->pq.init);
    free(r->cq.h.a);
    free(r->pq.h.a);
    free(r->held);
    free(r->spilled);
#ifdef CD_DEBUG
    free(r->state);
#endif
    pthread_cond_destroy(&r->cv);
    free(r);
}

int cd_run_plan_blocking(cd_plan *p, const cd_run_opts *opts, cd_stats *stats, cd_err *err)
{
    cd_run_opts o = *opts;
    cd_run *r;
    int rc = 0;
    o.caller_runs_c = 1;
    r = cd_run_new(p, &o, err);
    if (r == NULL)
        return err->code;
    cd_run_start(r, err);
    for (;;) {
        int w;
        cd_run_help(r, 0);
        w = cd_run_wait(r, 20 * 1000000LL);
        if (w == CD_WAIT_FINISHED)
            break;
    }
    if (stats != NULL)
        cd_run_stats(r, stats);
    if (cd_run_failed(r)) {
        *err = r->err;
        rc = r->err.code ? r->err.code : CD_EINTERNAL;
    }
    cd_run_free(r);
    return rc;
}
