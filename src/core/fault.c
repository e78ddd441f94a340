/*
 * fault.c - SIGBUS of a guarded thread becomes an error (interface: fault.h).
 *
 * The handler jumps back to the guard of the faulting thread when there is
 * one and the fault is an access past the end of a mapped file (BUS_ADRERR);
 * otherwise it calls the handler that was there before (once), restores the
 * default and returns, so that the faulting access runs again and the
 * process dies as it would have.
 */
#define _GNU_SOURCE
#include "core/fault.h"
#include "core/fpe.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static __thread sigjmp_buf *guard;
static __thread uintptr_t fault_addr;
static struct sigaction previous;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static volatile sig_atomic_t delegating;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    sigjmp_buf *jb = guard;
    if (jb != NULL && si != NULL && si->si_code == BUS_ADRERR) {
        guard = NULL;
        fault_addr = (uintptr_t)si->si_addr;
        siglongjmp(*jb, 1);
    }
    /* Not ours: the handler found before ours runs once (faulthandler dumps
     * the stacks; it may raise SIGBUS again, which comes back here while
     * delegating and is ignored), then the default kills the process when
     * the access runs again (or at once, for a SIGBUS sent by kill). */
    if (delegating)
        return;
    delegating = 1;
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction != NULL && previous.sa_sigaction != on_sigbus)
            previous.sa_sigaction(sig, si, uc);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
               previous.sa_handler != NULL) {
        previous.sa_handler(sig);
    }
    signal(SIGBUS, SIG_DFL);
    if (si == NULL || si->si_code <= 0)
        raise(sig);
}

/* Install on_sigbus unless it is the handler already (someone may have put
 * theirs over it since: faulthandler.enable() after import cdask); the
 * handler found there becomes the one faults outside guards go to. */
int cd_fault_init(void)
{
    struct sigaction sa, cur;
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (sigaction(SIGBUS, NULL, &cur) != 0) {
        rc = -1;
    } else if (!((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        /* SA_NODEFER: the jump leaves the handler, SIGBUS must not stay blocked */
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        previous = cur;
        rc = sigaction(SIGBUS, &sa, NULL) == 0 ? 0 : -1;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static int fault_error(cd_err *err)
{
    char line[4352], path[4096];
    unsigned long lo, hi;
    uintptr_t a = fault_addr;
    FILE *f = fopen("/proc/self/maps", "r");
    path[0] = '\0';
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            int at = 0;
            if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) >= 2 &&
                a >= lo && a < hi && at > 0) {
                size_t n = strcspn(line + at, "\n");
                if (n >= sizeof path)
                    n = sizeof path - 1;
                memcpy(path, line + at, n);
                path[n] = '\0';
                break;
            }
        }
        fclose(f);
    }
    if (path[0] != '\0')
        return cd_err_set(err, CD_EIO, "cannot read the memory-mapped file '%s': it is "
                          "shorter than when it was mapped (truncated while in use?)", path);
    return cd_err_set(err, CD_EIO, "a memory-mapped file could not be read (SIGBUS at %p): "
                      "it is shorter than when it was mapped (truncated while in use?)",
                      (void *)a);
}

int cd_fault_call(const cd_kernel_desc *k, const cd_kctx *ctx, int n, cd_chunk *const *in,
                  cd_chunk **out, cd_err *err, int *fpe)
{
    sigjmp_buf jb;
    int rc;
    *fpe = 0;
    if (sigsetjmp(jb, 0) != 0) {
        *out = NULL;                    /* a partial output is lost (fault.h) */
        return fault_error(err);
    }
    guard = &jb;
    if (k->flags & CD_KF_FPE) {
        cd_fpe_clear();
        rc = k->fn(ctx, n, in, out, err);
        *fpe = cd_fpe_read();
    } else {
        rc = k->fn(ctx, n, in, out, err);
    }
    guard = NULL;
    return rc;
}
