/*
 * pool.c - the pthread worker pool (interface: pool.h).  Pure C.
 *
 * Design.  Workers are numbered 0..nthreads-1; worker i keeps running while
 * i < nthreads, so cd_pool_shutdown stops all of them by setting nthreads to
 * 0 and broadcasting.  A worker holds cd_pool.mu except inside the client's
 * work function, which drops it around each task; it waits on cd_pool.cv
 * when there is no work.  The thread that starts workers blocks every signal
 * around pthread_create, so the workers inherit a full mask.
 */
#include "core/pool.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

cd_pool_state cd_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, {0}};

static __thread int tls_worker = -1;

int cd_pool_current_worker(void)
{
    return tls_worker;
}

int cd_pool_default_workers(void)
{
    int n;
    pthread_mutex_lock(&cd_pool.mu);
    n = cd_pool.default_workers;
    pthread_mutex_unlock(&cd_pool.mu);
    if (n <= 0) {
        const char *env = getenv("CDASK_NUM_WORKERS");
        long v = env ? strtol(env, NULL, 10) : 0;
        if (v <= 0) {
            v = sysconf(_SC_NPROCESSORS_ONLN);
            if (v <= 0)
                v = 1;
        }
        n = v > CD_MAX_THREADS ? CD_MAX_THREADS : (int)v;
    }
    return n;
}

void cd_pool_set_default_workers(int n)
{
    pthread_mutex_lock(&cd_pool.mu);
    cd_pool.default_workers = n > CD_MAX_THREADS ? CD_MAX_THREADS : n;
    pthread_mutex_unlock(&cd_pool.mu);
}

int cd_pool_size(void)
{
    int n;
    pthread_mutex_lock(&cd_pool.mu);
    n = cd_pool.nthreads;
    pthread_mutex_unlock(&cd_pool.mu);
    return n;
}

static void atfork_prepare(void) { pthread_mutex_lock(&cd_pool.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&cd_pool.mu); }
static void atfork_child(void)
{
    /* Only the forking thread exists in the child: forget the workers and
     * any run that was in flight, and make the locks usable again. */
    pthread_mutex_init(&cd_pool.mu, NULL);
    pthread_cond_init(&cd_pool.cv, NULL);
    cd_pool.nthreads = 0;
    cd_pool.idle = 0;
    tls_worker = -1;
    if (cd_pool.client != NULL && cd_pool.client->fork_child != NULL)
        cd_pool.client->fork_child();
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    const cd_pool_client *client;
    tls_worker = id;
    pthread_mutex_lock(&cd_pool.mu);
    client = cd_pool.client;
    while (id < cd_pool.nthreads) {
        if (!client->work_locked(id)) {
            cd_pool.idle++;
            pthread_cond_wait(&cd_pool.cv, &cd_pool.mu);
            cd_pool.idle--;
        }
    }
    pthread_mutex_unlock(&cd_pool.mu);
    if (client->worker_exit != NULL)
        client->worker_exit(id);
    return NULL;
}

int cd_pool_grow_locked(int n, const cd_pool_client *client)
{
    sigset_t all, old;
    if (!cd_pool.atfork_done) {
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        cd_pool.atfork_done = 1;
    }
    cd_pool.client = client;
    if (n > CD_MAX_THREADS)
        n = CD_MAX_THREADS;
    sigfillset(&all);
    /* faults stay deliverable: blocked, the kernel would kill the process
     * at once, bypassing core/fault.h's guard and Python's faulthandler */
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, &old);   /* workers inherit the mask */
    while (cd_pool.nthreads < n) {
        int id = cd_pool.nthreads;
        cd_pool.nthreads++;
        if (pthread_create(&cd_pool.threads[id], NULL, worker_main, (void *)(intptr_t)id) != 0) {
            cd_pool.nthreads--;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return cd_pool.nthreads;
}

void cd_pool_shutdown(void)
{
    int n;
    pthread_mutex_lock(&cd_pool.mu);
    n = cd_pool.nthreads;
    cd_pool.nthreads = 0;      /* every worker's id is now >= nthreads: they exit */
    pthread_cond_broadcast(&cd_pool.cv);
    pthread_mutex_unlock(&cd_pool.mu);
    for (int i = 0; i < n; i++)
        pthread_join(cd_pool.threads[i], NULL);
}
